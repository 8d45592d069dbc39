/* internal.h - what the files of the HTTP server share (exporter/http/ only): the server
 * object, per-connection and per-request state, and the functions one file offers another.
 *
 *   server.c   start/stop, the request handler (dispatch) and completion
 *   guard.c    connection tracking: request and write deadlines, eviction at the cap, the
 *              watchdog thread
 *   gate.c     the bound on concurrent scrapes and its queue
 *   routes.c   the endpoints: /metrics, the landing page, health, readiness, reload
 *   push.c     the push endpoints (bodies buffered under a budget) and the JSON API
 *   expfmt.c   the exposition formats (expfmt.h), negotiate.c content negotiation
 *   gzip.c     the scrape's gzip encoder (ISA-L igzip; gzip.h)
 *   tls.c      HTTPS per the web config file: certificates (rotated), client certificates
 *   auth.c     basic auth per the web config file: bcrypt, its cache and its bound
 */
#ifndef ABACUS_EXPORTER_HTTP_INTERNAL_H
#define ABACUS_EXPORTER_HTTP_INTERNAL_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <time.h>

#include "http/http.h"

#define POOL_THREADS 2
#define SCRAPE_BLOCK (64 * 1024)
#define DEFAULT_MAX_CONNECTIONS 512
#define DEFAULT_MAX_REQUEST_BYTES (4u << 20)
#define DEFAULT_MAX_SCRAPES 4
/* MHD's own connection limit is max_connections plus this: a connection we evicted stays
 * open until its worker thread sees the shutdown, while the newcomer is already accepted. */
#define EVICT_SLACK 64
#define WATCHDOG_MAX_SLEEP_MS 1000

/* Where a connection is in its current request, for the deadlines the watchdog enforces. */
typedef enum {
    CP_HEADERS, /* request line and headers arriving: request_timeout runs */
    CP_BODY,    /* headers complete, body arriving: request_timeout still runs */
    CP_BUSY,    /* being handled (or waiting for a scrape slot): no deadline of ours */
    CP_SENDING, /* response queued, still being sent: write_timeout runs */
    CP_IDLE     /* kept alive between requests: MHD's idle timeout, then ours */
} conn_phase;

typedef struct exp_tls exp_tls;
typedef struct exp_auth exp_auth;
struct tls_keys;

/* One open connection, from MHD's STARTED notification to its CLOSED one (its socket
 * context). Every field but fd, tls and keys changes only under exp_http.mu; those belong to
 * the connection's worker thread. */
typedef struct conn_ent {
    struct conn_ent *prev, *next; /* exp_http.conns */
    int fd;                       /* valid until CLOSED: MHD closes it after that callback */
    conn_phase phase;
    int cut;               /* shut down by us and no longer counted in nopen; MHD closes it soon */
    uint64_t since;        /* monotonic ms: when the phase began */
    exp_tls *tls;          /* HTTPS: the server's TLS state, else NULL */
    struct tls_keys *keys; /* the key material its handshake used (a reference), or NULL */
} conn_ent;

typedef enum {
    R_METRICS,
    R_ROOT,
    R_HEALTHY,
    R_READY,
    R_RELOAD,
    R_PUSH,        /* /metrics/job/..., /metrics/aggregate/job/... */
    R_API_METRICS, /* /api/v1/metrics */
    R_API_STATUS,  /* /api/v1/status */
    R_API_WIPE,    /* /api/v1/admin/wipe */
    R_OTHER
} route;

/* A scrape's place at the gate that bounds concurrent scrapes. */
typedef enum { G_NONE, G_WAITING, G_GRANTED, G_REFUSED } gate_state;

/* Per-request context, created by the URI callback when the request line is complete, freed
 * on completion. The gate fields change only under exp_http.mu; the rest belongs to the
 * connection's worker thread. */
typedef struct req_ctx {
    route r;
    unsigned code; /* status queued, for abacus_http_requests_total */
    size_t body_bytes;
    int too_large;
    int started;     /* the handler has seen the headers */
    int in_flight;   /* counted in exp_http.in_flight */
    int nul_escape;  /* the raw path holds %00 */
    const char *raw; /* the request target as the URI callback saw it (compared, never read
                      * again: MHD decodes it in place) */
    size_t raw_len;  /* its strlen then: up to the first NUL byte */
    conn_ent *ent;   /* NULL when the connection is not tracked */
    struct MHD_Connection *c;
    const char *url; /* decoded path (MHD keeps it for the request) */
    char *body;      /* push bodies only: what arrived so far */
    size_t body_len, body_cap;
    size_t body_expect; /* Content-Length when given (at most the route's limit), else 0 */
    size_t budget;      /* bytes of exp_http.push_buffered this request holds */
    int busy;           /* refused: the push buffer budget was spent */
    gate_state gate;
    int slot;              /* granted a scrape slot the handler has not taken over yet */
    uint64_t wait_until;   /* monotonic ms: G_WAITING gives up then */
    struct req_ctx *wnext; /* exp_http's FIFO of waiting scrapes */
    exp_config *cfg;       /* the snapshot the request is judged by (a reference), or NULL */
} req_ctx;

struct exp_http {
    struct MHD_Daemon *d;
    int listen_fd; /* owned by us until quiesce hands it back */
    reg_registry *reg;
    exp_state *st;
    exp_self *self;
    char *telemetry_path;
    int lifecycle;
    int admin_api;
    size_t max_body;
    double start_time; /* wall-clock seconds, for /api/v1/status */
    exp_tls *tls;      /* HTTPS (fixed at start), or NULL */
    exp_auth *auth;    /* the basic auth cache and bound (always there) */

    /* Push, fixed at start (push.max_body_bytes, push.max_buffered_bytes, push.enabled). */
    int push_enabled;
    size_t push_max_body, push_max_buffered;
    _Atomic size_t push_buffered; /* bytes of push bodies held by requests right now */
    char address[INET6_ADDRSTRLEN + 16];
    _Atomic long in_flight; /* requests between first handler call and completion */

    /* Limits, fixed at start. */
    size_t max_open;
    uint64_t request_timeout_ms, idle_timeout_ms, queue_timeout_ms, write_timeout_ms; /* 0: none */
    unsigned max_scrapes;

    /* Guards everything below and every conn_ent and gate field. Taken by MHD's worker
     * threads (notifications, URI callback, handler, completion, response free) and by the
     * watchdog; never held while calling into the registry. Lock order: mu, then MHD's
     * internal mutex (MHD_suspend/resume_connection); MHD calls none of our callbacks with
     * that mutex held. */
    pthread_mutex_t mu;
    pthread_cond_t wd_cv; /* wakes the watchdog: stop, or a deadline before wd_wake */
    pthread_t wd;
    int wd_running, wd_stop;
    uint64_t wd_wake;    /* monotonic ms the watchdog sleeps until */
    conn_ent conns;      /* sentinel of the list of open connections */
    size_t nopen;        /* entries not cut */
    unsigned scrapes;    /* scrape slots held */
    req_ctx *wait_head;  /* scrapes waiting for a slot, oldest first */
    req_ctx **wait_tail; /* &last->wnext, or &wait_head */
    int stopping;        /* exp_http_stop began: nothing waits any more */
};

/* Monotonic milliseconds. Cannot fail. */
static inline uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- what one file offers another ---------------------------------------------------- */

typedef enum { GATE_OK, GATE_WAIT, GATE_FULL } gate_result;

/* guard.c */
void exp_http_wd_poke(exp_http *h, uint64_t deadline);
void exp_http_set_phase(exp_http *h, conn_ent *e, conn_phase p);
void exp_http_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                            enum MHD_ConnectionNotificationCode code);
void *exp_http_on_uri(void *cls, const char *uri, struct MHD_Connection *c);
void *exp_http_watchdog(void *arg);

/* gate.c */
gate_result exp_http_gate_enter(exp_http *h, req_ctx *ctx);
void exp_http_gate_resume(exp_http *h, req_ctx **pp, gate_state outcome);
void exp_http_gate_leave(exp_http *h);
void exp_http_gate_forget(exp_http *h, req_ctx *ctx);

/* routes.c */
route exp_http_route_of(const exp_http *h, const char *url);
const char *exp_http_route_name(const exp_http *h, route r);
enum MHD_Result exp_http_reply_bad_request(struct MHD_Connection *c, req_ctx *ctx,
                                           const char *text);
enum MHD_Result exp_http_reply_text(struct MHD_Connection *c, req_ctx *ctx, unsigned code,
                                    const char *text, const char *allow);
double exp_http_since(const struct timespec *t0);
enum MHD_Result exp_http_serve_metrics(exp_http *h, struct MHD_Connection *c, req_ctx *ctx,
                                       int head);
enum MHD_Result exp_http_serve_landing(exp_http *h, struct MHD_Connection *c, req_ctx *ctx);
enum MHD_Result exp_http_serve_reload(exp_http *h, struct MHD_Connection *c, req_ctx *ctx);
enum MHD_Result exp_http_reply(struct MHD_Connection *c, req_ctx *ctx, unsigned code,
                               const char *ctype, const char *body, size_t len, const char *allow);
enum MHD_Result exp_http_reply_unauthorized(struct MHD_Connection *c, req_ctx *ctx);

/* tls.c */
/* Load the certificate, key and CA of w and build its priority string. NULL with a reason in
 * err. */
exp_tls *exp_tls_create(const cfg_web *w, exp_state *st, exp_self *self, char *err, size_t errlen);
void exp_tls_destroy(exp_tls *t);
const char *exp_tls_priority_string(const exp_tls *t);
char *exp_tls_priorities(const cfg_web *w, char *err, size_t errlen);
int exp_tls_cert_callback(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int nreqs,
                          const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                          gnutls_pcert_st **pcert, unsigned *pcert_length, gnutls_privkey_t *key);
/* A connection started / closed (from exp_http_on_connection, its worker thread). */
void exp_tls_on_started(exp_tls *t, struct MHD_Connection *c, conn_ent *e);
void exp_tls_on_closed(conn_ent *e);
void exp_tls_keys_release(struct tls_keys *k);
const char *exp_tls_client_auth_name(cfg_client_auth a);

/* auth.c */
typedef enum {
    AUTH_OK,
    AUTH_MISSING,      /* no Authorization header */
    AUTH_MALFORMED,    /* not Basic, not base64, no ':' */
    AUTH_UNKNOWN_USER, /* (answered exactly like a wrong password) */
    AUTH_WRONG_PASSWORD,
    AUTH_BUSY, /* no bcrypt run became free in time: 503 */
    AUTH_NOMEM
} exp_auth_result;
/* User and password of a Basic Authorization header: both point into buf (owned). */
typedef struct {
    unsigned char *buf;
    const char *user, *pass;
    size_t user_len, pass_len;
} exp_auth_creds;
/* 1 when both byte strings are equal, in a time that depends on the lengths only. */
int exp_auth_equal(const void *a, size_t alen, const void *b, size_t blen);
int exp_auth_parse_basic(const char *header, exp_auth_creds *out);
void exp_auth_creds_free(exp_auth_creds *c);
/* At most max_verifying bcrypt runs at once (0: half the cores, at least 1); a request waits
 * up to wait_ms (0: 2 s) for one. Any thread may check concurrently. */
exp_auth *exp_auth_create(unsigned max_verifying, unsigned wait_ms);
void exp_auth_destroy(exp_auth *a);
exp_auth_result exp_auth_check(exp_auth *a, const cfg_web *w, const char *authorization);
void exp_auth_cache_stats(exp_auth *a, uint64_t *hits, uint64_t *misses);
/* The reason label of abacus_http_auth_failures_total. */
const char *exp_auth_reason(exp_auth_result r);

/* push.c */
/* Read the push settings of c into h (at start). Cannot fail. */
void exp_http_push_settings(exp_http *h, const exp_config *c);
/* Take one piece of a push body: buffered within push_max_body and the shared budget
 * (too_large / busy set when one is exceeded; the rest is then dropped). Cannot fail. */
void exp_http_push_body(exp_http *h, req_ctx *ctx, const char *data, size_t n);
/* Give back what a request's body held. Cannot fail. */
void exp_http_push_free(exp_http *h, req_ctx *ctx);
enum MHD_Result exp_http_serve_push(exp_http *h, struct MHD_Connection *c, req_ctx *ctx,
                                    const char *method);
enum MHD_Result exp_http_serve_api(exp_http *h, struct MHD_Connection *c, req_ctx *ctx,
                                   const char *method);

#endif
