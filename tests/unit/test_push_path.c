/* test_push_path.c - unit tests of a push's grouping key and families (exporter/push/path.c,
 * body.c): push_key_parse (job and labels, @base64 values, the Pushgateway's rules for odd
 * components, trailing slashes, repeated and improper names, the key text) and
 * push_families_build (instance="", grouping labels over body labels, sorted labels, what is
 * refused, the value layout of histograms and summaries, push-time gauges dropped). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "push/internal.h"

static push_key KEY;
static char ERR[512];

static int parse(const char *path) {
    push_key_free(&KEY);
    memset(ERR, 0, sizeof ERR);
    return push_key_parse(path, &KEY, ERR, sizeof ERR);
}

/* The path parses to the key text want. */
static void key_is(const char *path, const char *want) {
    int rc = parse(path);
    if (rc != 0)
        fail_msg("%s: %d %s", path, rc, ERR);
    assert_string_equal(KEY.text, want);
    assert_int_equal(strlen(KEY.text), KEY.text_len);
    push_key_free(&KEY);
}

/* The path is a 400 whose message is want. */
static void bad_path(const char *path, const char *want) {
    int rc = parse(path);
    if (rc != -1)
        fail_msg("%s: rc %d, want -1", path, rc);
    assert_string_equal(ERR, want);
}

static int teardown(void **state) {
    (void)state;
    push_key_free(&KEY);
    return 0;
}

static void test_job(void **state) {
    (void)state;
    key_is("job/j", "job=\"j\"");
    key_is("job/some-job.name", "job=\"some-job.name\"");
    assert_int_equal(parse("job/j"), 0);
    assert_int_equal(KEY.n, 1);
    assert_string_equal(KEY.names[0], "job");
    assert_string_equal(KEY.values[0], "j");
    /* job@base64: "ag" is "j"; a '/' inside the job. */
    key_is("job@base64/ag", "job=\"j\"");
    key_is("job@base64/YS9i", "job=\"a/b\"");
    key_is("job@base64/YS9i/x/1", "job=\"a/b\",x=\"1\"");
}

static void test_label_pairs(void **state) {
    (void)state;
    key_is("job/j/a/1", "a=\"1\",job=\"j\"");
    key_is("job/j/z/1/b/2/k/3", "b=\"2\",job=\"j\",k=\"3\",z=\"1\"");
    assert_int_equal(parse("job/j/z/1/b/2"), 0);
    assert_int_equal(KEY.n, 3);
    /* names and values sorted by name together */
    assert_string_equal(KEY.names[0], "b");
    assert_string_equal(KEY.values[0], "2");
    assert_string_equal(KEY.names[1], "job");
    assert_string_equal(KEY.names[2], "z");
    assert_string_equal(KEY.values[2], "1");
    /* A non-empty instance stays. */
    key_is("job/j/instance/i1", "instance=\"i1\",job=\"j\"");
    /* Plain values are taken as given (the HTTP layer unescaped them already). */
    key_is("job/j/a/x%2Fy", "a=\"x%2Fy\",job=\"j\"");
}

static void test_base64_values(void **state) {
    (void)state;
    /* URL-safe alphabet: '-' is 62, '_' is 63. "Pz8" is "??", "-_8" is 0xfb 0xff... (not
     * UTF-8, below); "Pj4-" is ">>>" (the standard alphabet would use '+'). */
    key_is("job/j/a@base64/Pz8", "a=\"??\",job=\"j\"");
    key_is("job/j/a@base64/Pz8=", "a=\"??\",job=\"j\"");
    key_is("job/j/a@base64/Pj4-", "a=\">>>\",job=\"j\"");
    key_is("job/j/a@base64/fn5_", "a=\"~~\x7f\",job=\"j\"");
    /* Padding optional. */
    key_is("job/j/a@base64/YQ==", "a=\"a\",job=\"j\"");
    key_is("job/j/a@base64/YQ", "a=\"a\",job=\"j\"");
    key_is("job/j/a@base64/YWI", "a=\"ab\",job=\"j\"");
    key_is("job/j/a@base64/YWI=", "a=\"ab\",job=\"j\"");
    /* Slashes and empty values. */
    key_is("job/j/path@base64/L3Zhci90bXA", "job=\"j\",path=\"/var/tmp\"");
    key_is("job/j/a@base64/=", "a=\"\",job=\"j\"");
    key_is("job/j/a@base64/", "a=\"\",job=\"j\"");
    /* "@base64" alone is no name. */
    assert_int_equal(parse("job/j/@base64/YQ"), -1);
    assert_non_null(strstr(ERR, "improper label name"));
}

static void test_invalid_base64(void **state) {
    (void)state;
    bad_path("job/j/a@base64/%%%", "invalid base64 encoding for label a=\"%%%\"");
    /* The standard alphabet's '+' is not URL-safe ('/' splits the path anyway). */
    assert_int_equal(parse("job/j/a@base64/Pj4+"), -1);
    assert_non_null(strstr(ERR, "invalid base64 encoding for label a="));
    /* One character left over is no byte. */
    bad_path("job/j/a@base64/Y", "invalid base64 encoding for label a=\"Y\"");
    bad_path("job/j/a@base64/YWJjZ", "invalid base64 encoding for label a=\"YWJjZ\"");
    /* Padding inside. */
    assert_int_equal(parse("job/j/a@base64/Y=Q"), -1);
    assert_non_null(strstr(ERR, "invalid base64"));
    assert_int_equal(parse("job@base64/!!"), -1);
    assert_non_null(strstr(ERR, "invalid base64"));
}

/* The message quotes the value as given, also when the bad character comes after good ones
 * (path.c decodes in place: the bytes before it are overwritten by then). */
static void test_invalid_base64_message_quotes_value_as_given(void **state) {
    (void)state;
    bad_path("job/j/a@base64/Pj4+", "invalid base64 encoding for label a=\"Pj4+\"");
    bad_path("job/j/a@base64/YWJj!", "invalid base64 encoding for label a=\"YWJj!\"");
    bad_path("job@base64/YWJjZGVm*", "invalid base64 encoding for label job=\"YWJjZGVm*\"");
}

static void test_odd_components(void **state) {
    (void)state;
    bad_path("job/j/a", "odd number of components in label string \"/a\"");
    bad_path("job/j/a/1/b", "odd number of components in label string \"/a/1/b\"");
    /* Trailing slashes: after the job, none at all; after a value, an empty component. */
    key_is("job/j/", "job=\"j\"");
    key_is("job/j/a/", "a=\"\",job=\"j\"");
    bad_path("job/j/a/1/", "odd number of components in label string \"/a/1/\"");
    bad_path("job/k/v@base64/Pz8/", "odd number of components in label string \"/v@base64/Pz8/\"");
    /* Two slashes: an empty name and an empty value (three components, as Go splits "//"). */
    bad_path("job/j//", "improper label name \"\"");
    bad_path("job@base64/ag/a", "odd number of components in label string \"/a\"");
}

static void test_not_a_push_path(void **state) {
    (void)state;
    const char *paths[] = {"", "job", "job/", "jobs/j", "job@base64/", "x/j", "JOB/j", "/job/j"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        int rc = parse(paths[i]);
        if (rc != -3)
            fail_msg("\"%s\": rc %d, want -3", paths[i], rc);
        assert_null(KEY.buf);
        assert_null(KEY.text);
    }
    /* An empty job given in base64 is a path, and a 400. */
    bad_path("job@base64/=", "job name is required");
}

static void test_improper_label_names(void **state) {
    (void)state;
    bad_path("job/j/1a/x", "improper label name \"1a\"");
    bad_path("job/j/a-b/x", "improper label name \"a-b\"");
    bad_path("job/j/__name__/x", "improper label name \"__name__\"");
    bad_path("job/j/__a/x", "improper label name \"__a\"");
    bad_path("job/j/__a@base64/YQ", "improper label name \"__a\"");
    bad_path("job/j//x", "improper label name \"\"");
    bad_path("job/j/a@base64@base64/YQ", "improper label name \"a@base64\"");
    /* A single underscore is fine; so are le and quantile (reserved by type only). */
    key_is("job/j/_/x/le/1/quantile/2", "_=\"x\",job=\"j\",le=\"1\",quantile=\"2\"");
}

static void test_repeated_labels(void **state) {
    (void)state;
    /* job: the first wins, plain or base64. */
    key_is("job/j/job/k", "job=\"j\"");
    key_is("job/j/job@base64/aw", "job=\"j\"");
    /* Others: the last wins. */
    key_is("job/j/a/1/a/2", "a=\"2\",job=\"j\"");
    key_is("job/j/a/1/b/x/a@base64/Mw", "a=\"3\",b=\"x\",job=\"j\"");
    key_is("job/j/a/1/a/", "a=\"\",job=\"j\"");
    assert_int_equal(parse("job/j/a/1/a/2/a/3"), 0);
    assert_int_equal(KEY.n, 2);
}

static void test_empty_instance_dropped(void **state) {
    (void)state;
    key_is("job/j/instance/", "job=\"j\"");
    key_is("job/j/instance@base64/=", "job=\"j\"");
    key_is("job/j/instance/x/instance/", "job=\"j\"");
    key_is("job/j/a/1/instance@base64//z/2", "a=\"1\",job=\"j\",z=\"2\"");
    assert_int_equal(parse("job/j/instance/"), 0);
    assert_int_equal(KEY.n, 1);
    /* Other empty values stay. */
    key_is("job/j/other/", "job=\"j\",other=\"\"");
}

static void test_key_text_escaped(void **state) {
    (void)state;
    /* `x"y` (eCJ5), `a\b` (YVxi), a newline (Cg). */
    key_is("job/j/q@base64/eCJ5", "job=\"j\",q=\"x\\\"y\"");
    key_is("job/j/b@base64/YVxi", "b=\"a\\\\b\",job=\"j\"");
    key_is("job/j/n@base64/Cg", "job=\"j\",n=\"\\n\"");
    key_is("job@base64/eCJ5", "job=\"x\\\"y\"");
    /* Values are kept unescaped. */
    assert_int_equal(parse("job/j/q@base64/eCJ5"), 0);
    assert_string_equal(KEY.values[1], "x\"y");
    /* UTF-8 is fine: "é" is w6k. */
    key_is("job/j/e@base64/w6k", "e=\"\xc3\xa9\",job=\"j\"");
}

static void test_invalid_utf8_refused(void **state) {
    (void)state;
    /* 0xff ("_w"), a lone continuation byte 0x80 ("gA"), a truncated sequence 0xc3 ("ww"). */
    bad_path("job/j/a@base64/_w", "label a: value is not valid UTF-8");
    bad_path("job/j/a@base64/gA", "label a: value is not valid UTF-8");
    bad_path("job/j/a@base64/ww", "label a: value is not valid UTF-8");
    bad_path("job@base64/_w", "label job: value is not valid UTF-8");
    bad_path("job/j/a/\xff", "label a: value is not valid UTF-8");
}

static void test_too_many_labels(void **state) {
    (void)state;
    char path[1024] = "job/j";
    for (int i = 0; i < PUSH_MAX_KEY_LABELS - 1; i++)
        snprintf(path + strlen(path), sizeof path - strlen(path), "/l%d/v", i);
    assert_int_equal(parse(path), 0);
    assert_int_equal(KEY.n, PUSH_MAX_KEY_LABELS);
    strcat(path, "/extra/v");
    assert_int_equal(parse(path), -1);
    assert_non_null(strstr(ERR, "labels in the grouping key"));
    /* Repeats of one name count once... */
    char rep[2048] = "job/j";
    for (int i = 0; i < PUSH_MAX_KEY_LABELS - 1; i++)
        strcat(rep, "/a/v");
    assert_int_equal(parse(rep), 0);
    assert_int_equal(KEY.n, 2);
    /* ...but a path of more components than a full key has is refused as it is split. */
    for (int i = 0; i < 10; i++)
        strcat(rep, "/a/v");
    assert_int_equal(parse(rep), -1);
    assert_non_null(strstr(ERR, "labels in the grouping key"));
}

/* ---- push_families_build ------------------------------------------------------------------ */

static exp_text_result BODY;
static push_families FAMS;

static int teardown_build(void **state) {
    (void)state;
    push_families_free(&FAMS);
    exp_text_free(&BODY);
    push_key_free(&KEY);
    return 0;
}

/* Parse body and path, then build. Returns push_families_build's result. */
static int build(const char *path, const char *body) {
    push_families_free(&FAMS);
    exp_text_free(&BODY);
    char perr[256];
    if (exp_text_parse(body, strlen(body), NULL, &BODY, perr, sizeof perr) != 0)
        fail_msg("body does not parse: %s", perr);
    assert_int_equal(parse(path), 0);
    memset(ERR, 0, sizeof ERR);
    return push_families_build(&BODY, &KEY, &FAMS, ERR, sizeof ERR);
}

static const reg_push_family *fam(const char *name) {
    for (size_t i = 0; i < FAMS.n; i++)
        if (strcmp(FAMS.families[i].name, name) == 0)
            return &FAMS.families[i];
    return NULL;
}

static void test_build_labels(void **state) {
    (void)state;
    assert_int_equal(build("job/j", "m 1\n"), 0);
    assert_int_equal(FAMS.n, 1);
    const reg_push_family *f = fam("m");
    assert_int_equal(f->nseries, 1);
    assert_string_equal(f->series[0].labels, "instance=\"\",job=\"j\"");
    assert_int_equal(f->series[0].labels_len, strlen(f->series[0].labels));
    assert_int_equal(f->series[0].nvals, 1);
    assert_true(f->series[0].vals[0] == 1);
    assert_int_equal(f->type, REG_UNTYPED);
    assert_null(f->help);
    /* Grouping labels override the body's; body labels sorted in; a body instance kept. */
    assert_int_equal(build("job/j/a/key", "# HELP m_total Help.\n# TYPE m_total counter\n"
                                          "m_total{z=\"1\",job=\"body\",a=\"body\",b=\"2\"} 3\n"
                                          "m_total{instance=\"i\",b=\"3\"} 4\n"),
                     0);
    f = fam("m_total");
    assert_non_null(f);
    assert_int_equal(f->type, REG_COUNTER);
    assert_string_equal(f->help, "Help.");
    assert_int_equal(f->nseries, 2);
    assert_string_equal(f->series[0].labels, "a=\"key\",b=\"2\",instance=\"\",job=\"j\",z=\"1\"");
    assert_string_equal(f->series[1].labels, "a=\"key\",b=\"3\",instance=\"i\",job=\"j\"");
    /* A key instance overrides the body's. */
    assert_int_equal(build("job/j/instance/k", "m{instance=\"b\"} 1\n"), 0);
    assert_string_equal(fam("m")->series[0].labels, "instance=\"k\",job=\"j\"");
    /* Escaping in the rendered text. */
    assert_int_equal(build("job/j", "m{a=\"x\\\"y\\\\z\\n\"} 1\n"), 0);
    assert_string_equal(fam("m")->series[0].labels, "a=\"x\\\"y\\\\z\\n\",instance=\"\",job=\"j\"");
}

static void test_build_refusals(void **state) {
    (void)state;
    assert_int_equal(build("job/j", "m 1 1000\n"), -1);
    assert_string_equal(ERR, "pushed metrics must not have timestamps (m, line 1)");
    assert_null(FAMS.families);
    assert_int_equal(build("job/j", "a 1\nm{x=\"1\"} 1\nm{x=\"2\"} 1 5\n"), -1);
    assert_string_equal(ERR, "pushed metrics must not have timestamps (m, line 3)");
    /* Reserved body label names. */
    assert_int_equal(build("job/j", "m{__x=\"1\"} 1\n"), -1);
    assert_string_equal(ERR, "m: label name \"__x\" is reserved");
    /* le in the key for a histogram, quantile for a summary: refused; on a gauge: a label. */
    assert_int_equal(build("job/j/le/1", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\n"), -1);
    assert_string_equal(ERR, "h: grouping label \"le\" is reserved for its type");
    assert_int_equal(build("job/j/quantile/1", "# TYPE s summary\ns_count 1\n"), -1);
    assert_string_equal(ERR, "s: grouping label \"quantile\" is reserved for its type");
    assert_int_equal(build("job/j/le/1", "g 1\n"), 0);
    assert_string_equal(fam("g")->series[0].labels, "instance=\"\",job=\"j\",le=\"1\"");
    assert_int_equal(build("job/j/quantile/1", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\n"), 0);
    /* A histogram without +Inf, or a bucket twice. */
    assert_int_equal(build("job/j", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n"), -1);
    assert_string_equal(ERR, "h: histogram without a +Inf bucket");
    assert_int_equal(build("job/j", "# TYPE h histogram\nh_sum 1\nh_count 1\n"), -1);
    assert_string_equal(ERR, "h: histogram without a +Inf bucket");
    assert_int_equal(build("job/j", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                                    "h_bucket{le=\"1.0\"} 1\nh_bucket{le=\"+Inf\"} 1\n"),
                     -1);
    assert_non_null(strstr(ERR, "given twice"));
    /* Labels too long for the registry. */
    size_t n = REG_MAX_KEY + 100;
    char *body = malloc(n + 32);
    assert_non_null(body);
    strcpy(body, "m{a=\"");
    memset(body + 5, 'v', n);
    strcpy(body + 5 + n, "\"} 1\n");
    assert_int_equal(build("job/j", body), -1);
    assert_non_null(strstr(ERR, "labels longer than"));
    free(body);
}

static void test_build_histograms_and_summaries(void **state) {
    (void)state;
    /* Buckets given out of order are sorted; +Inf last; sum and count first. */
    assert_int_equal(build("job/j", "# TYPE h histogram\n"
                                    "h_bucket{le=\"+Inf\"} 5\nh_bucket{le=\"0.5\"} 1\n"
                                    "h_bucket{le=\"2\"} 4\nh_bucket{le=\"1\"} 2\n"
                                    "h_sum 7.5\nh_count 5\n"),
                     0);
    const reg_push_family *h = fam("h");
    assert_non_null(h);
    assert_int_equal(h->type, REG_HISTOGRAM);
    assert_int_equal(h->nseries, 1);
    const reg_push_series *s = &h->series[0];
    assert_int_equal(s->nvals, 10);
    const double want[] = {7.5, 5, 0.5, 1, 1, 2, 2, 4, INFINITY, 5};
    for (size_t i = 0; i < 10; i++)
        assert_true(s->vals[i] == want[i]);
    /* Without _count (and _sum): 0. */
    assert_int_equal(build("job/j", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\n"), 0);
    s = &fam("h")->series[0];
    assert_int_equal(s->nvals, 4);
    assert_true(s->vals[0] == 0);
    assert_true(s->vals[1] == 0);
    assert_true(isinf(s->vals[2]));
    assert_true(s->vals[3] == 3);
    /* Summary: quantiles sorted. */
    assert_int_equal(build("job/j", "# TYPE s summary\n"
                                    "s{quantile=\"0.9\"} 9\ns{quantile=\"0.5\"} 5\n"
                                    "s_sum 10\ns_count 2\n"),
                     0);
    s = &fam("s")->series[0];
    assert_int_equal(s->nvals, 6);
    const double wants[] = {10, 2, 0.5, 5, 0.9, 9};
    for (size_t i = 0; i < 6; i++)
        assert_true(s->vals[i] == wants[i]);
    /* A summary with count only. */
    assert_int_equal(build("job/j", "# TYPE s summary\ns_count 4\n"), 0);
    s = &fam("s")->series[0];
    assert_int_equal(s->nvals, 2);
    assert_true(s->vals[0] == 0 && s->vals[1] == 4);
}

static void test_build_drops_push_times(void **state) {
    (void)state;
    assert_int_equal(build("job/j", "a 1\n# TYPE push_time_seconds gauge\npush_time_seconds 5\n"
                                    "push_failure_time_seconds 6\nb 2\n"),
                     0);
    assert_int_equal(FAMS.n, 2);
    assert_string_equal(FAMS.families[0].name, "a");
    assert_string_equal(FAMS.families[1].name, "b");
    assert_null(fam(REG_PUSH_TIME_NAME));
    assert_null(fam(REG_PUSH_FAILURE_TIME_NAME));
    /* Even one with a timestamp or bad labels is dropped, not refused. */
    assert_int_equal(build("job/j", "push_time_seconds{__x=\"1\"} 5 100\n"), 0);
    assert_int_equal(FAMS.n, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_job, teardown),
        cmocka_unit_test_teardown(test_label_pairs, teardown),
        cmocka_unit_test_teardown(test_base64_values, teardown),
        cmocka_unit_test_teardown(test_invalid_base64, teardown),
        cmocka_unit_test_teardown(test_invalid_base64_message_quotes_value_as_given, teardown),
        cmocka_unit_test_teardown(test_odd_components, teardown),
        cmocka_unit_test_teardown(test_not_a_push_path, teardown),
        cmocka_unit_test_teardown(test_improper_label_names, teardown),
        cmocka_unit_test_teardown(test_repeated_labels, teardown),
        cmocka_unit_test_teardown(test_empty_instance_dropped, teardown),
        cmocka_unit_test_teardown(test_key_text_escaped, teardown),
        cmocka_unit_test_teardown(test_invalid_utf8_refused, teardown),
        cmocka_unit_test_teardown(test_too_many_labels, teardown),
        cmocka_unit_test_teardown(test_build_labels, teardown_build),
        cmocka_unit_test_teardown(test_build_refusals, teardown_build),
        cmocka_unit_test_teardown(test_build_histograms_and_summaries, teardown_build),
        cmocka_unit_test_teardown(test_build_drops_push_times, teardown_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
