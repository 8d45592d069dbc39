/* http.c - the HTTP server (libmicrohttpd): /metrics streaming with content negotiation and
 * gzip, the landing page, health, readiness and reload endpoints; plus listen-address parsing
 * and socket binding shared with the ingest listeners.
 *
 * The daemon runs an epoll thread pool. Each request gets a small context on its first
 * handler call; bodies are counted (413 beyond the limit) and answered on the final call.
 * A scrape streams: the response callback pulls chunks from exp_scrape_read, so output of
 * any size never sits in memory whole.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "expfmt.h"
#include "exporter.h"
#include "log.h"

#define POOL_THREADS 2
#define SCRAPE_BLOCK (64 * 1024)
#define DEFAULT_MAX_CONNECTIONS 512
#define DEFAULT_MAX_REQUEST_BYTES (4u << 20)

/* ---- addresses ------------------------------------------------------------------------------ */

/* Returns 0, or -1 with a reason in err. */
int exp_split_address(const char *addr, char *host, size_t hostcap, unsigned *port, char *err,
                      size_t errlen) {
    const char *colon, *h = addr;
    size_t hlen;
    if (!addr || !*addr) {
        snprintf(err, errlen, "empty address");
        return -1;
    }
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close) {
            snprintf(err, errlen, "missing ']'");
            return -1;
        }
        if (close[1] != ':') {
            snprintf(err, errlen, "missing port after ']'");
            return -1;
        }
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (hlen == 0) {
            snprintf(err, errlen, "empty IPv6 address");
            return -1;
        }
    } else {
        colon = strrchr(addr, ':');
        if (!colon) {
            snprintf(err, errlen, "missing port (want host:port or :port)");
            return -1;
        }
        hlen = (size_t)(colon - addr);
        if (memchr(addr, ':', hlen)) {
            snprintf(err, errlen, "IPv6 addresses need brackets: [addr]:port");
            return -1;
        }
    }
    const char *p = colon + 1;
    if (!*p) {
        snprintf(err, errlen, "missing port");
        return -1;
    }
    unsigned long v = 0;
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9' || q - p >= 5) {
            snprintf(err, errlen, "invalid port \"%s\"", p);
            return -1;
        }
        v = v * 10 + (unsigned long)(*q - '0');
    }
    if (v > 65535) {
        snprintf(err, errlen, "port %lu out of range", v);
        return -1;
    }
    if (hlen >= hostcap) {
        snprintf(err, errlen, "host too long");
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (unsigned)v;
    return 0;
}

static int bind_one(int family, int socktype, const struct sockaddr *sa, socklen_t salen,
                    int dual_stack, char *err, size_t errlen) {
    int fd = socket(family, socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    if (socktype == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof one);
    if (bind(fd, sa, salen) != 0) {
        snprintf(err, errlen, "bind: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (socktype == SOCK_STREAM && listen(fd, 128) != 0) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Returns a bound socket, or -1 with a reason in err. */
int exp_listen(const char *addr, int socktype, char *err, size_t errlen) {
    char host[256];
    unsigned port;
    if (exp_split_address(addr, host, sizeof host, &port, err, errlen) != 0)
        return -1;
    if (!*host) {
        /* All interfaces: IPv6 dual-stack, or IPv4 where the kernel has no IPv6. */
        struct sockaddr_in6 a6 = {
            .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = in6addr_any};
        int fd = bind_one(AF_INET6, socktype, (struct sockaddr *)&a6, sizeof a6, 1, err, errlen);
        if (fd >= 0)
            return fd;
        struct sockaddr_in a4 = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_ANY)};
        return bind_one(AF_INET, socktype, (struct sockaddr *)&a4, sizeof a4, 0, err, errlen);
    }
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = socktype, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "resolving \"%s\": %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = bind_one(ai->ai_family, socktype, ai->ai_addr, ai->ai_addrlen, 0, err, errlen);
    freeaddrinfo(res);
    return fd;
}

/* Returns buf; "?" when the socket has no readable name. */
const char *exp_sock_name(int fd, char *buf, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN];
    snprintf(buf, cap, "?");
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return buf;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(buf, cap, "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(buf, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
    return buf;
}

/* ---- server state -------------------------------------------------------------------------- */

struct exp_http {
    struct MHD_Daemon *d;
    int listen_fd; /* owned by us until quiesce hands it back */
    reg_registry *reg;
    exp_state *st;
    exp_self *self;
    char *telemetry_path;
    int lifecycle;
    size_t max_body;
    char address[INET6_ADDRSTRLEN + 16];
    _Atomic long in_flight; /* requests between first handler call and completion */
};

typedef enum { R_METRICS, R_ROOT, R_HEALTHY, R_READY, R_RELOAD, R_OTHER } route;

/* Per-request context, created on the first handler call, freed on completion. */
typedef struct {
    route r;
    unsigned code; /* status queued, for abacus_http_requests_total */
    size_t body_bytes;
    int too_large;
} req_ctx;

static route route_of(const exp_http *h, const char *url) {
    if (!strcmp(url, h->telemetry_path))
        return R_METRICS;
    if (!strcmp(url, "/"))
        return R_ROOT;
    if (!strcmp(url, "/-/healthy"))
        return R_HEALTHY;
    if (!strcmp(url, "/-/ready"))
        return R_READY;
    if (!strcmp(url, "/-/reload"))
        return R_RELOAD;
    return R_OTHER;
}

static const char *route_name(const exp_http *h, route r) {
    switch (r) {
    case R_METRICS:
        return h->telemetry_path;
    case R_ROOT:
        return "/";
    case R_HEALTHY:
        return "/-/healthy";
    case R_READY:
        return "/-/ready";
    case R_RELOAD:
        return "/-/reload";
    default:
        return "other";
    }
}

static enum MHD_Result queue(struct MHD_Connection *c, req_ctx *ctx, unsigned code,
                             struct MHD_Response *resp) {
    if (!resp)
        return MHD_NO;
    ctx->code = code;
    enum MHD_Result ret = MHD_queue_response(c, code, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* A small response from a string (copied). allow: value of an Allow header, or NULL. */
static enum MHD_Result reply(struct MHD_Connection *c, req_ctx *ctx, unsigned code,
                             const char *ctype, const char *body, size_t len, const char *allow) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    return queue(c, ctx, code, resp);
}

static enum MHD_Result reply_text(struct MHD_Connection *c, req_ctx *ctx, unsigned code,
                                  const char *text, const char *allow) {
    return reply(c, ctx, code, "text/plain; charset=utf-8", text, strlen(text), allow);
}

/* ---- /metrics -------------------------------------------------------------------------------- */

typedef struct {
    exp_http *h;
    exp_scrape *sc; /* NULL for HEAD */
    struct timespec t0;
} scrape_job;

static double since(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static ssize_t scrape_read(void *cls, uint64_t pos, char *buf, size_t max) {
    static exp_log_limit lim;
    (void)pos;
    scrape_job *job = cls;
    if (!job->sc)
        return MHD_CONTENT_READER_END_OF_STREAM;
    long n = exp_scrape_read(job->sc, buf, max);
    if (n > 0)
        return (ssize_t)n;
    if (n == 0) {
        exp_self_scrape_duration(job->h->self, since(&job->t0));
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    exp_log_limited(&lim, 5, EXP_LOG_ERROR, "scrape failed while streaming", NULL);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void scrape_free(void *cls) {
    scrape_job *job = cls;
    if (job->sc)
        exp_scrape_end(job->sc);
    free(job);
}

static enum MHD_Result serve_metrics(exp_http *h, struct MHD_Connection *c, req_ctx *ctx,
                                     int head) {
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    const char *ae =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    exp_format fmt = exp_negotiate(accept);
    int gzip = exp_accepts_gzip(ae);

    scrape_job *job = calloc(1, sizeof *job);
    if (!job)
        return reply_text(c, ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    job->h = h;
    clock_gettime(CLOCK_MONOTONIC, &job->t0);
    if (!head) {
        exp_state_view_begin(h->st);
        exp_self_refresh(h->self);
        job->sc = exp_scrape_begin(h->reg, fmt, gzip);
        exp_state_view_end(h->st);
        if (!job->sc) {
            free(job);
            exp_log(EXP_LOG_ERROR, "cannot start a scrape", "err", "out of memory", NULL);
            return reply_text(c, ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot start a scrape\n",
                              NULL);
        }
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SCRAPE_BLOCK,
                                                                  scrape_read, job, scrape_free);
    if (!resp) {
        scrape_free(job);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, exp_content_type(fmt));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (gzip)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    return queue(c, ctx, MHD_HTTP_OK, resp);
}

/* ---- landing page ---------------------------------------------------------------------------- */

/* Append s to the stream, HTML-escaped. */
static void html_esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void row(FILE *f, const char *k, const char *v) {
    fputs("<tr><th>", f);
    html_esc(f, k);
    fputs("</th><td>", f);
    html_esc(f, v && *v ? v : "(none)");
    fputs("</td></tr>\n", f);
}

static enum MHD_Result serve_landing(exp_http *h, struct MHD_Connection *c, req_ctx *ctx) {
    char *page = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&page, &len);
    if (!f)
        return reply_text(c, ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    exp_config *cfg = exp_state_acquire(h->st);
    char num[32];
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>abacus</title>"
          "<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:1em}"
          "</style></head>\n<body>\n<h1>abacus</h1>\n<p>Prometheus metrics sidecar, version ",
          f);
    html_esc(f, ABACUS_VERSION);
    fputs(" (revision ", f);
    html_esc(f, ABACUS_REVISION);
    fputs(")</p>\n<ul>\n<li><a href=\"", f);
    html_esc(f, h->telemetry_path);
    fputs("\">Metrics</a></li>\n<li><a href=\"/-/healthy\">Health</a></li>\n"
          "<li><a href=\"/-/ready\">Readiness</a></li>\n</ul>\n<h2>Configuration</h2>\n<table>\n",
          f);
    row(f, "web listen address", h->address);
    row(f, "telemetry path", h->telemetry_path);
    row(f, "config file", cfg->cfg->path ? cfg->cfg->path : "(built-in defaults)");
    row(f, "mapping file", cfg->mapping_file ? cfg->mapping_file->path : NULL);
    snprintf(num, sizeof num, "%zu", cfg->cfg->nmetrics);
    row(f, "declared metrics", num);
    snprintf(num, sizeof num, "%zu", cfg->rules->nmappings);
    row(f, "mapping rules", num);
    row(f, "StatsD UDP", cfg->cfg->statsd.listen_udp);
    row(f, "StatsD TCP", cfg->cfg->statsd.listen_tcp);
    row(f, "StatsD Unixgram", cfg->cfg->statsd.listen_unixgram);
    row(f, "lifecycle API", h->lifecycle ? "enabled" : "disabled");
    snprintf(num, sizeof num, "%016llx", (unsigned long long)cfg->hash);
    row(f, "config hash", num);
    fputs("</table>\n</body></html>\n", f);
    exp_config_release(cfg);
    int bad = ferror(f);
    fclose(f);
    enum MHD_Result ret =
        bad ? reply_text(c, ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL)
            : reply(c, ctx, MHD_HTTP_OK, "text/html; charset=utf-8", page, len, NULL);
    free(page);
    return ret;
}

/* ---- reload ------------------------------------------------------------------------------------
 */

static enum MHD_Result serve_reload(exp_http *h, struct MHD_Connection *c, req_ctx *ctx) {
    if (!h->lifecycle)
        return reply_text(c, ctx, MHD_HTTP_FORBIDDEN,
                          "Lifecycle API is not enabled (start with --web.enable-lifecycle).\n",
                          NULL);
    exp_log(EXP_LOG_INFO, "reload requested", "via", "http", NULL);
    cfg_errors errs = {0};
    if (exp_state_reload(h->st, &errs) == 0) {
        cfg_errors_free(&errs);
        return reply_text(c, ctx, MHD_HTTP_OK, "configuration reloaded\n", NULL);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    enum MHD_Result ret;
    if (f) {
        cfg_errors_print(&errs, f);
        fclose(f);
        ret = reply(c, ctx, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8", text, len, NULL);
        free(text);
    } else {
        ret = reply_text(c, ctx, MHD_HTTP_BAD_REQUEST, "invalid configuration\n", NULL);
    }
    cfg_errors_free(&errs);
    return ret;
}

/* ---- dispatch ----------------------------------------------------------------------------------
 */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    (void)version;
    (void)upload_data;
    exp_http *h = cls;
    req_ctx *ctx = *req_cls;
    if (!ctx) {
        ctx = calloc(1, sizeof *ctx);
        if (!ctx)
            return MHD_NO;
        *req_cls = ctx;
        /* seq_cst, relaxed would do: a count for exp_http_stop's drain wait, paired with the
         * decrement in on_completed; MHD_stop_daemon's join orders the teardown. */
        atomic_fetch_add(&h->in_flight, 1);
        ctx->r = route_of(h, url);
        /* Refuse an announced oversized body before it is sent (no 100 Continue). */
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == ERANGE || (*end == '\0' && n > h->max_body)) {
                ctx->too_large = 1;
                return reply_text(c, ctx, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n",
                                  NULL);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* No endpoint here reads a body: count it against the limit and drop it. */
        ctx->body_bytes += *upload_data_size;
        if (ctx->body_bytes > h->max_body)
            ctx->too_large = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (ctx->too_large)
        return reply_text(c, ctx, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n", NULL);

    int get = !strcmp(method, MHD_HTTP_METHOD_GET);
    int head = !strcmp(method, MHD_HTTP_METHOD_HEAD);
    int post = !strcmp(method, MHD_HTTP_METHOD_POST) || !strcmp(method, MHD_HTTP_METHOD_PUT);
    switch (ctx->r) {
    case R_RELOAD:
        if (!post)
            return reply_text(c, ctx, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
                              "POST, PUT");
        return serve_reload(h, c, ctx);
    case R_OTHER:
        return reply_text(c, ctx, MHD_HTTP_NOT_FOUND, "404 page not found\n", NULL);
    default:
        break;
    }
    if (!get && !head)
        return reply_text(c, ctx, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");
    switch (ctx->r) {
    case R_METRICS:
        return serve_metrics(h, c, ctx, head);
    case R_ROOT:
        return serve_landing(h, c, ctx);
    case R_HEALTHY:
        return reply_text(c, ctx, MHD_HTTP_OK, "OK\n", NULL);
    case R_READY:
        if (exp_state_ready(h->st))
            return reply_text(c, ctx, MHD_HTTP_OK, "OK\n", NULL);
        return reply_text(c, ctx, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable\n", NULL);
    default:
        return reply_text(c, ctx, MHD_HTTP_NOT_FOUND, "404 page not found\n", NULL);
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    exp_http *h = cls;
    req_ctx *ctx = *req_cls;
    if (!ctx)
        return;
    *req_cls = NULL;
    if (ctx->code)
        exp_self_http_request(h->self, route_name(h, ctx->r), ctx->code);
    free(ctx);
    /* seq_cst, relaxed would do: pairs with the increment in the handler (see there). */
    atomic_fetch_sub(&h->in_flight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    static exp_log_limit lim;
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    exp_log_limited(&lim, 10, EXP_LOG_WARN, "libmicrohttpd", "err", msg, NULL);
}

/* ---- start / stop ---------------------------------------------------------------------------- */

/* Returns the running server, or NULL with a reason in err. */
exp_http *exp_http_start(reg_registry *r, exp_state *st, exp_self *self, const exp_config *c,
                         int enable_lifecycle, char *err, size_t errlen) {
    const cfg_server *srv = &c->cfg->server;
    exp_http *h = calloc(1, sizeof *h);
    if (!h ||
        !(h->telemetry_path = strdup(srv->telemetry_path ? srv->telemetry_path : "/metrics"))) {
        free(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->reg = r;
    h->st = st;
    h->self = self;
    h->lifecycle = enable_lifecycle;
    h->max_body = srv->max_request_bytes ? srv->max_request_bytes : DEFAULT_MAX_REQUEST_BYTES;
    atomic_init(&h->in_flight, 0);

    const char *addr = srv->listen_address ? srv->listen_address : ":9102";
    char why[256];
    h->listen_fd = exp_listen(addr, SOCK_STREAM, why, sizeof why);
    if (h->listen_fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, why);
        free(h->telemetry_path);
        free(h);
        return NULL;
    }
    exp_sock_name(h->listen_fd, h->address, sizeof h->address);

    /* 0 timeout / per-IP limit: none, as configured; cfg_default() supplies the bounds. */
    uint64_t tns = srv->connection_timeout_ns;
    unsigned timeout = (unsigned)((tns + 999999999ULL) / 1000000000ULL);
    unsigned maxconn =
        srv->max_connections ? (unsigned)srv->max_connections : DEFAULT_MAX_CONNECTIONS;
    unsigned perip = (unsigned)srv->max_connections_per_ip;
    if (maxconn < POOL_THREADS)
        maxconn = POOL_THREADS; /* MHD splits the limit across pool threads */

    h->d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
        h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, /* first, to catch all */
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)POOL_THREADS, MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_LIMIT,
        maxconn, MHD_OPTION_PER_IP_CONNECTION_LIMIT, perip, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot start the HTTP server on %s", h->address);
        close(h->listen_fd);
        free(h->telemetry_path);
        free(h);
        return NULL;
    }
    char tbuf[16], cbuf[16], pbuf[16];
    snprintf(tbuf, sizeof tbuf, "%us", timeout);
    snprintf(cbuf, sizeof cbuf, "%u", maxconn);
    snprintf(pbuf, sizeof pbuf, "%u", perip);
    exp_log(EXP_LOG_INFO, "listening", "address", h->address, "telemetry_path", h->telemetry_path,
            "connection_timeout", tbuf, "max_connections", cbuf, "max_connections_per_ip", pbuf,
            NULL);
    return h;
}

/* Cannot fail. */
const char *exp_http_address(const exp_http *h) {
    return h->address;
}

/* Cannot fail. */
void exp_http_stop(exp_http *h, unsigned drain_ms) {
    if (!h)
        return;
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    else
        exp_log(EXP_LOG_WARN, "cannot stop accepting connections gracefully", NULL);
    /* Let in-flight requests finish; idle keep-alive connections are simply closed. */
    struct timespec t0, step = {0, 5 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* seq_cst, relaxed would do: only decides how long to wait; no data depends on it. */
    long left = atomic_load(&h->in_flight);
    if (left > 0) {
        char n[24];
        snprintf(n, sizeof n, "%ld", left);
        exp_log(EXP_LOG_INFO, "waiting for in-flight requests", "requests", n, NULL);
    }
    /* As above: MHD_stop_daemon, not this count, orders the free below. */
    while ((left = atomic_load(&h->in_flight)) > 0 && since(&t0) * 1000.0 < drain_ms)
        nanosleep(&step, NULL);
    if (left > 0) {
        char n[24];
        snprintf(n, sizeof n, "%ld", left);
        exp_log(EXP_LOG_WARN, "drain timed out; closing requests still in flight", "requests", n,
                NULL);
    }
    MHD_stop_daemon(h->d);
    free(h->telemetry_path);
    free(h);
}
