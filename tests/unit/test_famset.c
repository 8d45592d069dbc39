/* test_famset.c - unit tests of a module's held families (exporter/famset.c):
 * exp_famset_init/link_all/get/relink/destroy. Families are registered in order, marked
 * REG_FAMILY_OWN and held (they outlive a removal); after a reload removed one
 * (reg_family_remove), relink registers it again exactly once, also when two threads relink
 * the same removed family at the same moment (checked by the family's reference count: one
 * registry link plus one hold); a stale relink is a no-op; a conflicting declaration of the
 * same name fails link_all and relink with a message and leaves the rest held.
 *
 * The reference counts are read through "registry/internal.h" (struct reg_family). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "famset.h"
#include "registry.h"
#include "registry/internal.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static const char *const l_code[] = {"code"};
static const double buckets[] = {0.1, 1};

static const reg_family_def defs[] = {
    {.name = "own_requests_total",
     .help = "Requests.",
     .type = REG_COUNTER,
     .nlabels = 1,
     .labels = l_code},
    {.name = "own_up", .help = "Up.", .type = REG_GAUGE},
    {.name = "own_seconds",
     .help = "Durations.",
     .type = REG_HISTOGRAM,
     .nbuckets = 2,
     .buckets = buckets},
};
#define NDEFS 3

typedef struct {
    reg_registry *r;
    reg_thread *t;
    exp_famset fs;
} fixture;

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    reg_options o = {0};
    fx->r = reg_create(&o);
    assert_non_null(fx->r);
    fx->t = reg_thread_attach(fx->r);
    assert_non_null(fx->t);
    exp_famset_init(&fx->fs, fx->r, defs, NDEFS);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    exp_famset_destroy(&fx->fs);
    reg_thread_detach(fx->t);
    reg_destroy(fx->r);
    free(fx);
    return 0;
}

static uint64_t refs(reg_family *f) {
    return atomic_load(&f->refs);
}

static void link_all_ok(fixture *fx) {
    char err[256] = "";
    reg_begin(fx->t);
    int rc = exp_famset_link_all(&fx->fs, fx->t, err, sizeof err);
    reg_end(fx->t);
    if (rc != REG_OK)
        fail_msg("exp_famset_link_all: %s (%s)", reg_strerror(rc), err);
}

/* ---- tests ------------------------------------------------------------------------------- */

/* Before link_all nothing is registered and get is NULL; after it every family is there, in
 * the registry under its name, marked REG_FAMILY_OWN, held once. */
static void test_link_all_registers_and_holds(void **state) {
    fixture *fx = *state;
    for (int i = 0; i < NDEFS; i++)
        assert_null(exp_famset_get(&fx->fs, i));
    assert_int_equal(reg_family_total(fx->r), 0);

    link_all_ok(fx);
    assert_int_equal(reg_family_total(fx->r), NDEFS);
    reg_begin(fx->t);
    for (int i = 0; i < NDEFS; i++) {
        reg_family *f = exp_famset_get(&fx->fs, i);
        assert_non_null(f);
        assert_ptr_equal(reg_family_find(fx->t, defs[i].name), f);
        const reg_family_def *d = reg_family_definition(f);
        assert_string_equal(d->name, defs[i].name);
        assert_int_equal(d->type, defs[i].type);
        assert_true(d->flags & REG_FAMILY_OWN);
        assert_int_equal(refs(f), 2); /* the registry's link + the famset's hold */
    }
    reg_end(fx->t);
    /* the caller's definitions are not modified (the flag goes on a copy) */
    for (int i = 0; i < NDEFS; i++)
        assert_int_equal(defs[i].flags, 0);
}

/* n is capped at EXP_FAMSET_MAX. */
static void test_init_caps_n(void **state) {
    (void)state;
    reg_family_def many[EXP_FAMSET_MAX + 3];
    char names[EXP_FAMSET_MAX + 3][32];
    for (int i = 0; i < EXP_FAMSET_MAX + 3; i++) {
        snprintf(names[i], sizeof names[i], "own_g%d", i);
        many[i] = (reg_family_def){.name = names[i], .type = REG_GAUGE};
    }
    reg_options o = {0};
    reg_registry *r = reg_create(&o);
    reg_thread *t = reg_thread_attach(r);
    exp_famset fs;
    exp_famset_init(&fs, r, many, EXP_FAMSET_MAX + 3);
    assert_int_equal(fs.n, EXP_FAMSET_MAX);
    char err[128];
    reg_begin(t);
    assert_int_equal(exp_famset_link_all(&fs, t, err, sizeof err), REG_OK);
    reg_end(t);
    assert_int_equal(reg_family_total(r), EXP_FAMSET_MAX);
    exp_famset_destroy(&fs);
    reg_thread_detach(t);
    reg_destroy(r);
}

/* A held family survives reg_family_remove: its memory stays valid, updates on it fail with
 * REG_EGONE, and relink puts a fresh registered family in its place. */
static void test_relink_after_remove(void **state) {
    fixture *fx = *state;
    link_all_ok(fx);
    const char *v[] = {"200"};
    reg_begin(fx->t);
    reg_family *old = exp_famset_get(&fx->fs, 0);
    assert_int_equal(reg_counter_add(fx->t, old, v, 5), REG_OK);
    reg_end(fx->t);

    assert_int_equal(reg_family_remove(fx->r, defs[0].name), REG_OK); /* a reload took it */
    reg_reap(fx->r); /* reclaim what can be: the held family must not be among it */

    reg_begin(fx->t);
    assert_ptr_equal(exp_famset_get(&fx->fs, 0), old);
    assert_string_equal(reg_family_definition(old)->name, defs[0].name); /* still readable */
    assert_int_equal(refs(old), 1);                                      /* only our hold */
    assert_null(reg_family_find(fx->t, defs[0].name));
    assert_int_equal(reg_counter_add(fx->t, old, v, 1), REG_EGONE);

    assert_int_equal(exp_famset_relink(&fx->fs, fx->t, 0, old), REG_OK);
    reg_family *nu = exp_famset_get(&fx->fs, 0);
    assert_non_null(nu);
    assert_ptr_not_equal(nu, old);
    assert_ptr_equal(reg_family_find(fx->t, defs[0].name), nu);
    assert_true(reg_family_definition(nu)->flags & REG_FAMILY_OWN);
    assert_int_equal(refs(nu), 2);
    assert_int_equal(reg_counter_add(fx->t, nu, v, 1), REG_OK); /* a fresh counter */
    /* the others were not touched */
    for (int i = 1; i < NDEFS; i++)
        assert_ptr_equal(reg_family_find(fx->t, defs[i].name), exp_famset_get(&fx->fs, i));
    /* a stale relink (someone already replaced `old`) changes nothing */
    assert_int_equal(exp_famset_relink(&fx->fs, fx->t, 0, old), REG_OK);
    assert_ptr_equal(exp_famset_get(&fx->fs, 0), nu);
    assert_int_equal(refs(nu), 2);
    reg_end(fx->t);
    reg_reap(fx->r);
    assert_int_equal(reg_family_total(fx->r), NDEFS);
}

/* relink of a family that was not removed (a spurious REG_EGONE report): the registry hands
 * back the same family; it must still be held exactly once. */
static void test_relink_live_family_keeps_one_hold(void **state) {
    fixture *fx = *state;
    link_all_ok(fx);
    reg_begin(fx->t);
    reg_family *f = exp_famset_get(&fx->fs, 1);
    assert_int_equal(refs(f), 2);
    assert_int_equal(exp_famset_relink(&fx->fs, fx->t, 1, f), REG_OK);
    reg_family *g = exp_famset_get(&fx->fs, 1);
    assert_ptr_equal(g, f);
    assert_int_equal(refs(g), 2);
    reg_end(fx->t);
}

/* Two threads that both saw REG_EGONE on the same family relink at the same moment: one
 * family is registered and held once, the removed one released once. Many rounds. */
typedef struct {
    fixture *fx;
    pthread_barrier_t *go;
    reg_family *gone;
    int rc;
} relinker;

static void *relink_thread(void *arg) {
    relinker *w = arg;
    reg_thread *t = reg_thread_attach(w->fx->r);
    assert_non_null(t);
    pthread_barrier_wait(w->go);
    reg_begin(t);
    w->rc = exp_famset_relink(&w->fx->fs, t, 0, w->gone);
    reg_end(t);
    reg_thread_detach(t);
    return NULL;
}

static void test_relink_concurrent_once(void **state) {
    fixture *fx = *state;
    link_all_ok(fx);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    const char *v[] = {"500"};
    for (int round = 0; round < 200; round++) {
        reg_begin(fx->t);
        reg_family *gone = exp_famset_get(&fx->fs, 0);
        reg_end(fx->t);
        assert_int_equal(reg_family_remove(fx->r, defs[0].name), REG_OK);
        assert_int_equal(refs(gone), 1);
        /* hold it for the check below: one hold of ours plus the famset's */
        reg_begin(fx->t);
        assert_int_equal(reg_family_hold(gone), REG_OK);
        reg_end(fx->t);

        relinker a = {fx, &go, gone, -1}, b = {fx, &go, gone, -1};
        pthread_t ta, tb;
        assert_int_equal(pthread_create(&ta, NULL, relink_thread, &a), 0);
        assert_int_equal(pthread_create(&tb, NULL, relink_thread, &b), 0);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        assert_int_equal(a.rc, REG_OK);
        assert_int_equal(b.rc, REG_OK);

        reg_begin(fx->t);
        reg_family *nu = exp_famset_get(&fx->fs, 0);
        assert_ptr_not_equal(nu, gone);
        assert_ptr_equal(reg_family_find(fx->t, defs[0].name), nu);
        if (refs(nu) != 2)
            fail_msg("round %d: the relinked family has %llu references, want 2 (registered "
                     "and held once)",
                     round, (unsigned long long)refs(nu));
        if (refs(gone) != 1)
            fail_msg("round %d: the removed family has %llu references, want 1 (ours: the "
                     "famset released its hold once)",
                     round, (unsigned long long)refs(gone));
        assert_int_equal(reg_counter_add(fx->t, nu, v, 1), REG_OK);
        reg_end(fx->t);
        reg_family_release(fx->r, gone);
    }
    pthread_barrier_destroy(&go);
    reg_reap(fx->r);
    assert_int_equal(reg_family_total(fx->r), NDEFS);
}

/* A family of the same name with another definition: link_all stops there with
 * "registering <name>: <error>"; the families before it are held, those after not linked. */
static void test_link_all_conflict(void **state) {
    fixture *fx = *state;
    reg_begin(fx->t);
    reg_family *theirs;
    reg_family_def clash = {.name = "own_up", .help = "Someone else's.", .type = REG_COUNTER};
    assert_int_equal(reg_family_add(fx->t, &clash, &theirs), REG_OK);
    char err[256] = "";
    int rc = exp_famset_link_all(&fx->fs, fx->t, err, sizeof err);
    assert_int_equal(rc, REG_ECONFLICT);
    char want[256];
    snprintf(want, sizeof want, "registering own_up: %s", reg_strerror(REG_ECONFLICT));
    assert_string_equal(err, want);
    reg_family *first = exp_famset_get(&fx->fs, 0);
    assert_non_null(first);
    assert_int_equal(refs(first), 2);
    assert_null(exp_famset_get(&fx->fs, 1));
    assert_null(exp_famset_get(&fx->fs, 2));
    assert_null(reg_family_find(fx->t, "own_seconds"));
    assert_ptr_equal(reg_family_find(fx->t, "own_up"), theirs); /* theirs untouched */
    assert_int_equal(refs(theirs), 1);
    reg_end(fx->t);
    /* teardown's destroy releases what was held (ASan / the reference count would show a
     * release of a NULL slot or a double release) */
}

/* relink when a declared metric took the name with another definition (a reload declared
 * own_requests_total as a gauge): the registry error comes back and the slot keeps the old
 * family, so a later relink can still try. */
static void test_relink_conflict_keeps_slot(void **state) {
    fixture *fx = *state;
    link_all_ok(fx);
    reg_begin(fx->t);
    reg_family *old = exp_famset_get(&fx->fs, 0);
    reg_end(fx->t);
    assert_int_equal(reg_family_remove(fx->r, defs[0].name), REG_OK);
    reg_begin(fx->t);
    reg_family *theirs;
    reg_family_def clash = {.name = "own_requests_total", .type = REG_GAUGE};
    assert_int_equal(reg_family_add(fx->t, &clash, &theirs), REG_OK);
    assert_int_equal(exp_famset_relink(&fx->fs, fx->t, 0, old), REG_ECONFLICT);
    assert_ptr_equal(exp_famset_get(&fx->fs, 0), old);
    assert_int_equal(refs(old), 1);
    assert_int_equal(refs(theirs), 1);
    reg_end(fx->t);
    /* the name is free again: now relink succeeds */
    assert_int_equal(reg_family_remove(fx->r, "own_requests_total"), REG_OK);
    reg_begin(fx->t);
    assert_int_equal(exp_famset_relink(&fx->fs, fx->t, 0, old), REG_OK);
    assert_ptr_not_equal(exp_famset_get(&fx->fs, 0), old);
    assert_int_equal(reg_family_definition(exp_famset_get(&fx->fs, 0))->type, REG_COUNTER);
    reg_end(fx->t);
}

/* destroy releases each hold once: a family still registered keeps only the registry's
 * link, and one removed meanwhile is freed (reaped) with the registry's count back to 0. */
static void test_destroy_releases(void **state) {
    (void)state;
    reg_options o = {0};
    reg_registry *r = reg_create(&o);
    reg_thread *t = reg_thread_attach(r);
    exp_famset fs;
    exp_famset_init(&fs, r, defs, NDEFS);
    char err[128];
    reg_begin(t);
    assert_int_equal(exp_famset_link_all(&fs, t, err, sizeof err), REG_OK);
    reg_family *kept = exp_famset_get(&fs, 1);
    assert_int_equal(reg_family_hold(kept), REG_OK); /* ours, to look after destroy */
    reg_end(t);
    assert_int_equal(reg_family_remove(r, defs[0].name), REG_OK);
    exp_famset_destroy(&fs);
    assert_int_equal(refs(kept), 2); /* registry link + our hold; the famset's is gone */
    reg_family_release(r, kept);
    reg_reap(r);
    assert_int_equal(reg_family_total(r), NDEFS - 1);
    reg_thread_detach(t);
    reg_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_link_all_registers_and_holds, setup, teardown),
        cmocka_unit_test(test_init_caps_n),
        cmocka_unit_test_setup_teardown(test_relink_after_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relink_live_family_keeps_one_hold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relink_concurrent_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_all_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relink_conflict_keeps_slot, setup, teardown),
        cmocka_unit_test(test_destroy_releases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
