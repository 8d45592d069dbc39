/* test_strmap.c - unit tests of the registry's string map (reg_strmap_*): insert, replace,
 * lookup, growth, borrowed and copied keys, byte-string keys, iteration, removal (against a
 * reference model under random operations). */
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

static void test_remove_basic(void **state) {
    (void)state;
    reg_strmap *m = reg_strmap_create(0);
    assert_non_null(m);
    /* Before the first put (no slots), and on NULL. */
    assert_int_equal(reg_strmap_remove(m, "a", 1), 0);
    assert_int_equal(reg_strmap_remove(NULL, "a", 1), 0);
    assert_int_equal(reg_strmap_put(m, "a", 1, VAL(1)), REG_OK);
    assert_int_equal(reg_strmap_put(m, "b", 1, VAL(2)), REG_OK);
    assert_int_equal(reg_strmap_remove(m, "c", 1), 0);
    assert_int_equal(reg_strmap_remove(m, "a", 0), 0); /* the empty key is another key */
    assert_int_equal(reg_strmap_remove(m, NULL, 1), 0);
    assert_int_equal(reg_strmap_remove(m, "a", 1), 1);
    assert_null(reg_strmap_get(m, "a", 1));
    assert_ptr_equal(reg_strmap_get(m, "b", 1), VAL(2));
    assert_int_equal(reg_strmap_count(m), 1);
    assert_int_equal(reg_strmap_remove(m, "a", 1), 0);
    /* The iteration no longer sees it. */
    size_t pos = 0;
    const char *key;
    assert_int_equal(reg_strmap_next(m, &pos, &key, NULL, NULL), 1);
    assert_string_equal(key, "b");
    assert_int_equal(reg_strmap_next(m, &pos, &key, NULL, NULL), 0);
    /* Put back: a new entry. */
    assert_int_equal(reg_strmap_put(m, "a", 1, VAL(3)), REG_OK);
    assert_ptr_equal(reg_strmap_get(m, "a", 1), VAL(3));
    assert_int_equal(reg_strmap_count(m), 2);
    /* The empty key, given as NULL. */
    assert_int_equal(reg_strmap_put(m, "", 0, VAL(4)), REG_OK);
    assert_int_equal(reg_strmap_remove(m, NULL, 0), 1);
    assert_null(reg_strmap_get(m, "", 0));
    /* Down to empty, then up again. */
    assert_int_equal(reg_strmap_remove(m, "a", 1), 1);
    assert_int_equal(reg_strmap_remove(m, "b", 1), 1);
    assert_int_equal(reg_strmap_count(m), 0);
    assert_null(reg_strmap_get(m, "b", 1));
    pos = 0;
    assert_int_equal(reg_strmap_next(m, &pos, NULL, NULL, NULL), 0);
    assert_int_equal(reg_strmap_put(m, "b", 1, VAL(5)), REG_OK);
    assert_ptr_equal(reg_strmap_get(m, "b", 1), VAL(5));
    reg_strmap_free(m);
}

/* Copied keys: remove frees the map's copy (LeakSanitizer in the address build), and keys
 * moved back by a removal stay the map's own (the caller's buffer is reused every time). */
static void test_remove_copied_keys(void **state) {
    (void)state;
    enum { N = 300 };
    reg_strmap *m = reg_strmap_create(REG_STRMAP_COPY);
    assert_non_null(m);
    char k[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            int n = snprintf(k, sizeof k, "key%d", i);
            assert_int_equal(reg_strmap_put(m, k, (size_t)n, VAL(i + 1)), REG_OK);
        }
        memset(k, 'x', sizeof k);
        for (int i = 0; i < N; i += 2) {
            int n = snprintf(k, sizeof k, "key%d", i);
            assert_int_equal(reg_strmap_remove(m, k, (size_t)n), 1);
            memset(k, 'y', sizeof k);
        }
        assert_int_equal(reg_strmap_count(m), N / 2);
        for (int i = 0; i < N; i++) {
            int n = snprintf(k, sizeof k, "key%d", i);
            void *want = i % 2 ? VAL(i + 1) : NULL;
            assert_ptr_equal(reg_strmap_get(m, k, (size_t)n), want);
        }
        /* Every key handed out by the walk is a NUL-terminated copy. */
        size_t pos = 0, len, seen = 0;
        const char *key;
        void *val;
        while (reg_strmap_next(m, &pos, &key, &len, &val)) {
            int n = snprintf(k, sizeof k, "key%d", (int)((uintptr_t)val - 1));
            assert_int_equal(len, (size_t)n);
            assert_string_equal(key, k);
            seen++;
        }
        assert_int_equal(seen, N / 2);
    }
    /* Remove the rest: nothing left to free but the slots. */
    for (int i = 1; i < N; i += 2) {
        int n = snprintf(k, sizeof k, "key%d", i);
        assert_int_equal(reg_strmap_remove(m, k, (size_t)n), 1);
    }
    assert_int_equal(reg_strmap_count(m), 0);
    reg_strmap_free(m);
}

/* A small deterministic generator (the test's own seed; the map's is random). */
static uint64_t rng_state;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random puts, removes and gets over a key space of nkeys against a reference array; after
 * every operation, count and every key agree, and periodically the walk does too. A small key
 * space keeps the table small and its probe runs long and wrapping, so removals shift
 * entries back across the end of the slot array. */
static void model_run(unsigned flags, int nkeys, int ops, uint64_t seed) {
    reg_strmap *m = reg_strmap_create(flags);
    assert_non_null(m);
    void **model = calloc((size_t)nkeys, sizeof *model);
    char(*keys)[24] = calloc((size_t)nkeys, sizeof *keys);
    size_t *lens = calloc((size_t)nkeys, sizeof *lens);
    assert_true(model && keys && lens);
    for (int i = 0; i < nkeys; i++)
        lens[i] = (size_t)snprintf(keys[i], sizeof keys[i], "k%d", i);
    rng_state = seed;
    size_t count = 0;
    char buf[24];
    for (int op = 0; op < ops; op++) {
        int i = (int)(rng() % (uint64_t)nkeys);
        uint64_t what = rng() % 100;
        /* Copying maps get the key from a buffer that is overwritten right after. */
        const char *k = keys[i];
        if (flags & REG_STRMAP_COPY) {
            memcpy(buf, keys[i], lens[i] + 1);
            k = buf;
        }
        if (what < 45) {
            void *v = VAL((uint64_t)op + 1);
            assert_int_equal(reg_strmap_put(m, k, lens[i], v), REG_OK);
            count += model[i] == NULL;
            model[i] = v;
        } else if (what < 90) {
            assert_int_equal(reg_strmap_remove(m, k, lens[i]), model[i] != NULL);
            count -= model[i] != NULL;
            model[i] = NULL;
        } else {
            assert_ptr_equal(reg_strmap_get(m, k, lens[i]), model[i]);
        }
        memset(buf, 0, sizeof buf);
        assert_int_equal(reg_strmap_count(m), count);
        if (nkeys <= 64 || op % 97 == 0)
            for (int j = 0; j < nkeys; j++)
                if (reg_strmap_get(m, keys[j], lens[j]) != model[j])
                    fail_msg("op %d (seed %llu): key %s: %p, want %p", op, (unsigned long long)seed,
                             keys[j], reg_strmap_get(m, keys[j], lens[j]), model[j]);
        if (op % 251 == 0) {
            size_t pos = 0, len, seen = 0;
            const char *key;
            void *val;
            while (reg_strmap_next(m, &pos, &key, &len, &val)) {
                int j = atoi(key + 1);
                assert_true(j >= 0 && j < nkeys);
                assert_int_equal(len, lens[j]);
                assert_memory_equal(key, keys[j], len);
                assert_ptr_equal(val, model[j]);
                seen++;
            }
            assert_int_equal(seen, count);
        }
    }
    /* Drain in random order. */
    for (int j = 0; j < nkeys; j++) {
        int i = (j * 7919) % nkeys;
        assert_int_equal(reg_strmap_remove(m, keys[i], lens[i]), model[i] != NULL);
        count -= model[i] != NULL;
        model[i] = NULL;
        assert_int_equal(reg_strmap_count(m), count);
    }
    for (int j = 0; j < nkeys; j++)
        assert_null(reg_strmap_get(m, keys[j], lens[j]));
    reg_strmap_free(m);
    free(model);
    free(keys);
    free(lens);
}

static void test_remove_against_model_small(void **state) {
    (void)state;
    /* Many maps (each with its own seed, so other collision patterns), small key spaces. */
    for (uint64_t seed = 1; seed <= 200; seed++)
        model_run(seed % 2 ? REG_STRMAP_COPY : 0, 3 + (int)(seed % 14), 2000, seed);
}

static void test_remove_against_model_large(void **state) {
    (void)state;
    model_run(0, 5000, 200000, 12345);
    model_run(REG_STRMAP_COPY, 300, 100000, 777);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_byte_keys),
        cmocka_unit_test(test_copied_keys),
        cmocka_unit_test(test_borrowed_keys),
        cmocka_unit_test(test_growth_and_iteration),
        cmocka_unit_test(test_independent_maps),
        cmocka_unit_test(test_null_key_is_the_empty_key),
        cmocka_unit_test(test_remove_basic),
        cmocka_unit_test(test_remove_copied_keys),
        cmocka_unit_test(test_remove_against_model_small),
        cmocka_unit_test(test_remove_against_model_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
