/* stress_reap.c - remove-while-in-use: updaters race the reaper (TTL of 1 ns, reaping in a
 * tight loop), explicit deletes and a family removal/re-add, while scrapers iterate. Half the
 * updaters update through remembered series (reg_update_ref), which must refuse a series
 * removed or freed meanwhile.
 * Exact accounting: every increment that returned REG_OK is found either in a live series
 * at the end or in the final value a removal reported. Nothing is lost, counted twice, read
 * after free (ASan/TSan builds) or emitted twice in one snapshot. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "../support/labels.h"
#include "registry.h"
#include "stress.h"

#define WINDOWS 16
#define KEYS (16 * WINDOWS)
#define PASSES (20 * STRESS_SCALE)      /* reaper passes to run through, at least */
#define MIN_OPS (100000 * STRESS_SCALE) /* updates to make, at least */

static reg_registry *reg;
static atomic_int stop, stop_updaters;
static atomic_ulong passes, reaped, ops;
static _Atomic uint64_t removed_counts; /* integral counter values, summed by the hook */
static _Atomic uint64_t removed_hist;   /* histogram observation counts, summed by the hook */
static const char *const LABELS[] = {"key"};
static const double BUCKETS[] = {1, 2, 3};
static reg_family_def cdef = {
    .name = "reaped_total", .type = REG_COUNTER, .nlabels = 1, .labels = LABELS, .ttl_ns = 1};
static reg_family_def hdef = {.name = "reaped_hist",
                              .type = REG_HISTOGRAM,
                              .nlabels = 1,
                              .labels = LABELS,
                              .ttl_ns = 1,
                              .nbuckets = 3,
                              .buckets = BUCKETS};

/* Runs under the family lock with the series DEAD: its value is final. */
static void on_remove(void *arg, const reg_family *f, const reg_series *s) {
    (void)arg;
    if (reg_family_definition(f)->type == REG_COUNTER) {
        double v = reg_series_value(s);
        CHECK(v >= 0 && v == (double)(uint64_t)v);
        atomic_fetch_add(&removed_counts, (uint64_t)v);
    } else {
        uint64_t cum[4];
        double sum;
        reg_series_histogram(s, f, cum, &sum);
        atomic_fetch_add(&removed_hist, cum[3]);
    }
}

/* A remembered series of one key (odd workers update through these): the family it belongs
 * to is held while remembered, as reg_update_ref asks. */
typedef struct {
    reg_family *f;
    reg_series_ref ref;
} remembered;

typedef struct {
    int id;
    uint64_t ok, hist_ok, gone, by_ref;
    remembered (*cache)[2]; /* [key][counter, histogram], odd workers only */
} worker;

/* op v on the series values of f: through the key's remembered series when there is a good
 * one, else by label values (remembering the series). The update's result. */
static int update(worker *w, reg_thread *t, reg_family *f, const char *const *v, unsigned key,
                  int hist, double x) {
    reg_op op = hist ? REG_OP_OBSERVE : REG_OP_COUNTER_ADD;
    if (!w->cache)
        return reg_update(t, f, v, op, x, 1, NULL);
    remembered *m = &w->cache[key][hist];
    if (m->f == f && reg_update_ref(t, f, &m->ref, op, x, 1) == REG_OK) {
        w->by_ref++;
        return REG_OK;
    }
    reg_series_ref ref;
    int rc = reg_update(t, f, v, op, x, 1, &ref);
    if (rc != REG_OK)
        return rc;
    if (m->f != f) {
        if (m->f)
            reg_family_release(reg, m->f);
        m->f = reg_family_hold(f) == REG_OK ? f : NULL;
    }
    m->ref = ref;
    return REG_OK;
}

static void *updater(void *arg) {
    worker *w = arg;
    reg_thread *t = reg_thread_attach(reg);
    char key[16];
    if (w->id % 2)
        CHECK((w->cache = calloc(KEYS, sizeof *w->cache)) != NULL);
    for (int i = 0; !atomic_load(&stop_updaters); i++) {
        /* Updates go to a window of 16 keys that moves on every two reaper passes: keys
         * left behind go idle for whole passes and get reaped, then come back into the
         * window and are re-created, racing the reaper at both ends. */
        unsigned long window = (atomic_load(&passes) / 2) % WINDOWS;
        unsigned k = (unsigned)(window * 16 + (unsigned long)(i + w->id) % 16);
        snprintf(key, sizeof key, "k%u", k);
        const char *v[] = {key};
        reg_begin(t);
        reg_family *f = reg_family_find(t, "reaped_total");
        if (f) {
            int rc = update(w, t, f, v, k, 0, 1);
            CHECK(rc == REG_OK || rc == REG_EGONE);
            if (rc == REG_OK)
                w->ok++;
            else
                w->gone++;
        }
        reg_family *h = reg_family_find(t, "reaped_hist");
        CHECK(h);
        CHECK(update(w, t, h, v, k, 1, (double)(i % 4)) == REG_OK);
        w->hist_ok++;
        reg_end(t);
        if (i % 64 == 63)
            atomic_fetch_add_explicit(&ops, 64, memory_order_relaxed);
    }
    for (unsigned k = 0; w->cache && k < KEYS; k++)
        for (int j = 0; j < 2; j++)
            if (w->cache[k][j].f)
                reg_family_release(reg, w->cache[k][j].f);
    free(w->cache);
    reg_thread_detach(t);
    return NULL;
}

static void *updaters(void *arg) {
    run_threads(NTHREADS, updater, arg, sizeof(worker));
    return NULL;
}

static void *reaper(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        atomic_fetch_add(&reaped, reg_reap(reg));
        atomic_fetch_add(&passes, 1);
    }
    return NULL;
}

/* Deletes series explicitly and removes/re-adds the counter family now and then. */
static void *deleter(void *arg) {
    (void)arg;
    reg_thread *t = reg_thread_attach(reg);
    char key[16];
    for (unsigned i = 0; !atomic_load(&stop); i++) {
        snprintf(key, sizeof key, "k%u", i % KEYS);
        const char *v[] = {key};
        reg_begin(t);
        reg_family *f = reg_family_find(t, "reaped_total");
        int held = f && reg_family_hold(f) == REG_OK;
        reg_end(t);
        if (held) {
            int rc = reg_series_delete(reg, f, v);
            CHECK(rc == REG_OK || rc == REG_ENOTFOUND);
            reg_family_release(reg, f);
        }
        if (i % 64 == 63) {
            CHECK(reg_family_remove(reg, "reaped_total") == REG_OK);
            reg_begin(t);
            CHECK(reg_family_add(t, &cdef, &f) == REG_OK);
            reg_end(t);
        }
    }
    reg_thread_detach(t);
    return NULL;
}

static void check_snapshot(reg_thread *t, reg_family *f, reg_series ***v, size_t *cap) {
    long n = reg_family_collect(t, f, v, cap);
    CHECK(n >= 0 && n <= KEYS);
    for (long i = 0; i < n; i++) {
        size_t len, len2;
        char lb[REG_MAX_KEY + 1], lb2[REG_MAX_KEY + 1];
        const char *l = test_labels(f, (*v)[i], lb, &len);
        for (long j = 0; j < i; j++) {
            const char *l2 = test_labels(f, (*v)[j], lb2, &len2);
            CHECK(!(len == len2 && memcmp(l, l2, len) == 0)); /* no label set twice */
        }
        if (reg_family_definition(f)->type == REG_HISTOGRAM) {
            uint64_t cum[4];
            double sum;
            reg_series_histogram((*v)[i], f, cum, &sum);
            CHECK(cum[0] <= cum[1] && cum[1] <= cum[2] && cum[2] <= cum[3]);
        }
    }
}

static void *scraper(void *arg) {
    (void)arg;
    reg_thread *t = reg_thread_attach(reg);
    reg_series **v = NULL;
    size_t cap = 0;
    while (!atomic_load(&stop)) {
        reg_begin(t);
        reg_family *f = reg_family_find(t, "reaped_total");
        if (f)
            check_snapshot(t, f, &v, &cap);
        f = reg_family_find(t, "reaped_hist");
        check_snapshot(t, f, &v, &cap);
        reg_end(t);
    }
    free(v);
    reg_thread_detach(t);
    return NULL;
}

static void *background(void *arg) {
    void *(*fns[])(void *) = {reaper, deleter, scraper, scraper};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&th[i], NULL, fns[i], arg) == 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    return NULL;
}

static uint64_t live_total(reg_thread *t, const char *name) {
    reg_series **v = NULL;
    size_t cap = 0;
    uint64_t total = 0;
    reg_begin(t);
    reg_family *f = reg_family_find(t, name);
    long n = reg_family_collect(t, f, &v, &cap);
    for (long i = 0; i < n; i++) {
        if (reg_family_definition(f)->type == REG_COUNTER) {
            total += (uint64_t)reg_series_value(v[i]);
        } else {
            uint64_t cum[4];
            double sum;
            reg_series_histogram(v[i], f, cum, &sum);
            total += cum[3];
        }
    }
    reg_end(t);
    free(v);
    return total;
}

int main(void) {
    reg_options o = {.on_remove = on_remove};
    reg = reg_create(&o);
    CHECK(reg);
    reg_thread *t = reg_thread_attach(reg);
    reg_family *f;
    reg_begin(t);
    CHECK(reg_family_add(t, &cdef, &f) == REG_OK);
    CHECK(reg_family_add(t, &hdef, &f) == REG_OK);
    reg_end(t);

    pthread_t bg;
    CHECK(pthread_create(&bg, NULL, background, NULL) == 0);
    worker w[NTHREADS] = {0};
    for (int i = 0; i < NTHREADS; i++)
        w[i].id = i;
    pthread_t up;
    CHECK(pthread_create(&up, NULL, updaters, w) == 0);
    /* Await the condition: enough updates and reaper passes, and both kinds of removal
     * seen (bounded: after 120 s the checks below fail instead). */
    for (int ms = 0; ms < 120000; ms++) {
        if (atomic_load(&passes) >= PASSES && atomic_load(&ops) >= MIN_OPS &&
            atomic_load(&removed_hist) > 0 && atomic_load(&removed_counts) > 0)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop_updaters, 1);
    pthread_join(up, NULL);
    atomic_store(&stop, 1);
    pthread_join(bg, NULL);

    uint64_t ok = 0, hist_ok = 0, gone = 0, by_ref = 0;
    for (int i = 0; i < NTHREADS; i++) {
        ok += w[i].ok;
        hist_ok += w[i].hist_ok;
        gone += w[i].gone;
        by_ref += w[i].by_ref;
    }
    uint64_t live = live_total(t, "reaped_total"), hlive = live_total(t, "reaped_hist");
    printf("stress_reap: %lu reaper passes reaped %lu series\n", atomic_load(&passes),
           atomic_load(&reaped));
    printf("stress_reap: counter ok=%lu (live %lu + removed %lu), refused as gone=%lu; "
           "histogram ok=%lu (live %lu + removed %lu)\n",
           (unsigned long)ok, (unsigned long)live, (unsigned long)removed_counts,
           (unsigned long)gone, (unsigned long)hist_ok, (unsigned long)hlive,
           (unsigned long)removed_hist);
    CHECK(live + atomic_load(&removed_counts) == ok);
    CHECK(hlive + atomic_load(&removed_hist) == hist_ok);
    CHECK(atomic_load(&removed_counts) > 0); /* the races were really exercised */
    CHECK(atomic_load(&removed_hist) > 0);
    printf("stress_reap: %lu updates through remembered series\n", (unsigned long)by_ref);
    CHECK(by_ref > 0);
    reg_thread_detach(t);
    reg_destroy(reg);
    return 0;
}
