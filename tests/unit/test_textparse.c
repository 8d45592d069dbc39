/* test_textparse.c - unit tests of the pushed-body text format parser
 * (exporter/push/textparse.c): each rule of Go's expfmt.TextParser (common v0.37.0, the
 * Pushgateway 1.5.1's) it reproduces, positive and negative, with Go's exact error messages;
 * the documented differences (NUL bytes, gauge_histogram, limits, name lengths); hostile input
 * (huge label counts and lines, unterminated quotes, a backslash at the end, invalid UTF-8,
 * random bytes). The expected outcomes were worked out from Go's source, state by state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push/textparse.h"

static exp_text_result res;
static char err[1024];

static int parse_n(const char *s, size_t n, const exp_text_limits *lim) {
    exp_text_free(&res);
    memset(err, 'x', sizeof err);
    return exp_text_parse(s, n, lim, &res, err, sizeof err);
}

/* Parses s (n bytes), which must succeed. */
static void ok_n(const char *s, size_t n, const exp_text_limits *lim) {
    int rc = parse_n(s, n, lim);
    if (rc != 0)
        fail_msg("parse of %.*s failed (%d): %s", (int)(n > 200 ? 200 : n), s, rc, err);
    assert_string_equal(err, "");
}

static void ok(const char *s) {
    ok_n(s, strlen(s), NULL);
}

/* Parses s (n bytes), which must fail with exactly the message want. */
static void bad_n(const char *s, size_t n, const exp_text_limits *lim, const char *want) {
    int rc = parse_n(s, n, lim);
    if (rc != -1)
        fail_msg("parse of %.*s: rc %d, want -1 (%s)", (int)(n > 200 ? 200 : n), s, rc, want);
    if (strcmp(err, want) != 0)
        fail_msg("parse of %.*s:\n got: %s\nwant: %s", (int)(n > 200 ? 200 : n), s, err, want);
    assert_null(res.families);
    assert_int_equal(res.nfamilies, 0);
    assert_null(res.arena);
}

static void bad(const char *s, const char *want) {
    bad_n(s, strlen(s), NULL, want);
}

#define PFX "text format parsing error in line "

static const exp_text_family *fam(const char *name) {
    for (size_t i = 0; i < res.nfamilies; i++)
        if (strcmp(res.families[i].name, name) == 0)
            return &res.families[i];
    fail_msg("no family %s", name);
    return NULL;
}

static void check_label(const exp_text_metric *m, size_t i, const char *name, const char *value) {
    assert_true(i < m->nlabels);
    assert_string_equal(m->labels[i].name, name);
    assert_string_equal(m->labels[i].value, value);
}

static int free_res(void **state) {
    (void)state;
    exp_text_free(&res);
    return 0;
}

/* ---- structure ------------------------------------------------------------------------------ */

static void test_empty_and_blank(void **state) {
    (void)state;
    ok("");
    assert_int_equal(res.nfamilies, 0);
    assert_null(res.families);
    ok("\n\n   \n\t\t\n");
    assert_int_equal(res.nfamilies, 0);
    ok("\n  \t"); /* blanks after the last newline are the end of input, not a line */
    assert_int_equal(res.nfamilies, 0);
    ok("# just a comment\n#\n#    \n# HELP\n# TYPE\n");
    assert_int_equal(res.nfamilies, 0);
    /* a HELP or TYPE line naming a family that gets no sample leaves nothing */
    ok("# HELP lonely Nobody samples me.\n# TYPE lonely2 gauge\n");
    assert_int_equal(res.nfamilies, 0);
}

static void test_basic_types(void **state) {
    (void)state;
    ok("# HELP http_requests_total Requests.\n"
       "# TYPE http_requests_total counter\n"
       "http_requests_total{method=\"get\",code=\"200\"} 1027 1395066363000\n"
       "http_requests_total{method=\"post\",code=\"400\"}    3\n"
       "\n"
       "# TYPE temp gauge\n"
       "temp -273.15\n"
       "plain 42\n"
       "  \tindented\t7\n");
    assert_int_equal(res.nfamilies, 4);
    const exp_text_family *f = &res.families[0];
    assert_string_equal(f->name, "http_requests_total");
    assert_string_equal(f->help, "Requests.");
    assert_int_equal(f->type, REG_COUNTER);
    assert_int_equal(f->nmetrics, 2);
    check_label(&f->metrics[0], 0, "method", "get");
    check_label(&f->metrics[0], 1, "code", "200");
    assert_true(f->metrics[0].value == 1027);
    assert_true(f->metrics[0].has_timestamp);
    assert_true(f->metrics[0].timestamp_ms == 1395066363000);
    assert_int_equal(f->metrics[0].line, 3);
    assert_false(f->metrics[1].has_timestamp);
    assert_true(f->metrics[1].value == 3);
    assert_int_equal(f->metrics[1].line, 4);
    f = &res.families[1];
    assert_string_equal(f->name, "temp");
    assert_null(f->help);
    assert_int_equal(f->type, REG_GAUGE);
    assert_true(f->metrics[0].value == -273.15);
    assert_int_equal(f->metrics[0].nlabels, 0);
    assert_int_equal(res.families[2].type, REG_UNTYPED);
    assert_string_equal(res.families[3].name, "indented");
    assert_true(res.families[3].metrics[0].value == 7);
    assert_int_equal(res.families[3].metrics[0].line, 9);
}

static void test_final_newline_required(void **state) {
    (void)state;
    /* Go reads every line to its '\n'; the end of the input before it is an error */
    bad("a 1", PFX "1: unexpected end of input stream");
    bad("a 1\nb 2", PFX "2: unexpected end of input stream");
    bad("a", PFX "1: unexpected end of input stream");
    bad("a{", PFX "1: unexpected end of input stream");
    bad("a{b=\"c\"}", PFX "1: unexpected end of input stream");
    bad("a 1 123", PFX "1: unexpected end of input stream");
    bad("a 1 123 ", PFX "1: unexpected end of input stream");
    bad("# a comment", PFX "1: unexpected end of input stream");
    bad("#", PFX "1: unexpected end of input stream");
    bad("# HELP a text", PFX "1: unexpected end of input stream");
    bad("# HELP a", PFX "1: unexpected end of input stream");
    bad("# TYPE a counter", PFX "1: unexpected end of input stream");
    ok("a 1\n");
}

static void test_comments(void **state) {
    (void)state;
    /* the keyword is the first token after '#', with or without a blank; exact case */
    ok("#HELP a via no space\n# help b ignored\n# HELPx c ignored\n#\tTYPE a gauge\na 1\n");
    const exp_text_family *f = fam("a");
    assert_string_equal(f->help, "via no space");
    assert_int_equal(f->type, REG_GAUGE);
    /* a HELP line without text sets nothing, so a later one is not a second one */
    ok("# HELP a\n# HELP a   \n# HELP a real\na 1\n");
    assert_string_equal(fam("a")->help, "real");
    /* leading blanks of the text are skipped, trailing ones and '\r' kept */
    ok("# HELP a \t  text with  spaces \r\na 1\n");
    assert_string_equal(fam("a")->help, "text with  spaces \r");
    /* escapes: \\ and \n only */
    ok("# HELP a one\\ntwo \\\\ three\na 1\n");
    assert_string_equal(fam("a")->help, "one\ntwo \\ three");
    bad("# HELP a tab\\there\na 1\n", PFX "1: invalid escape sequence '\\t'");
    bad("# HELP a quote\\\"\n", PFX "1: invalid escape sequence '\\\"'");
    /* a backslash before the newline escapes it: Go's message then holds a raw newline */
    bad("# HELP a end\\\na 1\n", PFX "1: invalid escape sequence '\\\n'");
    /* invalid UTF-8 in HELP is accepted, as in Go */
    ok("# HELP a \xff\xfe\na 1\n");
    assert_string_equal(fam("a")->help, "\xff\xfe");
    /* other comments may hold anything but NUL */
    ok("# \xff \" { } \\ \\x\na 1\n");
}

static void test_help_type_order(void **state) {
    (void)state;
    ok("# TYPE a counter\n# HELP a h\na 1\n");
    assert_int_equal(fam("a")->type, REG_COUNTER);
    assert_string_equal(fam("a")->help, "h");
    /* HELP after samples is fine (Go only refuses a second one) */
    ok("a 1\n# HELP a late\n");
    assert_string_equal(fam("a")->help, "late");
    bad("# HELP a x\n# HELP a y\n", PFX "2: second HELP line for metric name \"a\"");
    bad("# TYPE a gauge\n# TYPE a gauge\n",
        PFX "2: second TYPE line for metric name \"a\", or TYPE reported after samples");
    bad("a 1\n# TYPE a gauge\n",
        PFX "2: second TYPE line for metric name \"a\", or TYPE reported after samples");
    /* HELP/TYPE of name_sum / name_count go to the summary or histogram name */
    ok("# TYPE s summary\n# HELP s_count counted help\ns_count 1\n");
    assert_string_equal(fam("s")->help, "counted help");
    bad("# TYPE h histogram\n# TYPE h_bucket gauge\n",
        PFX "2: second TYPE line for metric name \"h\", or TYPE reported after samples");
}

static void test_type_words(void **state) {
    (void)state;
    ok("# TYPE a COUNTER\n# TYPE b Gauge\n# TYPE c sUmMaRy\n# TYPE d untyped\n"
       "# TYPE e HISTOGRAM\na 1\nb 1\nc 1\nd 1\ne 1\n");
    assert_int_equal(fam("a")->type, REG_COUNTER);
    assert_int_equal(fam("b")->type, REG_GAUGE);
    assert_int_equal(fam("c")->type, REG_SUMMARY);
    assert_int_equal(fam("d")->type, REG_UNTYPED);
    assert_int_equal(fam("e")->type, REG_HISTOGRAM);
    /* Go upper-cases with Unicode rules: U+017F (long s) is S, U+0131 (dotless i) is I */
    ok("# TYPE a \xc5\xbfummary\n# TYPE b h\xc4\xb1stogram\na 1\nb 1\n");
    assert_int_equal(fam("a")->type, REG_SUMMARY);
    assert_int_equal(fam("b")->type, REG_HISTOGRAM);
    /* the rest of the line is the word, trailing blanks included; backslashes are dropped */
    bad("# TYPE a counter \n", PFX "1: unknown metric type \"counter \"");
    ok("# TYPE a coun\\ter\na 1\n");
    assert_int_equal(fam("a")->type, REG_COUNTER);
    bad("# TYPE a info\n", PFX "1: unknown metric type \"info\"");
    bad("# TYPE a stateset\n", PFX "1: unknown metric type \"stateset\"");
    bad("# TYPE a counter\r\n", PFX "1: unknown metric type \"counter\\r\"");
    /* a deliberate difference: Go takes this word and then drops every sample value */
    bad("# TYPE a gauge_histogram\n", PFX "1: unsupported metric type \"gauge_histogram\"");
    /* a HELP/TYPE line ending after the name is ignored */
    ok("# TYPE a\n# TYPE a   \na 1\n");
    assert_int_equal(fam("a")->type, REG_UNTYPED);
}

static void test_comment_names(void **state) {
    (void)state;
    bad("# HELP 1a x\n", PFX "1: invalid metric name in comment");
    bad("# TYPE a{b=\"c\"} counter\n", PFX "1: invalid metric name in comment");
    bad("\n\n# HELP a-b x\n", PFX "3: invalid metric name in comment");
    ok("# HELP a:b:c colons are fine\na:b:c 1\n");
    assert_string_equal(fam("a:b:c")->help, "colons are fine");
}

/* ---- labels --------------------------------------------------------------------------------- */

static void test_labels(void **state) {
    (void)state;
    ok("a{} 1\n"
       "a{x=\"1\",} 2\n"
       "a { x = \"1\" , y=\"2\"\t}\t3\n"
       "a{x=\"\"} 4\n"
       "a{_x=\"q\\\"uote\\\\back\\nnl\"} 5\n"
       "a{x=\"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}6\n"
       "a{__meta=\"dunder prefix is fine here\",B9=\"ok\"} 7\n");
    const exp_text_family *f = fam("a");
    assert_int_equal(f->nmetrics, 7);
    assert_int_equal(f->metrics[0].nlabels, 0);
    assert_int_equal(f->metrics[1].nlabels, 1);
    check_label(&f->metrics[1], 0, "x", "1");
    assert_int_equal(f->metrics[2].nlabels, 2);
    check_label(&f->metrics[2], 1, "y", "2");
    assert_true(f->metrics[2].value == 3);
    check_label(&f->metrics[3], 0, "x", "");
    check_label(&f->metrics[4], 0, "_x", "q\"uote\\back\nnl");
    check_label(&f->metrics[5], 0, "x", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    assert_true(f->metrics[5].value == 6);
    check_label(&f->metrics[6], 0, "__meta", "dunder prefix is fine here");
    check_label(&f->metrics[6], 1, "B9", "ok");
}

static void test_label_errors(void **state) {
    (void)state;
    bad("a{,} 1\n", PFX "1: invalid label name for metric \"a\"");
    bad("a{x=\"1\",,} 1\n", PFX "1: invalid label name for metric \"a\"");
    bad("a{@=\"bla\"} 1\n", PFX "1: invalid label name for metric \"a\"");
    bad("a{1x=\"bla\"} 1\n", PFX "1: invalid label name for metric \"a\"");
    bad("a{{ 1\n", PFX "1: invalid label name for metric \"a\"");
    bad("a{__name__=\"x\"} 1\n", PFX "1: label name \"__name__\" is reserved");
    bad("a{x+=\"1\"} 1\n", PFX "1: expected '=' after label name, found '+'");
    bad("a{x:y=\"1\"} 1\n", PFX "1: expected '=' after label name, found ':'");
    bad("a{x} 1\n", PFX "1: expected '=' after label name, found '}'");
    bad("a{x\n", PFX "1: expected '=' after label name, found '\\n'");
    bad("a{x\x01", PFX "1: expected '=' after label name, found '\\x01'");
    bad("a{x\x7f", PFX "1: expected '=' after label name, found '\\x7f'");
    bad("a{x\xc3", PFX "1: expected '=' after label name, found '\xc3\x83'");
    bad("a{x\x85", PFX "1: expected '=' after label name, found '\\u0085'");
    bad("a{x'", PFX "1: expected '=' after label name, found '\\''");
    bad("a{x\\", PFX "1: expected '=' after label name, found '\\\\'");
    bad("a{x=bla} 1\n", PFX "1: expected '\"' at start of label value, found 'b'");
    bad("a{x='bla'} 1\n", PFX "1: expected '\"' at start of label value, found '\\''");
    bad("a{x=\"1\"y=\"2\"} 1\n", PFX "1: unexpected end of label value \"1\"");
    bad("a{x=\"bla\"+} 1\n", PFX "1: unexpected end of label value \"bla\"");
    bad("a{x=\"q\\\"\\n\\\\\xff\"+} 1\n", PFX "1: invalid label value \"q\\\"\\n\\\\\\xff\"");
    bad("a{x=\"q\\\"\\n\\\\\"+} 1\n", PFX "1: unexpected end of label value \"q\\\"\\n\\\\\"");
    /* duplicates: found at the second name's '=' */
    bad("a{x=\"1\",x=\"2\"} 1\n", PFX "1: duplicate label names for metric \"a\"");
    bad("a{x=\"1\",y=\"\",x=\"2\"} 1\n", PFX "1: duplicate label names for metric \"a\"");
    bad("a{x=\"1\",x} 1\n", PFX "1: expected '=' after label name, found '}'");
    /* escapes */
    bad("a{x=\"\\t\"} 1\n", PFX "1: invalid escape sequence '\\t'");
    bad("a{x=\"\\u00e9\"} 1\n", PFX "1: invalid escape sequence '\\u'");
    bad("a{x=\"\\\xc3\xa9\"} 1\n", PFX "1: invalid escape sequence '\\\xc3\x83'");
    bad("\na{x=\"two\nlines\"} 1\n", PFX "2: label value \"two\" contains unescaped new-line");
    /* values must be valid UTF-8 (Go's LabelValue.IsValid) */
    bad("a{x=\"\xbd\"} 1\n", PFX "1: invalid label value \"\\xbd\"");
    bad("a{x=\"\xed\xa0\x80\"} 1\n", PFX "1: invalid label value \"\\xed\\xa0\\x80\"");
    bad("a{x=\"\xc0\xaf\"} 1\n", PFX "1: invalid label value \"\\xc0\\xaf\"");
    /* Go's %q escapes what is not printable */
    bad("a{x=\"\x01\t\xc2\xa0\xc2\xa1\xe2\x80\xa8\"+\n",
        PFX "1: unexpected end of label value \"\\x01\\t\\u00a0\xc2\xa1\\u2028\"");
    bad("a{x=\"\xf0\x9f\x98\x80\"+\n", PFX "1: unexpected end of label value \"\xf0\x9f\x98\x80\"");
    bad("a{x=\"\xf3\xb0\x80\x81\"+\n", PFX "1: unexpected end of label value \"\\U000f0001\"");
}

/* ---- numbers -------------------------------------------------------------------------------- */

static double value_of(const char *v) {
    char line[128];
    snprintf(line, sizeof line, "a %s\n", v);
    ok(line);
    return res.families[0].metrics[0].value;
}

static void bad_value(const char *v) {
    char line[128], want[256];
    snprintf(line, sizeof line, "a %s\n", v);
    snprintf(want, sizeof want, PFX "1: expected float as value, got \"%s\"", v);
    bad(line, want);
}

static void test_values(void **state) {
    (void)state;
    assert_true(value_of("1") == 1);
    assert_true(value_of("-0") == 0 && signbit(value_of("-0")));
    assert_true(value_of("+3.5") == 3.5);
    assert_true(value_of(".5") == 0.5);
    assert_true(value_of("5.") == 5);
    assert_true(value_of("1e3") == 1000);
    assert_true(value_of("1E-3") == 0.001);
    assert_true(value_of("0.1") == 0.1);
    assert_true(value_of("1.7976931348623157e308") == 1.7976931348623157e308);
    assert_true(value_of("1e-400") == 0); /* underflow: 0 without error, as Go */
    assert_true(value_of("4.9e-324") == 4.9e-324);
    assert_true(value_of("00012") == 12);
    assert_true(isnan(value_of("NaN")));
    assert_true(isnan(value_of("nan")));
    assert_true(isnan(value_of("nAn")));
    assert_true(value_of("+Inf") == INFINITY);
    assert_true(value_of("-Inf") == -INFINITY);
    assert_true(value_of("Inf") == INFINITY);
    assert_true(value_of("inf") == INFINITY);
    assert_true(value_of("-infinity") == -INFINITY);
    assert_true(value_of("+INFINITY") == INFINITY);
    bad_value("1e400");
    bad_value("-1e400");
    bad_value("1.8e308");
    bad_value("0x1p-3"); /* Go's parser refuses 'p', 'P' and '_' before ParseFloat */
    bad_value("0x1P-3");
    bad_value("0x10");
    bad_value("0X1");
    bad_value("0b1");
    bad_value("0o1");
    bad_value("1_000");
    bad_value("_1");
    bad_value("+nan");
    bad_value("-NaN");
    bad_value("infin");
    bad_value("Infinit");
    bad_value("1e");
    bad_value("1e+");
    bad_value("1.2.3");
    bad_value("--1");
    bad_value("1,5");
    bad_value("one");
    bad_value("");
    bad("a{b=\"c\"}\n", PFX "1: expected float as value, got \"\"");
    bad("a\n", PFX "1: expected float as value, got \"\"");
    bad("a 1\r\n", PFX "1: expected float as value, got \"1\\r\"");
    bad("a 1{b=\"c\"}\n", PFX "1: expected float as value, got \"1{b=\\\"c\\\"}\"");
    bad("a-b 1\n", PFX "1: expected float as value, got \"-b\"");
}

static void test_timestamps(void **state) {
    (void)state;
    ok("a 1 -5\nb 1 +7\nc 1 9223372036854775807\nd 1 -9223372036854775808\ne 1\t\t0\n");
    assert_true(fam("a")->metrics[0].timestamp_ms == -5);
    assert_true(fam("b")->metrics[0].timestamp_ms == 7);
    assert_true(fam("c")->metrics[0].timestamp_ms == INT64_MAX);
    assert_true(fam("d")->metrics[0].timestamp_ms == INT64_MIN);
    assert_true(fam("e")->metrics[0].has_timestamp);
    assert_true(fam("e")->metrics[0].timestamp_ms == 0);
    bad("a 1 \n", PFX "1: expected integer as timestamp, got \"\"");
    bad("a 1 2.72\n", PFX "1: expected integer as timestamp, got \"2.72\"");
    bad("a 1 1e3\n", PFX "1: expected integer as timestamp, got \"1e3\"");
    bad("a 1 1_000\n", PFX "1: expected integer as timestamp, got \"1_000\"");
    bad("a 1 0x10\n", PFX "1: expected integer as timestamp, got \"0x10\"");
    bad("a 1 9223372036854775808\n",
        PFX "1: expected integer as timestamp, got \"9223372036854775808\"");
    bad("a 1 2 3\n", PFX "1: spurious string after timestamp: \" 3\"");
    bad("a 1 2 \n", PFX "1: spurious string after timestamp: \" \"");
    bad("a 1 2\t\\x\n", PFX "1: spurious string after timestamp: \"\\tx\"");
    bad("a 1 2\r\n", PFX "1: expected integer as timestamp, got \"2\\r\"");
}

/* ---- grouping ------------------------------------------------------------------------------- */

static void test_histogram(void **state) {
    (void)state;
    ok("# HELP h Latency.\n"
       "# TYPE h histogram\n"
       "h_bucket{path=\"/a\",le=\"0.1\"} 1\n"
       "h_bucket{path=\"/b\",le=\"0.1\"} 0\n"
       "h_bucket{le=\"1\",path=\"/a\"} 3\n" /* label order does not matter */
       "h_bucket{path=\"/a\",le=\"+Inf\"} 4 1000\n"
       "h_sum{path=\"/a\"} 2.5\n"
       "h_count{path=\"/a\"} 4\n"
       "h{path=\"/c\",le=\"2\"} 9\n" /* the bare name with le is a bucket too */
       "h_bucket{path=\"/c\"} 9\n"   /* no le: the metric exists, no bucket */
       "other 1\n"
       "h_count{path=\"/b\"} 0\n" /* after another family: the same metric */
       "h_sum{path=\"/b\"} 1e-3\n"
       "h_bucket{path=\"/b\",le=\"0.1\"} 0\n"); /* duplicates are kept, as in Go */
    const exp_text_family *f = fam("h");
    assert_int_equal(res.nfamilies, 2);
    assert_string_equal(res.families[0].name, "h");
    assert_string_equal(f->help, "Latency.");
    assert_int_equal(f->type, REG_HISTOGRAM);
    assert_int_equal(f->nmetrics, 3);
    const exp_text_metric *a = &f->metrics[0], *b = &f->metrics[1], *c = &f->metrics[2];
    assert_int_equal(a->nlabels, 1);
    check_label(a, 0, "path", "/a");
    assert_int_equal(a->nbuckets, 3);
    assert_true(a->bounds[0] == 0.1 && a->counts[0] == 1);
    assert_true(a->bounds[1] == 1 && a->counts[1] == 3);
    assert_true(a->bounds[2] == INFINITY && a->counts[2] == 4);
    assert_true(a->has_sum && a->sum == 2.5);
    assert_true(a->has_count && a->count == 4);
    assert_true(a->has_timestamp && a->timestamp_ms == 1000);
    assert_int_equal(a->line, 3);
    assert_int_equal(a->nquantiles, 0);
    assert_int_equal(b->nbuckets, 2);
    assert_true(b->has_count && b->count == 0);
    assert_true(b->has_sum && b->sum == 1e-3);
    assert_false(b->has_timestamp);
    assert_int_equal(b->line, 4);
    check_label(c, 0, "path", "/c");
    assert_int_equal(c->nbuckets, 1);
    assert_true(c->bounds[0] == 2 && c->counts[0] == 9);
    /* quantile is an ordinary label of a histogram */
    ok("# TYPE h histogram\nh_bucket{quantile=\"x\",le=\"1\"} 1\n");
    check_label(&fam("h")->metrics[0], 0, "quantile", "x");
    /* counts are kept as written (Go truncates to uint64) */
    ok("# TYPE h histogram\nh_bucket{le=\"1\"} 1.5\nh_count -2\n");
    assert_true(fam("h")->metrics[0].counts[0] == 1.5);
    assert_true(fam("h")->metrics[0].count == -2);
    /* the last _sum / _count / timestamp wins */
    ok("# TYPE h histogram\nh_sum 1 5\nh_sum 2\nh_count 3 6\nh_count 4\n");
    assert_true(fam("h")->metrics[0].sum == 2 && fam("h")->metrics[0].count == 4);
    assert_true(fam("h")->metrics[0].timestamp_ms == 6);
    bad("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
        PFX "2: expected float as value for 'le' label, got \"x\"");
    bad("# TYPE h histogram\nh_bucket{le=\"0x1p3\"} 1\n",
        PFX "2: expected float as value for 'le' label, got \"0x1p3\"");
    bad("# TYPE h histogram\nh_bucket{le=\"\"} 1\n",
        PFX "2: expected float as value for 'le' label, got \"\"");
    /* le is no label of a histogram: a second one is no duplicate (the last counts) */
    ok("# TYPE h histogram\nh_bucket{le=\"1\",le=\"2\"} 1\n");
    assert_true(fam("h")->metrics[0].bounds[0] == 2);
}

static void test_summary(void **state) {
    (void)state;
    ok("# TYPE s summary\n"
       "s{quantile=\"0.5\"} 1\n"
       "s{quantile=\"0.99\"} 2\n"
       "s_sum 10\n"
       "s_count 5\n"
       "s{job=\"x\",quantile=\"0.5\"} 3\n"
       "s{job=\"x\"} 4\n"         /* no quantile: counted as a metric, no value */
       "s_bucket{le=\"1\"} 4\n"); /* not a histogram: a family of its own */
    const exp_text_family *f = fam("s");
    assert_int_equal(f->type, REG_SUMMARY);
    assert_int_equal(f->nmetrics, 2);
    const exp_text_metric *m = &f->metrics[0];
    assert_int_equal(m->nlabels, 0);
    assert_int_equal(m->nquantiles, 2);
    assert_true(m->quantiles[0] == 0.5 && m->qvalues[0] == 1);
    assert_true(m->quantiles[1] == 0.99 && m->qvalues[1] == 2);
    assert_true(m->sum == 10 && m->count == 5);
    assert_int_equal(m->nbuckets, 0);
    m = &f->metrics[1];
    check_label(m, 0, "job", "x");
    assert_int_equal(m->nquantiles, 1);
    const exp_text_family *b = fam("s_bucket");
    assert_int_equal(b->type, REG_UNTYPED);
    check_label(&b->metrics[0], 0, "le", "1");
    bad("# TYPE s summary\ns{quantile=\"high\"} 1\n",
        PFX "2: expected float as value for 'quantile' label, got \"high\"");
    /* le is an ordinary label of a summary */
    ok("# TYPE s summary\ns{le=\"1\",quantile=\"0.5\"} 1\n");
    check_label(&fam("s")->metrics[0], 0, "le", "1");
}

static void test_suffix_lookup(void **state) {
    (void)state;
    /* a family named by the full name wins over the summary it would belong to */
    ok("s_count 1\n# TYPE s summary\ns_count 2\ns_sum 3\n");
    assert_int_equal(fam("s_count")->nmetrics, 2);
    assert_int_equal(fam("s")->nmetrics, 1);
    assert_true(fam("s")->metrics[0].sum == 3);
    /* a suffix on an untyped or counter name makes a family of its own */
    ok("# TYPE c counter\nc 1\nc_count 2\nc_sum 3\n");
    assert_int_equal(res.nfamilies, 3);
    assert_int_equal(fam("c_count")->type, REG_UNTYPED);
    /* the suffix alone is a name */
    ok("# TYPE s summary\n_count 1\n_sum 2\n_bucket 3\n");
    assert_int_equal(res.nfamilies, 3);
    /* HELP only (no TYPE) does not make a summary */
    ok("# HELP s h\ns_count 1\n");
    assert_int_equal(res.nfamilies, 1);
    assert_string_equal(res.families[0].name, "s_count");
}

static void test_counter_grouping(void **state) {
    (void)state;
    /* counters, gauges and untyped: one metric per sample, even with equal labels; a family
     * seen again after another one gets the new samples */
    ok("# TYPE a counter\na{x=\"1\"} 1\na{x=\"1\"} 2\nb 1\na{x=\"1\"} 3\nb 2\n");
    assert_int_equal(res.nfamilies, 2);
    assert_string_equal(res.families[0].name, "a");
    assert_string_equal(res.families[1].name, "b");
    const exp_text_family *a = fam("a");
    assert_int_equal(a->nmetrics, 3);
    assert_true(a->metrics[2].value == 3);
    assert_int_equal(a->metrics[2].line, 5);
    assert_int_equal(fam("b")->nmetrics, 2);
    /* the order of families is the order they were first named, HELP lines included */
    ok("# HELP z first\na 1\nz 2\n");
    assert_string_equal(res.families[0].name, "z");
    assert_string_equal(res.families[1].name, "a");
}

/* ---- names, NULs, limits -------------------------------------------------------------------- */

static void test_metric_names(void **state) {
    (void)state;
    bad("@a 1\n", PFX "1: invalid metric name");
    bad("{x=\"1\"} 1\n", PFX "1: invalid metric name");
    bad("1a 1\n", PFX "1: invalid metric name");
    bad("\r\n", PFX "1: invalid metric name");
    bad("a 1\n\n  -b 2\n", PFX "3: invalid metric name");
    ok("_a 1\n:b 2\nC_9:x 3\n");
    assert_int_equal(res.nfamilies, 3);
    char name[REG_MAX_NAME + 2], line[3 * REG_MAX_NAME + 64], want[128];
    memset(name, 'n', sizeof name - 1);
    name[REG_MAX_NAME] = 0; /* the longest name */
    snprintf(line, sizeof line, "%s 1\n# HELP %s h\nb{%s=\"1\"} 1\n", name, name, name);
    ok(line);
    assert_int_equal(strlen(res.families[0].name), REG_MAX_NAME);
    assert_int_equal(strlen(res.families[1].metrics[0].labels[0].name), REG_MAX_NAME);
    name[REG_MAX_NAME] = 'n'; /* one byte more */
    name[REG_MAX_NAME + 1] = 0;
    snprintf(want, sizeof want, PFX "1: metric name longer than %d bytes", REG_MAX_NAME);
    snprintf(line, sizeof line, "%s 1\n", name);
    bad(line, want);
    snprintf(line, sizeof line, "# HELP %s h\n", name);
    bad(line, want);
    snprintf(want, sizeof want, PFX "1: label name longer than %d bytes", REG_MAX_NAME);
    snprintf(line, sizeof line, "b{%s=\"1\"} 1\n", name);
    bad(line, want);
}

static void test_nul_bytes(void **state) {
    (void)state;
    /* a deliberate difference: NUL is an error wherever it is read (Go takes it in label
     * values, HELP and comments) */
    static const char v[] = "a{x=\"1\0\"} 1\n";
    bad_n(v, sizeof v - 1, NULL, PFX "1: invalid NUL byte");
    static const char h[] = "b 1\n# HELP a x\0y\n";
    bad_n(h, sizeof h - 1, NULL, PFX "2: invalid NUL byte");
    static const char c[] = "# comment \0\n";
    bad_n(c, sizeof c - 1, NULL, PFX "1: invalid NUL byte");
    static const char s[] = "a 1\n\0";
    bad_n(s, sizeof s - 1, NULL, PFX "2: invalid NUL byte");
    static const char n[] = "a\0 1\n";
    bad_n(n, sizeof n - 1, NULL, PFX "1: invalid NUL byte");
    /* an earlier error on the line comes first */
    static const char e[] = "a{x=\"\\t\0\"} 1\n";
    bad_n(e, sizeof e - 1, NULL, PFX "1: invalid escape sequence '\\t'");
    /* the length bounds the input: what follows is not read */
    ok_n("a 1\n\0garbage", 4, NULL);
    assert_int_equal(res.nfamilies, 1);
}

static void test_limits(void **state) {
    (void)state;
    exp_text_limits lim = {.max_labels = 2};
    const char *two = "a{x=\"1\",y=\"2\"} 1\n", *three = "b 1\na{x=\"1\",y=\"2\",z=\"3\"} 1\n";
    ok_n(two, strlen(two), &lim);
    bad_n(three, strlen(three), &lim, PFX "2: too many labels (max_labels 2) for metric \"a\"");
    /* le and quantile are no labels */
    const char *h = "# TYPE h histogram\nh_bucket{x=\"1\",y=\"2\",le=\"1\"} 1\n";
    ok_n(h, strlen(h), &lim);
    lim = (exp_text_limits){.max_families = 2};
    const char *f2 = "# HELP x empty families do not count\na 1\nb 1\na 2\n";
    ok_n(f2, strlen(f2), &lim);
    const char *f3 = "a 1\nb 1\na 2\nc 1\n";
    bad_n(f3, strlen(f3), &lim, PFX "4: too many metric families (max_families 2)");
    lim = (exp_text_limits){.max_metrics = 3};
    const char *m3 = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"2\"} 1\nh_sum 1\n"
                     "h_count 1\na 1\nb 1\n";
    ok_n(m3, strlen(m3), &lim);
    const char *m4 = "a 1\na 1\na 1\na 1\n";
    bad_n(m4, strlen(m4), &lim, PFX "4: too many metrics (max_metrics 3)");
}

static void test_error_buffer(void **state) {
    (void)state;
    char small[16];
    exp_text_result r;
    assert_int_equal(exp_text_parse("a\n", 2, NULL, &r, small, sizeof small), -1);
    assert_string_equal(small, "text format par");
    assert_int_equal(exp_text_parse("a\n", 2, NULL, &r, NULL, 0), -1);
    assert_int_equal(exp_text_parse("a\n", 2, NULL, &r, small, 0), -1);
    assert_int_equal(exp_text_parse("a 1\n", 4, NULL, &r, small, sizeof small), 0);
    assert_string_equal(small, "");
    exp_text_free(&r);
    exp_text_free(&r); /* a freed (zeroed) result again */
    exp_text_free(NULL);
    /* a long value in a message is cut to the buffer, NUL-terminated */
    char *line = malloc(100010);
    assert_non_null(line);
    memcpy(line, "a{x=\"", 5);
    memset(line + 5, 'v', 100000);
    memcpy(line + 100005, "\"+\n", 3);
    assert_int_equal(parse_n(line, 100008, NULL), -1);
    assert_int_equal(strlen(err), sizeof err - 1);
    free(line);
}

/* ---- hostile input -------------------------------------------------------------------------- */

static void test_many_labels(void **state) {
    (void)state;
    enum { N = 100000 };
    size_t cap = (size_t)N * 40 + 64, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    n += (size_t)snprintf(s + n, cap - n, "# TYPE h histogram\nh_bucket{");
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(s + n, cap - n, "l%d=\"%d\",", i, i);
    n += (size_t)snprintf(s + n, cap - n, "le=\"1\"} 1\nh_bucket{");
    for (int i = N - 1; i >= 0; i--) /* the same set, reversed: the same metric */
        n += (size_t)snprintf(s + n, cap - n, "l%d=\"%d\",", i, i);
    n += (size_t)snprintf(s + n, cap - n, "le=\"2\"} 2\n");
    ok_n(s, n, NULL);
    const exp_text_metric *m = &fam("h")->metrics[0];
    assert_int_equal(fam("h")->nmetrics, 1);
    assert_int_equal(m->nlabels, N);
    check_label(m, N - 1, "l99999", "99999");
    assert_int_equal(m->nbuckets, 2);
    /* a duplicate at the very end of a long list is still found */
    n = 0;
    n += (size_t)snprintf(s + n, cap - n, "a{");
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(s + n, cap - n, "l%d=\"\",", i);
    n += (size_t)snprintf(s + n, cap - n, "l77=\"\"} 1\n");
    bad_n(s, n, NULL, PFX "1: duplicate label names for metric \"a\"");
    exp_text_limits lim = {.max_labels = 1000};
    bad_n(s, n, &lim, PFX "1: too many labels (max_labels 1000) for metric \"a\"");
    free(s);
}

static void test_long_lines(void **state) {
    (void)state;
    size_t n = 4 << 20;
    char *s = malloc(n + 32);
    assert_non_null(s);
    memcpy(s, "a{x=\"", 5);
    memset(s + 5, 'v', n);
    memcpy(s + 5 + n, "\"} 1\n", 5);
    ok_n(s, n + 10, NULL);
    assert_int_equal(strlen(fam("a")->metrics[0].labels[0].value), n);
    /* unterminated quote: the end of the input */
    bad_n(s, n + 5, NULL, PFX "1: unexpected end of input stream");
    /* a long comment, a long HELP */
    memcpy(s, "# HEL", 5);
    s[n + 5] = '\n';
    ok_n(s, n + 6, NULL);
    memcpy(s, "# HELP a ", 9);
    memcpy(s + n + 5, "\na 1\n", 5);
    ok_n(s, n + 10, NULL);
    assert_int_equal(strlen(fam("a")->help), n - 4);
    free(s);
}

static void test_hostile_ends(void **state) {
    (void)state;
    bad("a{x=\"\\", PFX "1: unexpected end of input stream");
    bad("a{x=\"abc\\\"", PFX "1: unexpected end of input stream");
    bad("# HELP a x\\", PFX "1: unexpected end of input stream");
    bad("a 1 2\\", PFX "1: unexpected end of input stream");
    bad("a{x=\"1\" ", PFX "1: unexpected end of input stream");
    bad("a{x=", PFX "1: unexpected end of input stream");
    bad("a{x", PFX "1: unexpected end of input stream");
    bad("a ", PFX "1: unexpected end of input stream");
    bad("a\t", PFX "1: unexpected end of input stream");
    bad("# TYPE a ", PFX "1: unexpected end of input stream");
    bad("# TYPE ", PFX "1: unexpected end of input stream");
    bad("# HELP a b\n# TYPE a", PFX "2: unexpected end of input stream");
    /* a second line of many blank lines: line numbers count them */
    bad("\n\n\n\n\n\n\n\n\n\nx\n", PFX "11: expected float as value, got \"\"");
    bad("a{b=\"1\"} 1\n{{{{{{{{{{\n", PFX "2: invalid metric name");
}

static void test_random_input(void **state) {
    (void)state;
    /* random bytes from a small alphabet: no crash, a defined answer, a deterministic one */
    static const char alpha[] = "ab_:{}=\",# \t\n\\01.eE+-InfNa\r\xc3\xff";
    char buf[256], e1[256];
    uint32_t x = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 1 + (x >> 8) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = alpha[(x >> 16) % (sizeof alpha - 1)];
        }
        exp_text_result r1, r2;
        int rc1 = exp_text_parse(buf, n, NULL, &r1, e1, sizeof e1);
        int rc2 = exp_text_parse(buf, n, NULL, &r2, err, sizeof err);
        assert_int_equal(rc1, rc2);
        assert_true(rc1 == 0 || rc1 == -1);
        assert_int_equal(r1.nfamilies, r2.nfamilies);
        if (rc1)
            assert_string_equal(e1, err);
        exp_text_free(&r1);
        exp_text_free(&r2);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_empty_and_blank, free_res),
        cmocka_unit_test_teardown(test_basic_types, free_res),
        cmocka_unit_test_teardown(test_final_newline_required, free_res),
        cmocka_unit_test_teardown(test_comments, free_res),
        cmocka_unit_test_teardown(test_help_type_order, free_res),
        cmocka_unit_test_teardown(test_type_words, free_res),
        cmocka_unit_test_teardown(test_comment_names, free_res),
        cmocka_unit_test_teardown(test_labels, free_res),
        cmocka_unit_test_teardown(test_label_errors, free_res),
        cmocka_unit_test_teardown(test_values, free_res),
        cmocka_unit_test_teardown(test_timestamps, free_res),
        cmocka_unit_test_teardown(test_histogram, free_res),
        cmocka_unit_test_teardown(test_summary, free_res),
        cmocka_unit_test_teardown(test_suffix_lookup, free_res),
        cmocka_unit_test_teardown(test_counter_grouping, free_res),
        cmocka_unit_test_teardown(test_metric_names, free_res),
        cmocka_unit_test_teardown(test_nul_bytes, free_res),
        cmocka_unit_test_teardown(test_limits, free_res),
        cmocka_unit_test_teardown(test_error_buffer, free_res),
        cmocka_unit_test_teardown(test_many_labels, free_res),
        cmocka_unit_test_teardown(test_long_lines, free_res),
        cmocka_unit_test_teardown(test_hostile_ends, free_res),
        cmocka_unit_test_teardown(test_random_input, free_res),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
