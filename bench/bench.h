/* bench.h - what the benchmark programs share: clock, sleep, memory readings, the machine
 * line every benchmark prints above its figures (cores, memory latency, load), and the
 * median and range of repeated runs. */
#ifndef ABACUS_BENCH_H
#define ABACUS_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Monotonic seconds. Cannot fail. */
static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleep ms milliseconds (less when a signal interrupts it). Cannot fail. */
static inline void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Resident bytes of process pid (0: this process), 0 when its /proc/PID/statm cannot be
 * read. */
static inline long rss_bytes_of(pid_t pid) {
    char path[64];
    long pages = 0, resident = 0;
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%ld/statm", (long)pid);
    else
        snprintf(path, sizeof path, "/proc/self/statm");
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * sysconf(_SC_PAGESIZE);
}

/* Resident bytes of this process, 0 when /proc/self/statm cannot be read. */
static inline long rss_bytes(void) {
    return rss_bytes_of(0);
}

/* The machine's memory latency in ns: one dependent random read over 128 MiB, beyond every
 * cache. A lookup among a million series needs two such reads, so it bounds what one can
 * cost; next to any figure it tells how fast this machine's memory is. 0 when the 128 MiB
 * cannot be had. Takes about a second. */
static inline double memory_latency_ns(void) {
    size_t n = (128u << 20) / sizeof(size_t);
    size_t *a = malloc(n * sizeof *a);
    if (a == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        a[i] = i;
    unsigned x = 1;
    for (size_t i = n - 1; i > 0; i--) { /* one random cycle (Sattolo) */
        x = x * 1664525u + 1013904223u;
        size_t j = ((size_t)x << 16 ^ (size_t)(x >> 3)) % i, t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
    size_t p = 0, reads = 4000000;
    double t0 = now_s();
    for (size_t i = 0; i < reads; i++)
        p = a[p];
    double ns = (now_s() - t0) * 1e9 / (double)reads;
    free(a);
    return p == n ? 0 : ns; /* p is used so the chase is not optimised away */
}

/* The 1-minute load average, -1 when /proc/loadavg cannot be read. */
static inline double load_average(void) {
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = -1;
        fclose(f);
    }
    return load;
}

/* Prints the machine line: online cores, memory latency and the 1-minute load average, so
 * figures from a busy or a different machine are read as such. Cannot fail (a value that
 * cannot be read prints as 0 or -1). */
static inline void print_machine(void) {
    double load = load_average();
    double ns = memory_latency_ns();
    printf("machine: %ld cores, memory latency %.1f ns (dependent random read, 128 MiB), "
           "load average %.2f\n",
           sysconf(_SC_NPROCESSORS_ONLN), ns, load);
}

/* The median, smallest and largest of repeated runs. */
typedef struct {
    double median, min, max;
} spread;

static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Of v[0..n) (sorted in place; n > 0; an even n takes the upper middle). Cannot fail. */
static inline spread spread_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    spread s = {v[n / 2], v[0], v[n - 1]};
    return s;
}

#endif
