/* test_config_quantiles.c - summary quantile lists with bad items: each problem is reported
 * once, and an item whose quantile is missing, null or invalid is no "duplicate" of another
 * such item. Found while raising config/ branch coverage (issue 10): read_objectives compared
 * the 0 left by a bad value and reported a false "duplicate quantile 0" for
 *     defaults: {summary_options: {quantiles: [{quantile: x, error: 0.1},
 *                                               {quantile: y, error: 0.1}]}}
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static void expect_messages(const char *yaml, const char *const *want, size_t n) {
    cfg_errors e = {0};
    cfg_config *c = cfg_load_string("t.yml", yaml, strlen(yaml), &e);
    /* Compared before asserting, so a failure leaks nothing (the sanitizer build). */
    int same = e.count == n;
    for (size_t i = 0; i < e.count; i++) {
        print_message("got %u:%u: %s\n", e.items[i].line, e.items[i].column, e.items[i].message);
        if (i < n && strcmp(e.items[i].message, want[i]) != 0)
            same = 0;
    }
    size_t count = e.count;
    cfg_errors_free(&e);
    cfg_free(c);
    assert_null(c);
    assert_int_equal(count, n);
    assert_true(same);
}

/* No "duplicate quantile 0" for quantiles that were never read. */
static void test_bug_invalid_quantiles_reported_as_duplicates(void **state) {
    (void)state;
    static const char *const two_invalid[] = {
        "defaults.summary_options.quantiles[0].quantile: expected a number, got \"x\"",
        "defaults.summary_options.quantiles[1].quantile: expected a number, got \"y\"",
    };
    expect_messages("defaults:\n"
                    "  summary_options:\n"
                    "    quantiles:\n"
                    "      - {quantile: x, error: 0.1}\n"
                    "      - {quantile: y, error: 0.1}\n",
                    two_invalid, 2);
    static const char *const missing_then_null[] = {
        "defaults.summary_options.quantiles[0]: missing required key \"quantile\"",
        "defaults.summary_options.quantiles[1].quantile: expected a number, got null",
    };
    expect_messages("defaults:\n"
                    "  summary_options:\n"
                    "    quantiles:\n"
                    "      - {error: 0.1}\n"
                    "      - {quantile: ~, error: 0.1}\n",
                    missing_then_null, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bug_invalid_quantiles_reported_as_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
