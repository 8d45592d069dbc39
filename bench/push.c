/* push.c (bench) - push speed and memory: abacus next to Prometheus's Pushgateway, both run as
 * real processes in the same run and measured the same way. Prints figures; asserts nothing.
 *
 *  - one group PUT repeatedly: pushes and series per second for bodies of 10, 1,000 and
 *    100,000 gauge series with two labels;
 *  - 1,000 groups of 100 series (PUT /metrics/job/bench/instance/<i>) one after another:
 *    series per second over all of them, over the first 100 and over the last 100 groups (the
 *    Pushgateway's consistency check re-reads every group on each push; abacus's cost should
 *    not grow with the number of other groups);
 *  - resident memory per pushed series: the server's RSS 1 s after one PUT of 100,000 series
 *    minus its RSS before, divided by 100,000.
 * Each server gets one keep-alive HTTP/1.1 connection and one push at a time; every answer must
 * be 200 (any other is counted as failed), and the series pushed are counted in /metrics. The
 * servers listen on 127.0.0.1 only, are started afresh for the memory and repeated pushes and
 * again for the groups, and are stopped at the end. abacus runs with its StatsD listeners off
 * and no configuration file; the Pushgateway without persistence.
 *
 * Usage: bench_push [--abacus BIN] [--pushgateway BIN] [--step-seconds S] [--groups-seconds S]
 *   --abacus: default ../exporter/abacus from this program's directory (the same build);
 *   --pushgateway: default /usr/bin/prometheus-pushgateway; when absent, no peer column;
 *   --step-seconds: least time of each repeated-push figure (default 2);
 *   --groups-seconds: most time of a server's 1,000 groups (default 60, 0: no cap; the
 *     Pushgateway needs about 95 s for all of them on a 2-core VM, so its run stops early and
 *     its figures cover the groups it got through).
 */
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "peer.h"
#include "http_client.h"

/* ---- the servers: real processes ------------------------------------------------------- */

typedef struct {
    const char *name;
    pid_t pid; /* also its process group */
    http_client http;
} server;

/* Stops whatever is still running when this program is interrupted. */
static void on_signal(int sig) {
    peer_kill_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Start argv[0] and wait until it is ready (peer_start). 0, or -1. */
static int server_start(server *s, const char *name, char *const argv[], int port, int quiet) {
    *s = (server){.name = name, .http = {.port = port, .fd = -1}};
    return peer_start(&s->pid, name, argv, quiet, &s->http);
}

/* Stop it (peer_stop) and free its client. Cannot fail. */
static void server_stop(server *s) {
    http_free(&s->http);
    peer_stop(&s->pid, s->name);
}

typedef struct {
    const char *abacus, *pushgateway; /* pushgateway NULL: not installed */
} binaries;

/* abacus and, when installed, the Pushgateway, on free ports. The number started. */
static int servers_start(const binaries *bin, server out[2]) {
    char listen[2][64];
    int port[2] = {free_port(), free_port()};
    while (port[1] == port[0])
        port[1] = free_port();
    for (int i = 0; i < 2; i++)
        snprintf(listen[i], sizeof listen[i], "--web.listen-address=127.0.0.1:%d", port[i]);
    char *abacus[PEER_ARGV_MAX];
    peer_abacus_argv(abacus, bin->abacus, listen[0], NULL);
    char *pushgateway[] = {(char *)bin->pushgateway, listen[1],
                           "--persistence.file=", "--log.level=warn", NULL};
    if (server_start(&out[0], "abacus", abacus, port[0], 0) != 0)
        exit(1);
    if (bin->pushgateway == NULL)
        return 1;
    if (server_start(&out[1], "pushgateway", pushgateway, port[1], 1) != 0) {
        server_stop(&out[0]);
        exit(1);
    }
    return 2;
}

/* ---- the traffic ----------------------------------------------------------------------- */

/* Series of the bench family in the server's /metrics (lines "bench_gauge{"), or -1. */
static long count_series(server *s) {
    if (http_request(&s->http, "GET", "/metrics", "", 0) != 200)
        return -1;
    long n = 0;
    for (const char *p = s->http.body; (p = strstr(p, "bench_gauge{")) != NULL; p++)
        n += p == s->http.body || p[-1] == '\n';
    return n;
}

/* ---- the phases ------------------------------------------------------------------------ */

typedef struct {
    double bytes_per_series;
    long before, after, counted;
    unsigned failed;
} memory_result;

/* RSS 1 s after one PUT of n series to a fresh group, minus RSS before (after a one-series
 * warm-up push, so the push machinery exists). */
static memory_result measure_memory(server *s, size_t n) {
    memory_result m = {0};
    size_t len;
    char *warm = peer_gauge_body(1, 0, &len);
    m.failed = http_request(&s->http, "PUT", "/metrics/job/warm", warm, len) != 200;
    free(warm);
    sleep_ms(1000);
    m.before = rss_bytes_of(s->pid);
    char *body = peer_gauge_body(n, 0, &len);
    m.failed += http_request(&s->http, "PUT", "/metrics/job/bench", body, len) != 200;
    free(body);
    sleep_ms(1000);
    m.after = rss_bytes_of(s->pid);
    m.counted = count_series(s);
    if (m.counted > 0)
        m.counted--; /* the warm-up series */
    m.bytes_per_series = (double)(m.after - m.before) / (double)n;
    return m;
}

typedef struct {
    double pushes, seconds;
    unsigned failed;
} run_result;

/* PUT body to path until min_seconds and at least 3 pushes have passed, after one warm-up
 * push (which creates the group). */
static run_result put_repeated(server *s, const char *path, const char *body, size_t len,
                               double min_seconds) {
    run_result r = {0};
    r.failed = http_request(&s->http, "PUT", path, body, len) != 200;
    double t0 = now_s();
    while (r.pushes < 3 || now_s() - t0 < min_seconds) {
        r.failed += http_request(&s->http, "PUT", path, body, len) != 200;
        r.pushes++;
    }
    r.seconds = now_s() - t0;
    return r;
}

#define GROUPS 1000
#define GROUP_SERIES 100
#define EDGE 100 /* groups in the "first" and "last" figures */

typedef struct {
    int groups; /* pushed: GROUPS, or fewer when the time cap was reached */
    double seconds, first_seconds, last_seconds;
    unsigned failed;
    long counted;
} groups_result;

/* Push the groups one after another, stopping early after max_seconds (0: no cap). */
static groups_result push_groups(server *s, char *const bodies[], const size_t lens[],
                                 double max_seconds) {
    static double done_at[GROUPS + 1]; /* done_at[i]: when i groups had been pushed */
    groups_result g = {0};
    char path[128];
    done_at[0] = now_s();
    while (g.groups < GROUPS &&
           (max_seconds <= 0 || now_s() - done_at[0] < max_seconds || g.groups < EDGE)) {
        snprintf(path, sizeof path, "/metrics/job/bench/instance/%d", g.groups);
        g.failed += http_request(&s->http, "PUT", path, bodies[g.groups], lens[g.groups]) != 200;
        done_at[++g.groups] = now_s();
    }
    g.seconds = done_at[g.groups] - done_at[0];
    g.first_seconds = done_at[EDGE] - done_at[0];
    g.last_seconds = done_at[g.groups] - done_at[g.groups - EDGE];
    g.counted = count_series(s);
    return g;
}

static double ratio(double a, double b) {
    return b > 0 ? a / b : 0;
}

#define MEMORY_SERIES 100000
static const size_t SIZES[] = {10, 1000, 100000}; /* series in the repeated bodies */
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

/* What the ratios are made of; index 0 is abacus, 1 the Pushgateway. */
typedef struct {
    int nservers;
    memory_result memory[2];
    double one_group[NSIZES][2], groups[2]; /* series per second */
    int capped;
} figures;

/* Memory first, on fresh servers; then the repeated pushes on the same servers (each size
 * replaces the group of the memory push). */
static void bench_one_group(const binaries *bin, double step, figures *f) {
    server servers[2];
    f->nservers = servers_start(bin, servers);
    for (int k = 0; k < f->nservers; k++)
        f->memory[k] = measure_memory(&servers[k], MEMORY_SERIES);
    printf("one group, PUT repeatedly (after one warm-up push; at least %g s each):\n", step);
    printf("  %8s  %-12s %8s %9s %11s %13s %7s\n", "series", "server", "pushes", "seconds",
           "pushes/s", "series/s", "failed");
    for (size_t i = 0; i < NSIZES; i++) {
        size_t len;
        char *body = peer_gauge_body(SIZES[i], 0, &len);
        for (int k = 0; k < f->nservers; k++) {
            run_result r = put_repeated(&servers[k], "/metrics/job/bench", body, len, step);
            f->one_group[i][k] = r.pushes * (double)SIZES[i] / r.seconds;
            printf("  %8zu  %-12s %8.0f %9.2f %11.1f %13.0f %7u\n", SIZES[i], servers[k].name,
                   r.pushes, r.seconds, r.pushes / r.seconds, f->one_group[i][k], r.failed);
            fflush(stdout);
        }
        free(body);
    }
    for (int k = 0; k < f->nservers; k++)
        server_stop(&servers[k]);
}

static void bench_groups(const binaries *bin, double cap, figures *f) {
    printf("\n%d groups of %d series, PUT /metrics/job/bench/instance/<i> one after another "
           "(fresh servers):\n",
           GROUPS, GROUP_SERIES);
    printf("  %-12s %7s %9s %13s %17s %17s %7s %12s\n", "server", "groups", "seconds", "series/s",
           "first 100 groups", "last 100 groups", "failed", "in /metrics");
    char *bodies[GROUPS];
    size_t lens[GROUPS];
    for (int i = 0; i < GROUPS; i++)
        bodies[i] = peer_gauge_body(GROUP_SERIES, (size_t)i * GROUP_SERIES, &lens[i]);
    server servers[2];
    f->nservers = servers_start(bin, servers);
    for (int k = 0; k < f->nservers; k++) {
        groups_result g = push_groups(&servers[k], bodies, lens, cap);
        f->groups[k] = g.groups * GROUP_SERIES / g.seconds;
        printf("  %-12s %7d %9.2f %13.0f %17.0f %17.0f %7u %12ld\n", servers[k].name, g.groups,
               g.seconds, f->groups[k], EDGE * GROUP_SERIES / g.first_seconds,
               EDGE * GROUP_SERIES / g.last_seconds, g.failed, g.counted);
        fflush(stdout);
        f->capped |= g.groups < GROUPS;
    }
    for (int k = 0; k < f->nservers; k++)
        server_stop(&servers[k]);
    for (int i = 0; i < GROUPS; i++)
        free(bodies[i]);
    printf("  (first/last 100 groups: series per second over those pushes alone)\n");
    if (f->capped)
        printf(
            "  (fewer than %d groups: stopped at the %.0f s cap, --groups-seconds; each further\n"
            "   push would have taken longer, so that server's series/s is overstated)\n",
            GROUPS, cap);
}

static void print_memory(const figures *f) {
    static const char *const NAMES[] = {"abacus", "pushgateway"};
    printf("\nmemory: one PUT of %d series to a fresh group; RSS 1 s after it minus RSS before\n",
           MEMORY_SERIES);
    printf("  %-12s %12s %12s %15s %7s %12s\n", "server", "before MiB", "after MiB", "bytes/series",
           "failed", "in /metrics");
    for (int k = 0; k < f->nservers; k++) {
        const memory_result *m = &f->memory[k];
        printf("  %-12s %12.1f %12.1f %15.0f %7u %12ld\n", NAMES[k], m->before / 1048576.0,
               m->after / 1048576.0, m->bytes_per_series, m->failed, m->counted);
    }
}

static void print_ratios(const figures *f) {
    printf("\nabacus against the Pushgateway (issue targets in brackets; not asserted):\n");
    for (size_t i = 0; i < NSIZES; i++)
        printf("  series/s, one group of %zu series: %.1fx [>= 5x]\n", SIZES[i],
               ratio(f->one_group[i][0], f->one_group[i][1]));
    printf("  series/s, %d groups of %d: %.1fx [>= 100x]%s\n", GROUPS, GROUP_SERIES,
           ratio(f->groups[0], f->groups[1]), f->capped ? " (understated: a run was capped)" : "");
    printf("  bytes per pushed series: abacus %.0f [<= 200], pushgateway %.0f: %.1fx less\n",
           f->memory[0].bytes_per_series, f->memory[1].bytes_per_series,
           ratio(f->memory[1].bytes_per_series, f->memory[0].bytes_per_series));
}

int main(int argc, char **argv) {
    char abacus[4200];
    if (peer_build_abacus(abacus, sizeof abacus) != 0)
        return 1;
    binaries bin = {abacus, "/usr/bin/prometheus-pushgateway"};
    double step = 2, groups_cap = 60;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--abacus") && i + 1 < argc)
            bin.abacus = argv[++i];
        else if (!strcmp(argv[i], "--pushgateway") && i + 1 < argc)
            bin.pushgateway = argv[++i];
        else if (!strcmp(argv[i], "--step-seconds") && i + 1 < argc)
            step = atof(argv[++i]);
        else if (!strcmp(argv[i], "--groups-seconds") && i + 1 < argc)
            groups_cap = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_push [--abacus BIN] [--pushgateway BIN] "
                            "[--step-seconds S] [--groups-seconds S]\n");
            return 2;
        }
    }
    print_machine();
    if (access(bin.pushgateway, X_OK) != 0) {
        printf("pushgateway: not installed (%s), no peer column\n", bin.pushgateway);
        bin.pushgateway = NULL;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("bench_push: %ld CPUs; one keep-alive HTTP/1.1 connection per server, one push at a "
           "time;\nbodies: gauges with 2 labels in the text format; failed: answers other than "
           "200\n\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    figures f = {0};
    bench_one_group(&bin, step, &f);
    bench_groups(&bin, groups_cap, &f);
    print_memory(&f);
    if (f.nservers == 2)
        print_ratios(&f);
    return 0;
}
