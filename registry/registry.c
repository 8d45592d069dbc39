/* registry.c - registry lifecycle, reader handles, epoch reclamation and the reaper.
 *
 * Everything unlinked from a hash set (series, families, ck_hs slot arrays) is put, by
 * whichever thread unlinked it, on the registry's retire list (a mutex: retiring is rare,
 * and ThreadSanitizer sees mutexes, not ck's inline-assembly stack). The reaper alone
 * moves what it pops into its own epoch record with ck_epoch_call (an owner-only call) and
 * then runs ck_epoch_poll, which frees an entry once every section that could hold it has
 * ended. Producers never touch the record: ck_epoch_poll may free everything pending when it
 * finds no reader active, which is only sound if nothing is added to the record between its
 * scan and its dispatch. Polling never waits: a reader stalled inside a section (a slow
 * scrape client) delays frees, never TTL expiry.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

/* The address TSan synchronises reg_end with the deferred frees on (annotations only). */
char reg_tsan_epoch;

/* ---- small utilities --------------------------------------------------------------------- */

/* The public face of reg_hash_inline (internal.h). Cannot fail. */
uint64_t reg_hash_bytes(const void *p, size_t n, uint64_t seed) {
    return reg_hash_inline(p, n, seed);
}

/* Whole lines, zeroed (internal.h). NULL when out of memory. */
void *reg_alloc_lines(size_t size) {
    size_t n = (size + REG_LINE - 1) / REG_LINE * REG_LINE;
    void *p = aligned_alloc(REG_LINE, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

/* Monotonic nanoseconds. Cannot fail. */
uint64_t reg_now_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Wall-clock seconds. Cannot fail. */
double reg_now_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *reg_strerror(int err) {
    switch (err) {
    case REG_OK:
        return "ok";
    case REG_ENOMEM:
        return "out of memory";
    case REG_EINVAL:
        return "invalid argument";
    case REG_ELIMIT:
        return "series limit reached";
    case REG_ECONFLICT:
        return "conflicting family definition";
    case REG_ENOTFOUND:
        return "not found";
    case REG_EGONE:
        return "family removed";
    case REG_ESTALE:
        return "remembered series removed";
    }
    return "unknown error";
}

const char *reg_type_name(reg_type t) {
    static const char *const names[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    return (unsigned)t <= REG_UNTYPED ? names[t] : "untyped";
}

/* ---- ck_hs allocator: slot arrays are retired, not freed, when ck_hs defers -------------- */

/* ck_malloc callbacks carry no context. ck_hs frees (deferred) only inside a mutating call,
 * and every mutating call runs under a set mutex between reg_writer_enter/leave, which
 * record the registry here for the calling thread. */
static _Thread_local reg_registry *tls_writer_reg;

/* Queue an unlinked entry for a deferred free. Any thread; cannot fail. */
void reg_retire(reg_registry *r, ck_epoch_entry_t *e, ck_epoch_cb_t *fn) {
    e->function = fn;
    pthread_mutex_lock(&r->retire_mu);
    e->stack_entry.next = r->retired;
    r->retired = &e->stack_entry;
    pthread_mutex_unlock(&r->retire_mu);
}

static void *hs_malloc(size_t n) {
    reg_block *b = malloc(sizeof(reg_block) + n);
    return b ? (void *)(b + 1) : NULL;
}

/* Every deferred free runs here or in the two callbacks below, after a grace period. */
static void free_block_cb(ck_epoch_entry_t *e) {
    REG_TSAN_ACQUIRE(&reg_tsan_epoch); /* pairs with the release in reg_end */
    free(e);                           /* the entry is the block's header */
}

static void hs_free(void *p, size_t n, bool defer) {
    (void)n;
    if (p == NULL)
        return;
    reg_block *b = (reg_block *)p - 1;
    reg_registry *r = tls_writer_reg;
    if (!defer || r == NULL) {
        free(b);
        return;
    }
    reg_retire(r, &b->epoch_entry, free_block_cb);
}

/* ck_hs does not resize through realloc today; this keeps the allocator's contract should a
 * later ck use it. With defer, readers may still probe the old block: copy into a new one and
 * retire the old. Returns NULL when out of memory, the old block then untouched and still
 * the caller's (as with realloc). */
static void *hs_realloc(void *p, size_t old, size_t n, bool defer) {
    if (p == NULL)
        return hs_malloc(n);
    if (!defer || tls_writer_reg == NULL) {
        reg_block *b = realloc((reg_block *)p - 1, sizeof(reg_block) + n);
        return b ? (void *)(b + 1) : NULL;
    }
    void *q = hs_malloc(n);
    if (q == NULL)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    hs_free(p, old, true);
    return q;
}

/* Initialise a hash set with the registry's allocator in single-writer mode; ck_hs hands seed
 * to hf. False when out of memory. */
bool reg_hs_init(reg_registry *r, ck_hs_t *hs, ck_hs_hash_cb_t *hf, ck_hs_compare_cb_t *cmp,
                 unsigned long capacity, uint64_t seed) {
    return ck_hs_init(hs, CK_HS_MODE_SPMC | CK_HS_MODE_OBJECT, hf, cmp, &r->alloc, capacity,
                      (unsigned long)seed);
}

/* Cannot fail. */
void reg_writer_enter(reg_registry *r) {
    tls_writer_reg = r;
}
void reg_writer_leave(void) {
    tls_writer_reg = NULL;
}

/* ---- retire and reclaim ------------------------------------------------------------------ */

/* Series retired before one adoption, freed together after one grace period: the epoch
 * entry lives here rather than in every series. */
typedef struct {
    ck_epoch_entry_t epoch_entry;
    struct reg_series *head; /* linked through retired_next */
} series_batch;

/* Free a list of unlinked series no reader can reach. Cannot fail. */
static void free_series_list(struct reg_series *s) {
    while (s != NULL) {
        struct reg_series *next = s->retired_next;
        reg_series_free_now(s);
        s = next;
    }
}

static void free_series_cb(ck_epoch_entry_t *e) {
    REG_TSAN_ACQUIRE(&reg_tsan_epoch); /* pairs with the release in reg_end */
    series_batch *b = (series_batch *)((char *)e - offsetof(series_batch, epoch_entry));
    free_series_list(b->head);
    free(b);
}

static void free_family_cb(ck_epoch_entry_t *e) {
    REG_TSAN_ACQUIRE(&reg_tsan_epoch);
    reg_family_free_now(
        (struct reg_family *)((char *)e - offsetof(struct reg_family, epoch_entry)));
}

/* Called with the series already unlinked (its reap fields are no longer used, and hold the
 * link now). Any thread; cannot fail. */
void reg_retire_series(reg_registry *r, struct reg_series *s) {
    pthread_mutex_lock(&r->retire_mu);
    s->retired_next = r->retired_series;
    r->retired_series = s;
    pthread_mutex_unlock(&r->retire_mu);
}

/* Called once the family is unlinked and its last hold is released. Any thread; cannot fail. */
void reg_retire_family(reg_registry *r, struct reg_family *f) {
    reg_retire(r, &f->epoch_entry, free_family_cb);
}

/* Move everything retired so far into the reaper's record (ck_epoch_call tags each entry
 * with the current epoch, which is after its unlink). Called under reap_mu only. */
static void adopt_retired(reg_registry *r) {
    pthread_mutex_lock(&r->retire_mu);
    ck_stack_entry_t *cur = r->retired, *next;
    r->retired = NULL;
    struct reg_series *series = r->retired_series;
    r->retired_series = NULL;
    pthread_mutex_unlock(&r->retire_mu);
    /* Every series on the list was unlinked before it was pushed, so before this call: the
     * batch's epoch is after all of their unlinks, as a call per series would be. */
    series_batch *b = series != NULL ? malloc(sizeof *b) : NULL;
    if (b != NULL) {
        b->head = series;
        ck_epoch_call(&r->reaper->rec, &b->epoch_entry, free_series_cb);
    } else if (series != NULL) {
        /* Out of memory: put them back for the next pass (or reg_destroy). Cannot fail. */
        struct reg_series *tail = series;
        while (tail->retired_next != NULL)
            tail = tail->retired_next;
        pthread_mutex_lock(&r->retire_mu);
        tail->retired_next = r->retired_series;
        r->retired_series = series;
        pthread_mutex_unlock(&r->retire_mu);
    }
    for (; cur != NULL; cur = next) {
        next = cur->next;
        ck_epoch_entry_t *e =
            (ck_epoch_entry_t *)((char *)cur - offsetof(ck_epoch_entry_t, stack_entry));
        ck_epoch_call(&r->reaper->rec, e, e->function);
    }
}

/* Free what is past its grace period; never waits. Called under reap_mu only (the record's
 * owner). Callbacks are independent: a series carries its own flags, so it is freed
 * correctly before or after its family. */
static void reclaim(reg_registry *r) {
    adopt_retired(r);
    ck_epoch_poll(&r->reaper->rec);
}

/* ---- reader handles ---------------------------------------------------------------------- */

reg_thread *reg_thread_attach(reg_registry *r) {
    reg_thread *t = (reg_thread *)ck_epoch_recycle(&r->epoch, NULL);
    /* Pairs with the release in reg_thread_detach: ck's recycle CAS is invisible to TSan. */
    REG_TSAN_ACQUIRE(t);
    if (t == NULL) {
        t = reg_alloc_lines(sizeof(reg_thread));
        if (t == NULL)
            return NULL;
        ck_epoch_register(&r->epoch, &t->rec, NULL);
    }
    t->reg = r;
    return t;
}

void reg_thread_detach(reg_thread *t) {
    if (t == NULL)
        return;
    REG_TSAN_RELEASE(t); /* pairs with the acquire after ck_epoch_recycle */
    ck_epoch_unregister(&t->rec);
}

void reg_begin(reg_thread *t) {
    ck_epoch_begin(&t->rec, NULL);
}

void reg_end(reg_thread *t) {
    /* Pairs with the acquire in the deferred free callbacks. */
    REG_TSAN_RELEASE(&reg_tsan_epoch);
    ck_epoch_end(&t->rec, NULL);
}

/* ---- reaper ------------------------------------------------------------------------------ */

static int reap_family_cb(void *arg, reg_family *f) {
    void **a = arg;
    size_t *n = a[0];
    const uint64_t *now = a[1];
    if (f->def.ttl_ns > 0)
        *n += reg_family_reap(f->reg, f, *now);
    return 0;
}

size_t reg_reap(reg_registry *r) {
    size_t n = 0;
    uint64_t now = reg_now_mono_ns();
    pthread_mutex_lock(&r->reap_mu);
    void *args[2] = {&n, &now};
    reg_begin(r->reaper);
    reg_foreach_family(r->reaper, reap_family_cb, args);
    reg_end(r->reaper);
    n += reg_groups_reap(r, now);
    reclaim(r);
    pthread_mutex_unlock(&r->reap_mu);
    return n;
}

static void *reaper_main(void *arg) {
    reg_registry *r = arg;
    uint64_t interval = r->opt.reap_interval_ns ? r->opt.reap_interval_ns : 1000000000ULL;
    pthread_mutex_lock(&r->wake_mu);
    while (!r->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t deadline = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec + interval;
        ts.tv_sec = deadline / 1000000000ULL;
        ts.tv_nsec = deadline % 1000000000ULL;
        while (!r->stopping && pthread_cond_timedwait(&r->wake_cv, &r->wake_mu, &ts) == 0)
            ;
        if (r->stopping)
            break;
        pthread_mutex_unlock(&r->wake_mu);
        reg_reap(r);
        pthread_mutex_lock(&r->wake_mu);
    }
    pthread_mutex_unlock(&r->wake_mu);
    return NULL;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

reg_registry *reg_create(const reg_options *opt) {
    reg_registry *r = reg_alloc_lines(sizeof(*r));
    if (r == NULL)
        return NULL;
    if (opt)
        r->opt = *opt;
    r->alloc.malloc = hs_malloc;
    r->alloc.realloc = hs_realloc;
    r->alloc.free = hs_free;
    /* Names and label values come from senders: an unpredictable seed keeps them from
     * choosing keys that collide in the hash sets. */
    if (getrandom(&r->seed, sizeof r->seed, GRND_NONBLOCK) != (ssize_t)sizeof r->seed)
        r->seed = reg_hash_bytes(&r, sizeof(r), reg_now_mono_ns()); /* entropy pool not ready */
    ck_epoch_init(&r->epoch);
    pthread_mutex_init(&r->fam_mu, NULL);
    pthread_mutex_init(&r->retire_mu, NULL);
    pthread_mutex_init(&r->reap_mu, NULL);
    pthread_mutex_init(&r->wake_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!reg_families_init(r))
        goto fail;
    if (!reg_groups_init(r))
        goto fail_families;
    r->reaper = reg_thread_attach(r);
    if (r->reaper == NULL)
        goto fail_families;
    if (r->opt.start_reaper) {
        if (pthread_create(&r->reaper_thread, NULL, reaper_main, r) != 0)
            goto fail_reaper;
        r->reaper_running = 1;
    }
    return r;
fail_reaper:
    free(r->reaper); /* the only record, allocated by reg_thread_attach; r->epoch goes too */
fail_families:
    reg_groups_destroy(r);
    reg_families_destroy(r);
fail:
    free(r);
    return NULL;
}

void reg_destroy(reg_registry *r) {
    if (r == NULL)
        return;
    if (r->reaper_running) {
        pthread_mutex_lock(&r->wake_mu);
        r->stopping = 1;
        pthread_cond_signal(&r->wake_cv);
        pthread_mutex_unlock(&r->wake_mu);
        pthread_join(r->reaper_thread, NULL);
    }
    /* No reader is left: run every pending deferred free, then free what is still linked. */
    adopt_retired(r);
    ck_epoch_barrier(&r->reaper->rec);
    free_series_list(r->retired_series); /* left by a batch that found no memory */
    reg_groups_destroy(r);
    reg_families_destroy(r);
    /* Every record, registered or recycled, belongs to this registry; none is in use now. */
    ck_stack_entry_t *cursor, *next;
    for (cursor = CK_STACK_FIRST(&r->epoch.records); cursor != NULL; cursor = next) {
        next = CK_STACK_NEXT(cursor);
        free(cursor); /* record_next is the first member of reg_thread */
    }
    pthread_cond_destroy(&r->wake_cv);
    pthread_mutex_destroy(&r->wake_mu);
    pthread_mutex_destroy(&r->reap_mu);
    pthread_mutex_destroy(&r->fam_mu);
    pthread_mutex_destroy(&r->retire_mu);
    free(r);
}

/* Relaxed reads of counters kept for self-metrics: nothing is read through them. */
size_t reg_series_total(const reg_registry *r) {
    return atomic_load_explicit(&((reg_registry *)r)->nseries, memory_order_relaxed);
}

size_t reg_family_total(const reg_registry *r) {
    return atomic_load_explicit(&((reg_registry *)r)->nfamilies, memory_order_relaxed);
}
