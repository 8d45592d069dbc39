/* test_protoparse.c - unit tests of the delimited protobuf parser of pushed bodies
 * (exporter/push/protoparse.c): bodies encoded by hand (a small encoder below) for every
 * metric type, labels, help, the Pushgateway's rules (type consistency, the added +Inf bucket,
 * a later family replacing an earlier one, families without metrics left out), unknown fields
 * of every wire type, and hostile input: every truncation of a valid body, huge lengths, bad
 * wire types, invalid UTF-8, overlong varints, limits. Also exp_proto_content_type against
 * the decisions of Go's mime.ParseMediaType. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push/protoparse.h"

/* ---- a protobuf encoder --------------------------------------------------------------------- */

typedef struct {
    size_t n;
    unsigned char b[16384];
} pb;

static void raw(pb *m, const void *s, size_t n) {
    assert_true(m->n + n <= sizeof m->b);
    memcpy(m->b + m->n, s, n);
    m->n += n;
}

static void varint(pb *m, uint64_t v) {
    do {
        unsigned char c = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v)
            c |= 0x80;
        raw(m, &c, 1);
    } while (v);
}

static void tag(pb *m, unsigned num, unsigned wt) {
    varint(m, (uint64_t)num << 3 | wt);
}

static void f_varint(pb *m, unsigned num, uint64_t v) {
    tag(m, num, 0);
    varint(m, v);
}

static void f_double(pb *m, unsigned num, double d) {
    uint64_t v;
    memcpy(&v, &d, 8);
    tag(m, num, 1);
    for (int i = 0; i < 8; i++) {
        unsigned char c = (unsigned char)(v >> (8 * i));
        raw(m, &c, 1);
    }
}

static void f_bytes(pb *m, unsigned num, const void *s, size_t n) {
    tag(m, num, 2);
    varint(m, n);
    raw(m, s, n);
}

static void f_str(pb *m, unsigned num, const char *s) {
    f_bytes(m, num, s, strlen(s));
}

static void f_msg(pb *m, unsigned num, const pb *sub) {
    f_bytes(m, num, sub->b, sub->n);
}

/* Appends family message f to body, length-prefixed. */
static void delimited(pb *body, const pb *f) {
    varint(body, f->n);
    raw(body, f->b, f->n);
}

static void label(pb *metric, const char *name, const char *value) {
    pb l = {0};
    f_str(&l, 1, name);
    f_str(&l, 2, value);
    f_msg(metric, 1, &l);
}

/* A metric message with one value message (Gauge 2, Counter 3, Untyped 5) of value v. */
static void value_metric(pb *metric, unsigned kind, double v) {
    pb g = {0};
    f_double(&g, 1, v);
    f_msg(metric, kind, &g);
}

/* A family message: name, help (NULL: none), type (-1: none) and the metrics given. */
static void family(pb *f, const char *name, const char *help, int type, const pb *metrics,
                   size_t n) {
    memset(f, 0, sizeof *f);
    if (name)
        f_str(f, 1, name);
    if (help)
        f_str(f, 2, help);
    if (type >= 0)
        f_varint(f, 3, (uint64_t)type);
    for (size_t i = 0; i < n; i++)
        f_msg(f, 4, &metrics[i]);
}

/* ---- parsing helpers ------------------------------------------------------------------------ */

static exp_text_result res;
static char err[1024];

/* Parses a heap copy of exactly n bytes (so ASan sees a read past the end). */
static int parse_n(const void *s, size_t n, const exp_text_limits *lim) {
    exp_text_free(&res);
    memset(err, 'x', sizeof err);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, s, n);
    int rc = exp_proto_parse(copy, n, lim, &res, err, sizeof err);
    free(copy);
    return rc;
}

static void ok(const pb *body) {
    int rc = parse_n(body->b, body->n, NULL);
    if (rc != 0)
        fail_msg("parse failed (%d): %s", rc, err);
    assert_string_equal(err, "");
}

/* Parses body, which must fail with a message containing want. */
static void bad_lim(const pb *body, const exp_text_limits *lim, const char *want) {
    int rc = parse_n(body->b, body->n, lim);
    if (rc != -1)
        fail_msg("rc %d, want -1 (%s)", rc, want);
    if (strncmp(err, "protobuf format parsing error in metric family ", 47) != 0 ||
        !strstr(err, want))
        fail_msg("got: %s\nwant: ...%s...", err, want);
    assert_null(res.families);
    assert_int_equal(res.nfamilies, 0);
    assert_null(res.arena);
}

static void bad(const pb *body, const char *want) {
    bad_lim(body, NULL, want);
}

/* Parses body, which decodes but must be refused as the Pushgateway's consistency check
 * refuses it (-3, a message without the parsing-error prefix, containing want). */
static void inconsistent(const pb *body, const char *want) {
    int rc = parse_n(body->b, body->n, NULL);
    if (rc != -3)
        fail_msg("rc %d, want -3 (%s)", rc, want);
    if (!strstr(err, want) || strstr(err, "parsing error"))
        fail_msg("got: %s\nwant: ...%s...", err, want);
    assert_null(res.families);
    assert_int_equal(res.nfamilies, 0);
}

/* A body of the one family (name, type, metrics). */
static void one_family(pb *body, const char *name, int type, const pb *metrics, size_t n) {
    pb f;
    memset(body, 0, sizeof *body);
    family(&f, name, NULL, type, metrics, n);
    delimited(body, &f);
}

static int free_res(void **state) {
    (void)state;
    exp_text_free(&res);
    return 0;
}

static void check_label(const exp_text_metric *m, size_t i, const char *name, const char *value) {
    assert_true(i < m->nlabels);
    assert_string_equal(m->labels[i].name, name);
    assert_string_equal(m->labels[i].value, value);
}

/* ---- every type ----------------------------------------------------------------------------- */

static void test_counter_gauge_untyped(void **state) {
    (void)state;
    pb body = {0}, f, m[2] = {{0}, {0}};
    label(&m[0], "code", "200");
    label(&m[0], "path", "/a\n\"b\"");
    value_metric(&m[0], 3, 42.5);
    value_metric(&m[1], 3, 1);
    family(&f, "http_requests_total", "Requests served.", 0, m, 2);
    delimited(&body, &f);
    memset(m, 0, sizeof m);
    value_metric(&m[0], 2, -3.25);
    family(&f, "temperature", "", 1, m, 1);
    delimited(&body, &f);
    memset(m, 0, sizeof m);
    value_metric(&m[0], 5, NAN);
    family(&f, "untyped_thing", NULL, 3, m, 1);
    delimited(&body, &f);
    ok(&body);
    assert_int_equal(res.nfamilies, 3);
    const exp_text_family *c = &res.families[0], *g = &res.families[1], *u = &res.families[2];
    assert_string_equal(c->name, "http_requests_total");
    assert_string_equal(c->help, "Requests served.");
    assert_int_equal(c->type, REG_COUNTER);
    assert_int_equal(c->nmetrics, 2);
    check_label(&c->metrics[0], 0, "code", "200");
    check_label(&c->metrics[0], 1, "path", "/a\n\"b\"");
    assert_true(c->metrics[0].value == 42.5);
    assert_int_equal(c->metrics[0].line, 1);
    assert_int_equal(c->metrics[1].nlabels, 0);
    assert_int_equal(c->metrics[0].has_timestamp, 0);
    assert_string_equal(g->name, "temperature");
    assert_null(g->help); /* empty help: none */
    assert_int_equal(g->type, REG_GAUGE);
    assert_true(g->metrics[0].value == -3.25);
    assert_int_equal(g->metrics[0].line, 2);
    assert_int_equal(u->type, REG_UNTYPED);
    assert_true(isnan(u->metrics[0].value));
    assert_int_equal(u->metrics[0].line, 3);
}

static void test_histogram(void **state) {
    (void)state;
    pb body, m = {0}, h = {0}, b = {0};
    f_varint(&h, 1, 10);
    f_double(&h, 2, 17.5);
    f_varint(&b, 1, 3);
    f_double(&b, 2, 0.5);
    f_msg(&h, 3, &b);
    memset(&b, 0, sizeof b);
    f_varint(&b, 1, 7);
    f_double(&b, 2, 1);
    f_msg(&h, 3, &b);
    label(&m, "job_kind", "batch");
    f_msg(&m, 7, &h);
    one_family(&body, "latency_seconds", 4, &m, 1);
    ok(&body);
    const exp_text_metric *x = &res.families[0].metrics[0];
    assert_int_equal(res.families[0].type, REG_HISTOGRAM);
    assert_int_equal(x->nbuckets, 3); /* +Inf added with the sample count, as Go's writer does */
    assert_true(x->bounds[0] == 0.5 && x->counts[0] == 3);
    assert_true(x->bounds[1] == 1 && x->counts[1] == 7);
    assert_true(isinf(x->bounds[2]) && x->bounds[2] > 0 && x->counts[2] == 10);
    assert_true(x->sum == 17.5 && x->count == 10 && x->has_sum && x->has_count);
    check_label(x, 0, "job_kind", "batch");

    /* An explicit +Inf bucket is kept and none is added; float counts override when > 0. */
    memset(&b, 0, sizeof b);
    f_varint(&b, 1, 9);
    f_double(&b, 4, 9.5);
    f_double(&b, 2, INFINITY);
    f_msg(&h, 3, &b);
    f_double(&h, 4, 12.25);
    memset(&m, 0, sizeof m);
    f_msg(&m, 7, &h);
    one_family(&body, "latency_seconds", 4, &m, 1);
    ok(&body);
    x = &res.families[0].metrics[0];
    assert_int_equal(x->nbuckets, 3);
    assert_true(isinf(x->bounds[2]) && x->counts[2] == 9.5);
    assert_true(x->count == 12.25);

    /* A histogram with nothing: only the +Inf bucket, 0. */
    memset(&m, 0, sizeof m);
    memset(&h, 0, sizeof h);
    f_msg(&m, 7, &h);
    one_family(&body, "empty_histogram", 4, &m, 1);
    ok(&body);
    x = &res.families[0].metrics[0];
    assert_int_equal(x->nbuckets, 1);
    assert_true(isinf(x->bounds[0]) && x->counts[0] == 0 && x->count == 0 && x->sum == 0);
}

static void test_native_histogram_fields_skipped(void **state) {
    (void)state;
    pb body, m = {0}, h = {0}, span = {0}, ex = {0};
    f_varint(&h, 1, 4);
    f_double(&h, 2, 2);
    f_varint(&h, 5, 6);      /* schema (sint32 3) */
    f_double(&h, 6, 1e-128); /* zero_threshold */
    f_varint(&h, 7, 1);      /* zero_count */
    f_double(&h, 8, 0);      /* zero_count_float */
    f_varint(&span, 1, 0);
    f_varint(&span, 2, 2);
    f_msg(&h, 12, &span);           /* positive_span */
    f_bytes(&h, 13, "\x02\x02", 2); /* positive_delta, packed */
    f_varint(&h, 10, 3);            /* negative_delta, unpacked */
    f_double(&h, 11, 1);            /* negative_count */
    label(&ex, "trace_id", "abc");
    f_double(&ex, 2, 1.5);
    f_msg(&h, 16, &ex); /* exemplars */
    f_msg(&m, 7, &h);
    one_family(&body, "native", 4, &m, 1);
    ok(&body);
    const exp_text_metric *x = &res.families[0].metrics[0];
    assert_int_equal(x->nbuckets, 1);
    assert_true(isinf(x->bounds[0]) && x->counts[0] == 4 && x->count == 4 && x->sum == 2);
}

static void test_summary(void **state) {
    (void)state;
    pb body, m = {0}, s = {0}, q = {0};
    f_varint(&s, 1, 5);
    f_double(&s, 2, 9.75);
    f_double(&q, 1, 0.99);
    f_double(&q, 2, 3.5);
    f_msg(&s, 3, &q);
    memset(&q, 0, sizeof q);
    f_double(&q, 2, 1.25); /* value before quantile: field order is free */
    f_double(&q, 1, 0.5);
    f_msg(&s, 3, &q);
    label(&m, "a", "b");
    f_msg(&m, 4, &s);
    one_family(&body, "rpc_seconds", 2, &m, 1);
    ok(&body);
    const exp_text_metric *x = &res.families[0].metrics[0];
    assert_int_equal(res.families[0].type, REG_SUMMARY);
    assert_int_equal(x->nquantiles, 2);
    assert_true(x->quantiles[0] == 0.99 && x->qvalues[0] == 3.5);
    assert_true(x->quantiles[1] == 0.5 && x->qvalues[1] == 1.25);
    assert_true(x->sum == 9.75 && x->count == 5 && x->has_sum && x->has_count);
    assert_int_equal(x->nbuckets, 0);
}

static void test_timestamp_and_merge(void **state) {
    (void)state;
    pb body, m = {0}, f;
    value_metric(&m, 2, 1);
    f_varint(&m, 6, 0);     /* a timestamp of 0 is still a timestamp */
    value_metric(&m, 2, 2); /* a second Gauge message merges: the last value wins */
    /* name given twice: the last wins; type after the metrics */
    memset(&f, 0, sizeof f);
    f_str(&f, 1, "first_name");
    f_msg(&f, 4, &m);
    f_str(&f, 1, "g");
    f_varint(&f, 3, 1);
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    ok(&body);
    assert_string_equal(res.families[0].name, "g");
    assert_int_equal(res.families[0].type, REG_GAUGE);
    assert_true(res.families[0].metrics[0].value == 2);
    assert_int_equal(res.families[0].metrics[0].has_timestamp, 1);
    assert_int_equal(res.families[0].metrics[0].timestamp_ms, 0);
    memset(&m, 0, sizeof m);
    value_metric(&m, 2, 1);
    f_varint(&m, 6, (uint64_t)-5); /* int64 -5 as a 10-byte varint */
    one_family(&body, "g", 1, &m, 1);
    ok(&body);
    assert_int_equal(res.families[0].metrics[0].timestamp_ms, -5);
}

/* ---- the Pushgateway's rules ------------------------------------------------------------------
 */

static void test_type_mismatch(void **state) {
    (void)state;
    pb body, m = {0};
    value_metric(&m, 3, 1); /* a Counter in a GAUGE family */
    one_family(&body, "g", 1, &m, 1);
    inconsistent(&body, "collected metric 1 of \"g\" is not a GAUGE");
    memset(&m, 0, sizeof m);
    value_metric(&m, 2, 1); /* no type: COUNTER */
    one_family(&body, "c", -1, &m, 1);
    inconsistent(&body, "is not a COUNTER");
    one_family(&body, "h", 4, &m, 1);
    inconsistent(&body, "is not a HISTOGRAM");
    one_family(&body, "s", 2, &m, 1);
    inconsistent(&body, "is not a SUMMARY");
    one_family(&body, "u", 3, &m, 1);
    inconsistent(&body, "is not a UNTYPED");
    /* extra value messages are ignored */
    value_metric(&m, 5, 7);
    one_family(&body, "u", 3, &m, 1);
    ok(&body);
    assert_true(res.families[0].metrics[0].value == 7);
    one_family(&body, "gh", 5, &m, 1);
    bad(&body, "gh: unsupported metric type GAUGE_HISTOGRAM");
    one_family(&body, "x", 6, &m, 1);
    bad(&body, "x: unknown metric type 6");
}

static void test_families_replaced_and_empty(void **state) {
    (void)state;
    pb body = {0}, f, m[2] = {{0}, {0}};
    value_metric(&m[0], 2, 1);
    value_metric(&m[1], 2, 2);
    family(&f, "a", NULL, 1, m, 2);
    delimited(&body, &f);
    family(&f, "b", "help b", 1, m, 1);
    delimited(&body, &f);
    family(&f, "empty", NULL, 1, NULL, 0);
    delimited(&body, &f);
    family(&f, "a", "second a", 1, &m[1], 1); /* replaces the first a, in its place */
    delimited(&body, &f);
    delimited(&body, &(pb){0}); /* a family message of 0 bytes: no metrics, left out */
    ok(&body);
    assert_int_equal(res.nfamilies, 2);
    assert_string_equal(res.families[0].name, "a");
    assert_string_equal(res.families[0].help, "second a");
    assert_int_equal(res.families[0].nmetrics, 1);
    assert_true(res.families[0].metrics[0].value == 2);
    assert_int_equal(res.families[0].metrics[0].line, 4);
    assert_string_equal(res.families[1].name, "b");
    /* a later family without metrics removes an earlier one */
    family(&f, "b", NULL, 1, NULL, 0);
    delimited(&body, &f);
    ok(&body);
    assert_int_equal(res.nfamilies, 1);
    assert_string_equal(res.families[0].name, "a");
    /* a body of nothing */
    ok(&(pb){0});
    assert_int_equal(res.nfamilies, 0);
    assert_null(res.families);
}

static void test_names_and_labels(void **state) {
    (void)state;
    pb body, m = {0};
    value_metric(&m, 2, 1);
    one_family(&body, "1bad", 1, &m, 1);
    bad(&body, "invalid metric name \"1bad\"");
    one_family(&body, "", 1, &m, 1);
    bad(&body, "invalid metric name");
    one_family(&body, NULL, 1, &m, 1);
    bad(&body, "invalid metric name");
    one_family(&body, "a\xff", 1, &m, 1);
    bad(&body, "invalid metric name");

    static const struct {
        const char *name, *value;
        int type;
        const char *want;
    } cases[] = {
        {"bad-name", "x", 1, "invalid label name \"bad-name\""},
        {"", "x", 1, "invalid label name"},
        {"__reserved", "x", 1, "label name \"__reserved\" is reserved"},
        {"le", "x", 4, "label name \"le\" is reserved"},
        {"quantile", "x", 2, "label name \"quantile\" is reserved"},
        {"ok", "\xff", 1, "label ok: value is not valid UTF-8"},
        {"ok", "\xed\xa0\x80", 1, "label ok: value is not valid UTF-8"}, /* a surrogate */
        {"ok", "\xc0\xaf", 1, "label ok: value is not valid UTF-8"},     /* overlong */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pb mm = {0}, h = {0};
        label(&mm, cases[i].name, cases[i].value);
        if (cases[i].type == 1)
            value_metric(&mm, 2, 1);
        else
            f_msg(&mm, cases[i].type == 4 ? 7 : 4, &h);
        one_family(&body, "fam", cases[i].type, &mm, 1);
        inconsistent(&body, cases[i].want);
    }
    /* NUL in a label value; a name given twice; quantile on any metric with a Summary */
    memset(&m, 0, sizeof m);
    pb l = {0};
    f_str(&l, 1, "n");
    f_bytes(&l, 2, "a\0b", 3);
    f_msg(&m, 1, &l);
    value_metric(&m, 2, 1);
    one_family(&body, "g", 1, &m, 1);
    bad(&body, "label n: NUL byte in its value");
    memset(&m, 0, sizeof m);
    label(&m, "b", "1");
    label(&m, "a", "1");
    label(&m, "b", "2");
    value_metric(&m, 2, 1);
    one_family(&body, "g", 1, &m, 1);
    inconsistent(&body, "metric 1 of g: duplicate label name \"b\"");
    memset(&m, 0, sizeof m);
    label(&m, "quantile", "1");
    value_metric(&m, 2, 1);
    ok(&(pb){0});
    one_family(&body, "g", 1, &m, 1);
    ok(&body); /* quantile is an ordinary label of a gauge */
    f_msg(&m, 4, &(pb){0});
    one_family(&body, "g", 1, &m, 1);
    inconsistent(&body, "label name \"quantile\" is reserved");
    /* valid UTF-8 of every length */
    memset(&m, 0, sizeof m);
    label(&m, "v", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    value_metric(&m, 2, 1);
    one_family(&body, "g", 1, &m, 1);
    ok(&body);
    check_label(&res.families[0].metrics[0], 0, "v", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    /* NUL in help */
    pb f = {0};
    f_str(&f, 1, "g");
    f_bytes(&f, 2, "h\0", 2);
    f_varint(&f, 3, 1);
    f_msg(&f, 4, &m);
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    bad(&body, "g: NUL byte in its help");
}

static void test_unknown_fields(void **state) {
    (void)state;
    pb body, m = {0}, f = {0}, g = {0};
    /* unknown fields of each wire type at every level */
    pb junk = {0};
    f_varint(&junk, 99, 123456789);
    f_double(&junk, 100, 1.0);
    f_bytes(&junk, 101, "\xff\xff\xff", 3);
    tag(&junk, 102, 5);
    raw(&junk, "\x01\x02\x03\x04", 4);
    f_varint(&junk, 536870911, 1); /* the largest field number */
    raw(&g, junk.b, junk.n);
    f_double(&g, 1, 5);
    raw(&m, junk.b, junk.n);
    f_msg(&m, 2, &g);
    pb l = {0};
    raw(&l, junk.b, junk.n);
    f_str(&l, 1, "k");
    f_str(&l, 2, "v");
    f_msg(&m, 1, &l);
    raw(&f, junk.b, junk.n);
    f_str(&f, 1, "g");
    f_str(&f, 5, "seconds"); /* unit */
    f_varint(&f, 3, 1);
    f_msg(&f, 4, &m);
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    ok(&body);
    assert_true(res.families[0].metrics[0].value == 5);
    check_label(&res.families[0].metrics[0], 0, "k", "v");
    /* a non-minimal varint (0x80 0x00 is 0) is fine */
    memset(&body, 0, sizeof body);
    raw(&body, "\x80\x00", 2);
    ok(&body);
}

/* ---- hostile input -------------------------------------------------------------------------- */

/* A body of several families of every type. */
static void sample_body(pb *body, size_t *bounds, size_t *nbounds) {
    pb f, m[2] = {{0}, {0}}, h = {0}, b = {0}, s = {0}, q = {0};
    memset(body, 0, sizeof *body);
    label(&m[0], "a", "x\xc3\xa9");
    value_metric(&m[0], 3, 3);
    family(&f, "c_total", "help", 0, m, 1);
    delimited(body, &f);
    bounds[(*nbounds)++] = body->n;
    f_varint(&b, 1, 2);
    f_double(&b, 2, 0.25);
    f_msg(&h, 3, &b);
    f_varint(&h, 1, 300);
    f_double(&h, 2, 1e300);
    memset(m, 0, sizeof m);
    f_msg(&m[0], 7, &h);
    label(&m[1], "l", "v");
    f_msg(&m[1], 7, &h);
    family(&f, "h", NULL, 4, m, 2);
    delimited(body, &f);
    bounds[(*nbounds)++] = body->n;
    f_double(&q, 1, 0.5);
    f_double(&q, 2, 1);
    f_msg(&s, 3, &q);
    f_varint(&s, 1, 1);
    memset(m, 0, sizeof m);
    f_msg(&m[0], 4, &s);
    family(&f, "s", "summary help", 2, m, 1);
    delimited(body, &f);
    bounds[(*nbounds)++] = body->n;
}

static void test_every_truncation(void **state) {
    (void)state;
    pb body;
    size_t bounds[8], nb = 0;
    sample_body(&body, bounds, &nb);
    ok(&body);
    assert_int_equal(res.nfamilies, 3);
    for (size_t len = 0; len < body.n; len++) {
        int boundary = len == 0;
        for (size_t i = 0; i < nb; i++)
            boundary |= bounds[i] == len;
        int rc = parse_n(body.b, len, NULL);
        if (boundary) {
            if (rc != 0)
                fail_msg("prefix of %zu bytes (a message boundary): %s", len, err);
        } else {
            if (rc != -1)
                fail_msg("prefix of %zu bytes: rc %d", len, rc);
            assert_non_null(strstr(err, "protobuf format parsing error in metric family "));
            assert_null(res.arena);
        }
    }
}

static void test_bad_lengths_and_varints(void **state) {
    (void)state;
    pb body = {0};
    raw(&body, "\xff\xff\xff\xff\x0f", 5); /* 2^32-1 bytes, of 0 */
    bad(&body, "metric family 1 at byte 0: message length 4294967295 beyond the end of the body "
               "(0 bytes left)");
    memset(&body, 0, sizeof body);
    raw(&body, "\x80\x80\x80\x80\x80\x01", 6);
    bad(&body, "at byte 0: varint longer than 5 bytes");
    memset(&body, 0, sizeof body);
    raw(&body, "\x80", 1);
    bad(&body, "truncated varint at the end of the body");
    /* inside a message: a field length of 2^63 */
    pb f = {0};
    tag(&f, 1, 2);
    raw(&f, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 10);
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    bad(&body, "field 1: length 9223372036854775808 beyond the end of its message (0 bytes left)");
    /* an 11-byte varint, a 10-byte one over 64 bits */
    memset(&f, 0, sizeof f);
    tag(&f, 99, 0);
    raw(&f, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x00", 11);
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    bad(&body, "varint over 64 bits");
    memset(&f, 0, sizeof f);
    tag(&f, 99, 0);
    raw(&f, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10);
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    bad(&body, "varint over 64 bits");
    memset(&f, 0, sizeof f);
    tag(&f, 99, 0);
    raw(&f, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10); /* 2^64-1: fine */
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    ok(&body);
    /* a submessage longer than its parent */
    memset(&f, 0, sizeof f);
    f_str(&f, 1, "g");
    tag(&f, 4, 2);
    varint(&f, 5);
    raw(&f, "\x12\x03", 2); /* parent ends here: the metric claims 5 bytes */
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    bad(&body, "field 4: length 5 beyond the end of its message (2 bytes left)");
    /* a submessage's field running past the submessage (but not past the family) */
    pb m = {0};
    memset(&f, 0, sizeof f);
    f_str(&f, 1, "g");
    tag(&f, 4, 2);
    varint(&f, 2);
    raw(&m, "\x0a\x05", 2); /* label of 5 bytes inside a 2-byte metric */
    raw(&f, m.b, m.n);
    f_str(&f, 2, "help text");
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    bad(&body, "field 1: length 5 beyond the end of its message (0 bytes left)");
    /* truncated fixed values */
    memset(&f, 0, sizeof f);
    tag(&f, 9, 1);
    raw(&f, "\x01\x02", 2);
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    bad(&body, "field 9: truncated fixed64 value");
    memset(&f, 0, sizeof f);
    tag(&f, 9, 5);
    raw(&f, "\x01", 1);
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    bad(&body, "field 9: truncated fixed32 value");
}

static void test_bad_wire_types(void **state) {
    (void)state;
    pb body, f = {0};
    static const struct {
        unsigned num, wt;
        const char *want;
    } cases[] = {
        {1, 0, "MetricFamily.name (field 1) has wire type varint, want length-delimited"},
        {2, 5, "MetricFamily.help (field 2) has wire type fixed32, want length-delimited"},
        {3, 2, "MetricFamily.type (field 3) has wire type length-delimited, want varint"},
        {4, 1, "MetricFamily.metric (field 4) has wire type fixed64, want length-delimited"},
        {7, 3, "field 7: unsupported wire type 3 (group start)"},
        {7, 4, "field 7: unsupported wire type 4 (group end)"},
        {7, 6, "field 7: unsupported wire type 6"},
        {7, 7, "field 7: unsupported wire type 7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&f, 0, sizeof f);
        tag(&f, cases[i].num, cases[i].wt);
        raw(&f, "\x00\x00\x00\x00\x00\x00\x00\x00", 8);
        memset(&body, 0, sizeof body);
        delimited(&body, &f);
        bad(&body, cases[i].want);
    }
    /* deeper: a gauge value as a varint, a bucket bound as fixed32, a timestamp as fixed64 */
    pb m = {0}, g = {0}, h = {0}, b = {0};
    f_varint(&g, 1, 1);
    f_msg(&m, 2, &g);
    one_family(&body, "g", 1, &m, 1);
    bad(&body, "Gauge.value (field 1) has wire type varint, want fixed64");
    tag(&b, 2, 5);
    raw(&b, "\0\0\0\0", 4);
    f_msg(&h, 3, &b);
    memset(&m, 0, sizeof m);
    f_msg(&m, 7, &h);
    one_family(&body, "h", 4, &m, 1);
    bad(&body, "Bucket.upper_bound (field 2) has wire type fixed32, want fixed64");
    memset(&m, 0, sizeof m);
    f_double(&m, 6, 1);
    one_family(&body, "h", 4, &m, 1);
    bad(&body, "Metric.timestamp_ms (field 6) has wire type fixed64, want varint");
    /* field number 0 */
    memset(&f, 0, sizeof f);
    raw(&f, "\x00\x00", 2);
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    bad(&body, "metric family 1 at byte 1: invalid field number 0");
    memset(&f, 0, sizeof f);
    f_varint(&f, 536870912, 1);
    memset(&body, 0, sizeof body);
    delimited(&body, &f);
    bad(&body, "invalid field number 536870912");
}

static void test_limits(void **state) {
    (void)state;
    pb body = {0}, f, m[3] = {{0}, {0}, {0}};
    for (int i = 0; i < 3; i++) {
        label(&m[i], "a", "1");
        label(&m[i], "b", i == 0 ? "1" : "2");
        value_metric(&m[i], 2, i);
    }
    family(&f, "x", NULL, 1, m, 3);
    delimited(&body, &f);
    family(&f, "y", NULL, 1, m, 1);
    delimited(&body, &f);
    bad_lim(&body, &(exp_text_limits){.max_labels = 1}, "too many labels (max_labels 1)");
    bad_lim(&body, &(exp_text_limits){.max_metrics = 3}, "too many metrics (max_metrics 3)");
    bad_lim(&body, &(exp_text_limits){.max_families = 1},
            "metric family 2 at byte 128: too many metric families (max_families 1)");
    assert_int_equal(parse_n(body.b, body.n, &(exp_text_limits){2, 2, 4}), 0);
    /* a replaced family counts once */
    family(&f, "x", NULL, 1, m, 1);
    delimited(&body, &f);
    assert_int_equal(parse_n(body.b, body.n, &(exp_text_limits){2, 2, 2}), 0);
    assert_int_equal(res.nfamilies, 2);
}

static void test_error_buffer(void **state) {
    (void)state;
    pb body = {0};
    raw(&body, "\x80", 1);
    exp_text_result r;
    assert_int_equal(exp_proto_parse((const char *)body.b, body.n, NULL, &r, NULL, 0), -1);
    char small[12];
    assert_int_equal(exp_proto_parse((const char *)body.b, body.n, NULL, &r, small, sizeof small),
                     -1);
    assert_string_equal(small, "protobuf fo");
    assert_null(r.arena);
}

static void test_random_input(void **state) {
    (void)state;
    unsigned long long x = 88172645463325252ULL;
    unsigned char buf[512];
    pb body;
    size_t bounds[8], nb = 0;
    sample_body(&body, bounds, &nb);
    for (int round = 0; round < 20000; round++) {
        size_t n;
        if (round & 1) { /* a valid body with a few bytes changed */
            n = body.n;
            memcpy(buf, body.b, n);
            for (int k = 0; k < 3; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[x % n] = (unsigned char)(x >> 32);
            }
        } else {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            n = x % sizeof buf;
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[i] = (unsigned char)x;
            }
        }
        int rc = parse_n(buf, n, NULL);
        assert_true(rc == 0 || rc == -1 || rc == -3);
    }
}

/* ---- Content-Type --------------------------------------------------------------------------- */

static void test_content_type(void **state) {
    (void)state;
    static const char *const yes[] = {
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited", /* what client_golang sends */
        "application/"
        "vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
        "APPLICATION/Vnd.Google.Protobuf ; encoding = delimited "
        ";PROTO=io.prometheus.client.MetricFamily",
        "  application/vnd.google.protobuf\t; proto=\"io.prometheus.client.MetricFamily\"; "
        "encoding=\"delimited\";",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited; encoding=delimited", /* a repeat with an equal value is fine */
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited; q=0.5; other=\"a;b\"",
        "appl\xc4\xb0"
        "cation/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited", /* U+0130 lower-cases to i in Go */
        "\xc2\xa0"
        "application/vnd.google.protobuf\xe3\x80\x80; "
        "proto=io.prometheus.client.MetricFamily; encoding=delimited", /* Unicode spaces */
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding*=utf-8''delim%69ted", /* RFC 2231 */
        "application/vnd.google.protobuf; proto*0=io.prometheus.; proto*1*=client%2EMetric; "
        "proto*2=Family; encoding=delimited",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=x; encoding*=us-ascii'en'delimited", /* the extended value replaces */
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited; encoding*=bogus", /* an extended value that fails is dropped */
        "application/vnd.google.protobuf; proto=\"io.prometheus.client.Metric\\Family\"; "
        "encoding=delimited", /* an unneeded backslash stays (MSIE rule): but see below */
    };
    static const char *const no[] = {
        NULL,
        "",
        "text/plain; version=0.0.4",
        "application/vnd.google.protobuf",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=text",
        "application/vnd.google.protobuf; proto=io.prometheus.client.metricfamily; "
        "encoding=delimited", /* values are case-sensitive */
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=Delimited",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited; encoding=text", /* a repeat with another value: parse error */
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily "
        "encoding=delimited",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited;;",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=\"delimited",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding=\"deli\nmited\"",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=",
        "application/vnd.google.protobufx; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited",
        "application/vnd.google.protobuf x; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding*=latin1''delimited; encoding=x",
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding*0=deli; encoding*2=mited", /* piece 1 missing: stops after "deli" */
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
        "encoding*1=delimited; encoding=x", /* no piece 0: the plain value stays */
        "application/vnd.google.protobuf\x85; proto=io.prometheus.client.MetricFamily; "
        "encoding=delimited", /* a lone 0x85 byte is not U+0085 */
    };
    for (size_t i = 0; i + 1 < sizeof yes / sizeof yes[0]; i++)
        if (!exp_proto_content_type(yes[i]))
            fail_msg("want protobuf: %s", yes[i]);
    /* the backslash before 'F' (not a separator) is kept, so the value differs */
    assert_int_equal(exp_proto_content_type(yes[sizeof yes / sizeof yes[0] - 1]), 0);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (exp_proto_content_type(no[i]))
            fail_msg("want text: %s", no[i] ? no[i] : "(null)");
    assert_int_equal(exp_proto_content_type("application/vnd.google.protobuf; "
                                            "proto=\"io.prometheus.client.MetricFamily\\\"\"; "
                                            "encoding=delimited"),
                     0);
    assert_int_equal(exp_proto_content_type("application/vnd.google.protobuf; "
                                            "proto=\"io.prometheus.client.MetricFamil\\y\"; "
                                            "encoding=delimited"),
                     0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_counter_gauge_untyped, free_res),
        cmocka_unit_test_teardown(test_histogram, free_res),
        cmocka_unit_test_teardown(test_native_histogram_fields_skipped, free_res),
        cmocka_unit_test_teardown(test_summary, free_res),
        cmocka_unit_test_teardown(test_timestamp_and_merge, free_res),
        cmocka_unit_test_teardown(test_type_mismatch, free_res),
        cmocka_unit_test_teardown(test_families_replaced_and_empty, free_res),
        cmocka_unit_test_teardown(test_names_and_labels, free_res),
        cmocka_unit_test_teardown(test_unknown_fields, free_res),
        cmocka_unit_test_teardown(test_every_truncation, free_res),
        cmocka_unit_test_teardown(test_bad_lengths_and_varints, free_res),
        cmocka_unit_test_teardown(test_bad_wire_types, free_res),
        cmocka_unit_test_teardown(test_limits, free_res),
        cmocka_unit_test_teardown(test_error_buffer, free_res),
        cmocka_unit_test_teardown(test_random_input, free_res),
        cmocka_unit_test(test_content_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
