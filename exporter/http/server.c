/* server.c - the HTTP server (libmicrohttpd, an epoll thread pool): start and stop, the
 * request handler that checks a request and dispatches it to its route, and completion.
 *
 * Each request gets a small context when its request line is complete; bodies are counted
 * (413 beyond the limit) and answered on the final call. A scrape streams: the response
 * callback pulls chunks from exp_scrape_read, so output of any size never sits in memory.
 */
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/expfmt.h"
#include "http/internal.h"
#include "log.h"
#include "net.h"

/* ---- dispatch ----------------------------------------------------------------------------------
 */

typedef struct {
    unsigned content_length, transfer_encoding;
    int bad_length;
} framing;

/* MHD_get_connection_values iterator: tallies the headers that frame a body. Cannot fail. */
static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value) {
    (void)kind;
    framing *f = cls;
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        f->content_length++;
        if (!value || !*value || value[strspn(value, "0123456789")])
            f->bad_length = 1;
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        f->transfer_encoding++;
    }
    return MHD_YES;
}

/* 1 when the body's framing is ambiguous: Content-Length twice (even with equal values: the
 * simplest rule that no two parsers read differently), not a plain number, or together with
 * Transfer-Encoding (RFC 9112 6.3: request smuggling). Cannot fail. */
static int ambiguous_framing(struct MHD_Connection *c) {
    framing f = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
    return f.content_length > 1 || f.bad_length || (f.content_length && f.transfer_encoding);
}

/* 1 when the request target cannot be taken at face value. MHD hands the handler the path
 * decoded in place, as a C string: %00 decodes to a NUL that cuts it short, and a raw NUL
 * byte in the request line hides what follows from every string function. MHD ends the raw
 * target at the space before the version and passes the same pointer, decoded, as url; so
 * the version starts right after the target's terminator unless a NUL byte came earlier.
 * Only addresses are compared: the raw bytes are gone. Cannot fail. */
static int bad_target(const req_ctx *ctx, const char *url, const char *version) {
    if (ctx->nul_escape)
        return 1;
    return ctx->raw && url == ctx->raw && version && *version &&
           (uintptr_t)version != (uintptr_t)ctx->raw + ctx->raw_len + 1;
}

/* The MHD access handler: first call with the headers (checks, early refusals), then the body
 * in pieces, then the final call that answers. MHD_NO (close the connection) when out of
 * memory; every refusal of the client's request is an answered status instead. */
static enum MHD_Result answer(exp_http *h, struct MHD_Connection *c, req_ctx *ctx,
                              const char *method);

/* Basic auth, when the web config file has users, on every endpoint as in the toolkit: 401
 * with WWW-Authenticate for missing, malformed or wrong credentials, 503 when no bcrypt run
 * became free in time. MHD_YES with nothing queued (ctx->code 0) when the request may go on;
 * MHD_NO when out of memory. */
static enum MHD_Result check_auth(exp_http *h, struct MHD_Connection *c, req_ctx *ctx) {
    const cfg_web *w = ctx->cfg->web;
    if (!w || !w->nusers)
        return MHD_YES;
    const char *hdr =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    exp_auth_result res = exp_auth_check(h->auth, w, hdr);
    if (res == AUTH_OK)
        return MHD_YES;
    exp_self_auth_failure(h->self, exp_auth_reason(res));
    switch (res) {
    case AUTH_BUSY:
        return exp_http_reply_text(c, ctx, MHD_HTTP_SERVICE_UNAVAILABLE,
                                   "too many authentication attempts, try again\n", NULL);
    case AUTH_NOMEM:
        return exp_http_reply_text(c, ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    default:
        return exp_http_reply_unauthorized(c, ctx);
    }
}

/* The largest body a request to this route may send. Cannot fail. */
static size_t body_limit(const exp_http *h, const req_ctx *ctx) {
    return ctx->r == R_PUSH ? h->push_max_body : h->max_body;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    exp_http *h = cls;
    req_ctx *ctx = *req_cls;
    if (!ctx)
        return MHD_NO; /* the URI callback ran out of memory: close */
    if (!ctx->started) {
        ctx->started = 1;
        /* seq_cst, relaxed would do: a count for exp_http_stop's drain wait, paired with the
         * decrement in on_completed; MHD_stop_daemon's join orders the teardown. */
        atomic_fetch_add(&h->in_flight, 1);
        ctx->in_flight = 1;
        exp_http_set_phase(h, ctx->ent, CP_BODY);
        ctx->r = exp_http_route_of(h, url);
        ctx->url = url;
        if (bad_target(ctx, url, version)) {
            ctx->r = R_OTHER;
            return exp_http_reply_bad_request(c, ctx, "invalid request target\n");
        }
        if (ambiguous_framing(c))
            return exp_http_reply_bad_request(c, ctx, "ambiguous request body length\n");
        ctx->cfg = exp_state_acquire(h->st);
        enum MHD_Result ret = check_auth(h, c, ctx);
        if (ctx->code || ret != MHD_YES)
            return ret;
        /* Refuse an announced oversized body before it is sent (no 100 Continue). */
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == ERANGE || (*end == '\0' && n > body_limit(h, ctx))) {
                ctx->too_large = 1;
                if (ctx->r == R_PUSH)
                    exp_self_push_refused(h->self, "too_large");
                return exp_http_reply_text(c, ctx, MHD_HTTP_CONTENT_TOO_LARGE,
                                           "request body too large\n", NULL);
            }
            if (*end == '\0')
                ctx->body_expect = (size_t)n; /* within the limit: checked above */
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (ctx->r == R_PUSH) {
            exp_http_push_body(h, ctx, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return MHD_YES;
        }
        /* No other endpoint reads a body: count it against the limit and drop it. */
        ctx->body_bytes += *upload_data_size;
        if (ctx->body_bytes > h->max_body)
            ctx->too_large = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The request is complete: it is answered now (or waits for a scrape slot). */
    exp_http_set_phase(h, ctx->ent, CP_BUSY);
    enum MHD_Result ret = answer(h, c, ctx, method);
    /* A response was queued (not suspended at the gate): write_timeout runs from now. */
    if (ctx->code)
        exp_http_set_phase(h, ctx->ent, CP_SENDING);
    return ret;
}

/* The final handler call of a complete request: queues its response, or suspends it at the
 * scrape gate (MHD_YES, no response). MHD_NO when out of memory. */
static enum MHD_Result answer(exp_http *h, struct MHD_Connection *c, req_ctx *ctx,
                              const char *method) {
    if (ctx->too_large)
        return exp_http_reply_text(c, ctx, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n",
                                   NULL);
    if (ctx->busy)
        return exp_http_reply_text(c, ctx, MHD_HTTP_SERVICE_UNAVAILABLE,
                                   "too many push bodies in flight, try again\n", NULL);

    int get = !strcmp(method, MHD_HTTP_METHOD_GET);
    int head = !strcmp(method, MHD_HTTP_METHOD_HEAD);
    int post = !strcmp(method, MHD_HTTP_METHOD_POST) || !strcmp(method, MHD_HTTP_METHOD_PUT);
    switch (ctx->r) {
    case R_RELOAD:
        if (!post)
            return exp_http_reply_text(c, ctx, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
                                       "POST, PUT");
        return exp_http_serve_reload(h, c, ctx);
    case R_PUSH:
        return exp_http_serve_push(h, c, ctx, method);
    case R_API_METRICS:
    case R_API_STATUS:
    case R_API_WIPE:
        return exp_http_serve_api(h, c, ctx, method);
    case R_OTHER:
        return exp_http_reply_text(c, ctx, MHD_HTTP_NOT_FOUND, "404 page not found\n", NULL);
    default:
        break;
    }
    if (!get && !head)
        return exp_http_reply_text(c, ctx, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
                                   "GET, HEAD");
    switch (ctx->r) {
    case R_METRICS:
        return exp_http_serve_metrics(h, c, ctx, head);
    case R_ROOT:
        return exp_http_serve_landing(h, c, ctx);
    case R_HEALTHY:
        return exp_http_reply_text(c, ctx, MHD_HTTP_OK, "OK\n", NULL);
    case R_READY:
        if (exp_state_ready(h->st))
            return exp_http_reply_text(c, ctx, MHD_HTTP_OK, "OK\n", NULL);
        return exp_http_reply_text(c, ctx, MHD_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable\n",
                                   NULL);
    default:
        return exp_http_reply_text(c, ctx, MHD_HTTP_NOT_FOUND, "404 page not found\n", NULL);
    }
}

/* MHD_OPTION_NOTIFY_COMPLETED: the request is done (answered, or its connection closed).
 * Counts it, gives back what it held. Cannot fail. */
static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    exp_http *h = cls;
    req_ctx *ctx = *req_cls;
    if (!ctx)
        return;
    *req_cls = NULL;
    exp_http_gate_forget(h, ctx);
    exp_http_push_free(h, ctx);
    exp_config_release(ctx->cfg);
    /* Kept alive, the connection now waits for its next request. */
    exp_http_set_phase(h, ctx->ent, CP_IDLE);
    if (ctx->code)
        exp_self_http_request(h->self, exp_http_route_name(h, ctx->r), ctx->code);
    int counted = ctx->in_flight;
    free(ctx);
    /* seq_cst, relaxed would do: pairs with the increment in the handler (see there). */
    if (counted)
        atomic_fetch_sub(&h->in_flight, 1);
}

/* MHD's error log, rate-limited into ours. Cannot fail. */
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

/* A duration in ms, rounded up so a non-zero one never becomes none. Cannot fail. */
static uint64_t ns_to_ms_ceil(uint64_t ns) {
    return (ns + 999999u) / 1000000u;
}

/* Frees h and what it owns before the daemon started. Cannot fail. */
static void http_free(exp_http *h) {
    exp_tls_destroy(h->tls);
    exp_auth_destroy(h->auth);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->wd_cv);
    free(h->telemetry_path);
    free(h);
}

/* Returns the running server, or NULL with a reason in err. */
exp_http *exp_http_start(reg_registry *r, exp_state *st, exp_self *self, const exp_config *c,
                         unsigned features, char *err, size_t errlen) {
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
    h->lifecycle = (features & EXP_HTTP_LIFECYCLE) != 0;
    h->admin_api = (features & EXP_HTTP_ADMIN_API) != 0;
    h->max_body = srv->max_request_bytes ? srv->max_request_bytes : DEFAULT_MAX_REQUEST_BYTES;
    exp_http_push_settings(h, c);
    if (!(h->auth = exp_auth_create(0, 0))) {
        free(h->telemetry_path);
        free(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    struct timespec started;
    clock_gettime(CLOCK_REALTIME, &started);
    h->start_time = (double)started.tv_sec + (double)started.tv_nsec / 1e9;
    atomic_init(&h->in_flight, 0);
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the clock of now_ms */
    pthread_cond_init(&h->wd_cv, &ca);
    pthread_condattr_destroy(&ca);
    h->conns.prev = h->conns.next = &h->conns;
    h->wait_tail = &h->wait_head;

    /* TLS is fixed at start (the daemon's mode); its files rotate (tls.c). */
    if (c->web && c->web->tls && !(h->tls = exp_tls_create(c->web, st, self, err, errlen))) {
        http_free(h);
        return NULL;
    }
    struct MHD_OptionItem tls_opts[] = {
        {h->tls ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, 0,
         h->tls ? (void *)exp_tls_cert_callback : NULL},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, h->tls ? (void *)exp_tls_priority_string(h->tls) : NULL},
        {MHD_OPTION_END, 0, NULL}};
    unsigned tls_flag = h->tls ? MHD_USE_TLS : 0;

    const char *addr = srv->listen_address ? srv->listen_address : ":9102";
    char why[256];
    h->listen_fd = exp_listen(addr, SOCK_STREAM, why, sizeof why);
    if (h->listen_fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, why);
        http_free(h);
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
    h->max_open = maxconn;
    h->idle_timeout_ms = (uint64_t)timeout * 1000u;
    h->request_timeout_ms = ns_to_ms_ceil(srv->request_timeout_ns);
    h->queue_timeout_ms = ns_to_ms_ceil(srv->scrape_queue_timeout_ns);
    h->write_timeout_ms = ns_to_ms_ceil(srv->write_timeout_ns);
    h->max_scrapes =
        srv->max_concurrent_scrapes ? (unsigned)srv->max_concurrent_scrapes : DEFAULT_MAX_SCRAPES;

    h->d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
            tls_flag,
        0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, /* first */
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)POOL_THREADS, MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_LIMIT,
        maxconn + EVICT_SLACK, MHD_OPTION_PER_IP_CONNECTION_LIMIT, perip,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION,
        exp_http_on_connection, h, MHD_OPTION_URI_LOG_CALLBACK, exp_http_on_uri, h,
        MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot start the HTTP server on %s", h->address);
        close(h->listen_fd);
        http_free(h);
        return NULL;
    }
    int rc = pthread_create(&h->wd, NULL, exp_http_watchdog, h);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the HTTP watchdog thread: %s", strerror(rc));
        MHD_stop_daemon(h->d); /* nothing suspended yet: no scrape has run */
        http_free(h);
        return NULL;
    }
    h->wd_running = 1;
    int auth = c->web && c->web->nusers;
    exp_self_web_enabled(self, h->tls != NULL, auth);
    char tbuf[16], cbuf[16], pbuf[16], rbuf[24], wbuf[24], sbuf[16];
    snprintf(tbuf, sizeof tbuf, "%us", timeout);
    snprintf(cbuf, sizeof cbuf, "%u", maxconn);
    snprintf(pbuf, sizeof pbuf, "%u", perip);
    snprintf(rbuf, sizeof rbuf, "%llums", (unsigned long long)h->request_timeout_ms);
    snprintf(wbuf, sizeof wbuf, "%llums", (unsigned long long)h->write_timeout_ms);
    snprintf(sbuf, sizeof sbuf, "%u", h->max_scrapes);
    exp_log(EXP_LOG_INFO, "listening", "address", h->address, "telemetry_path", h->telemetry_path,
            "connection_timeout", tbuf, "request_timeout", rbuf, "write_timeout", wbuf,
            "max_connections", cbuf, "max_connections_per_ip", pbuf, "max_concurrent_scrapes", sbuf,
            "tls", h->tls ? "on" : "off", "basic_auth", auth ? "on" : "off", NULL);
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
    /* Quiesce only asks the worker threads to drop the listening socket from their epoll
     * sets; they do so on their next wake-up, and an epoll_ctl on a closed descriptor makes
     * MHD panic. So stop accepting with shutdown (new connections are refused at once) and
     * close the descriptor after MHD_stop_daemon has joined the workers. */
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET)
        shutdown(fd, SHUT_RDWR);
    else
        exp_log(EXP_LOG_WARN, "cannot stop accepting connections gracefully", NULL);
    /* Waiting scrapes get their 503 now; MHD_stop_daemon must find none suspended. */
    pthread_mutex_lock(&h->mu);
    h->stopping = 1;
    while (h->wait_head)
        exp_http_gate_resume(h, &h->wait_head, G_REFUSED);
    pthread_mutex_unlock(&h->mu);
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
    while ((left = atomic_load(&h->in_flight)) > 0 && exp_http_since(&t0) * 1000.0 < drain_ms)
        nanosleep(&step, NULL);
    if (left > 0) {
        char n[24];
        snprintf(n, sizeof n, "%ld", left);
        exp_log(EXP_LOG_WARN, "drain timed out; closing requests still in flight", "requests", n,
                NULL);
    }
    MHD_stop_daemon(h->d); /* every connection's CLOSED has run when it returns */
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    pthread_mutex_lock(&h->mu);
    h->wd_stop = 1;
    pthread_cond_signal(&h->wd_cv);
    pthread_mutex_unlock(&h->mu);
    if (h->wd_running)
        pthread_join(h->wd, NULL);
    http_free(h);
}
