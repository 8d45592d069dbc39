/* routes.c - the endpoints: which route a path is, small replies, /metrics (streamed through
 * the exposition formats, under the scrape gate), the landing page, and reload.
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
#include "push/push.h"
#include "version.h"

/* ---- routing and replies -----------------------------------------------------------------------
 */

route exp_http_route_of(const exp_http *h, const char *url) {
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
    if (h->push_enabled) {
        if (exp_push_is_path(url))
            return R_PUSH;
        if (!strcmp(url, "/api/v1/metrics"))
            return R_API_METRICS;
        if (!strcmp(url, "/api/v1/status"))
            return R_API_STATUS;
        if (!strcmp(url, "/api/v1/admin/wipe"))
            return R_API_WIPE;
    }
    return R_OTHER;
}

const char *exp_http_route_name(const exp_http *h, route r) {
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
    case R_PUSH:
        return "/metrics/job";
    case R_API_METRICS:
        return "/api/v1/metrics";
    case R_API_STATUS:
        return "/api/v1/status";
    case R_API_WIPE:
        return "/api/v1/admin/wipe";
    default:
        return "other";
    }
}

/* Queue a response with the web config file's http_server_config.headers added (every
 * response gets them, as in the toolkit). MHD_NO when out of memory. */
static enum MHD_Result queue(struct MHD_Connection *c, req_ctx *ctx, unsigned code,
                             struct MHD_Response *resp) {
    if (!resp)
        return MHD_NO;
    const cfg_web *w = ctx->cfg ? ctx->cfg->web : NULL;
    for (size_t i = 0; w && i < w->nheaders; i++)
        if (MHD_add_response_header(resp, w->header_names[i], w->header_values[i]) != MHD_YES) {
            MHD_destroy_response(resp);
            return MHD_NO;
        }
    ctx->code = code;
    enum MHD_Result ret = MHD_queue_response(c, code, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* A small response from a string (copied). allow: value of an Allow header, or NULL.
 * MHD_NO when out of memory. */
enum MHD_Result exp_http_reply(struct MHD_Connection *c, req_ctx *ctx, unsigned code,
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

/* A 400 that also closes the connection: after a request whose framing or target cannot be
 * trusted, nothing else read from that connection can be either. MHD_NO when out of memory. */
enum MHD_Result exp_http_reply_bad_request(struct MHD_Connection *c, req_ctx *ctx,
                                           const char *text) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return queue(c, ctx, MHD_HTTP_BAD_REQUEST, resp);
}

/* 401 for basic auth, as the toolkit answers it. MHD_NO when out of memory. */
enum MHD_Result exp_http_reply_unauthorized(struct MHD_Connection *c, req_ctx *ctx) {
    static const char text[] = "Unauthorized\n";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof text - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic");
    return queue(c, ctx, MHD_HTTP_UNAUTHORIZED, resp);
}

/* MHD_NO when out of memory. */
enum MHD_Result exp_http_reply_text(struct MHD_Connection *c, req_ctx *ctx, unsigned code,
                                    const char *text, const char *allow) {
    return exp_http_reply(c, ctx, code, "text/plain; charset=utf-8", text, strlen(text), allow);
}

/* ---- /metrics -------------------------------------------------------------------------------- */

/* One GET of the telemetry path: it holds a scrape slot, given back when it is freed. */
typedef struct {
    exp_http *h;
    exp_scrape *sc; /* NULL only while the scrape is being started */
    struct timespec t0;
} scrape_job;

double exp_http_since(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static ssize_t scrape_read(void *cls, uint64_t pos, char *buf, size_t max) {
    static exp_log_limit lim;
    (void)pos;
    scrape_job *job = cls;
    long n = exp_scrape_read(job->sc, buf, max);
    if (n > 0)
        return (ssize_t)n;
    if (n == 0) {
        exp_self_scrape_duration(job->h->self, exp_http_since(&job->t0));
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    exp_log_limited(&lim, 5, EXP_LOG_ERROR, "scrape failed while streaming", NULL);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* The response's free callback: MHD calls it once the response is done with (sent, or the
 * connection closed), from a worker thread holding no lock of MHD's. Cannot fail. */
static void scrape_free(void *cls) {
    scrape_job *job = cls;
    if (job->sc)
        exp_scrape_end(job->sc);
    exp_http *h = job->h;
    free(job);
    exp_http_gate_leave(h); /* after the frees, so the trim sees them */
}

/* The headers of a /metrics answer, GET or HEAD. Cannot fail (MHD copies them). */
static void metrics_headers(struct MHD_Response *resp, exp_format fmt, int gzip) {
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, exp_content_type(fmt));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (gzip)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
}

enum MHD_Result exp_http_serve_metrics(exp_http *h, struct MHD_Connection *c, req_ctx *ctx,
                                       int head) {
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    const char *ae =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    exp_format fmt = exp_negotiate(accept);
    int gzip = exp_accepts_gzip(ae);

    if (head) {
        /* The headers only, and no slot: a chunked response with an unknown size would still
         * send its closing chunk after the headers of a HEAD. */
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return MHD_NO;
        metrics_headers(resp, fmt, gzip);
        return queue(c, ctx, MHD_HTTP_OK, resp);
    }
    switch (exp_http_gate_enter(h, ctx)) {
    case GATE_WAIT:
        return MHD_YES; /* suspended; called again when resumed */
    case GATE_FULL:
        return exp_http_reply_text(c, ctx, MHD_HTTP_SERVICE_UNAVAILABLE,
                                   "too many concurrent scrapes, try again\n", NULL);
    case GATE_OK:
        break;
    }
    scrape_job *job = calloc(1, sizeof *job);
    if (!job) {
        exp_http_gate_leave(h);
        return exp_http_reply_text(c, ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    }
    job->h = h;
    clock_gettime(CLOCK_MONOTONIC, &job->t0);
    pthread_mutex_lock(&h->mu);
    size_t open = h->nopen;
    pthread_mutex_unlock(&h->mu);
    exp_self_http_connections(h->self, (double)open);
    exp_state_view_begin(h->st);
    exp_self_refresh(h->self);
    job->sc = exp_scrape_begin(h->reg, fmt, gzip);
    exp_state_view_end(h->st);
    if (!job->sc) {
        scrape_free(job);
        exp_log(EXP_LOG_ERROR, "cannot start a scrape", "err", "out of memory", NULL);
        return exp_http_reply_text(c, ctx, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                   "cannot start a scrape\n", NULL);
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SCRAPE_BLOCK,
                                                                  scrape_read, job, scrape_free);
    if (!resp) {
        scrape_free(job);
        return MHD_NO;
    }
    metrics_headers(resp, fmt, gzip);
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

/* What the web config file turns on (never a secret: no hash, no key, no user name). */
static void web_rows(FILE *f, const exp_http *h, const cfg_web *w) {
    char text[128];
    if (h->tls)
        snprintf(text, sizeof text, "on (client certificates: %s)",
                 exp_tls_client_auth_name(w ? w->client_auth : CFG_CLIENT_AUTH_NONE));
    row(f, "web config file", w ? w->path : NULL);
    row(f, "TLS", h->tls ? text : "off");
    row(f, "basic auth", w && w->nusers ? "on" : "off");
}

enum MHD_Result exp_http_serve_landing(exp_http *h, struct MHD_Connection *c, req_ctx *ctx) {
    char *page = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&page, &len);
    if (!f)
        return exp_http_reply_text(c, ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
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
    row(f, "push API",
        h->push_enabled ? "enabled (/metrics/job/..., /api/v1/metrics)" : "disabled");
    snprintf(num, sizeof num, "%zu", reg_group_total(h->reg));
    row(f, "pushed groups", num);
    row(f, "admin API", h->admin_api ? "enabled" : "disabled");
    web_rows(f, h, cfg->web);
    snprintf(num, sizeof num, "%016llx", (unsigned long long)cfg->hash);
    row(f, "config hash", num);
    fputs("</table>\n</body></html>\n", f);
    exp_config_release(cfg);
    int bad = ferror(f);
    fclose(f);
    enum MHD_Result ret =
        bad ? exp_http_reply_text(c, ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL)
            : exp_http_reply(c, ctx, MHD_HTTP_OK, "text/html; charset=utf-8", page, len, NULL);
    free(page);
    return ret;
}

/* ---- reload ------------------------------------------------------------------------------------
 */

enum MHD_Result exp_http_serve_reload(exp_http *h, struct MHD_Connection *c, req_ctx *ctx) {
    if (!h->lifecycle)
        return exp_http_reply_text(
            c, ctx, MHD_HTTP_FORBIDDEN,
            "Lifecycle API is not enabled (start with --web.enable-lifecycle).\n", NULL);
    exp_log(EXP_LOG_INFO, "reload requested", "via", "http", NULL);
    cfg_errors errs = {0};
    if (exp_state_reload(h->st, &errs) == 0) {
        cfg_errors_free(&errs);
        return exp_http_reply_text(c, ctx, MHD_HTTP_OK, "configuration reloaded\n", NULL);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    enum MHD_Result ret;
    if (f) {
        cfg_errors_print(&errs, f);
        fclose(f);
        ret = exp_http_reply(c, ctx, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8", text, len,
                             NULL);
        free(text);
    } else {
        ret = exp_http_reply_text(c, ctx, MHD_HTTP_BAD_REQUEST, "invalid configuration\n", NULL);
    }
    cfg_errors_free(&errs);
    return ret;
}
