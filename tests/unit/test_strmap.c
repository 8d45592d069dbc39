/* test_strmap.c - unit tests of the registry's string map (reg_strmap_*): insert, replace,
 * lookup, growth, borrowed and copied keys, byte-string keys, iteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"

#define VAL(i) ((void *)(uintptr_t)(i))

static void test_put_get_replace(void **state) {
    (void)state;
    reg_strmap *m = reg_strmap_create(0);
    assert_non_null(m);
    assert_int_equal(reg_strmap_count(m), 0);
    assert_null(reg_strmap_get(m, "a", 1));
    assert_int_equal(reg_strmap_put(m, "alpha", 5, VAL(1)), REG_OK);
    assert_int_equal(reg_strmap_put(m, "beta", 4, VAL(2)), REG_OK);
    assert_ptr_equal(reg_strmap_get(m, "alpha", 5), VAL(1));
    assert_ptr_equal(reg_strmap_get(m, "beta", 4), VAL(2));
    /* A prefix, a longer key and a different length are other keys. */
    assert_null(reg_strmap_get(m, "alph", 4));
    assert_null(reg_strmap_get(m, "alphabet", 8));
    assert_null(reg_strmap_get(m, "alpha", 4));
    /* Replacing keeps one entry. */
    assert_int_equal(reg_strmap_put(m, "alpha", 5, VAL(3)), REG_OK);
    assert_ptr_equal(reg_strmap_get(m, "alpha", 5), VAL(3));
    assert_int_equal(reg_strmap_count(m), 2);
    reg_strmap_free(m);
}

static void test_bad_arguments(void **state) {
    (void)state;
    reg_strmap *m = reg_strmap_create(0);
    assert_non_null(m);
    /* NULL values would read as "absent": refused. */
    assert_int_equal(reg_strmap_put(m, "k", 1, NULL), REG_EINVAL);
    assert_int_equal(reg_strmap_put(NULL, "k", 1, VAL(1)), REG_EINVAL);
    assert_int_equal(reg_strmap_put(m, NULL, 3, VAL(1)), REG_EINVAL);
    assert_int_equal(reg_strmap_count(m), 0);
    assert_null(reg_strmap_get(NULL, "k", 1));
    assert_int_equal(reg_strmap_count(NULL), 0);
    size_t pos = 0;
    assert_int_equal(reg_strmap_next(NULL, &pos, NULL, NULL, NULL), 0);
    reg_strmap_free(NULL);
    reg_strmap_free(m);
}

/* Keys are (bytes, length): NULs inside and the empty key are keys like any other. */
static void test_byte_keys(void **state) {
    (void)state;
    reg_strmap *m = reg_strmap_create(REG_STRMAP_COPY);
    assert_non_null(m);
    assert_int_equal(reg_strmap_put(m, "a\0b", 3, VAL(1)), REG_OK);
    assert_int_equal(reg_strmap_put(m, "a\0c", 3, VAL(2)), REG_OK);
    assert_int_equal(reg_strmap_put(m, "", 0, VAL(3)), REG_OK);
    assert_ptr_equal(reg_strmap_get(m, "a\0b", 3), VAL(1));
    assert_ptr_equal(reg_strmap_get(m, "a\0c", 3), VAL(2));
    assert_ptr_equal(reg_strmap_get(m, "", 0), VAL(3));
    assert_ptr_equal(reg_strmap_get(m, NULL, 0), VAL(3));
    assert_null(reg_strmap_get(m, "a", 1));
    assert_int_equal(reg_strmap_count(m), 3);
    reg_strmap_free(m);
}

/* A copying map keeps its own key: the caller's buffer may change or go. */
static void test_copied_keys(void **state) {
    (void)state;
    reg_strmap *m = reg_strmap_create(REG_STRMAP_COPY);
    assert_non_null(m);
    char *k = strdup("anchor");
    assert_int_equal(reg_strmap_put(m, k, 6, VAL(7)), REG_OK);
    memcpy(k, "xxxxxx", 6);
    free(k);
    assert_ptr_equal(reg_strmap_get(m, "anchor", 6), VAL(7));
    size_t pos = 0, len = 0;
    const char *key = NULL;
    assert_int_equal(reg_strmap_next(m, &pos, &key, &len, NULL), 1);
    assert_int_equal(len, 6);
    assert_string_equal(key, "anchor"); /* copies are NUL-terminated */
    reg_strmap_free(m);
}

/* A borrowing map points at the caller's bytes: the iteration hands back that pointer. */
static void test_borrowed_keys(void **state) {
    (void)state;
    static const char text[] = "one.two";
    reg_strmap *m = reg_strmap_create(0);
    assert_non_null(m);
    assert_int_equal(reg_strmap_put(m, text + 4, 3, VAL(2)), REG_OK);
    assert_ptr_equal(reg_strmap_get(m, "two", 3), VAL(2));
    size_t pos = 0;
    const char *key = NULL;
    assert_int_equal(reg_strmap_next(m, &pos, &key, NULL, NULL), 1);
    assert_ptr_equal(key, text + 4);
    assert_int_equal(reg_strmap_next(m, &pos, &key, NULL, NULL), 0);
    reg_strmap_free(m);
}

/* Many keys: every one found with its value after the table grew, none invented, and the
 * iteration visits each exactly once. */
static void test_growth_and_iteration(void **state) {
    (void)state;
    enum { N = 20000 };
    reg_strmap *m = reg_strmap_create(REG_STRMAP_COPY);
    assert_non_null(m);
    char k[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(k, sizeof k, "metric_%d", i);
        assert_int_equal(reg_strmap_put(m, k, (size_t)n, VAL(i + 1)), REG_OK);
    }
    assert_int_equal(reg_strmap_count(m), N);
    for (int i = 0; i < N; i++) {
        int n = snprintf(k, sizeof k, "metric_%d", i);
        assert_ptr_equal(reg_strmap_get(m, k, (size_t)n), VAL(i + 1));
        n = snprintf(k, sizeof k, "other_%d", i);
        assert_null(reg_strmap_get(m, k, (size_t)n));
    }
    unsigned char *seen = calloc(N, 1);
    assert_non_null(seen);
    size_t pos = 0, len, visits = 0;
    const char *key;
    void *val;
    while (reg_strmap_next(m, &pos, &key, &len, &val)) {
        uintptr_t i = (uintptr_t)val - 1;
        assert_true(i < N);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        int n = snprintf(k, sizeof k, "metric_%d", (int)i);
        assert_int_equal(len, (size_t)n);
        assert_memory_equal(key, k, len);
        visits++;
    }
    assert_int_equal(visits, N);
    free(seen);
    reg_strmap_free(m);
}

/* Two maps are independent (each has its own slots and seed). */
static void test_independent_maps(void **state) {
    (void)state;
    reg_strmap *a = reg_strmap_create(0), *b = reg_strmap_create(0);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(reg_strmap_put(a, "x", 1, VAL(1)), REG_OK);
    assert_null(reg_strmap_get(b, "x", 1));
    assert_int_equal(reg_strmap_put(b, "x", 1, VAL(2)), REG_OK);
    assert_ptr_equal(reg_strmap_get(a, "x", 1), VAL(1));
    assert_ptr_equal(reg_strmap_get(b, "x", 1), VAL(2));
    reg_strmap_free(a);
    reg_strmap_free(b);
}

/* A NULL key of length 0 is the empty key (put and get alike); a NULL key with a length is
 * no key at all, also in a map that holds entries. Iteration fills only the outputs asked. */
static void test_null_key_is_the_empty_key(void **state) {
    (void)state;
    reg_strmap *m = reg_strmap_create(0);
    assert_non_null(m);
    assert_int_equal(reg_strmap_put(m, NULL, 0, VAL(5)), REG_OK);
    assert_int_equal(reg_strmap_count(m), 1);
    assert_ptr_equal(reg_strmap_get(m, "", 0), VAL(5));
    assert_int_equal(reg_strmap_put(m, "", 0, VAL(6)), REG_OK); /* the same key */
    assert_int_equal(reg_strmap_count(m), 1);
    assert_ptr_equal(reg_strmap_get(m, NULL, 0), VAL(6));
    assert_null(reg_strmap_get(m, NULL, 4));
    assert_int_equal(reg_strmap_put(m, NULL, 4, VAL(7)), REG_EINVAL);
    assert_int_equal(reg_strmap_count(m), 1);
    size_t pos = 0, len = 99;
    void *val = NULL;
    assert_int_equal(reg_strmap_next(m, &pos, NULL, &len, &val), 1);
    assert_int_equal(len, 0);
    assert_ptr_equal(val, VAL(6));
    assert_int_equal(reg_strmap_next(m, &pos, NULL, &len, &val), 0);
    reg_strmap_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace),  cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_byte_keys),        cmocka_unit_test(test_copied_keys),
        cmocka_unit_test(test_borrowed_keys),    cmocka_unit_test(test_growth_and_iteration),
        cmocka_unit_test(test_independent_maps), cmocka_unit_test(test_null_key_is_the_empty_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
