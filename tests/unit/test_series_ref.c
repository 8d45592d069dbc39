/* test_series_ref.c - unit tests of remembered series (reg_update, reg_update_ref): a ref
 * updates its series across sections, checks values like the update it stands for, and is
 * refused (nothing applied) once any series of its family was removed: deleted, reaped, reset
 * or removed with the family. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"

typedef struct {
    reg_registry *r;
    reg_thread *t;
    reg_family *f; /* counter_total{id} */
    reg_family *h; /* latency{id}, buckets 1 and 10 */
} fixture;

static const char *const LBL[] = {"id"};
static const double BUCKETS[] = {1, 10};

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof(*fx));
    reg_options o = {0}; /* no reaper thread: the test reaps */
    fx->r = reg_create(&o);
    fx->t = reg_thread_attach(fx->r);
    reg_family_def d = {.name = "counter_total",
                        .type = REG_COUNTER,
                        .nlabels = 1,
                        .labels = LBL,
                        .ttl_ns = 1000000000ull * 3600};
    reg_family_def hd = {.name = "latency",
                         .type = REG_HISTOGRAM,
                         .nlabels = 1,
                         .labels = LBL,
                         .nbuckets = 2,
                         .buckets = BUCKETS};
    reg_begin(fx->t);
    int rc = reg_family_add(fx->t, &d, &fx->f);
    rc |= reg_family_add(fx->t, &hd, &fx->h);
    reg_end(fx->t);
    *state = fx;
    return rc == REG_OK ? 0 : -1;
}

static int teardown(void **state) {
    fixture *fx = *state;
    reg_thread_detach(fx->t);
    reg_destroy(fx->r);
    free(fx);
    return 0;
}

/* The value of counter_total{id}, or -1 when there is no such series. */
static double value_of(fixture *fx, const char *id) {
    reg_series **v = NULL;
    size_t cap = 0;
    double found = -1;
    reg_begin(fx->t);
    long n = reg_family_collect(fx->t, fx->f, &v, &cap);
    for (long i = 0; i < n; i++) {
        char buf[32];
        if (reg_series_label_value(v[i], 0, buf, sizeof buf) >= 0 && strcmp(buf, id) == 0)
            found = reg_series_value(v[i]);
    }
    reg_end(fx->t);
    free(v);
    return found;
}

/* reg_update on counter_total{id} by label values, filling *ref. */
static void add_by_values(fixture *fx, const char *id, double v, reg_series_ref *ref) {
    const char *vals[] = {id};
    reg_begin(fx->t);
    assert_int_equal(reg_update(fx->t, fx->f, vals, REG_OP_COUNTER_ADD, v, 1, ref), REG_OK);
    reg_end(fx->t);
}

/* reg_update_ref on counter_total in a section of its own: its result. */
static int add_by_ref(fixture *fx, const reg_series_ref *ref, double v) {
    reg_begin(fx->t);
    int rc = reg_update_ref(fx->t, fx->f, ref, REG_OP_COUNTER_ADD, v, 1);
    reg_end(fx->t);
    return rc;
}

static void test_ref_updates_its_series_across_sections(void **state) {
    fixture *fx = *state;
    reg_series_ref a, b;
    add_by_values(fx, "a", 1, &a);
    add_by_values(fx, "b", 10, &b);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(add_by_ref(fx, &a, 2), REG_OK);
        assert_int_equal(add_by_ref(fx, &b, 1), REG_OK);
    }
    assert_true(value_of(fx, "a") == 201);
    assert_true(value_of(fx, "b") == 110);
    /* Creating other series removes nothing: the refs stay good. */
    add_by_values(fx, "c", 1, NULL);
    assert_int_equal(add_by_ref(fx, &a, 1), REG_OK);
    assert_true(value_of(fx, "a") == 202);
}

static void test_ref_checks_values_like_the_update(void **state) {
    fixture *fx = *state;
    reg_series_ref a;
    add_by_values(fx, "a", 1, &a);
    assert_int_equal(add_by_ref(fx, &a, -1), REG_EINVAL);
    assert_int_equal(add_by_ref(fx, &a, INFINITY), REG_EINVAL);
    assert_int_equal(add_by_ref(fx, &a, NAN), REG_EINVAL);
    reg_begin(fx->t);
    assert_int_equal(reg_update_ref(fx->t, fx->f, &a, REG_OP_GAUGE_SET, 5, 1), REG_EINVAL);
    assert_int_equal(reg_update_ref(fx->t, fx->f, &a, REG_OP_OBSERVE, 5, 1), REG_EINVAL);
    reg_end(fx->t);
    assert_true(value_of(fx, "a") == 1);
    /* By label values too, and then no ref is filled. */
    const char *vals[] = {"a"};
    reg_series_ref none = {0};
    reg_begin(fx->t);
    assert_int_equal(reg_update(fx->t, fx->f, vals, REG_OP_COUNTER_ADD, -1, 1, &none), REG_EINVAL);
    reg_end(fx->t);
    assert_null(none.s);
}

static void test_deleted_series_refuses_its_ref(void **state) {
    fixture *fx = *state;
    reg_series_ref a, b;
    add_by_values(fx, "a", 1, &a);
    add_by_values(fx, "b", 1, &b);
    const char *va[] = {"a"};
    assert_int_equal(reg_series_delete(fx->r, fx->f, va), REG_OK);
    reg_reap(fx->r); /* reclaims what was retired: a's memory may be gone */
    assert_int_equal(add_by_ref(fx, &a, 5), REG_ESTALE);
    assert_true(value_of(fx, "a") == -1); /* nothing applied, nothing re-created */
    /* Any removal in the family retires every ref of it, b's too. */
    assert_int_equal(add_by_ref(fx, &b, 5), REG_ESTALE);
    assert_true(value_of(fx, "b") == 1);
    /* By label values again: a fresh ref that works. */
    add_by_values(fx, "a", 3, &a);
    assert_int_equal(add_by_ref(fx, &a, 4), REG_OK);
    assert_true(value_of(fx, "a") == 7);
}

static void test_reaped_series_refuses_its_ref(void **state) {
    fixture *fx = *state;
    reg_family_def d = {
        .name = "short_total", .type = REG_COUNTER, .nlabels = 1, .labels = LBL, .ttl_ns = 1};
    reg_family *f;
    reg_begin(fx->t);
    assert_int_equal(reg_family_add(fx->t, &d, &f), REG_OK);
    const char *vals[] = {"x"};
    reg_series_ref x;
    assert_int_equal(reg_update(fx->t, f, vals, REG_OP_COUNTER_ADD, 1, 1, &x), REG_OK);
    assert_int_equal(reg_family_hold(f), REG_OK);
    reg_end(fx->t);
    /* The reaper removes a series it has seen idle for its TTL: two passes. */
    size_t removed = 0;
    for (int i = 0; i < 100 && removed == 0; i++)
        removed += reg_reap(fx->r);
    assert_int_equal(removed, 1);
    reg_begin(fx->t);
    assert_int_equal(reg_update_ref(fx->t, f, &x, REG_OP_COUNTER_ADD, 1, 1), REG_ESTALE);
    assert_int_equal(reg_family_series_count(f), 0);
    reg_end(fx->t);
    reg_family_release(fx->r, f);
}

static void test_removed_family_refuses_its_refs(void **state) {
    fixture *fx = *state;
    reg_series_ref a;
    add_by_values(fx, "a", 1, &a);
    assert_int_equal(reg_family_hold(fx->f), REG_OK); /* what a ref's user must do */
    assert_int_equal(reg_family_remove(fx->r, "counter_total"), REG_OK);
    reg_reap(fx->r);
    assert_int_equal(add_by_ref(fx, &a, 1), REG_ESTALE);
    const char *vals[] = {"a"};
    reg_begin(fx->t);
    assert_int_equal(reg_update(fx->t, fx->f, vals, REG_OP_COUNTER_ADD, 1, 1, NULL), REG_EGONE);
    reg_end(fx->t);
    reg_family_release(fx->r, fx->f);
}

static void test_reset_family_refuses_its_refs(void **state) {
    fixture *fx = *state;
    reg_series_ref a;
    add_by_values(fx, "a", 1, &a);
    assert_int_equal(reg_family_reset(fx->r, fx->f), REG_OK);
    assert_int_equal(add_by_ref(fx, &a, 1), REG_ESTALE);
    assert_true(value_of(fx, "a") == -1);
}

static void test_histogram_by_ref(void **state) {
    fixture *fx = *state;
    const char *vals[] = {"h"};
    reg_series_ref h;
    reg_begin(fx->t);
    assert_int_equal(reg_update(fx->t, fx->h, vals, REG_OP_OBSERVE, 0.5, 2, &h), REG_OK);
    assert_int_equal(reg_update_ref(fx->t, fx->h, &h, REG_OP_OBSERVE, 5, 3), REG_OK);
    assert_int_equal(reg_update_ref(fx->t, fx->h, &h, REG_OP_OBSERVE, 50, 1), REG_OK);
    assert_int_equal(reg_update_ref(fx->t, fx->h, &h, REG_OP_OBSERVE, 1, 0), REG_EINVAL);
    assert_int_equal(reg_update_ref(fx->t, fx->h, &h, REG_OP_OBSERVE, NAN, 1), REG_EINVAL);
    reg_series **v = NULL;
    size_t cap = 0;
    assert_int_equal(reg_family_collect(fx->t, fx->h, &v, &cap), 1);
    uint64_t cum[3];
    double sum;
    reg_series_histogram(v[0], fx->h, cum, &sum);
    reg_end(fx->t);
    free(v);
    assert_int_equal(cum[0], 2);
    assert_int_equal(cum[1], 5);
    assert_int_equal(cum[2], 6);
    assert_true(sum == 0.5 * 2 + 5 * 3 + 50);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ref_updates_its_series_across_sections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ref_checks_values_like_the_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_series_refuses_its_ref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reaped_series_refuses_its_ref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_family_refuses_its_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_family_refuses_its_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_by_ref, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
