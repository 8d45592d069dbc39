/* test_registry_key_bound.c - REG_MAX_KEY at its exact edge.
 *
 * registry.h: "REG_MAX_KEY 16384: bytes of a series' rendered label text; longer: REG_EINVAL".
 * So label text of 16383 and 16384 bytes must be accepted, 16385 refused.
 *
 * Regression test: render_key in registry/series.c once checked `n + 4 > cap` before every
 * value byte (room for an escaped byte and the closing quote), reserving two bytes an
 * unescaped byte does not need, so text of 16383 and 16384 bytes was refused with REG_EINVAL
 * (fixed in af2c2f6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"

/* Set the series whose single label value is `len` bytes of 'x' (its last byte replaced by
 * `last` when non-zero) and return the result; on REG_OK, *text_len is its label text's
 * length, and the series is deleted again (so each call sees an empty family). */
static int set_value(reg_registry *r, reg_thread *t, reg_family *f, size_t len, char last,
                     size_t *text_len) {
    char *v = malloc(len + 1);
    memset(v, 'x', len);
    if (last)
        v[len - 1] = last;
    v[len] = '\0';
    const char *vals[] = {v};
    reg_begin(t);
    int rc = reg_gauge_set(t, f, vals, 1);
    *text_len = 0;
    reg_series **s = NULL;
    size_t cap = 0;
    long n = reg_family_collect(t, f, &s, &cap);
    assert_int_equal(n, rc == REG_OK ? 1 : 0);
    if (n == 1)
        *text_len = reg_series_labels(f, s[0], NULL, 0);
    free(s);
    reg_end(t);
    if (rc == REG_OK)
        assert_int_equal(reg_series_delete(r, f, vals), REG_OK);
    free(v);
    return rc;
}

typedef struct {
    reg_registry *r;
    reg_thread *t;
} fixture;

/* The registry is torn down in teardown, so a failing assertion leaks nothing (ASan build). */
static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    fx->r = reg_create(NULL);
    fx->t = fx->r ? reg_thread_attach(fx->r) : NULL;
    *state = fx;
    return fx->t ? 0 : -1;
}

static int teardown(void **state) {
    fixture *fx = *state;
    reg_thread_detach(fx->t);
    reg_destroy(fx->r);
    free(fx);
    return 0;
}

static void test_text_of_exactly_max_key_bytes(void **state) {
    fixture *fx = *state;
    reg_registry *r = fx->r;
    reg_thread *t = fx->t;
    static const char *const L[] = {"a"};
    reg_family_def d = {.name = "edge", .type = REG_GAUGE, .nlabels = 1, .labels = L};
    reg_family *f;
    reg_begin(t);
    assert_int_equal(reg_family_add(t, &d, &f), REG_OK);
    reg_end(t);
    const size_t frame = strlen("a=\"\""); /* 4 bytes around the value */
    size_t text;
    /* Longer than the bound: refused. */
    assert_int_equal(set_value(r, t, f, REG_MAX_KEY - frame + 1, 0, &text), REG_EINVAL);
    /* 16382 bytes: accepted. */
    assert_int_equal(set_value(r, t, f, REG_MAX_KEY - frame - 2, 0, &text), REG_OK);
    assert_int_equal(text, REG_MAX_KEY - 2);
    /* 16383 and 16384 bytes: within the bound, accepted (were REG_EINVAL). */
    assert_int_equal(set_value(r, t, f, REG_MAX_KEY - frame - 1, 0, &text), REG_OK);
    assert_int_equal(text, REG_MAX_KEY - 1);
    assert_int_equal(set_value(r, t, f, REG_MAX_KEY - frame, 0, &text), REG_OK);
    assert_int_equal(text, REG_MAX_KEY);
    /* An escaped last byte (`\"`, two bytes) that still ends exactly at the bound. */
    assert_int_equal(set_value(r, t, f, REG_MAX_KEY - frame - 1, '"', &text), REG_OK);
    assert_int_equal(text, REG_MAX_KEY);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_of_exactly_max_key_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
