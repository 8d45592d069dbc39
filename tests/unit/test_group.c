/* test_group.c - unit tests of pushed groups (registry/group.c, reg_group_*): each push mode
 * (PUT, POST, ADD, FAILED), the checks on what is pushed (shapes, sorted series, duplicates,
 * reserved names), names as one registry (types across groups, fit with registry families),
 * the series limit, delete, wipe and TTL expiry, snapshots (sorted, held states readable after
 * later pushes and deletes: run under ASan to prove it) and exact series accounting after
 * every operation. Single-threaded; concurrency is in tests/stress/stress_group.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "registry.h"
#include "registry/internal.h"

static reg_registry *R;
static reg_thread *T;
static char ERR[512];

/* One series: its label text and its values. */
/* Series each group counts in the registry total beyond its pushed ones: its two push-time
 * gauges (registry.h). */
#define GROUP_SERIES 2

#define S(lbl, ...)                                                                                \
    {                                                                                              \
        lbl, (uint32_t)(sizeof(lbl) - 1),                                                          \
            (uint32_t)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)), (const double[]) { \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
/* One family of series. */
#define FAM(nm, hlp, ty, ...)                                                                      \
    {                                                                                              \
        nm, hlp, ty, 0, sizeof((const reg_push_series[]){__VA_ARGS__}) / sizeof(reg_push_series),  \
            (const reg_push_series[]) {                                                            \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
#define NFAMS(...) (sizeof((const reg_push_family[]){__VA_ARGS__}) / sizeof(reg_push_family))
/* A push of the families given; at a time; no TTL. */
#define PUSH(key, mode, time, ...)                                                                 \
    push_at(key, mode, (const reg_push_family[]){__VA_ARGS__}, NFAMS(__VA_ARGS__), time, 0)

static int setup_limit(size_t max_series) {
    reg_options o = {0};
    o.max_series = max_series;
    R = reg_create(&o);
    T = R ? reg_thread_attach(R) : NULL;
    return R && T ? 0 : -1;
}

static int setup(void **state) {
    (void)state;
    return setup_limit(0);
}

static int setup_limited(void **state) {
    (void)state;
    return setup_limit(10);
}

static int teardown(void **state) {
    (void)state;
    reg_thread_detach(T);
    reg_destroy(R);
    R = NULL;
    T = NULL;
    return 0;
}

/* The label names of key text `a="x",b="y"` (values without quotes or backslashes here). */
static size_t key_names(const char *key, const char **out, char (*store)[64]) {
    size_t n = 0;
    const char *p = key;
    while (*p) {
        const char *eq = strchr(p, '=');
        assert_non_null(eq);
        memcpy(store[n], p, (size_t)(eq - p));
        store[n][eq - p] = '\0';
        out[n] = store[n];
        n++;
        const char *close = strchr(eq + 2, '"');
        assert_non_null(close);
        p = close + 1;
        if (*p == ',')
            p++;
    }
    return n;
}

static int push_full(const char *key, reg_push_mode mode, const reg_push_family *f, size_t n,
                     double time, uint64_t ttl) {
    char store[8][64];
    const char *names[8];
    size_t nk = key_names(key, names, store);
    reg_push p = {key, strlen(key), nk, names, mode, n, f, time, ttl};
    memset(ERR, 0, sizeof ERR);
    reg_begin(T);
    int rc = reg_group_push(T, &p, ERR, sizeof ERR);
    reg_end(T);
    return rc;
}

static int push_at(const char *key, reg_push_mode mode, const reg_push_family *f, size_t n,
                   double time, uint64_t ttl) {
    return push_full(key, mode, f, n, time, ttl);
}

/* A push without families (PUT of an empty body, or FAILED). */
static int push_empty(const char *key, reg_push_mode mode, double time) {
    return push_full(key, mode, NULL, 0, time, 0);
}

/* Series of registry families (not groups). */
static int count_family_series(void *arg, reg_family *f) {
    *(size_t *)arg += reg_family_series_count(f);
    return 0;
}

/* All current states, held; *n their count. Free with release(). */
static reg_group **snapshot(size_t *n) {
    reg_group **v = NULL;
    size_t cap = 0;
    reg_begin(T);
    long got = reg_group_snapshot(T, &v, &cap);
    reg_end(T);
    assert_true(got >= 0);
    *n = (size_t)got;
    return v;
}

static void release(reg_group **v, size_t n) {
    reg_group_release_all(R, v, n);
    free(v);
}

/* Series total is exactly what the groups and families hold; group count matches. */
static void check_accounting(void) {
    size_t n, pushed = 0, fam = 0;
    reg_group **v = snapshot(&n);
    for (size_t i = 0; i < n; i++) {
        const reg_push_family *f = reg_group_families(v[i]);
        for (size_t k = 0; k < reg_group_family_count(v[i]); k++)
            pushed += f[k].nseries;
    }
    release(v, n);
    reg_begin(T);
    reg_foreach_family(T, count_family_series, &fam);
    reg_end(T);
    assert_int_equal(reg_series_total(R), pushed + fam + GROUP_SERIES * n);
    assert_int_equal(reg_group_total(R), n);
}

/* The held state of key, or NULL. Release with put_group. */
static reg_group *get_group(const char *key) {
    size_t n;
    reg_group **v = snapshot(&n);
    reg_group *hit = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *k = reg_group_key(v[i], &len);
        if (len == strlen(key) && memcmp(k, key, len) == 0)
            hit = v[i];
        else
            reg_group_release_all(R, &v[i], 1);
    }
    free(v);
    return hit;
}

static void put_group(reg_group *g) {
    if (g)
        reg_group_release_all(R, &g, 1);
}

/* Text of one state: times, families (name, help, type, time), series and values. */
static void dump_state(const reg_group *g, char *out, size_t cap) {
    size_t k = 0, len;
    const char *key = reg_group_key(g, &len);
    k += (size_t)snprintf(out + k, cap - k, "{%.*s} push=%.17g fail=%.17g\n", (int)len, key,
                          reg_group_push_time(g), reg_group_failure_time(g));
    const reg_push_family *f = reg_group_families(g);
    for (size_t i = 0; i < reg_group_family_count(g) && k < cap; i++) {
        k += (size_t)snprintf(out + k, cap - k, " %s help=%s type=%d time=%.17g\n", f[i].name,
                              f[i].help ? f[i].help : "(null)", (int)f[i].type, f[i].time);
        for (size_t s = 0; s < f[i].nseries && k < cap; s++) {
            const reg_push_series *ps = &f[i].series[s];
            assert_int_equal(strlen(ps->labels), ps->labels_len);
            k += (size_t)snprintf(out + k, cap - k, "  {%s}", ps->labels);
            for (size_t v = 0; v < ps->nvals && k < cap; v++)
                k += (size_t)snprintf(out + k, cap - k, " %.17g", ps->vals[v]);
            if (k < cap)
                k += (size_t)snprintf(out + k, cap - k, "\n");
        }
    }
    assert_true(k < cap);
}

/* Text of everything: every group, the series total and the group count. Checks accounting. */
static char *dump_all(void) {
    check_accounting();
    size_t cap = 1 << 16, k = 0, n;
    char *out = malloc(cap);
    assert_non_null(out);
    k += (size_t)snprintf(out, cap, "series=%zu groups=%zu\n", reg_series_total(R),
                          reg_group_total(R));
    reg_group **v = snapshot(&n);
    for (size_t i = 0; i < n; i++) {
        dump_state(v[i], out + k, cap - k);
        k += strlen(out + k);
    }
    release(v, n);
    return out;
}

/* The values of one series of family fam in group key, or NULL (absent). Copied to vals. */
static int series_vals(const char *key, const char *fam, const char *labels, double *vals,
                       size_t *nvals) {
    reg_group *g = get_group(key);
    if (g == NULL)
        return 0;
    const reg_push_family *f = reg_group_family(g, fam);
    int found = 0;
    for (size_t i = 0; f && i < f->nseries; i++)
        if (strcmp(f->series[i].labels, labels) == 0) {
            memcpy(vals, f->series[i].vals, f->series[i].nvals * sizeof(double));
            *nvals = f->series[i].nvals;
            found = 1;
        }
    put_group(g);
    return found;
}

static double value_of(const char *key, const char *fam, const char *labels) {
    double v[64];
    size_t n = 0;
    if (!series_vals(key, fam, labels, v, &n))
        return NAN;
    assert_int_equal(n, 1);
    return v[0];
}

static size_t family_count(const char *key) {
    reg_group *g = get_group(key);
    assert_non_null(g);
    size_t n = reg_group_family_count(g);
    put_group(g);
    return n;
}

static int has_family(const char *key, const char *fam) {
    reg_group *g = get_group(key);
    assert_non_null(g);
    int has = reg_group_family(g, fam) != NULL;
    put_group(g);
    return has;
}

/* A push that must be refused with rc and change nothing. */
#define REFUSED(rc, call)                                                                          \
    do {                                                                                           \
        char *before_ = dump_all();                                                                \
        assert_int_equal((call), (rc));                                                            \
        assert_true(ERR[0] != '\0');                                                               \
        char *after_ = dump_all();                                                                 \
        assert_string_equal(before_, after_);                                                      \
        free(before_);                                                                             \
        free(after_);                                                                              \
    } while (0)

/* Keys as push_key_parse makes them (an empty instance is no key label); the series labels
 * of a body pushed to them (instance="" added). */
#define J "job=\"j\""
#define K "job=\"k\""
#define JS "instance=\"\",job=\"j\""
#define KS "instance=\"\",job=\"k\""

/* ---- modes -------------------------------------------------------------------------------- */

static void test_put_replaces_the_whole_group(void **state) {
    (void)state;
    assert_int_equal(reg_group_total(R), 0);
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 100,
                          FAM("a_total", "A", REG_COUNTER, S("instance=\"\",job=\"j\",x=\"1\"", 3),
                              S("instance=\"\",job=\"j\",x=\"2\"", 4)),
                          FAM("b", NULL, REG_GAUGE, S(JS, 7))),
                     REG_OK);
    check_accounting();
    assert_int_equal(reg_series_total(R), 3 + GROUP_SERIES * reg_group_total(R));
    assert_int_equal(reg_group_total(R), 1);
    reg_group *g = get_group(J);
    assert_non_null(g);
    assert_true(reg_group_push_time(g) == 100);
    assert_true(reg_group_failure_time(g) == 0);
    assert_int_equal(reg_group_family_count(g), 2);
    const reg_push_family *a = reg_group_family(g, "a_total");
    assert_non_null(a);
    assert_string_equal(a->help, "A");
    assert_int_equal(a->type, REG_COUNTER);
    assert_true(a->time == 100);
    assert_int_equal(a->nseries, 2);
    assert_null(reg_group_family(g, "b")->help);
    put_group(g);

    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 200, FAM("c", NULL, REG_UNTYPED, S(JS, 1))),
                     REG_OK);
    check_accounting();
    assert_int_equal(reg_series_total(R), 1 + GROUP_SERIES * reg_group_total(R));
    assert_int_equal(family_count(J), 1);
    assert_false(has_family(J, "a_total"));
    assert_false(has_family(J, "b"));
    assert_true(value_of(J, "c", JS) == 1);

    /* An empty body empties the group, which stays (with its push time). */
    assert_int_equal(push_empty(J, REG_PUSH_REPLACE_ALL, 300), REG_OK);
    check_accounting();
    assert_int_equal(reg_series_total(R), 0 + GROUP_SERIES * reg_group_total(R));
    assert_int_equal(reg_group_total(R), 1);
    g = get_group(J);
    assert_non_null(g);
    assert_int_equal(reg_group_family_count(g), 0);
    assert_true(reg_group_push_time(g) == 300);
    put_group(g);
}

static void test_post_replaces_named_families(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 100, FAM("a", "A", REG_GAUGE, S(JS, 1)),
                          FAM("b", "B", REG_GAUGE, S("instance=\"\",job=\"j\",x=\"1\"", 2),
                              S("instance=\"\",job=\"j\",x=\"2\"", 3))),
                     REG_OK);
    assert_int_equal(reg_series_total(R), 3 + GROUP_SERIES * reg_group_total(R));
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_FAMILIES, 200, FAM("b", NULL, REG_GAUGE, S(JS, 9)),
                          FAM("c", NULL, REG_COUNTER, S(JS, 5))),
                     REG_OK);
    check_accounting();
    assert_int_equal(reg_series_total(R), 3 + GROUP_SERIES * reg_group_total(R));
    reg_group *g = get_group(J);
    assert_non_null(g);
    assert_true(reg_group_push_time(g) == 200);
    assert_int_equal(reg_group_family_count(g), 3);
    const reg_push_family *f = reg_group_families(g);
    assert_string_equal(f[0].name, "a");
    assert_string_equal(f[1].name, "b");
    assert_string_equal(f[2].name, "c");
    /* a untouched: its own time and help; b replaced wholly (old series gone). */
    assert_true(f[0].time == 100);
    assert_string_equal(f[0].help, "A");
    assert_true(f[1].time == 200);
    assert_null(f[1].help);
    assert_int_equal(f[1].nseries, 1);
    assert_string_equal(f[1].series[0].labels, JS);
    assert_true(f[1].series[0].vals[0] == 9);
    assert_true(f[2].time == 200);
    put_group(g);
    /* POST onto an absent group makes it. */
    assert_int_equal(PUSH(K, REG_PUSH_REPLACE_FAMILIES, 300, FAM("a", NULL, REG_GAUGE, S(KS, 1))),
                     REG_OK);
    check_accounting();
    assert_int_equal(reg_group_total(R), 2);
    assert_int_equal(reg_series_total(R), 4 + GROUP_SERIES * reg_group_total(R));
}

static void test_add_counters(void **state) {
    (void)state;
    /* ADD onto an absent group is a plain push. */
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 100,
                          FAM("c_total", NULL, REG_COUNTER, S("instance=\"\",job=\"j\",x=\"1\"", 5),
                              S("instance=\"\",job=\"j\",x=\"3\"", 1)),
                          FAM("g", NULL, REG_GAUGE, S(JS, 10)),
                          FAM("keep", NULL, REG_GAUGE, S(JS, 4))),
                     REG_OK);
    check_accounting();
    assert_true(value_of(J, "c_total", "instance=\"\",job=\"j\",x=\"1\"") == 5);
    /* Counters add per series; new series join; stored ones not pushed stay; gauges replace;
     * families not named stay. */
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 200,
                          FAM("c_total", NULL, REG_COUNTER, S("instance=\"\",job=\"j\",x=\"2\"", 3),
                              S("instance=\"\",job=\"j\",x=\"1\"", 2)),
                          FAM("g", NULL, REG_GAUGE, S("instance=\"\",job=\"j\",y=\"1\"", 1))),
                     REG_OK);
    check_accounting();
    assert_int_equal(reg_series_total(R), 5 + GROUP_SERIES * reg_group_total(R));
    assert_true(value_of(J, "c_total", "instance=\"\",job=\"j\",x=\"1\"") == 7);
    assert_true(value_of(J, "c_total", "instance=\"\",job=\"j\",x=\"2\"") == 3);
    assert_true(value_of(J, "c_total", "instance=\"\",job=\"j\",x=\"3\"") == 1);
    assert_true(isnan(value_of(J, "g", JS)));
    assert_true(value_of(J, "g", "instance=\"\",job=\"j\",y=\"1\"") == 1);
    assert_true(value_of(J, "keep", JS) == 4);
    /* The summed family's series are sorted by labels. */
    reg_group *g = get_group(J);
    const reg_push_family *c = reg_group_family(g, "c_total");
    assert_int_equal(c->nseries, 3);
    for (size_t i = 1; i < c->nseries; i++)
        assert_true(strcmp(c->series[i - 1].labels, c->series[i].labels) < 0);
    assert_true(c->time == 200);
    assert_true(reg_group_family(g, "keep")->time == 100);
    put_group(g);
    /* A pushed family of another type than the stored one replaces it (the group may change
     * its own types). */
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 300, FAM("c_total", NULL, REG_GAUGE, S(JS, 1))), REG_OK);
    check_accounting();
    assert_true(value_of(J, "c_total", JS) == 1);
    assert_int_equal(reg_series_total(R), 3 + GROUP_SERIES * reg_group_total(R));
    /* And back to a counter: stored is a gauge, so nothing is added. */
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 400, FAM("c_total", NULL, REG_COUNTER, S(JS, 2))),
                     REG_OK);
    assert_true(value_of(J, "c_total", JS) == 2);
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 500, FAM("c_total", NULL, REG_COUNTER, S(JS, 2.5))),
                     REG_OK);
    assert_true(value_of(J, "c_total", JS) == 4.5);
    check_accounting();
}

#define HL "instance=\"\",job=\"j\""

static void test_add_histograms(void **state) {
    (void)state;
    double v[16];
    size_t n;
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 100,
                          FAM("h", NULL, REG_HISTOGRAM, S(HL, 1.5, 3, 1, 1, 2, 2, INFINITY, 3))),
                     REG_OK);
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 200,
                          FAM("h", NULL, REG_HISTOGRAM, S(HL, 2.5, 2, 1, 0, 2, 1, INFINITY, 2))),
                     REG_OK);
    check_accounting();
    assert_true(series_vals(J, "h", HL, v, &n));
    assert_int_equal(n, 8);
    const double want[] = {4, 5, 1, 1, 2, 3, INFINITY, 5};
    for (size_t i = 0; i < 8; i++)
        assert_true(v[i] == want[i]);
    /* Other bounds: refused, nothing changed. */
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_ADD, 300,
                             FAM("h", NULL, REG_HISTOGRAM, S(HL, 1, 1, 1, 0, 3, 1, INFINITY, 1))));
    assert_non_null(strstr(ERR, "h"));
    /* Other bucket count: refused, nothing changed. */
    REFUSED(REG_EINVAL,
            PUSH(J, REG_PUSH_ADD, 300, FAM("h", NULL, REG_HISTOGRAM, S(HL, 1, 1, INFINITY, 1))));
    REFUSED(REG_EINVAL,
            PUSH(J, REG_PUSH_ADD, 300,
                 FAM("h", NULL, REG_HISTOGRAM, S(HL, 1, 1, 1, 0, 2, 0, 3, 0, INFINITY, 1))));
    /* One series that fits and one that does not: the whole push is refused. */
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_ADD, 300,
                             FAM("h", NULL, REG_HISTOGRAM, S(HL, 1, 1, 1, 0, 3, 0, INFINITY, 1),
                                 S("instance=\"\",job=\"j\",z=\"1\"", 1, 1, INFINITY, 1)),
                             FAM("other", NULL, REG_GAUGE, S(HL, 1))));
    /* A new series of another layout is no sum: accepted. */
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 300,
                          FAM("h", NULL, REG_HISTOGRAM,
                              S("instance=\"\",job=\"j\",z=\"1\"", 1, 1, 5, 1, INFINITY, 1))),
                     REG_OK);
    check_accounting();
    assert_int_equal(reg_series_total(R), 2 + GROUP_SERIES * reg_group_total(R));
    assert_true(series_vals(J, "h", HL, v, &n));
    assert_true(v[0] == 4 && v[1] == 5);
    /* PUT then ignores the layout. */
    assert_int_equal(
        PUSH(J, REG_PUSH_REPLACE_ALL, 400, FAM("h", NULL, REG_HISTOGRAM, S(HL, 1, 1, INFINITY, 1))),
        REG_OK);
    check_accounting();
    assert_int_equal(reg_series_total(R), 1 + GROUP_SERIES * reg_group_total(R));
}

/* ADD of summaries replaces (no sum of quantiles). */
static void test_add_summaries_replace(void **state) {
    (void)state;
    double v[8];
    size_t n;
    assert_int_equal(
        PUSH(J, REG_PUSH_ADD, 1, FAM("s", NULL, REG_SUMMARY, S(HL, 10, 2, 0.5, 4, 0.9, 6))),
        REG_OK);
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 2, FAM("s", NULL, REG_SUMMARY, S(HL, 1, 1, 0.5, 1))),
                     REG_OK);
    assert_true(series_vals(J, "s", HL, v, &n));
    assert_int_equal(n, 4);
    assert_true(v[0] == 1 && v[1] == 1 && v[2] == 0.5 && v[3] == 1);
    check_accounting();
}

static void test_failed_on_absent_group(void **state) {
    (void)state;
    assert_int_equal(push_empty(J, REG_PUSH_FAILED, 123), REG_OK);
    check_accounting();
    assert_int_equal(reg_group_total(R), 1);
    assert_int_equal(reg_series_total(R), 0 + GROUP_SERIES * reg_group_total(R));
    reg_group *g = get_group(J);
    assert_non_null(g);
    assert_true(reg_group_push_time(g) == 0);
    assert_true(reg_group_failure_time(g) == 123);
    assert_int_equal(reg_group_family_count(g), 0);
    put_group(g);
    /* A later successful push keeps the failure time. */
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 200, FAM("a", NULL, REG_GAUGE, S(JS, 1))),
                     REG_OK);
    g = get_group(J);
    assert_true(reg_group_push_time(g) == 200);
    assert_true(reg_group_failure_time(g) == 123);
    put_group(g);
    check_accounting();
}

static void test_failed_on_present_group(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 100, FAM("a", "A", REG_GAUGE, S(JS, 1)),
                          FAM("b_total", NULL, REG_COUNTER, S(JS, 2))),
                     REG_OK);
    char *before = dump_all();
    /* The body of a failed push is ignored, even one that would be refused. */
    assert_int_equal(
        PUSH(J, REG_PUSH_FAILED, 150, FAM("push_time_seconds", NULL, REG_GAUGE, S(JS, 1, 2, 3))),
        REG_OK);
    char *after = dump_all();
    assert_string_not_equal(before, after);
    reg_group *g = get_group(J);
    assert_true(reg_group_push_time(g) == 100);
    assert_true(reg_group_failure_time(g) == 150);
    assert_int_equal(reg_group_family_count(g), 2);
    assert_true(reg_group_family(g, "a")->time == 100);
    put_group(g);
    /* Only the failure time changed. */
    assert_int_equal(push_empty(J, REG_PUSH_FAILED, 100), REG_OK); /* back to equal text... */
    char *again = dump_all();
    /* ...but for the failure time, which was 0 before: compare with it patched. */
    char *p = strstr(before, "fail=0");
    assert_non_null(p);
    char *q = strstr(again, "fail=100");
    assert_non_null(q);
    assert_int_equal(p - before, q - again);
    assert_string_equal(p + strlen("fail=0"), q + strlen("fail=100"));
    free(before);
    free(after);
    free(again);
    assert_int_equal(reg_series_total(R), 2 + GROUP_SERIES * reg_group_total(R));
}

/* ---- what a push may hold ----------------------------------------------------------------- */

static void test_series_sorted(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1,
                          FAM("m", NULL, REG_GAUGE, S("instance=\"\",job=\"j\",x=\"c\"", 3),
                              S("instance=\"\",job=\"j\",x=\"a\"", 1),
                              S("instance=\"\",job=\"j\",x=\"b\"", 2), S(JS, 0))),
                     REG_OK);
    reg_group *g = get_group(J);
    const reg_push_family *f = reg_group_family(g, "m");
    assert_int_equal(f->nseries, 4);
    for (size_t i = 0; i < f->nseries; i++) {
        if (i)
            assert_true(strcmp(f->series[i - 1].labels, f->series[i].labels) < 0);
        assert_int_equal(strlen(f->series[i].labels), f->series[i].labels_len);
    }
    /* The values moved with their labels. */
    assert_string_equal(f->series[0].labels, JS);
    assert_true(f->series[0].vals[0] == 0);
    assert_true(f->series[3].vals[0] == 3);
    put_group(g);
    /* Families sorted by name whatever the body order. */
    assert_int_equal(PUSH(K, REG_PUSH_REPLACE_ALL, 1, FAM("zz", NULL, REG_GAUGE, S(KS, 1)),
                          FAM("aa", NULL, REG_GAUGE, S(KS, 1)),
                          FAM("mm", NULL, REG_GAUGE, S(KS, 1))),
                     REG_OK);
    g = get_group(K);
    const reg_push_family *fs = reg_group_families(g);
    assert_int_equal(reg_group_family_count(g), 3);
    assert_string_equal(fs[0].name, "aa");
    assert_string_equal(fs[1].name, "mm");
    assert_string_equal(fs[2].name, "zz");
    put_group(g);
    check_accounting();
}

static void test_duplicate_series_refused(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("m", NULL, REG_GAUGE, S(JS, 1))), REG_OK);
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("ok", NULL, REG_GAUGE, S(JS, 1)),
                             FAM("dup", NULL, REG_GAUGE, S("instance=\"\",job=\"j\",x=\"1\"", 1),
                                 S(JS, 2), S("instance=\"\",job=\"j\",x=\"1\"", 3))));
    assert_non_null(strstr(ERR, "dup"));
    REFUSED(REG_EINVAL,
            PUSH(J, REG_PUSH_REPLACE_FAMILIES, 2, FAM("m", NULL, REG_GAUGE, S(JS, 1), S(JS, 1))));
    assert_non_null(strstr(ERR, "m"));
    /* On an absent group: it stays absent. */
    REFUSED(REG_EINVAL,
            PUSH(K, REG_PUSH_REPLACE_ALL, 2, FAM("m", NULL, REG_GAUGE, S(KS, 1), S(KS, 1))));
    /* ADD onto a stored counter with a series twice in the body. */
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 3, FAM("c", NULL, REG_COUNTER, S(JS, 1))), REG_OK);
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_ADD, 4, FAM("c", NULL, REG_COUNTER, S(JS, 1), S(JS, 1))));
    assert_non_null(strstr(ERR, "c"));
    /* A family given twice in one body. */
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 5, FAM("m", NULL, REG_GAUGE, S(JS, 1)),
                             FAM("m", NULL, REG_GAUGE, S("instance=\"\",job=\"j\",x=\"1\"", 1))));
}

static void test_shapes_checked(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("m", NULL, REG_GAUGE, S(JS, 1))), REG_OK);
    /* Histogram: no +Inf; -Inf last; bounds not increasing; equal bounds; NaN bound; no
     * bucket at all; an odd count of values. */
    REFUSED(REG_EINVAL,
            PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("h", NULL, REG_HISTOGRAM, S(JS, 1, 1, 1, 1))));
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2,
                             FAM("h", NULL, REG_HISTOGRAM, S(JS, 1, 1, -INFINITY, 1))));
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2,
                             FAM("h", NULL, REG_HISTOGRAM, S(JS, 1, 1, 2, 1, 1, 1, INFINITY, 1))));
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2,
                             FAM("h", NULL, REG_HISTOGRAM, S(JS, 1, 1, 1, 1, 1, 1, INFINITY, 1))));
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2,
                             FAM("h", NULL, REG_HISTOGRAM, S(JS, 1, 1, NAN, 1, INFINITY, 1))));
    REFUSED(REG_EINVAL,
            PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("h", NULL, REG_HISTOGRAM, S(JS, 1, 1))));
    REFUSED(REG_EINVAL,
            PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("h", NULL, REG_HISTOGRAM, S(JS, 1, 1, INFINITY))));
    /* +Inf not last. */
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2,
                             FAM("h", NULL, REG_HISTOGRAM, S(JS, 1, 1, INFINITY, 1, 5, 1))));
    /* Summary: quantiles not increasing; an odd count; fewer than sum and count. */
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2,
                             FAM("s", NULL, REG_SUMMARY, S(JS, 1, 1, 0.9, 1, 0.5, 1))));
    REFUSED(REG_EINVAL,
            PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("s", NULL, REG_SUMMARY, S(JS, 1, 1, 0.5))));
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("s", NULL, REG_SUMMARY, S(JS, 1))));
    /* Counter, gauge, untyped: exactly one value. */
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("c", NULL, REG_COUNTER, S(JS, 1, 2))));
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("g", NULL, REG_GAUGE, S(JS, 1, 2))));
    REFUSED(REG_EINVAL,
            PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("u", NULL, REG_UNTYPED, S(JS, 1, 2, 3))));
    /* A bad series among good families: the whole push is refused (ADD too). */
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_ADD, 2, FAM("m", NULL, REG_GAUGE, S(JS, 5)),
                             FAM("h", NULL, REG_HISTOGRAM, S(JS, 1, 1, 1, 1))));
    /* The shapes that are fine. */
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 3,
                          FAM("h", NULL, REG_HISTOGRAM, S(JS, 0, 0, INFINITY, 0)),
                          FAM("s", NULL, REG_SUMMARY, S(JS, 1, 1)),
                          FAM("s2", NULL, REG_SUMMARY, S(JS, 1, 1, 0.5, 1, 0.9, NAN))),
                     REG_OK);
    check_accounting();
    assert_int_equal(reg_series_total(R), 3 + GROUP_SERIES * reg_group_total(R));
}

static void test_reserved_and_bad_names(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("m", NULL, REG_GAUGE, S(JS, 1))), REG_OK);
    REFUSED(REG_EINVAL,
            PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM(REG_PUSH_TIME_NAME, NULL, REG_GAUGE, S(JS, 1))));
    assert_non_null(strstr(ERR, REG_PUSH_TIME_NAME));
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_FAMILIES, 2,
                             FAM(REG_PUSH_FAILURE_TIME_NAME, NULL, REG_GAUGE, S(JS, 1))));
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_ADD, 2, FAM("m", NULL, REG_GAUGE, S(JS, 1)),
                             FAM(REG_PUSH_TIME_NAME, NULL, REG_GAUGE, S(JS, 1))));
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("1bad", NULL, REG_GAUGE, S(JS, 1))));
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("", NULL, REG_GAUGE, S(JS, 1))));
    REFUSED(REG_EINVAL, PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("a-b", NULL, REG_GAUGE, S(JS, 1))));
    /* A counter push_time_seconds_total renders push_time_seconds (OpenMetrics): refused;
     * names that only look alike are fine. */
    REFUSED(REG_ECONFLICT, PUSH(J, REG_PUSH_REPLACE_ALL, 3,
                                FAM("push_time_seconds_total", NULL, REG_COUNTER, S(JS, 1))));
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 3,
                          FAM("push_time_total", NULL, REG_COUNTER, S(JS, 1)),
                          FAM("ns:push_time_seconds", NULL, REG_GAUGE, S(JS, 1))),
                     REG_OK);
    check_accounting();
}

/* ---- names as one registry ---------------------------------------------------------------- */

static void test_type_conflicts_across_groups(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("m", NULL, REG_COUNTER, S(JS, 1))),
                     REG_OK);
    REFUSED(REG_ECONFLICT, PUSH(K, REG_PUSH_REPLACE_ALL, 2, FAM("m", NULL, REG_GAUGE, S(KS, 1))));
    assert_non_null(strstr(ERR, "m"));
    REFUSED(REG_ECONFLICT,
            PUSH(K, REG_PUSH_ADD, 2, FAM("m", NULL, REG_HISTOGRAM, S(KS, 1, 1, INFINITY, 1))));
    /* Same type: fine. Now two groups hold m as a counter. */
    assert_int_equal(PUSH(K, REG_PUSH_REPLACE_ALL, 2, FAM("m", NULL, REG_COUNTER, S(KS, 1))),
                     REG_OK);
    /* One of them may not change m's type while the other holds it. */
    REFUSED(REG_ECONFLICT, PUSH(J, REG_PUSH_REPLACE_ALL, 3, FAM("m", NULL, REG_GAUGE, S(JS, 1))));
    REFUSED(REG_ECONFLICT,
            PUSH(J, REG_PUSH_REPLACE_FAMILIES, 3, FAM("m", NULL, REG_UNTYPED, S(JS, 1))));
    /* K drops m (PUT without it): J alone holds it and may change its type. */
    assert_int_equal(PUSH(K, REG_PUSH_REPLACE_ALL, 4, FAM("other", NULL, REG_GAUGE, S(KS, 1))),
                     REG_OK);
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 5, FAM("m", NULL, REG_GAUGE, S(JS, 1))), REG_OK);
    /* Now m is a gauge: K may push it as one, not as a counter. */
    REFUSED(REG_ECONFLICT,
            PUSH(K, REG_PUSH_REPLACE_FAMILIES, 6, FAM("m", NULL, REG_COUNTER, S(KS, 1))));
    assert_int_equal(PUSH(K, REG_PUSH_REPLACE_FAMILIES, 6, FAM("m", NULL, REG_GAUGE, S(KS, 1))),
                     REG_OK);
    /* Deleting both frees the name. */
    assert_int_equal(reg_group_delete(R, J, strlen(J)), REG_OK);
    assert_int_equal(reg_group_delete(R, K, strlen(K)), REG_OK);
    assert_int_equal(PUSH(K, REG_PUSH_REPLACE_ALL, 7, FAM("m", NULL, REG_SUMMARY, S(KS, 1, 1))),
                     REG_OK);
    check_accounting();
}

/* A group changing its own type among several families, with POST: the name index stays
 * exact (a later conflict check sees the current type). */
static void test_same_group_changes_type(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("m", NULL, REG_COUNTER, S(JS, 1))),
                     REG_OK);
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_FAMILIES, 2, FAM("m", NULL, REG_GAUGE, S(JS, 1))),
                     REG_OK);
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 3, FAM("m", NULL, REG_UNTYPED, S(JS, 1))), REG_OK);
    /* A failed push keeps m untyped. */
    assert_int_equal(push_empty(J, REG_PUSH_FAILED, 4), REG_OK);
    REFUSED(REG_ECONFLICT, PUSH(K, REG_PUSH_REPLACE_ALL, 5, FAM("m", NULL, REG_GAUGE, S(KS, 1))));
    assert_int_equal(PUSH(K, REG_PUSH_REPLACE_ALL, 5, FAM("m", NULL, REG_UNTYPED, S(KS, 1))),
                     REG_OK);
    /* A registry family must take the pushed type. */
    reg_family_def d = {.name = "m", .type = REG_GAUGE};
    reg_family *f;
    reg_begin(T);
    assert_int_equal(reg_family_add(T, &d, &f), REG_ECONFLICT);
    d.type = REG_UNTYPED;
    assert_int_equal(reg_family_add(T, &d, &f), REG_OK);
    reg_end(T);
    check_accounting();
}

static int add_family(const reg_family_def *d) {
    reg_family *f;
    reg_begin(T);
    int rc = reg_family_add(T, d, &f);
    reg_end(T);
    return rc;
}

static int replace_family(const reg_family_def *d) {
    reg_family *f;
    reg_begin(T);
    int rc = reg_family_replace(T, d, &f);
    reg_end(T);
    return rc;
}

static void test_family_add_after_push(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("m", NULL, REG_COUNTER, S(JS, 1))),
                     REG_OK);
    reg_family_def d = {.name = "m", .type = REG_GAUGE};
    assert_int_equal(add_family(&d), REG_ECONFLICT);
    assert_int_equal(replace_family(&d), REG_ECONFLICT);
    reg_begin(T);
    assert_null(reg_family_find(T, "m"));
    reg_end(T);
    /* The push-time gauges are pushed names too, as gauges. */
    reg_family_def pt = {.name = REG_PUSH_TIME_NAME, .type = REG_COUNTER};
    assert_int_equal(add_family(&pt), REG_ECONFLICT);
    pt.name = REG_PUSH_FAILURE_TIME_NAME;
    assert_int_equal(replace_family(&pt), REG_ECONFLICT);
    /* Once the group is gone, the names are free; the push-time names stay for label-less
     * gauges only. */
    assert_int_equal(reg_group_delete(R, J, strlen(J)), REG_OK);
    assert_int_equal(add_family(&d), REG_OK);
    assert_int_equal(add_family(&pt), REG_ECONFLICT);
    pt.type = REG_GAUGE;
    assert_int_equal(add_family(&pt), REG_OK);
    check_accounting();
}

/* The push-time names are only for label-less gauges in the registry, pushes or not. */
static void test_meta_name_family_not_a_gauge(void **state) {
    (void)state;
    reg_family_def pt = {.name = REG_PUSH_TIME_NAME, .type = REG_COUNTER};
    assert_int_equal(add_family(&pt), REG_ECONFLICT);
    static const char *const job[] = {"job"};
    reg_family_def labelled = {
        .name = REG_PUSH_TIME_NAME, .type = REG_GAUGE, .nlabels = 1, .labels = job};
    assert_int_equal(add_family(&labelled), REG_ECONFLICT);
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("m", NULL, REG_COUNTER, S(JS, 1))),
                     REG_OK);
}

static const char *const FIT_LABELS[] = {"a", "instance"};
static const char *const FIT_CONST_NAMES[] = {"c"};
static const char *const FIT_CONST_VALUES[] = {"k"};

static reg_family_def fit_def(void) {
    reg_family_def d = {.name = "d_total",
                        .help = "declared",
                        .type = REG_COUNTER,
                        .nlabels = 2,
                        .labels = FIT_LABELS};
    return d;
}

/* A family with constant labels takes no pushes: its rendered constant labels and the
 * pushed series' own would name a label twice. */
static void test_push_refused_by_const_labels(void **state) {
    (void)state;
    reg_family_def d = fit_def();
    d.nconst = 1;
    d.const_names = FIT_CONST_NAMES;
    d.const_values = FIT_CONST_VALUES;
    assert_int_equal(add_family(&d), REG_OK);
    REFUSED(REG_ECONFLICT, PUSH(J, REG_PUSH_REPLACE_ALL, 1,
                                FAM("d_total", NULL, REG_COUNTER,
                                    S("a=\"1\",c=\"k\",instance=\"\",job=\"j\"", 1))));
    check_accounting();
}

#define FITS "a=\"1\",instance=\"\",job=\"j\""

static void test_push_fits_registry_family(void **state) {
    (void)state;
    reg_family_def d = fit_def();
    assert_int_equal(add_family(&d), REG_OK);
    /* Another type; another help; help where the family has none is tested below. */
    REFUSED(REG_ECONFLICT,
            PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("d_total", NULL, REG_GAUGE, S(FITS, 1))));
    assert_non_null(strstr(ERR, "d_total"));
    REFUSED(REG_ECONFLICT,
            PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("d_total", "other", REG_COUNTER, S(FITS, 1))));
    /* Labels: one missing; one extra. */
    REFUSED(REG_ECONFLICT,
            PUSH(J, REG_PUSH_REPLACE_ALL, 1,
                 FAM("d_total", NULL, REG_COUNTER, S("instance=\"\",job=\"j\"", 1))));
    REFUSED(REG_ECONFLICT, PUSH(J, REG_PUSH_REPLACE_ALL, 1,
                                FAM("d_total", NULL, REG_COUNTER,
                                    S("a=\"1\",b=\"2\",instance=\"\",job=\"j\"", 1))));
    /* One series that fits and one that does not. */
    REFUSED(REG_ECONFLICT, PUSH(J, REG_PUSH_REPLACE_ALL, 1,
                                FAM("d_total", NULL, REG_COUNTER, S(FITS, 1),
                                    S("instance=\"\",job=\"j\",z=\"2\"", 1))));
    /* A fitting one: labels without the key's (job) are the family's; no help, or the same. */
    assert_int_equal(
        PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("d_total", NULL, REG_COUNTER, S(FITS, 1))), REG_OK);
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 2,
                          FAM("d_total", "declared", REG_COUNTER, S(FITS, 1),
                              S("a=\"x\\\",y=\\\"z\",instance=\"i\",job=\"j\"", 2))),
                     REG_OK);
    /* With a key of more labels, those are left out too. */
    assert_int_equal(
        PUSH("b=\"2\",job=\"k\"", REG_PUSH_REPLACE_ALL, 3,
             FAM("d_total", NULL, REG_COUNTER, S("a=\"1\",b=\"2\",instance=\"\",job=\"k\"", 1))),
        REG_OK);
    /* A family label given in the key is left out as a key label: the rest does not fit. */
    REFUSED(REG_ECONFLICT,
            PUSH("a=\"1\",job=\"k\"", REG_PUSH_REPLACE_ALL, 4,
                 FAM("d_total", NULL, REG_COUNTER, S("a=\"1\",instance=\"\",job=\"k\"", 1))));
    check_accounting();
}

/* A push with help where the registry family has none. */
static void test_push_help_where_family_has_none(void **state) {
    (void)state;
    reg_family_def d = {.name = "g", .type = REG_GAUGE, .nlabels = 1, .labels = FIT_LABELS + 1};
    assert_int_equal(add_family(&d), REG_OK);
    REFUSED(REG_ECONFLICT,
            PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("g", "some help", REG_GAUGE, S(JS, 1))));
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("g", NULL, REG_GAUGE, S(JS, 1))), REG_OK);
    check_accounting();
}

/* The header: a new registry family is refused only for another type than pushed groups
 * have; other help and labels are accepted (what was pushed before stays). */
static void test_family_add_checks_type_of_pushed_name(void **state) {
    (void)state;
    assert_int_equal(
        PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("d_total", "pushed", REG_COUNTER, S(FITS, 1))),
        REG_OK);
    reg_family_def other_type = {.name = "d_total", .help = "pushed", .type = REG_GAUGE};
    assert_int_equal(add_family(&other_type), REG_ECONFLICT);
    reg_family_def same_type = {.name = "d_total", .help = "other", .type = REG_COUNTER};
    assert_int_equal(add_family(&same_type), REG_OK);
}

/* A failed push, or a push of other families, does not re-check what the group keeps: a
 * registry family of a kept name (same type, other help) was added after it was pushed. */
static void test_failed_push_cannot_conflict(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("g", "pushed help", REG_GAUGE, S(JS, 1))),
                     REG_OK);
    reg_family_def d = {.name = "g",
                        .help = "declared help",
                        .type = REG_GAUGE,
                        .nlabels = 1,
                        .labels = FIT_LABELS};
    assert_int_equal(add_family(&d), REG_OK);
    assert_int_equal(push_empty(J, REG_PUSH_FAILED, 2), REG_OK);
    reg_group *g = get_group(J);
    assert_true(reg_group_failure_time(g) == 2);
    put_group(g);
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_FAMILIES, 3, FAM("other", NULL, REG_GAUGE, S(JS, 1))),
                     REG_OK);
}

/* ---- the series limit --------------------------------------------------------------------- */

#define K_X(x) "instance=\"\",job=\"k\",x=\"" x "\""
#define J_Y(y) "instance=\"\",job=\"j\",y=\"" y "\""

static void test_series_limit(void **state) {
    (void)state;
    /* Limit 10 (setup_limited); a group counts its series and its two push-time gauges. */
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1,
                          FAM("m", NULL, REG_GAUGE, S(JS, 1), S(J_Y("1"), 1), S(J_Y("2"), 1))),
                     REG_OK);
    assert_int_equal(reg_series_total(R), 5);
    /* Registry series count too. */
    reg_family_def d = {.name = "own", .type = REG_COUNTER, .nlabels = 1, .labels = FIT_LABELS};
    reg_family *f;
    reg_begin(T);
    assert_int_equal(reg_family_add(T, &d, &f), REG_OK);
    assert_int_equal(reg_counter_add(T, f, (const char *const[]){"x"}, 1), REG_OK);
    reg_end(T);
    assert_int_equal(reg_series_total(R), 6);
    /* A new group of 3 would make 11: refused, nothing changes; an ADD of 5 too. */
    REFUSED(REG_ELIMIT,
            PUSH(K, REG_PUSH_REPLACE_ALL, 2,
                 FAM("m", NULL, REG_GAUGE, S(K_X("1"), 1), S(K_X("2"), 1), S(K_X("3"), 1))));
    assert_non_null(strstr(ERR, "limit"));
    REFUSED(REG_ELIMIT, PUSH(J, REG_PUSH_ADD, 2,
                             FAM("n", NULL, REG_GAUGE, S(J_Y("1"), 1), S(J_Y("2"), 1),
                                 S(J_Y("3"), 1), S(J_Y("4"), 1), S(J_Y("5"), 1))));
    /* Exactly up to the limit: fine. */
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_FAMILIES, 3,
                          FAM("n", NULL, REG_GAUGE, S(J_Y("1"), 1), S(J_Y("2"), 1), S(J_Y("3"), 1),
                              S(J_Y("4"), 1))),
                     REG_OK);
    assert_int_equal(reg_series_total(R), 10);
    check_accounting();
    /* Full: a registry series is refused now, and so is a group made by a failed push. */
    reg_begin(T);
    assert_int_equal(reg_counter_add(T, f, (const char *const[]){"y"}, 1), REG_ELIMIT);
    reg_end(T);
    assert_int_equal(push_empty(K, REG_PUSH_FAILED, 4), REG_ELIMIT);
    assert_int_equal(reg_group_total(R), 1);
    /* Replacing a group with a smaller one gives room back. */
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 5, FAM("m", NULL, REG_GAUGE, S(JS, 1))), REG_OK);
    assert_int_equal(reg_series_total(R), 4);
    assert_int_equal(
        PUSH(K, REG_PUSH_REPLACE_ALL, 6,
             FAM("m", NULL, REG_GAUGE, S(K_X("1"), 1), S(K_X("2"), 1), S(K_X("3"), 1))),
        REG_OK);
    assert_int_equal(reg_series_total(R), 9);
    check_accounting();
    /* Deleting gives room back. */
    assert_int_equal(reg_group_delete(R, K, strlen(K)), REG_OK);
    assert_int_equal(reg_series_total(R), 4);
    check_accounting();
}
#undef K_X
#undef J_Y

/* ---- delete, wipe, TTL -------------------------------------------------------------------- */

static void test_delete_and_wipe(void **state) {
    (void)state;
    assert_int_equal(reg_group_delete(R, J, strlen(J)), REG_ENOTFOUND);
    assert_int_equal(reg_group_wipe(R), 0);
    assert_int_equal(
        PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("m", NULL, REG_GAUGE, S(JS, 1), S(HL ",z=\"1\"", 1))),
        REG_OK);
    assert_int_equal(PUSH(K, REG_PUSH_REPLACE_ALL, 1, FAM("m", NULL, REG_GAUGE, S(KS, 1))), REG_OK);
    assert_int_equal(push_empty("job=\"e\"", REG_PUSH_FAILED, 1), REG_OK);
    check_accounting();
    assert_int_equal(reg_series_total(R), 3 + GROUP_SERIES * reg_group_total(R));
    assert_int_equal(reg_group_total(R), 3);
    /* A key that is a prefix of another is another key. */
    assert_int_equal(reg_group_delete(R, J, strlen(J) - 1), REG_ENOTFOUND);
    assert_int_equal(reg_group_delete(R, J, strlen(J)), REG_OK);
    check_accounting();
    assert_int_equal(reg_series_total(R), 1 + GROUP_SERIES * reg_group_total(R));
    assert_int_equal(reg_group_total(R), 2);
    assert_int_equal(reg_group_delete(R, J, strlen(J)), REG_ENOTFOUND);
    assert_null(get_group(J));
    /* A deleted group comes back fresh: no failure time, no old families. */
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_FAMILIES, 2, FAM("n", NULL, REG_GAUGE, S(JS, 1))),
                     REG_OK);
    assert_int_equal(family_count(J), 1);
    check_accounting();
    assert_int_equal(reg_group_wipe(R), 3);
    check_accounting();
    assert_int_equal(reg_series_total(R), 0 + GROUP_SERIES * reg_group_total(R));
    assert_int_equal(reg_group_total(R), 0);
    assert_int_equal(reg_group_wipe(R), 0);
    /* The names are free again. */
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 3, FAM("m", NULL, REG_COUNTER, S(JS, 1))),
                     REG_OK);
    reg_family_def d = {.name = "m", .type = REG_GAUGE};
    assert_int_equal(add_family(&d), REG_ECONFLICT);
    assert_int_equal(reg_group_wipe(R), 1);
    assert_int_equal(add_family(&d), REG_OK);
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Reap until the group count is want, or fail after a generous bound (no fixed sleep). */
static void reap_until_groups(size_t want) {
    uint64_t deadline = mono_ns() + 20ULL * 1000000000ULL;
    while (reg_group_total(R) != want) {
        assert_true(mono_ns() < deadline);
        reg_reap(R);
    }
}

static void test_ttl_expiry(void **state) {
    (void)state;
    /* Three groups: 1 ns TTL, a long TTL, none. */
    assert_int_equal(push_full(J, REG_PUSH_REPLACE_ALL,
                               (const reg_push_family[]){FAM("m", NULL, REG_GAUGE, S(JS, 1))}, 1, 1,
                               1),
                     REG_OK);
    assert_int_equal(push_full(K, REG_PUSH_REPLACE_ALL,
                               (const reg_push_family[]){FAM("m", NULL, REG_GAUGE, S(KS, 1))}, 1, 1,
                               3600ULL * 1000000000ULL),
                     REG_OK);
    assert_int_equal(PUSH("job=\"n\"", REG_PUSH_REPLACE_ALL, 1,
                          FAM("m", NULL, REG_GAUGE, S("instance=\"\",job=\"n\"", 1))),
                     REG_OK);
    assert_int_equal(reg_series_total(R), 3 + GROUP_SERIES * reg_group_total(R));
    reap_until_groups(2);
    check_accounting();
    assert_null(get_group(J));
    assert_int_equal(reg_series_total(R), 2 + GROUP_SERIES * reg_group_total(R));
    /* More passes remove nothing else. */
    reg_reap(R);
    reg_reap(R);
    assert_int_equal(reg_group_total(R), 2);
    /* A failed push keeps the deadline it found: K's long one survives, and a FAILED push on
     * a 1 ns group does not renew it. */
    assert_int_equal(push_empty(K, REG_PUSH_FAILED, 2), REG_OK);
    reg_reap(R);
    assert_int_equal(reg_group_total(R), 2);
    /* A successful push sets the new TTL: K now goes. */
    assert_int_equal(push_full(K, REG_PUSH_REPLACE_FAMILIES,
                               (const reg_push_family[]){FAM("m", NULL, REG_GAUGE, S(KS, 2))}, 1, 3,
                               1),
                     REG_OK);
    assert_int_equal(push_empty(K, REG_PUSH_FAILED, 4), REG_OK);
    reap_until_groups(1);
    check_accounting();
    assert_int_equal(reg_series_total(R), 1 + GROUP_SERIES * reg_group_total(R));
    /* A name held only by reaped groups is free. */
    reg_family_def d = {.name = "m", .type = REG_COUNTER};
    assert_int_equal(add_family(&d), REG_ECONFLICT); /* "n" still has m */
    assert_int_equal(reg_group_delete(R, "job=\"n\"", 7), REG_OK);
    assert_int_equal(add_family(&d), REG_OK);
    check_accounting();
}

/* ---- snapshots ---------------------------------------------------------------------------- */

static void test_snapshot_sorted(void **state) {
    (void)state;
    const char *keys[] = {"job=\"m\"",  "a=\"1\",job=\"z\"", "job=\"b\"",
                          "job=\"a\"",  "a=\"2\",job=\"z\"", "b=\"\",job=\"a\"",
                          "job=\"aa\"", "job=\"a\",z=\"1\""};
    size_t nk = sizeof keys / sizeof *keys;
    for (size_t i = 0; i < nk; i++)
        assert_int_equal(push_empty(keys[i], REG_PUSH_REPLACE_ALL, (double)i), REG_OK);
    size_t n;
    reg_group **v = snapshot(&n);
    assert_int_equal(n, nk);
    for (size_t i = 1; i < n; i++) {
        size_t la, lb;
        const char *a = reg_group_key(v[i - 1], &la), *b = reg_group_key(v[i], &lb);
        size_t m = la < lb ? la : lb;
        int c = memcmp(a, b, m);
        assert_true(c < 0 || (c == 0 && la < lb));
    }
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *k = reg_group_key(v[i], &len);
        assert_int_equal(strlen(k), len); /* NUL-terminated */
    }
    release(v, n);
    /* Empty: 0, and the buffer reused. */
    assert_int_equal(reg_group_wipe(R), nk);
    v = snapshot(&n);
    assert_int_equal(n, 0);
    free(v);
}

static void test_snapshot_states_outlive_changes(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1,
                          FAM("m", "help text", REG_GAUGE, S(JS, 1), S(HL ",z=\"1\"", 2)),
                          FAM("h", NULL, REG_HISTOGRAM, S(JS, 1, 1, 1, 1, INFINITY, 1))),
                     REG_OK);
    assert_int_equal(PUSH(K, REG_PUSH_REPLACE_ALL, 1, FAM("m", NULL, REG_GAUGE, S(KS, 5))), REG_OK);
    size_t n;
    reg_group **held = snapshot(&n);
    assert_int_equal(n, 2);
    char before[4096];
    dump_state(held[0], before, sizeof before);
    char before_k[4096];
    dump_state(held[1], before_k, sizeof before_k);
    /* Replace J several ways, delete K, wipe, push again, and let the reaper reclaim. */
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 2, FAM("m", NULL, REG_GAUGE, S(JS, 9))), REG_OK);
    reg_reap(R);
    assert_int_equal(PUSH(J, REG_PUSH_ADD, 3, FAM("x", NULL, REG_COUNTER, S(JS, 9))), REG_OK);
    assert_int_equal(push_empty(J, REG_PUSH_FAILED, 4), REG_OK);
    assert_int_equal(reg_group_delete(R, K, strlen(K)), REG_OK);
    reg_reap(R);
    assert_int_equal(reg_group_wipe(R), 1);
    for (int i = 0; i < 4; i++)
        reg_reap(R);
    assert_int_equal(PUSH(K, REG_PUSH_REPLACE_ALL, 5, FAM("m", NULL, REG_GAUGE, S(KS, 6))), REG_OK);
    reg_reap(R);
    /* The held states read as they were (ASan: no use after free). */
    char after[4096], after_k[4096];
    dump_state(held[0], after, sizeof after);
    dump_state(held[1], after_k, sizeof after_k);
    assert_string_equal(before, after);
    assert_string_equal(before_k, after_k);
    assert_non_null(strstr(after, "help text"));
    release(held, n);
    for (int i = 0; i < 4; i++)
        reg_reap(R);
    check_accounting();
    assert_int_equal(reg_series_total(R), 1 + GROUP_SERIES * reg_group_total(R));
}

static void test_group_family_lookup(void **state) {
    (void)state;
    assert_int_equal(PUSH(J, REG_PUSH_REPLACE_ALL, 1, FAM("b", NULL, REG_GAUGE, S(JS, 2)),
                          FAM("a", NULL, REG_GAUGE, S(JS, 1)),
                          FAM("c", NULL, REG_COUNTER, S(JS, 3)),
                          FAM("a_b", NULL, REG_GAUGE, S(JS, 4))),
                     REG_OK);
    reg_group *g = get_group(J);
    assert_non_null(g);
    const char *names[] = {"a", "a_b", "b", "c"};
    const reg_push_family *all = reg_group_families(g);
    for (size_t i = 0; i < 4; i++) {
        const reg_push_family *f = reg_group_family(g, names[i]);
        assert_non_null(f);
        assert_ptr_equal(f, &all[i]);
        assert_string_equal(f->name, names[i]);
    }
    assert_null(reg_group_family(g, ""));
    assert_null(reg_group_family(g, "a_"));
    assert_null(reg_group_family(g, "aa"));
    assert_null(reg_group_family(g, "d"));
    assert_null(reg_group_family(g, REG_PUSH_TIME_NAME));
    put_group(g);
    /* A group without families. */
    assert_int_equal(push_empty(K, REG_PUSH_FAILED, 1), REG_OK);
    g = get_group(K);
    assert_null(reg_group_family(g, "a"));
    assert_int_equal(reg_group_family_count(g), 0);
    put_group(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_replaces_the_whole_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_replaces_named_families, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_histograms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_summaries_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_on_absent_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_on_present_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_series_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shapes_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_and_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_conflicts_across_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_group_changes_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_family_add_after_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_name_family_not_a_gauge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_fits_registry_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_refused_by_const_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_help_where_family_has_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_family_add_checks_type_of_pushed_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_push_cannot_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_limit, setup_limited, teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_wipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_states_outlive_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_family_lookup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
