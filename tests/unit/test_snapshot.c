/* test_snapshot.c - unit tests of registry snapshots (registry/snapshot.c): a round trip of
 * every type (values, buckets, created times, summary quantiles equal after restore) and of
 * pushed groups (every field equal, failure-only groups, refused groups reported), merging
 * into declared families, conflicting families skipped and reported, series limits on
 * restore, abacus's own families left out, a failing sink, every kind of corruption refused
 * with nothing applied (truncation at every length, every byte flipped, foreign magic, future
 * version, malformed records under a valid CRC), and writes racing updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../support/labels.h"
#include "registry.h"

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    int fail_after; /* > 0: the sink fails on that call */
    int calls;
} membuf;

static int mem_sink(void *arg, const void *buf, size_t len) {
    membuf *m = arg;
    if (m->fail_after && ++m->calls >= m->fail_after)
        return -1;
    if (m->cap - m->len < len) {
        m->cap = (m->len + len) * 2;
        m->p = realloc(m->p, m->cap);
        assert_non_null(m->p);
    }
    memcpy(m->p + m->len, buf, len);
    m->len += len;
    return 0;
}

static reg_registry *new_reg(size_t max_series) {
    reg_options o = {.max_series = max_series};
    reg_registry *r = reg_create(&o);
    assert_non_null(r);
    return r;
}

static membuf snapshot_of(reg_registry *r) {
    membuf m = {0};
    reg_thread *t = reg_thread_attach(r);
    char err[128];
    reg_snapshot_stats st;
    assert_int_equal(reg_snapshot_write(t, mem_sink, &m, &st, err, sizeof err), 0);
    assert_int_equal(st.bytes, m.len);
    reg_thread_detach(t);
    return m;
}

static int load(reg_registry *r, const membuf *m, reg_snapshot_report *rep, char *err,
                size_t errlen) {
    reg_thread *t = reg_thread_attach(r);
    int rc = reg_snapshot_load(t, m->p, m->len, rep, err, errlen);
    reg_thread_detach(t);
    return rc;
}

/* Recompute the trailer's CRC after editing a snapshot. */
static void recrc(unsigned char *p, size_t len) {
    uint32_t c = (uint32_t)crc32(0, p, (uInt)(len - 4));
    for (int i = 0; i < 4; i++)
        p[len - 4 + i] = (unsigned char)(c >> (8 * i));
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int same_double(double a, double b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static const char *const l_queue[] = {"queue", "outcome"};
static const char *const l_path[] = {"path"};
static const char *const cn[] = {"team"};
static const char *const cv[] = {"payments"};
static const double bounds[] = {0.1, 0.5, 1, 5};
static const reg_objective objs[] = {{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}};

static const reg_family_def d_counter = {.name = "jobs_total",
                                         .help = "Jobs.",
                                         .type = REG_COUNTER,
                                         .nlabels = 2,
                                         .labels = l_queue,
                                         .nconst = 1,
                                         .const_names = cn,
                                         .const_values = cv,
                                         .ttl_ns = 600000000000ull,
                                         .max_series = 100};
static const reg_family_def d_gauge = {
    .name = "temp_celsius", .unit = "celsius", .type = REG_GAUGE};
static const reg_family_def d_hist = {.name = "req_seconds",
                                      .type = REG_HISTOGRAM,
                                      .nlabels = 1,
                                      .labels = l_path,
                                      .nbuckets = 4,
                                      .buckets = bounds};
static const reg_family_def d_sum = {.name = "lat_seconds",
                                     .help = "Latency.",
                                     .type = REG_SUMMARY,
                                     .nlabels = 1,
                                     .labels = l_path,
                                     .nobjectives = 3,
                                     .objectives = objs,
                                     .max_age_ns = 60000000000ull,
                                     .age_buckets = 3,
                                     .buf_cap = 50};
static const reg_family_def d_untyped = {.name = "misc", .type = REG_UNTYPED};
static const reg_family_def d_own = {
    .name = "abacus_self_total", .type = REG_COUNTER, .flags = REG_FAMILY_OWN};

static reg_family *add(reg_thread *t, const reg_family_def *d) {
    reg_family *f = NULL;
    assert_int_equal(reg_family_add(t, d, &f), REG_OK);
    return f;
}

/* ---- pushed groups ------------------------------------------------------------------------ */

#define KEY_BATCH "job=\"batch\""
#define KEY_ODD "a=\"x\\\"y\\\\z\\nw\",job=\"odd\""
#define KEY_FAILED "instance=\"h1\",job=\"failonly\""
#define LAB_BATCH "instance=\"\"," KEY_BATCH

static const char *const kn_job[] = {"job"};
static const char *const kn_a_job[] = {"a", "job"};
static const char *const kn_inst_job[] = {"instance", "job"};

static const double v_one[] = {42.5}, v_nan[] = {NAN}, v_neg[] = {-1.0 / 3.0};
static const double v_hist[] = {12.75, 7, 0.5, 2, 1, 5, INFINITY, 7};
static const double v_sum[] = {3.25, 9, 0.5, 0.3, 0.99, NAN};
static const reg_push_series s_batch_one[] = {{LAB_BATCH, sizeof LAB_BATCH - 1, 1, v_one}};
static const reg_push_series s_batch_nan[] = {{LAB_BATCH, sizeof LAB_BATCH - 1, 1, v_nan}};
static const reg_push_series s_batch_hist[] = {{LAB_BATCH, sizeof LAB_BATCH - 1, 8, v_hist}};
static const reg_push_series s_batch_sum[] = {{LAB_BATCH, sizeof LAB_BATCH - 1, 6, v_sum}};
#define LAB_ODD1 KEY_ODD ",instance=\"\",kind=\"a\""
#define LAB_ODD2 KEY_ODD ",instance=\"\",kind=\"\xc3\xa9\""
static const reg_push_series s_odd[] = {{LAB_ODD1, sizeof LAB_ODD1 - 1, 1, v_neg},
                                        {LAB_ODD2, sizeof LAB_ODD2 - 1, 1, v_one}};

/* Every type, help present and absent. */
static const reg_push_family f_batch[] = {
    {.name = "batch_last_success",
     .help = "Last success.",
     .type = REG_GAUGE,
     .nseries = 1,
     .series = s_batch_one},
    {.name = "batch_records_total", .type = REG_COUNTER, .nseries = 1, .series = s_batch_one},
    {.name = "batch_misc", .help = "", .type = REG_UNTYPED, .nseries = 1, .series = s_batch_nan},
    {.name = "batch_duration_seconds",
     .help = "Duration.",
     .type = REG_HISTOGRAM,
     .nseries = 1,
     .series = s_batch_hist},
    {.name = "batch_latency_seconds", .type = REG_SUMMARY, .nseries = 1, .series = s_batch_sum},
};
static const reg_push_family f_odd[] = {
    {.name = "batch_last_success",
     .help = "Last success.",
     .type = REG_GAUGE,
     .nseries = 2,
     .series = s_odd},
    {.name = "odd_empty", .help = "No series.", .type = REG_GAUGE},
};

static int push(reg_registry *r, const char *key, const char *const *names, size_t nnames,
                reg_push_mode mode, const reg_push_family *f, size_t nf, double time) {
    reg_push p = {.key = key,
                  .key_len = strlen(key),
                  .nkey_names = nnames,
                  .key_names = names,
                  .mode = mode,
                  .nfamilies = nf,
                  .families = f,
                  .time = time,
                  .ttl_ns = 0};
    reg_thread *t = reg_thread_attach(r);
    reg_begin(t);
    char err[256] = "";
    int rc = reg_group_push(t, &p, err, sizeof err);
    reg_end(t);
    reg_thread_detach(t);
    return rc;
}

/* Three groups: every family type (one family re-pushed later by a POST, so family times
 * differ); odd key escapes with a failure after a success; a group that only ever failed. */
static void push_groups(reg_registry *r) {
    assert_int_equal(
        push(r, KEY_BATCH, kn_job, 1, REG_PUSH_REPLACE_ALL, f_batch, N(f_batch), 1700000000.125),
        REG_OK);
    assert_int_equal(
        push(r, KEY_BATCH, kn_job, 1, REG_PUSH_REPLACE_FAMILIES, f_batch, 1, 1700000001.5), REG_OK);
    assert_int_equal(
        push(r, KEY_ODD, kn_a_job, 2, REG_PUSH_REPLACE_ALL, f_odd, N(f_odd), 1700000002.0 / 3.0),
        REG_OK);
    assert_int_equal(push(r, KEY_ODD, kn_a_job, 2, REG_PUSH_FAILED, NULL, 0, 1700000003.75),
                     REG_OK);
    assert_int_equal(push(r, KEY_FAILED, kn_inst_job, 2, REG_PUSH_FAILED, NULL, 0, 1700000004.5),
                     REG_OK);
}

static reg_group **groups_of(reg_registry *r, long *n) {
    reg_thread *t = reg_thread_attach(r);
    reg_group **g = NULL;
    size_t cap = 0;
    reg_begin(t);
    *n = reg_group_snapshot(t, &g, &cap);
    reg_end(t);
    reg_thread_detach(t);
    assert_true(*n >= 0);
    return g;
}

/* The groups of b are those of a, field by field, bit for bit: keys, push and failure times,
 * families (name, help, type), series (label text, values). A family's time is restored as
 * its group's push time (snapshot.c). */
static void expect_groups_equal(reg_registry *ra, reg_registry *rb) {
    long na, nb;
    reg_group **ga = groups_of(ra, &na), **gb = groups_of(rb, &nb);
    assert_int_equal(na, nb);
    for (long i = 0; i < na; i++) {
        size_t ka, kb;
        const char *a = reg_group_key(ga[i], &ka), *b = reg_group_key(gb[i], &kb);
        assert_int_equal(ka, kb);
        assert_memory_equal(a, b, ka);
        assert_true(same_double(reg_group_push_time(ga[i]), reg_group_push_time(gb[i])));
        assert_true(same_double(reg_group_failure_time(ga[i]), reg_group_failure_time(gb[i])));
        size_t nf = reg_group_family_count(ga[i]);
        assert_int_equal(nf, reg_group_family_count(gb[i]));
        const reg_push_family *fa = reg_group_families(ga[i]), *fb = reg_group_families(gb[i]);
        for (size_t k = 0; k < nf; k++) {
            assert_string_equal(fa[k].name, fb[k].name);
            assert_int_equal(fa[k].help == NULL, fb[k].help == NULL);
            if (fa[k].help)
                assert_string_equal(fa[k].help, fb[k].help);
            assert_int_equal(fa[k].type, fb[k].type);
            assert_true(same_double(fb[k].time, reg_group_push_time(ga[i])));
            assert_int_equal(fa[k].nseries, fb[k].nseries);
            for (size_t j = 0; j < fa[k].nseries; j++) {
                const reg_push_series *sa = &fa[k].series[j], *sb = &fb[k].series[j];
                assert_int_equal(sa->labels_len, sb->labels_len);
                assert_memory_equal(sa->labels, sb->labels, sa->labels_len);
                assert_int_equal(sa->nvals, sb->nvals);
                assert_memory_equal(sa->vals, sb->vals, sa->nvals * sizeof sa->vals[0]);
            }
        }
    }
    reg_group_release_all(ra, ga, (size_t)na);
    reg_group_release_all(rb, gb, (size_t)nb);
    free(ga);
    free(gb);
}

/* A registry with every type, odd label values and values that need exact bits, and the
 * pushed groups above. */
static reg_registry *populated(void) {
    reg_registry *r = new_reg(0);
    reg_thread *t = reg_thread_attach(r);
    reg_begin(t);
    reg_family *c = add(t, &d_counter), *g = add(t, &d_gauge), *h = add(t, &d_hist);
    reg_family *s = add(t, &d_sum), *u = add(t, &d_untyped), *o = add(t, &d_own);
    const char *v1[] = {"emails", "ok"}, *v2[] = {"a\"b\\c\nd", "\xc3\xa9t\xc3\xa9"};
    const char *v3[] = {"", "x"};
    assert_int_equal(reg_counter_add(t, c, v1, 0.1), REG_OK);
    assert_int_equal(reg_counter_add(t, c, v1, 0.2), REG_OK); /* 0.30000000000000004 */
    assert_int_equal(reg_counter_add(t, c, v2, 1e300), REG_OK);
    assert_int_equal(reg_touch(t, c, v3), REG_OK);
    const char *none[] = {NULL};
    assert_int_equal(reg_gauge_set(t, g, none, -1.0 / 3.0), REG_OK);
    assert_int_equal(reg_gauge_set(t, u, none, NAN), REG_OK);
    const char *p1[] = {"/a"}, *p2[] = {"/b"};
    for (int i = 0; i < 100; i++)
        assert_int_equal(reg_observe(t, h, p1, i * 0.07), REG_OK);
    assert_int_equal(reg_observe_n(t, h, p2, 7, 3), REG_OK);
    /* Summaries: one only buffered, one with merged streams (buf_cap 50) and a buffer. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(reg_observe(t, s, p1, (i * 37) % 11), REG_OK);
    for (int i = 0; i < 1234; i++)
        assert_int_equal(reg_observe(t, s, p2, sin(i) * 100), REG_OK);
    assert_int_equal(reg_counter_add(t, o, none, 5), REG_OK);
    reg_end(t);
    reg_thread_detach(t);
    push_groups(r);
    return r;
}

/* Every series of family `name` in a equals the one with the same labels in b: created time,
 * value bits, buckets and sum, summary count, sum and quantiles. */
static void expect_family_equal(reg_registry *ra, reg_registry *rb, const char *name) {
    reg_thread *ta = reg_thread_attach(ra), *tb = reg_thread_attach(rb);
    reg_begin(ta);
    reg_begin(tb);
    reg_family *fa = reg_family_find(ta, name), *fb = reg_family_find(tb, name);
    assert_non_null(fa);
    assert_non_null(fb);
    const reg_family_def *d = reg_family_definition(fa);
    assert_true(reg_family_matches(fb, d));
    reg_series **va = NULL, **vb = NULL;
    size_t ca = 0, cb = 0;
    long na = reg_family_collect(ta, fa, &va, &ca), nb = reg_family_collect(tb, fb, &vb, &cb);
    assert_int_equal(na, nb);
    for (long i = 0; i < na; i++) {
        size_t la, lb;
        char bufa[REG_MAX_KEY + 1], bufb[REG_MAX_KEY + 1];
        const char *ka = test_labels(fa, va[i], bufa, &la);
        reg_series *sb = NULL;
        for (long j = 0; j < nb && !sb; j++) {
            const char *kb = test_labels(fb, vb[j], bufb, &lb);
            if (la == lb && memcmp(ka, kb, la) == 0)
                sb = vb[j];
        }
        if (!sb)
            fail_msg("%s{%.*s} not restored", name, (int)la, ka);
        assert_true(same_double(reg_series_created(va[i]), reg_series_created(sb)));
        if (d->type == REG_HISTOGRAM) {
            uint64_t a[REG_MAX_BUCKETS + 1], b[REG_MAX_BUCKETS + 1];
            double sa, sb2;
            reg_series_histogram(va[i], fa, a, &sa);
            reg_series_histogram(sb, fb, b, &sb2);
            assert_memory_equal(a, b, (d->nbuckets + 1) * sizeof a[0]);
            assert_true(same_double(sa, sb2));
        } else if (d->type == REG_SUMMARY) {
            double qa[REG_MAX_QUANTILES], qb[REG_MAX_QUANTILES], sa, sb2;
            uint64_t ca2, cb2;
            reg_series_summary(va[i], fa, qa, &ca2, &sa);
            reg_series_summary(sb, fb, qb, &cb2, &sb2);
            assert_int_equal(ca2, cb2);
            assert_true(same_double(sa, sb2));
            for (size_t k = 0; k < d->nobjectives; k++)
                if (!same_double(qa[k], qb[k]))
                    fail_msg("%s{%.*s} quantile %g: %.17g before, %.17g after", name, (int)la, ka,
                             d->objectives[k].quantile, qa[k], qb[k]);
        } else {
            assert_true(same_double(reg_series_value(va[i]), reg_series_value(sb)));
        }
    }
    free(va);
    free(vb);
    reg_end(tb);
    reg_end(ta);
    reg_thread_detach(ta);
    reg_thread_detach(tb);
}

static const char *const all_names[] = {"jobs_total", "temp_celsius", "req_seconds", "lat_seconds",
                                        "misc"};

/* ---- tests -------------------------------------------------------------------------------- */

/* Every type comes back exactly; abacus's own family is not saved. */
static void test_round_trip(void **state) {
    (void)state;
    reg_registry *a = populated();
    membuf m = snapshot_of(a);
    reg_registry *b = new_reg(0);
    reg_snapshot_report rep;
    char err[256] = "";
    assert_int_equal(load(b, &m, &rep, err, sizeof err), REG_OK);
    assert_int_equal(rep.families, 5);
    assert_int_equal(rep.series, 3 + 1 + 2 + 2 + 1);
    assert_int_equal(rep.conflicts, 0);
    assert_int_equal(rep.series_refused, 0);
    assert_int_equal(rep.groups, 3);
    assert_int_equal(rep.groups_refused, 0);
    assert_true(rep.written_ns > 0);
    for (size_t i = 0; i < N(all_names); i++)
        expect_family_equal(a, b, all_names[i]);
    expect_groups_equal(a, b);
    reg_thread *t = reg_thread_attach(b);
    reg_begin(t);
    assert_null(reg_family_find(t, "abacus_self_total"));
    reg_end(t);
    reg_thread_detach(t);
    /* A second generation: the restored registry's snapshot restores the same again. */
    membuf m2 = snapshot_of(b);
    reg_registry *c = new_reg(0);
    assert_int_equal(load(c, &m2, &rep, err, sizeof err), REG_OK);
    for (size_t i = 0; i < N(all_names); i++)
        expect_family_equal(b, c, all_names[i]);
    expect_groups_equal(b, c);
    assert_int_equal(reg_group_total(c), 3);
    reg_destroy(c);
    free(m2.p);
    free(m.p);
    reg_destroy(a);
    reg_destroy(b);
}

/* A declared family (equal definition) gets the saved series; an existing label-less series
 * is overwritten with the saved value. */
static void test_merge_into_declared(void **state) {
    (void)state;
    reg_registry *a = populated();
    membuf m = snapshot_of(a);
    reg_registry *b = new_reg(0);
    reg_thread *t = reg_thread_attach(b);
    reg_begin(t);
    reg_family *c = add(t, &d_counter), *g = add(t, &d_gauge);
    const char *none[] = {NULL};
    assert_int_equal(reg_gauge_set(t, g, none, 42), REG_OK);
    reg_end(t);
    reg_snapshot_report rep;
    char err[256];
    assert_int_equal(load(b, &m, &rep, err, sizeof err), REG_OK);
    assert_int_equal(rep.families, 5);
    reg_begin(t);
    assert_ptr_equal(reg_family_find(t, "jobs_total"), c);
    reg_end(t);
    for (size_t i = 0; i < N(all_names); i++)
        expect_family_equal(a, b, all_names[i]);
    reg_thread_detach(t);
    free(m.p);
    reg_destroy(a);
    reg_destroy(b);
}

/* A live family whose definition differs is skipped (its series untouched) and reported. */
static void test_conflict_skipped(void **state) {
    (void)state;
    reg_registry *a = populated();
    membuf m = snapshot_of(a);
    reg_registry *b = new_reg(0);
    reg_thread *t = reg_thread_attach(b);
    reg_family_def other = d_counter;
    other.help = "Another meaning.";
    reg_family_def g2 = d_gauge;
    g2.type = REG_COUNTER;
    reg_begin(t);
    add(t, &other);
    add(t, &g2);
    reg_end(t);
    reg_snapshot_report rep;
    char err[256];
    assert_int_equal(load(b, &m, &rep, err, sizeof err), REG_OK);
    assert_int_equal(rep.conflicts, 2);
    assert_int_equal(rep.families, 3);
    assert_non_null(strstr(rep.conflict_names, "jobs_total"));
    assert_non_null(strstr(rep.conflict_names, "temp_celsius"));
    reg_begin(t);
    assert_int_equal(reg_family_series_count(reg_family_find(t, "jobs_total")), 0);
    reg_end(t);
    expect_family_equal(a, b, "req_seconds");
    expect_family_equal(a, b, "lat_seconds");
    reg_thread_detach(t);
    free(m.p);
    reg_destroy(a);
    reg_destroy(b);
}

/* Series limits apply on restore: refusals are counted, the rest restored. */
static void test_limits_apply(void **state) {
    (void)state;
    reg_registry *a = populated();
    membuf m = snapshot_of(a);
    reg_registry *b = new_reg(4);
    reg_snapshot_report rep;
    char err[256];
    assert_int_equal(load(b, &m, &rep, err, sizeof err), REG_OK);
    assert_int_equal(rep.series, 4);
    assert_int_equal(rep.series_refused, 5);
    /* Groups come after the families and each needs room for its series and its two
     * push-time gauges: with the limit full, all three are refused as a whole. */
    assert_int_equal(rep.groups, 0);
    assert_int_equal(rep.groups_refused, 3);
    assert_non_null(strstr(rep.refused_groups, "{" KEY_BATCH "}"));
    assert_int_equal(reg_series_total(b), 4);
    assert_int_equal(reg_group_total(b), 0);
    free(m.p);
    reg_destroy(a);
    reg_destroy(b);
}

/* A sink that fails makes the write fail with "write failed". */
static void test_sink_failure(void **state) {
    (void)state;
    reg_registry *a = populated();
    reg_thread *t = reg_thread_attach(a);
    membuf m = {.fail_after = 1};
    char err[128] = "";
    assert_int_equal(reg_snapshot_write(t, mem_sink, &m, NULL, err, sizeof err), -1);
    assert_string_equal(err, "write failed");
    reg_thread_detach(t);
    free(m.p);
    reg_destroy(a);
}

/* A refused load: REG_EINVAL, a reason mentioning `want`, and the registry untouched. */
static void expect_refused(const unsigned char *p, size_t len, const char *want) {
    reg_registry *b = new_reg(0);
    reg_thread *t = reg_thread_attach(b);
    reg_snapshot_report rep;
    char err[256] = "";
    int rc = reg_snapshot_load(t, p, len, &rep, err, sizeof err);
    if (rc != REG_EINVAL)
        fail_msg("a bad snapshot of %zu bytes was accepted (rc %d)", len, rc);
    assert_true(err[0] != '\0');
    if (want && !strstr(err, want))
        fail_msg("reason \"%s\" does not mention \"%s\"", err, want);
    assert_int_equal(reg_family_total(b), 0);
    assert_int_equal(reg_series_total(b), 0);
    assert_int_equal(reg_group_total(b), 0);
    reg_thread_detach(t);
    reg_destroy(b);
}

/* A small snapshot (one family of each kind that reads fast) cut at every length. */
static void test_truncated_everywhere(void **state) {
    (void)state;
    reg_registry *a = new_reg(0);
    reg_thread *t = reg_thread_attach(a);
    reg_begin(t);
    reg_family *c = add(t, &d_counter), *h = add(t, &d_hist), *s = add(t, &d_sum);
    const char *v[] = {"q", "ok"}, *p[] = {"/x"};
    assert_int_equal(reg_counter_add(t, c, v, 3), REG_OK);
    assert_int_equal(reg_observe(t, h, p, 0.3), REG_OK);
    assert_int_equal(reg_observe(t, s, p, 0.3), REG_OK);
    reg_end(t);
    reg_thread_detach(t);
    assert_int_equal(push(a, KEY_BATCH, kn_job, 1, REG_PUSH_REPLACE_ALL, f_batch + 3, 1, 1.5),
                     REG_OK);
    assert_int_equal(push(a, KEY_FAILED, kn_inst_job, 2, REG_PUSH_FAILED, NULL, 0, 2.5), REG_OK);
    membuf m = snapshot_of(a);
    for (size_t len = 0; len < m.len; len++)
        expect_refused(m.p, len, NULL);
    /* and with bytes appended */
    unsigned char *longer = malloc(m.len + 1);
    memcpy(longer, m.p, m.len);
    longer[m.len] = 0;
    expect_refused(longer, m.len + 1, NULL);
    free(longer);
    free(m.p);
    reg_destroy(a);
}

/* Any byte flipped: the CRC (or the magic, version, trailer) catches it. */
static void test_flipped_bytes(void **state) {
    (void)state;
    reg_registry *a = populated();
    membuf m = snapshot_of(a);
    for (size_t i = 0; i < m.len; i += (i < 64 || i + 64 > m.len) ? 1 : 7) {
        m.p[i] ^= 0x20;
        expect_refused(m.p, m.len, NULL);
        m.p[i] ^= 0x20;
    }
    free(m.p);
    reg_destroy(a);
}

static void test_foreign_and_future(void **state) {
    (void)state;
    const char *foreign = "# HELP x y\n# TYPE x counter\nx 1\n";
    expect_refused((const unsigned char *)foreign, strlen(foreign), "not an abacus snapshot");
    expect_refused((const unsigned char *)"", 0, "truncated");
    reg_registry *a = populated();
    membuf m = snapshot_of(a);
    m.p[16] = 2; /* version 2, with a valid CRC */
    recrc(m.p, m.len);
    expect_refused(m.p, m.len, "version 2");
    m.p[16] = 1;
    m.p[20] = 1; /* header flags */
    recrc(m.p, m.len);
    expect_refused(m.p, m.len, "flags");
    m.p[20] = 0;
    recrc(m.p, m.len);
    expect_refused(m.p, m.len - 4, "trailer");
    free(m.p);
    reg_destroy(a);
}

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Malformed records under a valid CRC: nothing is applied, even where earlier records are
 * fine (the whole file is checked before any record is applied). */
static void test_malformed_records(void **state) {
    (void)state;
    reg_registry *a = populated();
    membuf m = snapshot_of(a);
    size_t hdr = 32, trl = 20;
    /* find the records: type and length of each */
    size_t pos = hdr, last_series = 0, last_group = 0, nrec = 0;
    while (pos < m.len - trl) {
        if (m.p[pos] == 2)
            last_series = pos;
        if (m.p[pos] == 3)
            last_group = pos;
        pos += 5 + rd32(m.p + pos + 1);
        nrec++;
    }
    assert_int_equal(pos, m.len - trl);
    assert_true(last_series > hdr);
    assert_true(last_group > last_series);
    unsigned char *c = malloc(m.len);
    /* the last series' label count off by one */
    memcpy(c, m.p, m.len);
    c[last_series + 5] ^= 1;
    recrc(c, m.len);
    expect_refused(c, m.len, "malformed series");
    /* an unknown record type; a series read as a group */
    memcpy(c, m.p, m.len);
    c[last_series] = 9;
    recrc(c, m.len);
    expect_refused(c, m.len, "unknown record type");
    c[last_series] = 3;
    recrc(c, m.len);
    expect_refused(c, m.len, "malformed pushed group");
    /* the record count in the trailer */
    memcpy(c, m.p, m.len);
    c[m.len - 12] ^= 1;
    recrc(c, m.len);
    expect_refused(c, m.len, "records");
    /* a series first: the first family's type byte made a series */
    memcpy(c, m.p, m.len);
    c[hdr] = 2;
    recrc(c, m.len);
    expect_refused(c, m.len, "before any family");
    /* a record length pointing past the trailer */
    memcpy(c, m.p, m.len);
    c[last_series + 4] = 0x7f;
    recrc(c, m.len);
    expect_refused(c, m.len, "past the trailer");
    /* a family definition the registry refuses: the first name's first byte made a digit */
    memcpy(c, m.p, m.len);
    c[hdr + 5 + 4] = '1';
    recrc(c, m.len);
    expect_refused(c, m.len, "malformed family");
    /* The last group (earlier ones are fine and would apply): its key's first label name made
     * invalid; a series record after it; its family count one more; its first family's help
     * flag 2; its first family's name made a reserved one. */
    size_t g = last_group + 5, klen = rd32(m.p + g), fam = g + 4 + klen + 8 + 8;
    assert_true(rd32(m.p + fam) > 0);
    size_t name = fam + 4, nlen = rd32(m.p + name);
    memcpy(c, m.p, m.len);
    c[g + 4] = '1';
    recrc(c, m.len);
    expect_refused(c, m.len, "malformed pushed group");
    memcpy(c, m.p, m.len);
    c[last_group] = 2;
    recrc(c, m.len);
    expect_refused(c, m.len, "after the pushed groups");
    memcpy(c, m.p, m.len);
    c[fam] += 1;
    recrc(c, m.len);
    expect_refused(c, m.len, "malformed pushed group");
    memcpy(c, m.p, m.len);
    c[name + 4 + nlen] = 2;
    recrc(c, m.len);
    expect_refused(c, m.len, "malformed pushed group");
    memcpy(c, m.p, m.len);
    c[name + 4] = 'z'; /* "zatch_..." sorts after the next "batch_...": out of order */
    recrc(c, m.len);
    expect_refused(c, m.len, "malformed pushed group");
    free(c);
    free(m.p);
    reg_destroy(a);
}

/* A group the registry refuses on load (its family's name is a registry family of another
 * type) is skipped and reported; the other groups are restored. */
static void test_group_refused(void **state) {
    (void)state;
    reg_registry *a = populated();
    membuf m = snapshot_of(a);
    reg_registry *b = new_reg(0);
    reg_thread *t = reg_thread_attach(b);
    reg_family_def other = {.name = "batch_records_total", .type = REG_GAUGE};
    reg_begin(t);
    add(t, &other);
    reg_end(t);
    reg_thread_detach(t);
    reg_snapshot_report rep;
    char err[256];
    assert_int_equal(load(b, &m, &rep, err, sizeof err), REG_OK);
    assert_int_equal(rep.groups, 2);
    assert_int_equal(rep.groups_refused, 1);
    assert_string_equal(rep.refused_groups, "{" KEY_BATCH "}");
    assert_int_equal(reg_group_total(b), 2);
    free(m.p);
    reg_destroy(a);
    reg_destroy(b);
}

/* Writes racing updates and pushes (TSan build: no race reported); each snapshot loads. */
typedef struct {
    reg_registry *r;
    _Atomic int stop;
} race_arg;

static void *updater(void *arg) {
    race_arg *ra = arg;
    reg_thread *t = reg_thread_attach(ra->r);
    char buf[16];
    for (unsigned i = 0; !ra->stop; i++) {
        reg_begin(t);
        reg_family *c = reg_family_find(t, "jobs_total"), *h = reg_family_find(t, "req_seconds");
        reg_family *s = reg_family_find(t, "lat_seconds");
        snprintf(buf, sizeof buf, "q%u", i % 3000);
        const char *v[] = {buf, "ok"}, *p[] = {buf};
        reg_counter_add(t, c, v, 1);
        reg_observe(t, h, p, i % 7);
        reg_observe(t, s, p, i % 13);
        if (i % 64 == 0) { /* pushes replace group states while snapshots hold them */
            char key[32], lab[48];
            snprintf(key, sizeof key, "job=\"r%u\"", i / 64 % 20);
            snprintf(lab, sizeof lab, "instance=\"\",%s", key);
            double v = i;
            reg_push_series ps = {lab, (uint32_t)strlen(lab), 1, &v};
            reg_push_family pf = {
                .name = "race_last", .type = REG_GAUGE, .nseries = 1, .series = &ps};
            reg_push pu = {.key = key,
                           .key_len = strlen(key),
                           .nkey_names = 1,
                           .key_names = kn_job,
                           .mode = REG_PUSH_REPLACE_ALL,
                           .nfamilies = 1,
                           .families = &pf,
                           .time = i};
            reg_group_push(t, &pu, NULL, 0);
        }
        reg_end(t);
        if (i % 1000 == 0)
            reg_reap(ra->r);
    }
    reg_thread_detach(t);
    return NULL;
}

static void test_write_while_updating(void **state) {
    (void)state;
    reg_family_def dc = d_counter;
    dc.max_series = 0;
    dc.ttl_ns = 1; /* the reaper removes series while snapshots walk */
    race_arg ra = {new_reg(0), 0};
    reg_thread *t = reg_thread_attach(ra.r);
    reg_begin(t);
    add(t, &dc);
    add(t, &d_hist);
    add(t, &d_sum);
    reg_end(t);
    reg_thread_detach(t);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, updater, &ra), 0);
    for (int i = 0; i < 20; i++) {
        membuf m = snapshot_of(ra.r);
        reg_registry *b = new_reg(0);
        reg_snapshot_report rep;
        char err[256];
        if (load(b, &m, &rep, err, sizeof err) != REG_OK)
            fail_msg("snapshot %d refused: %s", i, err);
        assert_int_equal(rep.families, 3);
        assert_int_equal(rep.groups_refused, 0);
        reg_destroy(b);
        free(m.p);
    }
    ra.stop = 1;
    pthread_join(th, NULL);
    reg_destroy(ra.r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),           cmocka_unit_test(test_merge_into_declared),
        cmocka_unit_test(test_conflict_skipped),     cmocka_unit_test(test_limits_apply),
        cmocka_unit_test(test_sink_failure),         cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_flipped_bytes),        cmocka_unit_test(test_foreign_and_future),
        cmocka_unit_test(test_malformed_records),    cmocka_unit_test(test_group_refused),
        cmocka_unit_test(test_write_while_updating),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
