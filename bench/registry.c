/* registry.c (bench) - registry speed and memory. Prints figures; asserts nothing.
 *
 *  - ns per counter add on an existing series found by its label values (not a cached
 *    pointer), among 1,000 and 1,000,000 series, on 1 and 2 threads; with one read-side
 *    section per add and with one section per batch of 64 adds (how ingest runs). Each
 *    thread adds to series of its own (the "distinct series of one family"), and
 *    once more with both threads picking from every series (true sharing, for contrast),
 *    and one thread adding while another holds and releases the family in a loop (what a
 *    write to the family costs the lookups of other threads);
 *  - the scaling: two threads' aggregate adds per second over one thread's, next to that of
 *    a loop sharing nothing, run in between (what the machine allows at the time);
 *  - ns per new-series create (1 and 2 threads, distinct series);
 *  - resident bytes per series at 1,000,000 series with two labels of 12 bytes, measured
 *    first, in a heap nothing was freed into yet (a fill after the other cases would reuse
 *    their freed memory and read low), with the breakdown: the series' slab block, the hash
 *    set's slot array at its load factor, and what else the heap grew by;
 *  - ns per free and alloc of a series' slab block (registry/slab.c), 1 and 2 threads.
 * Every timed case runs RUNS times, 1- and 2-thread runs interleaved so that a change in
 * the machine's load hits both alike; each prints its median and [smallest-largest].
 * Usage: bench_registry [series-for-the-large-case [memory|create]] ("memory": that case only;
 * "create": the create cases among that many series only)
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "family.h"
#include "registry.h"
#include "slab.h"

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
    int by_ref; /* add through remembered series (reg_update_ref), made before the timing */
    unsigned seed;
    double secs, cpu; /* wall-clock and this thread's CPU seconds */
} job;

/* This thread's CPU seconds. On a machine shared with other work a thread waits for a core
 * part of the time; its CPU time still grows with every cache line it waits for, so the CPU
 * figures show sharing between the two threads even when the wall clock is noisy. Cannot
 * fail. */
static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *create_job(void *arg) {
    job *j = arg;
    reg_thread *t = reg_thread_attach(reg);
    double t0 = now_s(), c0 = thread_cpu_s();
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
    j->cpu = thread_cpu_s() - c0;
    reg_thread_detach(t);
    return NULL;
}

/* Remembered series for the job's range (one reg_update each), or NULL unless j->by_ref.
 * Exits when out of memory. */
static reg_series_ref *refs_for(reg_thread *t, const job *j) {
    if (!j->by_ref)
        return NULL;
    reg_series_ref *refs = malloc(j->count * sizeof *refs);
    if (refs == NULL)
        abort();
    char a[16], b[16];
    reg_begin(t);
    for (size_t i = 0; i < j->count; i++) {
        values_of(j->first + i, a, b);
        const char *v[] = {a, b};
        if (reg_update(t, fam, v, REG_OP_COUNTER_ADD, 0, 1, &refs[i]) != REG_OK)
            abort();
    }
    reg_end(t);
    return refs;
}

static void *add_job(void *arg) {
    job *j = arg;
    reg_thread *t = reg_thread_attach(reg);
    reg_series_ref *refs = refs_for(t, j);
    unsigned x = j->seed;
    char a[16], b[16];
    double t0 = now_s(), c0 = thread_cpu_s();
    for (size_t i = 0; i < j->ops; i += j->batch) {
        reg_begin(t);
        for (size_t k = 0; k < j->batch; k++) {
            x = x * 1664525u + 1013904223u; /* pick a series at random: no cache help */
            size_t pick = (x >> 8) % j->count;
            if (refs) {
                if (reg_update_ref(t, fam, &refs[pick], REG_OP_COUNTER_ADD, 1, 1) != REG_OK)
                    abort(); /* nothing is removed meanwhile */
                continue;
            }
            values_of(j->first + pick, a, b);
            const char *v[] = {a, b};
            reg_counter_add(t, fam, v, 1);
        }
        reg_end(t);
    }
    j->secs = now_s() - t0;
    j->cpu = thread_cpu_s() - c0;
    free(refs);
    reg_thread_detach(t);
    return NULL;
}

/* Set when the timed thread is done: the holder below stops. */
static _Atomic int holder_stop;

/* Holds and releases the family as fast as it can (what scrapes and ingest caches do, far
 * more often): it writes the family's reference count, and an adder on another core shows
 * what that costs it when the count shares a line with what lookups read. */
static void *hold_job(void *arg) {
    (void)arg;
    while (!atomic_load_explicit(&holder_stop, memory_order_relaxed)) {
        if (reg_family_hold(fam) == REG_OK)
            reg_family_release(reg, fam);
    }
    return NULL;
}

/* The control: a loop that shares nothing (a generator in registers), timed like an add
 * job. On a VM whose two vCPUs are not always both backed by a core (steal time, other
 * tenants), even this does not run twice as fast on two threads: the add cases' scaling is
 * read against its scaling, measured in the same runs. */
static void *control_job(void *arg) {
    job *j = arg;
    unsigned x = j->seed;
    double t0 = now_s(), c0 = thread_cpu_s();
    for (size_t i = 0; i < j->ops * 50; i++)
        x = x * 1664525u + 1013904223u;
    j->secs = now_s() - t0;
    j->cpu = thread_cpu_s() - c0;
    j->seed = x; /* used, so the loop stays */
    return NULL;
}

enum { RUNS = 5 };

/* ns per operation as seen by each thread (mean): wall clock and CPU time. */
typedef struct {
    double wall, cpu;
} timing;

/* Run fn on n threads; returns ns per operation. With shared, every add thread picks from the
 * whole range; otherwise each gets its own share of it. */
static timing run(void *(*fn)(void *), const job *tmpl, int n, size_t per_thread_ops, int shared) {
    pthread_t th[8];
    job jobs[8];
    for (int i = 0; i < n; i++) {
        jobs[i] = *tmpl;
        jobs[i].seed = 12345u + (unsigned)i;
        if (fn == create_job || !shared) {
            jobs[i].count = tmpl->count / (size_t)n;
            jobs[i].first = tmpl->first + (size_t)i * jobs[i].count;
        }
        pthread_create(&th[i], NULL, fn, &jobs[i]);
    }
    timing ns = {0, 0};
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        ns.wall += jobs[i].secs * 1e9 / (double)per_thread_ops / n;
        ns.cpu += jobs[i].cpu * 1e9 / (double)per_thread_ops / n;
    }
    return ns;
}

static void fresh_registry(void) {
    if (reg)
        reg_destroy(reg);
    reg_options o = {0};
    reg = reg_create(&o);
    reg_thread *t = reg_thread_attach(reg);
    fam = bench_counter_family(t, "bench_requests_total", LABELS[0], LABELS[1]);
    if (fam == NULL)
        abort();
    reg_thread_detach(t);
}

/* Prints one case's medians and ranges over v[0..RUNS) and returns the medians. Cannot fail. */
static timing print_case(const char *what, const timing *v) {
    double wall[RUNS], cpu[RUNS];
    for (int k = 0; k < RUNS; k++) {
        wall[k] = v[k].wall;
        cpu[k] = v[k].cpu;
    }
    spread w = spread_of(wall, RUNS), c = spread_of(cpu, RUNS);
    printf("  %-40s %7.1f ns [%.1f-%.1f]  cpu %6.1f ns [%.1f-%.1f]\n", what, w.median, w.min, w.max,
           c.median, c.min, c.max);
    return (timing){w.median, c.median};
}

/* The add cases on the current registry of n series, and the control. Cannot fail. */
static void bench_adds(size_t n) {
    enum { ONE, ONE_B, TWO, TWO_B, SHARED_B, HELD_B, REF1, REF2, CONTROL1, CONTROL2, NCASES };
    static const char *const what[NCASES] = {
        "counter add, 1 thread,  section/add", "counter add, 1 thread,  section/64 adds",
        "counter add, 2 threads, section/add", "counter add, 2 threads, section/64 adds",
        "2 threads, same series, section/64",  "1 thread, family held meanwhile, /64",
        "remembered series, 1 thread, /64",    "remembered series, 2 threads, /64",
        "control, 1 thread (per 50 steps)",    "control, 2 threads (per 50 steps)"};
    timing ns[NCASES][RUNS];
    size_t ops = 1000000;
    for (int k = 0; k < RUNS; k++) {
        for (int c = 0; c < NCASES; c++) {
            int threads = (c >= TWO && c <= SHARED_B) || c == REF2 || c == CONTROL2 ? 2 : 1;
            job a = {.first = 0,
                     .count = n,
                     .ops = ops,
                     .batch = c == ONE || c == TWO ? 1 : 64,
                     .by_ref = c == REF1 || c == REF2};
            pthread_t holder;
            atomic_store(&holder_stop, 0);
            if (c == HELD_B)
                pthread_create(&holder, NULL, hold_job, NULL);
            ns[c][k] = run(c >= CONTROL1 ? control_job : add_job, &a, threads, ops, c == SHARED_B);
            if (c == HELD_B) {
                atomic_store(&holder_stop, 1);
                pthread_join(holder, NULL);
            }
        }
    }
    timing med[NCASES];
    for (int c = 0; c < NCASES; c++)
        med[c] = print_case(what[c], ns[c]);
    printf("  2 threads' adds/s over 1 thread's: section/add %.2fx (cpu %.2fx), "
           "section/64 adds %.2fx (cpu %.2fx)\n",
           2 * med[ONE].wall / med[TWO].wall, 2 * med[ONE].cpu / med[TWO].cpu,
           2 * med[ONE_B].wall / med[TWO_B].wall, 2 * med[ONE_B].cpu / med[TWO_B].cpu);
    printf("  remembered series, 2 threads over 1: %.2fx (cpu %.2fx)\n",
           2 * med[REF1].wall / med[REF2].wall, 2 * med[REF1].cpu / med[REF2].cpu);
    printf("  the control's (sharing nothing), same runs: %.2fx\n",
           2 * med[CONTROL1].wall / med[CONTROL2].wall);
}

/* Gives back and takes a 72-byte slab block (a series' size here) j->ops times, out of 64
 * held: the allocator on its own, without the rest of a creation. */
static void *slab_job(void *arg) {
    job *j = arg;
    void *held[64];
    for (size_t i = 0; i < 64; i++)
        held[i] = reg_slab_alloc(72);
    double t0 = now_s(), c0 = thread_cpu_s();
    for (size_t i = 0; i < j->ops; i++) {
        reg_slab_free(held[i % 64]);
        held[i % 64] = reg_slab_alloc(72);
    }
    j->secs = now_s() - t0;
    j->cpu = thread_cpu_s() - c0;
    for (size_t i = 0; i < 64; i++)
        reg_slab_free(held[i]);
    return NULL;
}

/* The slab case: a free and an alloc of a series' block, on 1 and 2 threads (each its own
 * blocks, one size class: the threads share its mutex). Cannot fail. */
static void bench_slab(void) {
    timing ns[2][RUNS];
    size_t ops = 2000000;
    for (int k = 0; k < RUNS; k++)
        for (int threads = 1; threads <= 2; threads++) {
            job j = {.ops = ops};
            ns[threads - 1][k] = run(slab_job, &j, threads, ops, 0);
        }
    printf("\nseries memory (registry/slab.c), 72-byte blocks\n");
    print_case("slab free + alloc, 1 thread", ns[0]);
    print_case("slab free + alloc, 2 threads", ns[1]);
}

/* The create cases: new series among the current ones (the registry grows by 2 * RUNS * m).
 * Cannot fail. */
static void bench_creates(size_t n) {
    timing ns[2][RUNS];
    size_t m = 50000, next = n + 1000000000; /* label values unlike the filled ones */
    for (int k = 0; k < RUNS; k++) {
        for (int threads = 1; threads <= 2; threads++) {
            job cc = {.first = next, .count = m};
            next += m;
            ns[threads - 1][k] = run(create_job, &cc, threads, m / (size_t)threads, 0);
        }
    }
    print_case("create new series, 1 thread", ns[0]);
    print_case("create new series, 2 threads", ns[1]);
}

/* The memory case: n series made in a heap nothing was freed into yet, RSS and malloc's
 * in-use bytes before and after, per series, and what one series' chunk and the hash set's
 * slot array come to. Cannot fail (aborts when the registry refuses a series). */
static void bench_memory(size_t n) {
    fresh_registry();
    reg_reap(reg); /* nothing retired pending */
    long rss0 = rss_bytes();
    struct mallinfo2 m0 = mallinfo2();
    job c = {.first = 0, .count = n};
    run(create_job, &c, 1, n, 0);
    for (int i = 0; i < 3; i++) /* a grace period or two: the slot arrays grown out of are freed */
        reg_reap(reg);
    long rss1 = rss_bytes();
    struct mallinfo2 m1 = mallinfo2();
    /* One series' memory: its slab block. */
    reg_thread *t = reg_thread_attach(reg);
    reg_series **v = NULL;
    size_t cap = 0, klen = 0;
    reg_begin(t);
    long got = reg_family_collect(t, fam, &v, &cap);
    size_t chunk = got > 0 ? reg_series_footprint(fam, v[0]) : 0;
    if (got > 0)
        klen = reg_series_labels(fam, v[0], NULL, 0);
    reg_end(t);
    free(v);
    reg_thread_detach(t);
    /* ck_hs doubles its slot array when it would be more than half full; 8 bytes a slot. */
    size_t slots = 8;
    while (slots < 2 * n)
        slots *= 2;
    double in_use = (double)((m1.uordblks + m1.hblkhd) - (m0.uordblks + m0.hblkhd)) / (double)n;
    printf("\nmemory: %zu series, 2 label values of 14 bytes, in a fresh heap\n", n);
    printf("  %-40s %7.1f B/series\n", "resident memory", (double)(rss1 - rss0) / (double)n);
    printf("  %-40s %7.1f B/series\n", "malloc in use (mallinfo2; not slabs)", in_use);
    printf("  %-40s %7zu B (label text %zu B)\n", "series block (slab, no header)", chunk, klen);
    printf("  %-40s %7.1f B/series (%zu slots, load %.2f)\n", "hash set slot array",
           (double)slots * 8 / (double)n, slots, (double)n / (double)slots);
}

int main(int argc, char **argv) {
    size_t big = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    printf("abacus registry benchmark (%d runs a case: median [smallest-largest])\n", RUNS);
    print_machine();
    if (argc > 2 && strcmp(argv[2], "create") == 0) {
        fresh_registry();
        job c = {.first = 0, .count = big};
        run(create_job, &c, 1, big, 0);
        printf("\n%zu series, 2 labels of 12 bytes\n", big);
        bench_creates(big);
        return 0;
    }
    bench_memory(big);
    if (argc > 2 && strcmp(argv[2], "memory") == 0)
        return 0;
    bench_slab();

    size_t sizes[] = {1000, big};
    for (int si = 0; si < 2; si++) {
        size_t n = sizes[si];
        fresh_registry();
        job c = {.first = 0, .count = n};
        double create_ns = run(create_job, &c, 1, n, 0).wall;
        printf("\n%zu series, 2 labels of 12 bytes\n", n);
        printf("  %-40s %7.1f ns\n", "fill: create (1 thread, once)", create_ns);
        bench_adds(n);
        bench_creates(n);
    }
    reg_destroy(reg);
    printf("\nload average at the end %.2f\n", load_average());
    return 0;
}
