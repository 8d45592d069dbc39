/* config_expect.h - the helpers the configuration loader's tests share: load a YAML string,
 * require it to load cleanly, or require exactly a list of positioned errors. Header-only
 * (static inline), included by path by the test files that use it; cmocka must be included
 * first. */
#ifndef ABACUS_TESTS_CONFIG_EXPECT_H
#define ABACUS_TESTS_CONFIG_EXPECT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* "line:col: message\n" for each error; the caller frees it. */
static inline char *render(const cfg_errors *e) {
    size_t cap = 1, len = 0;
    for (size_t i = 0; i < e->count; i++)
        cap += strlen(e->items[i].message) + 32;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = 0;
    for (size_t i = 0; i < e->count; i++)
        len += (size_t)snprintf(s + len, cap - len, "%u:%u: %s\n", e->items[i].line,
                                e->items[i].column, e->items[i].message);
    return s;
}

/* Load yaml as the file "t.yml". */
static inline cfg_config *load(const char *yaml, cfg_errors *e) {
    return cfg_load_string("t.yml", yaml, strlen(yaml), e);
}

/* Load yaml, which must have no error. */
static inline cfg_config *load_ok(const char *yaml) {
    cfg_errors e = {0};
    cfg_config *c = load(yaml, &e);
    if (!c) {
        char *s = render(&e);
        print_error("unexpected errors:\n%s", s);
        free(s);
    }
    assert_non_null(c);
    assert_int_equal(e.count, 0);
    cfg_errors_free(&e);
    return c;
}

/* Loading yaml fails with exactly the errors want ("line:col: message\n" each, in t.yml). */
static inline void expect_errors(const char *yaml, const char *want) {
    cfg_errors e = {0};
    cfg_config *c = load(yaml, &e);
    assert_null(c);
    char *got = render(&e);
    for (size_t i = 0; i < e.count; i++)
        assert_string_equal(e.items[i].file, "t.yml");
    if (strcmp(got, want) != 0)
        print_error("got:\n%s", got);
    assert_string_equal(got, want);
    free(got);
    cfg_errors_free(&e);
}

#endif
