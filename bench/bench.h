/* bench.h - clock, sleep and memory readings shared by the benchmark programs. */
#ifndef ABACUS_BENCH_H
#define ABACUS_BENCH_H

#include <stdio.h>
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

#endif
