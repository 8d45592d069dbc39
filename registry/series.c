/* series.c - series: lookup-or-create, the enter/leave protocol, updates, removal, snapshots.
 *
 * The protocol is DESIGN.md's "series lifecycle" and registry/model/series.pml:
 *  update  = lookup (lock-free) + enter (CAS on the state word unless DEAD) + atomic update +
 *            leave; on a miss or DEAD, build the new series (private), lock the family, look
 *            up again, publish it if still absent (else free it), enter before unlocking
 *            (cannot fail: DEAD is only set under that lock).
 *  removal = under the family lock, CAS the state word from "nobody inside" to DEAD, unlink,
 *            read the final value, retire for an epoch-deferred free.
 *  scrape  = collect live series, then look at each state again and drop those now DEAD; or,
 *            when no series was created or removed since the last collection, take the view
 *            the family kept of it ("views" below).
 *
 * A series' key is its label values, stored inline (the family adds names, quotes and
 * escaping when a scrape renders the text); its memory comes from a slab (slab.h).
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "quantile.h"
#include "slab.h"

/* Collections of fewer series are not sorted and no view is kept of them, nor a creation log
 * for families smaller than that (see views). */
#define SORT_MIN 4096

struct reg_summary_state {
    pthread_mutex_t mu;
    reg_qstream *q;
    uint64_t count;
    double sum;
};

static inline double bits_to_d(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline uint64_t d_to_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* ---- the per-family set ------------------------------------------------------------------ */

/* The seed of a family's series hashes: probe_init's, and its set's (which ck_hs hands to
 * series_hash_cb). Cannot fail. */
static inline uint64_t series_seed(const reg_registry *r, const reg_family *f) {
    return r->seed ^ f->key.hash;
}

/* A series keeps its label values, not their rendering: each value as given, after its length
 * in one byte below 128, else in two (the first with its high bit set; REG_MAX_KEY < 32768).
 * The label names, quotes and escaping are the family's to add when the text is rendered, so
 * a series costs its values' bytes and one byte each. */
#define KEY_SHORT 128
_Static_assert(REG_MAX_KEY < 32768, "a value's length fits the two-byte form");

/* Write the length n at p; returns the bytes written. Cannot fail. */
static inline size_t key_put_len(char *p, size_t n) {
    if (n < KEY_SHORT) {
        p[0] = (char)n;
        return 1;
    }
    p[0] = (char)(0x80 | (n >> 8));
    p[1] = (char)(n & 0xff);
    return 2;
}

/* The length of the value at *p, which moves past it to the value's bytes. Cannot fail: keys
 * are written by series_new only. */
static inline size_t key_get_len(const char **p) {
    const unsigned char *q = (const unsigned char *)*p;
    if (q[0] < KEY_SHORT) {
        *p += 1;
        return q[0];
    }
    *p += 2;
    return (size_t)(q[0] & 0x7f) << 8 | q[1];
}

/* The hash probe_init computes for the label values of s, recomputed from its key: a series
 * does not store it. For the set's growth and rebuilds and for removals, never for updates.
 * Cannot fail. */
static uint64_t series_hash(const struct reg_series *s, uint64_t seed) {
    uint64_t h = seed;
    for (const char *p = s->key, *end = s->key + s->klen; p < end;) {
        size_t n = key_get_len(&p);
        h = reg_hash_inline(p, n, h);
        p += n;
    }
    return h;
}

static unsigned long series_hash_cb(const void *obj, unsigned long seed) {
    return (unsigned long)series_hash(reg_series_untag(obj), seed);
}

/* Keys are short; an inlined word loop beats a call to memcmp. */
static inline uint64_t ld64(const char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t ld32(const char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline int key_equal(const char *a, const char *b, size_t n) {
    if (n >= 8) {
        for (; n > 8; a += 8, b += 8, n -= 8)
            if (ld64(a) != ld64(b))
                return 0;
        /* the last word overlaps the previous one: still inside both buffers (n was >= 8) */
        return ld64(a + n - 8) == ld64(b + n - 8);
    }
    if (n >= 4)
        return ld32(a) == ld32(b) && ld32(a + n - 4) == ld32(b + n - 4);
    for (; n; n--)
        if (*a++ != *b++)
            return 0;
    return 1;
}

/* What ck_hs compare sees as its second argument: the raw label values of a lookup (hashed
 * and compared without rendering them), or, for a removal, the series itself. */
typedef struct {
    uint64_t hash;
    const struct reg_series *self; /* removal: match exactly this series */
    const reg_family *f;
    const char *const *values;
    const size_t *lens;
} series_probe;

/* 1 when the label values of s are exactly the probe's. Cannot fail. */
static int key_matches(const series_probe *p, const struct reg_series *s) {
    const char *k = s->key;
    for (size_t i = 0; i < p->f->def.nlabels; i++) {
        size_t n = key_get_len(&k);
        if (n != p->lens[i] || !key_equal(k, p->values[i], n))
            return 0;
        k += n;
    }
    return 1;
}

/* ck_hs compare: stored is a tagged series; key a series_probe, or the new tagged series
 * itself (ck_hs_put_unique). */
static bool series_compare_cb(const void *stored, const void *key) {
    /* ck_hs_put_unique passes the new (tagged) series itself: it equals nothing stored. */
    if ((uintptr_t)key & ~REG_PTR_MASK)
        return stored == key;
    const series_probe *p = key;
    /* The tag settles most mismatches without touching the series. */
    if (((uintptr_t)stored & ~REG_PTR_MASK) != reg_hash_tag(p->hash))
        return false;
    const struct reg_series *s = reg_series_untag(stored);
    REG_TSAN_ACQUIRE(s); /* ck_hs calls this before get returns: pairs with the publish */
    return p->self ? s == p->self : key_matches(p, s);
}

/* Hash raw label values (each with its length, so the split is part of the hash) and fill
 * lens. Returns 0, or -1 when a value is longer than any key can be. */
static int probe_init(series_probe *p, const reg_registry *r, const reg_family *f,
                      const char *const *values, size_t *lens) {
    uint64_t h = series_seed(r, f);
    for (size_t i = 0; i < f->def.nlabels; i++) {
        lens[i] = strlen(values[i]);
        if (lens[i] > REG_MAX_KEY)
            return -1;
        h = reg_hash_inline(values[i], lens[i], h);
    }
    *p = (series_probe){h, NULL, f, values, lens};
    return 0;
}

/* False when out of memory. */
bool reg_series_hs_init(reg_registry *r, struct reg_family *f) {
    return reg_hs_init(r, &f->hs, series_hash_cb, series_compare_cb, 8, series_seed(r, f));
}

/* ---- keys -------------------------------------------------------------------------------- */

/* 1 when the text format escapes byte c in a label value (with a backslash; a newline as
 * \n). The one statement of that rule. Cannot fail. */
static inline int needs_escape(char c) {
    return c == '\\' || c == '"' || c == '\n';
}

/* The bytes escaping adds to the n bytes at v. Cannot fail. */
static size_t escapes_in(const char *v, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += (size_t)needs_escape(v[i]);
    return k;
}

/* The text format's label value escaping. Cannot fail. */
size_t reg_escape_label_value(const char *src, size_t n, char *dst) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (needs_escape(c)) {
            dst[k++] = '\\';
            c = c == '\n' ? 'n' : c;
        }
        dst[k++] = c;
    }
    return k;
}

/* 1 when s holds well-formed UTF-8 (Prometheus requires it in label values). */
int reg_valid_utf8(const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            c = (c << 6) | (s[i + k] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* ---- enter / leave ----------------------------------------------------------------------- */

/* 1 when entered, 0 when the series is DEAD. */
static int try_enter(struct reg_series *s) {
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        if (st & REG_ST_DEAD)
            return 0;
        if ((st & REG_ST_INFL_MASK) == REG_ST_INFL_MASK) {
            sched_yield(); /* 65535 updaters inside: wait rather than overflow */
            st = atomic_load_explicit(&s->state, memory_order_relaxed);
            continue;
        }
        /* Acquire pairs with the release of earlier leaves and with the DEAD CAS: once in,
         * the series cannot become DEAD until we leave. */
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, st + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return 1;
    }
}

static inline void leave(struct reg_series *s) {
    /* -1 updater, +1 sequence in one add. Release pairs with the reaper's acq_rel DEAD CAS
     * (and enters), publishing the value written inside. */
    atomic_fetch_add_explicit(&s->state, REG_ST_SEQ_ONE - 1, memory_order_release);
}

/* ---- creation ---------------------------------------------------------------------------- */

/* Give back the memory of series s, from a slab or (REG_SF_HEAP) from malloc. Cannot fail. */
static void series_release(struct reg_series *s) {
    if (s->flags & REG_SF_HEAP)
        free(s);
    else
        reg_slab_free(s);
}

/* A new series for the probe's values, fully initialised and not yet published. NULL when
 * out of memory or the label text does not fit (*err says which). */
static struct reg_series *series_new(reg_family *f, const series_probe *sp, int *err) {
    size_t klen = 0, text = f->lpre_total;
    int general = 0; /* labels_len and reg_series_labels take the general loop */
    for (size_t i = 0; i < f->def.nlabels; i++) {
        size_t n = sp->lens[i], e = escapes_in(sp->values[i], n);
        klen += n + (n < KEY_SHORT ? 1 : 2);
        text += n + e + 1; /* and the closing quote */
        general |= e > 0 || n >= KEY_SHORT;
    }
    if (text > REG_MAX_KEY) { /* the bound is on the text a scrape shows */
        *err = REG_EINVAL;
        return NULL;
    }
    *err = REG_ENOMEM;
    size_t size = reg_series_vals_off(klen) + f->nvals * sizeof(uint64_t);
    int heap = size > REG_SLAB_MAX;
    struct reg_series *s = heap ? malloc(size) : reg_slab_alloc(size);
    if (s == NULL)
        return NULL;
    s->flags = heap ? REG_SF_HEAP : 0;
    if ((uintptr_t)s & ~REG_PTR_MASK) { /* cannot carry a hash tag: never on Linux today */
        series_release(s);
        return NULL;
    }
    atomic_init(&s->state, 0);
    s->created = reg_now_wall();
    s->reap_seq = 0;
    s->reap_t = (uint32_t)(reg_now_mono_ns() >> REG_REAP_SHIFT);
    s->klen = (uint16_t)klen;
    s->flags |= (f->def.type == REG_SUMMARY ? REG_SF_SUMMARY : 0) | (general ? REG_SF_GENERAL : 0);
    char *k = s->key;
    for (size_t i = 0; i < f->def.nlabels; i++) {
        k += key_put_len(k, sp->lens[i]);
        memcpy(k, sp->values[i], sp->lens[i]);
        k += sp->lens[i];
    }
    _Atomic uint64_t *vals = reg_series_vals(s);
    for (size_t i = 0; i < f->nvals; i++)
        atomic_init(&vals[i], 0); /* 0 bits are 0.0 as a double too */
    if (f->def.type == REG_SUMMARY) {
        reg_summary_state *ss = calloc(1, sizeof(*ss));
        const reg_family_def *d = &f->def;
        if (ss)
            ss->q = reg_qstream_create(d->objectives, d->nobjectives, d->max_age_ns, d->age_buckets,
                                       d->buf_cap, reg_now_mono_ns());
        if (ss == NULL || ss->q == NULL) {
            free(ss);
            series_release(s);
            return NULL;
        }
        pthread_mutex_init(&ss->mu, NULL);
        atomic_init(&vals[0], (uint64_t)(uintptr_t)ss);
    }
    return s;
}

static void summary_free(reg_summary_state *ss) {
    if (ss == NULL)
        return;
    reg_qstream_destroy(ss->q);
    pthread_mutex_destroy(&ss->mu);
    free(ss);
}

/* Free a series that no reader can reach. Cannot fail. */
void reg_series_free_now(struct reg_series *s) {
    if (s->flags & REG_SF_SUMMARY)
        summary_free((reg_summary_state *)(uintptr_t)atomic_load(reg_series_vals(s)));
    series_release(s);
}

/* 1 when creating one more series in f would pass its limit or the registry's, as far as a
 * relaxed read tells (a hint: enter_series decides under the lock). Cannot fail. */
static int limit_reached(reg_registry *r, reg_family *f, int counted) {
    size_t n = atomic_load_explicit(&f->nseries, memory_order_relaxed);
    if (f->def.max_series && n >= f->def.max_series)
        return 1;
    return counted && r->opt.max_series &&
           atomic_load_explicit(&r->nseries, memory_order_relaxed) >= r->opt.max_series;
}

/* Free a series built but never published (NULL is a no-op). Cannot fail. */
static void discard(struct reg_series *s) {
    if (s != NULL)
        reg_series_free_now(s);
}

/* Log the series of creation number (NULL: the creation failed) for collections that bring a
 * view up to date (see views). The log starts once the family is about to have SORT_MIN
 * series. Under f->mu. Cannot fail: out of memory, the log starts with a later creation. */
static void log_creation(reg_family *f, uint64_t number, struct reg_series *s) {
    if (f->log == NULL) {
        if (atomic_load_explicit(&f->nseries, memory_order_relaxed) + 1 < SORT_MIN)
            return;
        f->log = calloc(REG_CREATION_LOG, sizeof *f->log);
        if (f->log == NULL)
            return;
        f->log_from = number;
    }
    f->log[number % REG_CREATION_LOG] = s;
}

/* Find or create the series for values and enter it. Returns the entered series or NULL
 * with *err set. Inside a section. */
static struct reg_series *enter_series(reg_thread *t, reg_family *f, const char *const *values,
                                       uint64_t *removals, int *err) {
    reg_registry *r = t->reg;
    size_t lens[REG_MAX_LABELS];
    series_probe sp;
    if (probe_init(&sp, r, f, values, lens) != 0) {
        *err = REG_EINVAL;
        return NULL;
    }
    /* For a reg_series_ref: seq_cst, read before the lookup, so that a removal of what the
     * lookup finds is counted after this value (reg_update_ref then refuses the ref). */
    if (removals)
        *removals = atomic_load(&f->removals);
    struct reg_series *s = reg_series_untag(ck_hs_get(&f->hs, (unsigned long)sp.hash, &sp));
    if (s) {
        /* Pairs with the release before ck_hs_put_unique below. */
        REG_TSAN_ACQUIRE(s);
        if (try_enter(s))
            return s;
    }

    /* Slow path: absent or DEAD. The new series is built before taking the lock: rendering,
     * allocating and reading the clocks touch nothing shared, and done under the lock they
     * made every other thread creating in this family wait for them. It stays private (and
     * is freed unpublished) unless the look under the lock misses too. Not built when the
     * values are not UTF-8 or a limit looks reached: a flood of refused label sets then
     * costs no allocation. The checks under the lock decide, in the same order as before. */
    int bad_utf8 = 0;
    for (size_t i = 0; i < f->def.nlabels && !bad_utf8; i++)
        bad_utf8 = !reg_valid_utf8(values[i], lens[i]);
    int counted = !(f->def.flags & REG_FAMILY_OWN); /* see REG_FAMILY_OWN */
    int cerr = REG_OK;
    struct reg_series *fresh = NULL;
    if (!bad_utf8 && !limit_reached(r, f, counted))
        fresh = series_new(f, &sp, &cerr);

    pthread_mutex_lock(&f->mu);
    /* Relaxed: dead is written under this mutex (reg_family_remove), which orders it. */
    if (atomic_load_explicit(&f->dead, memory_order_relaxed)) {
        pthread_mutex_unlock(&f->mu);
        discard(fresh);
        *err = REG_EGONE;
        return NULL;
    }
    s = reg_series_untag(ck_hs_get(&f->hs, (unsigned long)sp.hash, &sp));
    if (s == NULL) {
        if (bad_utf8) {
            pthread_mutex_unlock(&f->mu);
            *err = REG_EINVAL;
            return NULL;
        }
        /* Counters, all relaxed: f->nseries changes only under this mutex, so the family
         * limit is exact; r->nseries is one atomic counter, so the reserve-then-check below
         * never lets two creators past the global limit; refused is a statistic. */
        size_t n = atomic_load_explicit(&f->nseries, memory_order_relaxed);
        int refused = f->def.max_series && n >= f->def.max_series;
        if (!counted) {
            /* neither counted in nor refused by the registry-wide limit */
        } else if (!refused && r->opt.max_series) {
            /* Global limit across families: reserve a slot, give it back on failure. */
            size_t g = atomic_fetch_add_explicit(&r->nseries, 1, memory_order_relaxed);
            if (g >= r->opt.max_series) {
                atomic_fetch_sub_explicit(&r->nseries, 1, memory_order_relaxed);
                refused = 1;
            }
        } else if (!refused) {
            atomic_fetch_add_explicit(&r->nseries, 1, memory_order_relaxed);
        }
        if (refused) {
            atomic_fetch_add_explicit(&f->refused, 1, memory_order_relaxed);
            pthread_mutex_unlock(&f->mu);
            discard(fresh);
            *err = REG_ELIMIT;
            return NULL;
        }
        /* Not built above when a limit looked reached (and a removal has since made room). */
        s = fresh != NULL || cerr != REG_OK ? fresh : series_new(f, &sp, &cerr);
        fresh = NULL;
        if (s) {
            /* The creation count is odd from here until the publish is over (see views): a
             * collection that reads it odd keeps no view, as its walk may have missed s while
             * another thread already found s and updated it. Relaxed, then a release fence:
             * the bump is ordered before the publish's stores, so whoever finds s through the
             * set and then starts a collection reads the count odd or moved on. */
            uint64_t number = atomic_fetch_add_explicit(&f->creations, 1, memory_order_relaxed) / 2;
            atomic_thread_fence(memory_order_release);
            /* Fully initialised; the publish. Pairs with the acquire after ck_hs_get. */
            REG_TSAN_RELEASE(s);
            reg_writer_enter(r);
            if (!ck_hs_put_unique(&f->hs, (unsigned long)sp.hash, reg_series_tag(s, sp.hash))) {
                reg_series_free_now(s);
                s = NULL;
            }
            reg_writer_leave();
            log_creation(f, number, s);
            if (reg_test_after_publish)
                reg_test_after_publish(f);
            /* Even again. Release, after the publish: pairs with the acquire in
             * reg_family_collect, so a collector that reads this count sees s in the set. */
            atomic_fetch_add_explicit(&f->creations, 1, memory_order_release);
        }
        if (s == NULL) {
            if (counted)
                atomic_fetch_sub_explicit(&r->nseries, 1, memory_order_relaxed);
            pthread_mutex_unlock(&f->mu);
            *err = cerr != REG_OK ? cerr : REG_ENOMEM;
            return NULL;
        }
        atomic_fetch_add_explicit(&f->nseries, 1, memory_order_relaxed);
    }
    /* DEAD is only set under this lock, together with the unlink: what we found here is
     * live, so this enter cannot fail. */
    int entered = try_enter(s);
    (void)entered;
    pthread_mutex_unlock(&f->mu);
    discard(fresh); /* another thread created it first */
    return s;
}

/* Kill s under f->mu. Returns 1 when removed, 0 when busy and !wait. */
int reg_series_kill_locked(reg_registry *r, struct reg_family *f, struct reg_series *s, int wait) {
    uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        if (st & REG_ST_DEAD)
            return 0; /* cannot happen: DEAD series are never left linked */
        if (st & REG_ST_INFL_MASK) {
            if (!wait)
                return 0;
            sched_yield(); /* updaters inside never block: they leave shortly */
            st = atomic_load_explicit(&s->state, memory_order_relaxed);
            continue;
        }
        /* acq_rel: acquire pairs with every leave (we see their values); a racing enter
         * changes the word and makes this fail, so nobody is inside once it succeeds. */
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, st | REG_ST_DEAD,
                                                  memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    series_probe sp = {series_hash(s, series_seed(r, f)), s, f, NULL, NULL};
    reg_writer_enter(r);
    ck_hs_remove(&f->hs, (unsigned long)sp.hash, &sp);
    reg_writer_leave();
    /* Relaxed: the counters pair with the reserve/check in enter_series (see there). */
    atomic_fetch_sub_explicit(&f->nseries, 1, memory_order_relaxed);
    if (!(f->def.flags & REG_FAMILY_OWN))
        atomic_fetch_sub_explicit(&r->nseries, 1, memory_order_relaxed);
    /* seq_cst, before the retire: pairs with the seq_cst load in reg_cursor_resume, which
     * runs after ck_epoch_begin's full fence. Either that load sees this increment (the
     * cursor collects anew and never touches s), or the section began before s is retired
     * below, and then the reaper's ck_epoch_poll keeps s until the section ends. Before the
     * hook, too: a collection that begins once the hook has seen s go does not take a kept
     * view that still holds s. */
    atomic_fetch_add(&f->removals, 1);
    if (r->opt.on_remove)
        r->opt.on_remove(r->opt.on_remove_arg, f, s); /* value read only after the CAS */
    /* Scrapers may still hold s (and its summary state): both are freed after a grace. */
    reg_retire_series(r, s);
    return 1;
}

/* ---- updates ----------------------------------------------------------------------------- */

static void add_double(_Atomic uint64_t *p, double v) {
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    /* Relaxed is enough: leave() (release) orders this before any removal's read. */
    while (!atomic_compare_exchange_weak_explicit(p, &old, d_to_bits(bits_to_d(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static void apply_observe(const reg_family *f, struct reg_series *s, double v, uint64_t n) {
    if (f->def.type == REG_HISTOGRAM) {
        size_t lo = 0, hi = f->def.nbuckets; /* first bucket with v <= bound, or +Inf */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (v <= f->def.buckets[mid])
                hi = mid;
            else
                lo = mid + 1;
        }
        atomic_fetch_add_explicit(&reg_series_vals(s)[lo], n, memory_order_relaxed);
        add_double(&reg_series_vals(s)[f->def.nbuckets + 1], v * (double)n);
        return;
    }
    reg_summary_state *ss = (reg_summary_state *)(uintptr_t)atomic_load_explicit(
        &reg_series_vals(s)[0], memory_order_relaxed);
    uint64_t now = reg_now_mono_ns();
    pthread_mutex_lock(&ss->mu);
    /* Repeats beyond a bound add nothing to a quantile estimate but cost time. */
    uint64_t reps = n < 1000 ? n : 1000;
    for (uint64_t i = 0; i < reps; i++)
        reg_qstream_observe(ss->q, v, now);
    ss->count += n;
    ss->sum += v * (double)n;
    pthread_mutex_unlock(&ss->mu);
}

/* REG_OK when op with v (n times, for observations) suits f; else REG_EINVAL (see
 * registry.h). Cannot fail otherwise. */
static int check_op(const reg_family *f, reg_op op, double v, uint64_t n) {
    reg_type t = f->def.type;
    switch (op) {
    case REG_OP_COUNTER_ADD:
        return (t == REG_COUNTER || t == REG_UNTYPED) && v >= 0 && !isinf(v) ? REG_OK : REG_EINVAL;
    case REG_OP_GAUGE_SET:
    case REG_OP_GAUGE_ADD:
        return t == REG_GAUGE || t == REG_UNTYPED ? REG_OK : REG_EINVAL;
    case REG_OP_OBSERVE:
        return (t == REG_HISTOGRAM || t == REG_SUMMARY) && n != 0 && isfinite(v) ? REG_OK
                                                                                 : REG_EINVAL;
    case REG_OP_TOUCH:
        return REG_OK;
    }
    return REG_EINVAL;
}

/* Apply a checked op to the entered series s. Cannot fail. */
static void apply_op(const reg_family *f, struct reg_series *s, reg_op op, double v, uint64_t n) {
    switch (op) {
    case REG_OP_COUNTER_ADD:
    case REG_OP_GAUGE_ADD:
        add_double(&reg_series_vals(s)[0], v);
        break;
    case REG_OP_GAUGE_SET:
        atomic_store_explicit(&reg_series_vals(s)[0], d_to_bits(v), memory_order_relaxed);
        break;
    case REG_OP_OBSERVE:
        apply_observe(f, s, v, n);
        break;
    case REG_OP_TOUCH:
        break;
    }
}

int reg_update(reg_thread *t, reg_family *f, const char *const *values, reg_op op, double v,
               uint64_t n, reg_series_ref *ref) {
    int err = check_op(f, op, v, n);
    if (err != REG_OK)
        return err;
    struct reg_series *s = enter_series(t, f, values, ref ? &ref->removals : NULL, &err);
    if (s == NULL)
        return err;
    apply_op(f, s, op, v, n);
    leave(s);
    if (ref)
        ref->s = s;
    return REG_OK;
}

int reg_update_ref(reg_thread *t, reg_family *f, const reg_series_ref *ref, reg_op op, double v,
                   uint64_t n) {
    (void)t; /* the caller's section is what keeps ref->s allocated */
    int err = check_op(f, op, v, n);
    if (err != REG_OK)
        return err;
    /* seq_cst, after reg_begin's fence: pairs with the increment in reg_series_kill_locked,
     * as in reg_cursor_resume. Unchanged: ref->s was not retired before this section began,
     * so it is still allocated until the section ends. A series killed but not yet counted
     * is DEAD, which try_enter sees. */
    if (atomic_load(&f->removals) != ref->removals || !try_enter(ref->s))
        return REG_ESTALE;
    apply_op(f, ref->s, op, v, n);
    leave(ref->s);
    return REG_OK;
}

int reg_counter_add(reg_thread *t, reg_family *f, const char *const *values, double v) {
    return reg_update(t, f, values, REG_OP_COUNTER_ADD, v, 1, NULL);
}

int reg_gauge_set(reg_thread *t, reg_family *f, const char *const *values, double v) {
    return reg_update(t, f, values, REG_OP_GAUGE_SET, v, 1, NULL);
}

int reg_gauge_add(reg_thread *t, reg_family *f, const char *const *values, double v) {
    return reg_update(t, f, values, REG_OP_GAUGE_ADD, v, 1, NULL);
}

int reg_observe_n(reg_thread *t, reg_family *f, const char *const *values, double v,
                  uint64_t count) {
    return reg_update(t, f, values, REG_OP_OBSERVE, v, count, NULL);
}

int reg_observe(reg_thread *t, reg_family *f, const char *const *values, double v) {
    return reg_observe_n(t, f, values, v, 1);
}

int reg_touch(reg_thread *t, reg_family *f, const char *const *values) {
    return reg_update(t, f, values, REG_OP_TOUCH, 0, 0, NULL);
}

int reg_series_delete(reg_registry *r, reg_family *f, const char *const *values) {
    size_t lens[REG_MAX_LABELS];
    series_probe sp;
    if (probe_init(&sp, r, f, values, lens) != 0)
        return REG_ENOTFOUND;
    pthread_mutex_lock(&f->mu);
    struct reg_series *s = reg_series_untag(ck_hs_get(&f->hs, (unsigned long)sp.hash, &sp));
    int rc = s && reg_series_kill_locked(r, f, s, 1) ? REG_OK : REG_ENOTFOUND;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void (*reg_test_between_looks)(struct reg_family *f);
void (*reg_test_after_publish)(struct reg_family *f);
void (*reg_test_before_walk)(struct reg_family *f);
void (*reg_test_view_extended)(struct reg_family *f);

/* ---- snapshots and accessors ------------------------------------------------------------- */

/* LSD radix sort of pointers by address within 4 GiB, lo and hi the lowest and highest.
 * Each pointer becomes its 32-bit offset from lo, in the first half of the array's own
 * storage, and the passes go between its two halves: no scratch array, whose fresh pages cost
 * more than the sort (a page fault per 4 KiB, every scrape), and half the bytes moved a pass.
 * Only the bits in which the addresses differ are sorted, less their 4 low bits (series lie at
 * least 16 bytes apart), in as few passes of at most 11 bits as cover them: series allocated
 * together span a few megabytes, two passes. Cannot fail. */
static void sort_window(reg_series **v, size_t n, uintptr_t lo, uintptr_t hi) {
    enum { MAX_BITS = 11, LOW = 4 }; /* at most 3 passes: 3 * 11 >= 32 - LOW */
    if (n < 2 || n > UINT32_MAX)
        return;
    unsigned bits = 0;
    for (uintptr_t span = (hi - lo) >> LOW; span != 0; span >>= 1)
        bits++;
    unsigned passes = (bits + MAX_BITS - 1) / MAX_BITS;
    if (passes == 0)
        return;
    unsigned width = (bits + passes - 1) / passes; /* even passes: smaller count tables */
    uint32_t mask = ((uint32_t)1 << width) - 1;
    /* Every pass's counts in the one read that makes the offsets (a second pass that is not
     * run counts for nothing). In place, by memcpy (the storage changes type): offset i's 4
     * bytes lie within pointers 0..i, already read. */
    uint32_t count[3][1 << MAX_BITS] = {{0}};
    char *raw = (char *)v;
    for (size_t i = 0; i < n; i++) {
        uintptr_t a;
        memcpy(&a, raw + i * sizeof a, sizeof a);
        uint32_t off = (uint32_t)(a - lo);
        memcpy(raw + i * sizeof off, &off, sizeof off);
        count[0][(off >> LOW) & mask]++;
        count[1][(off >> (LOW + width)) & mask]++;
        if (passes > 2)
            count[2][(off >> (LOW + 2 * width)) & mask]++;
    }
    uint32_t *src = (uint32_t *)(void *)raw, *dst = src + n;
    for (unsigned pass = 0; pass < passes; pass++) {
        uint32_t *c = count[pass], sum = 0;
        for (size_t d = 0; d <= mask; d++) {
            uint32_t k = c[d];
            c[d] = sum;
            sum += k;
        }
        unsigned shift = LOW + pass * width;
        for (size_t i = 0; i < n; i++)
            dst[c[(src[i] >> shift) & mask]++] = src[i];
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    /* Back to pointers, in the order that reads each offset before its bytes are written:
     * from the end when the result is in the first half, from the start in the second. */
    int first_half = src == (uint32_t *)(void *)raw;
    for (size_t k = 0; k < n; k++) {
        size_t i = first_half ? n - 1 - k : k;
        uintptr_t a = lo + src[i];
        memcpy(raw + i * sizeof a, &a, sizeof a);
    }
}

/* Sort v by address, lo and hi the lowest and highest (found while collecting, where the
 * loop waits on ck_hs anyway: a pass of their own took 0.1 ms at 100,000 series). Addresses
 * spread over more than 4 GiB (series from slabs and big ones from malloc's heap) are sorted a
 * window at a time: those within 4 GiB of the lowest are moved to the front and sorted, then
 * the rest the same way, every window however small, so that the whole is in address order (a
 * view's segments and its merge with the creation log rely on it). Fewer than SORT_MIN series
 * are left alone: they fit in cache anyway. Cannot fail. */
static void sort_by_address(reg_series **v, size_t n, uintptr_t lo, uintptr_t hi) {
    if (n < SORT_MIN)
        return;
    while (n > 0 && hi - lo > UINT32_MAX) {
        uintptr_t top = lo + UINT32_MAX, win_hi = lo, rest_lo = UINTPTR_MAX;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            reg_series *x = v[i];
            uintptr_t a = (uintptr_t)x;
            if (a <= top) {
                v[i] = v[k];
                v[k++] = x;
                win_hi = a > win_hi ? a : win_hi;
            } else {
                rest_lo = a < rest_lo ? a : rest_lo;
            }
        }
        sort_window(v, k, lo, win_hi);
        v += k;
        n -= k;
        lo = rest_lo;
    }
    sort_window(v, n, lo, hi);
}

/* ---- views: the last collection, kept ---------------------------------------------------
 *
 * A scrape of a large family spent a third of its render walking the hash set (a branch per
 * slot) and sorting what it found, every time, though between two scrapes most families gain
 * and lose no series. So the result of a clean collection (no removal during it) of SORT_MIN
 * series or more is kept with the family as 4-byte offsets (from the lowest address of their
 * segment, below), sorted, and with the family's removals and creations as read before the walk
 * that made it. A later collection that reads the same two counts takes the view instead of
 * walking: the same series, in the same order. 4 bytes a series, for families that are collected
 * (scraped). Collectors of one family may run at once: one takes the view (by exchange), the others
 * walk, and the first to give one back keeps it.
 *
 * Why a view whose counts match holds what a walk now would: removals unchanged means no
 * series was unlinked since the walk (a kill counts itself after the unlink and before its
 * hook and its retire, so none of the kept series can be freed before this section ends: the
 * argument of reg_cursor_resume; one whose kill is under way may be kept, as a walk may keep
 * it). The creation count is bumped twice, odd from just before a publish until just after
 * it, and a view is kept only from a walk that read it even: so no creation was under way
 * when the walk began, and an equal count now means none has begun since. Every series in the
 * set now was therefore published before that walk and seen by it; in particular one that
 * another thread has already found and updated, which a scrape that begins after that update
 * must show (a single count, bumped after the publish only, let a view miss it).
 *
 * A family that gains series between scrapes would walk every time. So every creation in a
 * family of SORT_MIN series or more also logs its series, at its creation number, in a ring of
 * the last REG_CREATION_LOG (under mu, with the publish). A collection whose view's counts do
 * not match brings the view up to date instead of walking, if it gets mu at once (it never
 * waits for it): under mu no creation or removal is under way, so the counts it reads there
 * are exact, and if the removals still match, the family's series are the view's plus those
 * the log holds for the creations since the view's count, and none has been freed (nor can be
 * before this section ends, as above). The walk that made the view may have seen some of those
 * too, created while it ran: the two sorted lists are merged, and a series in both is kept
 * once. The merged list is exactly the set as it was under mu, and becomes the view with the
 * counts read there. More creations since than the log holds, a removal, a busy mu or a log
 * that began after the view's count: the collection walks.
 *
 * Series may lie more than 4 GiB apart (one over 1 KiB comes from malloc's heap, far from
 * the slabs), so the sorted offsets are cut into segments, each spanning at most 4 GiB and
 * counted from its own first series; a family that needs more than VIEW_SEGMENTS keeps no
 * view. */
#define VIEW_SEGMENTS 4
typedef struct {
    uintptr_t base; /* the segment's first (lowest) series address */
    size_t end;     /* its offsets are off[the previous segment's end .. end) */
} view_segment;

typedef struct reg_view {
    uint64_t removals, creations; /* the family's counts, read before the walk */
    size_t n, cap;                /* offsets kept, room for */
    size_t nseg;                  /* segments used */
    int ascending;                /* every series above the one before (a merge needs it) */
    view_segment seg[VIEW_SEGMENTS];
    uint32_t off[]; /* series i is at its segment's base + off[i] */
} reg_view;

/* The family's view, taken (NULL when there is none, or another collector has it). Acquire:
 * pairs with the release in view_keep, so the view's contents are seen whole. Cannot fail. */
static reg_view *view_take(reg_family *f) {
    return atomic_exchange_explicit(&f->view, NULL, memory_order_acquire);
}

/* Give v (or NULL) back to the family; freed when another collector kept one meanwhile.
 * Release: pairs with the acquire in view_take. Cannot fail. */
static void view_keep(reg_family *f, reg_view *v) {
    reg_view *none = NULL;
    if (v != NULL && !atomic_compare_exchange_strong_explicit(
                         &f->view, &none, v, memory_order_release, memory_order_relaxed))
        free(v);
}

/* Grow the caller's collection array *out (*cap entries) to at least need entries. 0, or -1
 * when out of memory (the array unchanged). */
static int collection_reserve(reg_series ***out, size_t *cap, size_t need) {
    if (*cap >= need)
        return 0;
    reg_series **nv = realloc(*out, need * sizeof *nv);
    if (nv == NULL)
        return -1;
    *out = nv;
    *cap = need;
    return 0;
}

/* Series i of v, *seg the segment that held series i - 1 (0 before the first), moved on to
 * the one that holds series i: called for i = 0, 1, ... in turn. Cannot fail. */
static inline reg_series *view_series(const reg_view *v, size_t *seg, size_t i) {
    while (i >= v->seg[*seg].end) /* the last segment ends at v->n */
        ++*seg;
    reg_series *x = (reg_series *)(v->seg[*seg].base + v->off[i]);
    REG_TSAN_ACQUIRE(x); /* pairs with the release before ck_hs_put_unique */
    return x;
}

/* Cut the n series s, in their order, into seg[]: runs each within 4 GiB above their first
 * series (in address order, as sort_by_address leaves a large collection, a run ends only
 * where the addresses jump by more than 4 GiB). The number of segments, or 0 when they would
 * be more than VIEW_SEGMENTS. Cannot fail. */
static size_t view_segments(view_segment *seg, reg_series *const *s, size_t n) {
    size_t nseg = 0;
    for (size_t i = 0; i < n; nseg++) {
        if (nseg == VIEW_SEGMENTS)
            return 0;
        uintptr_t base = (uintptr_t)s[i];
        while (i < n && (uintptr_t)s[i] - base <= UINT32_MAX)
            i++;
        seg[nseg] = (view_segment){base, i};
    }
    return nseg;
}

/* A view of the n sorted series s made with the counts read before their walk, in old's
 * memory when it has room and is not four times too big (old is freed otherwise). NULL when
 * none is kept: too few series, spread over more than VIEW_SEGMENTS spans of 4 GiB, or out of
 * memory. */
static reg_view *view_make(reg_view *old, reg_series *const *s, size_t n, uint64_t removals,
                           uint64_t creations) {
    view_segment seg[VIEW_SEGMENTS];
    size_t nseg = n < SORT_MIN ? 0 : view_segments(seg, s, n);
    if (nseg == 0) {
        free(old);
        return NULL;
    }
    reg_view *v = old;
    if (v == NULL || v->cap < n || v->cap / 4 > n) { /* a family that shrank: smaller */
        free(old);
        size_t room = n + n / 8; /* a family that grows a little between scrapes */
        v = malloc(sizeof *v + room * sizeof v->off[0]);
        if (v == NULL)
            return NULL;
        v->cap = room;
    }
    memcpy(v->seg, seg, nseg * sizeof *seg);
    v->nseg = nseg;
    v->removals = removals;
    v->creations = creations;
    v->n = n;
    v->ascending = 1;
    size_t i = 0;
    for (size_t k = 0; k < v->nseg; k++)
        for (; i < v->seg[k].end; i++) {
            v->off[i] = (uint32_t)((uintptr_t)s[i] - v->seg[k].base);
            v->ascending &= i == 0 || (uintptr_t)s[i - 1] < (uintptr_t)s[i];
        }
    return v;
}

#define VIEW_STALE (-2) /* view_extend: the view cannot be brought up to date */

/* Sort the n series v by address (n is at most REG_CREATION_LOG). Cannot fail. */
static void sort_few(reg_series **v, size_t n) {
    for (size_t i = 1; i < n; i++) {
        reg_series *x = v[i];
        size_t j = i;
        for (; j > 0 && (uintptr_t)v[j - 1] > (uintptr_t)x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
}

/* *out (grown to fit): v's series merged with the n ascending series fresh, a series in both
 * once (v ascending when n > 0); with n = 0 (fresh may be NULL), a copy of v. Their count, or
 * -1 when out of memory. Cannot fail otherwise. */
static long view_merge(const reg_view *v, reg_series *const *fresh, size_t n, reg_series ***out,
                       size_t *cap) {
    if (collection_reserve(out, cap, v->n + n) != 0)
        return -1;
    reg_series **dst = *out;
    size_t m = 0, j = 0, seg = 0;
    for (size_t i = 0; i < v->n; i++) {
        reg_series *x = view_series(v, &seg, i);
        for (; j < n && (uintptr_t)fresh[j] < (uintptr_t)x; j++)
            dst[m++] = fresh[j];
        j += j < n && fresh[j] == x; /* created during the walk that made v: seen there */
        dst[m++] = x;
    }
    while (j < n)
        dst[m++] = fresh[j++];
    return (long)m;
}

/* Bring *view up to date from f's creation log, into *out (grown to fit) and *view (remade, or
 * NULL): f's series as they are, the view's plus those created since. Inside a section. Their
 * count; -1 when out of memory; VIEW_STALE when the caller must walk: f->mu busy (never waited
 * for), a removal since the view's walk began, creations since that the log does not hold,
 * or a view not in ascending order (which the merge needs). */
static long view_extend(reg_family *f, reg_view **view, reg_series ***out, size_t *cap) {
    reg_view *v = *view;
    reg_series *fresh[REG_CREATION_LOG];
    size_t n = 0;
    if (!v->ascending || pthread_mutex_trylock(&f->mu) != 0)
        return VIEW_STALE;
    /* Relaxed: both change only under mu, which orders them (and the log) for this reader;
     * held, no creation or removal is under way. */
    uint64_t removals = atomic_load_explicit(&f->removals, memory_order_relaxed);
    uint64_t creations = atomic_load_explicit(&f->creations, memory_order_relaxed);
    uint64_t from = v->creations / 2, to = creations / 2;
    /* from >= log_from: the log began before the view's count. It begins with the creation
     * of a family's 4,096th series, which any view's walk has seen; so this fails only when
     * the log could not be allocated at first (a creation the log missed). */
    int held = f->log != NULL && removals == v->removals && from >= f->log_from &&
               to - from <= REG_CREATION_LOG;
    for (uint64_t i = from; held && i < to; i++)
        if ((fresh[n] = f->log[i % REG_CREATION_LOG]) != NULL)
            n++;
    pthread_mutex_unlock(&f->mu);
    if (!held)
        return VIEW_STALE;
    sort_few(fresh, n);
    long m = view_merge(v, fresh, n, out, cap);
    if (m >= 0)
        *view = view_make(v, *out, (size_t)m, removals, creations);
    if (m >= 0 && reg_test_view_extended)
        reg_test_view_extended(f);
    return m;
}

void reg_family_view_free(reg_family *f) {
    free(atomic_load_explicit(&f->view, memory_order_relaxed));
    free(f->log);
}

long reg_family_collect(reg_thread *t, reg_family *f, reg_series ***out, size_t *cap) {
    (void)t;
    /* seq_cst: pairs with the increment in reg_series_kill_locked, like the one after the
     * first look; a removal finished before this load left no series in the set to collect. */
    uint64_t removals = atomic_load(&f->removals);
    /* Acquire: pairs with the release increment after each publish (see views). */
    uint64_t creations = atomic_load_explicit(&f->creations, memory_order_acquire);
    reg_view *view = view_take(f);
    if (view != NULL && view->removals == removals) {
        long n = view->creations == creations ? view_merge(view, NULL, 0, out, cap)
                                              : view_extend(f, &view, out, cap);
        if (n != VIEW_STALE) {
            view_keep(f, view);
            return n;
        }
    }
    size_t n = 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    /* Room for the series counted now and a few created during the walk, in one allocation
     * rather than a doubling at a time (each copying what is collected so far). Relaxed: a
     * size hint; the walk grows the array further when needed. */
    size_t expect = atomic_load_explicit(&f->nseries, memory_order_relaxed) + 64;
    if (collection_reserve(out, cap, expect) != 0) {
        view_keep(f, view);
        return -1;
    }
    if (reg_test_before_walk)
        reg_test_before_walk(f);
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *obj;
    /* First collect every reachable series without touching it (no cache miss per entry)... */
    while (ck_hs_next_spmc(&f->hs, &it, &obj)) {
        if (n == *cap && collection_reserve(out, cap, n ? 2 * n : 256) != 0) {
            view_keep(f, view);
            return -1;
        }
        reg_series *x = reg_series_untag(obj);
        REG_TSAN_ACQUIRE(x); /* pairs with the release before ck_hs_put_unique */
        (*out)[n++] = x;
        lo = (uintptr_t)x < lo ? (uintptr_t)x : lo;
        hi = (uintptr_t)x > hi ? (uintptr_t)x : hi;
    }
    /* Visit them in address order from here on: series created together sit together, so the
     * second look and the caller's rendering walk memory (and pages) mostly in sequence
     * instead of in hash order, one cache and TLB miss per series. */
    sort_by_address(*out, n, lo, hi);
    if (reg_test_between_looks)
        reg_test_between_looks(f);
    /* No removal finished during the first look: no series was re-created during it either
     * (a twin is linked under f->mu only after its predecessor's kill counted itself), so no
     * label set was collected twice, and the second look, a cache miss per series, is skipped.
     * A series whose kill is under way may be kept, as if killed just after this look: it is
     * retired only after the kill counts itself, which a cursor's resume sees. seq_cst: pairs
     * with that increment. */
    if (atomic_load(&f->removals) == removals) {
        /* Odd: a creation was under way, and the walk may have missed its series. */
        view_keep(f, creations % 2 == 0 ? view_make(view, *out, n, removals, creations) : view);
        return (long)n;
    }
    view_keep(f, view); /* stale, but its memory serves the next view */
    /* ...else the second look: drop those DEAD now. A series reaped and re-created during the
     * collection was collected twice (old and new); the old one is DEAD by now, since the new
     * one only exists after it, so no label set is kept twice. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 8 < n)
            __builtin_prefetch((*out)[i + 8]); /* where allocation order is not enough */
        reg_series *s = (*out)[i];
        if (!(atomic_load_explicit(&s->state, memory_order_acquire) & REG_ST_DEAD))
            (*out)[m++] = s;
    }
    return (long)m;
}

/* ---- cursors ----------------------------------------------------------------------------- */

/* A slot holds a series until it is handed out and paused over, then the series' label hash:
 * after the section ends the series may be freed, its identity must outlive it. */
union reg_cursor_slot {
    reg_series *s;
    uint64_t hash;
};
_Static_assert(sizeof(union reg_cursor_slot) == sizeof(reg_series *),
               "slots are collected as series pointers");

int reg_cursor_open(reg_thread *t, reg_cursor *c, reg_family *f) {
    memset(c, 0, sizeof *c);
    /* Relaxed: dead only short-cuts a family already unlinked; the hold is what keeps f. */
    if (atomic_load_explicit(&f->dead, memory_order_relaxed) || reg_family_hold(f) != REG_OK)
        return REG_EGONE;
    c->f = f;
    /* seq_cst: pairs with the increment in reg_series_kill_locked (see there). Read before
     * collecting: a removal during the collection is then seen by the next resume. */
    c->removals = atomic_load(&f->removals);
    reg_series **v = NULL;
    long n = reg_family_collect(t, f, &v, &c->cap);
    if (n < 0) {
        free(v);
        reg_family_release(t->reg, f);
        memset(c, 0, sizeof *c);
        return REG_ENOMEM;
    }
    c->v = (union reg_cursor_slot *)(void *)v;
    c->n = (size_t)n;
    /* Acquire: a series the second look dropped as DEAD was killed after dead was set (both
     * under f->mu); its DEAD CAS (release) pairs with the second look's acquire, so if the
     * family's removal thinned the collection, this load sees dead. The caller then renders
     * the family that replaced it rather than a part of this one. */
    if (atomic_load_explicit(&f->dead, memory_order_acquire)) {
        reg_cursor_close(t->reg, c);
        return REG_EGONE;
    }
    return REG_OK;
}

size_t reg_cursor_view(const reg_cursor *c, reg_series *const **out) {
    *out = c->pos < c->n ? &c->v[c->pos].s : NULL;
    return c->n - c->pos;
}

void reg_cursor_consume(reg_cursor *c, size_t k) {
    c->pos += k < c->n - c->pos ? k : c->n - c->pos;
}

/* What a cursor remembers of a series it handed out: a hash of its key, which is the same for
 * every series of one label set (the values are stored one way). Not series_hash: this runs
 * for every series of a scrape, and one pass over the key costs less than one per value.
 * Cannot fail. */
static uint64_t cursor_id(const reg_family *f, const struct reg_series *s) {
    return reg_hash_bytes(s->key, s->klen, series_seed(f->reg, f)); /* seeded: see probe_init */
}

void reg_cursor_pause(reg_cursor *c) {
    for (size_t i = c->hashed; i < c->pos; i++)
        c->v[i].hash = cursor_id(c->f, c->v[i].s);
    c->hashed = c->pos;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* REG_OK or REG_ENOMEM (the cursor unchanged). */
int reg_cursor_resume(reg_thread *t, reg_cursor *c) {
    assert(c->hashed == c->pos); /* paused before the last section ended */
    if (c->f == NULL)
        return REG_OK;
    /* seq_cst, after reg_begin's fence: pairs with the increment in reg_series_kill_locked.
     * Unchanged: no series of the family was retired before this section began, so every
     * pointer in the view is still allocated (and DEAD ones were dropped when collected;
     * a series that dies from now on is freed only after this section). */
    uint64_t now = atomic_load(&c->f->removals);
    if (now == c->removals)
        return REG_OK;
    /* Collect anew into a fresh array that keeps the hashes handed out in front. */
    reg_series **fresh = NULL;
    size_t fresh_cap = 0;
    long m = reg_family_collect(t, c->f, &fresh, &fresh_cap);
    union reg_cursor_slot *nv = m < 0 ? NULL : malloc((c->hashed + (size_t)m + 1) * sizeof *nv);
    if (nv == NULL) {
        free(fresh);
        return REG_ENOMEM;
    }
    uint64_t *done = &c->v[0].hash;
    qsort(done, c->hashed, sizeof *done, cmp_u64);
    memcpy(nv, c->v, c->hashed * sizeof *nv);
    size_t n = c->hashed;
    for (long i = 0; i < m; i++) {
        uint64_t h = cursor_id(c->f, fresh[i]);
        if (!bsearch(&h, done, c->hashed, sizeof *done, cmp_u64))
            nv[n++].s = fresh[i];
    }
    free(fresh);
    free(c->v);
    c->v = nv;
    c->cap = c->hashed + (size_t)m + 1;
    c->n = n;
    c->pos = c->hashed;
    c->removals = now;
    return REG_OK;
}

void reg_cursor_close(reg_registry *r, reg_cursor *c) {
    if (c->f)
        reg_family_release(r, c->f);
    free(c->v);
    memset(c, 0, sizeof *c);
}

/* The length of the label text of s in family f. Cannot fail. */
static size_t labels_len(const reg_family *f, const struct reg_series *s) {
    if (!(s->flags & REG_SF_GENERAL))
        return f->lpre_total + s->klen; /* each value's length byte becomes its closing quote */
    size_t text = f->lpre_total;
    for (const char *p = s->key, *end = s->key + s->klen; p < end;) {
        size_t n = key_get_len(&p);
        text += n + escapes_in(p, n) + 1;
        p += n;
    }
    return text;
}

size_t reg_series_labels(const reg_family *f, const reg_series *s, char *out, size_t cap) {
    size_t len = labels_len(f, s);
    if (len > cap)
        return len;
    /* In locals: the writes through out could alias them, so the compiler would reload each
     * one for every label. */
    char *const *pre = f->lpre;
    const uint16_t *pre_len = f->lpre_len;
    size_t nlabels = f->def.nlabels;
    int general = s->flags & REG_SF_GENERAL;
    const char *p = s->key;
    for (size_t i = 0; i < nlabels; i++) {
        out = reg_copy_short(out, pre[i], pre_len[i]);
        size_t n = key_get_len(&p);
        if (general)
            out += reg_escape_label_value(p, n, out);
        else
            out = reg_copy_short(out, p, n);
        *out++ = '"';
        p += n;
    }
    return len;
}

size_t reg_series_footprint(const reg_family *f, const reg_series *s) {
    size_t size = reg_series_vals_off(s->klen) + f->nvals * sizeof(uint64_t);
    return s->flags & REG_SF_HEAP ? size : reg_slab_block_size(size);
}

long reg_series_label_value(const reg_series *s, size_t i, char *buf, size_t bufsz) {
    const char *p = s->key, *end = s->key + s->klen;
    for (size_t k = 0; p < end; k++) {
        size_t n = key_get_len(&p);
        if (k == i) {
            if (n + 1 > bufsz)
                return -1;
            memcpy(buf, p, n);
            buf[n] = '\0';
            return (long)n;
        }
        p += n;
    }
    return -1;
}

/* Value reads are relaxed: a scrape shows some recent value of each word; nothing else is
 * read through them. The removal hook reads after the DEAD CAS, whose acquire pairs with
 * every updater's release leave, so it sees the final value. */
double reg_series_value(const reg_series *s) {
    return bits_to_d(atomic_load_explicit(reg_series_vals(s), memory_order_relaxed));
}

void reg_series_histogram(const reg_series *s, const reg_family *f, uint64_t *cum, double *sum) {
    _Atomic uint64_t *v = reg_series_vals(s);
    uint64_t acc = 0;
    /* Buckets are stored per interval and summed here, so the cumulative counts are
     * non-decreasing and cum[nbuckets] (+Inf) equals the count in every snapshot. */
    for (size_t i = 0; i <= f->def.nbuckets; i++) {
        acc += atomic_load_explicit(&v[i], memory_order_relaxed);
        cum[i] = acc;
    }
    *sum = bits_to_d(atomic_load_explicit(&v[f->def.nbuckets + 1], memory_order_relaxed));
}

void reg_series_summary(const reg_series *s, const reg_family *f, double *q, uint64_t *count,
                        double *sum) {
    (void)f;
    reg_summary_state *ss = (reg_summary_state *)(uintptr_t)atomic_load_explicit(
        reg_series_vals(s), memory_order_relaxed);
    pthread_mutex_lock(&ss->mu);
    reg_qstream_query(ss->q, reg_now_mono_ns(), q);
    *count = ss->count;
    *sum = ss->sum;
    pthread_mutex_unlock(&ss->mu);
}

double reg_series_created(const reg_series *s) {
    return s->created;
}

/* ---- snapshots ----------------------------------------------------------------------------- */

/* The state is set with plain relaxed stores inside enter/leave: restoring replaces a value,
 * it does not merge, which is why loads run at start-up (reg_snapshot_load). */
int reg_series_restore(reg_thread *t, reg_family *f, const char *const *values,
                       const reg_series_state *st) {
    int err = REG_OK;
    struct reg_series *s = enter_series(t, f, values, NULL, &err);
    if (s == NULL) {
        reg_qstream_destroy(st->q);
        return err;
    }
    /* Not atomic: nothing reads created before the start-up load ends (no scrape yet). */
    s->created = st->created;
    _Atomic uint64_t *v = reg_series_vals(s);
    if (f->def.type == REG_HISTOGRAM) {
        for (size_t i = 0; i <= f->def.nbuckets; i++)
            atomic_store_explicit(&v[i], st->buckets[i], memory_order_relaxed);
        atomic_store_explicit(&v[f->def.nbuckets + 1], d_to_bits(st->sum), memory_order_relaxed);
    } else if (f->def.type == REG_SUMMARY) {
        reg_summary_state *ss =
            (reg_summary_state *)(uintptr_t)atomic_load_explicit(&v[0], memory_order_relaxed);
        pthread_mutex_lock(&ss->mu);
        reg_qstream_destroy(ss->q);
        ss->q = st->q;
        ss->count = st->count;
        ss->sum = st->sum;
        pthread_mutex_unlock(&ss->mu);
    } else {
        atomic_store_explicit(&v[0], d_to_bits(st->value), memory_order_relaxed);
    }
    leave(s); /* release: pairs with a later removal's DEAD CAS, as for any update */
    return REG_OK;
}

void reg_series_summary_encode(const reg_series *s, reg_snapshot *w, int64_t wall_offset_ns) {
    reg_summary_state *ss = (reg_summary_state *)(uintptr_t)atomic_load_explicit(
        reg_series_vals(s), memory_order_relaxed);
    pthread_mutex_lock(&ss->mu);
    reg_snapshot_put_u64(w, ss->count);
    reg_snapshot_put_f64(w, ss->sum);
    reg_qstream_encode(ss->q, w, wall_offset_ns);
    pthread_mutex_unlock(&ss->mu);
}
