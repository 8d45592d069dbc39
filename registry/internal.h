/* internal.h - registry internals shared by registry.c, family.c and series.c.
 *
 * Memory ordering summary (each atomic below names its pair where it is used):
 *  - publish: an entry is fully written, then ck_hs_put (release inside ck) makes it
 *    reachable; readers find it with ck_hs_get (acquire inside ck).
 *  - series state word: enter is an acquire CAS, leave a release fetch_add; the reaper's DEAD
 *    CAS is acq_rel, so it sees every value written by updaters that have left.
 *  - reclamation: unlink under the set's mutex, put on the retire list; the reaper moves
 *    it (series: all retired since its last pass, as one batch) into its own record
 *    (ck_epoch_call) and its ck_epoch_poll frees it once every section
 *    that could hold it has ended. Never waits: a stalled reader delays frees, not the reaper.
 */
#ifndef ABACUS_REGISTRY_INTERNAL_H
#define ABACUS_REGISTRY_INTERNAL_H

#include <ck_epoch.h>
#include <ck_hs.h>
#include <ck_stack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "registry.h"

/* ThreadSanitizer cannot see ck's inline-assembly atomics; these annotations tell it about
 * the happens-before edges ck provides (publish/lookup, epoch end/grace period). They
 * compile to nothing outside TSan builds. */
extern char reg_tsan_epoch; /* registry.c */
#ifdef ABACUS_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define REG_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define REG_TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define REG_TSAN_ACQUIRE(p) ((void)(p))
#define REG_TSAN_RELEASE(p) ((void)(p))
#endif

/* Series state word: bits 0-15 updaters inside, bit 16 DEAD, bits 17-63 a sequence bumped
 * by every leave. 16 bits of in-flight count exceed any realistic thread count; enter waits
 * (never overflows) if it were ever full. */
#define REG_ST_INFL_MASK 0xffffULL
#define REG_ST_DEAD (1ULL << 16)
#define REG_ST_SEQ_SHIFT 17
#define REG_ST_SEQ_ONE (1ULL << REG_ST_SEQ_SHIFT)

#define REG_SF_SUMMARY 1 /* vals[0] points to a reg_summary_state */
#define REG_SF_GENERAL 2 /* a label value needs escaping or has a 2-byte length (series.c) */
#define REG_SF_HEAP 4    /* from malloc, too big for a slab (slab.h) */

/* Summary state, allocated with the series; guarded by its own lock since the quantile
 * stream is not lock-free. */
typedef struct reg_summary_state reg_summary_state;

/* The reaper's clock: monotonic nanoseconds >> REG_REAP_SHIFT (16.8 ms), 32 bits a series. It
 * wraps after 2.3 years; TTLs are capped at half that (reg_family_reap). */
#define REG_REAP_SHIFT 24

/* No hash is stored: the slot's tag (below) settles most probes without one, and the few that
 * need the full hash (the set growing, a removal, a cursor) recompute it from the key. */
struct reg_series {
    _Atomic uint64_t state;
    double created; /* wall-clock seconds */
    union {
        struct {
            uint32_t reap_seq; /* low bits of the sequence the reaper last saw */
            uint32_t reap_t;   /* the reaper's clock when it last saw seq change */
        };
        /* After removal: the registry's list of retired series (reg_retire_series). Its
         * deferred free is one epoch entry for a whole batch, not 16 bytes in each series. */
        struct reg_series *retired_next;
    };
    uint16_t klen;  /* bytes of key (< REG_MAX_KEY: its rendering is at most that long) */
    uint16_t flags; /* REG_SF_* */
    /* The label values as given, in the family's order, each after its length (series.c:
     * the label names and quotes are the family's, not repeated in every series); then,
     * 8-byte aligned, the family's nvals value words: atomic uint64 counts or double bits, or
     * a summary state pointer. */
    char key[];
};

/* Series pointers are stored in a family's ck_hs tagged with the top 16 bits of their hash
 * in the pointer's unused top bits: Debian's ck has no pointer packing, so without the tag
 * every probed slot would cost a cache miss on the series just to compare hashes. User-space
 * pointers on x86-64 and arm64 Linux fit in 48 bits; series_new refuses one that does not. */
#define REG_TAG_SHIFT 48
#define REG_PTR_MASK (((uintptr_t)1 << REG_TAG_SHIFT) - 1)
/* Bit 63 always set (a tagged series is never mistaken for a probe, which is untagged),
 * then 15 bits of the hash. */
static inline uintptr_t reg_hash_tag(uint64_t hash) {
    return ((uintptr_t)1 << 63) | (uintptr_t)(hash >> (REG_TAG_SHIFT + 1) << REG_TAG_SHIFT);
}
static inline void *reg_series_tag(const struct reg_series *s, uint64_t hash) {
    return (void *)((uintptr_t)s | reg_hash_tag(hash));
}
static inline struct reg_series *reg_series_untag(const void *p) {
    return (struct reg_series *)((uintptr_t)p & REG_PTR_MASK);
}

/* Offset of the value words in a series whose key is klen bytes: the key starts at
 * offsetof(key), not sizeof, which is rounded up past klen and flags to 32 and would waste 4
 * bytes a series (a 16-byte malloc size class for one key length in four). Cannot fail. */
static inline size_t reg_series_vals_off(size_t klen) {
    return (offsetof(struct reg_series, key) + klen + 7) & ~(size_t)7;
}

/* The value words of s. Cannot fail. */
static inline _Atomic uint64_t *reg_series_vals(const struct reg_series *s) {
    return (_Atomic uint64_t *)((char *)s + reg_series_vals_off(s->klen));
}

/* Lookup probe: what ck_hs compare sees as its second argument. */
typedef struct {
    uint64_t hash;
    const char *key;
    size_t klen;
} reg_probe;

/* A cache line. Fields written at different rates by different threads live on lines of their
 * own: a write to a line costs every other core that reads anything on it a miss. */
#define REG_LINE 64

struct reg_family {
    /* Read by every update; written only before the family is published (and hs.map when the
     * set grows, under mu). Nothing written per update or per creation shares these lines. */
    /* First member: ck_hs_put_unique hands the family itself to the compare callback, which
     * reads its second argument as a reg_probe (hash of the name, name, length). */
    reg_probe key;
    reg_family_def def; /* deep copy: owned strings and arrays */
    size_t nvals;       /* value words per series */
    char **lpre;        /* per label: `name="` (first) or `,name="`: rendered once */
    uint16_t *lpre_len;
    size_t lpre_total; /* the sum of lpre_len */
    reg_registry *reg;
    ck_hs_t hs;
    /* Written by every creation and removal (mu, nseries, removals) and every hold (refs).
     * Kept off the lines above so that a thread creating series, or a scrape holding the
     * family, does not take from the updaters of other series the line holding hs. */
    _Alignas(REG_LINE) pthread_mutex_t mu; /* serialises writers of hs (ck_hs is single-writer) */
    _Atomic size_t nseries;                /* written under mu; read relaxed by anyone */
    _Atomic uint64_t refused;
    _Atomic uint64_t refs; /* 1 for the registry's link plus one per hold */
    _Atomic int dead;      /* set under mu before its series are killed */
    /* Bumped (under mu) by every series removal, between its unlink and its retire: a
     * reg_cursor that finds it unchanged knows every series it collected is still unfreed. */
    _Atomic uint64_t removals;
    /* Bumped twice (under mu) by every series creation: odd from just before its publish
     * until just after it. With removals, whether the kept view still holds the family's
     * series (series.c, "views"). */
    _Atomic uint64_t creations;
    /* The last clean collection of a large family, kept for the next (series.c, "views").
     * Taken by exchange: one collector at a time owns it. */
    _Atomic(struct reg_view *) view;
    /* The series of the last REG_CREATION_LOG creations, at their creation number (creations
     * / 2) modulo REG_CREATION_LOG, NULL for a creation that failed; kept from creation number
     * log_from on, once the family has a view's worth of series (NULL before). Written and
     * read under mu only: a collection brings a view up to date from it (series.c, "views"). */
    struct reg_series **log;
    uint64_t log_from;
    ck_epoch_entry_t epoch_entry; /* the deferred free, once unlinked and released */
};

/* A reader/writer handle: an epoch record. The record must be the first member: records
 * returned by ck_epoch_recycle are cast back to reg_thread. Each is allocated on lines of its
 * own (reg_alloc_lines): reg_begin and reg_end write the record, and a neighbour's record on
 * the same line would make two threads' sections take the line from each other. */
struct reg_thread {
    ck_epoch_record_t rec;
    reg_registry *reg;
};

/* A block ck_hs allocated; the header carries its deferred free (16 bytes: the payload stays
 * 16-byte aligned). */
typedef struct reg_block {
    ck_epoch_entry_t epoch_entry;
} reg_block;

struct reg_registry {
    /* Read by every section and update: the global epoch (reg_begin), the seed (every
     * lookup's hash), the options. ck_epoch_t's other fields (n_free, the record list) change
     * only when a handle is attached or detached, which ck keeps next to the epoch. */
    ck_epoch_t epoch;
    uint64_t seed;
    reg_options opt;
    struct ck_malloc alloc;

    /* Families: written when one is added or removed. */
    _Alignas(REG_LINE) pthread_mutex_t fam_mu; /* serialises writers of families */
    ck_hs_t families;
    _Atomic size_t nfamilies;

    /* Written by every series creation and removal (for the global limit), nothing else. */
    _Alignas(REG_LINE) _Atomic size_t nseries; /* registry-wide */

    _Alignas(REG_LINE) pthread_mutex_t retire_mu; /* guards retired and retired_series */
    ck_stack_entry_t *retired;         /* unlinked entries awaiting adoption by the reaper */
    struct reg_series *retired_series; /* unlinked series, linked through retired_next */

    pthread_mutex_t reap_mu; /* one reaper pass at a time */
    reg_thread *reaper;      /* the reaper's own epoch record */
    pthread_t reaper_thread;
    int reaper_running;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv;
    int stopping;

    /* Pushed groups (group.c). Lock order: push_mu, then fam_mu. */
    _Alignas(REG_LINE) pthread_mutex_t push_mu; /* serialises writers of groups */
    ck_hs_t groups;                             /* the current state of each group */
    /* Pushed name -> its type and how many groups have it. Changed with both push_mu and
     * fam_mu held, so either lock is enough to read it (reg_family_add reads it under fam_mu). */
    reg_strmap *push_names;
    _Atomic size_t ngroups;
};

static inline uint64_t reg_mum(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t reg_load64(const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* 64-bit hash: 16 bytes per 64x64->128 multiply-fold (the wyhash construction). Keys are
 * label values, typically 5-50 bytes; inline so the update path pays no call. Cannot fail. */
static inline uint64_t reg_hash_inline(const void *p, size_t n, uint64_t seed) {
    const unsigned char *b = p;
    const uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL;
    uint64_t h = seed ^ k0 ^ (n * k1);
    while (n > 16) {
        h = reg_mum(reg_load64(b) ^ k1, reg_load64(b + 8) ^ h);
        b += 16;
        n -= 16;
    }
    uint64_t a = 0, c = 0;
    if (n >= 8) {
        a = reg_load64(b);
        c = reg_load64(b + n - 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, b, 4);
        memcpy(&y, b + n - 4, 4);
        a = ((uint64_t)x << 32) | y;
    } else if (n > 0) {
        a = ((uint64_t)b[0] << 16) | ((uint64_t)b[n >> 1] << 8) | b[n - 1];
    }
    return reg_mum(reg_mum(a ^ k1, c ^ h) ^ k0, n ^ k1);
}

/* registry.c */
/* Zeroed memory for a struct with _Alignas(REG_LINE) members, starting on a line of its own
 * and rounded up to whole lines (free it with free). NULL when out of memory. */
void *reg_alloc_lines(size_t size);
uint64_t reg_now_mono_ns(void);
double reg_now_wall(void);
void reg_retire_series(reg_registry *r, struct reg_series *s);
/* Bracket every mutating ck_hs call (under its set mutex) so deferred frees are retired. */
void reg_writer_enter(reg_registry *r);
void reg_writer_leave(void);
void reg_retire_family(reg_registry *r, struct reg_family *f);
/* Queue an unlinked entry for a deferred free by fn after a grace period. Any thread; cannot
 * fail. */
void reg_retire(reg_registry *r, ck_epoch_entry_t *e, ck_epoch_cb_t *fn);
bool reg_hs_init(reg_registry *r, ck_hs_t *hs, ck_hs_hash_cb_t *hf, ck_hs_compare_cb_t *cmp,
                 unsigned long capacity, uint64_t seed);

/* family.c */
void reg_family_free_now(struct reg_family *f);
size_t reg_family_reap(reg_registry *r, struct reg_family *f, uint64_t now_ns);
bool reg_families_init(reg_registry *r);
void reg_families_destroy(reg_registry *r);

/* group.c */
bool reg_groups_init(reg_registry *r);
void reg_groups_destroy(reg_registry *r);
/* Remove groups whose TTL passed. Not inside a section. Returns how many. */
size_t reg_groups_reap(reg_registry *r, uint64_t now_ns);
/* REG_OK when a new registry family def fits every pushed family of its name (its type);
 * REG_ECONFLICT otherwise. Under fam_mu. */
int reg_groups_fit_locked(reg_registry *r, const reg_family_def *def);

/* series.c */
#define REG_CREATION_LOG 256 /* creations a view can be brought up to date across */

/* Free f's kept view, when nobody can collect f any more. Cannot fail. */
void reg_family_view_free(struct reg_family *f);
/* Tests only (NULL otherwise): reg_family_collect calls it between its two looks, inside the
 * caller's section, so a test can remove a series at exactly that point. */
extern void (*reg_test_between_looks)(struct reg_family *f);
/* Tests only (NULL otherwise): a creation calls it just after its publish, before its count
 * is even again, under the family mutex, so a test can collect and update meanwhile. */
extern void (*reg_test_after_publish)(struct reg_family *f);
/* Tests only (NULL otherwise): reg_family_collect calls it just before it walks the set, after
 * reading the family's counts, inside the caller's section, so a test can create a series
 * that the walk then sees though the counts it keeps are from before. */
extern void (*reg_test_before_walk)(struct reg_family *f);
/* Tests only (NULL otherwise): reg_family_collect calls it when it has brought the family's
 * view up to date from the creation log, so a test can tell that path from the others. */
extern void (*reg_test_view_extended)(struct reg_family *f);
bool reg_series_hs_init(reg_registry *r, struct reg_family *f);
void reg_series_free_now(struct reg_series *s);
/* Kill one series under f->mu: DEAD CAS, unlink, hook, retire. wait: spin until updaters
 * leave (delete/reset); otherwise skip a busy series (reaper). Returns 1 when removed. */
int reg_series_kill_locked(reg_registry *r, struct reg_family *f, struct reg_series *s, int wait);

/* ---- snapshots (snapshot.c, with series.c and quantile.c) ---------------------------------- */

/* family.c: 1 when d is a definition reg_family_add accepts. Cannot fail. */
int reg_family_def_valid(const reg_family_def *d);

/* One series' saved state, to restore. */
typedef struct {
    double created;
    double value;            /* counter, gauge, untyped */
    const uint64_t *buckets; /* histogram: nbuckets + 1 per-bucket (not cumulative) counts */
    double sum;              /* histogram, summary */
    uint64_t count;          /* summary */
    struct reg_qstream *q;   /* summary: the stream state; taken over (freed on failure) */
} reg_series_state;

/* series.c: create the series of values if absent (limits apply) and set its state exactly.
 * Inside a section; at start-up (see reg_snapshot_load). Same results as the updates. */
int reg_series_restore(reg_thread *t, reg_family *f, const char *const *values,
                       const reg_series_state *st);
/* series.c: a summary series' count, sum and stream state, read under its lock. Inside the
 * section s was collected in. Cannot fail (the writer keeps errors). */
void reg_series_summary_encode(const reg_series *s, reg_snapshot *w, int64_t wall_offset_ns);

#endif
