/* remote_write.c - what remote write costs: a registry of 100,000 series sent to a local sink
 * the way a receiver's threads send it (collect, series bookkeeping, protobuf + snappy, HTTP
 * with libcurl), each step timed in CPU seconds of the one thread doing it.
 *
 * Prints samples per second one core encodes, compresses and sends, bytes on the wire per
 * sample, and the CPU remote write takes at a 15 s interval as a fraction of one core. The sink
 * is a minimal HTTP/1.1 server on loopback in a thread of its own (its CPU is not counted); its
 * answers are immediate, so the figures are abacus's side alone. Not a test: never fails on
 * time.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "family.h"
#include "exporter/remote/internal.h"

#define SERVICES 100
#define ROUTES 1000 /* SERVICES * ROUTES series */
#define CYCLES 5
#define INTERVAL_S 15.0
#define PER_SEND 2000 /* queue_config.max_samples_per_send's default */

/* CPU seconds of the calling thread. Cannot fail. */
static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the sink: answers every POST with 200 on a kept-alive connection ---------------------- */

static int sink_fd;

/* Reads one request (headers, then Content-Length bytes). 0, or -1 at the end. */
static int read_request(int c, char *buf, size_t cap) {
    size_t have = 0;
    char *end = NULL;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
        ssize_t n = read(c, buf + have, cap - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    size_t head = (size_t)(end + 4 - buf), body = 0;
    for (char *p = buf; p < end; p = strstr(p, "\r\n") + 2)
        if (!strncasecmp(p, "Content-Length:", 15))
            body = strtoul(p + 15, NULL, 10);
    for (size_t got = have - head; got < body;) {
        ssize_t n = read(c, buf, cap < body - got ? cap : body - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

/* The sink thread: one connection at a time, until the process ends. */
static void *sink_main(void *arg) {
    (void)arg;
    static char buf[1 << 20];
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for (;;) {
        int c = accept(sink_fd, NULL, NULL);
        if (c < 0)
            return NULL;
        while (read_request(c, buf, sizeof buf) == 0)
            if (write(c, ok, sizeof ok - 1) < 0)
                break;
        close(c);
    }
}

/* The sink's port, its thread started. 0 when it cannot listen. */
static unsigned sink_start(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    pthread_t t;
    sink_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (sink_fd < 0 || bind(sink_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(sink_fd, 4) != 0 || getsockname(sink_fd, (struct sockaddr *)&a, &len) != 0 ||
        pthread_create(&t, NULL, sink_main, NULL) != 0)
        return 0;
    pthread_detach(t);
    return ntohs(a.sin_port);
}

/* ---- the registry -------------------------------------------------------------------------- */

/* Add to every series (each cycle's values differ, as a live registry's do). */
static void update(reg_thread *t, reg_family *f, unsigned cycle) {
    char svc[32], route[48];
    const char *v[] = {svc, route};
    reg_begin(t);
    for (unsigned i = 0; i < SERVICES; i++) {
        snprintf(svc, sizeof svc, "service-%u", i);
        for (unsigned j = 0; j < ROUTES; j++) {
            snprintf(route, sizeof route, "/api/v1/items/%u", j);
            reg_counter_add(t, f, v, 1 + (double)((i * 7 + j * 13 + cycle) % 100));
        }
    }
    reg_end(t);
}

typedef struct {
    double collect, series, encode, send; /* CPU seconds */
    size_t samples, wire, raw;
} cycle_cost;

/* One collection sent whole. 0, or -1 (reported). */
static int one_cycle(reg_registry *r, rw_series_set *set, const rw_rules *rules, rw_client *c,
                     const cfg_remote_write *w, rw_encoder *e, cycle_cost *k) {
    double t0 = thread_cpu_s();
    rw_collection col;
    char err[256];
    if (rw_collect(exp_scrape_begin(r, EXP_FMT_TEXT, 0), &col, err, sizeof err) != 0) {
        fprintf(stderr, "collect: %s\n", err);
        return -1;
    }
    double t1 = thread_cpu_s();
    size_t lost = 0;
    size_t n = rw_series_set_feed(set, &col, rules, (int64_t)(time(NULL) * 1000), &lost);
    double t2 = thread_cpu_s();
    k->collect += t1 - t0;
    k->series += t2 - t1;
    k->samples += n;
    for (size_t i = 0; i < n; i += PER_SEND) {
        size_t m = n - i < PER_SEND ? n - i : PER_SEND, raw;
        const char *body;
        double a = thread_cpu_s();
        long len = rw_encode(e, set->batch + i, m, &body, &raw);
        double b = thread_cpu_s();
        unsigned status;
        char why[256];
        if (len < 0 ||
            rw_client_send(c, w, body, (size_t)len, &status, why, sizeof why) != RW_SENT) {
            fprintf(stderr, "send: %s\n", len < 0 ? "out of memory" : why);
            return -1;
        }
        k->encode += b - a;
        k->send += thread_cpu_s() - b;
        k->wire += (size_t)len;
        k->raw += raw;
    }
    for (size_t i = 0; i < n; i++)
        rw_series_unref(set->batch[i].series);
    rw_collection_free(&col);
    return 0;
}

/* Exits 0, or 1 when the set-up or a send failed (reported). */
int main(void) {
    print_machine();
    unsigned port = sink_start();
    reg_options o = {0};
    reg_registry *r = reg_create(&o);
    reg_thread *t = r ? reg_thread_attach(r) : NULL;
    reg_family *f = t ? bench_counter_family(t, "http_requests_total", "service", "route") : NULL;
    rw_client *c = rw_client_create();
    rw_series_set set;
    if (!port || !f || !c || rw_series_set_init(&set) != 0) {
        fprintf(stderr, "cannot set up\n");
        return 1;
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/api/v1/write", port);
    cfg_remote_write w = {.url = url, .remote_timeout_ns = 30000000000ull};
    rw_rules rules = {.instance = "bench:9102"};
    rw_encoder e = {0};
    cycle_cost warm = {0}, k = {0};
    update(t, f, 0);
    if (one_cycle(r, &set, &rules, c, &w, &e, &warm) != 0) /* series made, buffers grown */
        return 1;
    for (unsigned i = 1; i <= CYCLES; i++) {
        update(t, f, i);
        if (one_cycle(r, &set, &rules, c, &w, &e, &k) != 0)
            return 1;
    }
    double per_cycle = (k.collect + k.series + k.encode + k.send) / CYCLES;
    double samples = (double)k.samples / CYCLES;
    printf("abacus remote write benchmark (%ld CPUs): %d series (counters, 2 labels + job, "
           "instance), %d samples per request, local sink, %d cycles\n",
           sysconf(_SC_NPROCESSORS_ONLN), SERVICES * ROUTES, PER_SEND, CYCLES);
    printf("%-40s %12.1f\n", "samples per collection", samples);
    printf("%-40s %12.1f ms\n", "collect (render + read back), CPU", k.collect / CYCLES * 1e3);
    printf("%-40s %12.1f ms\n", "series (labels, identities), CPU", k.series / CYCLES * 1e3);
    printf("%-40s %12.1f ms\n", "encode + snappy, CPU", k.encode / CYCLES * 1e3);
    printf("%-40s %12.1f ms\n", "send (libcurl, loopback), CPU", k.send / CYCLES * 1e3);
    printf("%-40s %12.0f samples/s\n", "one core: collect+encode+compress+send",
           samples / per_cycle);
    printf("%-40s %12.0f samples/s\n", "one core: encode+compress+send only",
           samples / ((k.encode + k.send) / CYCLES));
    printf("%-40s %12.2f bytes\n", "bytes on the wire per sample (snappy)",
           (double)k.wire / (double)k.samples);
    printf("%-40s %12.2f bytes\n", "protobuf bytes per sample (uncompressed)",
           (double)k.raw / (double)k.samples);
    printf("%-40s %12.4f of a core (%.1f%%)\n", "CPU at a 15 s interval", per_cycle / INTERVAL_S,
           per_cycle / INTERVAL_S * 100);
    printf("%-40s %12.1f MiB\n", "resident memory", (double)rss_bytes() / 1048576.0);
    rw_encoder_free(&e);
    rw_series_set_free(&set);
    rw_client_free(c);
    reg_thread_detach(t);
    reg_destroy(r);
    return 0;
}
