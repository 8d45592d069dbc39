/* test_http.c - unit tests of the HTTP server (exporter/http/): the real server started
 * in-process the way exporter/main.c starts it (registry, self-metrics, configuration
 * snapshot and state, exp_http_start on 127.0.0.1 port 0) and spoken to over a socket:
 * 404 for unknown paths, 405 with Allow for a wrong method on every route, HEAD on /metrics
 * (headers, no body, no scrape), /-/healthy, /-/ready before and after exp_state_set_ready,
 * /-/reload (403 without the lifecycle flag; 200 and 400 with it), a configured telemetry
 * path, the landing page, a chunked /metrics body of several blocks that parses as text
 * format 0.0.4 (and OpenMetrics when asked), gzip when asked (zlib inflate), requests counted
 * in abacus_http_requests_total, and exp_http_stop draining a response in flight while new
 * connections are refused.
 *
 * Everything listens on 127.0.0.1 only and is stopped by the test that started it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "exporter/http/internal.h" /* in_flight and stopping, for the drain test */
#include "flags.h"
#include "http/http.h"
#include "selfmetrics.h"
#include "state.h"

#define IO_TIMEOUT_S 30 /* a socket read or write that takes longer fails the test */

/* ---- the server under test ------------------------------------------------------------- */

typedef struct {
    char dir[64];
    char path[128]; /* the config file */
    exp_flags flags;
    reg_registry *reg;
    exp_self *self;
    exp_state *st;
    exp_http *h;
    unsigned port;
    char tpath[64]; /* the telemetry path */
} server;

static const char base_yaml[] = "server:\n"
                                "  listen_address: \"127.0.0.1:0\"\n"
                                "statsd:\n"
                                "  listen_udp: \"\"\n"
                                "  listen_tcp: \"\"\n"
                                "metrics:\n"
                                "  - name: test_jobs_total\n"
                                "    help: Jobs.\n"
                                "    type: counter\n"
                                "    labels: [id]\n"
                                "  - name: test_idle\n"
                                "    help: Idle.\n"
                                "    type: gauge\n";

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Start the server like main() does, on the config text yaml (written to a temp file). */
static void server_start(server *s, const char *yaml, int lifecycle) {
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/abacus-test-http-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->path, sizeof s->path, "%s/abacus.yml", s->dir);
    write_file(s->path, yaml);

    char *argv[] = {"abacus", "--config.file", s->path, NULL};
    assert_int_equal(exp_flags_parse(&s->flags, 3, argv, stderr), 0);
    s->flags.enable_lifecycle = lifecycle;
    cfg_errors errs = {0};
    exp_config *cfg = exp_config_load(&s->flags, &errs);
    if (!cfg) {
        cfg_errors_print(&errs, stderr);
        fail_msg("the test configuration does not load");
    }
    cfg_errors_free(&errs);

    char err[512] = "";
    reg_options opt = {.max_series = cfg->cfg->statsd.max_series, .start_reaper = 0};
    s->reg = reg_create(&opt);
    assert_non_null(s->reg);
    s->self = exp_self_create(s->reg, err, sizeof err);
    if (!s->self)
        fail_msg("exp_self_create: %s", err);
    s->st = exp_state_create(s->reg, &s->flags, s->self, cfg, err, sizeof err);
    if (!s->st)
        fail_msg("exp_state_create: %s", err);
    snprintf(s->tpath, sizeof s->tpath, "%s", cfg->cfg->server.telemetry_path);
    s->h = exp_http_start(s->reg, s->st, s->self, cfg, lifecycle, err, sizeof err);
    if (!s->h)
        fail_msg("exp_http_start: %s", err);

    const char *addr = exp_http_address(s->h);
    assert_memory_equal(addr, "127.0.0.1:", 10);
    s->port = (unsigned)strtoul(addr + 10, NULL, 10);
    assert_true(s->port > 0 && s->port < 65536);
}

static void server_stop(server *s) {
    if (s->h)
        exp_http_stop(s->h, 5000);
    s->h = NULL;
    exp_state_destroy(s->st);
    exp_self_destroy(s->self);
    reg_destroy(s->reg);
    unlink(s->path);
    assert_int_equal(rmdir(s->dir), 0);
}

/* ---- a small HTTP/1.1 client ------------------------------------------------------------- */

typedef struct {
    char *raw; /* everything received */
    size_t rawlen;
    int status;
    char *head; /* status line and headers, NUL-terminated, "\r\n" kept */
    char *body; /* decoded (chunks joined), NUL-terminated */
    size_t bodylen;
    size_t body_raw_len; /* bytes after the header block as received */
    int chunked, chunks, complete;
} http_resp;

static int http_connect_port(unsigned port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            fail_msg("send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* Append what fd delivers until EOF. */
static void recv_all(int fd, char **buf, size_t *len) {
    size_t cap = *len + 65536;
    *buf = realloc(*buf, cap + 1);
    assert_non_null(*buf);
    for (;;) {
        if (*len == cap) {
            cap *= 2;
            *buf = realloc(*buf, cap + 1);
            assert_non_null(*buf);
        }
        ssize_t r = recv(fd, *buf + *len, cap - *len, 0);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNRESET)
                break; /* the body then shows whether the response was complete */
            fail_msg("recv: %s", strerror(errno));
        }
        *len += (size_t)r;
    }
    (*buf)[*len] = '\0';
}

/* The value of header name (case-insensitive), copied into out; NULL when absent. */
static const char *header(const http_resp *r, const char *name, char *out, size_t cap) {
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (!strncasecmp(line, name, n) && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t len = (size_t)(end - v);
            if (len >= cap)
                len = cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

/* Split raw into status, headers and body; decode a chunked body. */
static void parse_response(http_resp *r, int head_request) {
    if (r->rawlen < 12 || strncmp(r->raw, "HTTP/1.1 ", 9) != 0)
        fail_msg("not an HTTP/1.1 response: \"%.*s\"", (int)(r->rawlen < 80 ? r->rawlen : 80),
                 r->raw ? r->raw : "");
    r->status = atoi(r->raw + 9);
    char *end = strstr(r->raw, "\r\n\r\n");
    assert_non_null(end);
    size_t hlen = (size_t)(end - r->raw) + 2;
    r->head = strndup(r->raw, hlen);
    const char *b = end + 4;
    size_t blen = r->rawlen - (size_t)(b - r->raw);
    r->body_raw_len = blen;
    char v[128];
    r->chunked = header(r, "Transfer-Encoding", v, sizeof v) && !strcasecmp(v, "chunked");
    r->body = malloc(blen + 1);
    assert_non_null(r->body);
    if (head_request || !r->chunked) {
        memcpy(r->body, b, blen);
        r->bodylen = blen;
        r->body[blen] = '\0';
        if (header(r, "Content-Length", v, sizeof v))
            r->complete = head_request || blen == strtoull(v, NULL, 10);
        else
            r->complete = 1;
        return;
    }
    /* chunked: size CRLF data CRLF ... 0 CRLF CRLF */
    const char *p = b, *lim = b + blen;
    while (p < lim) {
        char *e;
        unsigned long n = strtoul(p, &e, 16);
        if (e == p || e + 2 > lim || e[0] != '\r' || e[1] != '\n')
            break;
        p = e + 2;
        if (n == 0) {
            r->complete = p + 2 <= lim && p[0] == '\r' && p[1] == '\n';
            break;
        }
        if ((size_t)(lim - p) < n + 2)
            break; /* cut short */
        memcpy(r->body + r->bodylen, p, n);
        r->bodylen += n;
        r->chunks++;
        p += n;
        if (p[0] != '\r' || p[1] != '\n')
            fail_msg("chunk %d not followed by CRLF", r->chunks);
        p += 2;
    }
    r->body[r->bodylen] = '\0';
}

static void resp_free(http_resp *r) {
    free(r->raw);
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* One request on its own connection (Connection: close); extra is more header lines, each
 * ending in "\r\n", or "". */
static http_resp request(const server *s, const char *method, const char *path, const char *extra) {
    int fd = http_connect_port(s->port);
    if (fd < 0)
        fail_msg("connect to 127.0.0.1:%u: %s", s->port, strerror(errno));
    char req[2048];
    int n = snprintf(
        req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s\r\n",
        method, path, extra,
        (!strcmp(method, "POST") || !strcmp(method, "PUT")) ? "Content-Length: 0\r\n" : "");
    assert_true(n > 0 && (size_t)n < sizeof req);
    send_all(fd, req, (size_t)n);
    http_resp r;
    memset(&r, 0, sizeof r);
    recv_all(fd, &r.raw, &r.rawlen);
    close(fd);
    parse_response(&r, !strcmp(method, "HEAD"));
    return r;
}

/* ---- reading the exposition ------------------------------------------------------------- */

/* The value of the sample line that starts with series (name and labels exactly as rendered,
 * e.g. `x_total{a="b"}`), or NAN when there is none. */
static double sample(const char *body, const char *series) {
    size_t n = strlen(series);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, series, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return NAN;
}

static int count_lines_starting(const char *body, const char *prefix) {
    int c = 0;
    size_t n = strlen(prefix);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, prefix, n))
            c++;
    return c;
}

static int name_char(int c, int first) {
    return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && c >= '0' && c <= '9');
}

/* Fails unless body is well-formed text format 0.0.4 (openmetrics: 1.0 with "# EOF"): every
 * line a HELP, TYPE (once per family, before its samples), or `name{labels} value`. Returns
 * the number of sample lines. */
static int check_exposition(const char *body, size_t len, int openmetrics) {
    assert_true(len > 0);
    assert_int_equal(body[len - 1], '\n');
    assert_int_equal(strlen(body), len); /* no NUL inside */
    int samples = 0;
    char typed[512][128];
    int ntyped = 0;
    const char *p = body;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t ll = (size_t)(eol - p);
        char line[1 << 14];
        if (ll >= sizeof line)
            fail_msg("line too long for the checker: %zu bytes", ll);
        memcpy(line, p, ll);
        line[ll] = '\0';
        p = eol + 1;
        if (openmetrics && !strcmp(line, "# EOF")) {
            if (*p)
                fail_msg("text after # EOF");
            return samples;
        }
        if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7) ||
            (openmetrics && !strncmp(line, "# UNIT ", 7))) {
            const char *nm = line + 7;
            size_t k = 0;
            while (name_char((unsigned char)nm[k], k == 0))
                k++;
            if (k == 0 || nm[k] != ' ')
                fail_msg("bad comment line \"%s\"", line);
            if (!strncmp(line, "# TYPE ", 7)) {
                const char *t = nm + k + 1;
                static const char *const types[] = {"counter", "gauge",   "histogram",
                                                    "summary", "untyped", "unknown"};
                int ok = 0;
                for (size_t i = 0; i < 6; i++)
                    ok |= !strcmp(t, types[i]);
                if (!ok)
                    fail_msg("bad type in \"%s\"", line);
                for (int i = 0; i < ntyped; i++)
                    if (strlen(typed[i]) == k && !strncmp(typed[i], nm, k))
                        fail_msg("TYPE twice for %.*s", (int)k, nm);
                assert_true(ntyped < 512 && k < 128);
                memcpy(typed[ntyped], nm, k);
                typed[ntyped++][k] = '\0';
            }
            continue;
        }
        if (line[0] == '#')
            fail_msg("unexpected comment \"%s\"", line);
        /* sample: name [{labels}] SP value */
        size_t k = 0;
        while (name_char((unsigned char)line[k], k == 0))
            k++;
        if (k == 0)
            fail_msg("bad sample line \"%.80s\"", line);
        /* its family was typed before (name, or name minus a histogram/summary suffix) */
        int known = 0;
        for (int i = 0; i < ntyped && !known; i++) {
            size_t tl = strlen(typed[i]);
            known = tl <= k && !strncmp(typed[i], line, tl);
        }
        if (!known)
            fail_msg("sample before its TYPE: \"%.80s\"", line);
        const char *q = line + k;
        if (*q == '{') {
            q++;
            while (*q != '}') {
                size_t j = 0;
                while (name_char((unsigned char)q[j], j == 0))
                    j++;
                if (j == 0 || q[j] != '=' || q[j + 1] != '"')
                    fail_msg("bad label in \"%.80s\"", line);
                q += j + 2;
                while (*q && *q != '"') {
                    if (*q == '\\') {
                        if (q[1] != '\\' && q[1] != '"' && q[1] != 'n')
                            fail_msg("bad escape in \"%.80s\"", line);
                        q++;
                    }
                    q++;
                }
                if (*q != '"')
                    fail_msg("unterminated label value in \"%.80s\"", line);
                q++;
                if (*q == ',')
                    q++;
                else if (*q != '}')
                    fail_msg("bad label list in \"%.80s\"", line);
            }
            q++;
        }
        if (*q != ' ')
            fail_msg("no value in \"%.80s\"", line);
        q++;
        char *e;
        if (strcmp(q, "+Inf") && strcmp(q, "-Inf") && strcmp(q, "NaN")) {
            strtod(q, &e);
            if (e == q || (*e && *e != ' '))
                fail_msg("bad value in \"%.80s\"", line);
        }
        samples++;
    }
    if (openmetrics)
        fail_msg("OpenMetrics body without # EOF");
    return samples;
}

/* A scrape's body (GET /metrics, 200). */
static char *scrape(const server *s) {
    http_resp r = request(s, "GET", s->tpath, "");
    assert_int_equal(r.status, 200);
    assert_true(r.complete);
    char *b = r.body;
    r.body = NULL;
    resp_free(&r);
    return b;
}

/* The value of a self-metric series read from the registry (a histogram: its count), or NAN
 * when absent. Read directly, so that looking does not itself add a request. */
static double series_value(const server *s, const char *family, const char *const *values) {
    reg_thread *t = reg_thread_attach(s->reg);
    assert_non_null(t);
    double v = NAN;
    reg_series **snap = NULL;
    size_t cap = 0;
    reg_begin(t);
    reg_family *f = reg_family_find(t, family);
    assert_non_null(f);
    const reg_family_def *d = reg_family_definition(f);
    long n = reg_family_collect(t, f, &snap, &cap);
    assert_true(n >= 0);
    for (long i = 0; i < n && isnan(v); i++) {
        int match = 1;
        for (size_t k = 0; k < d->nlabels && match; k++) {
            char buf[256];
            match =
                reg_series_label_value(snap[i], k, buf, sizeof buf) >= 0 && !strcmp(buf, values[k]);
        }
        if (!match)
            continue;
        if (d->type == REG_HISTOGRAM) {
            uint64_t cum[REG_MAX_BUCKETS + 1];
            double sum;
            reg_series_histogram(snap[i], f, cum, &sum);
            v = (double)cum[d->nbuckets];
        } else {
            v = reg_series_value(snap[i]);
        }
    }
    reg_end(t);
    free(snap);
    reg_thread_detach(t);
    return v;
}

static double requests(const server *s, const char *handler, const char *code) {
    const char *v[] = {handler, code};
    double x = series_value(s, "abacus_http_requests_total", v);
    return isnan(x) ? 0 : x;
}

/* Wait (bounded) until abacus_http_requests_total{handler,code} reaches want: a request is
 * counted when MHD reports it complete, just after the client has its answer. Then it must
 * stay there (nothing else counts it). */
static void await_requests(const server *s, const char *handler, const char *code, double want) {
    struct timespec t0, now, step = {0, 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double got;
    while ((got = requests(s, handler, code)) < want) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 10)
            break;
        nanosleep(&step, NULL);
    }
    if (got != want)
        fail_msg("abacus_http_requests_total{handler=\"%s\",code=\"%s\"}: %g, want %g", handler,
                 code, got, want);
}

/* Add n series to test_jobs_total, each label value `width` bytes long. */
static void add_series(server *s, int n, size_t width) {
    reg_thread *t = reg_thread_attach(s->reg);
    assert_non_null(t);
    char *id = malloc(width + 1);
    assert_non_null(id);
    reg_begin(t);
    reg_family *f = reg_family_find(t, "test_jobs_total");
    assert_non_null(f);
    for (int i = 0; i < n; i++) {
        memset(id, 'a' + i % 26, width);
        int k = snprintf(id, width + 1, "%08d", i);
        id[k] = 'x';
        id[width] = '\0';
        const char *v[] = {id};
        assert_int_equal(reg_counter_add(t, f, v, (double)i), REG_OK);
    }
    reg_end(t);
    free(id);
    reg_thread_detach(t);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_not_found(void **state) {
    (void)state;
    server s;
    server_start(&s, base_yaml, 0);
    static const char *const paths[] = {"/nope",       "/metrics/", "/-/",
                                        "/-/reload/x", "/metricsx", "//metrics"};
    static const char *const methods[] = {"GET", "POST", "DELETE"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        http_resp r = request(&s, methods[i % 3], paths[i], "");
        if (r.status != 404)
            fail_msg("%s %s: %d, want 404", methods[i % 3], paths[i], r.status);
        assert_string_equal(r.body, "404 page not found\n");
        char v[64];
        assert_null(header(&r, "Allow", v, sizeof v));
        resp_free(&r);
    }
    await_requests(&s, "other", "404", 6);
    server_stop(&s);
}

/* Every route answers a method it does not take with 405 and the methods it does. */
static void test_method_not_allowed(void **state) {
    (void)state;
    static const struct {
        const char *method, *path, *allow;
    } cases[] = {
        {"POST", "/metrics", "GET, HEAD"},   {"PUT", "/metrics", "GET, HEAD"},
        {"DELETE", "/metrics", "GET, HEAD"}, {"POST", "/", "GET, HEAD"},
        {"PATCH", "/", "GET, HEAD"},         {"POST", "/-/healthy", "GET, HEAD"},
        {"PUT", "/-/healthy", "GET, HEAD"},  {"POST", "/-/ready", "GET, HEAD"},
        {"DELETE", "/-/ready", "GET, HEAD"}, {"GET", "/-/reload", "POST, PUT"},
        {"HEAD", "/-/reload", "POST, PUT"},  {"DELETE", "/-/reload", "POST, PUT"},
    };
    for (int lifecycle = 0; lifecycle < 2; lifecycle++) {
        server s;
        server_start(&s, base_yaml, lifecycle);
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            http_resp r = request(&s, cases[i].method, cases[i].path, "");
            if (r.status != 405)
                fail_msg("%s %s: %d, want 405", cases[i].method, cases[i].path, r.status);
            char allow[64];
            if (!header(&r, "Allow", allow, sizeof allow))
                fail_msg("%s %s: 405 without Allow", cases[i].method, cases[i].path);
            assert_string_equal(allow, cases[i].allow);
            resp_free(&r);
        }
        await_requests(&s, "/-/reload", "405", 3);
        await_requests(&s, "/metrics", "405", 3);
        server_stop(&s);
    }
}

/* HEAD /metrics: the GET's headers, no body, and no scrape rendered or counted. */
static void test_head_metrics(void **state) {
    (void)state;
    server s;
    server_start(&s, base_yaml, 0);
    const char *none[] = {NULL};
    /* a GET's duration is recorded when its last byte is produced: before the client has it */
    char *b = scrape(&s);
    free(b);
    assert_true(series_value(&s, "abacus_scrape_duration_seconds", none) == 1);

    http_resp r = request(&s, "HEAD", "/metrics", "");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_raw_len, 0);
    char v[128];
    assert_non_null(header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(header(&r, "Vary", v, sizeof v));
    assert_string_equal(v, "Accept-Encoding");
    assert_null(header(&r, "Content-Encoding", v, sizeof v));
    resp_free(&r);

    r = request(&s, "HEAD", "/metrics",
                "Accept: application/openmetrics-text; version=1.0.0\r\n"
                "Accept-Encoding: gzip\r\n");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_raw_len, 0);
    assert_non_null(header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert_non_null(header(&r, "Content-Encoding", v, sizeof v));
    assert_string_equal(v, "gzip");
    resp_free(&r);

    static const char *const others[] = {"/", "/-/healthy", "/-/ready"};
    for (size_t i = 0; i < 3; i++) {
        r = request(&s, "HEAD", others[i], "");
        assert_true(r.status == 200 || r.status == 503);
        assert_int_equal(r.body_raw_len, 0);
        resp_free(&r);
    }
    await_requests(&s, "/metrics", "200", 3);
    /* the HEADs rendered nothing: no scrape recorded */
    assert_true(series_value(&s, "abacus_scrape_duration_seconds", none) == 1);
    server_stop(&s);
}

/* HEAD /metrics puts nothing on the wire after its headers, so a kept-alive connection's
 * next response starts right after them (RFC 9110 9.3.2: a HEAD response has no content).
 * Found by this test: the chunked GET response was reused and MHD wrote the closing chunk
 * "0\r\n\r\n" after the headers, which a kept-alive client reads as the start of the next
 * response (Go: "Unsolicited response received on idle HTTP channel"); fixed in f8480ee. */
static void test_head_metrics_keep_alive_no_body(void **state) {
    (void)state;
    server s;
    server_start(&s, base_yaml, 0);
    int fd = http_connect_port(s.port);
    assert_true(fd >= 0);
    const char req[] = "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    http_resp r;
    memset(&r, 0, sizeof r);
    recv_all(fd, &r.raw, &r.rawlen);
    close(fd);
    const char *end = strstr(r.raw, "\r\n\r\n");
    assert_non_null(end);
    const char *next = end + 4;
    int ok = !strncmp(next, "HTTP/1.1 200 OK\r\n", 17);
    if (!ok) {
        char shown[64] = "";
        size_t k = 0;
        for (const char *q = next; *q && strncmp(q, "HTTP/", 5) && k + 3 < sizeof shown; q++)
            k += (size_t)snprintf(shown + k, sizeof shown - k, "%s",
                                  *q == '\r'   ? "\\r"
                                  : *q == '\n' ? "\\n"
                                               : (char[]){*q, 0});
        fail_msg("after the HEAD /metrics headers the connection carries \"%s\" before "
                 "the next response (want nothing)",
                 shown);
    }
    resp_free(&r);
    server_stop(&s);
}

static void test_healthy(void **state) {
    (void)state;
    server s;
    server_start(&s, base_yaml, 0);
    http_resp r = request(&s, "GET", "/-/healthy", "");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "OK\n");
    char v[64];
    assert_non_null(header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/plain; charset=utf-8");
    resp_free(&r);
    server_stop(&s);
}

/* /-/ready follows exp_state_set_ready: 503 before, 200 after, 503 again when it drops. */
static void test_ready(void **state) {
    (void)state;
    server s;
    server_start(&s, base_yaml, 0);
    http_resp r = request(&s, "GET", "/-/ready", "");
    assert_int_equal(r.status, 503);
    resp_free(&r);
    exp_state_set_ready(s.st, 1);
    r = request(&s, "GET", "/-/ready", "");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "OK\n");
    resp_free(&r);
    exp_state_set_ready(s.st, 0);
    r = request(&s, "GET", "/-/ready", "");
    assert_int_equal(r.status, 503);
    resp_free(&r);
    await_requests(&s, "/-/ready", "503", 2);
    await_requests(&s, "/-/ready", "200", 1);
    server_stop(&s);
}

/* Without --web.enable-lifecycle: 403 for POST and PUT, and nothing is reloaded. */
static void test_reload_forbidden_without_lifecycle(void **state) {
    (void)state;
    server s;
    server_start(&s, base_yaml, 0);
    uint64_t gen = exp_state_generation(s.st);
    static const char *const methods[] = {"POST", "PUT"};
    for (int i = 0; i < 2; i++) {
        http_resp r = request(&s, methods[i], "/-/reload", "");
        assert_int_equal(r.status, 403);
        assert_non_null(strstr(r.body, "--web.enable-lifecycle"));
        resp_free(&r);
    }
    assert_int_equal(exp_state_generation(s.st), gen);
    char *b = scrape(&s);
    assert_true(sample(b, "abacus_config_reloads_total{outcome=\"success\"}") == 0);
    assert_true(sample(b, "abacus_config_reloads_total{outcome=\"failure\"}") == 0);
    free(b);
    await_requests(&s, "/-/reload", "403", 2);
    server_stop(&s);
}

/* With the lifecycle flag: 200 and the new file applied; 400 with file:line:column errors
 * and the old configuration kept; PUT like POST. */
static void test_reload_with_lifecycle(void **state) {
    (void)state;
    server s;
    server_start(&s, base_yaml, 1);
    uint64_t gen = exp_state_generation(s.st);
    char *b = scrape(&s);
    assert_true(sample(b, "test_idle") == 0);
    assert_true(isnan(sample(b, "test_added")));
    free(b);

    /* valid: a metric added */
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%s  - name: test_added\n    help: Added.\n    type: gauge\n",
             base_yaml);
    write_file(s.path, yaml);
    http_resp r = request(&s, "POST", "/-/reload", "");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "configuration reloaded\n");
    resp_free(&r);
    assert_int_equal(exp_state_generation(s.st), gen + 1);
    b = scrape(&s);
    assert_true(sample(b, "test_added") == 0);
    assert_true(sample(b, "abacus_config_reloads_total{outcome=\"success\"}") == 1);
    assert_true(sample(b, "abacus_config_last_reload_successful") == 1);
    free(b);

    /* invalid: a bad type on line 16; 400 with the position, old configuration kept */
    snprintf(yaml, sizeof yaml, "%s  - name: test_broken\n    help: Broken.\n    type: bogus\n",
             base_yaml);
    write_file(s.path, yaml);
    r = request(&s, "POST", "/-/reload", "");
    assert_int_equal(r.status, 400);
    char v[64], want[192];
    assert_non_null(header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/plain; charset=utf-8");
    snprintf(want, sizeof want, "%s:16:", s.path);
    if (!strstr(r.body, want) || !strstr(r.body, "bogus"))
        fail_msg("400 body \"%s\" lacks \"%s\" and the bad value", r.body, want);
    resp_free(&r);
    assert_int_equal(exp_state_generation(s.st), gen + 1);
    b = scrape(&s);
    assert_true(sample(b, "test_added") == 0); /* still the previous configuration */
    assert_true(isnan(sample(b, "test_broken")));
    assert_true(sample(b, "abacus_config_reloads_total{outcome=\"failure\"}") == 1);
    assert_true(sample(b, "abacus_config_last_reload_successful") == 0);
    free(b);

    /* PUT, back to the base file: test_added removed */
    write_file(s.path, base_yaml);
    r = request(&s, "PUT", "/-/reload", "");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(exp_state_generation(s.st), gen + 2);
    b = scrape(&s);
    assert_true(isnan(sample(b, "test_added")));
    assert_true(sample(b, "abacus_config_reloads_total{outcome=\"success\"}") == 2);
    free(b);
    await_requests(&s, "/-/reload", "200", 2);
    await_requests(&s, "/-/reload", "400", 1);
    server_stop(&s);
}

/* A body spanning several 64 KiB blocks arrives chunked and complete, and parses; every
 * series once with its value. OpenMetrics when Accept prefers it. */
static void test_metrics_chunked_body_parses(void **state) {
    (void)state;
    server s;
    server_start(&s, base_yaml, 0);
    const int n = 400;
    add_series(&s, n, 1000); /* about 400 KB */
    for (int om = 0; om < 2; om++) {
        http_resp r = request(&s, "GET", "/metrics",
                              om ? "Accept: application/openmetrics-text; version=1.0.0\r\n" : "");
        assert_int_equal(r.status, 200);
        assert_true(r.chunked);
        assert_true(r.complete);
        if (r.chunks < 2)
            fail_msg("a %zu-byte body in %d chunk(s)", r.bodylen, r.chunks);
        char v[128];
        assert_non_null(header(&r, "Content-Type", v, sizeof v));
        assert_string_equal(v, om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                  : "text/plain; version=0.0.4; charset=utf-8");
        assert_non_null(header(&r, "Vary", v, sizeof v));
        assert_string_equal(v, "Accept-Encoding");
        int samples = check_exposition(r.body, r.bodylen, om);
        assert_true(samples > n);
        const char *name = om ? "test_jobs_total{id=\"" : "test_jobs_total{id=\"";
        assert_int_equal(count_lines_starting(r.body, name), n);
        assert_true(r.bodylen > 400 * 1000);
        /* a few series by value */
        char series[1100];
        for (int i = 0; i < n; i += 97) {
            char id[1001];
            memset(id, 'a' + i % 26, 1000);
            int k = snprintf(id, sizeof id, "%08d", i);
            id[k] = 'x';
            id[1000] = '\0';
            snprintf(series, sizeof series, "test_jobs_total{id=\"%s\"}", id);
            assert_true(sample(r.body, series) == (double)i);
        }
        assert_true(sample(r.body, "test_idle") == 0);
        assert_int_equal(count_lines_starting(r.body, "abacus_build_info{version=\""), 1);
        resp_free(&r);
    }
    server_stop(&s);
}

static char *gunzip(const char *in, size_t n, size_t *outlen) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(inflateInit2(&zs, 16 + MAX_WBITS), Z_OK); /* gzip wrapper only */
    size_t cap = n * 8 + 1024, len = 0;
    char *out = malloc(cap + 1);
    assert_non_null(out);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    int rc;
    do {
        if (len == cap) {
            cap *= 2;
            out = realloc(out, cap + 1);
            assert_non_null(out);
        }
        zs.next_out = (Bytef *)out + len;
        zs.avail_out = (uInt)(cap - len);
        rc = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (rc != Z_OK && rc != Z_STREAM_END)
            fail_msg("inflate: %d (%s)", rc, zs.msg ? zs.msg : "");
    } while (rc != Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0); /* nothing after the gzip member */
    inflateEnd(&zs);
    out[len] = '\0';
    *outlen = len;
    return out;
}

/* gzip when Accept-Encoding allows it: inflates to the same exposition; not when refused. */
static void test_metrics_gzip(void **state) {
    (void)state;
    server s;
    server_start(&s, base_yaml, 0);
    add_series(&s, 200, 300);
    http_resp r = request(&s, "GET", "/metrics", "Accept-Encoding: gzip, deflate\r\n");
    assert_int_equal(r.status, 200);
    assert_true(r.complete);
    char v[128];
    assert_non_null(header(&r, "Content-Encoding", v, sizeof v));
    assert_string_equal(v, "gzip");
    assert_non_null(header(&r, "Vary", v, sizeof v));
    assert_string_equal(v, "Accept-Encoding");
    assert_true(r.bodylen > 18 && (unsigned char)r.body[0] == 0x1f &&
                (unsigned char)r.body[1] == 0x8b);
    size_t plain_len;
    char *plain = gunzip(r.body, r.bodylen, &plain_len);
    assert_true(plain_len > r.bodylen); /* it did compress */
    check_exposition(plain, plain_len, 0);
    assert_int_equal(count_lines_starting(plain, "test_jobs_total{id=\""), 200);
    /* the test family renders identically with and without gzip */
    char *direct = scrape(&s);
    const char *a = strstr(plain, "# HELP test_jobs_total"),
               *b = strstr(direct, "# HELP test_jobs_total");
    assert_non_null(a);
    assert_non_null(b);
    const char *ae = strstr(a, "\n# HELP "), *be = strstr(b, "\n# HELP ");
    size_t al = ae ? (size_t)(ae - a) : strlen(a), bl = be ? (size_t)(be - b) : strlen(b);
    assert_int_equal(al, bl);
    assert_memory_equal(a, b, al);
    free(direct);
    free(plain);
    resp_free(&r);

    /* refused or not offered: plain */
    static const char *const plain_ae[] = {"Accept-Encoding: gzip;q=0\r\n",
                                           "Accept-Encoding: identity\r\n",
                                           "Accept-Encoding: br\r\n", ""};
    for (size_t i = 0; i < 4; i++) {
        r = request(&s, "GET", "/metrics", plain_ae[i]);
        assert_int_equal(r.status, 200);
        if (header(&r, "Content-Encoding", v, sizeof v))
            fail_msg("\"%s\" got Content-Encoding %s", plain_ae[i], v);
        check_exposition(r.body, r.bodylen, 0);
        resp_free(&r);
    }
    server_stop(&s);
}

/* A configured telemetry path serves metrics; /metrics is then an unknown path. */
static void test_custom_telemetry_path_and_landing_page(void **state) {
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%s", base_yaml);
    char *at = strstr(yaml, "statsd:");
    memmove(at + strlen("  telemetry_path: /custom/path\n"), at, strlen(at) + 1);
    memcpy(at, "  telemetry_path: /custom/path\n", strlen("  telemetry_path: /custom/path\n"));
    server s;
    server_start(&s, yaml, 0);
    http_resp r = request(&s, "GET", "/custom/path", "");
    assert_int_equal(r.status, 200);
    check_exposition(r.body, r.bodylen, 0);
    resp_free(&r);
    r = request(&s, "GET", "/metrics", "");
    assert_int_equal(r.status, 404);
    resp_free(&r);
    r = request(&s, "POST", "/custom/path", "");
    assert_int_equal(r.status, 405);
    char v[128];
    assert_string_equal(header(&r, "Allow", v, sizeof v), "GET, HEAD");
    resp_free(&r);

    r = request(&s, "GET", "/", "");
    assert_int_equal(r.status, 200);
    assert_non_null(header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/html; charset=utf-8");
    assert_non_null(strstr(r.body, exp_http_address(s.h)));
    assert_non_null(strstr(r.body, "/custom/path"));
    assert_non_null(strstr(r.body, s.path));
    resp_free(&r);

    r = request(&s, "GET", "/custom/path", "");
    assert_int_equal(r.status, 200);
    await_requests(&s, "/custom/path", "405", 1);
    await_requests(&s, "other", "404", 1);
    await_requests(&s, "/", "200", 1);
    resp_free(&r);
    server_stop(&s);
}

/* ---- stop ---------------------------------------------------------------------------------- */

typedef struct {
    exp_http *h;
    unsigned drain_ms;
    atomic_int returned;
} stopper;

static void *stop_thread(void *arg) {
    stopper *st = arg;
    exp_http_stop(st->h, st->drain_ms);
    atomic_store(&st->returned, 1);
    return NULL;
}

/* h->stopping, and the in-flight count in *in_flight. Both read under h->mu: exp_http_stop
 * takes h->mu again before it frees h, so these reads happen before the free (for TSan too,
 * which cannot see the order the client's socket imposes). */
static int stopping(exp_http *h, long *in_flight) {
    pthread_mutex_lock(&h->mu);
    int v = h->stopping;
    *in_flight = atomic_load(&h->in_flight);
    pthread_mutex_unlock(&h->mu);
    return v;
}

/* exp_http_stop with a scrape in flight: new connections are refused at once, the scrape
 * still arrives complete, and stop returns only after it has. */
static void test_stop_drains_in_flight_scrape(void **state) {
    (void)state;
    server s;
    server_start(&s, base_yaml, 0);
    const int n = 8000;
    add_series(&s, n, 1000); /* about 8 MB: more than the socket buffers hold */

    /* a client that reads slowly: a small receive buffer, and it stops after the headers */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)s.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    http_resp r;
    memset(&r, 0, sizeof r);
    r.raw = malloc(65537);
    assert_non_null(r.raw);
    while (!memmem(r.raw, r.rawlen, "\r\n\r\n", 4)) {
        ssize_t got = recv(fd, r.raw + r.rawlen, 65536 - r.rawlen, 0);
        assert_true(got > 0);
        r.rawlen += (size_t)got;
    }
    /* the scrape is in flight: answered, far from sent */
    assert_true(atomic_load(&s.h->in_flight) >= 1);

    stopper st = {.h = s.h, .drain_ms = 20000};
    atomic_init(&st.returned, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stop_thread, &st), 0);
    s.h = NULL; /* the thread owns it now */

    struct timespec step = {0, 1000 * 1000};
    long in_flight;
    while (!stopping(st.h, &in_flight))
        nanosleep(&step, NULL);
    /* draining: a new connection is refused, the unread scrape keeps stop waiting */
    int c = http_connect_port(s.port);
    int refused = c < 0 && errno == ECONNREFUSED;
    if (c >= 0)
        close(c);
    assert_true(refused);
    assert_int_equal(atomic_load(&st.returned), 0);
    stopping(st.h, &in_flight);
    assert_true(in_flight >= 1);

    /* now read it all: complete, every series there */
    recv_all(fd, &r.raw, &r.rawlen);
    close(fd);
    parse_response(&r, 0);
    assert_int_equal(r.status, 200);
    if (!r.complete)
        fail_msg("scrape cut by exp_http_stop after %zu bytes", r.bodylen);
    assert_int_equal(count_lines_starting(r.body, "test_jobs_total{id=\""), n);
    resp_free(&r);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&st.returned), 1);

    /* stopped: the port is closed */
    c = http_connect_port(s.port);
    assert_true(c < 0);
    assert_int_equal(errno, ECONNREFUSED);
    server_stop(&s);
}

/* With nothing in flight, stop returns without waiting for the drain time. */
static void test_stop_idle_is_prompt(void **state) {
    (void)state;
    server s;
    server_start(&s, base_yaml, 0);
    http_resp r = request(&s, "GET", "/-/healthy", "");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* an idle keep-alive connection does not hold the stop either */
    int idle = http_connect_port(s.port);
    assert_true(idle >= 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    exp_http_stop(s.h, 60000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    s.h = NULL;
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (secs > 30)
        fail_msg("exp_http_stop took %.1f s with nothing in flight", secs);
    char b;
    ssize_t k = recv(idle, &b, 1, 0);
    assert_true(k == 0 || (k < 0 && errno == ECONNRESET)); /* closed by the stop */
    close(idle);
    int c = http_connect_port(s.port);
    assert_true(c < 0);
    server_stop(&s);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_head_metrics),
        cmocka_unit_test(test_healthy),
        cmocka_unit_test(test_ready),
        cmocka_unit_test(test_reload_forbidden_without_lifecycle),
        cmocka_unit_test(test_reload_with_lifecycle),
        cmocka_unit_test(test_metrics_chunked_body_parses),
        cmocka_unit_test(test_metrics_gzip),
        cmocka_unit_test(test_custom_telemetry_path_and_landing_page),
        cmocka_unit_test(test_stop_drains_in_flight_scrape),
        cmocka_unit_test(test_stop_idle_is_prompt),
        cmocka_unit_test(test_head_metrics_keep_alive_no_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
