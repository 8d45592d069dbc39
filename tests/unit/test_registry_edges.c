/* test_registry_edges.c - the registry's contract at its edges (registry/registry.h): every
 * definition bound (REG_MAX_LABELS, REG_MAX_BUCKETS, REG_MAX_QUANTILES, window bounds), every
 * field reg_family_matches compares, label values at and past REG_MAX_KEY, UTF-8 checks,
 * untyped families, a hold on a family removed meanwhile, reaping enough series to rebuild a
 * family's set, reg_family_replace refused by a limit, and the result strings. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"

typedef struct {
    reg_registry *r;
    reg_thread *t;
    int removed; /* series the removal hook saw */
    double removed_sum;
} fixture;

static void on_remove(void *arg, const reg_family *f, const reg_series *s) {
    fixture *fx = arg;
    fx->removed++;
    if (reg_family_definition(f)->type != REG_HISTOGRAM &&
        reg_family_definition(f)->type != REG_SUMMARY)
        fx->removed_sum += reg_series_value(s);
}

static int setup_opts(void **state, size_t max_series) {
    fixture *fx = calloc(1, sizeof(*fx));
    reg_options o = {.max_series = max_series, .on_remove = on_remove, .on_remove_arg = fx};
    fx->r = reg_create(&o);
    fx->t = fx->r ? reg_thread_attach(fx->r) : NULL;
    *state = fx;
    return fx->r && fx->t ? 0 : -1;
}

static int setup(void **state) {
    return setup_opts(state, 0);
}

static int setup_limit1(void **state) {
    return setup_opts(state, 1);
}

static int teardown(void **state) {
    fixture *fx = *state;
    reg_thread_detach(fx->t);
    reg_destroy(fx->r);
    free(fx);
    return 0;
}

/* reg_family_add inside a section of its own; *out is only compared, never dereferenced
 * after the section unless the family is still linked (it is, in these tests). */
static int add_def(fixture *fx, const reg_family_def *d, reg_family **out) {
    reg_begin(fx->t);
    int rc = reg_family_add(fx->t, d, out);
    reg_end(fx->t);
    return rc;
}

/* ---- definitions ------------------------------------------------------------------------- */

static void test_label_count_bound(void **state) {
    fixture *fx = *state;
    static char names[REG_MAX_LABELS + 1][8];
    const char *labels[REG_MAX_LABELS + 1], *values[REG_MAX_LABELS + 1];
    for (int i = 0; i <= REG_MAX_LABELS; i++) {
        snprintf(names[i], sizeof names[i], "l%d", i);
        labels[i] = names[i];
        values[i] = "v";
    }
    reg_family_def d = {.name = "wide", .type = REG_GAUGE, .labels = labels};
    reg_family *f = (reg_family *)1;
    d.nlabels = REG_MAX_LABELS + 1;
    assert_int_equal(add_def(fx, &d, &f), REG_EINVAL);
    assert_null(f);
    /* Const labels count too: 31 + 2 is over. */
    static const char *const cn[] = {"c0", "c1"}, *const cv[] = {"x", "y"};
    d.nlabels = REG_MAX_LABELS - 1;
    d.nconst = 2;
    d.const_names = cn;
    d.const_values = cv;
    assert_int_equal(add_def(fx, &d, &f), REG_EINVAL);
    /* Exactly the bound: accepted, and every value lands in the label text. */
    d.nlabels = REG_MAX_LABELS;
    d.nconst = 0;
    assert_int_equal(add_def(fx, &d, &f), REG_OK);
    assert_int_equal(reg_family_total(fx->r), 1);
    reg_begin(fx->t);
    assert_int_equal(reg_gauge_set(fx->t, f, values, 7), REG_OK);
    reg_series **v = NULL;
    size_t cap = 0;
    assert_int_equal(reg_family_collect(fx->t, f, &v, &cap), 1);
    char buf[8];
    assert_int_equal(reg_series_label_value(v[0], REG_MAX_LABELS - 1, buf, sizeof buf), 1);
    assert_string_equal(buf, "v");
    assert_int_equal(reg_series_label_value(v[0], REG_MAX_LABELS, buf, sizeof buf), -1);
    assert_true(reg_series_value(v[0]) == 7);
    reg_end(fx->t);
    free(v);
}

static void test_bad_label_and_const_definitions(void **state) {
    fixture *fx = *state;
    static const char *const null_label[] = {NULL}, *const one[] = {"a"};
    static const char *const c_res[] = {"__c"}, *const c_a[] = {"a"}, *const c_bb[] = {"b", "b"},
                             *const c_ok[] = {"c"}, *const v1[] = {"x"}, *const v2[] = {"x", "y"},
                             *const v_null[] = {NULL};
    reg_family_def defs[] = {
        /* a NULL label name */
        {.name = "d", .type = REG_GAUGE, .nlabels = 1, .labels = null_label},
        /* a reserved constant label name */
        {.name = "d", .type = REG_GAUGE, .nconst = 1, .const_names = c_res, .const_values = v1},
        /* a constant label named like a variable label */
        {.name = "d",
         .type = REG_GAUGE,
         .nlabels = 1,
         .labels = one,
         .nconst = 1,
         .const_names = c_a,
         .const_values = v1},
        /* two constant labels of one name */
        {.name = "d", .type = REG_GAUGE, .nconst = 2, .const_names = c_bb, .const_values = v2},
        /* a constant label without a value */
        {.name = "d", .type = REG_GAUGE, .nconst = 1, .const_names = c_ok, .const_values = v_null},
        /* no name at all */
        {.name = NULL, .type = REG_GAUGE},
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        reg_family *f = (reg_family *)1;
        assert_int_equal(add_def(fx, &defs[i], &f), REG_EINVAL);
        assert_null(f);
    }
    reg_family *f = (reg_family *)1;
    reg_begin(fx->t);
    assert_int_equal(reg_family_add(fx->t, NULL, &f), REG_EINVAL);
    assert_null(f);
    f = (reg_family *)1;
    assert_int_equal(reg_family_replace(fx->t, NULL, &f), REG_EINVAL);
    assert_null(f);
    reg_end(fx->t);
    assert_int_equal(reg_family_total(fx->r), 0);
    /* The name rules themselves. */
    assert_false(reg_reserved_label_name(REG_COUNTER, NULL, 0));
    assert_true(reg_reserved_label_name(REG_UNTYPED, "__x", 3));
    assert_false(reg_reserved_label_name(REG_UNTYPED, "le", 2));
    assert_false(reg_reserved_label_name(REG_UNTYPED, "quantile", 8));
    assert_true(reg_reserved_label_name(REG_HISTOGRAM, "le", 2));
    assert_false(reg_reserved_label_name(REG_SUMMARY, "le", 2));
}

static void test_bucket_bounds(void **state) {
    fixture *fx = *state;
    double *b = malloc((REG_MAX_BUCKETS + 1) * sizeof *b);
    for (int i = 0; i <= REG_MAX_BUCKETS; i++)
        b[i] = i;
    reg_family_def d = {.name = "h", .type = REG_HISTOGRAM, .buckets = b};
    reg_family *f = (reg_family *)1;
    d.nbuckets = REG_MAX_BUCKETS + 1;
    assert_int_equal(add_def(fx, &d, &f), REG_EINVAL);
    assert_null(f);
    d.nbuckets = REG_MAX_BUCKETS;
    assert_int_equal(add_def(fx, &d, &f), REG_OK);
    reg_begin(fx->t);
    assert_int_equal(reg_observe(fx->t, f, NULL, REG_MAX_BUCKETS - 1.5), REG_OK);
    assert_int_equal(reg_observe(fx->t, f, NULL, 1e9), REG_OK);
    reg_series **v = NULL;
    size_t cap = 0;
    assert_int_equal(reg_family_collect(fx->t, f, &v, &cap), 1);
    uint64_t *cum = calloc(REG_MAX_BUCKETS + 1, sizeof *cum);
    double sum;
    reg_series_histogram(v[0], f, cum, &sum);
    reg_end(fx->t);
    free(v);
    assert_int_equal(cum[REG_MAX_BUCKETS - 2], 0);
    assert_int_equal(cum[REG_MAX_BUCKETS - 1], 1); /* le=255 */
    assert_int_equal(cum[REG_MAX_BUCKETS], 2);     /* +Inf */
    assert_true(sum == REG_MAX_BUCKETS - 1.5 + 1e9);
    free(cum);

    /* NaN anywhere: no order, refused. */
    static const double nan_first[] = {NAN, 1}, nan_last[] = {1, NAN};
    reg_family_def bad = {.name = "hn", .type = REG_HISTOGRAM, .nbuckets = 2};
    bad.buckets = nan_first;
    assert_int_equal(add_def(fx, &bad, &f), REG_EINVAL);
    bad.buckets = nan_last;
    assert_int_equal(add_def(fx, &bad, &f), REG_EINVAL);
    static const double only_inf[] = {INFINITY};
    bad.buckets = only_inf;
    bad.nbuckets = 1;
    assert_int_equal(add_def(fx, &bad, &f), REG_EINVAL); /* +Inf is implied */

    /* A -Inf bound is a bound like any other (nothing finite falls in it); no bucket at all
     * leaves +Inf alone. */
    static const double minus_inf[] = {-INFINITY};
    reg_family_def mi = {.name = "hmi", .type = REG_HISTOGRAM, .nbuckets = 1, .buckets = minus_inf};
    reg_family_def none = {.name = "hnone", .type = REG_HISTOGRAM};
    reg_family *fm, *fn;
    assert_int_equal(add_def(fx, &mi, &fm), REG_OK);
    assert_int_equal(add_def(fx, &none, &fn), REG_OK);
    reg_begin(fx->t);
    assert_int_equal(reg_observe(fx->t, fm, NULL, -1e300), REG_OK);
    assert_int_equal(reg_observe_n(fx->t, fn, NULL, 2, 3), REG_OK);
    v = NULL;
    cap = 0;
    uint64_t c2[2];
    assert_int_equal(reg_family_collect(fx->t, fm, &v, &cap), 1);
    reg_series_histogram(v[0], fm, c2, &sum);
    assert_int_equal(c2[0], 0);
    assert_int_equal(c2[1], 1);
    assert_int_equal(reg_family_collect(fx->t, fn, &v, &cap), 1);
    reg_series_histogram(v[0], fn, c2, &sum);
    assert_int_equal(c2[0], 3);
    assert_true(sum == 6);
    reg_end(fx->t);
    free(v);
    free(b);
}

static void test_summary_bounds(void **state) {
    fixture *fx = *state;
    reg_objective obj[REG_MAX_QUANTILES + 1];
    for (int i = 0; i <= REG_MAX_QUANTILES; i++)
        obj[i] = (reg_objective){(i + 1) / (double)(REG_MAX_QUANTILES + 2), 0.01};
    reg_family_def d = {.name = "s", .type = REG_SUMMARY, .objectives = obj};
    reg_family *f = (reg_family *)1;
    d.nobjectives = REG_MAX_QUANTILES + 1;
    assert_int_equal(add_def(fx, &d, &f), REG_EINVAL);
    assert_null(f);
    d.nobjectives = REG_MAX_QUANTILES;
    d.age_buckets = REG_MAX_AGE_BUCKETS + 1;
    assert_int_equal(add_def(fx, &d, &f), REG_EINVAL);
    d.age_buckets = REG_MAX_AGE_BUCKETS;
    d.buf_cap = REG_MAX_BUF_CAP + 1;
    assert_int_equal(add_def(fx, &d, &f), REG_EINVAL);
    d.buf_cap = 16;
    assert_int_equal(add_def(fx, &d, &f), REG_OK);
    reg_begin(fx->t);
    for (int i = 1; i <= 1000; i++)
        assert_int_equal(reg_observe(fx->t, f, NULL, i), REG_OK);
    reg_series **v = NULL;
    size_t cap = 0;
    assert_int_equal(reg_family_collect(fx->t, f, &v, &cap), 1);
    double q[REG_MAX_QUANTILES], sum;
    uint64_t count;
    reg_series_summary(v[0], f, q, &count, &sum);
    reg_end(fx->t);
    free(v);
    assert_int_equal(count, 1000);
    assert_true(sum == 500500);
    for (int i = 0; i < REG_MAX_QUANTILES; i++) /* rank error 0.01 of 1000: within 11 */
        assert_true(fabs(q[i] - 1000 * obj[i].quantile) <= 11);
    /* The window bounds themselves are fine. */
    d.name = "s_max";
    d.buf_cap = REG_MAX_BUF_CAP;
    assert_int_equal(add_def(fx, &d, &f), REG_OK);

    /* Each objective strictly inside (0,1), with an error strictly inside (0,1). */
    const reg_objective bad[][1] = {{{0, 0.01}},   {{1, 0.01}},   {{NAN, 0.01}},
                                    {{0.5, 0}},    {{0.5, 1}},    {{0.5, NAN}},
                                    {{-0.5, 0.1}}, {{0.5, -0.1}}, {{0.5, INFINITY}}};
    reg_family_def b = {.name = "sb", .type = REG_SUMMARY, .nobjectives = 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b.objectives = bad[i];
        f = (reg_family *)1;
        assert_int_equal(add_def(fx, &b, &f), REG_EINVAL);
        assert_null(f);
    }
    assert_int_equal(reg_family_total(fx->r), 2);
}

/* Every field reg_family_matches compares: a family differing in any one conflicts, an
 * equal one is the same family. */
static void test_matches_every_field(void **state) {
    fixture *fx = *state;
    static const char *const labels[] = {"a", "b"}, *const labels2[] = {"a", "c"};
    static const char *const cn[] = {"env", "zone"}, *const cv[] = {"prod", "eu"},
                             *const cn2[] = {"env", "region"}, *const cv2[] = {"prod", "us"};
    reg_family_def base = {.name = "m_total",
                           .help = "h",
                           .unit = "seconds",
                           .type = REG_COUNTER,
                           .nlabels = 2,
                           .labels = labels,
                           .nconst = 2,
                           .const_names = cn,
                           .const_values = cv,
                           .ttl_ns = 5,
                           .max_series = 10};
    reg_family *f, *g;
    assert_int_equal(add_def(fx, &base, &f), REG_OK);
    assert_true(reg_family_matches(f, &base));
    reg_family_def v[12];
    for (int i = 0; i < 12; i++)
        v[i] = base;
    v[0].help = "other help";
    v[1].help = NULL;
    v[2].unit = "bytes";
    v[3].unit = NULL;
    v[4].labels = labels2;
    v[5].nconst = 1;
    v[6].const_names = cn2;
    v[7].const_values = cv2;
    v[8].ttl_ns = 6;
    v[9].max_series = 11;
    v[10].flags = REG_FAMILY_OWN;
    v[11].type = REG_UNTYPED;
    for (int i = 0; i < 12; i++) {
        assert_false(reg_family_matches(f, &v[i]));
        assert_int_equal(add_def(fx, &v[i], &g), REG_ECONFLICT);
        assert_null(g);
    }
    /* No help and empty help read the same (no HELP text either way), both ways round. */
    reg_family_def nohelp = {.name = "n_total", .type = REG_COUNTER};
    reg_family_def emptyhelp = nohelp;
    emptyhelp.help = "";
    emptyhelp.unit = "";
    assert_int_equal(add_def(fx, &nohelp, &f), REG_OK);
    assert_true(reg_family_matches(f, &emptyhelp));
    assert_int_equal(add_def(fx, &emptyhelp, &g), REG_OK);
    assert_ptr_equal(f, g);
    reg_family_def e2 = {.name = "e_total", .help = "", .unit = "", .type = REG_COUNTER};
    reg_family_def n2 = {.name = "e_total", .type = REG_COUNTER};
    assert_int_equal(add_def(fx, &e2, &f), REG_OK);
    assert_true(reg_family_matches(f, &n2));
    n2.help = "x";
    assert_false(reg_family_matches(f, &n2));
}

static void test_matches_histogram_and_summary(void **state) {
    fixture *fx = *state;
    static const double b3[] = {1, 2, 3}, b3x[] = {1, 2, 4}, b2[] = {1, 2};
    reg_family_def h = {.name = "h", .type = REG_HISTOGRAM, .nbuckets = 3, .buckets = b3};
    reg_family *f, *g;
    assert_int_equal(add_def(fx, &h, &f), REG_OK);
    reg_family_def same_b = h; /* equal contents at another address */
    static const double b3copy[] = {1, 2, 3};
    same_b.buckets = b3copy;
    assert_true(reg_family_matches(f, &same_b));
    reg_family_def hx = h, h2 = h;
    hx.buckets = b3x;
    h2.nbuckets = 2;
    h2.buckets = b2;
    assert_false(reg_family_matches(f, &hx));
    assert_false(reg_family_matches(f, &h2));
    assert_int_equal(add_def(fx, &hx, &g), REG_ECONFLICT);
    reg_family_def h0 = {.name = "h0", .type = REG_HISTOGRAM};
    assert_int_equal(add_def(fx, &h0, &f), REG_OK);
    assert_true(reg_family_matches(f, &h0));
    assert_false(reg_family_matches(f, &h));

    static const reg_objective o2[] = {{0.5, 0.05}, {0.9, 0.01}},
                               o2x[] = {{0.5, 0.05}, {0.9, 0.02}};
    reg_family_def s = {.name = "s",
                        .type = REG_SUMMARY,
                        .nobjectives = 2,
                        .objectives = o2,
                        .max_age_ns = 60000000000ull,
                        .age_buckets = 3,
                        .buf_cap = 100};
    assert_int_equal(add_def(fx, &s, &f), REG_OK);
    reg_family_def v[5];
    for (int i = 0; i < 5; i++)
        v[i] = s;
    v[0].nobjectives = 1;
    v[1].objectives = o2x;
    v[2].max_age_ns = 1;
    v[3].age_buckets = 4;
    v[4].buf_cap = 101;
    for (int i = 0; i < 5; i++) {
        assert_false(reg_family_matches(f, &v[i]));
        assert_int_equal(add_def(fx, &v[i], &g), REG_ECONFLICT);
    }
    assert_int_equal(add_def(fx, &s, &g), REG_OK);
    assert_ptr_equal(f, g);
    reg_family_def s0 = {.name = "s0", .type = REG_SUMMARY};
    assert_int_equal(add_def(fx, &s0, &f), REG_OK);
    assert_true(reg_family_matches(f, &s0));
    assert_false(reg_family_matches(f, &s));
}

/* ---- label values ------------------------------------------------------------------------ */

/* A value longer than any label text can be is refused before hashing; one whose text would
 * not leave room for the next label's name is refused when rendered. Nothing is created. */
static void test_values_past_the_key_bound(void **state) {
    fixture *fx = *state;
    char *lname = malloc(1001);
    memset(lname, 'n', 1000);
    lname[1000] = '\0';
    const char *labels[] = {"a", lname};
    reg_family_def d = {.name = "kb", .type = REG_GAUGE, .nlabels = 2, .labels = labels};
    reg_family *f;
    assert_int_equal(add_def(fx, &d, &f), REG_OK);
    char *big = malloc(REG_MAX_KEY + 2);
    memset(big, 'x', REG_MAX_KEY + 1);
    big[REG_MAX_KEY + 1] = '\0';
    const char *over[] = {big, "y"};
    reg_begin(fx->t);
    assert_int_equal(reg_gauge_set(fx->t, f, over, 1), REG_EINVAL);
    reg_end(fx->t);
    assert_int_equal(reg_series_delete(fx->r, f, over), REG_ENOTFOUND);
    /* a="<15500 x>" leaves less room than the second label's 1003-byte prefix needs. */
    big[15500] = '\0';
    const char *crowded[] = {big, "y"};
    reg_begin(fx->t);
    assert_int_equal(reg_gauge_set(fx->t, f, crowded, 1), REG_EINVAL);
    assert_int_equal(reg_family_series_count(f), 0);
    /* A shorter value in the second label fits: 5 + 1003 + 15000 + 1 < REG_MAX_KEY. */
    big[15000] = '\0';
    const char *fits[] = {"x", big};
    assert_int_equal(reg_gauge_set(fx->t, f, fits, 2), REG_OK);
    reg_series **v = NULL;
    size_t cap = 0;
    assert_int_equal(reg_family_collect(fx->t, f, &v, &cap), 1);
    char lb[REG_MAX_KEY + 1];
    assert_int_equal(reg_series_labels(f, v[0], lb, sizeof lb), 5 + 1003 + 15000 + 1);
    assert_true(reg_series_value(v[0]) == 2);
    reg_end(fx->t);
    free(v);
    assert_int_equal(reg_series_total(fx->r), 1);
    free(big);
    free(lname);
}

/* Prometheus requires UTF-8 label values: each malformed form is refused and creates
 * nothing; well-formed 2-, 3- and 4-byte characters are kept as given. */
static void test_utf8_forms(void **state) {
    fixture *fx = *state;
    static const char *const L[] = {"v"};
    reg_family_def d = {.name = "u_total", .type = REG_COUNTER, .nlabels = 1, .labels = L};
    reg_family *f;
    assert_int_equal(add_def(fx, &d, &f), REG_OK);
    const char *bad[] = {
        "\xc3",             /* truncated 2-byte */
        "ab\xe2\x82",       /* truncated 3-byte */
        "\xc3\x28",         /* bad continuation */
        "\xf0\x9f\x98\x28", /* bad last continuation */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong 3-byte */
        "\xed\xa0\x80",     /* UTF-16 surrogate */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\x80",             /* lone continuation */
        "\xf8\x88\x80\x80", /* 5-byte lead */
    };
    reg_begin(fx->t);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *v[] = {bad[i]};
        assert_int_equal(reg_counter_add(fx->t, f, v, 1), REG_EINVAL);
    }
    assert_int_equal(reg_family_series_count(f), 0);
    const char *good[] = {"\xc2\x80", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                          "\xee\x80\x80"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *v[] = {good[i]};
        assert_int_equal(reg_counter_add(fx->t, f, v, (double)i + 1), REG_OK);
    }
    reg_series **v = NULL;
    size_t cap = 0;
    assert_int_equal(reg_family_collect(fx->t, f, &v, &cap), 5);
    for (int i = 0; i < 5; i++) {
        char buf[8];
        long n = reg_series_label_value(v[i], 0, buf, sizeof buf);
        size_t k = (size_t)reg_series_value(v[i]) - 1;
        assert_true(k < 5);
        assert_int_equal(n, (long)strlen(good[k]));
        assert_string_equal(buf, good[k]);
    }
    reg_end(fx->t);
    free(v);
}

/* ---- types ------------------------------------------------------------------------------- */

static void test_untyped_takes_counter_and_gauge_updates(void **state) {
    fixture *fx = *state;
    reg_family_def d = {.name = "u", .type = REG_UNTYPED};
    reg_family *f, *h;
    assert_int_equal(add_def(fx, &d, &f), REG_OK);
    static const double b[] = {1};
    reg_family_def hd = {.name = "hh", .type = REG_HISTOGRAM, .nbuckets = 1, .buckets = b};
    assert_int_equal(add_def(fx, &hd, &h), REG_OK);
    reg_begin(fx->t);
    assert_int_equal(reg_counter_add(fx->t, f, NULL, 2), REG_OK);
    assert_int_equal(reg_gauge_add(fx->t, f, NULL, 3), REG_OK);
    assert_int_equal(reg_counter_add(fx->t, f, NULL, -1), REG_EINVAL);
    assert_int_equal(reg_observe(fx->t, f, NULL, 1), REG_EINVAL);
    assert_int_equal(reg_gauge_add(fx->t, h, NULL, 1), REG_EINVAL);
    assert_int_equal(reg_gauge_set(fx->t, h, NULL, 1), REG_EINVAL);
    assert_int_equal(reg_counter_add(fx->t, h, NULL, 1), REG_EINVAL);
    reg_series **v = NULL;
    size_t cap = 0;
    assert_int_equal(reg_family_collect(fx->t, f, &v, &cap), 1);
    assert_true(reg_series_value(v[0]) == 5);
    assert_int_equal(reg_gauge_set(fx->t, f, NULL, -1), REG_OK);
    assert_true(reg_series_value(v[0]) == -1);
    assert_int_equal(reg_family_collect(fx->t, h, &v, &cap), 0); /* refused: nothing made */
    reg_end(fx->t);
    free(v);
}

/* ---- holds, reaping, replacing ----------------------------------------------------------- */

static void *remove_family(void *arg) {
    fixture *fx = arg;
    return (void *)(intptr_t)reg_family_remove(fx->r, "held");
}

/* A family found in a section and removed (by another thread) before it is held: the hold
 * reports it gone, and the family stays readable until the section ends. */
static void test_hold_after_removal_in_section(void **state) {
    fixture *fx = *state;
    reg_family_def d = {.name = "held", .type = REG_GAUGE};
    reg_family *f;
    assert_int_equal(add_def(fx, &d, &f), REG_OK);
    reg_begin(fx->t);
    assert_int_equal(reg_gauge_set(fx->t, f, NULL, 4), REG_OK);
    f = reg_family_find(fx->t, "held");
    assert_non_null(f);
    pthread_t th;
    void *rc;
    assert_int_equal(pthread_create(&th, NULL, remove_family, fx), 0);
    assert_int_equal(pthread_join(th, &rc), 0);
    assert_int_equal((intptr_t)rc, REG_OK);
    assert_int_equal(fx->removed, 1);
    assert_true(fx->removed_sum == 4);
    assert_int_equal(reg_family_hold(f), REG_EGONE);
    assert_string_equal(reg_family_definition(f)->name, "held");
    assert_int_equal(reg_gauge_set(fx->t, f, NULL, 1), REG_EGONE);
    assert_null(reg_family_find(fx->t, "held"));
    reg_end(fx->t);
    assert_int_equal(reg_family_total(fx->r), 0);
    reg_reap(fx->r); /* frees it now; ASan would see a later use */
}

/* Add 1 to the series "0".."n-1" of f. */
static void add_ids(fixture *fx, reg_family *f, int n) {
    char buf[16];
    reg_begin(fx->t);
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        const char *v[] = {buf};
        assert_int_equal(reg_counter_add(fx->t, f, v, 1), REG_OK);
    }
    reg_end(fx->t);
}

/* Check that f holds exactly the series "0".."n-1" and return the sum of their values. */
static double check_ids(fixture *fx, reg_family *f, int n, const double *want) {
    reg_series **v = NULL;
    size_t cap = 0;
    double total = 0;
    reg_begin(fx->t);
    assert_int_equal(reg_family_collect(fx->t, f, &v, &cap), n);
    for (int i = 0; i < n; i++) {
        char lb[16];
        assert_true(reg_series_label_value(v[i], 0, lb, sizeof lb) > 0);
        int id = atoi(lb);
        assert_true(id >= 0 && id < n);
        assert_true(reg_series_value(v[i]) == want[id]);
        total += reg_series_value(v[i]);
    }
    reg_end(fx->t);
    free(v);
    return total;
}

/* Reaping leaves tombstones in a family's set: a third of it (set kept as is), then most of
 * it (set rebuilt). Either way, what survived keeps its value, what expired is created anew
 * from zero, and every expired series went through the removal hook once. */
static void test_reap_many_then_reuse(void **state) {
    fixture *fx = *state;
    static const char *const L[] = {"id"};
    reg_family_def d = {
        .name = "r_total", .type = REG_COUNTER, .nlabels = 1, .labels = L, .ttl_ns = 1};
    reg_family *f;
    assert_int_equal(add_def(fx, &d, &f), REG_OK);
    enum { N = 300 };
    static double want[N];
    const int keep[] = {200, 10};
    for (int i = 0; i < N; i++)
        want[i] = 1;
    add_ids(fx, f, N);
    int removed = 0;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(reg_reap(fx->r), 0); /* first look: TTLs (re)start */
        add_ids(fx, f, keep[round]);          /* updated since: their TTL restarts */
        assert_int_equal(reg_reap(fx->r), N - keep[round]);
        removed += N - keep[round];
        assert_int_equal(fx->removed, removed);
        assert_int_equal(reg_family_series_count(f), keep[round]);
        assert_int_equal(reg_series_total(fx->r), keep[round]);
        add_ids(fx, f, N);
        for (int i = 0; i < N; i++)
            want[i] = i < keep[round] ? want[i] + 2 : 1;
        check_ids(fx, f, N, want);
    }
    /* Final values: round 0 removed 200..299 at 1; round 1 removed 10..199 at 3 and
     * 200..299 (made anew) at 1. Left: 0..9 at 5, the rest at 1. */
    assert_true(fx->removed_sum == 100 * 1 + 190 * 3 + 100 * 1);
    assert_true(check_ids(fx, f, N, want) == 10 * 5 + 290 * 1);
}

/* At the registry-wide limit, a label-less family put in by replace is published without its
 * series (REG_ELIMIT); the old family is still gone, and once its series is too, the new
 * one can be made. */
static void test_replace_refused_by_limit(void **state) {
    fixture *fx = *state; /* max_series = 1 */
    reg_family_def d = {.name = "lim", .help = "old", .type = REG_GAUGE};
    reg_family *old, *f = NULL;
    assert_int_equal(add_def(fx, &d, &old), REG_OK);
    reg_begin(fx->t);
    assert_int_equal(reg_gauge_set(fx->t, old, NULL, 9), REG_OK);
    assert_int_equal(reg_series_total(fx->r), 1);
    reg_family_def other = {.name = "other", .type = REG_GAUGE};
    assert_int_equal(reg_family_replace(fx->t, &other, &f), REG_ELIMIT);
    assert_non_null(f);
    assert_ptr_equal(reg_family_find(fx->t, "other"), f);
    assert_int_equal(reg_family_series_count(f), 0);
    assert_int_equal(reg_family_refused(f), 1);
    /* Replacing the full family itself: the new series is refused while the old one still
     * counts; the old one is removed all the same. */
    reg_family_def changed = d;
    changed.help = "new";
    assert_int_equal(reg_family_replace(fx->t, &changed, &f), REG_ELIMIT);
    assert_ptr_not_equal(f, old);
    assert_ptr_equal(reg_family_find(fx->t, "lim"), f);
    assert_int_equal(reg_gauge_set(fx->t, old, NULL, 1), REG_EGONE);
    reg_end(fx->t);
    assert_int_equal(fx->removed, 1);
    assert_true(fx->removed_sum == 9);
    assert_int_equal(reg_series_total(fx->r), 0);
    reg_begin(fx->t);
    assert_int_equal(reg_touch(fx->t, f, NULL), REG_OK);
    assert_int_equal(reg_family_series_count(f), 1);
    reg_end(fx->t);
    assert_int_equal(reg_family_total(fx->r), 2);
}

/* ---- the registry itself ----------------------------------------------------------------- */

static void test_default_options(void **state) {
    (void)state;
    reg_registry *r = reg_create(NULL); /* no limit, no hook, no reaper thread */
    assert_non_null(r);
    reg_thread *t = reg_thread_attach(r);
    static const char *const L[] = {"i"};
    reg_family_def d = {
        .name = "d_total", .type = REG_COUNTER, .nlabels = 1, .labels = L, .ttl_ns = 1};
    reg_family *f;
    reg_begin(t);
    assert_int_equal(reg_family_add(t, &d, &f), REG_OK);
    char buf[16];
    for (int i = 0; i < 100; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        const char *v[] = {buf};
        assert_int_equal(reg_counter_add(t, f, v, 1), REG_OK);
    }
    reg_end(t);
    assert_int_equal(reg_series_total(r), 100);
    /* Nothing expires by itself; reg_reap does it, without a hook to call. */
    assert_int_equal(reg_reap(r), 0);
    assert_int_equal(reg_reap(r), 100);
    assert_int_equal(reg_series_total(r), 0);
    reg_thread_detach(t);
    reg_destroy(r);
}

static void test_result_strings(void **state) {
    (void)state;
    const struct {
        int err;
        const char *s;
    } want[] = {{REG_OK, "ok"},
                {REG_ENOMEM, "out of memory"},
                {REG_EINVAL, "invalid argument"},
                {REG_ELIMIT, "series limit reached"},
                {REG_ECONFLICT, "conflicting family definition"},
                {REG_ENOTFOUND, "not found"},
                {REG_EGONE, "family removed"},
                {-99, "unknown error"},
                {1, "unknown error"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_string_equal(reg_strerror(want[i].err), want[i].s);
    const char *types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (int t = REG_COUNTER; t <= REG_UNTYPED; t++)
        assert_string_equal(reg_type_name((reg_type)t), types[t]);
    assert_string_equal(reg_type_name((reg_type)42), "untyped");
    assert_string_equal(reg_type_name((reg_type)-1), "untyped");
}

/* A series does not store its hash: the set's growth, removals and cursors recompute it from
 * the label text, undoing its escaping. Values with quotes, backslashes and newlines are
 * found again after the set grew many times, counted once each, and every one is deleted. */
static void test_escaped_values_survive_growth(void **state) {
    fixture *fx = *state;
    static const char *const L2[] = {"a", "b"};
    reg_family_def d = {.name = "esc_total", .type = REG_COUNTER, .nlabels = 2, .labels = L2};
    reg_family *f;
    assert_int_equal(add_def(fx, &d, &f), REG_OK);
    enum { N = 5000 };
    static const char *const odd[] = {"\"", "\\", "\n", "x\"y", "\\\"", "plain", ""};
    char a[64], b[64];
    for (int round = 0; round < 2; round++) {
        reg_begin(fx->t);
        for (int i = 0; i < N; i++) {
            snprintf(a, sizeof a, "%s%d", odd[i % 7], i);
            snprintf(b, sizeof b, "%d%s", i / 7, odd[(i / 7) % 7]);
            const char *v[] = {a, b};
            assert_int_equal(reg_counter_add(fx->t, f, v, 1), REG_OK);
        }
        reg_end(fx->t);
    }
    assert_int_equal(reg_family_series_count(f), N);
    reg_series **all = NULL;
    size_t cap = 0;
    reg_begin(fx->t);
    long n = reg_family_collect(fx->t, f, &all, &cap);
    for (long i = 0; i < n; i++)
        assert_true(reg_series_value(all[i]) == 2);
    reg_end(fx->t);
    free(all);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        snprintf(a, sizeof a, "%s%d", odd[i % 7], i);
        snprintf(b, sizeof b, "%d%s", i / 7, odd[(i / 7) % 7]);
        const char *v[] = {a, b};
        assert_int_equal(reg_series_delete(fx->r, f, v), REG_OK);
    }
    assert_int_equal(reg_family_series_count(f), 0);
    assert_int_equal(fx->removed, N);
}

/* A series stores each label value after its length, one byte below 128 and two from 128:
 * values on both sides of that edge, escaped or not, are found again after the set grew, read
 * back as given and rendered as the text format wants them. */
static void test_value_lengths(void **state) {
    fixture *fx = *state;
    static const char *const L2[] = {"a", "b"};
    reg_family_def d = {.name = "len_total", .type = REG_COUNTER, .nlabels = 2, .labels = L2};
    reg_family *f;
    assert_int_equal(add_def(fx, &d, &f), REG_OK);
    static const size_t lens[] = {0, 1, 7, 8, 16, 17, 126, 127, 128, 129, 255, 256, 5000};
    enum { NL = sizeof lens / sizeof lens[0], N = 2 * NL };
    static char vals[N][5001];
    for (size_t i = 0; i < N; i++) {
        memset(vals[i], 'v', lens[i / 2]);
        vals[i][lens[i / 2]] = '\0';
        if (i % 2 && lens[i / 2] > 0)
            vals[i][lens[i / 2] - 1] = '"'; /* escaped when rendered */
    }
    for (int round = 0; round < 2; round++) {
        reg_begin(fx->t);
        for (size_t i = 0; i < N; i++) {
            const char *v[] = {vals[i], "k"};
            assert_int_equal(reg_counter_add(fx->t, f, v, 1), REG_OK);
        }
        reg_end(fx->t);
    }
    assert_int_equal(reg_family_series_count(f), N - 1); /* "" is the same value twice */
    reg_series **all = NULL;
    size_t cap = 0;
    reg_begin(fx->t);
    long n = reg_family_collect(fx->t, f, &all, &cap);
    assert_int_equal(n, N - 1);
    for (long i = 0; i < n; i++) {
        static char got[5002], want[REG_MAX_KEY + 1], text[REG_MAX_KEY + 1];
        long vl = reg_series_label_value(all[i], 0, got, sizeof got);
        assert_true(vl >= 0);
        assert_true(reg_series_value(all[i]) == (vl == 0 ? 4 : 2));
        size_t k = reg_escape_label_value(got, (size_t)vl, want + 3);
        memcpy(want, "a=\"", 3);
        memcpy(want + 3 + k, "\",b=\"k\"", 8);
        size_t tl = reg_series_labels(f, all[i], text, sizeof text);
        assert_int_equal(tl, 3 + k + 7);
        assert_memory_equal(text, want, tl);
        assert_true(reg_series_labels(f, all[i], text, tl - 1) == tl); /* too small: its length */
        assert_int_equal(reg_series_label_value(all[i], 1, got, sizeof got), 1);
        assert_int_equal(reg_series_label_value(all[i], 2, got, sizeof got), -1);
    }
    reg_end(fx->t);
    free(all);
}

/* reg_copy_short copies exactly n bytes for every n around its move sizes (4, 8, 16 and
 * multiples) and touches nothing outside them. */
static void test_copy_short_exact(void **state) {
    (void)state;
    char src[80], dst[96];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (char)('A' + i % 50);
    for (size_t n = 0; n <= 70; n++) {
        memset(dst, '#', sizeof dst);
        char *end = reg_copy_short(dst + 8, src + 1, n);
        assert_ptr_equal(end, dst + 8 + n);
        assert_memory_equal(dst + 8, src + 1, n);
        for (size_t i = 0; i < sizeof dst; i++)
            if (i < 8 || i >= 8 + n)
                assert_int_equal(dst[i], '#');
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_short_exact),
        cmocka_unit_test_setup_teardown(test_label_count_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_label_and_const_definitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bucket_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matches_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matches_histogram_and_summary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_past_the_key_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untyped_takes_counter_and_gauge_updates, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hold_after_removal_in_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_many_then_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_refused_by_limit, setup_limit1, teardown),
        cmocka_unit_test(test_default_options),
        cmocka_unit_test(test_result_strings),
        cmocka_unit_test_setup_teardown(test_escaped_values_survive_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_lengths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
