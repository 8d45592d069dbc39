/* stress_replace.c - reg_family_replace under load: one thread replaces a family over and over
 * (alternating two definitions, as reloads do) while readers look it up, walk it with cursors
 * across sections and update it. A lookup must always find a family of that name (old or
 * new, never none), a cursor walk must never hand out a label set twice, and every update
 * must land after at most a retry per replacement it raced with. */
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "registry.h"
#include "stress.h"

#define REPLACES (200 * STRESS_SCALE)
#define READERS 3
#define UPDATERS 2
#define SERIES 64

static reg_registry *reg;
static atomic_int replacing_done;
static atomic_int running; /* readers and updaters that have done one iteration */
static const char *const LBL[] = {"id"};

static reg_family_def def_of(int version) {
    reg_family_def d = {.name = "swap_total",
                        .help = version ? "version B" : "version A",
                        .type = REG_COUNTER,
                        .nlabels = 1,
                        .labels = LBL};
    return d;
}

/* A family without labels, as a declared gauge: replaced alongside, and always seen with its
 * one series. */
static reg_family_def plain_of(int version) {
    reg_family_def d = {.name = "swap_gauge", .help = version ? "B" : "A", .type = REG_GAUGE};
    return d;
}

/* Open the label-less family (old or new) and count its series: always exactly one. */
static void walk_plain(reg_thread *t) {
    reg_cursor c;
    reg_begin(t);
    int rc = REG_EGONE;
    for (int tries = 0; tries < 64 && rc == REG_EGONE; tries++) {
        reg_family *f = reg_family_find(t, "swap_gauge");
        CHECK(f != NULL);
        rc = reg_cursor_open(t, &c, f);
    }
    CHECK(rc == REG_OK);
    reg_series *const *v;
    CHECK(reg_cursor_view(&c, &v) == 1); /* never published empty, never emptied while live */
    reg_cursor_close(reg, &c);
    reg_end(t);
}

static void *replacer(void *arg) {
    (void)arg;
    while (atomic_load(&running) < READERS + UPDATERS)
        sched_yield(); /* replace while everyone else is busy, so the races happen */
    reg_thread *t = reg_thread_attach(reg);
    for (int i = 0; i < REPLACES; i++) {
        reg_family_def d = def_of(i % 2);
        reg_family *f;
        reg_begin(t);
        CHECK(reg_family_replace(t, &d, &f) == REG_OK);
        reg_family_def p = plain_of(i % 2);
        CHECK(reg_family_replace(t, &p, &f) == REG_OK);
        reg_end(t);
        reg_reap(reg); /* free what the replaced families retired, concurrently with readers */
    }
    atomic_store(&replacing_done, 1);
    reg_thread_detach(t);
    return NULL;
}

/* One walk over the family in sections of 5 series; no label value twice. */
static void walk(reg_thread *t) {
    int seen[SERIES] = {0};
    reg_cursor c;
    reg_begin(t);
    reg_family *f = reg_family_find(t, "swap_total");
    CHECK(f != NULL); /* old or new, never neither */
    int rc = reg_cursor_open(t, &c, f);
    if (rc == REG_EGONE) {
        f = reg_family_find(t, "swap_total"); /* replaced since the find: the new one */
        CHECK(f != NULL);
        rc = reg_cursor_open(t, &c, f);
    }
    if (rc != REG_OK) {
        CHECK(rc == REG_EGONE); /* replaced twice in this short window: try the next walk */
        reg_end(t);
        return;
    }
    for (;;) {
        reg_series *const *v;
        size_t n = reg_cursor_view(&c, &v);
        if (n == 0)
            break;
        size_t k = n < 5 ? n : 5;
        for (size_t i = 0; i < k; i++) {
            char buf[16];
            CHECK(reg_series_label_value(v[i], 0, buf, sizeof buf) > 0);
            int id = atoi(buf);
            CHECK(id >= 0 && id < SERIES);
            CHECK(seen[id]++ == 0);
        }
        reg_cursor_consume(&c, k);
        reg_cursor_pause(&c);
        reg_end(t);
        reg_begin(t);
        CHECK(reg_cursor_resume(t, &c) == REG_OK);
    }
    reg_cursor_close(reg, &c);
    reg_end(t);
}

static void *reader(void *arg) {
    long *walks = arg;
    reg_thread *t = reg_thread_attach(reg);
    do {
        walk(t);
        walk_plain(t);
        if (++*walks == 1)
            atomic_fetch_add(&running, 1);
    } while (!atomic_load(&replacing_done));
    reg_thread_detach(t);
    return NULL;
}

static void *updater(void *arg) {
    long *adds = arg;
    reg_thread *t = reg_thread_attach(reg);
    for (long i = 0; i == 0 || !atomic_load(&replacing_done); i++) {
        char v[16];
        snprintf(v, sizeof v, "%ld", i % SERIES);
        const char *vals[] = {v};
        reg_begin(t);
        int rc;
        do {
            reg_family *f = reg_family_find(t, "swap_total");
            CHECK(f != NULL);
            rc = reg_counter_add(t, f, vals, 1);
        } while (rc == REG_EGONE); /* replaced after the find: the next find has the new one */
        CHECK(rc == REG_OK);
        reg_end(t);
        if (++*adds == 1)
            atomic_fetch_add(&running, 1);
    }
    reg_thread_detach(t);
    return NULL;
}

typedef struct {
    int role;
    long count;
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    if (w->role == 0)
        return replacer(NULL);
    if (w->role == 1)
        return reader(&w->count);
    return updater(&w->count);
}

int main(void) {
    reg_options o = {0};
    reg = reg_create(&o);
    CHECK(reg != NULL);
    reg_thread *t = reg_thread_attach(reg);
    reg_family_def d = def_of(1);
    reg_family *f;
    reg_begin(t);
    CHECK(reg_family_add(t, &d, &f) == REG_OK);
    reg_family_def p = plain_of(1);
    CHECK(reg_family_replace(t, &p, &f) == REG_OK);
    reg_end(t);
    worker w[1 + READERS + UPDATERS] = {{0, 0}};
    for (int i = 1; i <= READERS; i++)
        w[i].role = 1;
    for (int i = READERS + 1; i <= READERS + UPDATERS; i++)
        w[i].role = 2;
    run_threads(1 + READERS + UPDATERS, run_worker, w, sizeof w[0]);
    long walks = 0, adds = 0;
    for (int i = 1; i <= READERS + UPDATERS; i++)
        *(w[i].role == 1 ? &walks : &adds) += w[i].count;
    printf("stress_replace: %d replaces, %ld cursor walks, %ld updates\n", REPLACES, walks, adds);
    CHECK(walks > 0 && adds > 0); /* the readers and updaters really ran alongside */
    reg_thread_detach(t);
    reg_destroy(reg);
    return 0;
}
