/* stress_group.c - pushed groups under concurrency: writers PUT, POST, ADD, FAILED and DELETE
 * on a few shared groups while readers take reg_group_snapshot and check every state they
 * hold; adders sum counters and histograms with REG_PUSH_ADD; a TTL pusher races the reaper.
 *
 * What must hold:
 *  - A state is one push's whole result: every series of a shared group carries that push's
 *    generation (its value and its families' times equal the push time) and every family of
 *    the generation is there; a mix or a missing family fails. States stay readable after
 *    reg_end until released (ASan), keys come sorted and once each.
 *  - ADD pushes of +1 from K threads sum exactly; a reader never sees a sum go back.
 *  - Exact accounting at the end: the series total is the series the groups hold, the group
 *    count is the groups a snapshot sees; a wipe brings both to 0.
 * Bounded by operation counts, not time. Run under TSan and ASan too. */
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "registry.h"
#include "stress.h"

#define NGROUPS 3
#define NFAMS 4
#define NSER 3
#define WRITERS 4
#define ADDERS 3
#define READERS 3
#define TTL_KEYS 8
#define WRITER_OPS (1500 * STRESS_SCALE)
#define ADDER_OPS (1500 * STRESS_SCALE)
#define TTL_OPS (25 * TTL_KEYS * STRESS_SCALE)

static reg_registry *reg;
static atomic_int stop;
static atomic_ulong snapshots, states_checked, reaped, reap_passes;

static const char *const FAM_NAMES[NFAMS] = {"f0", "f1", "f2", "f3"};
static const char *const JOB[] = {"job"};

/* ---- shared groups: generations ----------------------------------------------------------- */

static void group_key(char *buf, size_t cap, int g) {
    snprintf(buf, cap, "job=\"g%d\"", g);
}

static void series_labels(char *buf, size_t cap, int g, int s) {
    snprintf(buf, cap, "instance=\"\",job=\"g%d\",s=\"%d\"", g, s);
}

/* Push generation gen to group g with mode. */
static int push_generation(reg_thread *t, int g, reg_push_mode mode, double gen) {
    char key[32], labels[NSER][64];
    double val = gen;
    reg_push_series ser[NSER];
    reg_push_family fams[NFAMS];
    /* Series listed in reverse: the registry sorts them. */
    for (int s = 0; s < NSER; s++) {
        series_labels(labels[s], sizeof labels[s], g, NSER - 1 - s);
        ser[s] = (reg_push_series){labels[s], (uint32_t)strlen(labels[s]), 1, &val};
    }
    for (int f = 0; f < NFAMS; f++)
        fams[f] = (reg_push_family){FAM_NAMES[NFAMS - 1 - f], NULL, REG_GAUGE, 0, NSER, ser};
    group_key(key, sizeof key, g);
    reg_push p = {key, strlen(key), 1, JOB, mode, NFAMS, fams, gen, 0};
    char err[256];
    reg_begin(t);
    int rc = reg_group_push(t, &p, err, sizeof err);
    reg_end(t);
    if (rc != REG_OK)
        fprintf(stderr, "push g%d mode %d: %s (%s)\n", g, (int)mode, reg_strerror(rc), err);
    return rc;
}

typedef struct {
    int id;
    unsigned long pushes, deletes;
} writer_arg;

static void *writer(void *arg) {
    writer_arg *w = arg;
    reg_thread *t = reg_thread_attach(reg);
    CHECK(t);
    uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(w->id + 1);
    for (int i = 0; i < WRITER_OPS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int g = (int)(x % NGROUPS);
        unsigned what = (unsigned)((x >> 8) % 100);
        double gen = (double)(w->id + 1) * 1e7 + i + 1; /* unique, exact, > 0 */
        if (what < 10) {
            char key[32];
            group_key(key, sizeof key, g);
            int rc = reg_group_delete(reg, key, strlen(key));
            CHECK(rc == REG_OK || rc == REG_ENOTFOUND);
            w->deletes++;
            continue;
        }
        reg_push_mode mode = what < 45   ? REG_PUSH_REPLACE_ALL
                             : what < 75 ? REG_PUSH_REPLACE_FAMILIES
                             : what < 90 ? REG_PUSH_ADD /* gauges: replaced, as POST */
                                         : REG_PUSH_FAILED;
        CHECK(push_generation(t, g, mode, gen) == REG_OK);
        w->pushes++;
    }
    reg_thread_detach(t);
    return NULL;
}

/* A shared group's state: empty (a failed push made it), or whole families of one
 * generation. */
static void check_shared(const reg_group *st, int g) {
    size_t nf = reg_group_family_count(st);
    double gen = reg_group_push_time(st);
    if (nf == 0) {
        CHECK(gen == 0);
        CHECK(reg_group_failure_time(st) > 0);
        return;
    }
    CHECK(nf == NFAMS);
    CHECK(gen > 0);
    const reg_push_family *f = reg_group_families(st);
    for (int k = 0; k < NFAMS; k++) {
        CHECK(strcmp(f[k].name, FAM_NAMES[k]) == 0);
        CHECK(reg_group_family(st, FAM_NAMES[k]) == &f[k]);
        CHECK(f[k].type == REG_GAUGE);
        CHECK(f[k].time == gen);
        CHECK(f[k].nseries == NSER);
        for (int s = 0; s < NSER; s++) {
            char want[64];
            series_labels(want, sizeof want, g, s);
            CHECK(strcmp(f[k].series[s].labels, want) == 0);
            CHECK(f[k].series[s].labels_len == strlen(want));
            CHECK(f[k].series[s].nvals == 1);
            if (f[k].series[s].vals[0] != gen) {
                fprintf(stderr, "g%d %s s%d: generation %.0f in a state of %.0f\n", g, FAM_NAMES[k],
                        s, f[k].series[s].vals[0], gen);
                abort();
            }
        }
    }
}

/* ---- adders: exact sums ------------------------------------------------------------------- */

#define ADD_KEY "job=\"adds\""
#define ADD_SHARED "instance=\"\",job=\"adds\""

static int push_add(reg_thread *t, int id) {
    char own[64];
    snprintf(own, sizeof own, "instance=\"\",job=\"adds\",t=\"%d\"", id);
    static const double one = 1;
    static const double hist[] = {1, 1, 1, 1, INFINITY, 1}; /* one observation of 1 */
    reg_push_series cser[2] = {{ADD_SHARED, (uint32_t)strlen(ADD_SHARED), 1, &one},
                               {own, (uint32_t)strlen(own), 1, &one}};
    reg_push_series hser[2] = {{own, (uint32_t)strlen(own), 6, hist},
                               {ADD_SHARED, (uint32_t)strlen(ADD_SHARED), 6, hist}};
    reg_push_family fams[2] = {{"adds_total", NULL, REG_COUNTER, 0, 2, cser},
                               {"adds_hist", NULL, REG_HISTOGRAM, 0, 2, hser}};
    reg_push p = {ADD_KEY, strlen(ADD_KEY), 1, JOB, REG_PUSH_ADD, 2, fams, 1, 0};
    char err[256];
    reg_begin(t);
    int rc = reg_group_push(t, &p, err, sizeof err);
    reg_end(t);
    if (rc != REG_OK)
        fprintf(stderr, "add: %s (%s)\n", reg_strerror(rc), err);
    return rc;
}

static void *adder(void *arg) {
    int id = *(int *)arg;
    reg_thread *t = reg_thread_attach(reg);
    CHECK(t);
    for (int i = 0; i < ADDER_OPS; i++)
        CHECK(push_add(t, id) == REG_OK);
    reg_thread_detach(t);
    return NULL;
}

/* The adds group: counters integral, histograms whole (count == +Inf == le=1 == sum); the
 * shared counter never below what this reader saw before. */
static void check_adds(const reg_group *st, double *last_shared) {
    const reg_push_family *c = reg_group_family(st, "adds_total");
    const reg_push_family *h = reg_group_family(st, "adds_hist");
    CHECK(c && h && reg_group_family_count(st) == 2);
    CHECK(c->type == REG_COUNTER && h->type == REG_HISTOGRAM);
    CHECK(c->nseries >= 2 && c->nseries <= ADDERS + 1);
    CHECK(h->nseries == c->nseries);
    double own_sum = 0, shared = -1;
    for (size_t i = 0; i < c->nseries; i++) {
        double v = c->series[i].vals[0];
        CHECK(v >= 1 && v == floor(v));
        CHECK(strcmp(h->series[i].labels, c->series[i].labels) == 0);
        const double *hv = h->series[i].vals;
        CHECK(h->series[i].nvals == 6);
        CHECK(hv[1] == v && hv[0] == v && hv[2] == 1 && hv[3] == v && isinf(hv[4]) && hv[5] == v);
        if (i > 0)
            CHECK(strcmp(c->series[i - 1].labels, c->series[i].labels) < 0);
        if (strcmp(c->series[i].labels, ADD_SHARED) == 0)
            shared = v;
        else
            own_sum += v;
    }
    /* Each push adds 1 to the shared series and 1 to one own series, in one step. */
    CHECK(shared == own_sum);
    CHECK(shared >= *last_shared);
    *last_shared = shared;
}

/* ---- TTL groups and the reaper ------------------------------------------------------------ */

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Pushes 1 ns TTL groups over TTL_KEYS keys; after each round over them it awaits (bounded
 * poll) a removal by the reaper, so pushes and expiries interleave rather than each push
 * renewing a group before any pass sees it expired. */
static void *ttl_pusher(void *arg) {
    (void)arg;
    reg_thread *t = reg_thread_attach(reg);
    CHECK(t);
    for (int i = 0; i < TTL_OPS; i++) {
        char key[32], l0[64], l1[64];
        int k = i % TTL_KEYS;
        snprintf(key, sizeof key, "job=\"ttl%d\"", k);
        snprintf(l0, sizeof l0, "instance=\"\",job=\"ttl%d\",s=\"0\"", k);
        snprintf(l1, sizeof l1, "instance=\"\",job=\"ttl%d\",s=\"1\"", k);
        double gen = i + 1;
        reg_push_series ser[2] = {{l1, (uint32_t)strlen(l1), 1, &gen},
                                  {l0, (uint32_t)strlen(l0), 1, &gen}};
        reg_push_family fam = {"ttl_g", NULL, REG_GAUGE, 0, 2, ser};
        reg_push p = {
            key, strlen(key), 1,   JOB, i % 5 == 4 ? REG_PUSH_FAILED : REG_PUSH_REPLACE_ALL,
            1,   &fam,        gen, 1 /* ns */};
        char err[256];
        /* Read before the push: the reaper may take this 1 ns group before the push returns,
         * and a count read after that would wait for a removal that already happened. */
        unsigned long r0 = atomic_load(&reaped);
        reg_begin(t);
        int rc = reg_group_push(t, &p, err, sizeof err);
        reg_end(t);
        if (rc != REG_OK)
            fprintf(stderr, "ttl push: %s (%s)\n", reg_strerror(rc), err);
        CHECK(rc == REG_OK);
        if (k == TTL_KEYS - 1) {
            uint64_t deadline = mono_ns() + 30ULL * 1000000000ULL;
            while (atomic_load(&reaped) == r0) {
                CHECK(mono_ns() < deadline);
                sched_yield();
            }
        }
    }
    reg_thread_detach(t);
    return NULL;
}

static void check_ttl(const reg_group *st) {
    size_t nf = reg_group_family_count(st);
    if (nf == 0) { /* a failed push on a reaped group */
        CHECK(reg_group_push_time(st) == 0);
        return;
    }
    CHECK(nf == 1);
    const reg_push_family *f = reg_group_families(st);
    CHECK(strcmp(f->name, "ttl_g") == 0 && f->nseries == 2);
    CHECK(f->series[0].vals[0] == reg_group_push_time(st));
    CHECK(f->series[1].vals[0] == reg_group_push_time(st));
    CHECK(strcmp(f->series[0].labels, f->series[1].labels) < 0);
}

static void *reaper(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        atomic_fetch_add(&reaped, reg_reap(reg));
        atomic_fetch_add(&reap_passes, 1);
    }
    return NULL;
}

/* ---- readers ------------------------------------------------------------------------------ */

static void check_state(const reg_group *st, double *last_shared) {
    size_t len;
    const char *key = reg_group_key(st, &len);
    CHECK(strlen(key) == len);
    int g;
    if (strcmp(key, ADD_KEY) == 0)
        check_adds(st, last_shared);
    else if (strncmp(key, "job=\"ttl", 8) == 0)
        check_ttl(st);
    else if (sscanf(key, "job=\"g%d\"", &g) == 1 && g >= 0 && g < NGROUPS)
        check_shared(st, g);
    else
        CHECK(!"unknown group key");
    atomic_fetch_add_explicit(&states_checked, 1, memory_order_relaxed);
}

static void *reader(void *arg) {
    int id = *(int *)arg;
    reg_thread *t = reg_thread_attach(reg);
    CHECK(t);
    reg_group **v = NULL;
    size_t cap = 0;
    double last_shared = 0;
    for (unsigned long round = 0; !atomic_load(&stop) || round < 10; round++) {
        reg_begin(t);
        long n = reg_group_snapshot(t, &v, &cap);
        CHECK(n >= 0);
        /* Half the rounds check inside the section, half after it (held states). */
        int inside = (round + (unsigned long)id) % 2 == 0;
        if (inside)
            for (long i = 0; i < n; i++)
                check_state(v[i], &last_shared);
        reg_end(t);
        for (long i = 0; i < n; i++) {
            if (!inside)
                check_state(v[i], &last_shared);
            if (i > 0) {
                size_t la, lb;
                const char *a = reg_group_key(v[i - 1], &la), *b = reg_group_key(v[i], &lb);
                size_t m = la < lb ? la : lb;
                int c = memcmp(a, b, m);
                CHECK(c < 0 || (c == 0 && la < lb)); /* sorted, no key twice */
            }
        }
        reg_group_release_all(reg, v, (size_t)n);
        atomic_fetch_add(&snapshots, 1);
    }
    free(v);
    reg_thread_detach(t);
    return NULL;
}

/* ---- main --------------------------------------------------------------------------------- */

int main(void) {
    reg_options o = {0};
    reg = reg_create(&o);
    CHECK(reg);

    pthread_t wt[WRITERS], at[ADDERS], rt[READERS], tt, rp;
    writer_arg wa[WRITERS];
    int aid[ADDERS], rid[READERS];
    for (int i = 0; i < READERS; i++) {
        rid[i] = i;
        CHECK(pthread_create(&rt[i], NULL, reader, &rid[i]) == 0);
    }
    CHECK(pthread_create(&rp, NULL, reaper, NULL) == 0);
    for (int i = 0; i < WRITERS; i++) {
        wa[i] = (writer_arg){i, 0, 0};
        CHECK(pthread_create(&wt[i], NULL, writer, &wa[i]) == 0);
    }
    for (int i = 0; i < ADDERS; i++) {
        aid[i] = i;
        CHECK(pthread_create(&at[i], NULL, adder, &aid[i]) == 0);
    }
    CHECK(pthread_create(&tt, NULL, ttl_pusher, NULL) == 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(wt[i], NULL);
    for (int i = 0; i < ADDERS; i++)
        pthread_join(at[i], NULL);
    pthread_join(tt, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);
    pthread_join(rp, NULL);

    /* Every TTL group goes (1 ns TTL); a bounded poll, no fixed sleep. */
    reg_thread *t = reg_thread_attach(reg);
    CHECK(t);
    uint64_t deadline = mono_ns() + 30ULL * 1000000000ULL;
    for (;;) {
        reg_reap(reg);
        reg_group **v = NULL;
        size_t cap = 0;
        reg_begin(t);
        long n = reg_group_snapshot(t, &v, &cap);
        reg_end(t);
        CHECK(n >= 0);
        int ttl_left = 0;
        size_t series = 0;
        double shared = -1, own[ADDERS] = {0};
        for (long i = 0; i < n; i++) {
            const char *key = reg_group_key(v[i], NULL);
            ttl_left |= strncmp(key, "job=\"ttl", 8) == 0;
            const reg_push_family *f = reg_group_families(v[i]);
            for (size_t k = 0; k < reg_group_family_count(v[i]); k++)
                series += f[k].nseries;
            if (strcmp(key, ADD_KEY) == 0) {
                const reg_push_family *c = reg_group_family(v[i], "adds_total");
                CHECK(c && c->nseries == ADDERS + 1);
                shared = c->series[0].vals[0];
                CHECK(strcmp(c->series[0].labels, ADD_SHARED) == 0);
                for (int a = 0; a < ADDERS; a++)
                    own[a] = c->series[a + 1].vals[0];
            }
        }
        /* Exact accounting: nothing else holds series. */
        CHECK(reg_series_total(reg) ==
              series + 2 * (size_t)n); /* each group: its two push-time gauges */
        CHECK(reg_group_total(reg) == (size_t)n);
        if (!ttl_left) {
            CHECK(shared == (double)ADDERS * ADDER_OPS);
            for (int a = 0; a < ADDERS; a++)
                CHECK(own[a] == ADDER_OPS);
        }
        reg_group_release_all(reg, v, (size_t)n);
        free(v);
        if (!ttl_left)
            break;
        CHECK(mono_ns() < deadline);
    }
    size_t left = reg_group_total(reg);
    CHECK(reg_group_wipe(reg) == left);
    CHECK(reg_series_total(reg) == 0);
    CHECK(reg_group_total(reg) == 0);
    reg_reap(reg);
    reg_thread_detach(t);
    reg_destroy(reg);

    unsigned long pushes = 0, deletes = 0;
    for (int i = 0; i < WRITERS; i++) {
        pushes += wa[i].pushes;
        deletes += wa[i].deletes;
    }
    printf("stress_group: %lu pushes, %lu deletes, %d adds, %lu snapshots, %lu states checked, "
           "%lu reaped in %lu passes\n",
           pushes, deletes, ADDERS * ADDER_OPS, atomic_load(&snapshots),
           atomic_load(&states_checked), atomic_load(&reaped), atomic_load(&reap_passes));
    CHECK(atomic_load(&snapshots) >= READERS);
    return 0;
}
