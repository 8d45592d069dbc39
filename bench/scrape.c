/* scrape.c (bench) - exposition speed and memory. Prints figures; asserts nothing.
 *
 * For 10,000, 100,000 and 1,000,000 counter series (two labels, integral values): the time
 * and bytes of one full scrape, plain text and gzip, as the HTTP server streams it (64 KiB
 * reads through exp_scrape_read), and the peak extra resident memory one scrape costs
 * (VmHWM reset through /proc/self/clear_refs before the scrape). The median of 5 runs.
 * The peer (Prometheus's Pushgateway serving the same series over HTTP) is measured by
 * bench/scrape_peer.py, which runs this program too and prints both side by side.
 * Usage: bench_scrape [max-series]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "http/expfmt.h"
#include "registry.h"

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

static void reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f); /* 5: reset the peak resident set size */
        fclose(f);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One scrape; returns seconds, sets *bytes and *peak_kb (extra peak RSS). */
static double scrape_once(reg_registry *r, int gzip, size_t *bytes, long *peak_kb) {
    static char buf[64 * 1024];
    long rss0 = status_kb("VmRSS");
    reset_peak();
    double t0 = now_s();
    exp_scrape *s = exp_scrape_begin(r, EXP_FMT_TEXT, gzip);
    size_t total = 0;
    long n;
    while (s && (n = exp_scrape_read(s, buf, sizeof buf)) > 0)
        total += (size_t)n;
    exp_scrape_end(s);
    double dt = now_s() - t0;
    *peak_kb = status_kb("VmHWM") - rss0;
    *bytes = total;
    return dt;
}

int main(int argc, char **argv) {
    size_t max = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    static const char *const labels[] = {"service", "endpoint"};
    printf("abacus scrape benchmark: counter series with 2 labels, text format, 64 KiB reads\n");
    printf("%10s %6s %10s %12s %12s\n", "series", "gzip", "ms", "bytes", "peak KiB");
    for (size_t n = 10000; n <= max; n *= 10) {
        reg_options o = {0};
        reg_registry *r = reg_create(&o);
        reg_thread *t = reg_thread_attach(r);
        reg_family_def d = {.name = "bench_requests_total",
                            .help = "Requests.",
                            .type = REG_COUNTER,
                            .nlabels = 2,
                            .labels = labels};
        reg_family *f;
        char a[48], b[48];
        reg_begin(t);
        if (reg_family_add(t, &d, &f) != REG_OK)
            return 1;
        for (size_t i = 0; i < n; i++) {
            snprintf(a, sizeof a, "svc-%zu", i % 1000);
            snprintf(b, sizeof b, "/api/v1/item/%zu", i);
            const char *v[] = {a, b};
            reg_counter_add(t, f, v, (double)(i % 100000));
        }
        reg_end(t);
        for (int gzip = 0; gzip <= 1; gzip++) {
            double times[5];
            size_t bytes = 0;
            long peak = 0, p;
            for (int k = 0; k < 5; k++) {
                times[k] = scrape_once(r, gzip, &bytes, &p);
                peak = p > peak ? p : peak;
            }
            qsort(times, 5, sizeof times[0], cmp_double);
            printf("%10zu %6s %10.2f %12zu %12ld\n", n, gzip ? "yes" : "no", times[2] * 1e3, bytes,
                   peak);
            fflush(stdout);
        }
        reg_thread_detach(t);
        reg_destroy(r);
    }
    return 0;
}
