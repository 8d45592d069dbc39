/* test_statsd_parse.c - unit tests of the StatsD line parser and splitters
 * (exporter/statsd/parse.c): every type and tag style, multi-sample and extended-aggregation
 * lines, sample rates, gauge deltas, Go number syntax, every drop reason, hostile input
 * (binary bytes, NUL, invalid UTF-8, 64 KiB lines, 1000 tags, random bytes) and the
 * datagram / stream splitters on partial and over-long lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statsd/parse.h"

#define MAXLINE 70000
#define MAXEV (MAXLINE / 2 + 1)

static exp_statsd_event evs[MAXEV];
static exp_statsd_label lbls[EXP_STATSD_MAX_TAGS_DEFAULT];
static char scratch[MAXLINE + EXP_STATSD_MAX_TAGS_DEFAULT + 1];
static exp_statsd_out out = {evs,     MAXEV,         lbls, EXP_STATSD_MAX_TAGS_DEFAULT,
                             scratch, sizeof scratch};
static exp_statsd_stats st;
static size_t nev;
static char big[MAXLINE + 16];

static size_t parse_fo(const exp_statsd_flags *f, const exp_statsd_out *o, const char *s,
                       size_t n) {
    memset(&st, 0, sizeof st);
    nev = exp_statsd_parse_line(f, s, n, o, &st);
    return nev;
}

static size_t parse_f(const exp_statsd_flags *f, const char *s) {
    return parse_fo(f, &out, s, strlen(s));
}

static size_t parse(const char *s) {
    return parse_f(NULL, s);
}

static uint64_t err_total(void) {
    uint64_t t = 0;
    for (int i = 0; i < EXP_STATSD_ERR_COUNT; i++)
        t += st.errors[i];
    return t;
}

/* Exactly `count` errors of reason r and no other. */
static void only_error(exp_statsd_reason r, uint64_t count) {
    if (st.errors[r] != count || err_total() != count)
        fail_msg("expected %llu x %s, got %llu of it and %llu in total", (unsigned long long)count,
                 exp_statsd_reason_name(r), (unsigned long long)st.errors[r],
                 (unsigned long long)err_total());
}

static void no_errors(void) {
    assert_int_equal(err_total(), 0);
}

static int str_is(exp_statsd_str s, const char *lit) {
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static void check_event(size_t i, exp_statsd_kind kind, const char *name, double value,
                        uint64_t repeat) {
    assert_true(i < nev);
    const exp_statsd_event *e = &evs[i];
    if (!str_is(e->name, name))
        fail_msg("event %zu: name '%.*s', want '%s'", i, (int)e->name.len, e->name.ptr, name);
    assert_int_equal(e->kind, kind);
    if (isnan(value))
        assert_true(isnan(e->value));
    else if (e->value != value)
        fail_msg("event %zu: value %.17g, want %.17g", i, e->value, value);
    assert_int_equal(e->repeat, repeat);
}

/* The value of label `name` of event i ("" when absent, so absence is checked too). */
static const char *label_of(size_t i, const char *name) {
    static char buf[256];
    for (size_t k = 0; k < evs[i].nlabels; k++) {
        if (str_is(evs[i].labels[k].name, name)) {
            snprintf(buf, sizeof buf, "%.*s", (int)evs[i].labels[k].value.len,
                     evs[i].labels[k].value.ptr);
            return buf;
        }
    }
    return "";
}

static void check_labels(size_t i, size_t n, ...) {
    va_list ap;
    assert_int_equal(evs[i].nlabels, n);
    va_start(ap, n);
    for (size_t k = 0; k < n; k++) {
        const char *name = va_arg(ap, const char *);
        const char *value = va_arg(ap, const char *);
        assert_string_equal(label_of(i, name), value);
    }
    va_end(ap);
}

/* ---- types, rates, deltas ------------------------------------------------------------------ */

static void test_reason_names(void **state) {
    (void)state;
    for (int i = 0; i < EXP_STATSD_ERR_COUNT; i++) {
        const char *n = exp_statsd_reason_name((exp_statsd_reason)i);
        assert_non_null(n);
        assert_true(strlen(n) > 0);
        for (const char *c = n; *c; c++)
            assert_true((*c >= 'a' && *c <= 'z') || *c == '_');
        for (int j = 0; j < i; j++)
            assert_string_not_equal(n, exp_statsd_reason_name((exp_statsd_reason)j));
    }
    assert_string_equal(exp_statsd_reason_name(EXP_STATSD_ERR_MALFORMED_LINE), "malformed_line");
    assert_string_equal(exp_statsd_reason_name(EXP_STATSD_ERR_COUNT), "unknown");
    assert_string_equal(exp_statsd_reason_name((exp_statsd_reason)-1), "unknown");
}

/* Short decimals take a fast path; it must agree bit for bit with correctly rounded strtod. */
static void test_decimal_fast_path(void **state) {
    (void)state;
    char line[64], num[40];
    unsigned x = 7;
    for (int i = 0; i < 200000; i++) {
        x = x * 1664525u + 1013904223u;
        int digits = 1 + (int)(x >> 28) % 15, point = (int)((x >> 20) % (unsigned)(digits + 1));
        size_t k = 0;
        if (x & 1)
            num[k++] = '-';
        for (int d = 0; d < digits; d++) {
            if (d == point && d > 0)
                num[k++] = '.';
            x = x * 1664525u + 1013904223u;
            num[k++] = (char)('0' + (x >> 24) % 10);
        }
        num[k] = '\0';
        snprintf(line, sizeof line, "m:%s|g", num);
        assert_int_equal(parse(line), 1);
        double want = strtod(num, NULL);
        assert_memory_equal(&evs[0].value, &want, sizeof want);
    }
}

static void test_simple_types(void **state) {
    (void)state;
    assert_int_equal(parse("foo:2|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 2, 1);
    check_labels(0, 0);
    no_errors();
    assert_int_equal(st.samples, 1);
    assert_int_equal(st.tags, 0);

    assert_int_equal(parse("foo:3|g"), 1);
    check_event(0, EXP_STATSD_GAUGE, "foo", 3, 1);

    assert_int_equal(parse("foo:200|ms"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo", 0.2, 1);
    assert_true(evs[0].from_ms);

    assert_int_equal(parse("foo:200|h"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo", 200, 1);
    assert_false(evs[0].from_ms);

    assert_int_equal(parse("foo:200|d"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo", 200, 1);
    assert_false(evs[0].from_ms);
    no_errors();
}

static void test_gauges(void **state) {
    (void)state;
    assert_int_equal(parse("foo:3|g|@0.2"), 1); /* rate ignored for gauges */
    check_event(0, EXP_STATSD_GAUGE, "foo", 3, 1);
    assert_int_equal(parse("foo:-10|g"), 1);
    check_event(0, EXP_STATSD_GAUGE_DELTA, "foo", -10, 1);
    assert_int_equal(parse("foo:+4.5|g"), 1);
    check_event(0, EXP_STATSD_GAUGE_DELTA, "foo", 4.5, 1);
    assert_int_equal(parse("foo:-0|g"), 1);
    check_event(0, EXP_STATSD_GAUGE_DELTA, "foo", 0, 1);
    assert_int_equal(parse("foo:0|g"), 1);
    check_event(0, EXP_STATSD_GAUGE, "foo", 0, 1);
    no_errors();
    /* an unparsable rate is counted but the gauge still applies */
    assert_int_equal(parse("foo:7|g|@bad"), 1);
    check_event(0, EXP_STATSD_GAUGE, "foo", 7, 1);
    only_error(EXP_STATSD_ERR_INVALID_SAMPLE_FACTOR, 1);
}

static void test_counter_rates(void **state) {
    (void)state;
    assert_int_equal(parse("foo:100|c|@0.1"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 1000, 1);
    assert_int_equal(parse("foo:1|c|@0.5|@0.5"), 1); /* every rate divides */
    check_event(0, EXP_STATSD_COUNTER, "foo", 4, 1);
    assert_int_equal(parse("foo:2|c|@0"), 1); /* rate 0 means 1 */
    check_event(0, EXP_STATSD_COUNTER, "foo", 2, 1);
    assert_int_equal(parse("foo:2|c|@-0"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 2, 1);
    assert_int_equal(parse("foo:3|c|@1"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 3, 1);
    assert_int_equal(parse("foo:1|c|@1e-300"), 1); /* a valid rate; the sum is checked later */
    check_event(0, EXP_STATSD_COUNTER, "foo", 1 / 1e-300, 1);
    no_errors();

    assert_int_equal(parse("foo:1|c|@bar"), 1); /* kept with rate 1, error counted */
    check_event(0, EXP_STATSD_COUNTER, "foo", 1, 1);
    only_error(EXP_STATSD_ERR_INVALID_SAMPLE_FACTOR, 1);
    assert_int_equal(parse("foo:1|c|@"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 1, 1);
    only_error(EXP_STATSD_ERR_INVALID_SAMPLE_FACTOR, 1);
    assert_int_equal(parse("foo:1|c|@0x|@0.5"), 1); /* both rates apply, 1 taken as 1 */
    check_event(0, EXP_STATSD_COUNTER, "foo", 2, 1);
    only_error(EXP_STATSD_ERR_INVALID_SAMPLE_FACTOR, 1);

    /* A rate that is a number but not a probability refuses the sample, with its reason
     * (statsd_exporter would divide by it: 1/2 counted, a negative or NaN increment, 0). */
    const char *bad[] = {"foo:3|c|@2",     "foo:1|c|@-1",       "foo:1|c|@-0.5",
                         "foo:1|c|@NaN",   "foo:1|c|@Inf",      "foo:1|c|@-inf",
                         "foo:5|c|@1e309", "foo:1|c|@0.5|@1.5", "foo:1|c|@1.0000001"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i]) != 0)
            fail_msg("'%s' produced an event", bad[i]);
        only_error(EXP_STATSD_ERR_INVALID_SAMPLE_RATE, 1);
        assert_int_equal(st.samples, 1);
    }
}

static void test_observer_rates(void **state) {
    (void)state;
    assert_int_equal(parse("foo.timing:0.5|ms|@0.1"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo.timing", 0.0005, 10);
    assert_int_equal(parse("foo:0.01|h|@0.2"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo", 0.01, 5);
    assert_int_equal(parse("foo:0.01|d|@0.3"), 1); /* int(3.33) */
    check_event(0, EXP_STATSD_OBSERVER, "foo", 0.01, 3);
    assert_int_equal(parse("foo:1|h|@0.5|@0.25"), 1); /* the last rate counts */
    check_event(0, EXP_STATSD_OBSERVER, "foo", 1, 4);
    assert_int_equal(parse("foo:1|h|@0.00000095367431640625"), 1); /* 2^-20 */
    check_event(0, EXP_STATSD_OBSERVER, "foo", 1, 1048576);
    no_errors();
    assert_int_equal(parse("foo:1|h|@0.0000000001"), 1); /* 1e10 observations: fits */
    check_event(0, EXP_STATSD_OBSERVER, "foo", 1, 10000000000ULL);
    assert_int_equal(parse("foo:1|ms|@1"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo", 0.001, 1);
    no_errors();
    /* int(1/rate) <= 0 in Go: statsd_exporter makes no observation and counts nothing. Here
     * each is refused as invalid_sample_rate (1e-300: 1e300 observations overflow a count). */
    const char *none[] = {"foo:1|ms|@2",     "foo:1|h|@-0.5", "foo:1|d|@NaN",
                          "foo:1|h|@1e-300", "foo:1|h|@Inf",  "foo:1|h|@1e309",
                          "foo:1|ms|@-1",    "foo:1:2|d|@2",  "foo:1|h|@0.5|@3"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        if (parse(none[i]) != 0)
            fail_msg("'%s' produced an event", none[i]);
        if (st.errors[EXP_STATSD_ERR_INVALID_SAMPLE_RATE] != st.samples ||
            err_total() != st.samples)
            fail_msg("'%s': %llu samples, %llu invalid_sample_rate, %llu errors", none[i],
                     (unsigned long long)st.samples,
                     (unsigned long long)st.errors[EXP_STATSD_ERR_INVALID_SAMPLE_RATE],
                     (unsigned long long)err_total());
    }
    /* A gauge ignores its rate, as in statsd_exporter. */
    assert_int_equal(parse("foo:4|g|@2"), 1);
    check_event(0, EXP_STATSD_GAUGE, "foo", 4, 1);
    assert_int_equal(parse("foo:+4|g|@NaN"), 1);
    check_event(0, EXP_STATSD_GAUGE_DELTA, "foo", 4, 1);
    no_errors();
}

static void test_multi_sample(void **state) {
    (void)state;
    assert_int_equal(parse("foo:1|c:2|c"), 2);
    check_event(0, EXP_STATSD_COUNTER, "foo", 1, 1);
    check_event(1, EXP_STATSD_COUNTER, "foo", 2, 1);
    assert_int_equal(st.samples, 2);
    assert_int_equal(parse("foo:1|c:2|g:3|ms|@0.5:-4|g:5|h"), 5);
    check_event(0, EXP_STATSD_COUNTER, "foo", 1, 1);
    check_event(1, EXP_STATSD_GAUGE, "foo", 2, 1);
    check_event(2, EXP_STATSD_OBSERVER, "foo", 0.003, 2);
    check_event(3, EXP_STATSD_GAUGE_DELTA, "foo", -4, 1);
    check_event(4, EXP_STATSD_OBSERVER, "foo", 5, 1);
    no_errors();
    /* a bad sample does not take the others with it */
    assert_int_equal(parse("foo:1|c:bad|c:3|x:4|c::5"), 2);
    check_event(0, EXP_STATSD_COUNTER, "foo", 1, 1);
    check_event(1, EXP_STATSD_COUNTER, "foo", 4, 1);
    assert_int_equal(st.samples, 6);
    assert_int_equal(st.errors[EXP_STATSD_ERR_MALFORMED_VALUE], 1);
    assert_int_equal(st.errors[EXP_STATSD_ERR_ILLEGAL_EVENT], 1);
    assert_int_equal(st.errors[EXP_STATSD_ERR_MALFORMED_COMPONENT], 2); /* "" and "5" */
    assert_int_equal(err_total(), 4);
}

static void test_extended_aggregation(void **state) {
    (void)state;
    const double ms[] = {0.0005, 0.120, 3, 0.01, 20, 0.00001};
    assert_int_equal(parse("foo_timing:0.5:120:3000:10:20000:0.01|ms|#tag1:bar,tag2:baz"), 6);
    for (size_t i = 0; i < 6; i++) {
        check_event(i, EXP_STATSD_OBSERVER, "foo_timing", ms[i], 1);
        check_labels(i, 2, "tag1", "bar", "tag2", "baz");
    }
    assert_int_equal(st.samples, 6);
    assert_int_equal(st.tags, 6);
    no_errors();

    assert_int_equal(parse("foo_timing:0.5:120:3000:10:20000:0.01|ms|@0.5"), 6);
    for (size_t i = 0; i < 6; i++)
        check_event(i, EXP_STATSD_OBSERVER, "foo_timing", ms[i], 2);

    assert_int_equal(parse("foo_histogram:0.5:120|h|#a:b"), 2);
    check_event(1, EXP_STATSD_OBSERVER, "foo_histogram", 120, 1);
    assert_int_equal(parse("foo_distribution:0.5:120|d"), 2);
    check_event(0, EXP_STATSD_OBSERVER, "foo_distribution", 0.5, 1);

    /* name tags work with it too */
    assert_int_equal(parse("foo.[tag1=bar]test:0.5:120|ms"), 2);
    check_event(1, EXP_STATSD_OBSERVER, "foo.test", 0.12, 1);
    check_labels(1, 1, "tag1", "bar");

    /* per value errors, and errors of the shared parts counted for every value */
    assert_int_equal(parse("foo:1::x:2|ms"), 2);
    only_error(EXP_STATSD_ERR_MALFORMED_VALUE, 2);
    assert_int_equal(st.samples, 4);
    assert_int_equal(parse("foo:1:2:3|ms|#novalue,a:b"), 3);
    assert_int_equal(st.tag_errors, 3);
    assert_int_equal(st.tags, 3);
    assert_int_equal(parse("foo:1:2:3|ms|@x"), 3);
    only_error(EXP_STATSD_ERR_INVALID_SAMPLE_FACTOR, 3);
    assert_int_equal(parse("foo:1:2:3|ms|c:"), 0);
    only_error(EXP_STATSD_ERR_MALFORMED_CONTAINER_ID, 3);

    assert_int_equal(parse("foo_counter:0.5:120|c|#tag1:bar"), 0);
    only_error(EXP_STATSD_ERR_INVALID_EXTENDED_AGG, 1);
    assert_int_equal(st.samples, 0);
    assert_int_equal(parse("foo_gauge:0.5:120|g"), 0);
    only_error(EXP_STATSD_ERR_INVALID_EXTENDED_AGG, 1);
    assert_int_equal(parse("foo:1:2|s"), 0);
    only_error(EXP_STATSD_ERR_INVALID_EXTENDED_AGG, 1);
}

/* ---- tags ----------------------------------------------------------------------------------- */

static void test_influx_librato(void **state) {
    (void)state;
    assert_int_equal(parse("foo#tag1=bar,tag2=baz:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 100, 1);
    check_labels(0, 2, "tag1", "bar", "tag2", "baz");
    assert_int_equal(st.tags, 1);
    assert_int_equal(parse("foo,tag1=bar,tag2=baz:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 100, 1);
    check_labels(0, 2, "tag1", "bar", "tag2", "baz");
    assert_int_equal(parse("foo,09digits=0,tag.with.dots=1:100|c"), 1);
    check_labels(0, 2, "_09digits", "0", "tag_with_dots", "1");
    assert_int_equal(parse("foo#09digits=0,tag.with.dots=1:100|c"), 1);
    check_labels(0, 2, "_09digits", "0", "tag_with_dots", "1");
    /* the first '#' or ',' starts the tags; the rest are tag text */
    assert_int_equal(parse("foo,a=b#c=d:1|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 1, 1);
    check_labels(0, 1, "a", "b#c=d");
    assert_int_equal(parse("foo,a=x=y:1|c"), 1);
    check_labels(0, 1, "a", "x=y");
    assert_int_equal(parse("foo,:1|c"), 1); /* nothing after ',' */
    check_event(0, EXP_STATSD_COUNTER, "foo", 1, 1);
    check_labels(0, 0);
    assert_int_equal(st.tag_errors, 0);
    no_errors();
    /* malformed tags are skipped and counted, the event stays */
    assert_int_equal(parse("foo,novalue,=v,k=,,ok=1,:1|c"), 1);
    check_labels(0, 1, "ok", "1");
    assert_int_equal(st.tag_errors, 4);
    no_errors();
    /* duplicates: the last value wins, also after escaping */
    assert_int_equal(parse("foo,a=1,a=2,b.c=3,b_c=4:1|c"), 1);
    check_labels(0, 2, "a", "2", "b_c", "4");
}

static void test_signalfx(void **state) {
    (void)state;
    assert_int_equal(parse("foo.[tag1=bar,tag2=baz]test:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo.test", 100, 1);
    check_labels(0, 2, "tag1", "bar", "tag2", "baz");
    assert_int_equal(parse("foo.test[tag1=bar,tag2=baz]:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo.test", 100, 1);
    check_labels(0, 2, "tag1", "bar", "tag2", "baz");
    assert_int_equal(parse("[tag1=bar,tag2=baz]foo.test:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo.test", 100, 1);
    check_labels(0, 2, "tag1", "bar", "tag2", "baz");
    assert_int_equal(parse("foo.[]test:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo.test", 100, 1);
    check_labels(0, 0);
    assert_int_equal(st.tag_errors, 0);
    assert_int_equal(parse("foo.[tag1,tag2]test:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo.test", 100, 1);
    check_labels(0, 0);
    assert_int_equal(st.tag_errors, 2);
    /* brackets take precedence: no InfluxDB/Librato split afterwards */
    assert_int_equal(parse("a,b[x=y]c#d:1|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "a,bc#d", 1, 1);
    check_labels(0, 1, "x", "y");
    no_errors();

    /* unbalanced: a tag error, the name stays as sent */
    assert_int_equal(parse("[tag1=bar,tag2=bazfoo.test:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "[tag1=bar,tag2=bazfoo.test", 100, 1);
    check_labels(0, 0);
    assert_int_equal(st.tag_errors, 1);
    assert_int_equal(parse("tag1=bar,tag2=baz]foo.test:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "tag1=bar,tag2=baz]foo.test", 100, 1);
    assert_int_equal(st.tag_errors, 1);
    assert_int_equal(parse("a]b[c:1|c"), 1); /* statsd_exporter panics on this one */
    check_event(0, EXP_STATSD_COUNTER, "a]b[c", 1, 1);
    assert_int_equal(st.tag_errors, 1);
    no_errors();
}

static void test_escaping(void **state) {
    (void)state;
    assert_int_equal(parse("m:1|c|#a--b:1,x-y:2,t\xc3\xa4g:3,a.b-c:4,---:5,9:6,_ok:7,"
                           "\xe2\x82\xac:8"),
                     1);
    /* "---" and the euro sign both become "_": the later value wins */
    check_labels(0, 7, "a_b", "1", "x_y", "2", "t_g", "3", "a_b_c", "4", "_", "8", "_9", "6", "_ok",
                 "7");
}

static void test_dogstatsd(void **state) {
    (void)state;
    assert_int_equal(parse("foo:100|c|#tag1:bar,tag2:baz"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 100, 1);
    check_labels(0, 2, "tag1", "bar", "tag2", "baz");
    assert_int_equal(parse("foo:100|c|#tag1:bar,#tag2:baz"), 1);
    check_labels(0, 2, "tag1", "bar", "tag2", "baz");
    assert_int_equal(parse("foo:100|c|#09digits:0,tag.with.dots:1"), 1);
    check_labels(0, 2, "_09digits", "0", "tag_with_dots", "1");
    assert_int_equal(parse("foo:100|c|@0.1|#tag1:foo:bar"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 1000, 1);
    check_labels(0, 1, "tag1", "foo:bar");
    assert_int_equal(parse("foo:0.01|d|@0.2|#tag1:bar,#tag2:baz"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo", 0.01, 5);
    check_labels(0, 2, "tag1", "bar", "tag2", "baz");
    assert_int_equal(parse("foo:1|c|#tag:value,"), 1); /* final ',' is fine */
    check_labels(0, 1, "tag", "value");
    assert_int_equal(st.tag_errors, 0);
    assert_int_equal(parse("foo:1|c|#"), 1);
    check_labels(0, 0);
    assert_int_equal(st.tag_errors, 0);
    assert_int_equal(st.tags, 0);
    assert_int_equal(parse("foo:1|c|###a:b"), 1); /* one '#' is trimmed per tag */
    check_labels(0, 1, "_a", "b");
    no_errors();

    /* tags without a value, empty tags, empty keys: skipped, counted */
    assert_int_equal(parse("foo:100|c|#tag_without_a_value"), 1);
    check_labels(0, 0);
    assert_int_equal(st.tag_errors, 1);
    assert_int_equal(parse("foo:100|c|#tag_without_a_value,tag:value"), 1);
    check_labels(0, 1, "tag", "value");
    assert_int_equal(st.tag_errors, 1);
    assert_int_equal(parse("foo:100|c|#tag:value,,"), 1);
    check_labels(0, 1, "tag", "value");
    assert_int_equal(st.tag_errors, 1);
    assert_int_equal(parse("foo:100|c|#:v,k:,#"), 1);
    check_labels(0, 0);
    assert_int_equal(st.tag_errors, 3);
    no_errors();

    /* "|#" turns multi-sample parsing off: ':' belongs to tag values */
    assert_int_equal(parse("foo:1|c|#a:b:2|g"), 1);
    check_labels(0, 1, "a", "b:2");
    assert_int_equal(st.unknown_fields, 1); /* part "g" */
    no_errors();
    assert_int_equal(st.samples, 1);

    /* invalid UTF-8 anywhere refuses the line */
    assert_int_equal(parse("foo:100|c|@0.1|#tag:\xc3\x28invalid"), 0);
    only_error(EXP_STATSD_ERR_MALFORMED_LINE, 1);
    assert_int_equal(parse("foo:100|c|@0.1|#tag1:valid,tag2:\xc3\x28invalid"), 0);
    only_error(EXP_STATSD_ERR_MALFORMED_LINE, 1);
}

static void test_mixed_styles(void **state) {
    (void)state;
    const char *mixed[] = {
        "foo#tag1=foo,tag3=bing:100|c|#tag1:bar,#tag2:baz",
        "foo[tag1=foo,tag3=bing]:100|c|#tag1:bar,#tag2:baz",
        "foo,tag1=foo,tag3=bing:100|c|#tag1:bar,#tag2:baz",
        "foo#tag1=foo,tag3=bing:100|c|@0.1|#tag1:bar,#tag2:baz",
    };
    for (size_t i = 0; i < sizeof mixed / sizeof mixed[0]; i++) {
        assert_int_equal(parse(mixed[i]), 0);
        only_error(EXP_STATSD_ERR_MIXED_TAGGING_STYLES, 1);
        assert_int_equal(st.samples, 0);
    }
    /* name tags that all failed are no tags: not mixed */
    assert_int_equal(parse("foo,bad:1|c|#a:b"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 1, 1);
    check_labels(0, 1, "a", "b");
    assert_int_equal(st.tag_errors, 1);
    no_errors();
}

static void test_container_and_timestamp(void **state) {
    (void)state;
    assert_int_equal(parse("foo:100|c|#tag1:value|c:container123"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 100, 1);
    check_labels(0, 2, "tag1", "value", "container_id", "container123");
    assert_int_equal(parse("foo:1000|ms|#tag1:value|c:timer_container"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo", 1, 1);
    check_labels(0, 2, "tag1", "value", "container_id", "timer_container");
    assert_int_equal(parse("foo:100|c|#tag1:value|c:sha256:abcd1234efgh5678"), 1);
    check_labels(0, 2, "tag1", "value", "container_id", "sha256:abcd1234efgh5678");
    /* later parts override earlier ones */
    assert_int_equal(parse("foo:1|c|#container_id:x|c:y"), 1);
    check_labels(0, 1, "container_id", "y");
    assert_int_equal(parse("foo:1|c|c:y|#container_id:x"), 1);
    check_labels(0, 1, "container_id", "x");
    /* up to 8 parts */
    assert_int_equal(parse("foo:1|c|@0.5|#a:b|c:cid|T1656581400"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 2, 1);
    check_labels(0, 2, "a", "b", "container_id", "cid");
    no_errors();

    assert_int_equal(parse("foo:100|c|#tag1:value|c"), 0);
    only_error(EXP_STATSD_ERR_MALFORMED_CONTAINER_ID, 1);
    assert_int_equal(parse("foo:100|c|#tag1:value|c:"), 0);
    only_error(EXP_STATSD_ERR_MALFORMED_CONTAINER_ID, 1);
    /* a field starting with 'c' that is not `c:` is an unknown extension: skipped */
    assert_int_equal(parse("foo:100|c|#tag1:value|cx"), 1);
    check_labels(0, 1, "tag1", "value");
    no_errors();
    assert_int_equal(st.unknown_fields, 1);
    /* without "|#" the ':' splits samples, as in statsd_exporter */
    assert_int_equal(parse("foo:1|c|c:abc"), 0);
    assert_int_equal(st.errors[EXP_STATSD_ERR_MALFORMED_CONTAINER_ID], 1);
    assert_int_equal(st.errors[EXP_STATSD_ERR_MALFORMED_COMPONENT], 1);
    assert_int_equal(err_total(), 2);

    const char *good_ts[] = {"foo:1|c|T1656581400",
                             "foo:1|c|T0",
                             "foo:1|c|T-5",
                             "foo:1|c|T+5",
                             "foo:1|c|T9223372036854775807",
                             "foo:1|c|T-9223372036854775808"};
    for (size_t i = 0; i < sizeof good_ts / sizeof good_ts[0]; i++) {
        assert_int_equal(parse(good_ts[i]), 1);
        no_errors();
    }
    const char *bad_ts[] = {"foo:1|c|T",
                            "foo:1|c|Tabc",
                            "foo:1|c|T12a",
                            "foo:1|c|T1_000",
                            "foo:1|c|T-",
                            "foo:1|c|T 1",
                            "foo:1|c|T1.5",
                            "foo:1|c|T9223372036854775808",
                            "foo:1|c|T-9223372036854775809",
                            "foo:1|c|T99999999999999999999"};
    /* statsd_exporter ignores the timestamp: a bad one is counted and only itself dropped */
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
        if (parse(bad_ts[i]) != 1)
            fail_msg("'%s' lost its sample", bad_ts[i]);
        check_event(0, EXP_STATSD_COUNTER, "foo", 1, 1);
        only_error(EXP_STATSD_ERR_MALFORMED_TIMESTAMP, 1);
    }
    assert_int_equal(parse("foo:1|ms|#a:b|T|@0.5"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo", 0.001, 2);
    check_labels(0, 1, "a", "b");
    only_error(EXP_STATSD_ERR_MALFORMED_TIMESTAMP, 1);
    assert_int_equal(parse("foo:1:2:3|d|Tx"), 3); /* counted per sample */
    only_error(EXP_STATSD_ERR_MALFORMED_TIMESTAMP, 3);
}

/* DogStatsD fields abacus does not know are skipped and counted; the sample stays. */
static void test_unknown_fields(void **state) {
    (void)state;
    /* hot-shots with cardinality set, with and without tags and a container ID */
    assert_int_equal(parse("foo:1|c|#env:prod|card:low"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 1, 1);
    check_labels(0, 1, "env", "prod");
    no_errors();
    assert_int_equal(st.unknown_fields, 1);
    assert_int_equal(st.samples, 1);
    assert_int_equal(parse("foo:1|c|card:low"), 1); /* one sample, not split at its ':' */
    check_event(0, EXP_STATSD_COUNTER, "foo", 1, 1);
    no_errors();
    assert_int_equal(st.unknown_fields, 1);
    assert_int_equal(st.samples, 1);
    assert_int_equal(parse("foo:250|ms|@0.5|#a:b|c:cid|card:orchestrator|T1656581400"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo", 0.25, 2);
    check_labels(0, 2, "a", "b", "container_id", "cid");
    no_errors();
    assert_int_equal(st.unknown_fields, 1);
    /* future fields, with or without a value, anywhere after the type */
    assert_int_equal(parse("foo:2|g|e:it-false,cn-x|#a:b|x|zz|9:q"), 1);
    check_event(0, EXP_STATSD_GAUGE, "foo", 2, 1);
    check_labels(0, 1, "a", "b");
    no_errors();
    assert_int_equal(st.unknown_fields, 4);
    assert_int_equal(parse("foo:1|c|x"), 1);
    no_errors();
    assert_int_equal(st.unknown_fields, 1);
    assert_int_equal(parse("foo:1:2|h|card:low"), 2); /* counted per sample */
    assert_int_equal(st.unknown_fields, 2);
    assert_int_equal(parse("foo:1|c|e:it-false"), 1); /* a one-letter key before a non-number */
    no_errors();
    assert_int_equal(st.unknown_fields, 1);
    /* multi-sample lines still split where a type precedes the ':' */
    assert_int_equal(parse("foo:1|c:2|g:3|ms|@0.5"), 3);
    check_event(1, EXP_STATSD_GAUGE, "foo", 2, 1);
    check_event(2, EXP_STATSD_OBSERVER, "foo", 0.003, 2);
    no_errors();
    assert_int_equal(st.unknown_fields, 0);
    /* a field does not rescue a sample another part refuses */
    assert_int_equal(parse("foo:1|c|card:low|c"), 0);
    only_error(EXP_STATSD_ERR_MALFORMED_CONTAINER_ID, 1);
    assert_int_equal(parse("foo:1|c|card:low|"), 0);
    only_error(EXP_STATSD_ERR_MALFORMED_COMPONENT, 1);
}

static void test_flags(void **state) {
    (void)state;
    exp_statsd_flags f = exp_statsd_flags_default();
    assert_true(f.dogstatsd && f.influxdb && f.librato && f.signalfx);

    f.librato = false; /* '#' is part of the name, but ',' still starts InfluxDB tags */
    assert_int_equal(parse_f(&f, "foo#tag1=bar,tag2=baz:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo#tag1=bar", 100, 1);
    check_labels(0, 1, "tag2", "baz");
    f.influxdb = false;
    assert_int_equal(parse_f(&f, "foo#tag1=bar,tag2=baz:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo#tag1=bar,tag2=baz", 100, 1);
    check_labels(0, 0);

    f = exp_statsd_flags_default();
    f.influxdb = false;
    assert_int_equal(parse_f(&f, "foo,tag1=bar:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo,tag1=bar", 100, 1);
    check_labels(0, 0);

    f = exp_statsd_flags_default();
    f.signalfx = false;
    assert_int_equal(parse_f(&f, "foo.[tag1=bar]test:100|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo.[tag1=bar]test", 100, 1);
    check_labels(0, 0);
    assert_int_equal(st.tag_errors, 0);
    assert_int_equal(parse_f(&f, "[tag1=bar:100|c"), 1); /* no bracket check at all */
    assert_int_equal(st.tag_errors, 0);

    f = exp_statsd_flags_default();
    f.dogstatsd = false;
    assert_int_equal(parse_f(&f, "foo:100|c|#tag1:bar,tag2:baz"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 100, 1);
    check_labels(0, 0);
    assert_int_equal(parse_f(&f, "foo:100|c|@0.1|#tag1:bar"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 1000, 1);
    /* as in statsd_exporter, "|#" still means single-sample and still clashes with name tags */
    assert_int_equal(parse_f(&f, "foo#a=b:1|c|#x:y"), 0);
    only_error(EXP_STATSD_ERR_MIXED_TAGGING_STYLES, 1);
    assert_int_equal(parse_f(&f, "foo:1|c|#x:y|c:cid"), 1);
    check_labels(0, 1, "container_id", "cid");

    f = (exp_statsd_flags){0};
    assert_int_equal(parse_f(&f, "a.[x=y]b#c=d,e=f:1|c|#g:h"), 1);
    check_event(0, EXP_STATSD_COUNTER, "a.[x=y]b#c=d,e=f", 1, 1);
    check_labels(0, 0);
    no_errors();
}

/* ---- values --------------------------------------------------------------------------------- */

typedef struct {
    const char *v;
    int ok;
    double want;
} value_case;

/* Go's strconv.ParseFloat, via "m:<v>|g" (a gauge keeps the value as sent). */
static void test_value_syntax(void **state) {
    (void)state;
    static const value_case cases[] = {
        {"1", 1, 1},
        {"1.5", 1, 1.5},
        {".5", 1, 0.5},
        {"5.", 1, 5},
        {"0.05", 1, 0.05},
        {"00.0500", 1, 0.05},
        {"1e5", 1, 1e5},
        {"1E-2", 1, 0.01},
        {"1e+2", 1, 100},
        {"1_000", 1, 1000},
        {"1_000.000_1", 1, 1000.0001},
        {"1e1_0", 1, 1e10},
        {"0x1p-2", 1, 0.25},
        {"0X1P-2", 1, 0.25},
        {"0x1.8p1", 1, 3},
        {"0x.8p1", 1, 1},
        {"0x_1p0", 1, 1},
        {"0xABCp0", 1, 2748},
        {"0x1p1024", 0, 0},
        {"1.7976931348623157e308", 1, DBL_MAX},
        {"1.7976931348623159e308", 0, 0},
        {"1e309", 0, 0},
        {"1e100000", 0, 0},
        {"0e99999999", 1, 0},
        {"1e-400", 1, 0},
        {"4.9e-324", 1, 4.9e-324},
        {"2.2250738585072011e-308", 1, 2.2250738585072011e-308},
        {"9007199254740993", 1, 9007199254740992.0},
        {"9007199254740995", 1, 9007199254740996.0},
        {"1e0000000000000000001", 1, 10},
        {"Inf", 1, INFINITY},
        {"inf", 1, INFINITY},
        {"Infinity", 1, INFINITY},
        {"INFINITY", 1, INFINITY},
        {"NaN", 1, NAN},
        {"nan", 1, NAN},
        {"NAN", 1, NAN},
        {"1__0", 0, 0},
        {"_1", 0, 0},
        {"1_", 0, 0},
        {"1_.5", 0, 0},
        {"1._5", 0, 0},
        {"1e_1", 0, 0},
        {"0x1", 0, 0},
        {"0x1p", 0, 0},
        {"0x", 0, 0},
        {"0xp1", 0, 0},
        {"0x1_p0", 0, 0},
        {"0b101", 0, 0},
        {".", 0, 0},
        {"1e", 0, 0},
        {"1e+", 0, 0},
        {"1e-", 0, 0},
        {"e5", 0, 0},
        {" 1", 0, 0},
        {"1 ", 0, 0},
        {"1.2.3", 0, 0},
        {"1o", 0, 0},
        {"0x1g", 0, 0},
        {"", 0, 0},
        {"++1", 0, 0},
        {"nan(1)", 0, 0},
        {"infinit", 0, 0},
        {"infx", 0, 0},
        {"infinityx", 0, 0},
        {"in", 0, 0},
        {"nanx", 0, 0},
        {"\xef\xbc\x91", 0, 0}, /* fullwidth digit one */
    };
    char line[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(line, sizeof line, "m:%s|g", cases[i].v);
        size_t n = parse(line);
        if (!cases[i].ok) {
            if (n != 0 || st.errors[EXP_STATSD_ERR_MALFORMED_VALUE] != 1)
                fail_msg("'%s' should be refused", cases[i].v);
            continue;
        }
        if (n != 1)
            fail_msg("'%s' refused", cases[i].v);
        check_event(0, EXP_STATSD_GAUGE, "m", cases[i].want, 1);
    }
    /* signs: relative, and the specials keep their sign */
    const value_case signed_cases[] = {{"+1", 1, 1},
                                       {"-1", 1, -1},
                                       {"-0x1p1", 1, -2},
                                       {"+Inf", 1, INFINITY},
                                       {"-inf", 1, -INFINITY},
                                       {"-Infinity", 1, -INFINITY},
                                       {"-nan", 0, 0},
                                       {"+NaN", 0, 0},
                                       {"-1e309", 0, 0},
                                       {"+", 0, 0},
                                       {"-", 0, 0}};
    for (size_t i = 0; i < sizeof signed_cases / sizeof signed_cases[0]; i++) {
        snprintf(line, sizeof line, "m:%s|g", signed_cases[i].v);
        size_t n = parse(line);
        if (!signed_cases[i].ok) {
            assert_int_equal(n, 0);
            only_error(EXP_STATSD_ERR_MALFORMED_VALUE, 1);
            continue;
        }
        assert_int_equal(n, 1);
        check_event(0, EXP_STATSD_GAUGE_DELTA, "m", signed_cases[i].want, 1);
    }
    assert_int_equal(parse("m:-0|g"), 1);
    assert_true(signbit(evs[0].value));
}

/* Numbers far longer than a double's precision round exactly as Go's do. */
static void test_long_numbers(void **state) {
    (void)state;
    char *p = big;
    /* 0.<400 zeros>1e400 = 0.1 */
    p += sprintf(p, "m:0.");
    memset(p, '0', 400);
    p += 400;
    p += sprintf(p, "1e400|g");
    assert_int_equal(parse(big), 1);
    check_event(0, EXP_STATSD_GAUGE, "m", 0.1, 1);

    /* halfway between two doubles, then a nonzero digit 900 places later: rounds up */
    p = big + sprintf(big, "m:9007199254740993.");
    memset(p, '0', 900);
    p += 900;
    sprintf(p, "1|g");
    assert_int_equal(parse(big), 1);
    check_event(0, EXP_STATSD_GAUGE, "m", 9007199254740994.0, 1);
    /* exactly halfway: to even */
    sprintf(p, "0|g");
    assert_int_equal(parse(big), 1);
    check_event(0, EXP_STATSD_GAUGE, "m", 9007199254740992.0, 1);

    /* 1 followed by 400 zeros: out of range */
    p = big + sprintf(big, "m:1");
    memset(p, '0', 400);
    sprintf(p + 400, "|g");
    assert_int_equal(parse(big), 0);
    only_error(EXP_STATSD_ERR_MALFORMED_VALUE, 1);

    /* Go stops reading exponent digits at 10000: 0.<10005 zeros>1e100000 is 1e-6 there */
    p = big + sprintf(big, "m:0.");
    memset(p, '0', 10005);
    p += 10005;
    sprintf(p, "1e100000|g");
    assert_int_equal(parse(big), 1);
    check_event(0, EXP_STATSD_GAUGE, "m", 1e-6, 1);

    /* 60000 significant digits */
    p = big + sprintf(big, "m:");
    memset(p, '7', 60000);
    sprintf(p + 60000, "e-60000|g");
    assert_int_equal(parse(big), 1);
    check_event(0, EXP_STATSD_GAUGE, "m", 0.77777777777777779, 1);

    /* hex with far more digits than kept */
    p = big + sprintf(big, "m:0x1");
    memset(p, '0', 50);
    sprintf(p + 50, "1p-204|g"); /* 1 + 2^-204: rounds to 1 */
    assert_int_equal(parse(big), 1);
    check_event(0, EXP_STATSD_GAUGE, "m", 1.0, 1);
}

static void test_special_values(void **state) {
    (void)state;
    assert_int_equal(parse("foo:NaN|g"), 1);
    check_event(0, EXP_STATSD_GAUGE, "foo", NAN, 1);
    assert_int_equal(parse("foo:+Inf|g"), 1);
    check_event(0, EXP_STATSD_GAUGE_DELTA, "foo", INFINITY, 1);
    assert_int_equal(parse("foo:Inf|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", INFINITY, 1);
    assert_int_equal(parse("foo:nan|c"), 1); /* NaN < 0 is false: statsd_exporter adds it */
    check_event(0, EXP_STATSD_COUNTER, "foo", NAN, 1);
    assert_int_equal(parse("foo:-0|c"), 1);
    check_event(0, EXP_STATSD_COUNTER, "foo", 0, 1);
    assert_int_equal(parse("foo:infinity|h"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo", INFINITY, 1);
    assert_int_equal(parse("foo:NaN|ms"), 1);
    check_event(0, EXP_STATSD_OBSERVER, "foo", NAN, 1);
    no_errors();
    assert_int_equal(parse("foo:-Inf|c"), 0);
    only_error(EXP_STATSD_ERR_ILLEGAL_NEGATIVE_COUNTER, 1);
    assert_int_equal(parse("foo:-1|c"), 0);
    only_error(EXP_STATSD_ERR_ILLEGAL_NEGATIVE_COUNTER, 1);
    assert_int_equal(parse("foo:1e309|c"), 0);
    only_error(EXP_STATSD_ERR_MALFORMED_VALUE, 1);
}

/* ---- errors and hostile input ------------------------------------------------------------- */

typedef struct {
    const char *line;
    exp_statsd_reason reason;
} error_case;

static void test_error_reasons(void **state) {
    (void)state;
    static const error_case cases[] = {
        {"foo", EXP_STATSD_ERR_MALFORMED_LINE},
        {":100|ms", EXP_STATSD_ERR_MALFORMED_LINE},
        {"invalid\xc3\x28utf8:1|c", EXP_STATSD_ERR_MALFORMED_LINE},
        {"foo,a=b:1|c|#c:d", EXP_STATSD_ERR_MIXED_TAGGING_STYLES},
        {"foo:1", EXP_STATSD_ERR_NOT_ENOUGH_PARTS},
        {"foo:1:2:3", EXP_STATSD_ERR_NOT_ENOUGH_PARTS},
        {"foo:1:2|c", EXP_STATSD_ERR_INVALID_EXTENDED_AGG},
        {"[a=b]:1|c", EXP_STATSD_ERR_EMPTY_NAME},
        {",a=b:1|c", EXP_STATSD_ERR_EMPTY_NAME},
        {"#a=b:1|c", EXP_STATSD_ERR_EMPTY_NAME},
        {"foo:1|c|", EXP_STATSD_ERR_MALFORMED_COMPONENT},
        {"foo:1|c||@0.5", EXP_STATSD_ERR_MALFORMED_COMPONENT},
        {"foo:1|c|@0.5|@0.5|@0.5|@0.5|@0.5|@0.5|@0.5", EXP_STATSD_ERR_MALFORMED_COMPONENT},
        {"foo:1o|c", EXP_STATSD_ERR_MALFORMED_VALUE},
        {"foo:|c", EXP_STATSD_ERR_MALFORMED_VALUE},
        {"foo:1|c|#a:b|c", EXP_STATSD_ERR_MALFORMED_CONTAINER_ID},
        {"foo:1|c|@2", EXP_STATSD_ERR_INVALID_SAMPLE_RATE},
        {"foo:1|ms|@2", EXP_STATSD_ERR_INVALID_SAMPLE_RATE},
        {"foo:2|t", EXP_STATSD_ERR_ILLEGAL_EVENT},
        {"foo:2|", EXP_STATSD_ERR_ILLEGAL_EVENT},
        {"foo:2|C", EXP_STATSD_ERR_ILLEGAL_EVENT},
        {"foo:2|c\r", EXP_STATSD_ERR_ILLEGAL_EVENT},
        {"foo:2|msx", EXP_STATSD_ERR_ILLEGAL_EVENT},
        {"foo:1|s", EXP_STATSD_ERR_UNSUPPORTED_SET},
        {"foo:1|s|@0.1", EXP_STATSD_ERR_UNSUPPORTED_SET},
        {"foo:-1|c", EXP_STATSD_ERR_ILLEGAL_NEGATIVE_COUNTER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (parse(cases[i].line) != 0)
            fail_msg("'%s' produced an event", cases[i].line);
        if (st.errors[cases[i].reason] != 1 || err_total() != 1)
            fail_msg("'%s': want 1 x %s, got %llu (total %llu)", cases[i].line,
                     exp_statsd_reason_name(cases[i].reason),
                     (unsigned long long)st.errors[cases[i].reason],
                     (unsigned long long)err_total());
    }
}

static void test_bounded_storage(void **state) {
    (void)state;
    exp_statsd_event ev2[2];
    exp_statsd_label lab2[2];
    char sc[4];
    exp_statsd_out small = {ev2, 2, lab2, 2, sc, sizeof sc};

    /* events */
    const char *l = "foo:1|c:2|c:3|c:4|c";
    assert_int_equal(parse_fo(NULL, &small, l, strlen(l)), 2);
    only_error(EXP_STATSD_ERR_TOO_MANY_SAMPLES, 2);
    assert_true(ev2[1].value == 2);
    l = "foo:1:2:3|ms";
    assert_int_equal(parse_fo(NULL, &small, l, strlen(l)), 2);
    only_error(EXP_STATSD_ERR_TOO_MANY_SAMPLES, 1);

    /* labels: DogStatsD overflow drops the sample, name tag overflow the line */
    l = "foo:1|c|#a:1,b:2,a:3";
    assert_int_equal(parse_fo(NULL, &small, l, strlen(l)), 1);
    assert_int_equal(ev2[0].nlabels, 2);
    assert_true(str_is(ev2[0].labels[0].value, "3"));
    l = "foo:1|c|#a:1,b:2,c:3";
    assert_int_equal(parse_fo(NULL, &small, l, strlen(l)), 0);
    only_error(EXP_STATSD_ERR_TOO_MANY_TAGS, 1);
    l = "foo:1|c|#a:1,b:2|c:x";
    assert_int_equal(parse_fo(NULL, &small, l, strlen(l)), 0);
    only_error(EXP_STATSD_ERR_TOO_MANY_TAGS, 1);
    l = "foo,a=1,b=2,c=3:1|c:2|c";
    assert_int_equal(parse_fo(NULL, &small, l, strlen(l)), 0);
    only_error(EXP_STATSD_ERR_TOO_MANY_TAGS, 1);
    assert_int_equal(st.samples, 0);

    /* scratch: escaped keys and joined SignalFx names */
    l = "foo:1|c|#a.b:1";
    assert_int_equal(parse_fo(NULL, &small, l, strlen(l)), 1);
    assert_true(str_is(ev2[0].labels[0].name, "a_b"));
    l = "foo:1|c|#a.bcd:1";
    assert_int_equal(parse_fo(NULL, &small, l, strlen(l)), 0);
    only_error(EXP_STATSD_ERR_OUT_OF_SPACE, 1);
    l = "ab[x=y]cd:1|c";
    assert_int_equal(parse_fo(NULL, &small, l, strlen(l)), 1);
    assert_true(str_is(ev2[0].name, "abcd"));
    l = "ab[x=y]cde:1|c";
    assert_int_equal(parse_fo(NULL, &small, l, strlen(l)), 0);
    only_error(EXP_STATSD_ERR_OUT_OF_SPACE, 1);

    /* no storage at all */
    exp_statsd_out none = {NULL, 0, NULL, 0, NULL, 0};
    l = "foo:1|c";
    assert_int_equal(parse_fo(NULL, &none, l, strlen(l)), 0);
    only_error(EXP_STATSD_ERR_TOO_MANY_SAMPLES, 1);
    l = "foo:1|c|#a:b";
    assert_int_equal(parse_fo(NULL, &none, l, strlen(l)), 0);
    only_error(EXP_STATSD_ERR_TOO_MANY_TAGS, 1);
}

static void test_many_tags(void **state) {
    (void)state;
    char *p;
    /* 1000 distinct DogStatsD tags: refused */
    p = big + sprintf(big, "foo:1|c|#");
    for (int i = 0; i < 1000; i++)
        p += sprintf(p, "%st%d:v", i ? "," : "", i);
    assert_int_equal(parse(big), 0);
    only_error(EXP_STATSD_ERR_TOO_MANY_TAGS, 1);
    /* exactly the limit: fine */
    p = big + sprintf(big, "foo:1|c|#");
    for (int i = 0; i < EXP_STATSD_MAX_TAGS_DEFAULT; i++)
        p += sprintf(p, "%st.%d:v%d", i ? "," : "", i, i);
    assert_int_equal(parse(big), 1);
    assert_int_equal(evs[0].nlabels, EXP_STATSD_MAX_TAGS_DEFAULT);
    assert_string_equal(label_of(0, "t_63"), "v63");
    /* 1000 copies of one tag: one label */
    p = big + sprintf(big, "foo:1|c|#");
    for (int i = 0; i < 1000; i++)
        p += sprintf(p, "%sk.k:%d", i ? "," : "", i);
    assert_int_equal(parse(big), 1);
    check_labels(0, 1, "k_k", "999");
    /* 1000 InfluxDB tags */
    p = big + sprintf(big, "foo");
    for (int i = 0; i < 1000; i++)
        p += sprintf(p, ",t%d=v", i);
    sprintf(p, ":1|c");
    assert_int_equal(parse(big), 0);
    only_error(EXP_STATSD_ERR_TOO_MANY_TAGS, 1);
    /* 1000 tags, all malformed */
    p = big + sprintf(big, "foo:1|c|#");
    for (int i = 0; i < 1000; i++)
        p += sprintf(p, "%sbare%d", i ? "," : "", i);
    assert_int_equal(parse(big), 1);
    assert_int_equal(st.tag_errors, 1000);
}

static void test_hostile(void **state) {
    (void)state;
    /* nothing at all: silently nothing */
    assert_int_equal(parse(""), 0);
    no_errors();
    assert_int_equal(st.samples, 0);

    static const error_case cases[] = {
        {":", EXP_STATSD_ERR_MALFORMED_LINE},
        {"|", EXP_STATSD_ERR_MALFORMED_LINE},
        {"::", EXP_STATSD_ERR_MALFORMED_LINE},
        {"||", EXP_STATSD_ERR_MALFORMED_LINE},
        {":|", EXP_STATSD_ERR_MALFORMED_LINE},
        {"@#[],=", EXP_STATSD_ERR_MALFORMED_LINE},
        {"a:", EXP_STATSD_ERR_NOT_ENOUGH_PARTS},
        {"a::", EXP_STATSD_ERR_NOT_ENOUGH_PARTS},
        {"a:|", EXP_STATSD_ERR_MALFORMED_VALUE},
        {"a:||", EXP_STATSD_ERR_MALFORMED_VALUE},
        {"a:1||", EXP_STATSD_ERR_MALFORMED_COMPONENT},
        {"a:1:|", EXP_STATSD_ERR_INVALID_EXTENDED_AGG},
        {"a:1|c|#|", EXP_STATSD_ERR_MALFORMED_COMPONENT},
        {"a:1|c|@|", EXP_STATSD_ERR_MALFORMED_COMPONENT},
        {"[:1|c", EXP_STATSD_ERR_COUNT}, /* name "[" with a tag error, accepted */
        {"\xff:1|c", EXP_STATSD_ERR_MALFORMED_LINE},
        {"\xc0\xaf:1|c", EXP_STATSD_ERR_MALFORMED_LINE},         /* overlong '/' */
        {"\xed\xa0\x80:1|c", EXP_STATSD_ERR_MALFORMED_LINE},     /* surrogate */
        {"\xf4\x90\x80\x80:1|c", EXP_STATSD_ERR_MALFORMED_LINE}, /* above U+10FFFF */
        {"a:1|c\xe2\x82", EXP_STATSD_ERR_MALFORMED_LINE},        /* truncated */
        {"a:1|c|#k:\x80", EXP_STATSD_ERR_MALFORMED_LINE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = parse(cases[i].line);
        if (cases[i].reason == EXP_STATSD_ERR_COUNT) {
            assert_int_equal(n, 1);
            no_errors();
            continue;
        }
        if (n != 0 || st.errors[cases[i].reason] != 1 || err_total() != 1)
            fail_msg("'%s': want only %s", cases[i].line, exp_statsd_reason_name(cases[i].reason));
    }

    /* NUL bytes are valid UTF-8: kept in names and values, refused as a type */
    static const char nul_name[] = "fo\0o:1|c";
    assert_int_equal(parse_fo(NULL, &out, nul_name, sizeof nul_name - 1), 1);
    assert_int_equal(evs[0].name.len, 4);
    assert_memory_equal(evs[0].name.ptr, "fo\0o", 4);
    static const char nul_value[] = "a:1|c|#k:\0v";
    assert_int_equal(parse_fo(NULL, &out, nul_value, sizeof nul_value - 1), 1);
    assert_int_equal(evs[0].labels[0].value.len, 2);
    static const char nul_type[] = "a:1|c\0";
    assert_int_equal(parse_fo(NULL, &out, nul_type, sizeof nul_type - 1), 0);
    only_error(EXP_STATSD_ERR_ILLEGAL_EVENT, 1);
    static const char nul_only[] = "\0\0\0";
    assert_int_equal(parse_fo(NULL, &out, nul_only, 3), 0);
    only_error(EXP_STATSD_ERR_MALFORMED_LINE, 1);
    /* a 4-byte rune in a name and in a key */
    assert_int_equal(parse("\xf0\x9f\x98\x80:1|c|#\xf0\x9f\x98\x80x:y"), 1);
    check_event(0, EXP_STATSD_COUNTER, "\xf0\x9f\x98\x80", 1, 1);
    check_labels(0, 1, "_x", "y");

    /* 64 KiB lines */
    memset(big, 'a', 65530);
    memcpy(big + 65530, ":1|c", 5);
    assert_int_equal(parse(big), 1);
    assert_int_equal(evs[0].name.len, 65530);
    big[0] = 'a';
    memset(big + 1, ':', 65535);
    big[65536] = 0;
    assert_int_equal(parse(big), 0);
    only_error(EXP_STATSD_ERR_NOT_ENOUGH_PARTS, 1);
    memset(big, '|', 65536);
    big[65536] = 0;
    assert_int_equal(parse(big), 0);
    only_error(EXP_STATSD_ERR_MALFORMED_LINE, 1);
    memcpy(big, "a:", 2);
    assert_int_equal(parse(big), 0); /* "a:" then 65534 '|' */
    only_error(EXP_STATSD_ERR_MALFORMED_COMPONENT, 1);
    memset(big, 0, sizeof big);
    char *p = big + sprintf(big, "a:");
    for (int i = 0; i < 16000; i++)
        p += sprintf(p, "1|c:");
    sprintf(p, "2|c");
    assert_int_equal(parse(big), 16001);
    assert_int_equal(st.samples, 16001);
    check_event(16000, EXP_STATSD_COUNTER, "a", 2, 1);
    /* a long extended aggregation whose tags are parsed once and shared */
    p = big + sprintf(big, "a:");
    for (int i = 0; i < 20000; i++)
        p += sprintf(p, "%s1", i ? ":" : "");
    p += sprintf(p, "|ms|#");
    for (int i = 0; i < 60; i++)
        p += sprintf(p, "%sk.%d:v,bad%d", i ? "," : "", i, i);
    assert_int_equal(parse(big), 20000);
    assert_int_equal(st.samples, 20000);
    assert_int_equal(st.tags, 20000);
    assert_int_equal(st.tag_errors, 20000 * 60);
    assert_int_equal(evs[19999].nlabels, 60);
    assert_string_equal(label_of(19999, "k_0"), "v");
    assert_string_equal(label_of(19999, "k_59"), "v");
    check_event(19999, EXP_STATSD_OBSERVER, "a", 0.001, 1);
    no_errors();
}

/* Labels are valid label names and every range lies in the line or the scratch buffer. */
static int in_range(exp_statsd_str s, const char *line, size_t len, const exp_statsd_out *o) {
    if (s.len == 0)
        return 0;
    if (s.ptr >= line && s.ptr + s.len <= line + len)
        return 1;
    if (o->scratch && s.ptr >= o->scratch && s.ptr + s.len <= o->scratch + o->scratch_cap)
        return 1;
    return s.len == 12 && memcmp(s.ptr, "container_id", 12) == 0;
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void) {
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static void check_invariants(const char *line, size_t len, const exp_statsd_out *o) {
    assert_true(nev <= o->events_cap);
    for (size_t i = 0; i < nev; i++) {
        const exp_statsd_event *e = &o->events[i];
        assert_true(in_range(e->name, line, len, o));
        assert_true(e->kind <= EXP_STATSD_OBSERVER);
        assert_true(e->repeat >= 1);
        if (e->kind == EXP_STATSD_COUNTER)
            assert_true(isnan(e->value) || e->value >= 0);
        assert_true(e->nlabels <= o->labels_cap);
        for (size_t k = 0; k < e->nlabels; k++) {
            exp_statsd_str n = e->labels[k].name;
            assert_true(in_range(n, line, len, o));
            assert_true(in_range(e->labels[k].value, line, len, o));
            assert_false(n.ptr[0] >= '0' && n.ptr[0] <= '9');
            for (size_t c = 0; c < n.len; c++) {
                char ch = n.ptr[c];
                assert_true((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                            (ch >= '0' && ch <= '9') || ch == '_');
            }
            for (size_t j = 0; j < k; j++)
                assert_false(e->labels[j].name.len == n.len &&
                             memcmp(e->labels[j].name.ptr, n.ptr, n.len) == 0);
        }
    }
}

static void test_random_input(void **state) {
    (void)state;
    static const char alpha[] = "ab:|#@,=[]cTgmshd.-+e019xpN_ \r\n\0\xff\xc3\xa4";
    exp_statsd_event ev8[8];
    exp_statsd_label lab4[4];
    char sc[16];
    exp_statsd_out small = {ev8, 8, lab4, 4, sc, sizeof sc};
    char line[96];
    uint64_t accepted = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = rng() % sizeof line;
        for (size_t i = 0; i < len; i++) {
            uint64_t r = rng();
            line[i] = (r & 0x100) ? (char)(r & 0xff) : alpha[(r >> 9) % (sizeof alpha - 1)];
        }
        const exp_statsd_out *o = (iter & 1) ? &small : &out;
        parse_fo(NULL, o, line, len);
        check_invariants(line, len, o);
        accepted += nev;
        exp_statsd_flags f = {rng() & 1, rng() & 1, rng() & 1, rng() & 1};
        parse_fo(&f, o, line, len);
        check_invariants(line, len, o);
    }
    /* structured noise: well-formed skeletons with random pieces and a mutated byte */
    static const char *const names[] = {"foo", "a.b", "foo,k=v", "foo#k=v,x=y", "f[k=v]o",
                                        "[",   "x]",  "a-b",     ",",           "[]"};
    static const char *const values[] = {"1",   "-2", "+3",  "1e9", "NaN", "0x1p3",
                                         "bad", "",   "1:2", "inf", "1_0"};
    static const char *const types[] = {"c", "g", "ms", "h", "d", "s", "x", ""};
    static const char *const parts[] = {"|@0.5", "|@0", "|@x", "|#a:b,c.d:e", "|#",   "|c:id", "|c",
                                        "|T1",   "|T",  "||",  "|#k",         ":2|c", ":1|g"};
#define PICK(a) a[rng() % (sizeof a / sizeof a[0])]
    for (int iter = 0; iter < 200000; iter++) {
        int len = snprintf(line, sizeof line, "%s:%s|%s", PICK(names), PICK(values), PICK(types));
        for (uint64_t k = rng() % 4; k > 0; k--)
            len += snprintf(line + len, sizeof line - (size_t)len, "%s", PICK(parts));
        if (len > (int)sizeof line - 1)
            len = (int)sizeof line - 1;
        if (rng() % 4 == 0)
            line[rng() % (uint64_t)len] = alpha[rng() % (sizeof alpha - 1)];
        const exp_statsd_out *o = (iter & 1) ? &small : &out;
        parse_fo(NULL, o, line, (size_t)len);
        check_invariants(line, (size_t)len, o);
        accepted += nev;
    }
#undef PICK
    print_message("random lines gave %llu events\n", (unsigned long long)accepted);
    assert_true(accepted > 1000); /* the noise did hit the happy paths too */
}

/* ---- splitters -------------------------------------------------------------------------- */

/* Append bytes (NUL included) to res, keeping it NUL-terminated. */
static void put(char *res, size_t *n, size_t cap, const char *p, size_t len) {
    assert_true(*n + len < cap);
    memcpy(res + *n, p, len);
    *n += len;
    res[*n] = 0;
}

static void put_line(char *res, size_t *n, size_t cap, exp_statsd_str l) {
    put(res, n, cap, "[", 1);
    put(res, n, cap, l.ptr, l.len);
    put(res, n, cap, "]", 1);
}

static void packet_lines(const char *buf, size_t len, char *res, size_t cap) {
    exp_statsd_packet it;
    exp_statsd_str l;
    size_t n = 0;
    res[0] = 0;
    exp_statsd_packet_init(&it, buf, len);
    while (exp_statsd_packet_next(&it, &l))
        put_line(res, &n, cap, l);
}

static void test_packet_split(void **state) {
    (void)state;
    char res[256];
    packet_lines("a:1|c\nb:2|c", 11, res, sizeof res);
    assert_string_equal(res, "[a:1|c][b:2|c]");
    packet_lines("a\nb\n", 4, res, sizeof res);
    assert_string_equal(res, "[a][b][]");
    packet_lines("", 0, res, sizeof res);
    assert_string_equal(res, "[]");
    packet_lines("\n\n", 2, res, sizeof res);
    assert_string_equal(res, "[][][]");
    packet_lines("a\r\nb", 4, res, sizeof res);
    assert_string_equal(res, "[a\r][b]");

    /* a packet's lines all count, whatever the neighbours */
    const char pkt[] = "foo:1|c\nbad\n\nbar:2|g:3|g\n\xff:1|c\nbaz:1|ms|@0.5";
    exp_statsd_packet it;
    exp_statsd_str l;
    exp_statsd_stats total = {0};
    size_t events = 0, lines = 0;
    exp_statsd_packet_init(&it, pkt, sizeof pkt - 1);
    while (exp_statsd_packet_next(&it, &l)) {
        lines++;
        events += exp_statsd_parse_line(NULL, l.ptr, l.len, &out, &total);
    }
    assert_int_equal(lines, 6);
    assert_int_equal(events, 4);
    assert_int_equal(total.errors[EXP_STATSD_ERR_MALFORMED_LINE], 2);
    assert_int_equal(total.samples, 4);
}

/* Feed `in` to a stream splitter in chunks of `chunk` bytes through a buffer of max_line + 1
 * bytes, as a TCP reader would; returns what it saw as "[line]" and "!" for TOO_LONG. */
static void stream_lines(const char *in, size_t len, size_t max_line, size_t chunk, int eof,
                         char *res, size_t cap) {
    exp_statsd_stream s;
    char buf[256];
    size_t have = 0, pos = 0, fed = 0, n = 0;
    exp_statsd_str l;
    assert_true(max_line + 1 <= sizeof buf);
    exp_statsd_stream_init(&s, max_line);
    res[0] = 0;
    for (;;) {
        exp_statsd_stream_status r = exp_statsd_stream_next(&s, buf, have, &pos, &l);
        if (r == EXP_STATSD_STREAM_LINE) {
            put_line(res, &n, cap, l);
            continue;
        }
        if (r == EXP_STATSD_STREAM_TOO_LONG) {
            put(res, &n, cap, "!", 1);
            continue;
        }
        memmove(buf, buf + pos, have - pos);
        have -= pos;
        pos = 0;
        if (fed == len)
            break;
        size_t room = max_line + 1 - have, take = chunk < room ? chunk : room;
        if (take > len - fed)
            take = len - fed;
        assert_true(take > 0); /* the buffer never fills up without a line or TOO_LONG */
        memcpy(buf + have, in + fed, take);
        have += take;
        fed += take;
    }
    if (eof) {
        exp_statsd_stream_status r = exp_statsd_stream_finish(&s, buf, have, &pos, &l);
        if (r == EXP_STATSD_STREAM_LINE) {
            put_line(res, &n, cap, l);
            put(res, &n, cap, "<eof>", 5);
        } else if (r == EXP_STATSD_STREAM_TOO_LONG) {
            put(res, &n, cap, "!<eof>", 6);
        }
        assert_int_equal(pos, have);
    }
}

static void test_stream_split(void **state) {
    (void)state;
    char res[1024];
    const char *in = "foo:1|c\nbar:2|c\r\n\r\nbaz:3|c\n";
    for (size_t chunk = 1; chunk <= 30; chunk++) {
        stream_lines(in, strlen(in), 16, chunk, 1, res, sizeof res);
        assert_string_equal(res, "[foo:1|c][bar:2|c][][baz:3|c]");
    }
    /* exactly max_line bytes is fine, with or without '\r' counted */
    in = "12345678\n1234567\r\n";
    stream_lines(in, strlen(in), 8, 4, 1, res, sizeof res);
    assert_string_equal(res, "[12345678][1234567]");
    /* one over: dropped once, the next line still arrives */
    for (size_t chunk = 1; chunk <= 20; chunk++) {
        in = "123456789\nok\n1234567890123456789012345\nok2\n12345678\r\nx";
        stream_lines(in, strlen(in), 8, chunk, 1, res, sizeof res);
        assert_string_equal(res, "![ok]![ok2]![x]<eof>");
    }
    /* partial line at end of stream: a last line, kept as is */
    in = "a:1|c\nb:2|c\r";
    stream_lines(in, strlen(in), 16, 3, 1, res, sizeof res);
    assert_string_equal(res, "[a:1|c][b:2|c\r]<eof>");
    stream_lines(in, strlen(in), 16, 3, 0, res, sizeof res);
    assert_string_equal(res, "[a:1|c]");
    /* ends while discarding an over-long line: nothing more */
    in = "ok\n0123456789abcdef";
    stream_lines(in, strlen(in), 8, 5, 1, res, sizeof res);
    assert_string_equal(res, "[ok]!");
    /* NUL and binary bytes pass through untouched */
    static const char bin[] = "a\0b\n\xff\xfe\n";
    stream_lines(bin, sizeof bin - 1, 8, 2, 1, res, sizeof res);
    assert_int_equal(memcmp(res, "[a\0b][\xff\xfe]", 10), 0);

    /* random inputs: every chunk size gives what one big read gives */
    static const char alpha[] = "ab\r\n:|";
    char input[300], want[2048];
    for (int iter = 0; iter < 300; iter++) {
        size_t len = rng() % sizeof input;
        for (size_t i = 0; i < len; i++)
            input[i] = alpha[rng() % (sizeof alpha - 1)];
        stream_lines(input, len, 12, 13, 1, want, sizeof want);
        for (size_t chunk = 1; chunk <= 13; chunk += 3) {
            stream_lines(input, len, 12, chunk, 1, res, sizeof res);
            assert_string_equal(res, want);
        }
    }

    /* direct API details */
    exp_statsd_stream s;
    exp_statsd_str l;
    size_t pos = 0;
    exp_statsd_stream_init(&s, 0);
    assert_int_equal(s.max_line, EXP_STATSD_MAX_LINE_DEFAULT);
    assert_int_equal(exp_statsd_stream_next(&s, "abc", 3, &pos, &l), EXP_STATSD_STREAM_NEED_MORE);
    assert_int_equal(pos, 0);
    assert_int_equal(exp_statsd_stream_next(&s, "abc", 3, &pos, &l), EXP_STATSD_STREAM_NEED_MORE);
    assert_int_equal(exp_statsd_stream_next(&s, "abc\nd", 5, &pos, &l), EXP_STATSD_STREAM_LINE);
    assert_true(l.len == 3 && memcmp(l.ptr, "abc", 3) == 0);
    assert_int_equal(pos, 4);
    assert_int_equal(exp_statsd_stream_finish(&s, "abc\nd", 5, &pos, &l), EXP_STATSD_STREAM_LINE);
    assert_true(l.len == 1 && l.ptr[0] == 'd');
    assert_int_equal(exp_statsd_stream_finish(&s, "abc\nd", 5, &pos, &l),
                     EXP_STATSD_STREAM_NEED_MORE);

    /* a TCP line over 64 KiB with the default limit */
    exp_statsd_stream_init(&s, 0);
    memset(big, 'a', 65537);
    big[65537] = '\n';
    memcpy(big + 65538, "x:1|c\n", 6);
    pos = 0;
    assert_int_equal(exp_statsd_stream_next(&s, big, 65544, &pos, &l), EXP_STATSD_STREAM_TOO_LONG);
    assert_int_equal(exp_statsd_stream_next(&s, big, 65544, &pos, &l), EXP_STATSD_STREAM_LINE);
    assert_true(l.len == 5);
    assert_int_equal(exp_statsd_stream_next(&s, big, 65544, &pos, &l), EXP_STATSD_STREAM_NEED_MORE);
    assert_int_equal(pos, 65544);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_names),    cmocka_unit_test(test_decimal_fast_path),
        cmocka_unit_test(test_simple_types),    cmocka_unit_test(test_gauges),
        cmocka_unit_test(test_counter_rates),   cmocka_unit_test(test_observer_rates),
        cmocka_unit_test(test_multi_sample),    cmocka_unit_test(test_extended_aggregation),
        cmocka_unit_test(test_influx_librato),  cmocka_unit_test(test_signalfx),
        cmocka_unit_test(test_escaping),        cmocka_unit_test(test_dogstatsd),
        cmocka_unit_test(test_mixed_styles),    cmocka_unit_test(test_container_and_timestamp),
        cmocka_unit_test(test_unknown_fields),  cmocka_unit_test(test_flags),
        cmocka_unit_test(test_value_syntax),    cmocka_unit_test(test_long_numbers),
        cmocka_unit_test(test_special_values),  cmocka_unit_test(test_error_reasons),
        cmocka_unit_test(test_bounded_storage), cmocka_unit_test(test_many_tags),
        cmocka_unit_test(test_hostile),         cmocka_unit_test(test_random_input),
        cmocka_unit_test(test_packet_split),    cmocka_unit_test(test_stream_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
