/* scrape.c (bench) - exposition speed and memory. Prints figures; asserts nothing.
 *
 * For 10,000, 100,000 and 1,000,000 counter series (two labels, integral values): the time
 * and bytes of one full scrape as the HTTP server streams it (64 KiB reads through
 * exp_scrape_read), four ways:
 *   plain    the text as it is rendered: the render's own cost;
 *   gzip     the scrape's gzip encoding (ISA-L igzip, exporter/http/gzip.c): gzip minus plain
 *            is what compressing costs;
 *   zlib-1   the plain scrape compressed by zlib's deflate at level 1 as it is read (the
 *            scrape's encoder before ISA-L, and what most exporters use): the reference for
 *            the gzip row's time and size;
 *   gzip-new gzip after one new series was created: the collection brings the family's kept
 *            view up to date from its creation log (reg_family_collect; it walked and sorted
 *            the hash set before 2026-11-30); the first three take the view as it is, as the
 *            scrapes of a family whose series set is steady do.
 * And the peak extra resident memory one scrape costs (VmHWM reset through
 * /proc/self/clear_refs before the scrape). Each case runs RUNS times, the ways taken in turn
 * so that a change of load hits them alike; it prints the median and the range. The
 * machine line at the top (cores, memory latency, load) says what the figures were measured on.
 * The peer (Prometheus's Pushgateway serving the same series over HTTP) is measured by
 * bench/scrape_peer.py.
 * Usage: bench_scrape [max-series [way]] (way: one of the four alone, for profiling)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "bench.h"
#include "family.h"
#include "http/expfmt.h"
#include "registry.h"

#define RUNS 7
#define READ_SIZE (64 * 1024)

enum { PLAIN, GZIP, ZLIB1, GZIP_NEW, WAYS };
static const char *const way_names[WAYS] = {"plain", "gzip", "zlib-1", "gzip-new"};
static reg_family *family; /* fill's */
static size_t created;     /* series made by gzip-new scrapes */

/* One more series in the family, as between two scrapes of a family that gains series: the
 * next collection cannot take the family's kept view as it is. Cannot fail
 * (exits when the registry refuses the series). */
static void create_one(reg_registry *r) {
    char a[48];
    snprintf(a, sizeof a, "/api/v2/new/%zu", created++);
    const char *v[] = {"svc-new", a};
    reg_thread *t = reg_thread_attach(r);
    reg_begin(t);
    int rc = reg_counter_add(t, family, v, 1);
    reg_end(t);
    reg_thread_detach(t);
    if (rc != REG_OK)
        exit(1);
}

/* A field of /proc/self/status in kB (VmRSS, VmHWM), or -1. */
static long status_kb(const char *field) {
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

/* Resets the peak resident set size; without /proc/self/clear_refs the peak is since start. */
static void reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f); /* 5: reset the peak resident set size */
        fclose(f);
    }
}

/* Compresses one read of a plain scrape into zlib's stream, the output thrown away as a
 * server would send it. Returns the bytes of output, or -1 when zlib fails. */
static long zlib_feed(z_stream *zs, const char *in, size_t n, int finish) {
    static unsigned char out[READ_SIZE];
    long made = 0;
    int rc;
    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->avail_in = (uInt)n;
    do {
        zs->next_out = out;
        zs->avail_out = sizeof out;
        rc = deflate(zs, finish ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_ERROR)
            return -1;
        made += (long)(sizeof out - zs->avail_out);
    } while (zs->avail_out == 0 || (finish && rc != Z_STREAM_END));
    return made;
}

/* One scrape the given way; returns seconds, sets *bytes (what a client receives) and
 * *peak_kb (extra peak RSS). Returns -1 when the scrape or zlib fails. */
static double scrape_once(reg_registry *r, int way, size_t *bytes, long *peak_kb) {
    static char buf[READ_SIZE];
    z_stream zs = {0};
    if (way == GZIP_NEW)
        create_one(r);
    long rss0 = status_kb("VmRSS");
    reset_peak();
    double t0 = now_s();
    exp_scrape *s = exp_scrape_begin(r, EXP_FMT_TEXT, way == GZIP || way == GZIP_NEW);
    if (s == NULL ||
        (way == ZLIB1 && deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK))
        return -1;
    size_t total = 0;
    long n;
    while ((n = exp_scrape_read(s, buf, sizeof buf)) > 0) {
        if (way == ZLIB1 && (n = zlib_feed(&zs, buf, (size_t)n, 0)) < 0)
            break;
        total += (size_t)n;
    }
    if (way == ZLIB1 && n == 0 && (n = zlib_feed(&zs, "", 0, 1)) > 0) {
        total += (size_t)n;
        n = 0;
    }
    exp_scrape_end(s);
    if (way == ZLIB1)
        deflateEnd(&zs);
    double dt = now_s() - t0;
    *peak_kb = status_kb("VmHWM") - rss0;
    *bytes = total;
    return n < 0 ? -1 : dt;
}

/* A registry with n counter series of two labels. NULL when it cannot be built. */
static reg_registry *fill(size_t n) {
    reg_options o = {0};
    reg_registry *r = reg_create(&o);
    if (r == NULL)
        return NULL;
    reg_thread *t = reg_thread_attach(r);
    reg_family *f = bench_counter_family(t, "bench_requests_total", "service", "endpoint");
    family = f;
    char a[48], b[48];
    reg_begin(t);
    int ok = f != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        snprintf(a, sizeof a, "svc-%zu", i % 1000);
        snprintf(b, sizeof b, "/api/v1/item/%zu", i);
        const char *v[] = {a, b};
        ok = reg_counter_add(t, f, v, (double)(i % 100000)) == REG_OK;
    }
    reg_end(t);
    reg_thread_detach(t);
    if (!ok) {
        reg_destroy(r);
        return NULL;
    }
    return r;
}

int main(int argc, char **argv) {
    size_t max = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    int only = -1; /* every way */
    for (int w = 0; argc > 2 && w < WAYS; w++)
        if (strcmp(argv[2], way_names[w]) == 0)
            only = w;
    if (argc > 2 && only < 0) {
        fprintf(stderr, "usage: bench_scrape [max-series [plain|gzip|zlib-1|gzip-new]]\n");
        return 2;
    }
    printf("abacus scrape benchmark: counter series with 2 labels, text format, 64 KiB reads\n");
    print_machine();
    printf("median of %d runs [smallest-largest]; gzip: ISA-L igzip level 1 (the scrape's);"
           " zlib-1: zlib deflate level 1\n",
           RUNS);
    printf("%10s %7s %24s %10s %10s %10s\n", "series", "way", "ms", "bytes", "of plain",
           "peak KiB");
    for (size_t n = 10000; n <= max; n *= 10) {
        reg_registry *r = fill(n);
        if (r == NULL)
            return 1;
        double times[WAYS][RUNS];
        size_t bytes[WAYS] = {0};
        long peak[WAYS] = {0}, p;
        for (int k = 0; k < RUNS; k++)
            for (int w = 0; w < WAYS; w++) {
                if (only >= 0 && w != only) {
                    times[w][k] = 0;
                    continue;
                }
                times[w][k] = scrape_once(r, w, &bytes[w], &p);
                if (times[w][k] < 0) {
                    fprintf(stderr, "bench_scrape: the %s scrape failed\n", way_names[w]);
                    return 1;
                }
                peak[w] = p > peak[w] ? p : peak[w];
            }
        double median[WAYS] = {0};
        for (int w = 0; w < WAYS; w++) {
            if (only >= 0 && w != only)
                continue;
            spread s = spread_of(times[w], RUNS);
            median[w] = s.median;
            char ms[64];
            snprintf(ms, sizeof ms, "%.2f [%.2f-%.2f]", s.median * 1e3, s.min * 1e3, s.max * 1e3);
            printf("%10zu %7s %24s %10zu %9.1f%% %10ld\n", n, way_names[w], ms, bytes[w],
                   bytes[PLAIN] ? 100.0 * (double)bytes[w] / (double)bytes[PLAIN] : 0.0, peak[w]);
        }
        if (only < 0)
            printf("%10s compressing costs (median over plain): gzip %.2f ms, zlib-1 %.2f ms\n", "",
                   (median[GZIP] - median[PLAIN]) * 1e3, (median[ZLIB1] - median[PLAIN]) * 1e3);
        fflush(stdout);
        reg_destroy(r);
    }
    return 0;
}
