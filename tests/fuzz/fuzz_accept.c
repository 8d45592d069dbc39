/* fuzz_accept.c - libFuzzer target: content negotiation (exporter/http/negotiate.h,
 * exporter/http/expfmt.h).
 *
 * Input: an `Accept` header, optionally a NUL byte and an `Accept-Encoding` header, then
 * optionally a second NUL and one byte choosing the read size. exp_negotiate and
 * exp_accepts_gzip must return one of their documented values; then the negotiated scrape of
 * a small fixed registry is read in chunks of that size, and when gzip was negotiated the
 * inflated output must equal the plain output of the same format byte for byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "http/expfmt.h"
#include "http/negotiate.h"
#include "registry.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_accept: check failed at line %d: %s\n", __LINE__, #cond);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static reg_registry *reg;

/* A few families of each kind whose output does not change between scrapes. */
static void setup(void) {
    reg_options o = {0};
    reg = reg_create(&o);
    CHECK(reg);
    reg_thread *t = reg_thread_attach(reg);
    CHECK(t);
    static const char *lab[] = {"code", "path"};
    static const double buckets[] = {0.1, 1, 10};
    reg_family_def defs[] = {
        {.name = "fz_requests_total",
         .help = "Requests.\nwith \\ escapes",
         .type = REG_COUNTER,
         .nlabels = 2,
         .labels = lab},
        {.name = "fz_temperature_celsius",
         .help = "A gauge.",
         .unit = "celsius",
         .type = REG_GAUGE},
        {.name = "fz_latency_seconds",
         .help = "A histogram.",
         .type = REG_HISTOGRAM,
         .nlabels = 1,
         .labels = lab,
         .nbuckets = 3,
         .buckets = buckets},
    };
    reg_family *f[3];
    reg_begin(t);
    for (int i = 0; i < 3; i++)
        CHECK(reg_family_add(t, &defs[i], &f[i]) == REG_OK);
    const char *v1[] = {"200", "/metrics"}, *v2[] = {"500", "a\"b\\c\nd"};
    CHECK(reg_counter_add(t, f[0], v1, 3) == REG_OK);
    CHECK(reg_counter_add(t, f[0], v2, 1.5) == REG_OK);
    CHECK(reg_gauge_set(t, f[1], NULL, -273.15) == REG_OK);
    CHECK(reg_observe(t, f[2], v1, 0.5) == REG_OK);
    CHECK(reg_observe(t, f[2], v2, 42) == REG_OK);
    reg_end(t);
    reg_thread_detach(t);
}

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->n + n)
            nc *= 2;
        b->p = realloc(b->p, nc);
        CHECK(b->p);
        b->cap = nc;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static sbuf scrape(exp_format fmt, int gz, size_t chunk) {
    exp_scrape *s = exp_scrape_begin(reg, fmt, gz);
    CHECK(s);
    char *buf = malloc(chunk);
    CHECK(buf);
    sbuf out = {0};
    long n;
    while ((n = exp_scrape_read(s, buf, chunk)) > 0) {
        CHECK((size_t)n <= chunk);
        sb_add(&out, buf, (size_t)n);
    }
    CHECK(n == 0);
    exp_scrape_end(s);
    free(buf);
    return out;
}

static sbuf gunzip(const sbuf *in) {
    z_stream zs = {0};
    CHECK(inflateInit2(&zs, 15 + 16) == Z_OK);
    zs.next_in = (Bytef *)in->p;
    zs.avail_in = (uInt)in->n;
    sbuf out = {0};
    char tmp[4096];
    int rc;
    do {
        zs.next_out = (Bytef *)tmp;
        zs.avail_out = sizeof tmp;
        rc = inflate(&zs, Z_NO_FLUSH);
        CHECK(rc == Z_OK || rc == Z_STREAM_END);
        sb_add(&out, tmp, sizeof tmp - zs.avail_out);
    } while (rc != Z_STREAM_END);
    CHECK(zs.avail_in == 0);
    inflateEnd(&zs);
    return out;
}

static void teardown(void) {
    reg_destroy(reg); /* LeakSanitizer runs after atexit handlers */
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setup();
    atexit(teardown);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Heap copies, NUL-terminated exactly where the header ends. */
    const char *d = (const char *)data;
    const char *z1 = memchr(d, 0, size);
    size_t alen = z1 ? (size_t)(z1 - d) : size;
    const char *enc = NULL;
    size_t elen = 0, chunk = 4096;
    if (z1) {
        enc = z1 + 1;
        const char *z2 = memchr(enc, 0, size - alen - 1);
        elen = z2 ? (size_t)(z2 - enc) : size - alen - 1;
        if (z2 && (size_t)(z2 - d) + 1 < size)
            chunk = 1 + (unsigned char)z2[1] % 64;
    }
    char *accept = malloc(alen + 1), *ae = malloc(elen + 1);
    CHECK(accept && ae);
    memcpy(accept, d, alen);
    accept[alen] = 0;
    if (enc)
        memcpy(ae, enc, elen);
    ae[elen] = 0;

    exp_format fmt = exp_negotiate(accept);
    CHECK(fmt == EXP_FMT_TEXT || fmt == EXP_FMT_OPENMETRICS);
    CHECK(exp_negotiate(accept) == fmt);
    CHECK(exp_content_type(fmt) != NULL);
    int gz = enc ? exp_accepts_gzip(ae) : 0;
    CHECK(gz == 0 || gz == 1);
    CHECK(exp_negotiate(NULL) == EXP_FMT_TEXT);
    CHECK(exp_accepts_gzip(NULL) == 0);

    sbuf plain = scrape(fmt, 0, chunk);
    CHECK(plain.n > 0 && plain.p[plain.n - 1] == '\n');
    if (fmt == EXP_FMT_OPENMETRICS)
        CHECK(plain.n >= 6 && memcmp(plain.p + plain.n - 6, "# EOF\n", 6) == 0);
    if (gz) {
        sbuf zipped = scrape(fmt, 1, chunk);
        CHECK(zipped.n >= 18 && (unsigned char)zipped.p[0] == 0x1f &&
              (unsigned char)zipped.p[1] == 0x8b);
        sbuf back = gunzip(&zipped);
        CHECK(back.n == plain.n && memcmp(back.p, plain.p, plain.n) == 0);
        free(back.p);
        free(zipped.p);
    }
    free(plain.p);
    free(accept);
    free(ae);
    return 0;
}
