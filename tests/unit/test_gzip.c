/* test_gzip.c - unit tests of the scrape's gzip encoder (exporter/http/gzip.c): random,
 * repetitive, empty and 10 MB inputs fed in odd piece sizes and read out in odd piece sizes
 * (down to one byte each way), the end declared with the last piece or after it; every output
 * must be one gzip member that zlib's inflate decodes to exactly the input, with nothing after
 * its trailer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "http/gzip.h"

/* A deterministic generator, so a failure repeats. */
static uint32_t next_random(uint32_t *x) {
    *x = *x * 1664525u + 1013904223u;
    return *x >> 8;
}

static char *random_bytes(size_t n, uint32_t seed) {
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)next_random(&seed);
    return p;
}

/* Lines like a scrape's, with every tenth value random: repeats near and far. */
static char *scrape_like(size_t n, uint32_t seed) {
    char *p = malloc(n + 128);
    assert_non_null(p);
    size_t len = 0;
    for (size_t i = 0; len < n; i++) {
        unsigned v = i % 10 ? (unsigned)(i % 1000) : (unsigned)next_random(&seed);
        len += (size_t)snprintf(p + len, 128,
                                "http_requests_total{service=\"svc-%zu\",path=\"/api/%zu\"} %u\n",
                                i % 97, i, v);
    }
    return p;
}

/* Inflates one gzip member into exactly want_len bytes and compares them with want. */
static void assert_gunzips_to(const char *gz, size_t gz_len, const char *want, size_t want_len) {
    z_stream zs = {0};
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    char *out = malloc(want_len + 1);
    assert_non_null(out);
    zs.next_in = (Bytef *)gz;
    zs.avail_in = (uInt)gz_len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)(want_len + 1); /* one spare byte: more output than the input fails */
    int rc = inflate(&zs, Z_FINISH);
    if (rc != Z_STREAM_END)
        fail_msg("inflate: %d (%s)", rc, zs.msg ? zs.msg : "");
    assert_int_equal(zs.avail_in, 0); /* nothing after the trailer */
    assert_int_equal(zs.total_out, want_len);
    assert_memory_equal(out, want, want_len);
    inflateEnd(&zs);
    free(out);
}

/* Compresses in[0..n) offered in pieces of in_sizes[k % n_in] bytes, read out in pieces of
 * out_sizes[k % n_out] bytes; end_apart declares the end with an empty piece after the last
 * one. Returns the output (its length in *gz_len). */
static char *compress_pieces(const char *in, size_t n, const size_t *in_sizes, size_t n_in,
                             const size_t *out_sizes, size_t n_out, int end_apart, size_t *gz_len) {
    exp_gzip *z = exp_gzip_new();
    assert_non_null(z);
    size_t cap = 1024, len = 0, pos = 0, piece_end = 0, ki = 0, ko = 0;
    char *gz = malloc(cap);
    assert_non_null(gz);
    int calls_without_output = 0;
    while (!exp_gzip_finished(z)) {
        if (pos == piece_end && piece_end < n) {
            piece_end += in_sizes[ki++ % n_in];
            if (piece_end > n)
                piece_end = n;
        }
        int last = piece_end == n && !(end_apart && pos < n);
        size_t room = out_sizes[ko++ % n_out], used = 0, made = 0;
        if (len + room > cap) {
            cap = 2 * (len + room);
            gz = realloc(gz, cap);
            assert_non_null(gz);
        }
        assert_int_equal(
            exp_gzip_run(z, in + pos, piece_end - pos, last, gz + len, room, &used, &made), 0);
        assert_true(used <= piece_end - pos);
        assert_true(made <= room);
        pos += used;
        len += made;
        /* Input can be taken in without output for a while, never for ever. */
        calls_without_output = made ? 0 : calls_without_output + 1;
        assert_true(calls_without_output < 1000000);
    }
    assert_int_equal(pos, n);
    size_t used = 1, made = 1;
    char spare[8];
    assert_int_equal(exp_gzip_run(z, "", 0, 1, spare, sizeof spare, &used, &made), 0);
    assert_int_equal(used + made, 0); /* a finished member stays finished */
    exp_gzip_free(z);
    *gz_len = len;
    return gz;
}

static const size_t odd_in[] = {1, 7, 4093, 65537, 3, 250000, 2, 131072};
static const size_t odd_out[] = {1, 3, 17, 65521, 2, 1000003, 5};
static const size_t byte[] = {1};
static const size_t big[] = {1u << 20};

/* Every piece-size schedule on one input, each decoded to the input. */
static void assert_round_trips(const char *in, size_t n) {
    struct {
        const size_t *in, *out;
        size_t n_in, n_out;
    } plans[] = {
        {odd_in, odd_out, 8, 7},
        {big, odd_out, 1, 7},
        {odd_in, big, 8, 1},
        {big, byte, 1, 1},
    };
    for (size_t p = 0; p < sizeof plans / sizeof plans[0]; p++)
        for (int end_apart = 0; end_apart < 2; end_apart++) {
            size_t gz_len;
            char *gz = compress_pieces(in, n, plans[p].in, plans[p].n_in, plans[p].out,
                                       plans[p].n_out, end_apart, &gz_len);
            assert_gunzips_to(gz, gz_len, in, n);
            free(gz);
        }
}

static void test_random_input(void **state) {
    (void)state;
    size_t n = 300000;
    char *in = random_bytes(n, 1);
    assert_round_trips(in, n);
    free(in);
}

static void test_repetitive_input(void **state) {
    (void)state;
    size_t n = 1u << 20;
    char *in = scrape_like(n, 2);
    assert_round_trips(in, n);
    memset(in, 'a', n); /* one byte over and over: the longest matches */
    assert_round_trips(in, n);
    free(in);
}

static void test_one_byte_pieces(void **state) {
    (void)state;
    size_t n = 20000;
    char *in = scrape_like(n, 3);
    for (int end_apart = 0; end_apart < 2; end_apart++) {
        size_t gz_len;
        char *gz = compress_pieces(in, n, byte, 1, byte, 1, end_apart, &gz_len);
        assert_gunzips_to(gz, gz_len, in, n);
        free(gz);
    }
    free(in);
}

static void test_empty_input(void **state) {
    (void)state;
    assert_round_trips("", 0);
    size_t gz_len;
    char *gz = compress_pieces("", 0, big, 1, big, 1, 0, &gz_len);
    assert_true(gz_len >= 20); /* header (10) + an empty block + CRC-32 and length (8) */
    assert_int_equal((unsigned char)gz[0], 0x1f);
    assert_int_equal((unsigned char)gz[1], 0x8b);
    free(gz);
}

static void test_large_input(void **state) {
    (void)state;
    size_t n = 10u << 20, half = n / 2;
    char *in = scrape_like(n, 4);
    char *noise = random_bytes(n / 4, 5);
    memcpy(in + half, noise, n / 4); /* a random stretch between two repetitive ones */
    free(noise);
    size_t gz_len;
    char *gz = compress_pieces(in, n, odd_in, 8, odd_out, 7, 0, &gz_len);
    assert_gunzips_to(gz, gz_len, in, n);
    free(gz);
    free(in);
}

static void test_free_null(void **state) {
    (void)state;
    exp_gzip_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_input),    cmocka_unit_test(test_repetitive_input),
        cmocka_unit_test(test_one_byte_pieces), cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_large_input),     cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
