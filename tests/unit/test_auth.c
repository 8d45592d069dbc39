/* test_auth.c - basic auth (exporter/http/auth.c): the Authorization header read like Go's
 * Request.BasicAuth, bcrypt verification, the outcome cache, the bound on concurrent bcrypt
 * runs and the constant-time comparison. The web config is built by hand (web_with_users). */
#include <crypt.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "exporter/http/internal.h"

/* A bcrypt hash of pass at the given cost, made by libcrypt. Fails the test on error. */
static char *bcrypt_hash(const char *pass, unsigned long cost) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    assert_non_null(crypt_gensalt_rn("$2b$", cost, NULL, 0, salt, sizeof salt));
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *h = crypt_rn(pass, salt, &cd, (int)sizeof cd);
    assert_non_null(h);
    return strdup(h);
}

/* A web config with users only (what the loader would build from basic_auth_users). */
static cfg_web *web_with_users(size_t n, const char *const *users, const char *const *passwords,
                               unsigned long cost) {
    cfg_web *w = calloc(1, sizeof *w);
    w->nusers = n;
    w->users = calloc(n, sizeof *w->users);
    w->hashes = calloc(n, sizeof *w->hashes);
    for (size_t i = 0; i < n; i++) {
        w->users[i] = strdup(users[i]);
        w->hashes[i] = bcrypt_hash(passwords[i], cost);
    }
    return w;
}

static void web_free(cfg_web *w) {
    for (size_t i = 0; i < w->nusers; i++) {
        free(w->users[i]);
        free(w->hashes[i]);
    }
    free(w->users);
    free(w->hashes);
    free(w);
}

/* "user:pass" -> "Basic dXNlcjpwYXNz" */
static const char *basic(const char *b64) {
    static char buf[256];
    strcpy(buf, "Basic ");
    strcat(buf, b64);
    return buf;
}

static void test_equal(void **state) {
    (void)state;
    assert_true(exp_auth_equal("abc", 3, "abc", 3));
    assert_true(exp_auth_equal("", 0, "", 0));
    assert_false(exp_auth_equal("abc", 3, "abd", 3));
    assert_false(exp_auth_equal("abc", 3, "ab", 2));
    assert_false(exp_auth_equal("ab", 2, "abc", 3));
    assert_false(exp_auth_equal("a\0", 2, "a", 1)); /* a shorter side is not zero-padded equal */
}

static void test_parse(void **state) {
    (void)state;
    exp_auth_creds c;
    assert_int_equal(exp_auth_parse_basic("Basic dXNlcjpwYXNz", &c), 0); /* user:pass */
    assert_int_equal(c.user_len, 4);
    assert_memory_equal(c.user, "user", 4);
    assert_int_equal(c.pass_len, 4);
    assert_memory_equal(c.pass, "pass", 4);
    exp_auth_creds_free(&c);
    /* The scheme is case-insensitive; the password may hold ':' (split at the first). */
    assert_int_equal(exp_auth_parse_basic("bASIC dTpwOng=", &c), 0); /* u:p:x */
    assert_int_equal(c.pass_len, 3);
    assert_memory_equal(c.pass, "p:x", 3);
    exp_auth_creds_free(&c);
    /* Empty password. */
    assert_int_equal(exp_auth_parse_basic("Basic dXNlcjo=", &c), 0); /* user: */
    assert_int_equal(c.pass_len, 0);
    exp_auth_creds_free(&c);
    /* Malformed. */
    const char *bad[] = {"",
                         "Basic",
                         "Basic ",
                         "Bearer dXNlcjpwYXNz",
                         "BasicdXNlcjpwYXNz",
                         "Basic dXNlcjpwYXNz=", /* bad padding */
                         "Basic dXNlcjpwYXN",   /* not a multiple of 4 */
                         "Basic dXNlcg==",      /* "user": no ':' */
                         "Basic dXNl*jpwYXNz",  /* not base64 */
                         "Basic dXNlcjo=dXNl"}; /* data after padding */
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(exp_auth_parse_basic(bad[i], &c), -1);
}

static void test_check(void **state) {
    (void)state;
    const char *users[] = {"user", "empty"};
    const char *passwords[] = {"pass", ""};
    cfg_web *w = web_with_users(2, users, passwords, 4);
    exp_auth *a = exp_auth_create(1, 1000);
    assert_int_equal(exp_auth_check(a, w, basic("dXNlcjpwYXNz")), AUTH_OK); /* user:pass */
    assert_int_equal(exp_auth_check(a, w, basic("dXNlcjpwYXN4")),
                     AUTH_WRONG_PASSWORD);                                          /* user:pasx */
    assert_int_equal(exp_auth_check(a, w, basic("dXNlcjo=")), AUTH_WRONG_PASSWORD); /* user: */
    assert_int_equal(exp_auth_check(a, w, basic("bm9ib2R5OnBhc3M=")),
                     AUTH_UNKNOWN_USER); /* nobody:pass */
    assert_int_equal(exp_auth_check(a, w, NULL), AUTH_MISSING);
    assert_int_equal(exp_auth_check(a, w, "Bearer token"), AUTH_MALFORMED);
    assert_int_equal(exp_auth_check(a, w, basic("!!!!")), AUTH_MALFORMED);
    assert_int_equal(exp_auth_check(a, w, basic("ZW1wdHk6")), AUTH_OK); /* empty: */
    assert_int_equal(exp_auth_check(a, w, basic("ZW1wdHk6eA==")),
                     AUTH_WRONG_PASSWORD); /* empty:x */
    /* A NUL byte in the password never matches (crypt would cut it short). */
    assert_int_equal(exp_auth_check(a, w, basic("dXNlcjpwYXNzAA==")), AUTH_WRONG_PASSWORD);
    exp_auth_destroy(a);
    web_free(w);
}

static void test_cache(void **state) {
    (void)state;
    const char *users[] = {"user"};
    const char *passwords[] = {"pass"};
    cfg_web *w = web_with_users(1, users, passwords, 4);
    exp_auth *a = exp_auth_create(1, 1000);
    uint64_t hits, misses;
    assert_int_equal(exp_auth_check(a, w, basic("dXNlcjpwYXNz")), AUTH_OK);
    exp_auth_cache_stats(a, &hits, &misses);
    assert_int_equal(hits, 0);
    assert_int_equal(misses, 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(exp_auth_check(a, w, basic("dXNlcjpwYXNz")), AUTH_OK);
    /* A failure is cached too: repeating a wrong password costs no bcrypt run either. */
    assert_int_equal(exp_auth_check(a, w, basic("dXNlcjpwYXN4")), AUTH_WRONG_PASSWORD);
    assert_int_equal(exp_auth_check(a, w, basic("dXNlcjpwYXN4")), AUTH_WRONG_PASSWORD);
    exp_auth_cache_stats(a, &hits, &misses);
    assert_int_equal(hits, 6);
    assert_int_equal(misses, 2);
    /* A new hash for the same user (a reloaded file) is a new key: verified again, and the
     * old password no longer passes. */
    free(w->hashes[0]);
    w->hashes[0] = bcrypt_hash("other", 4);
    assert_int_equal(exp_auth_check(a, w, basic("dXNlcjpwYXNz")), AUTH_WRONG_PASSWORD);
    exp_auth_cache_stats(a, &hits, &misses);
    assert_int_equal(misses, 3);
    exp_auth_destroy(a);
    web_free(w);
}

typedef struct {
    exp_auth *a;
    const cfg_web *w;
    exp_auth_result res;
} slow_arg;

static void *slow_check(void *arg) {
    slow_arg *s = arg;
    s->res = exp_auth_check(s->a, s->w, basic("dXNlcjpwYXNz"));
    return NULL;
}

/* One bcrypt run at a time: while a slow one runs, another gives up after its wait. */
static void test_bound(void **state) {
    (void)state;
    const char *users[] = {"user"};
    const char *passwords[] = {"pass"};
    cfg_web *w = web_with_users(1, users, passwords, 13); /* about a second per run */
    exp_auth *a = exp_auth_create(1, 20);
    slow_arg s = {a, w, AUTH_NOMEM};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_check, &s), 0);
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL); /* the thread holds the only run by now */
    assert_int_equal(exp_auth_check(a, w, basic("dXNlcjpwYXN4")), AUTH_BUSY);
    pthread_join(th, NULL);
    assert_int_equal(s.res, AUTH_OK);
    exp_auth_destroy(a);
    web_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equal), cmocka_unit_test(test_parse), cmocka_unit_test(test_check),
        cmocka_unit_test(test_cache), cmocka_unit_test(test_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
