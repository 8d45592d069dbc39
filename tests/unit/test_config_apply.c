/* test_config_apply.c - cfg_apply against a real registry: startup, reload with unchanged,
 * changed, removed and added metrics, a family created before it was declared, and the
 * label-less metrics that must export 0 at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

typedef struct {
    reg_registry *r;
    reg_thread *t;
} fixture;

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    reg_options o = {0};
    fx->r = reg_create(&o);
    fx->t = fx->r ? reg_thread_attach(fx->r) : NULL;
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

static cfg_config *load(const char *yaml) {
    cfg_errors e = {0};
    cfg_config *c = cfg_load_string("t.yml", yaml, strlen(yaml), &e);
    if (!c)
        cfg_errors_print(&e, stderr);
    assert_non_null(c);
    cfg_errors_free(&e);
    return c;
}

/* Series count of a family, or -1 when absent. */
static long nseries(fixture *fx, const char *name) {
    reg_begin(fx->t);
    reg_family *f = reg_family_find(fx->t, name);
    long n = f ? (long)reg_family_series_count(f) : -1;
    reg_end(fx->t);
    return n;
}

/* Value of the series with the given label values (NULL for none); NaN when absent. */
static double value(fixture *fx, const char *name, const char *label0) {
    double v = -12345;
    reg_series **buf = NULL;
    size_t cap = 0;
    reg_begin(fx->t);
    reg_family *f = reg_family_find(fx->t, name);
    long n = f ? reg_family_collect(fx->t, f, &buf, &cap) : 0;
    for (long i = 0; i < n; i++) {
        char lv[64] = "";
        if (label0 && reg_series_label_value(buf[i], 0, lv, sizeof lv) < 0)
            continue;
        if (!label0 || !strcmp(lv, label0))
            v = reg_series_value(buf[i]);
    }
    reg_end(fx->t);
    free(buf);
    return v;
}

static size_t nlabels(fixture *fx, const char *name) {
    reg_begin(fx->t);
    reg_family *f = reg_family_find(fx->t, name);
    size_t n = f ? reg_family_definition(f)->nlabels : 999;
    reg_end(fx->t);
    return n;
}

static const char *v1 = "metrics:\n"
                        "  - {name: up_total, type: counter, help: Starts.}\n"
                        "  - {name: temp, type: gauge, labels: [room]}\n"
                        "  - {name: lat_seconds, type: histogram, labels: [op],\n"
                        "     histogram_options: {buckets: [0.1, 1]}}\n"
                        "  - {name: rpc_seconds, type: summary, const_labels: {svc: a}}\n"
                        "  - {name: info, type: gauge, const_labels: {version: \"1\"}}\n";

static const char *v2 = "metrics:\n"
                        "  - {name: up_total, type: counter, help: Starts.}\n"   /* same */
                        "  - {name: temp, type: gauge, labels: [room, floor]}\n" /* changed */
                        "  - {name: rpc_seconds, type: summary, const_labels: {svc: a}}\n"
                        "  - {name: info, type: gauge, const_labels: {version: \"2\"}}\n"
                        "  - {name: queue_depth, type: gauge}\n"; /* new; lat_seconds gone */

static void test_startup_and_reload(void **state) {
    fixture *fx = *state;
    cfg_config *a = load(v1), *b = load(v2);

    assert_int_equal(cfg_apply(fx->r, NULL, a), REG_OK);
    /* Label-less metrics export 0 at once; labelled ones wait for their first update. */
    assert_int_equal(nseries(fx, "up_total"), 1);
    assert_true(value(fx, "up_total", NULL) == 0);
    assert_int_equal(nseries(fx, "temp"), 0);
    assert_int_equal(nseries(fx, "lat_seconds"), 0);
    assert_int_equal(nseries(fx, "rpc_seconds"), 1);
    assert_int_equal(nseries(fx, "info"), 1);

    static const char *const room[] = {"kitchen"};
    reg_begin(fx->t);
    assert_int_equal(reg_counter_add(fx->t, reg_family_find(fx->t, "up_total"), NULL, 5), REG_OK);
    assert_int_equal(reg_gauge_set(fx->t, reg_family_find(fx->t, "temp"), room, 21), REG_OK);
    assert_int_equal(reg_observe(fx->t, reg_family_find(fx->t, "rpc_seconds"), NULL, 0.2), REG_OK);
    reg_end(fx->t);

    /* Applying the same config again changes nothing. */
    assert_int_equal(cfg_apply(fx->r, a, a), REG_OK);
    assert_true(value(fx, "up_total", NULL) == 5);
    assert_true(value(fx, "temp", "kitchen") == 21);

    assert_int_equal(cfg_apply(fx->r, a, b), REG_OK);
    assert_true(value(fx, "up_total", NULL) == 5); /* unchanged: series kept */
    assert_int_equal(nseries(fx, "rpc_seconds"), 1);
    assert_int_equal(nlabels(fx, "temp"), 2); /* changed: replaced, series dropped */
    assert_int_equal(nseries(fx, "temp"), 0);
    assert_int_equal(nseries(fx, "lat_seconds"), -1); /* removed */
    assert_int_equal(nseries(fx, "info"), 1);         /* const label changed: fresh series */
    assert_int_equal(nseries(fx, "queue_depth"), 1);  /* added, label-less: 0 at once */
    assert_true(value(fx, "queue_depth", NULL) == 0);
    assert_int_equal(reg_family_total(fx->r), 5);

    /* Back to v1 and then to nothing declared. */
    assert_int_equal(cfg_apply(fx->r, b, a), REG_OK);
    assert_int_equal(nlabels(fx, "temp"), 1);
    assert_int_equal(nseries(fx, "lat_seconds"), 0);
    assert_int_equal(nseries(fx, "queue_depth"), -1);
    cfg_config *none = cfg_default();
    assert_int_equal(cfg_apply(fx->r, a, none), REG_OK);
    assert_int_equal(reg_family_total(fx->r), 0);

    cfg_free(none);
    cfg_free(a);
    cfg_free(b);
}

/* A family that exists before it is declared (created by a mapping rule or a push) is
 * replaced by the declaration when the definitions differ, and kept when equal. */
static void test_declaration_wins(void **state) {
    fixture *fx = *state;
    static const char *const lbl[] = {"x"};
    reg_family_def d = {.name = "jobs_total", .type = REG_GAUGE, .nlabels = 1, .labels = lbl};
    reg_family *f;
    reg_begin(fx->t);
    assert_int_equal(reg_family_add(fx->t, &d, &f), REG_OK);
    assert_int_equal(reg_gauge_set(fx->t, f, lbl, 1), REG_OK);
    reg_end(fx->t);

    cfg_config *c = load("metrics: [{name: jobs_total, type: counter}]\n");
    assert_int_equal(cfg_apply(fx->r, NULL, c), REG_OK);
    reg_begin(fx->t);
    f = reg_family_find(fx->t, "jobs_total");
    assert_non_null(f);
    assert_int_equal(reg_family_definition(f)->type, REG_COUNTER);
    assert_int_equal(reg_family_definition(f)->nlabels, 0);
    reg_end(fx->t);
    assert_int_equal(nseries(fx, "jobs_total"), 1);

    /* An equal family is kept with its series. */
    reg_begin(fx->t);
    assert_int_equal(reg_counter_add(fx->t, reg_family_find(fx->t, "jobs_total"), NULL, 3), REG_OK);
    reg_end(fx->t);
    cfg_config *c2 = load("metrics: [{name: jobs_total, type: counter}]\n");
    assert_int_equal(cfg_apply(fx->r, NULL, c2), REG_OK);
    assert_true(value(fx, "jobs_total", NULL) == 3);

    /* A metric dropped from the config that is already gone is not an error. */
    assert_int_equal(reg_family_remove(fx->r, "jobs_total"), REG_OK);
    cfg_config *none = cfg_default();
    assert_int_equal(cfg_apply(fx->r, c2, none), REG_OK);
    cfg_free(none);
    cfg_free(c);
    cfg_free(c2);
}

/* Every declared metric's family definition is accepted by the registry as it is. */
static void test_family_defs(void **state) {
    fixture *fx = *state;
    cfg_config *c = load("defaults:\n"
                         "  ttl: 10m\n"
                         "  max_series: 50\n"
                         "  summary_options: {max_age: 1m, age_buckets: 3, buf_cap: 100}\n"
                         "metrics:\n"
                         "  - {name: a_seconds, type: summary, unit: seconds, labels: [x],\n"
                         "     const_labels: {k: v, k2: v2}}\n"
                         "  - {name: b, type: histogram, ttl: 0s, max_series: 0}\n");
    assert_int_equal(cfg_apply(fx->r, NULL, c), REG_OK);
    reg_begin(fx->t);
    const reg_family_def *d = reg_family_definition(reg_family_find(fx->t, "a_seconds"));
    assert_int_equal(d->nobjectives, 3);
    assert_int_equal(d->max_age_ns, 60000000000ULL);
    assert_int_equal(d->age_buckets, 3);
    assert_int_equal(d->buf_cap, 100);
    assert_int_equal(d->ttl_ns, 600000000000ULL);
    assert_int_equal(d->max_series, 50);
    assert_int_equal(d->nconst, 2);
    assert_string_equal(d->const_names[1], "k2");
    assert_string_equal(d->const_values[1], "v2");
    assert_string_equal(d->unit, "seconds");
    d = reg_family_definition(reg_family_find(fx->t, "b"));
    assert_int_equal(d->nbuckets, 11);
    assert_int_equal(d->ttl_ns, 0);
    assert_int_equal(d->max_series, 0);
    reg_end(fx->t);
    cfg_free(c);
}

/* No config at all: nothing to add; with an old one, everything it declared goes. */
static void test_apply_null_config(void **state) {
    fixture *fx = *state;
    assert_int_equal(cfg_apply(fx->r, NULL, NULL), REG_OK);
    assert_int_equal(reg_family_total(fx->r), 0);
    cfg_config *a = load(v1);
    assert_int_equal(cfg_apply(fx->r, NULL, a), REG_OK);
    assert_int_equal(reg_family_total(fx->r), 5);
    assert_int_equal(cfg_apply(fx->r, a, NULL), REG_OK);
    assert_int_equal(reg_family_total(fx->r), 0);
    assert_int_equal(nseries(fx, "up_total"), -1);
    cfg_free(a);
}

/* A definition the registry refuses (a config built or changed by hand: the loader never
 * makes one) is the first error returned; the metrics around it are still applied. */
static void test_apply_keeps_going(void **state) {
    fixture *fx = *state;
    cfg_config *c = load("metrics:\n"
                         "  - {name: good_a, type: gauge}\n"
                         "  - {name: bad_1, type: gauge}\n"
                         "  - {name: bad_2, type: counter}\n"
                         "  - {name: good_b, type: counter}\n");
    free(c->metrics[1].name);
    c->metrics[1].name = strdup("1bad");
    free(c->metrics[2].name);
    c->metrics[2].name = strdup("2 bad");
    assert_non_null(c->metrics[1].name);
    assert_non_null(c->metrics[2].name);
    assert_int_equal(cfg_apply(fx->r, NULL, c), REG_EINVAL);
    assert_int_equal(nseries(fx, "good_a"), 1);
    assert_int_equal(nseries(fx, "good_b"), 1);
    assert_int_equal(reg_family_total(fx->r), 2);
    cfg_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_startup_and_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declaration_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_family_defs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_null_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_keeps_going, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
