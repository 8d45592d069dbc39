/* test_config_util.c - durations and metric / label name rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

#define S 1000000000ULL

static void test_durations_valid(void **state) {
    (void)state;
    static const struct {
        const char *s;
        uint64_t ns;
    } ok[] = {
        {"0", 0},
        {"0s", 0},
        {"30s", 30 * S},
        {"5m", 300 * S},
        {"1h", 3600 * S},
        {"1h30m", 5400 * S},
        {"1h30m15s", 5415 * S},
        {"500ms", 500000000ULL},
        {"1d", 86400 * S},
        {"1w", 7 * 86400 * S},
        {"1y", 365 * 86400 * S},
        {"2d12h", 216000 * S},
        {"10ns", 10},
        {"15us", 15000},
        {"15\xc2\xb5s", 15000}, /* micro sign */
        {"15\xce\xbcs", 15000}, /* greek mu */
        {"1.5h", 5400 * S},     /* Go syntax, as statsd_exporter files may use */
        {"0.5s", 500000000ULL},
        {"1m1m", 120 * S},
        {"584y", 584ULL * 365 * 86400 * S},
        /* A fraction keeps 18 digits; further digits are read and ignored. */
        {"1.0000000000000000009999s", S},
        {"0.1234567890123456789s", 123456789ULL},
        /* The largest duration: UINT64_MAX ns. */
        {"18446744073.709551615s", UINT64_MAX},
        {"18446744073s709551615ns", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t ns = 12345;
        print_message("%s\n", ok[i].s);
        assert_int_equal(cfg_parse_duration(ok[i].s, &ns), 0);
        assert_true(ns == ok[i].ns);
    }
}

static void test_durations_invalid(void **state) {
    (void)state;
    static const char *const bad[] = {
        "", "s", "5", "30", "-5m", "+5m", "5 m", " 5m", "5m ", "5x", "5M", "1h30", "h1", ".s",
        "1..5s", "1e3s", "0x10s", "∞s", "99999999999999999999s", "585y", "1000000000000000000000ns",
        "5m-1s", "NaN",
        /* one past UINT64_MAX ns: by the fraction, by the sum */
        "18446744073.709551616s", "18446744073.8s", "18446744073s709551616ns", "18446744073s1s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ns = 777;
        print_message("%s\n", bad[i]);
        assert_int_equal(cfg_parse_duration(bad[i], &ns), -1);
        assert_true(ns == 777); /* untouched on error */
    }
    assert_int_equal(cfg_parse_duration(NULL, NULL), -1);
}

/* The name rules the loader uses are the registry's (reg_valid_*): one rule for a file, a
 * family definition and an ingested name alike. */
static void test_setting_changed(void **state) {
    (void)state;
    /* NULL and "" both mean "not set". */
    assert_int_equal(cfg_setting_changed(NULL, NULL), 0);
    assert_int_equal(cfg_setting_changed(NULL, ""), 0);
    assert_int_equal(cfg_setting_changed("", NULL), 0);
    assert_int_equal(cfg_setting_changed("a", NULL), 1);
    assert_int_equal(cfg_setting_changed(NULL, "a"), 1);
    assert_int_equal(cfg_setting_changed("a", "a"), 0);
    assert_int_equal(cfg_setting_changed("a", "b"), 1);
}

/* The error list: growth past its first block, positions, a NULL file, printing. */
static void test_errors_list(void **state) {
    (void)state;
    cfg_errors e = {0};
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(cfg_errors_add_at(&e, i % 2 ? "f.yml" : NULL, i, i + 1, "e%u", i), 0);
    assert_int_equal(e.count, 20);
    assert_true(e.cap >= 20);
    assert_string_equal(e.items[0].file, "<config>");
    assert_string_equal(e.items[19].file, "f.yml");
    assert_string_equal(e.items[19].message, "e19");
    assert_int_equal(e.items[19].line, 19);
    assert_int_equal(e.items[19].column, 20);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cfg_errors_print(NULL, f); /* nothing */
    cfg_errors one = {.items = &e.items[1], .count = 1, .cap = 1};
    cfg_errors_print(&one, f);
    /* An item without a file (built by hand) prints as <config>; line 0 has no position. */
    cfg_error bare = {.file = NULL, .line = 0, .column = 0, .message = "m"};
    cfg_errors b = {.items = &bare, .count = 1, .cap = 1};
    cfg_errors_print(&b, f);
    fclose(f);
    assert_string_equal(buf, "f.yml:1:2: e1\n<config>: m\n");
    free(buf);
    cfg_errors_free(&e);
    assert_int_equal(e.count, 0);
    assert_null(e.items);
    cfg_errors_free(NULL);
}

static void test_names(void **state) {
    (void)state;
    static const char *const metric_ok[] = {
        "a", "_", ":", "a:b_c", "http_requests_total", "A9", "__reserved_but_valid", "a:1"};
    static const char *const metric_bad[] = {"", "1a", "a-b", "a b", "a.b", "é", "a\n", "a{"};
    for (size_t i = 0; i < sizeof metric_ok / sizeof metric_ok[0]; i++)
        assert_true(reg_valid_metric_name(metric_ok[i], strlen(metric_ok[i])));
    for (size_t i = 0; i < sizeof metric_bad / sizeof metric_bad[0]; i++)
        assert_false(reg_valid_metric_name(metric_bad[i], strlen(metric_bad[i])));
    assert_false(reg_valid_metric_name(NULL, 0));
    assert_false(reg_valid_metric_name("a\0b", 3));   /* a NUL inside is no name character */
    assert_true(reg_valid_metric_name("ab_junk", 2)); /* only the given bytes count */

    static const char *const label_ok[] = {"a", "_", "le", "quantile", "__name__", "a9_b"};
    static const char *const label_bad[] = {"", "1a", "a:b", "a-b", "a b", "ü", ":"};
    for (size_t i = 0; i < sizeof label_ok / sizeof label_ok[0]; i++)
        assert_true(reg_valid_label_name(label_ok[i], strlen(label_ok[i])));
    for (size_t i = 0; i < sizeof label_bad / sizeof label_bad[0]; i++)
        assert_false(reg_valid_label_name(label_bad[i], strlen(label_bad[i])));
    assert_false(reg_valid_label_name(NULL, 0));
}

/* Both rules bound a name at REG_MAX_NAME bytes. */
static void test_name_length(void **state) {
    (void)state;
    char name[REG_MAX_NAME + 2];
    memset(name, 'a', sizeof name);
    assert_true(reg_valid_metric_name(name, REG_MAX_NAME));
    assert_false(reg_valid_metric_name(name, REG_MAX_NAME + 1));
    assert_true(reg_valid_label_name(name, REG_MAX_NAME));
    assert_false(reg_valid_label_name(name, REG_MAX_NAME + 1));
}

/* "__" names always; "le" only in histograms, "quantile" only in summaries. */
static void test_reserved_label_names(void **state) {
    (void)state;
    static const struct {
        reg_type type;
        const char *name;
        int reserved;
    } cases[] = {
        {REG_COUNTER, "__name__", 1}, {REG_UNTYPED, "__x", 1},   {REG_GAUGE, "__", 1},
        {REG_COUNTER, "_x", 0},       {REG_HISTOGRAM, "le", 1},  {REG_HISTOGRAM, "quantile", 0},
        {REG_SUMMARY, "quantile", 1}, {REG_SUMMARY, "le", 0},    {REG_COUNTER, "le", 0},
        {REG_UNTYPED, "quantile", 0}, {REG_HISTOGRAM, "lee", 0}, {REG_SUMMARY, "quantiles", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("%d %s\n", (int)cases[i].type, cases[i].name);
        assert_int_equal(
            reg_reserved_label_name(cases[i].type, cases[i].name, strlen(cases[i].name)),
            cases[i].reserved);
    }
    assert_int_equal(reg_reserved_label_name(REG_HISTOGRAM, "le_x", 2), 1); /* bytes given */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations_valid),
        cmocka_unit_test(test_durations_invalid),
        cmocka_unit_test(test_setting_changed),
        cmocka_unit_test(test_errors_list),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_name_length),
        cmocka_unit_test(test_reserved_label_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
