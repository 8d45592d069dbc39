/* push.c - the HTTP side of the push API: push bodies buffered under two bounds (each body at
 * most push.max_body_bytes; all bodies arriving at once together at most
 * push.max_buffered_bytes, beyond which a push is answered 503), the request handed to
 * exp_push_handle, and the JSON API routes. The time bound is the server's request_timeout,
 * which covers the body.
 */
#include <malloc.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "push/push.h"
#include "version.h"

#define PUSH_TRIM_BYTES (1u << 20)

void exp_http_push_settings(exp_http *h, const exp_config *c) {
    const cfg_push *p = &c->cfg->push;
    h->push_enabled = p->enabled;
    h->push_max_body = p->max_body_bytes;
    h->push_max_buffered = p->max_buffered_bytes;
}

/* Grow the request's budget share by n bytes. 0, or -1 when the budget is spent. The
 * counter is a plain sum (relaxed): it publishes nothing, reserve-then-check keeps the bound
 * exact across threads. */
static int budget_take(exp_http *h, req_ctx *ctx, size_t n) {
    size_t had = atomic_fetch_add_explicit(&h->push_buffered, n, memory_order_relaxed);
    if (had + n > h->push_max_buffered) {
        atomic_fetch_sub_explicit(&h->push_buffered, n, memory_order_relaxed);
        return -1;
    }
    ctx->budget += n;
    return 0;
}

void exp_http_push_body(exp_http *h, req_ctx *ctx, const char *data, size_t n) {
    if (ctx->too_large || ctx->busy)
        return;
    if (ctx->body_len + n > h->push_max_body) {
        ctx->too_large = 1;
        exp_self_push_refused(h->self, "too_large");
        exp_http_push_free(h, ctx);
        return;
    }
    if (ctx->body_len + n > ctx->body_cap) {
        /* The announced length at once (no copies while it arrives), else doubling. */
        size_t cap = ctx->body_cap ? ctx->body_cap : 4096;
        if (cap < ctx->body_expect)
            cap = ctx->body_expect;
        while (cap < ctx->body_len + n)
            cap *= 2;
        if (cap > h->push_max_body)
            cap = h->push_max_body;
        if (budget_take(h, ctx, cap - ctx->body_cap) != 0) {
            ctx->busy = 1;
            exp_self_push_refused(h->self, "busy");
            exp_http_push_free(h, ctx);
            return;
        }
        char *grown = realloc(ctx->body, cap);
        if (grown == NULL) {
            ctx->busy = 1;
            exp_http_push_free(h, ctx);
            return;
        }
        ctx->body = grown;
        ctx->body_cap = cap;
    }
    memcpy(ctx->body + ctx->body_len, data, n);
    ctx->body_len += n;
}

void exp_http_push_free(exp_http *h, req_ctx *ctx) {
    free(ctx->body);
    ctx->body = NULL;
    ctx->body_len = ctx->body_cap = 0;
    if (ctx->budget)
        atomic_fetch_sub_explicit(&h->push_buffered, ctx->budget, memory_order_relaxed);
    ctx->budget = 0;
}

enum MHD_Result exp_http_serve_push(exp_http *h, struct MHD_Connection *c, req_ctx *ctx,
                                    const char *method) {
    exp_config *cfg = exp_state_acquire(h->st);
    exp_push_request rq = {
        .method = method,
        .path = ctx->url,
        .ttl = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "ttl"),
        .encoding =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING),
        .content_type =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .body = ctx->body ? ctx->body : "",
        .len = ctx->body_len,
        .default_ttl_ns = cfg->cfg->push.group_ttl_ns, /* reloadable: read per push */
        .max_body = h->push_max_body,
    };
    exp_config_release(cfg);
    exp_push_answer ans;
    exp_push_handle(h->reg, &rq, &ans);
    size_t received = ctx->body_len;
    exp_http_push_free(h, ctx);
    /* A large push leaves its body, parse and build memory free in the heap (several times
     * the group it made): give it back to the system, as the last scrape does. */
    if (received >= PUSH_TRIM_BYTES)
        malloc_trim(0);
    if (ans.refused)
        exp_self_push_refused(h->self, ans.refused);
    return exp_http_reply(c, ctx, ans.status, "text/plain; charset=utf-8", ans.message,
                          strlen(ans.message), ans.allow);
}

/* The JSON body of an API answer, or an error text. */
static enum MHD_Result reply_json(struct MHD_Connection *c, req_ctx *ctx, char *body, size_t len,
                                  unsigned status) {
    if (body == NULL)
        return exp_http_reply_text(c, ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    enum MHD_Result ret = exp_http_reply(c, ctx, status, "application/json", body, len, NULL);
    free(body);
    return ret;
}

enum MHD_Result exp_http_serve_api(exp_http *h, struct MHD_Connection *c, req_ctx *ctx,
                                   const char *method) {
    size_t len = 0;
    unsigned status = 0;
    if (ctx->r == R_API_WIPE) {
        if (!h->admin_api) /* as the Pushgateway: the route does not exist */
            return exp_http_reply_text(c, ctx, MHD_HTTP_NOT_FOUND, "404 page not found\n", NULL);
        if (strcmp(method, "PUT") != 0)
            return exp_http_reply_text(c, ctx, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n",
                                       "OPTIONS, PUT");
        reg_group_wipe(h->reg);
        return exp_http_reply(c, ctx, MHD_HTTP_ACCEPTED, "text/plain; charset=utf-8", "", 0, NULL);
    }
    if (!strcmp(method, "OPTIONS"))
        return exp_http_reply(c, ctx, MHD_HTTP_OK, "text/plain; charset=utf-8", "", 0,
                              "GET, OPTIONS");
    if (strcmp(method, "GET") != 0)
        return exp_http_reply_text(c, ctx, MHD_HTTP_METHOD_NOT_ALLOWED, "Method Not Allowed\n",
                                   "GET, OPTIONS");
    char *body;
    if (ctx->r == R_API_METRICS) {
        body = exp_push_api_metrics(h->reg, &len, &status);
        return reply_json(c, ctx, body, len, status); /* len and status set by the call */
    }
    const char *flags[] = {"web.listen-address",   h->address,
                           "web.telemetry-path",   h->telemetry_path,
                           "web.enable-lifecycle", h->lifecycle ? "true" : "false",
                           "web.enable-admin-api", h->admin_api ? "true" : "false"};
    body = exp_push_api_status(h->start_time, flags, sizeof flags / sizeof *flags / 2,
                               ABACUS_VERSION, ABACUS_REVISION, &len, &status);
    return reply_json(c, ctx, body, len, status);
}
