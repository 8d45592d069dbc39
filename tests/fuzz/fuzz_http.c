/* fuzz_http.c - libFuzzer target: the HTTP request path, end to end.
 *
 * The real HTTP server (exp_http_start, with a registry, self-metrics and an exp_state built
 * as exporter/main.c builds them, lifecycle endpoints on) is started once, on 127.0.0.1 port 0.
 * Each input is written as raw bytes over a new TCP connection (pipelined requests, bodies
 * and garbage included); the client then half-closes and reads the answer until the server
 * closes, stays silent for 25 ms, or 3 s pass. Findings besides the sanitizers' (each aborts):
 *   - an answer that does not start with an HTTP/1.x status line;
 *   - the server no longer answering GET /-/healthy with 200 (checked every 500 inputs);
 *   - descriptors leaked: every 500 inputs the process's open fds must return to the count
 *     after start-up within the server's connection timeout plus a margin.
 * Our own descriptors are closed on every path. Leaks are checked at exit, after the server is
 * stopped and the registry destroyed (run with -detect_leaks=0: live series are invisible to
 * LeakSanitizer's in-run checks, see CMakeLists.txt). ABACUS_FUZZ_HTTP_LOG=1: server log.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "flags.h"
#include "http/http.h"
#include "log.h"
#include "selfmetrics.h"
#include "state.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http: check failed at line %d: %s\n", __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define READ_DEADLINE_MS 3000 /* per input, after the half-close */
#define IDLE_MS 25            /* ... or this long without a byte (ABACUS_FUZZ_HTTP_IDLE_MS) */
#define IDLE_MS 25            /* ... or this long without a byte (ABACUS_FUZZ_HTTP_IDLE_MS) */
#define CONN_TIMEOUT_S 2      /* server.connection_timeout below */
#define CHECK_EVERY 500       /* inputs between health and descriptor checks */

static const char config_yaml[] = "server:\n"
                                  "  connection_timeout: 2s\n"
                                  "  max_request_bytes: 65536\n"
                                  "defaults:\n"
                                  "  ttl: 0s\n"
                                  "metrics:\n"
                                  "  - name: fz_jobs_total\n"
                                  "    type: counter\n"
                                  "    help: \"Jobs, with \\\\ and \\n in the help.\"\n"
                                  "    labels: [queue, outcome]\n"
                                  "  - name: fz_temperature_celsius\n"
                                  "    type: gauge\n"
                                  "    unit: celsius\n"
                                  "  - name: fz_latency_seconds\n"
                                  "    type: histogram\n"
                                  "    labels: [path]\n"
                                  "    histogram_options: {buckets: [0.01, 0.1, 1]}\n"
                                  "  - name: fz_size_bytes\n"
                                  "    type: summary\n"
                                  "    unit: bytes\n";

static struct {
    char dir[64], path[128];
    char *argv[8];
    exp_flags flags;
    reg_registry *reg;
    exp_self *self;
    exp_state *state;
    exp_http *http;
    struct sockaddr_in addr;
    int base_fds;
    char base_list[4096];
    int idle_ms;
    unsigned long inputs, timeouts, empty;
} S;

/* Open descriptors, pipes excepted: the sanitizers' symbolizer talks to the process through
 * pipes it opens on first use (abacus itself opens none). */
static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], target[64];
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(path, target, sizeof target - 1);
        target[k > 0 ? k : 0] = 0;
        n += strncmp(target, "pipe:", 5) != 0;
    }
    closedir(d);
    return n;
}

/* "fd -> target" lines for every open descriptor, for the leak report. */
static void list_fds(FILE *out) {
    DIR *d = opendir("/proc/self/fd");
    CHECK(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], target[256];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        fprintf(out, "  %s -> %s\n", e->d_name, target);
    }
    closedir(d);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void populate(void) {
    reg_thread *t = reg_thread_attach(S.reg);
    CHECK(t);
    reg_begin(t);
    reg_family *jobs = reg_family_find(t, "fz_jobs_total");
    reg_family *lat = reg_family_find(t, "fz_latency_seconds");
    CHECK(jobs && lat);
    const char *v1[] = {"emails", "ok"}, *v2[] = {"sms\n\"quoted\"", "fail\\ed"};
    const char *p1[] = {"/api"};
    CHECK(reg_counter_add(t, jobs, v1, 7) == REG_OK);
    CHECK(reg_counter_add(t, jobs, v2, 1) == REG_OK);
    CHECK(reg_observe(t, lat, p1, 0.05) == REG_OK);
    reg_end(t);
    reg_thread_detach(t);
}

static void start_server(void) {
    snprintf(S.dir, sizeof S.dir, "/tmp/abacus-fuzz-http-XXXXXX");
    CHECK(mkdtemp(S.dir));
    snprintf(S.path, sizeof S.path, "%s/abacus.yml", S.dir);
    FILE *f = fopen(S.path, "w");
    CHECK(f);
    fputs(config_yaml, f);
    CHECK(fclose(f) == 0);
    static char a0[] = "abacus", a2[] = "--web.listen-address=127.0.0.1:0",
                a3[] = "--web.enable-lifecycle",
                a4[] = "--statsd.listen-udp=", a5[] = "--statsd.listen-tcp=";
    static char a1[160];
    snprintf(a1, sizeof a1, "--config.file=%s", S.path);
    char *argv[] = {a0, a1, a2, a3, a4, a5};
    for (int i = 0; i < 6; i++)
        S.argv[i] = argv[i];
    CHECK(exp_flags_parse(&S.flags, 6, S.argv, stderr) == 0);
    cfg_errors errs = {0};
    exp_config *c = exp_config_load(&S.flags, &errs);
    if (!c)
        cfg_errors_print(&errs, stderr);
    CHECK(c);
    cfg_errors_free(&errs);
    char err[512] = "";
    reg_options opt = {.max_series = c->cfg->statsd.max_series, .start_reaper = 1};
    S.reg = reg_create(&opt);
    CHECK(S.reg);
    S.self = exp_self_create(S.reg, err, sizeof err);
    CHECK(S.self);
    S.state = exp_state_create(S.reg, &S.flags, S.self, c, err, sizeof err);
    CHECK(S.state);
    S.http = exp_http_start(S.reg, S.state, S.self, c, S.flags.enable_lifecycle, err, sizeof err);
    if (!S.http)
        fprintf(stderr, "fuzz_http: cannot start: %s\n", err);
    CHECK(S.http);
    exp_state_set_ready(S.state, 1);
    populate();
    const char *a = exp_http_address(S.http);
    const char *colon = strrchr(a, ':');
    CHECK(colon);
    S.addr.sin_family = AF_INET;
    S.addr.sin_port = htons((uint16_t)atoi(colon + 1));
    S.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!getenv("ABACUS_FUZZ_HTTP_LOG"))
        exp_log_set_level("error"); /* malformed requests are logged (rate-limited) */
    const char *idle = getenv("ABACUS_FUZZ_HTTP_IDLE_MS");
    S.idle_ms = idle && atoi(idle) > 0 ? atoi(idle) : IDLE_MS;
    S.base_fds = count_fds();
    FILE *bl = fmemopen(S.base_list, sizeof S.base_list - 1, "w");
    CHECK(bl);
    list_fds(bl);
    fclose(bl);
}

/* Send req over a new connection, half-close, read the answer into out (at most cap bytes
 * kept, the rest read and dropped) until the server closes, or nothing arrived for idle_ms,
 * or READ_DEADLINE_MS passed. Returns the number of bytes kept; *closed says whether the
 * server closed. When it did not, the client resets the connection.
 * The idle cut-off is needed because libmicrohttpd 0.9.75 ignores a half-close while it waits
 * for the rest of the headers (an incomplete request would otherwise cost the whole
 * connection timeout); a late answer is only coverage lost, never a false finding. */
static long exchange(const void *req, size_t len, char *out, size_t cap, int idle_ms, int *closed) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    if (connect(fd, (struct sockaddr *)&S.addr, sizeof S.addr) != 0) {
        fprintf(stderr, "fuzz_http: connect: %s\n", strerror(errno));
        close(fd);
        abort();
    }
    struct timeval tv = {READ_DEADLINE_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t off = 0;
    while (off < len) { /* the server may answer and close before reading everything */
        ssize_t k = send(fd, (const char *)req + off, len - off, MSG_NOSIGNAL);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    shutdown(fd, SHUT_WR);
    long kept = 0;
    long long deadline = now_ms() + READ_DEADLINE_MS;
    char drop[65536];
    *closed = 0;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, (int)(left < idle_ms ? left : idle_ms));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break; /* idle or deadline */
        char *dst = (size_t)kept < cap ? out + kept : drop;
        size_t room = (size_t)kept < cap ? cap - (size_t)kept : sizeof drop;
        ssize_t k = recv(fd, dst, room, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            *closed = 1; /* closed (or reset) by the server */
            break;
        }
        if (dst != drop)
            kept += k;
    }
    if (!*closed) { /* reset: no TIME_WAIT, and the server drops its side at once */
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(fd);
    return kept;
}

static void periodic_checks(void) {
    static const char health[] = "GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char out[512];
    int closed;
    long n = exchange(health, sizeof health - 1, out, sizeof out - 1, READ_DEADLINE_MS, &closed);
    if (n < 12 || memcmp(out, "HTTP/1.1 200", 12) != 0) {
        fprintf(stderr, "fuzz_http: the server no longer answers /-/healthy (got %ld bytes)\n", n);
        abort();
    }
    long long deadline = now_ms() + (CONN_TIMEOUT_S + 8) * 1000LL;
    int fds;
    while ((fds = count_fds()) > S.base_fds && now_ms() < deadline) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL); /* polling: server-side closes are asynchronous */
    }
    if (fds > S.base_fds) {
        fprintf(stderr, "fuzz_http: %d descriptors open, %d after start-up: leaked\n", fds,
                S.base_fds);
        fprintf(stderr, "fuzz_http: descriptors after start-up:\n%s", S.base_list);
        fprintf(stderr, "fuzz_http: descriptors now:\n");
        list_fds(stderr);
        abort();
    }
}

/* At exit (libFuzzer's time limit): stop everything, so LeakSanitizer sees real leaks only. */
static void report(void) {
    exp_http_stop(S.http, 0);
    exp_state_destroy(S.state);
    exp_self_destroy(S.self);
    reg_destroy(S.reg);
    unlink(S.path);
    rmdir(S.dir);
    if (S.inputs)
        fprintf(stderr,
                "fuzz_http: %lu inputs, %lu not closed by the server (idle %d ms), %lu "
                "without any answer\n",
                S.inputs, S.timeouts, S.idle_ms, S.empty);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    start_server();
    atexit(report);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    static char out[4096];
    int closed;
    long n = exchange(data, size, out, sizeof out, S.idle_ms, &closed);
    S.inputs++;
    S.timeouts += !closed;
    S.empty += n == 0;
    if (n > 0 && (n < 8 || memcmp(out, "HTTP/1.", 7) != 0)) {
        fprintf(stderr, "fuzz_http: answer without a status line: %.*s\n", (int)(n < 200 ? n : 200),
                out);
        abort();
    }
    if (S.inputs % CHECK_EVERY == 0)
        periodic_checks();
    return 0;
}
