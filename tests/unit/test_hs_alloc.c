/* test_hs_alloc.c - the allocator the registry gives ck_hs, and the registry's hash seed.
 * ck_hs frees slot arrays with defer=true while readers may still probe them: such a block
 * must be retired through the epoch, never freed or moved in place. The seed keys every hash
 * set on sender-chosen names, so it must differ between registries (getrandom). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry/internal.h"
#include "registry.h"

static unsigned pending_after_reaping(reg_registry *r) {
    for (int pass = 0; pass < 8 && (r->retired || r->reaper->rec.n_pending); pass++)
        reg_reap(r);
    return r->reaper->rec.n_pending + (r->retired != NULL);
}

static void test_realloc_without_defer_keeps_contents(void **state) {
    (void)state;
    reg_options o = {0};
    reg_registry *r = reg_create(&o);
    char *p = r->alloc.malloc(16);
    assert_non_null(p);
    memcpy(p, "0123456789abcde", 16);
    char *q = r->alloc.realloc(p, 16, 4096, false);
    assert_non_null(q);
    assert_memory_equal(q, "0123456789abcde", 16);
    r->alloc.free(q, 4096, false);
    assert_null(r->retired); /* nothing deferred */
    reg_destroy(r);
}

static void test_deferred_realloc_retires_the_old_block(void **state) {
    (void)state;
    reg_options o = {0};
    reg_registry *r = reg_create(&o);
    char *p = r->alloc.malloc(32);
    assert_non_null(p);
    memcpy(p, "slot array contents, 32 bytes..", 32);
    reg_thread *reader = reg_thread_attach(r);
    reg_begin(reader); /* a reader that may still be probing p */
    reg_writer_enter(r);
    char *q = r->alloc.realloc(p, 32, 64, true);
    reg_writer_leave();
    assert_non_null(q);
    assert_ptr_not_equal(q, p);
    assert_memory_equal(q, "slot array contents, 32 bytes..", 32);
    assert_memory_equal(p, "slot array contents, 32 bytes..", 32); /* still readable */
    assert_non_null(r->retired);
    assert_true(pending_after_reaping(r) > 0); /* held back by the reader */
    reg_end(reader);
    assert_int_equal(pending_after_reaping(r), 0);
    reg_thread_detach(reader);
    r->alloc.free(q, 64, false);
    reg_destroy(r);
}

static void test_seeds_differ(void **state) {
    (void)state;
    reg_options o = {0};
    reg_registry *a = reg_create(&o), *b = reg_create(&o);
    assert_true(a->seed != b->seed);
    reg_destroy(a);
    reg_destroy(b);
}

/* realloc of NULL allocates; a free of NULL does nothing, even deferred under a writer. A
 * deferred free or realloc outside any writer (no registry recorded for the thread: nothing
 * can be probing the block) is immediate: nothing is retired, and ASan sees no leak. */
static void test_null_and_writerless_calls(void **state) {
    (void)state;
    reg_options o = {0};
    reg_registry *r = reg_create(&o);
    char *p = r->alloc.realloc(NULL, 0, 64, true);
    assert_non_null(p);
    memset(p, 'a', 64); /* all 64 bytes are the caller's (ASan checks) */
    reg_writer_enter(r);
    r->alloc.free(NULL, 0, true);
    reg_writer_leave();
    assert_null(r->retired);
    char *q = r->alloc.realloc(p, 64, 8192, true); /* defer, but no writer: plain realloc */
    assert_non_null(q);
    assert_null(r->retired);
    for (int i = 0; i < 64; i++)
        assert_int_equal(q[i], 'a');
    memset(q, 'b', 8192);
    r->alloc.free(q, 8192, true); /* defer, but no writer: freed now */
    assert_null(r->retired);
    reg_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_realloc_without_defer_keeps_contents),
        cmocka_unit_test(test_deferred_realloc_retires_the_old_block),
        cmocka_unit_test(test_seeds_differ),
        cmocka_unit_test(test_null_and_writerless_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
