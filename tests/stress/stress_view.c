/* stress_view.c - reg_family_collect's kept view (series.c, "views") against concurrent
 * creations and deletes: a family large enough to keep a view, churn threads deleting and
 * re-creating series of their own, then growers creating new series only (the view brought up
 * to date from the creation log), and collectors that check every collection exactly. A
 * series live from before a collection began until after it ended is in it once; a series
 * absent all that time is not in it; no label set is in it twice. A stale view (kept across a
 * creation or a removal), or a log merged wrongly, fails one of the three. */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "registry.h"
#include "registry/internal.h" /* reg_test_between_looks: counts the walks */
#include "stress.h"

#define BASE 5000 /* series never removed: enough for a view (4096 and more) */
#define CHURN 4   /* threads deleting and re-creating series of their own */
#define EACH 64   /* series per churn thread */
#define ROUNDS (1500 * STRESS_SCALE)
#define COLLECTORS 2

static reg_registry *reg;
static reg_family *fam;
static atomic_int churning;
/* Per churn series, its phase mod 4: 0 absent (no delete under way), 1 being created, 2 live
 * (its creation returned), 3 being deleted. Each has one writer, its churn thread. */
static _Atomic unsigned gen[CHURN * EACH];
/* Per grown series "g<i>", the same phases: 0 absent, 1 being created, 2 live. */
#define GROW (CHURN * 256) /* series the growers create, 256 each */
#define GROW_SPELL 32      /* creations per grower between quiet spells (4 * 32 < the log) */
static _Atomic unsigned grown[GROW];
static _Atomic long views_checked, walks, extended;
static pthread_barrier_t quiet; /* the churn threads, at their quiet spells */

/* Called by every collection that walks the set rather than taking the view. */
static void count_walk(struct reg_family *f) {
    (void)f;
    atomic_fetch_add(&walks, 1);
}

/* Called by every collection that brings the view up to date from the creation log. */
static void count_extended(struct reg_family *f) {
    (void)f;
    atomic_fetch_add(&extended, 1);
}

static const char *const LABELS[] = {"id"};

/* Series "b<i>" (base) or "c<i>" (churn) in the family. */
static void name_of(char *buf, size_t len, char kind, int i) {
    snprintf(buf, len, "%c%d", kind, i);
}

static void create(reg_thread *t, char kind, int i) {
    char v[16];
    name_of(v, sizeof v, kind, i);
    const char *vals[] = {v};
    reg_begin(t);
    CHECK(reg_counter_add(t, fam, vals, 1) == REG_OK);
    reg_end(t);
}

/* Waits, at a grower's or churner's quiet spell, until the collectors have each taken a
 * couple of collections with nobody creating or removing. */
static void quiet_spell(int id) {
    pthread_barrier_wait(&quiet);
    long seen = atomic_load(&views_checked);
    while (id == 0 && atomic_load(&views_checked) < seen + 2 * COLLECTORS)
        sched_yield();
    pthread_barrier_wait(&quiet);
}

static void *churner(void *arg) {
    int id = *(int *)arg;
    reg_thread *t = reg_thread_attach(reg);
    for (int round = 0; round < ROUNDS; round++) {
        int i = id * EACH + round % EACH;
        char v[16];
        name_of(v, sizeof v, 'c', i);
        const char *vals[] = {v};
        atomic_fetch_add(&gen[i], 1); /* 1 or 3: under way */
        if (atomic_load(&gen[i]) % 4 == 3)
            CHECK(reg_series_delete(reg, fam, vals) == REG_OK);
        else
            create(t, 'c', i);
        atomic_fetch_add(&gen[i], 1); /* 2 or 0: done */
        if (round % EACH == EACH - 1) /* a quiet spell: collections that take the view */
            quiet_spell(id);
    }
    reg_thread_detach(t);
    return NULL;
}

static void *grower(void *arg) {
    int id = *(int *)arg;
    reg_thread *t = reg_thread_attach(reg);
    for (int k = 0; k < GROW / CHURN; k++) {
        int i = id * (GROW / CHURN) + k;
        atomic_store(&grown[i], 1);
        create(t, 'g', i);
        atomic_store(&grown[i], 2);
        if (k % GROW_SPELL == GROW_SPELL - 1)
            quiet_spell(id);
    }
    reg_thread_detach(t);
    return NULL;
}

/* Checks that series seen[i] times in a collection was there once if it was live from before
 * the collection (phase before, even) until after it (phase after), and absent if absent
 * throughout (phases mod cycle: 0 absent, cycle / 2 live). Cannot fail but by CHECK. */
static void check_phases(const unsigned *before, _Atomic unsigned *phase, const unsigned *seen,
                         int n, unsigned cycle) {
    for (int i = 0; i < n; i++) {
        unsigned after = atomic_load(&phase[i]);
        CHECK(seen[i] <= 1);
        if (before[i] == after && before[i] % 2 == 0) /* live or absent throughout */
            CHECK(seen[i] == (before[i] % cycle == cycle / 2));
    }
}

/* One collection, checked against the churn and growth phases read around it. */
static void check_one(reg_thread *t, reg_series ***v, size_t *cap) {
    static _Thread_local unsigned before[CHURN * EACH], seen_churn[CHURN * EACH];
    static _Thread_local unsigned before_grown[GROW], seen_grown[GROW];
    static _Thread_local unsigned char seen_base[BASE];
    for (int i = 0; i < CHURN * EACH; i++)
        before[i] = atomic_load(&gen[i]);
    for (int i = 0; i < GROW; i++)
        before_grown[i] = atomic_load(&grown[i]);
    memset(seen_base, 0, sizeof seen_base);
    memset(seen_churn, 0, sizeof seen_churn);
    memset(seen_grown, 0, sizeof seen_grown);
    reg_begin(t);
    long n = reg_family_collect(t, fam, v, cap);
    CHECK(n >= BASE);
    for (long k = 0; k < n; k++) {
        char buf[32];
        CHECK(reg_series_label_value((*v)[k], 0, buf, sizeof buf) > 1);
        int i = atoi(buf + 1);
        if (buf[0] == 'b') {
            CHECK(i >= 0 && i < BASE);
            seen_base[i]++;
        } else if (buf[0] == 'g') {
            CHECK(i >= 0 && i < GROW);
            seen_grown[i]++;
        } else {
            CHECK(buf[0] == 'c' && i >= 0 && i < CHURN * EACH);
            seen_churn[i]++;
        }
    }
    reg_end(t);
    for (int i = 0; i < BASE; i++)
        CHECK(seen_base[i] == 1);
    check_phases(before, gen, seen_churn, CHURN * EACH, 4);
    check_phases(before_grown, grown, seen_grown, GROW, 4); /* 0 or 2: never removed */
    atomic_fetch_add(&views_checked, 1);
}

static void *collector(void *arg) {
    (void)arg;
    reg_thread *t = reg_thread_attach(reg);
    reg_series **v = NULL;
    size_t cap = 0;
    long passes = 0;
    while (atomic_load(&churning) || passes < 3) {
        check_one(t, &v, &cap);
        passes++;
    }
    free(v);
    reg_thread_detach(t);
    return NULL;
}

static void *collectors_main(void *arg) {
    run_threads(COLLECTORS, collector, arg, 0);
    return NULL;
}

int main(void) {
    reg_options o = {0};
    reg = reg_create(&o);
    CHECK(reg);
    reg_thread *t = reg_thread_attach(reg);
    reg_family_def d = {.name = "view_total", .type = REG_COUNTER, .nlabels = 1, .labels = LABELS};
    reg_begin(t);
    CHECK(reg_family_add(t, &d, &fam) == REG_OK);
    reg_end(t);
    for (int i = 0; i < BASE; i++)
        create(t, 'b', i);
    reg_test_between_looks = count_walk;
    reg_test_view_extended = count_extended;
    CHECK(pthread_barrier_init(&quiet, NULL, CHURN) == 0);
    atomic_store(&churning, 1);
    pthread_t coll;
    CHECK(pthread_create(&coll, NULL, collectors_main, NULL) == 0);
    int ids[CHURN];
    for (int i = 0; i < CHURN; i++)
        ids[i] = i;
    run_threads(CHURN, churner, ids, sizeof ids[0]);
    atomic_store(&churning, 0);
    pthread_join(coll, NULL);
    /* Quiet now: two collections in a row, the second from the view, both exact. */
    reg_series **v = NULL;
    size_t cap = 0;
    check_one(t, &v, &cap);
    check_one(t, &v, &cap);
    long walked = atomic_load(&walks), checked = atomic_load(&views_checked);
    printf("stress_view: churn: %ld collections checked, %ld from the view\n", checked,
           checked - walked);
    CHECK(checked - walked > 0); /* the view was taken, not only made */
    long churn_extended = atomic_load(&extended);
    /* Growth: creations only, so the view is brought up to date from the log. */
    atomic_store(&churning, 1);
    CHECK(pthread_create(&coll, NULL, collectors_main, NULL) == 0);
    run_threads(CHURN, grower, ids, sizeof ids[0]);
    atomic_store(&churning, 0);
    pthread_join(coll, NULL);
    check_one(t, &v, &cap);
    free(v);
    long grow_walked = atomic_load(&walks) - walked;
    long grow_checked = atomic_load(&views_checked) - checked;
    long grow_extended = atomic_load(&extended) - churn_extended;
    printf("stress_view: growth: %ld collections checked, %ld from the view, %ld of them "
           "brought up to date from the log\n",
           grow_checked, grow_checked - grow_walked, grow_extended);
    /* at the latest the first collection after a quiet spell: the growers wait, the mutex is
     * free, no removal since, fewer creations since than the log holds */
    CHECK(grow_extended > 0);
    reg_test_between_looks = NULL;
    reg_test_view_extended = NULL;
    pthread_barrier_destroy(&quiet);
    reg_thread_detach(t);
    reg_destroy(reg);
    return 0;
}
