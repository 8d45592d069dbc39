/* stress_limit.c - the series limit holds under concurrent creation: threads race to create
 * distinct series in a family capped at LIMIT (and a registry capped globally); exactly the
 * limit is created and every other attempt is refused and counted. */
#include <stdatomic.h>
#include <string.h>

#include "registry.h"
#include "stress.h"

#define LIMIT 100
#define ATTEMPTS (200 * STRESS_SCALE)

static reg_registry *reg;
static reg_family *fam, *fam2;
static const char *const LABELS[] = {"id"};

typedef struct {
    int id;
    long ok, refused;
} worker;

static void *creator(void *arg) {
    worker *w = arg;
    reg_thread *t = reg_thread_attach(reg);
    char key[32];
    for (int i = 0; i < ATTEMPTS; i++) {
        snprintf(key, sizeof key, "%d-%d", w->id, i);
        const char *v[] = {key};
        reg_begin(t);
        int rc = reg_gauge_set(t, i % 2 ? fam : fam2, v, 1);
        reg_end(t);
        CHECK(rc == REG_OK || rc == REG_ELIMIT);
        if (rc == REG_OK)
            w->ok++;
        else
            w->refused++;
    }
    reg_thread_detach(t);
    return NULL;
}

int main(void) {
    /* family limit LIMIT on fam; a global limit of 2*LIMIT+10 caps fam2 at LIMIT+10 */
    reg_options o = {.max_series = 2 * LIMIT + 10};
    reg = reg_create(&o);
    reg_thread *t = reg_thread_attach(reg);
    reg_family_def d = {
        .name = "capped", .type = REG_GAUGE, .nlabels = 1, .labels = LABELS, .max_series = LIMIT};
    reg_family_def d2 = {.name = "uncapped", .type = REG_GAUGE, .nlabels = 1, .labels = LABELS};
    reg_begin(t);
    CHECK(reg_family_add(t, &d, &fam) == REG_OK);
    CHECK(reg_family_add(t, &d2, &fam2) == REG_OK);
    reg_end(t);

    worker w[NTHREADS] = {0};
    for (int i = 0; i < NTHREADS; i++)
        w[i].id = i;
    run_threads(NTHREADS, creator, w, sizeof w[0]);

    long ok = 0, refused = 0;
    for (int i = 0; i < NTHREADS; i++) {
        ok += w[i].ok;
        refused += w[i].refused;
    }
    printf("stress_limit: created %ld, refused %ld (family %zu + %zu series)\n", ok, refused,
           reg_family_series_count(fam), reg_family_series_count(fam2));
    CHECK(reg_family_series_count(fam) == LIMIT);
    CHECK(reg_family_series_count(fam2) == LIMIT + 10);
    CHECK(reg_series_total(reg) == 2 * LIMIT + 10);
    CHECK(ok == 2 * LIMIT + 10);
    CHECK((uint64_t)refused == reg_family_refused(fam) + reg_family_refused(fam2));
    CHECK(ok + refused == (long)NTHREADS * ATTEMPTS);
    reg_thread_detach(t);
    reg_destroy(reg);
    return 0;
}
