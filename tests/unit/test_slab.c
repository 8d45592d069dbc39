/* test_slab.c - the series allocator (registry/slab.h) on one thread: blocks are aligned,
 * sized to their class and never overlap; given-back blocks are handed out again; memory goes
 * back to the system when slabs empty; a registry's series, from slabs or from malloc, are
 * all given back when it is destroyed. stress_slab runs it on many threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "slab.h"

/* Fill the block of size bytes at p with a pattern made of tag. */
static void fill(unsigned char *p, size_t size, unsigned tag) {
    for (size_t i = 0; i < size; i++)
        p[i] = (unsigned char)(tag * 31u + i);
}

/* 1 when the block still holds tag's pattern. */
static int holds(const unsigned char *p, size_t size, unsigned tag) {
    for (size_t i = 0; i < size; i++)
        if (p[i] != (unsigned char)(tag * 31u + i))
            return 0;
    return 1;
}

static void test_sizes_and_alignment(void **state) {
    (void)state;
    size_t before = reg_slab_in_use();
    for (size_t size = 1; size <= REG_SLAB_MAX; size++) {
        size_t block = reg_slab_block_size(size);
        assert_true(block >= size && block < size + 8 && block % 8 == 0);
        unsigned char *p = reg_slab_alloc(size);
        assert_non_null(p);
        assert_true((uintptr_t)p % 8 == 0);
        fill(p, block, (unsigned)size);
        assert_int_equal(reg_slab_in_use(), before + 1);
        reg_slab_free(p);
    }
    assert_int_equal(reg_slab_in_use(), before);
}

/* Several slabs' worth of blocks of two classes: none overlaps another, and blocks given back
 * are handed out again without touching the others. */
static void test_no_overlap_and_reuse(void **state) {
    (void)state;
    enum { N = 4000 };
    static unsigned char *p[N];
    size_t before = reg_slab_in_use();
    for (unsigned i = 0; i < N; i++) {
        size_t size = i % 2 ? 72 : 40;
        p[i] = reg_slab_alloc(size);
        assert_non_null(p[i]);
        fill(p[i], size, i);
    }
    for (unsigned i = 0; i < N; i++)
        assert_true(holds(p[i], i % 2 ? 72 : 40, i));
    for (unsigned i = 0; i < N; i += 3) {
        reg_slab_free(p[i]);
        p[i] = NULL;
    }
    for (unsigned i = 0; i < N; i += 3) {
        size_t size = i % 2 ? 72 : 40;
        p[i] = reg_slab_alloc(size);
        assert_non_null(p[i]);
        fill(p[i], size, i + N);
    }
    for (unsigned i = 0; i < N; i++)
        assert_true(holds(p[i], i % 2 ? 72 : 40, i % 3 ? i : i + N));
    assert_int_equal(reg_slab_in_use(), before + N);
    for (unsigned i = 0; i < N; i++)
        reg_slab_free(p[i]);
    assert_int_equal(reg_slab_in_use(), before);
}

/* Resident memory of this process in bytes, from /proc/self/statm. */
static long resident(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld %ld", &pages, &rss), 2);
    fclose(f);
    return rss * 4096;
}

/* Slabs that empty go back to the system (all but one spare a class). */
static void test_memory_returns(void **state) {
    (void)state;
    enum { N = 200000, SIZE = 72 };
    void **p = malloc(N * sizeof *p);
    assert_non_null(p);
    memset(p, 0, N * sizeof *p); /* resident before the base is read */
    long base = resident();
    for (size_t i = 0; i < N; i++) {
        p[i] = reg_slab_alloc(SIZE);
        assert_non_null(p[i]);
        memset(p[i], 1, SIZE);
    }
    long full = resident();
    assert_true(full - base >= (long)N * SIZE * 9 / 10);
    for (size_t i = 0; i < N; i++)
        reg_slab_free(p[i]);
    long after = resident();
    free(p);
#if !REG_SLAB_ASAN /* there: malloc's, which keeps what it likes */
    assert_true(after - base <= (long)N * SIZE / 10);
#endif
    (void)after;
}

/* Every series a registry made, from a slab or (too big) from malloc, is given back by
 * deletes, the reaper and reg_destroy. */
static void test_registry_gives_back(void **state) {
    (void)state;
    size_t before = reg_slab_in_use();
    reg_registry *r = reg_create(NULL);
    assert_non_null(r);
    reg_thread *t = reg_thread_attach(r);
    static const char *const L[] = {"k"};
    reg_family_def d = {.name = "c_total", .type = REG_COUNTER, .nlabels = 1, .labels = L};
    reg_family *f;
    reg_begin(t);
    assert_int_equal(reg_family_add(t, &d, &f), REG_OK);
    static char v[3000];
    for (int i = 0; i < 3000; i++) {
        size_t len = (size_t)(i % 7 == 0 ? 2000 : i % 50); /* 2000: a block for malloc */
        memset(v, 'a' + i % 26, len);
        snprintf(v + len, 16, "%d", i);
        const char *vals[] = {v};
        assert_int_equal(reg_counter_add(t, f, vals, 1), REG_OK);
    }
    reg_end(t);
    assert_int_equal(reg_slab_in_use(), before + 3000 - 3000 / 7 - 1);
    for (int i = 0; i < 3000; i += 2) {
        size_t len = (size_t)(i % 7 == 0 ? 2000 : i % 50);
        memset(v, 'a' + i % 26, len);
        snprintf(v + len, 16, "%d", i);
        const char *vals[] = {v};
        assert_int_equal(reg_series_delete(r, f, vals), REG_OK);
    }
    reg_reap(r);
    reg_thread_detach(t);
    reg_destroy(r);
    assert_int_equal(reg_slab_in_use(), before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_and_alignment),
        cmocka_unit_test(test_no_overlap_and_reuse),
        cmocka_unit_test(test_memory_returns),
        cmocka_unit_test(test_registry_gives_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
