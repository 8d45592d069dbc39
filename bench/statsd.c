/* statsd.c (bench) - StatsD ingest speed and memory. Prints figures; asserts nothing.
 *
 *  - the ingest path alone (no sockets): lines per second and ns per line on one thread;
 *  - UDP over loopback into 1 and 2 reader threads (SO_REUSEPORT), packets of 1 and of 20
 *    lines: the most lines per second received with an unthrottled sender, the highest
 *    offered rate with no kernel drop (a ramp of offered rates), and CPU seconds of the
 *    receiving process per million lines;
 *  - resident memory with 100,000 live counter series, and bytes per series.
 * Kernel drops come from /proc/net/udp (the drops column of our sockets), cross-checked with
 * abacus_statsd_packets_dropped_total{reason="kernel"} (SO_RXQ_OVFL). The sender is a separate
 * process (this program re-executed with --send), so the CPU figures are the receiver's.
 * statsd_exporter is not installed here: there is no peer column.
 *
 * Usage: bench_statsd [--quick] [--ingest-only] [--step-seconds S]
 *   --quick: 1-second steps; --ingest-only: the first figure only (for profiling);
 *   --step-seconds: length of the unthrottled run (default 2). BENCH_VERBOSE=1 prints every
 *   step; BENCH_PACKETS=N sets the datagrams of the ingest-only run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../tests/support/statsd_fixture.h"
#include "bench.h"
#include "flags.h"
#include "selfmetrics.h"
#include "state.h"
#include "log.h"
#include "statsd/statsd.h"

/* The traffic: a glob rule with a label, DogStatsD tags, and a mix of types. */
static const char *const YAML = "defaults:\n"
                                "  max_series: 1000000\n"
                                "mappings:\n"
                                "  - match: \"bench.req.*\"\n"
                                "    name: bench_requests_total\n"
                                "    labels: {shard: \"$1\"}\n"
                                "  - match: \"bench.lat.*\"\n"
                                "    name: bench_latency_seconds\n"
                                "    labels: {shard: \"$1\"}\n";

/* Line k of the mix: 8 in 10 counters, 1 gauge, 1 timer; 100 shards. */
static int mix_line(char *buf, size_t cap, unsigned k) {
    unsigned shard = (k * 7) % 100;
    switch (k % 10) {
    case 3:
        return snprintf(buf, cap, "bench.queue.%u:%u|g|#env:prod", shard, k % 1000);
    case 7:
        return snprintf(buf, cap, "bench.lat.%u:%u|ms|#env:prod,route:/api/v1/items", shard,
                        k % 250);
    default:
        return snprintf(buf, cap, "bench.req.%u:1|c|#env:prod,code:200", shard);
    }
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- sender (a separate process) --------------------------------------------------------- */

#define FLOWS 32
#define SEND_BATCH 32
#define POOL 512

/* bench_statsd --send PORT LINES_PER_PACKET RATE SECONDS: send for SECONDS at RATE lines/s
 * (0: as fast as possible) from FLOWS source ports; print "sent LINES SECONDS CPU". */
static int sender_main(int argc, char **argv) {
    if (argc < 6)
        return 2;
    int port = atoi(argv[2]), per = atoi(argv[3]);
    double rate = atof(argv[4]), secs = atof(argv[5]);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    int fds[FLOWS];
    for (int i = 0; i < FLOWS; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
        int big = 4 << 20;
        setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&dst, sizeof dst) != 0)
            return 1;
    }
    static char pkts[POOL][2048];
    static size_t plen[POOL];
    unsigned k = 0;
    for (int p = 0; p < POOL; p++) {
        size_t n = 0;
        for (int l = 0; l < per; l++) {
            if (l)
                pkts[p][n++] = '\n';
            n += (size_t)mix_line(pkts[p] + n, sizeof pkts[p] - n, k++);
        }
        plen[p] = n;
    }
    struct mmsghdr msgs[SEND_BATCH];
    struct iovec iov[SEND_BATCH];
    uint64_t sent_pkts = 0;
    double t0 = now_s(), elapsed = 0;
    int flow = 0, p = 0;
    while ((elapsed = now_s() - t0) < secs) {
        if (rate > 0) {
            /* Paced in bursts of SEND_BATCH datagrams; sleep (never spin) when ahead, so the
             * sender leaves the CPUs to the readers. */
            double due = rate * elapsed / per;
            if ((double)sent_pkts > due) {
                double ahead = ((double)sent_pkts - due) * per / rate;
                struct timespec ts = {0, (long)((ahead > 50e-6 ? ahead : 50e-6) * 1e9)};
                nanosleep(&ts, NULL);
                continue;
            }
        }
        for (int i = 0; i < SEND_BATCH; i++) {
            iov[i] = (struct iovec){pkts[p], plen[p]};
            msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
            p = (p + 1) % POOL;
        }
        int n = sendmmsg(fds[flow], msgs, SEND_BATCH, 0);
        if (n > 0)
            sent_pkts += (uint64_t)n;
        else if (n < 0 && errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED)
            return 1;
        flow = (flow + 1) % FLOWS;
    }
    printf("sent %llu %.6f %.6f\n", (unsigned long long)(sent_pkts * (uint64_t)per), elapsed,
           cpu_s());
    return 0;
}

typedef struct {
    double lines, secs, cpu;
} sent_report;

/* Run the sender to completion. */
static int run_sender(const char *self, int port, int per, double rate, double secs,
                      sent_report *out) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --send %d %d %.0f %.3f", self, port, per, rate, secs);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "sent %lf %lf %lf", &out->lines, &out->secs, &out->cpu) == 3;
    return pclose(f) == 0 && ok ? 0 : -1;
}

/* ---- the receiving side (in this process) ------------------------------------------------ */

/* The shared listener fixture (tests/support/statsd_fixture.h) is the server. */
typedef statsd_fixture server;

static server *server_start(unsigned readers, const char *udp) {
    server *s = calloc(1, sizeof *s);
    if (!s || statsd_fixture_prepare(s, "abacus-bench", YAML) != 0)
        exit(1);
    char fudp[256], freaders[64], fbuf[64];
    snprintf(fudp, sizeof fudp, "--statsd.listen-udp=%s", udp);
    snprintf(freaders, sizeof freaders, "--statsd.readers=%u", readers);
    snprintf(fbuf, sizeof fbuf, "--statsd.read-buffer=%d", 32 << 20);
    const char *flags[] = {fudp, "--statsd.listen-tcp=", freaders, fbuf, NULL};
    char err[256] = "";
    if (statsd_fixture_start(s, flags, 0, err, sizeof err) != 0) {
        fprintf(stderr, "cannot start: %s\n", err);
        exit(1);
    }
    return s;
}

static void server_stop(server *s) {
    statsd_fixture_stop(s);
    free(s);
}

/* Value of a self-metric series (rendered labels), 0 when absent. */
static double metric(server *s, const char *family, const char *labels) {
    reg_begin(s->t);
    reg_series *sr = statsd_fixture_series(s, reg_family_find(s->t, family), labels);
    double v = sr ? reg_series_value(sr) : 0;
    reg_end(s->t);
    return v;
}

static size_t series_of(server *s, const char *family) {
    return statsd_fixture_nseries(s, family);
}

/* Queued bytes and drops of the UDP sockets bound to port (all readers), /proc/net/udp. */
static void proc_udp(int port, unsigned long long *queued, unsigned long long *drops) {
    *queued = *drops = 0;
    const char *files[] = {"/proc/net/udp", "/proc/net/udp6"};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(files[k], "r");
        if (!f)
            continue;
        char line[512];
        if (!fgets(line, sizeof line, f)) {
            fclose(f);
            continue;
        }
        while (fgets(line, sizeof line, f)) {
            char local[64];
            unsigned long txq, rxq;
            unsigned long long d = 0;
            /* sl local rem st tx:rx tr:when retr uid timeout inode ref ptr drops */
            if (sscanf(line, " %*s %63s %*s %*s %lx:%lx %*s %*s %*s %*s %*s %*s %*s %llu", local,
                       &txq, &rxq, &d) != 4)
                continue;
            char *c = strrchr(local, ':');
            if (!c || (int)strtol(c + 1, NULL, 16) != port)
                continue;
            *queued += rxq;
            *drops += d;
        }
        fclose(f);
    }
}

/* After a send: wait until the sockets are empty and the readers' counts are folded. */
static double settle_lines(server *s) {
    double last = -1;
    for (int i = 0; i < 2000; i++) {
        unsigned long long q, d;
        proc_udp(s->udp_port, &q, &d);
        double v = metric(s, "abacus_statsd_lines_total", "listener=\"udp\"");
        if (q == 0 && v == last)
            return v;
        last = v;
        sleep_ms(EXP_STATSD_FOLD_MS / 5 + 10);
    }
    return last;
}

typedef struct {
    double offered, sent, received, drops, drops_self, secs, busy, cpu, sender_cpu;
} step_result;

/* Seconds until the sockets' receive queues are empty (polled every millisecond). */
static void await_drained(server *s) {
    for (int i = 0; i < 60000; i++) {
        unsigned long long q, d;
        proc_udp(s->udp_port, &q, &d);
        if (q == 0)
            return;
        sleep_ms(1);
    }
}

/* One sender run at rate (0: unthrottled). busy: from the start until the receive queues
 * were empty again, the time the readers needed for what they received. */
static void run_step(server *s, const char *self, int per, double rate, double secs,
                     step_result *r) {
    unsigned long long q, d0, d1;
    double l0 = settle_lines(s);
    proc_udp(s->udp_port, &q, &d0);
    double k0 =
        metric(s, "abacus_statsd_packets_dropped_total", "listener=\"udp\",reason=\"kernel\"");
    double c0 = cpu_s(), t0 = now_s();
    sent_report sr = {0};
    if (run_sender(self, s->udp_port, per, rate, secs, &sr) != 0)
        fprintf(stderr, "sender failed\n");
    await_drained(s);
    r->busy = now_s() - t0;
    double c1 = cpu_s();
    double l1 = settle_lines(s);
    proc_udp(s->udp_port, &q, &d1);
    double k1 =
        metric(s, "abacus_statsd_packets_dropped_total", "listener=\"udp\",reason=\"kernel\"");
    r->offered = rate;
    r->sent = sr.lines;
    r->secs = sr.secs;
    r->received = l1 - l0;
    r->drops = (double)(d1 - d0);
    r->drops_self = k1 - k0;
    r->cpu = c1 - c0;
    r->sender_cpu = sr.cpu;
    if (getenv("BENCH_VERBOSE"))
        fprintf(stderr,
                "step: per=%d rate=%.0f sent=%.0f in %.2fs (sender cpu %.2f) received=%.0f "
                "in %.2fs drops=%.0f/%.0f cpu=%.2f\n",
                per, rate, r->sent, r->secs, sr.cpu, r->received, r->busy, r->drops, r->drops_self,
                r->cpu);
}

/* ---- the phases ---------------------------------------------------------------------------- */

static void bench_ingest_only(void) {
    server *s = server_start(1, "");
    exp_ingest *in = exp_ingest_create(s->L, EXP_STATSD_LISTENER_UDP);
    static char pkts[POOL][2048];
    static size_t plen[POOL];
    unsigned k = 0;
    for (int p = 0; p < POOL; p++) {
        size_t n = 0;
        for (int l = 0; l < 20; l++) {
            if (l)
                pkts[p][n++] = '\n';
            n += (size_t)mix_line(pkts[p] + n, sizeof pkts[p] - n, k++);
        }
        plen[p] = n;
    }
    for (int p = 0; p < POOL; p++) /* warm the caches: series exist */
        exp_ingest_datagram(in, pkts[p], plen[p]);
    size_t packets = getenv("BENCH_PACKETS") ? (size_t)atol(getenv("BENCH_PACKETS")) : 200000;
    double t0 = now_s(), c0 = cpu_s();
    for (size_t i = 0; i < packets; i++)
        exp_ingest_datagram(in, pkts[i % POOL], plen[i % POOL]);
    double dt = now_s() - t0, dc = cpu_s() - c0;
    double lines = (double)packets * 20;
    printf("ingest path alone (1 thread, 20-line datagrams, no sockets):\n");
    printf("  %.2f M lines/s, %.0f ns per line, %.2f CPU-s per million lines\n\n", lines / dt / 1e6,
           dt / lines * 1e9, dc / lines * 1e6);
    exp_ingest_free(in);
    server_stop(s);
}

static void bench_udp(const char *self, double step_secs, double ramp_secs) {
    printf("UDP loopback (sender: separate process, %d source ports; receive buffer 32 MiB):\n",
           FLOWS);
    printf("  %-7s %-6s %14s %14s %10s %16s\n", "readers", "lines", "max lines/s", "drop-free",
           "drops@max", "CPU-s/M lines");
    static const double ramp[] = {250e3, 500e3, 1e6, 1.5e6, 2e6, 2.5e6,
                                  3e6,   3.5e6, 4e6, 4.5e6, 5e6, 6e6};
    for (unsigned readers = 1; readers <= 2; readers++) {
        for (int pi = 0; pi < 2; pi++) {
            int per = pi ? 20 : 1;
            server *s = server_start(readers, "127.0.0.1:0");
            step_result warm;
            run_step(s, self, per, 100e3, 0.3, &warm); /* series and caches exist */
            step_result max;
            run_step(s, self, per, 0, step_secs, &max);
            double maxrate = max.received / max.busy;
            /* Ramp: the highest offered rate the sender achieved with no kernel drop. */
            double best = 0, first_drop = 0;
            for (size_t i = 0; i < sizeof ramp / sizeof ramp[0]; i++) {
                if (ramp[i] < maxrate * 0.5 && per == 20)
                    continue; /* far below capacity: nothing to learn */
                if (per == 1 && ramp[i] > 2.5e6)
                    break;
                step_result r;
                run_step(s, self, per, ramp[i], ramp_secs, &r);
                double achieved = r.sent / r.secs;
                if (r.drops == 0 && r.received == r.sent) {
                    if (achieved > best)
                        best = achieved;
                } else {
                    first_drop = achieved;
                    break;
                }
                if (achieved < ramp[i] * 0.9)
                    break; /* the sender cannot offer more */
            }
            char bestbuf[32], dropbuf[32];
            snprintf(bestbuf, sizeof bestbuf, "%.2fM", best / 1e6);
            snprintf(dropbuf, sizeof dropbuf, "%.1f%%",
                     max.sent > 0 ? 100.0 * (max.sent - max.received) / max.sent : 0);
            /* No drop although the sender ran flat out: it, not abacus, was the limit. */
            int sender_bound = max.drops == 0 && max.sender_cpu > 0.85 * max.secs;
            printf("  %-7u %-6d %13.2fM%s %14s %10s %16.2f\n", readers, per, maxrate / 1e6,
                   sender_bound ? "*" : " ", bestbuf, dropbuf,
                   max.received > 0 ? max.cpu / max.received * 1e6 : 0);
            if (first_drop > 0)
                printf("          (drops began at an offered %.2fM lines/s)\n", first_drop / 1e6);
            if (max.drops != max.drops_self) /* /proc/net/udp vs the self-metric (SO_MEMINFO) */
                printf("          (kernel drops: /proc/net/udp %.0f, "
                       "abacus_statsd_packets_dropped_total %.0f)\n",
                       max.drops, max.drops_self);
            server_stop(s);
        }
    }
    printf("  *: the sender (one process) was the limit, not abacus: no datagram was dropped.\n"
           "  max: unthrottled sender (it takes a whole CPU), lines received per second until the\n"
           "       queues drained;\n"
           "  drop-free: highest offered rate (steps of %.0f s) with no kernel drop;\n"
           "  CPU-s/M lines: CPU time of the receiving process per million lines at max.\n\n",
           ramp_secs);
}

static void bench_rss(const char *self) {
    (void)self;
    server *s = server_start(1, "127.0.0.1:0");
    const size_t N = 100000;
    /* Warm: the family exists; then measure the difference made by the series. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->udp_port)};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    connect(fd, (struct sockaddr *)&dst, sizeof dst);
    const char *w = "rss_series:1|c|#id:warm";
    send(fd, w, strlen(w), 0);
    while (series_of(s, "rss_series") < 1)
        sleep_ms(5);
    long before = rss_bytes();
    char buf[2048];
    for (int round = 0; round < 10 && series_of(s, "rss_series") < N + 1; round++) {
        for (size_t i = 0; i < N; i += 20) {
            size_t n = 0;
            for (size_t k = i; k < i + 20 && k < N; k++)
                n += (size_t)snprintf(buf + n, sizeof buf - n, "%srss_series:1|c|#id:%zu",
                                      k > i ? "\n" : "", k);
            send(fd, buf, n, 0);
            if (i % 2000 == 0)
                sleep_ms(1); /* stay well below the drop rate */
        }
        settle_lines(s);
    }
    close(fd);
    size_t have = series_of(s, "rss_series") - 1;
    long after = rss_bytes();
    printf("memory: %zu live counter series (one family, label id): RSS %.1f MiB total, "
           "%.1f MiB before them: %.0f bytes per series\n",
           have, after / 1048576.0, before / 1048576.0,
           have ? (double)(after - before) / (double)have : 0);
    server_stop(s);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--send") == 0)
        return sender_main(argc, argv);
    int quick = 0, only_ingest = 0;
    double step = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--ingest-only"))
            only_ingest = 1;
        else if (!strcmp(argv[i], "--step-seconds") && i + 1 < argc)
            step = atof(argv[++i]);
    }
    if (quick)
        step = 1;
    exp_log_set_level("warn");
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    print_machine();
    printf("bench_statsd: %ld CPUs; lines: 80%% counters with 2 tags, 10%% gauges, 10%% timers; "
           "mapped by glob rules\n\n",
           ncpu);
    bench_ingest_only();
    if (only_ingest)
        return 0;
    bench_udp(self, step, quick ? 1 : 4);
    bench_rss(self);
    return 0;
}
