/* test_registry.c - unit tests of the registry: families, every update, errors, removal,
 * limits, snapshots and accessors (single-threaded; concurrency is in tests/stress/). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/labels.h"
#include "registry.h"

typedef struct {
    reg_registry *r;
    reg_thread *t;
    double removed_sum; /* summed final values seen by the removal hook */
    int removed;
} fixture;

static void on_remove(void *arg, const reg_family *f, const reg_series *s) {
    fixture *fx = arg;
    fx->removed++;
    if (reg_family_definition(f)->type == REG_COUNTER)
        fx->removed_sum += reg_series_value(s);
}

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof(*fx));
    reg_options o = {0};
    o.on_remove = on_remove;
    o.on_remove_arg = fx;
    fx->r = reg_create(&o);
    fx->t = reg_thread_attach(fx->r);
    *state = fx;
    return fx->r && fx->t ? 0 : -1;
}

static int teardown(void **state) {
    fixture *fx = *state;
    reg_thread_detach(fx->t);
    reg_destroy(fx->r);
    free(fx);
    return 0;
}

static const char *const L2[] = {"queue", "outcome"};

static reg_family *add(fixture *fx, const char *name, reg_type type, size_t nlabels) {
    static const double buckets[] = {0.1, 1, 10};
    static const reg_objective obj[] = {{0.5, 0.05}, {0.9, 0.01}};
    reg_family_def d = {
        .name = name, .help = "help", .type = type, .nlabels = nlabels, .labels = L2};
    if (type == REG_HISTOGRAM) {
        d.nbuckets = 3;
        d.buckets = buckets;
    }
    if (type == REG_SUMMARY) {
        d.nobjectives = 2;
        d.objectives = obj;
    }
    reg_family *f = NULL;
    reg_begin(fx->t);
    assert_int_equal(reg_family_add(fx->t, &d, &f), REG_OK);
    reg_end(fx->t);
    assert_non_null(f);
    return f;
}

/* Snapshot f and return the value of the series whose label text is labels, or NAN. */
static double value_of(fixture *fx, reg_family *f, const char *labels) {
    reg_series **v = NULL;
    size_t cap = 0;
    double out = NAN;
    reg_begin(fx->t);
    long n = reg_family_collect(fx->t, f, &v, &cap);
    for (long i = 0; i < n; i++) {
        size_t len;
        char lb[REG_MAX_KEY + 1];
        const char *l = test_labels(f, v[i], lb, &len);
        if (strlen(labels) == len && memcmp(l, labels, len) == 0)
            out = reg_series_value(v[i]);
    }
    reg_end(fx->t);
    free(v);
    return out;
}

static void test_counter_add(void **state) {
    fixture *fx = *state;
    reg_family *f = add(fx, "jobs_total", REG_COUNTER, 2);
    const char *a[] = {"q1", "ok"}, *b[] = {"q1", "failed"};
    reg_begin(fx->t);
    assert_int_equal(reg_counter_add(fx->t, f, a, 1), REG_OK);
    assert_int_equal(reg_counter_add(fx->t, f, a, 2.5), REG_OK);
    assert_int_equal(reg_counter_add(fx->t, f, b, 1), REG_OK);
    assert_int_equal(reg_counter_add(fx->t, f, a, -1), REG_EINVAL);
    assert_int_equal(reg_counter_add(fx->t, f, a, NAN), REG_EINVAL);
    assert_int_equal(reg_counter_add(fx->t, f, a, INFINITY), REG_EINVAL); /* +Inf for good */
    assert_int_equal(reg_gauge_set(fx->t, f, a, 1), REG_EINVAL);
    assert_int_equal(reg_observe(fx->t, f, a, 1), REG_EINVAL);
    reg_end(fx->t);
    assert_true(value_of(fx, f, "queue=\"q1\",outcome=\"ok\"") == 3.5);
    assert_true(value_of(fx, f, "queue=\"q1\",outcome=\"failed\"") == 1);
    assert_int_equal(reg_family_series_count(f), 2);
    assert_int_equal(reg_series_total(fx->r), 2);
}

static void test_gauge(void **state) {
    fixture *fx = *state;
    reg_family *f = add(fx, "temp", REG_GAUGE, 0);
    reg_begin(fx->t);
    assert_int_equal(reg_gauge_set(fx->t, f, NULL, 5), REG_OK);
    assert_int_equal(reg_gauge_add(fx->t, f, NULL, -7.5), REG_OK);
    assert_int_equal(reg_counter_add(fx->t, f, NULL, 1), REG_EINVAL);
    reg_end(fx->t);
    assert_true(value_of(fx, f, "") == -2.5);
    reg_begin(fx->t);
    assert_int_equal(reg_gauge_set(fx->t, f, NULL, INFINITY), REG_OK);
    reg_end(fx->t);
    assert_true(isinf(value_of(fx, f, "")));
}

static void test_histogram(void **state) {
    fixture *fx = *state;
    reg_family *f = add(fx, "latency_seconds", REG_HISTOGRAM, 0);
    double obs[] = {0.05, 0.1, 0.5, 5, 50};
    reg_begin(fx->t);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(reg_observe(fx->t, f, NULL, obs[i]), REG_OK);
    assert_int_equal(reg_observe_n(fx->t, f, NULL, 0.2, 10), REG_OK);
    assert_int_equal(reg_observe_n(fx->t, f, NULL, 0.2, 0), REG_EINVAL);
    /* One NaN or Inf would stay in _sum for good: refused, nothing counted. */
    assert_int_equal(reg_observe(fx->t, f, NULL, NAN), REG_EINVAL);
    assert_int_equal(reg_observe(fx->t, f, NULL, INFINITY), REG_EINVAL);
    assert_int_equal(reg_observe_n(fx->t, f, NULL, -INFINITY, 3), REG_EINVAL);
    reg_series **v = NULL;
    size_t cap = 0;
    assert_int_equal(reg_family_collect(fx->t, f, &v, &cap), 1);
    uint64_t cum[4];
    double sum;
    reg_series_histogram(v[0], f, cum, &sum);
    reg_end(fx->t);
    free(v);
    /* le=0.1: 0.05, 0.1; le=1: + 0.5 + 10x0.2; le=10: + 5; +Inf: + 50 */
    assert_int_equal(cum[0], 2);
    assert_int_equal(cum[1], 13);
    assert_int_equal(cum[2], 14);
    assert_int_equal(cum[3], 15);
    assert_true(fabs(sum - 57.65) < 1e-9);
}

static void test_summary(void **state) {
    fixture *fx = *state;
    reg_family *f = add(fx, "size_bytes", REG_SUMMARY, 1);
    const char *a[] = {"x"};
    reg_begin(fx->t);
    for (int i = 1; i <= 100; i++)
        assert_int_equal(reg_observe(fx->t, f, a, i), REG_OK);
    /* A sampled timer (@0.1): one observation that stands for ten. */
    assert_int_equal(reg_observe_n(fx->t, f, a, 50, 10), REG_OK);
    reg_series **v = NULL;
    size_t cap = 0;
    assert_int_equal(reg_family_collect(fx->t, f, &v, &cap), 1);
    double q[2], sum;
    uint64_t count;
    reg_series_summary(v[0], f, q, &count, &sum);
    reg_end(fx->t);
    free(v);
    assert_int_equal(count, 110);
    assert_true(sum == 5550);
    assert_true(fabs(q[0] - 50) <= 6);
    assert_true(fabs(q[1] - 90) <= 2);
}

static void test_family_definitions(void **state) {
    fixture *fx = *state;
    reg_family *f = add(fx, "a_total", REG_COUNTER, 2), *g = NULL;
    reg_family_def same = {
        .name = "a_total", .help = "help", .type = REG_COUNTER, .nlabels = 2, .labels = L2};
    reg_family_def gauge = same, onelabel = same;
    gauge.type = REG_GAUGE;
    onelabel.nlabels = 1;
    reg_begin(fx->t);
    assert_int_equal(reg_family_add(fx->t, &same, &g), REG_OK);
    assert_ptr_equal(f, g);
    assert_int_equal(reg_family_add(fx->t, &gauge, &g), REG_ECONFLICT);
    assert_int_equal(reg_family_add(fx->t, &onelabel, &g), REG_ECONFLICT);
    assert_ptr_equal(reg_family_find(fx->t, "a_total"), f);
    assert_null(reg_family_find(fx->t, "b_total"));
    reg_end(fx->t);
    assert_true(reg_family_matches(f, &same));
    assert_false(reg_family_matches(f, &gauge));
    assert_int_equal(reg_family_total(fx->r), 1);
}

static void test_invalid_definitions(void **state) {
    fixture *fx = *state;
    static const char *const bad_label[] = {"__x"}, *const le[] = {"le"}, *const dup[] = {"a", "a"},
                             *const q[] = {"quantile"};
    static const double unsorted[] = {1, 0.5}, dupb[] = {1, 1}, infb[] = {1, INFINITY};
    static const reg_objective badq[] = {{1.5, 0.01}};
    reg_family_def defs[] = {
        {.name = "1abc", .type = REG_COUNTER},
        {.name = "", .type = REG_COUNTER},
        {.name = "ok", .type = REG_COUNTER, .nlabels = 1, .labels = bad_label},
        {.name = "ok", .type = REG_HISTOGRAM, .nlabels = 1, .labels = le},
        {.name = "ok", .type = REG_SUMMARY, .nlabels = 1, .labels = q},
        {.name = "ok", .type = REG_GAUGE, .nlabels = 2, .labels = dup},
        {.name = "ok", .type = REG_HISTOGRAM, .nbuckets = 2, .buckets = unsorted},
        {.name = "ok", .type = REG_HISTOGRAM, .nbuckets = 2, .buckets = dupb},
        {.name = "ok", .type = REG_HISTOGRAM, .nbuckets = 2, .buckets = infb},
        {.name = "ok", .type = REG_SUMMARY, .nobjectives = 1, .objectives = badq},
        {.name = "ok", .type = (reg_type)42},
    };
    char *longname = malloc(REG_MAX_NAME + 2);
    memset(longname, 'n', REG_MAX_NAME + 1);
    longname[REG_MAX_NAME + 1] = '\0';
    reg_family_def toolong = {.name = longname, .type = REG_GAUGE};
    reg_family *lf = NULL;
    reg_begin(fx->t);
    assert_int_equal(reg_family_add(fx->t, &toolong, &lf), REG_EINVAL);
    longname[REG_MAX_NAME] = '\0'; /* exactly the limit is fine */
    assert_int_equal(reg_family_add(fx->t, &toolong, &lf), REG_OK);
    reg_end(fx->t);
    assert_int_equal(reg_family_remove(fx->r, longname), REG_OK);
    free(longname);
    reg_begin(fx->t);
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        reg_family *f = (reg_family *)1;
        assert_int_equal(reg_family_add(fx->t, &defs[i], &f), REG_EINVAL);
        assert_null(f);
    }
    reg_end(fx->t);
    assert_int_equal(reg_family_total(fx->r), 0);
}

static void test_label_escaping_and_values(void **state) {
    fixture *fx = *state;
    reg_family *f = add(fx, "esc_total", REG_COUNTER, 2);
    const char *vals[] = {"a\"b\\c\nd", "\xc3\xa9t\xc3\xa9"};
    const char *bad_utf8[] = {"\xff\xfe", "x"};
    reg_begin(fx->t);
    assert_int_equal(reg_counter_add(fx->t, f, vals, 1), REG_OK);
    assert_int_equal(reg_counter_add(fx->t, f, bad_utf8, 1), REG_EINVAL);
    assert_int_equal(reg_counter_add(fx->t, f, vals, 1), REG_OK); /* found again */
    /* values that splice label text together must not match another series */
    const char *plain[] = {"x", "y"}, *spliced[] = {"x\",outcome=\"y", ""};
    assert_int_equal(reg_counter_add(fx->t, f, plain, 1), REG_OK);
    assert_int_equal(reg_counter_add(fx->t, f, spliced, 5), REG_OK);
    reg_end(fx->t);
    assert_true(value_of(fx, f, "queue=\"x\",outcome=\"y\"") == 1);
    assert_int_equal(reg_family_series_count(f), 3);
    assert_int_equal(reg_series_delete(fx->r, f, plain), REG_OK);
    assert_int_equal(reg_series_delete(fx->r, f, spliced), REG_OK);
    reg_begin(fx->t);
    reg_series **v = NULL;
    size_t cap = 0;
    assert_int_equal(reg_family_collect(fx->t, f, &v, &cap), 1);
    assert_true(reg_series_value(v[0]) == 2);
    char lb[REG_MAX_KEY + 1];
    const char *l = test_labels(f, v[0], lb, NULL);
    assert_string_equal(l, "queue=\"a\\\"b\\\\c\\nd\",outcome=\"\xc3\xa9t\xc3\xa9\"");
    char buf[64];
    assert_int_equal(reg_series_label_value(v[0], 0, buf, sizeof buf), 7);
    assert_string_equal(buf, vals[0]);
    assert_int_equal(reg_series_label_value(v[0], 1, buf, sizeof buf), 5);
    assert_string_equal(buf, vals[1]);
    assert_int_equal(reg_series_label_value(v[0], 2, buf, sizeof buf), -1);
    assert_int_equal(reg_series_label_value(v[0], 0, buf, 4), -1);
    assert_true(reg_series_created(v[0]) > 1.6e9);
    reg_end(fx->t);
    free(v);
}

static void test_key_too_long(void **state) {
    fixture *fx = *state;
    reg_family *f = add(fx, "long_total", REG_COUNTER, 2);
    char *big = malloc(REG_MAX_KEY + 1);
    memset(big, 'x', REG_MAX_KEY);
    big[REG_MAX_KEY] = '\0';
    const char *vals[] = {big, "y"};
    reg_begin(fx->t);
    assert_int_equal(reg_counter_add(fx->t, f, vals, 1), REG_EINVAL);
    reg_end(fx->t);
    assert_int_equal(reg_series_delete(fx->r, f, vals), REG_ENOTFOUND);
    free(big);
}

static void test_series_limit(void **state) {
    fixture *fx = *state;
    reg_family_def d = {
        .name = "limited_total", .type = REG_COUNTER, .nlabels = 1, .labels = L2, .max_series = 3};
    reg_family *f;
    reg_begin(fx->t);
    assert_int_equal(reg_family_add(fx->t, &d, &f), REG_OK);
    const char *names[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++) {
        const char *v[] = {names[i]};
        assert_int_equal(reg_counter_add(fx->t, f, v, 1), i < 3 ? REG_OK : REG_ELIMIT);
    }
    const char *v[] = {"a"};
    assert_int_equal(reg_counter_add(fx->t, f, v, 1), REG_OK); /* existing still updates */
    reg_end(fx->t);
    assert_int_equal(reg_family_refused(f), 2);
    assert_int_equal(reg_series_delete(fx->r, f, v), REG_OK);
    const char *e[] = {"e"};
    reg_begin(fx->t);
    assert_int_equal(reg_counter_add(fx->t, f, e, 1), REG_OK); /* room again */
    reg_end(fx->t);
}

static void test_global_limit(void **state) {
    (void)state;
    reg_options o = {.max_series = 2};
    reg_registry *r = reg_create(&o);
    reg_thread *t = reg_thread_attach(r);
    reg_family_def d = {.name = "g", .type = REG_GAUGE, .nlabels = 1, .labels = L2};
    reg_family_def d2 = {.name = "h", .type = REG_GAUGE, .nlabels = 1, .labels = L2};
    reg_family *f, *g;
    reg_begin(t);
    assert_int_equal(reg_family_add(t, &d, &f), REG_OK);
    assert_int_equal(reg_family_add(t, &d2, &g), REG_OK);
    const char *a[] = {"a"}, *b[] = {"b"};
    assert_int_equal(reg_gauge_set(t, f, a, 1), REG_OK);
    assert_int_equal(reg_gauge_set(t, g, a, 1), REG_OK);
    assert_int_equal(reg_gauge_set(t, f, b, 1), REG_ELIMIT);
    assert_int_equal(reg_gauge_set(t, g, b, 1), REG_ELIMIT);
    reg_end(t);
    assert_int_equal(reg_family_refused(f) + reg_family_refused(g), 2);
    reg_thread_detach(t);
    reg_destroy(r);
}

static void test_delete_and_reset(void **state) {
    fixture *fx = *state;
    reg_family *f = add(fx, "del_total", REG_COUNTER, 1);
    const char *a[] = {"a"}, *b[] = {"b"};
    reg_begin(fx->t);
    reg_counter_add(fx->t, f, a, 4);
    reg_counter_add(fx->t, f, b, 6);
    reg_end(fx->t);
    assert_int_equal(reg_series_delete(fx->r, f, a), REG_OK);
    assert_int_equal(reg_series_delete(fx->r, f, a), REG_ENOTFOUND);
    assert_int_equal(fx->removed, 1);
    assert_true(fx->removed_sum == 4);
    assert_true(isnan(value_of(fx, f, "queue=\"a\"")));
    reg_begin(fx->t);
    reg_counter_add(fx->t, f, a, 1); /* re-created from zero */
    reg_end(fx->t);
    assert_true(value_of(fx, f, "queue=\"a\"") == 1);
    assert_int_equal(reg_family_reset(fx->r, f), REG_OK);
    assert_int_equal(reg_family_series_count(f), 0);
    assert_true(fx->removed_sum == 11);
    assert_int_equal(reg_series_total(fx->r), 0);
}

static void test_family_remove_and_hold(void **state) {
    fixture *fx = *state;
    reg_family *f = add(fx, "gone_total", REG_COUNTER, 0);
    reg_begin(fx->t);
    assert_int_equal(reg_family_hold(f), REG_OK);
    assert_int_equal(reg_counter_add(fx->t, f, NULL, 2), REG_OK);
    reg_end(fx->t);
    assert_int_equal(reg_family_remove(fx->r, "gone_total"), REG_OK);
    assert_int_equal(reg_family_remove(fx->r, "gone_total"), REG_ENOTFOUND);
    assert_true(fx->removed_sum == 2);
    reg_begin(fx->t);
    assert_null(reg_family_find(fx->t, "gone_total"));
    /* the held family is still readable, but updates report it gone */
    assert_int_equal(reg_counter_add(fx->t, f, NULL, 1), REG_EGONE);
    assert_int_equal(reg_family_hold(f), REG_OK);
    reg_end(fx->t);
    reg_family_release(fx->r, f);
    reg_family_release(fx->r, f);
    reg_reap(fx->r); /* frees it; ASan would catch a use after this */
    /* a new family of the same name, even of another type, is a fresh one */
    reg_family *g = add(fx, "gone_total", REG_GAUGE, 0);
    assert_ptr_not_equal(g, NULL);
    assert_int_equal(reg_family_total(fx->r), 1);
}

static void test_ttl_reap(void **state) {
    fixture *fx = *state;
    reg_family_def d = {
        .name = "ttl_total", .type = REG_COUNTER, .nlabels = 1, .labels = L2, .ttl_ns = 1};
    reg_family *f;
    reg_begin(fx->t);
    assert_int_equal(reg_family_add(fx->t, &d, &f), REG_OK);
    const char *a[] = {"a"};
    assert_int_equal(reg_counter_add(fx->t, f, a, 3), REG_OK);
    reg_end(fx->t);
    /* The first pass sees a new sequence and restarts the TTL; the next one expires it. */
    assert_int_equal(reg_reap(fx->r), 0);
    assert_int_equal(reg_reap(fx->r), 1);
    assert_true(fx->removed_sum == 3);
    assert_int_equal(reg_family_series_count(f), 0);
    /* a family without TTL keeps its series */
    reg_family *g = add(fx, "forever_total", REG_COUNTER, 0);
    reg_begin(fx->t);
    reg_counter_add(fx->t, g, NULL, 1);
    reg_end(fx->t);
    assert_int_equal(reg_reap(fx->r) + reg_reap(fx->r), 0);
    assert_int_equal(reg_family_series_count(g), 1);
}

/* A reader stalled inside a section (a slow scrape client) must not stop expiry; what it may
 * still hold stays readable until it leaves, and is freed afterwards (ASan checks both). */
static void test_stalled_reader_does_not_block_reaping(void **state) {
    fixture *fx = *state;
    reg_family_def d = {
        .name = "stall_total", .type = REG_COUNTER, .nlabels = 1, .labels = L2, .ttl_ns = 1};
    reg_family *f;
    reg_begin(fx->t);
    assert_int_equal(reg_family_add(fx->t, &d, &f), REG_OK);
    const char *a[] = {"a"};
    assert_int_equal(reg_counter_add(fx->t, f, a, 5), REG_OK);
    reg_end(fx->t);

    reg_thread *slow = reg_thread_attach(fx->r);
    reg_begin(slow);
    reg_series **v = NULL;
    size_t cap = 0;
    assert_int_equal(reg_family_collect(slow, f, &v, &cap), 1);
    assert_int_equal(reg_reap(fx->r), 0); /* first look */
    assert_int_equal(reg_reap(fx->r), 1); /* expired, while `slow` is still inside */
    assert_int_equal(reg_reap(fx->r), 0);
    char lb[REG_MAX_KEY + 1];
    assert_string_equal(test_labels(f, v[0], lb, NULL), "queue=\"a\"");
    assert_true(reg_series_value(v[0]) == 5);
    reg_end(slow);
    reg_thread_detach(slow);
    for (int i = 0; i < 4; i++)
        reg_reap(fx->r); /* grace periods pass; the series is freed */
    free(v);
    assert_true(fx->removed_sum == 5);
}

static void test_touch(void **state) {
    fixture *fx = *state;
    reg_family *f = add(fx, "declared", REG_GAUGE, 0);
    reg_begin(fx->t);
    assert_int_equal(reg_touch(fx->t, f, NULL), REG_OK);
    reg_end(fx->t);
    assert_true(value_of(fx, f, "") == 0);
}

static int count_cb(void *arg, reg_family *f) {
    (void)f;
    (*(int *)arg)++;
    return 0;
}

static void test_foreach(void **state) {
    fixture *fx = *state;
    add(fx, "one", REG_GAUGE, 0);
    add(fx, "two", REG_GAUGE, 0);
    int n = 0;
    reg_begin(fx->t);
    assert_int_equal(reg_foreach_family(fx->t, count_cb, &n), 2);
    reg_end(fx->t);
    assert_int_equal(n, 2);
}

static void test_many_series_grow(void **state) {
    fixture *fx = *state;
    reg_family *f = add(fx, "many_total", REG_COUNTER, 1);
    char buf[32];
    reg_begin(fx->t);
    for (int i = 0; i < 20000; i++) {
        snprintf(buf, sizeof buf, "s%d", i);
        const char *v[] = {buf};
        assert_int_equal(reg_counter_add(fx->t, f, v, i), REG_OK);
    }
    reg_end(fx->t);
    assert_int_equal(reg_family_series_count(f), 20000);
    assert_true(value_of(fx, f, "queue=\"s19999\"") == 19999);
    reg_reap(fx->r); /* reclaims the slot arrays retired by grows */
}

static void test_strings(void **state) {
    (void)state;
    assert_string_equal(reg_type_name(REG_HISTOGRAM), "histogram");
    assert_string_equal(reg_strerror(REG_ELIMIT), "series limit reached");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counter_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_family_definitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_definitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_escaping_and_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_limit, setup, teardown),
        cmocka_unit_test(test_global_limit),
        cmocka_unit_test_setup_teardown(test_delete_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_family_remove_and_hold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_reap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_reader_does_not_block_reaping, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_series_grow, setup, teardown),
        cmocka_unit_test(test_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
