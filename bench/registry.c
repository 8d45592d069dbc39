/* registry.c (bench) - registry speed and memory. Prints figures; asserts nothing.
 *
 *  - ns per counter add on an existing series found by its label values (not a cached
 *    pointer), among 1,000 and 1,000,000 series, on 1 and 2 threads; with one read-side
 *    section per add and with one section per batch of 64 adds (how ingest runs);
 *  - ns per new-series create (1 and 2 threads, distinct series);
 *  - resident bytes per series at 1,000,000 series with two labels of 12 bytes.
 * Usage: bench_registry [series-for-the-large-case]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "registry.h"

static const char *const LABELS[] = {"service", "endpoint"};
static reg_registry *reg;
static reg_family *fam;

/* Label values of series i, made on the fly into the caller's buffers (as an ingest path
 * has them in its packet buffer): "svc-0000000042", "/api/000000042" (12+ bytes each). */
static void values_of(size_t i, char *a, char *b) {
    memcpy(a, "svc-", 4);
    memcpy(b, "/api/", 5);
    for (int k = 9; k >= 0; k--, i /= 10) {
        a[4 + k] = (char)('0' + i % 10);
        if (k > 0)
            b[4 + k] = a[4 + k];
    }
    a[14] = '\0';
    b[14] = '\0';
}

typedef struct {
    size_t first, count; /* series range to create, or to pick from */
    size_t ops, batch;
    unsigned seed;
    double secs;
} job;

static void *create_job(void *arg) {
    job *j = arg;
    reg_thread *t = reg_thread_attach(reg);
    double t0 = now_s();
    char a[16], b[16];
    for (size_t i = j->first; i < j->first + j->count; i++) {
        values_of(i, a, b);
        const char *v[] = {a, b};
        reg_begin(t);
        if (reg_counter_add(t, fam, v, 1) != REG_OK)
            abort();
        reg_end(t);
    }
    j->secs = now_s() - t0;
    reg_thread_detach(t);
    return NULL;
}

static void *add_job(void *arg) {
    job *j = arg;
    reg_thread *t = reg_thread_attach(reg);
    unsigned x = j->seed;
    char a[16], b[16];
    double t0 = now_s();
    for (size_t i = 0; i < j->ops; i += j->batch) {
        reg_begin(t);
        for (size_t k = 0; k < j->batch; k++) {
            x = x * 1664525u + 1013904223u; /* pick a series at random: no cache help */
            values_of(j->first + (x >> 8) % j->count, a, b);
            const char *v[] = {a, b};
            reg_counter_add(t, fam, v, 1);
        }
        reg_end(t);
    }
    j->secs = now_s() - t0;
    reg_thread_detach(t);
    return NULL;
}

/* Run fn on n threads; returns ns per operation as seen by each thread (mean). */
static double run(void *(*fn)(void *), job *tmpl, int n, size_t per_thread_ops) {
    pthread_t th[8];
    job jobs[8];
    for (int i = 0; i < n; i++) {
        jobs[i] = *tmpl;
        jobs[i].seed = 12345u + (unsigned)i;
        if (fn == create_job) {
            jobs[i].count = tmpl->count / n;
            jobs[i].first = tmpl->first + (size_t)i * jobs[i].count;
        }
        pthread_create(&th[i], NULL, fn, &jobs[i]);
    }
    double ns = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        ns += jobs[i].secs * 1e9 / (double)per_thread_ops;
    }
    return ns / n;
}

static void fresh_registry(void) {
    if (reg)
        reg_destroy(reg);
    reg_options o = {0};
    reg = reg_create(&o);
    reg_thread *t = reg_thread_attach(reg);
    reg_family_def d = {.name = "bench_requests_total",
                        .help = "bench",
                        .type = REG_COUNTER,
                        .nlabels = 2,
                        .labels = LABELS};
    reg_begin(t);
    if (reg_family_add(t, &d, &fam) != REG_OK)
        abort();
    reg_end(t);
    reg_thread_detach(t);
}

int main(int argc, char **argv) {
    size_t big = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    printf("abacus registry benchmark\n");
    print_machine();

    size_t sizes[] = {1000, big};
    for (int si = 0; si < 2; si++) {
        size_t n = sizes[si];
        fresh_registry();
        long rss0 = rss_bytes();
        job c = {.first = 0, .count = n};
        double create_ns = run(create_job, &c, 1, n);
        long rss1 = rss_bytes();
        printf("\n%zu series, 2 labels of 12 bytes\n", n);
        printf("  create (1 thread)                     %8.1f ns/series\n", create_ns);
        if (n == big)
            printf("  resident memory                       %8.1f B/series\n",
                   (double)(rss1 - rss0) / (double)n);
        for (int threads = 1; threads <= 2; threads++) {
            size_t ops = 4000000;
            job a = {.first = 0, .count = n, .ops = ops, .batch = 1};
            double one = run(add_job, &a, threads, ops);
            a.batch = 64;
            double batched = run(add_job, &a, threads, ops);
            printf("  counter add, %d thread%s: section/add  %8.1f ns   section/64 adds %8.1f ns\n",
                   threads, threads > 1 ? "s" : " ", one, batched);
        }
        for (int threads = 1; threads <= 2; threads++) {
            size_t m = 200000;
            job cc = {.first = big + (size_t)threads * 500000, .count = m};
            double ns = run(create_job, &cc, threads, m / (size_t)threads);
            printf("  create new series, %d thread%s         %8.1f ns/series\n", threads,
                   threads > 1 ? "s" : " ", ns);
        }
    }
    reg_destroy(reg);
    return 0;
}
