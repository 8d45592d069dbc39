/* test_quantile.c - unit tests of the targeted-quantile stream (registry/quantile.c):
 * accuracy against exact quantiles within each objective's rank error, empty windows, age
 * bucket rotation driven by explicit timestamps, hostile values, objectives and clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quantile.h"

#define SEC 1000000000ull

static const reg_objective std_obj[] = {{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}};
#define NSTD (sizeof(std_obj) / sizeof(std_obj[0]))

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) {
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static double rng_unit(void) { /* (0, 1) */
    return ((double)(rng() >> 11) + 0.5) / 9007199254740992.0;
}

/* The stream's order: NaN above everything. */
static int cmp_total(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    if (isnan(a) || isnan(b))
        return isnan(a) - isnan(b);
    return (a > b) - (a < b);
}

/* Asserts that est is a value of sorted[0..n) whose rank is within e*n (+1 for rounding) of
 * q*n, which is the guarantee a targeted objective (q, e) gives. */
static void assert_rank_ok(const double *sorted, size_t n, double est, double q, double e) {
    size_t lo = 0, hi = 0; /* values below est; values at or below est */
    for (size_t i = 0; i < n; i++) {
        int c = cmp_total(&sorted[i], &est);
        lo += c < 0;
        hi += c <= 0;
    }
    if (hi == lo)
        fail_msg("estimate %g for q=%g is not an observed value", est, q);
    double want = q * (double)n, slack = e * (double)n + 1;
    if ((double)(lo + 1) > want + slack || (double)hi < want - slack)
        fail_msg("q=%g e=%g n=%zu: estimate %g has ranks %zu..%zu, want %.1f +- %.1f", q, e, n, est,
                 lo + 1, hi, want, slack);
}

/* Feeds values[0..n) at one instant, checks every objective against the exact ranks at a few
 * checkpoints and at the end. */
static void check_accuracy(const double *values, size_t n, const reg_objective *obj, size_t nobj,
                           unsigned buf_cap) {
    reg_qstream *q = reg_qstream_create(obj, nobj, 3600 * SEC, 5, buf_cap, 1000);
    assert_non_null(q);
    double *sorted = malloc(n * sizeof(*sorted));
    double *out = malloc(nobj * sizeof(*out));
    assert_non_null(sorted);
    assert_non_null(out);
    size_t step = n / 4 ? n / 4 : 1;
    for (size_t i = 0; i < n; i++) {
        reg_qstream_observe(q, values[i], 1000 + i);
        if ((i + 1) % step == 0 || i + 1 == n) {
            size_t m = i + 1;
            memcpy(sorted, values, m * sizeof(*sorted));
            qsort(sorted, m, sizeof(*sorted), cmp_total);
            reg_qstream_query(q, 1000 + i, out);
            for (size_t k = 0; k < nobj; k++)
                assert_rank_ok(sorted, m, out[k], obj[k].quantile, obj[k].error);
        }
    }
    free(out);
    free(sorted);
    reg_qstream_destroy(q);
}

static void test_create_args(void **state) {
    (void)state;
    assert_null(reg_qstream_create(NULL, 3, 0, 0, 0, 0));
    reg_qstream_destroy(NULL);
    /* No objectives: observations are accepted and ignored; query writes nothing. */
    reg_qstream *q = reg_qstream_create(NULL, 0, 0, 0, 0, 0);
    assert_non_null(q);
    reg_qstream_observe(q, 1.0, 1);
    double sentinel = 42;
    reg_qstream_query(q, 2, &sentinel);
    assert_true(sentinel == 42);
    reg_qstream_destroy(q);
}

static void test_empty_is_nan(void **state) {
    (void)state;
    double out[NSTD];
    reg_qstream *q = reg_qstream_create(std_obj, NSTD, 10 * SEC, 5, 0, 0);
    assert_non_null(q);
    reg_qstream_query(q, 0, out);
    for (size_t i = 0; i < NSTD; i++)
        assert_true(isnan(out[i]));
    reg_qstream_query(q, 100 * SEC, out);
    for (size_t i = 0; i < NSTD; i++)
        assert_true(isnan(out[i]));
    reg_qstream_destroy(q);
}

static void test_single_value(void **state) {
    (void)state;
    double out[NSTD];
    reg_qstream *q = reg_qstream_create(std_obj, NSTD, 10 * SEC, 5, 0, 0);
    reg_qstream_observe(q, 3.25, 1);
    reg_qstream_query(q, 1, out);
    for (size_t i = 0; i < NSTD; i++)
        assert_true(out[i] == 3.25);
    /* Again after the buffer was merged into the streams by a bucket expiry. */
    reg_qstream_query(q, 3 * SEC, out);
    for (size_t i = 0; i < NSTD; i++)
        assert_true(out[i] == 3.25);
    reg_qstream_destroy(q);
}

/* 1..100 in random order: exact while everything is still buffered. */
static void test_small_exact(void **state) {
    (void)state;
    double v[100], out[NSTD];
    for (int i = 0; i < 100; i++)
        v[i] = i + 1;
    for (int i = 99; i > 0; i--) {
        int j = (int)(rng() % (uint64_t)(i + 1));
        double t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    reg_qstream *q = reg_qstream_create(std_obj, NSTD, 10 * SEC, 5, 0, 0);
    for (int i = 0; i < 100; i++)
        reg_qstream_observe(q, v[i], 5);
    reg_qstream_query(q, 5, out);
    assert_true(out[0] == 50);
    assert_true(out[1] == 90);
    assert_true(out[2] == 99);
    /* Queries are repeatable and later observations join in. */
    reg_qstream_query(q, 6, out);
    assert_true(out[0] == 50);
    reg_qstream_observe(q, 1000, 7);
    reg_qstream_query(q, 7, out);
    assert_true(out[2] == 100);
    reg_qstream_destroy(q);
}

/* The same data through the merge-and-compress path stays within the rank error. */
static void test_small_merged(void **state) {
    (void)state;
    double v[100];
    for (int i = 0; i < 100; i++)
        v[i] = i + 1;
    check_accuracy(v, 100, std_obj, NSTD, 7);
    check_accuracy(v, 100, std_obj, NSTD, 1);
    for (int i = 0; i < 100; i++)
        v[i] = 100 - i;
    check_accuracy(v, 100, std_obj, NSTD, 3);
}

/* Random distributions and the orders that break naive CKMS implementations: sorted either
 * way, alternating extremes, outward from the middle, heavy duplicates. */
enum { D_UNIFORM, D_EXP, D_NORMAL, D_ASC, D_DESC, D_DUPS, D_ALT, D_MID, D_SAWTOOTH, D_COUNT };

static void fill(double *v, size_t n, int dist) {
    for (size_t i = 0; i < n; i++) {
        switch (dist) {
        case D_UNIFORM:
            v[i] = rng_unit() * 1000;
            break;
        case D_EXP:
            v[i] = -log(rng_unit());
            break;
        case D_NORMAL:
            v[i] = sqrt(-2 * log(rng_unit())) * cos(2 * M_PI * rng_unit()) * 10 + 100;
            break;
        case D_ASC:
            v[i] = (double)i;
            break;
        case D_DESC:
            v[i] = (double)(n - i);
            break;
        case D_DUPS:
            v[i] = (double)(rng() % 7);
            break;
        case D_ALT:
            v[i] = i % 2 ? (double)i : -(double)i;
            break;
        case D_MID:
            v[i] = fabs((double)i - (double)n / 2);
            break;
        default:
            v[i] = (double)(i % 1000) + rng_unit();
            break;
        }
    }
}

/* While nothing was merged yet, answers are the exact order statistics of the buffer: this
 * pins down the buffer sort (NaN partition, duplicates, sorted runs) against qsort. */
static void test_exact_path_sort(void **state) {
    (void)state;
    enum { N = 3000 };
    reg_objective obj[] = {{0, 0.01},    {0.01, 0.001}, {0.25, 0.01}, {0.5, 0.05},
                           {0.75, 0.01}, {0.99, 0.001}, {1, 0.01}};
    const size_t nobj = sizeof(obj) / sizeof(obj[0]);
    static double v[N], sorted[N];
    double out[sizeof(obj) / sizeof(obj[0])];
    for (int d = 0; d <= D_COUNT; d++) {
        size_t n = 1 + (size_t)d * 331 % N;
        fill(v, n, d);
        if (d == D_COUNT) /* hostile mix */
            for (size_t i = 0; i < n; i += 3)
                v[i] = i % 2 ? NAN : (i % 4 ? INFINITY : -INFINITY);
        reg_qstream *q = reg_qstream_create(obj, nobj, 10 * SEC, 5, N + 1, 0);
        for (size_t i = 0; i < n; i++)
            reg_qstream_observe(q, v[i], 0);
        memcpy(sorted, v, n * sizeof(*v));
        qsort(sorted, n, sizeof(*sorted), cmp_total);
        reg_qstream_query(q, 0, out);
        for (size_t k = 0; k < nobj; k++) {
            size_t r = (size_t)ceil((double)n * obj[k].quantile);
            double want = sorted[r ? r - 1 : 0];
            assert_int_equal(cmp_total(&out[k], &want), 0);
        }
        reg_qstream_destroy(q);
    }
}

static void test_accuracy_random(void **state) {
    (void)state;
    const size_t n = 20000;
    double *v = malloc(n * sizeof(*v));
    assert_non_null(v);
    const unsigned caps[] = {0, 64, 1000};
    for (int d = 0; d < D_COUNT; d++) {
        for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
            fill(v, n, d);
            check_accuracy(v, n, std_obj, NSTD, caps[c]);
        }
    }
    free(v);
}

static void test_many_objectives(void **state) {
    (void)state;
    reg_objective obj[REG_MAX_QUANTILES];
    for (int i = 0; i < REG_MAX_QUANTILES; i++) {
        obj[i].quantile = (i + 0.5) / REG_MAX_QUANTILES;
        obj[i].error = (i % 3 == 0) ? 0.001 : 0.01;
    }
    const size_t n = 30000;
    double *v = malloc(n * sizeof(*v));
    assert_non_null(v);
    fill(v, n, D_NORMAL);
    check_accuracy(v, n, obj, REG_MAX_QUANTILES, 0);
    fill(v, n, D_ASC);
    check_accuracy(v, n, obj, REG_MAX_QUANTILES, 200);
    /* Duplicate objectives are answered independently and identically. */
    reg_objective dup[] = {{0.5, 0.01}, {0.5, 0.01}, {0.9, 0.01}, {0.5, 0.01}};
    fill(v, n, D_UNIFORM);
    check_accuracy(v, n, dup, 4, 0);
    free(v);
}

static void test_buf_cap_one(void **state) {
    (void)state;
    const size_t n = 5000;
    double *v = malloc(n * sizeof(*v));
    assert_non_null(v);
    fill(v, n, D_EXP);
    check_accuracy(v, n, std_obj, NSTD, 1);

    /* Rotation with buf_cap 1: every observation is merged at once. */
    double out[NSTD];
    reg_qstream *q = reg_qstream_create(std_obj, NSTD, 10 * SEC, 5, 1, 0);
    for (int i = 0; i < 100; i++)
        reg_qstream_observe(q, 1000 + i, 0);
    reg_qstream_query(q, 9 * SEC, out);
    assert_true(out[0] >= 1000);
    reg_qstream_query(q, 13 * SEC, out);
    for (size_t i = 0; i < NSTD; i++)
        assert_true(isnan(out[i]));
    free(v);
    reg_qstream_destroy(q);
}

/* Random values at random increasing times over many rotations. The head stream expires at
 * the first t0 + m*dur >= now and was reset nb*dur earlier, so it must hold exactly the
 * samples observed after that instant; every estimate is checked against them. */
static void test_window_accuracy(void **state) {
    (void)state;
    const size_t n = 60000;
    const uint64_t t0 = 777, dur = 2 * SEC;
    const unsigned nb = 5;
    double *v = malloc(n * sizeof(*v)), *win = malloc(n * sizeof(*win));
    uint64_t *at = malloc(n * sizeof(*at));
    assert_non_null(v);
    assert_non_null(win);
    assert_non_null(at);
    const unsigned caps[] = {1, 50, 0};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        fill(v, n, c == 1 ? D_DESC : D_EXP);
        uint64_t now = t0;
        for (size_t i = 0; i < n; i++) {
            now += rng() % (SEC / 1000); /* ~30 s in all */
            if (i % 9973 == 0)
                now = t0 + (now - t0 + dur - 1) / dur * dur; /* land on a boundary */
            at[i] = now;
        }
        double out[NSTD];
        reg_qstream *q = reg_qstream_create(std_obj, NSTD, nb * dur, nb, caps[c], t0);
        for (size_t i = 0; i < n; i++) {
            reg_qstream_observe(q, v[i], at[i]);
            if (i % 1999 != 1998 && i != n - 1)
                continue;
            uint64_t qt = at[i] + (i % 3 == 0 ? 0 : rng() % (3 * SEC));
            uint64_t m = (qt - t0 + dur - 1) / dur;
            m = m ? m : 1;
            uint64_t exp = t0 + m * dur;
            size_t w = 0;
            for (size_t k = 0; k <= i; k++)
                if (exp < nb * dur || at[k] > exp - nb * dur)
                    win[w++] = v[k];
            reg_qstream_query(q, qt, out);
            if (w == 0) {
                for (size_t k = 0; k < NSTD; k++)
                    assert_true(isnan(out[k]));
                continue;
            }
            qsort(win, w, sizeof(*win), cmp_total);
            for (size_t k = 0; k < NSTD; k++)
                assert_rank_ok(win, w, out[k], std_obj[k].quantile, std_obj[k].error);
            if (qt != at[i]) { /* the clock moved on: continue from there */
                for (size_t k = i + 1; k < n; k++)
                    at[k] += qt - at[i];
            }
        }
        reg_qstream_destroy(q);
    }
    free(at);
    free(win);
    free(v);
}

/* max_age 10s in 5 buckets of 2s: samples stay queryable for at least max_age - 2s and are
 * gone after max_age + 2s. */
static void test_rotation_drops_old(void **state) {
    (void)state;
    double out[NSTD];
    const uint64_t t0 = 1000 * SEC;
    reg_qstream *q = reg_qstream_create(std_obj, NSTD, 10 * SEC, 5, 0, t0);
    for (int i = 0; i < 100; i++)
        reg_qstream_observe(q, 1000 + i, t0);
    reg_qstream_query(q, t0 + 8 * SEC, out);
    assert_true(out[0] >= 1000 && out[0] < 1100);
    reg_qstream_query(q, t0 + 12 * SEC + 1, out);
    for (size_t i = 0; i < NSTD; i++)
        assert_true(isnan(out[i]));

    /* Old and new: after the old ones expire only the new ones are left. */
    reg_qstream_destroy(q);
    q = reg_qstream_create(std_obj, NSTD, 10 * SEC, 5, 0, t0);
    for (int i = 0; i < 100; i++)
        reg_qstream_observe(q, 1000 + i, t0 + (uint64_t)i);
    for (int i = 0; i < 100; i++)
        reg_qstream_observe(q, i, t0 + 6 * SEC + (uint64_t)i);
    reg_qstream_query(q, t0 + 7 * SEC, out); /* both generations present */
    assert_true(out[0] >= 90 && out[0] <= 1010);
    assert_true(out[2] >= 1000);
    reg_qstream_query(q, t0 + 13 * SEC, out); /* only the new ones */
    for (size_t i = 0; i < NSTD; i++)
        assert_true(out[i] >= 0 && out[i] < 100);
    reg_qstream_query(q, t0 + 19 * SEC, out); /* all gone */
    for (size_t i = 0; i < NSTD; i++)
        assert_true(isnan(out[i]));
    reg_qstream_destroy(q);
}

/* A steady stream whose value is the second it was observed in: every estimate must come
 * from the sliding window (max_age + one bucket at most). */
static void test_rotation_steady(void **state) {
    (void)state;
    reg_objective obj[] = {{0.01, 0.001}, {0.5, 0.05}, {0.99, 0.001}};
    double out[3];
    reg_qstream *q = reg_qstream_create(obj, 3, 10 * SEC, 5, 50, 0);
    for (uint64_t sec = 0; sec < 120; sec++) {
        for (int i = 0; i < 37; i++)
            reg_qstream_observe(q, (double)sec, sec * SEC + (uint64_t)i * (SEC / 37));
        reg_qstream_query(q, sec * SEC + SEC - 1, out);
        for (int k = 0; k < 3; k++) {
            assert_false(isnan(out[k]));
            assert_true(out[k] <= (double)sec);
            assert_true(out[k] + 12 >= (double)sec);
        }
        if (sec >= 20) /* the window is at least max_age - one bucket wide */
            assert_true(out[0] <= (double)sec - 7);
    }
    reg_qstream_destroy(q);
}

static void test_defaults(void **state) {
    (void)state;
    double out[NSTD];
    reg_qstream *q = reg_qstream_create(std_obj, NSTD, 0, 0, 0, 0);
    assert_non_null(q);
    for (int i = 0; i < 1200; i++) /* more than the default buffer of 500 */
        reg_qstream_observe(q, i, 0);
    reg_qstream_query(q, 7 * 60 * SEC, out);
    assert_false(isnan(out[0]));
    reg_qstream_query(q, 12 * 60 * SEC + 1, out);
    assert_true(isnan(out[0]));
    reg_qstream_destroy(q);
}

static void test_hostile_values(void **state) {
    (void)state;
    double out[NSTD];
    const unsigned caps[] = {0, 1, 3};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        reg_qstream *q = reg_qstream_create(std_obj, NSTD, 10 * SEC, 5, caps[c], 0);
        reg_qstream_observe(q, NAN, 0);
        reg_qstream_observe(q, -INFINITY, 0);
        reg_qstream_observe(q, INFINITY, 0);
        for (int i = 1; i < 100; i++)
            reg_qstream_observe(q, i, 0);
        reg_qstream_observe(q, -0.0, 0);
        reg_qstream_observe(q, DBL_MIN / 4, 0);
        reg_qstream_query(q, 1, out);
        assert_true(isfinite(out[0]));
        assert_true(out[0] > 40 && out[0] < 60);
        reg_qstream_destroy(q);

        /* Only NaNs: estimates are NaN but nothing breaks. */
        q = reg_qstream_create(std_obj, NSTD, 10 * SEC, 5, caps[c], 0);
        for (int i = 0; i < 1000; i++)
            reg_qstream_observe(q, NAN, 0);
        reg_qstream_query(q, 1, out);
        for (size_t i = 0; i < NSTD; i++)
            assert_true(isnan(out[i]));
        reg_qstream_destroy(q);

        /* Mixed at random, checked against the same total order (NaN highest). */
        const size_t n = 3000;
        double *v = malloc(n * sizeof(*v));
        assert_non_null(v);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng() % 10;
            v[i] = r == 0 ? NAN : r == 1 ? INFINITY : r == 2 ? -INFINITY : rng_unit();
        }
        check_accuracy(v, n, std_obj, NSTD, caps[c]);
        free(v);
    }
}

static void test_hostile_objectives(void **state) {
    (void)state;
    reg_objective obj[] = {{0, 0.01},  {1, 0.01},   {NAN, 0.1},      {0.5, NAN},
                           {-1, 0.01}, {2, 0.01},   {0.5, 0},        {0.5, -1},
                           {0.5, 0.5}, {0.3, 1e-9}, {0.5, INFINITY}, {0.7, 0.02}};
    const size_t nobj = sizeof(obj) / sizeof(obj[0]);
    double out[sizeof(obj) / sizeof(obj[0])];
    const size_t n = 4000;
    double *v = malloc(n * sizeof(*v));
    double *sorted = malloc(n * sizeof(*sorted));
    assert_non_null(v);
    assert_non_null(sorted);
    fill(v, n, D_UNIFORM);
    memcpy(sorted, v, n * sizeof(*v));
    qsort(sorted, n, sizeof(*sorted), cmp_total);
    const unsigned caps[] = {0, 1, 100};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        reg_qstream *q = reg_qstream_create(obj, nobj, 10 * SEC, 5, caps[c], 0);
        assert_non_null(q);
        for (size_t i = 0; i < n; i++)
            reg_qstream_observe(q, v[i], 0);
        reg_qstream_query(q, 0, out);
        assert_true(isnan(out[2]));
        assert_true(isnan(out[3]));
        assert_rank_ok(sorted, n, out[0], 0, 0.01);
        assert_rank_ok(sorted, n, out[1], 1, 0.01);
        assert_rank_ok(sorted, n, out[4], 0, 0.01); /* clamped to 0 */
        assert_rank_ok(sorted, n, out[5], 1, 0.01); /* clamped to 1 */
        assert_rank_ok(sorted, n, out[6], 0.5, 0);
        assert_rank_ok(sorted, n, out[7], 0.5, 0);
        assert_rank_ok(sorted, n, out[9], 0.3, 1e-9);
        assert_rank_ok(sorted, n, out[11], 0.7, 0.02);
        assert_false(isnan(out[10]));
        reg_qstream_destroy(q);
    }
    free(sorted);
    free(v);
}

static void test_hostile_clock(void **state) {
    (void)state;
    double out[NSTD];
    /* Time going backwards changes nothing. */
    reg_qstream *q = reg_qstream_create(std_obj, NSTD, 10 * SEC, 5, 0, 100 * SEC);
    for (int i = 0; i < 10; i++)
        reg_qstream_observe(q, i, 100 * SEC - (uint64_t)i * SEC);
    reg_qstream_query(q, 0, out);
    assert_true(out[0] == 4);
    /* A jump to the end of time expires everything and later calls do not loop or crash. */
    reg_qstream_query(q, UINT64_MAX, out);
    assert_true(isnan(out[0]));
    reg_qstream_observe(q, 7, UINT64_MAX);
    reg_qstream_query(q, UINT64_MAX, out);
    assert_true(out[0] == 7);
    reg_qstream_destroy(q);

    /* Created near the end of time; a window shorter than its bucket count. */
    q = reg_qstream_create(std_obj, NSTD, 3, 7, 0, UINT64_MAX - 1);
    reg_qstream_observe(q, 1, UINT64_MAX);
    reg_qstream_query(q, UINT64_MAX, out);
    assert_true(out[0] == 1);
    reg_qstream_destroy(q);

    q = reg_qstream_create(std_obj, NSTD, 3, 7, 0, 0);
    reg_qstream_observe(q, 1, 0);
    reg_qstream_query(q, 1, out);
    assert_true(out[0] == 1);
    reg_qstream_query(q, 100, out);
    assert_true(isnan(out[0]));
    reg_qstream_destroy(q);

    /* One age bucket: the window is simply reset every max_age. */
    q = reg_qstream_create(std_obj, NSTD, 10 * SEC, 1, 0, 0);
    reg_qstream_observe(q, 1, 0);
    reg_qstream_query(q, 10 * SEC, out);
    assert_true(out[0] == 1);
    reg_qstream_observe(q, 2, 10 * SEC + 1);
    reg_qstream_query(q, 10 * SEC + 2, out);
    assert_true(out[0] == 2);
    reg_qstream_destroy(q);
}

/* While the window is still only the sample buffer (answered exactly), a NaN objective still
 * yields NaN and its neighbours their exact ranks. */
static void test_buffered_window_with_nan_objective(void **state) {
    (void)state;
    const reg_objective obj[] = {{NAN, 0.01}, {0.5, 0.05}, {0.9, NAN}, {0.99, 0.001}};
    double out[4];
    reg_qstream *q = reg_qstream_create(obj, 4, 10 * SEC, 5, 100, 0);
    assert_non_null(q);
    for (int i = 10; i >= 1; i--) /* unsorted: the query sorts the buffer */
        reg_qstream_observe(q, i, 0);
    reg_qstream_query(q, 1, out);
    assert_true(isnan(out[0]));
    assert_true(out[1] == 5); /* rank ceil(10 * 0.5) = 5 */
    assert_true(isnan(out[2]));
    assert_true(out[3] == 10); /* rank ceil(9.9) = 10 */
    reg_qstream_destroy(q);
}

/* Created at the last instant: the first rotation would be past the end of time, so the
 * window never rotates and what was observed stays. */
static void test_created_at_end_of_time(void **state) {
    (void)state;
    double out[NSTD];
    reg_qstream *q = reg_qstream_create(std_obj, NSTD, 10 * SEC, 5, 0, UINT64_MAX);
    assert_non_null(q);
    reg_qstream_observe(q, 3, UINT64_MAX);
    reg_qstream_observe(q, 1, UINT64_MAX);
    reg_qstream_observe(q, 2, UINT64_MAX);
    reg_qstream_query(q, UINT64_MAX, out);
    assert_true(out[0] == 2);
    assert_true(out[2] == 3);
    reg_qstream_destroy(q);
}

int main(void) {
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_args),
        cmocka_unit_test(test_empty_is_nan),
        cmocka_unit_test(test_single_value),
        cmocka_unit_test(test_small_exact),
        cmocka_unit_test(test_small_merged),
        cmocka_unit_test(test_exact_path_sort),
        cmocka_unit_test(test_accuracy_random),
        cmocka_unit_test(test_many_objectives),
        cmocka_unit_test(test_buf_cap_one),
        cmocka_unit_test(test_rotation_drops_old),
        cmocka_unit_test(test_rotation_steady),
        cmocka_unit_test(test_window_accuracy),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_hostile_values),
        cmocka_unit_test(test_hostile_objectives),
        cmocka_unit_test(test_hostile_clock),
        cmocka_unit_test(test_buffered_window_with_nan_objective),
        cmocka_unit_test(test_created_at_end_of_time),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
