/* test_config_util.c - durations and metric / label name rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
    static const char *const bad[] = {"",
                                      "s",
                                      "5",
                                      "30",
                                      "-5m",
                                      "+5m",
                                      "5 m",
                                      " 5m",
                                      "5m ",
                                      "5x",
                                      "5M",
                                      "1h30",
                                      "h1",
                                      ".s",
                                      "1..5s",
                                      "1e3s",
                                      "0x10s",
                                      "∞s",
                                      "99999999999999999999s",
                                      "585y",
                                      "1000000000000000000000ns",
                                      "5m-1s",
                                      "NaN"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ns = 777;
        print_message("%s\n", bad[i]);
        assert_int_equal(cfg_parse_duration(bad[i], &ns), -1);
        assert_true(ns == 777); /* untouched on error */
    }
    assert_int_equal(cfg_parse_duration(NULL, NULL), -1);
}

static void test_names(void **state) {
    (void)state;
    static const char *const metric_ok[] = {
        "a", "_", ":", "a:b_c", "http_requests_total", "A9", "__reserved_but_valid", "a:1"};
    static const char *const metric_bad[] = {"", "1a", "a-b", "a b", "a.b", "é", "a\n", "a{"};
    for (size_t i = 0; i < sizeof metric_ok / sizeof metric_ok[0]; i++)
        assert_true(cfg_valid_metric_name(metric_ok[i]));
    for (size_t i = 0; i < sizeof metric_bad / sizeof metric_bad[0]; i++)
        assert_false(cfg_valid_metric_name(metric_bad[i]));
    assert_false(cfg_valid_metric_name(NULL));

    static const char *const label_ok[] = {"a", "_", "le", "quantile", "__name__", "a9_b"};
    static const char *const label_bad[] = {"", "1a", "a:b", "a-b", "a b", "ü", ":"};
    for (size_t i = 0; i < sizeof label_ok / sizeof label_ok[0]; i++)
        assert_true(cfg_valid_label_name(label_ok[i]));
    for (size_t i = 0; i < sizeof label_bad / sizeof label_bad[0]; i++)
        assert_false(cfg_valid_label_name(label_bad[i]));
    assert_false(cfg_valid_label_name(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations_valid),
        cmocka_unit_test(test_durations_invalid),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
