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
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
#define DEFAULT_MAX_SCRAPES 4
/* MHD's own connection limit is max_connections plus this: a connection we evicted stays
 * open until its worker thread sees the shutdown, while the newcomer is already accepted. */
#define EVICT_SLACK 64
#define WATCHDOG_MAX_SLEEP_MS 1000

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

/* Where a connection is in its current request, for the deadlines the watchdog enforces. */
typedef enum {
    CP_HEADERS, /* request line and headers arriving: request_timeout runs */
    CP_BODY,    /* headers complete, body arriving: request_timeout still runs */
    CP_BUSY,    /* being handled (or waiting for a scrape slot): no deadline of ours */
    CP_SENDING, /* response queued, still being sent: write_timeout runs */
    CP_IDLE     /* kept alive between requests: MHD's idle timeout, then ours */
} conn_phase;

/* One open connection, from MHD's STARTED notification to its CLOSED one (its socket
 * context). Every field but fd changes only under exp_http.mu. */
typedef struct conn_ent {
    struct conn_ent *prev, *next; /* exp_http.conns */
    int fd;                       /* valid until CLOSED: MHD closes it after that callback */
    conn_phase phase;
    int cut;        /* shut down by us and no longer counted in nopen; MHD closes it soon */
    uint64_t since; /* monotonic ms: when the phase began */
} conn_ent;

typedef enum { R_METRICS, R_ROOT, R_HEALTHY, R_READY, R_RELOAD, R_OTHER } route;

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
    gate_state gate;
    int slot;              /* granted a scrape slot the handler has not taken over yet */
    uint64_t wait_until;   /* monotonic ms: G_WAITING gives up then */
    struct req_ctx *wnext; /* exp_http's FIFO of waiting scrapes */
} req_ctx;

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
static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- connection deadlines ---------------------------------------------------------------------
 *
 * libmicrohttpd 0.9.75 has an idle timeout only: a client that sends one byte a second is
 * never idle and holds its connection slot for as long as it likes. So every connection is
 * tracked from MHD's STARTED notification to its CLOSED one, with the phase of its current
 * request, and a watchdog thread shuts down the socket of one whose request is not complete
 * within request_timeout, or whose response is not sent within write_timeout (a client that
 * reads a scrape slowly holds its scrape slot); MHD then reads EOF or fails to write, and
 * closes it. MHD calls CLOSED before it
 * closes the descriptor, and CLOSED removes the entry under mu, the lock every shutdown is
 * made under: so a shutdown never reaches a descriptor number that was closed and reused.
 */

/* When e's current phase runs out (monotonic ms), or 0 for never. Under mu. */
static uint64_t deadline_of(const exp_http *h, const conn_ent *e) {
    switch (e->phase) {
    case CP_HEADERS:
    case CP_BODY:
        return h->request_timeout_ms ? e->since + h->request_timeout_ms : 0;
    case CP_SENDING:
        /* A client that reads slowly but never idles would otherwise keep the response, and a
         * scrape its slot, for as long as it likes. */
        return h->write_timeout_ms ? e->since + h->write_timeout_ms : 0;
    case CP_IDLE:
        /* MHD closes a silent kept-alive connection after idle_timeout; one that trickles its
         * next request line is not silent, and gets request_timeout on top. */
        return h->request_timeout_ms && h->idle_timeout_ms
                   ? e->since + h->idle_timeout_ms + h->request_timeout_ms
                   : 0;
    default:
        return 0;
    }
}

/* Wake the watchdog when a new deadline comes before its planned wake-up. Under mu. */
static void wd_poke(exp_http *h, uint64_t deadline) {
    if (deadline && deadline < h->wd_wake)
        pthread_cond_signal(&h->wd_cv);
}

/* Close e from our side: its worker thread sees EOF and MHD closes the connection. The
 * descriptor is still open (see above). Under mu. */
static void cut(exp_http *h, conn_ent *e) {
    shutdown(e->fd, SHUT_RDWR);
    e->cut = 1;
    h->nopen--;
}

/* Move e to phase p (NULL e: untracked, nothing to do). Cannot fail. Any worker thread. */
static void set_phase(exp_http *h, conn_ent *e, conn_phase p) {
    if (!e)
        return;
    pthread_mutex_lock(&h->mu);
    if (e->phase != p) {
        /* A body's deadline is the request's: it keeps the start of the headers. */
        if (p != CP_BODY)
            e->since = now_ms();
        e->phase = p;
        wd_poke(h, deadline_of(h, e));
    }
    pthread_mutex_unlock(&h->mu);
}

/* The connection to make room with when a newcomer finds every slot taken: the one waiting
 * longest for a complete request (or kept alive longest), never one being answered. A client
 * that opens connections and sends slowly thus only ever evicts itself or other idlers;
 * a request that sends its headers at once is past this phase within a round trip.
 * Returns NULL when every other connection is busy. Under mu. */
static conn_ent *oldest_evictable(exp_http *h, const conn_ent *except) {
    conn_ent *best = NULL;
    for (conn_ent *e = h->conns.next; e != &h->conns; e = e->next)
        if (e != except && !e->cut && e->phase != CP_BUSY && e->phase != CP_SENDING &&
            (!best || e->since < best->since))
            best = e;
    return best;
}

/* MHD_OPTION_NOTIFY_CONNECTION: track a new connection (enforcing max_connections by
 * eviction) or forget a closed one. Called by the connection's worker thread. Cannot fail:
 * a connection that cannot be tracked is refused. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    exp_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_ent *e = *socket_context;
        if (!e)
            return;
        *socket_context = NULL;
        pthread_mutex_lock(&h->mu);
        e->prev->next = e->next;
        e->next->prev = e->prev;
        if (!e->cut)
            h->nopen--;
        pthread_mutex_unlock(&h->mu);
        free(e);
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    conn_ent *e = ci ? calloc(1, sizeof *e) : NULL;
    if (!e) {
        /* Unbounded otherwise: refuse it. Its descriptor is open until CLOSED (see above). */
        if (ci)
            shutdown(ci->connect_fd, SHUT_RDWR);
        exp_self_http_closed(h->self, "refused", 1);
        return;
    }
    e->fd = ci->connect_fd;
    e->phase = CP_HEADERS;
    e->since = now_ms();
    const char *why = NULL;
    pthread_mutex_lock(&h->mu);
    e->prev = h->conns.prev;
    e->next = &h->conns;
    h->conns.prev->next = e;
    h->conns.prev = e;
    h->nopen++;
    *socket_context = e;
    if (h->nopen > h->max_open) {
        conn_ent *victim = oldest_evictable(h, e);
        cut(h, victim ? victim : e);
        why = victim ? "evicted" : "refused";
    }
    wd_poke(h, deadline_of(h, e));
    pthread_mutex_unlock(&h->mu);
    if (why)
        exp_self_http_closed(h->self, why, 1);
}

/* 1 when the path part of a raw request target holds %00, which decodes to a NUL that would
 * silently cut the path short. Cannot fail. */
static int path_has_nul_escape(const char *raw) {
    for (const char *p = raw; *p && *p != '?'; p++)
        if (p[0] == '%' && p[1] == '0' && p[2] == '0')
            return 1;
    return 0;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request line is complete. Creates the request's context
 * (MHD passes the result to the handler as *req_cls); NULL when out of memory, and the
 * handler then refuses the request. Called by the connection's worker thread. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
    exp_http *h = cls;
    req_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->c = c;
    ctx->raw = uri;
    ctx->raw_len = uri ? strlen(uri) : 0;
    ctx->nul_escape = uri && path_has_nul_escape(uri);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    ctx->ent = ci ? ci->socket_context : NULL;
    /* A kept-alive connection starts its next request: its deadline starts now. A new
     * connection is already in CP_HEADERS, counted from its accept. */
    if (ctx->ent) {
        pthread_mutex_lock(&h->mu);
        if (ctx->ent->phase == CP_IDLE) {
            ctx->ent->phase = CP_HEADERS;
            ctx->ent->since = now_ms();
            wd_poke(h, deadline_of(h, ctx->ent));
        }
        pthread_mutex_unlock(&h->mu);
    }
    return ctx;
}

/* ---- the scrape gate ------------------------------------------------------------------------
 *
 * At most max_scrapes scrapes render at once, so the memory scrapes hold is bounded by a
 * few render buffers, not by the number of clients. A scrape that finds every slot taken is
 * suspended (MHD_suspend_connection) in a FIFO; a finishing scrape hands its slot to the
 * oldest waiter and resumes it; the watchdog resumes a waiter whose wait ran out, and it
 * answers 503. Suspension and resumption both happen under mu, so a connection is never
 * resumed before it was suspended (undefined in MHD).
 */

typedef enum { GATE_OK, GATE_WAIT, GATE_FULL } gate_result;

/* Take a scrape slot for the request (GATE_OK: the caller owns one and gives it back with
 * gate_leave), or suspend it until one is free (GATE_WAIT: return MHD_YES; the handler runs
 * again when resumed), or neither (GATE_FULL: answer 503). Called from the handler. */
static gate_result gate_enter(exp_http *h, req_ctx *ctx) {
    gate_result r;
    pthread_mutex_lock(&h->mu);
    if (ctx->gate == G_GRANTED) {
        r = GATE_OK; /* the slot came with the grant */
        ctx->slot = 0;
    } else if (ctx->gate == G_REFUSED) {
        r = GATE_FULL;
    } else if (h->scrapes < h->max_scrapes) {
        h->scrapes++;
        r = GATE_OK;
    } else if (h->stopping || h->queue_timeout_ms == 0) {
        r = GATE_FULL;
    } else {
        ctx->wait_until = now_ms() + h->queue_timeout_ms;
        ctx->wnext = NULL;
        *h->wait_tail = ctx;
        h->wait_tail = &ctx->wnext;
        MHD_suspend_connection(ctx->c);
        wd_poke(h, ctx->wait_until);
        r = GATE_WAIT;
    }
    ctx->gate = r == GATE_WAIT ? G_WAITING : G_NONE;
    pthread_mutex_unlock(&h->mu);
    if (r == GATE_WAIT)
        exp_self_scrape_queued(h->self);
    return r;
}

/* Unlink the waiter at *pp and resume it with the given outcome. Under mu. */
static void gate_resume(exp_http *h, req_ctx **pp, gate_state outcome) {
    req_ctx *w = *pp;
    *pp = w->wnext;
    if (h->wait_tail == &w->wnext)
        h->wait_tail = pp;
    w->gate = outcome;
    w->slot = outcome == G_GRANTED;
    MHD_resume_connection(w->c);
}

/* Give a slot back: to the oldest waiter, or to the pool. When no scrape is left, return
 * the allocator's free memory to the system (render buffers, zlib state, snapshots: a burst
 * of scrapes would otherwise leave RSS at its peak). Cannot fail. Any thread. */
static void gate_leave(exp_http *h) {
    pthread_mutex_lock(&h->mu);
    if (h->wait_head)
        gate_resume(h, &h->wait_head, G_GRANTED);
    else
        h->scrapes--;
    int none = h->scrapes == 0;
    pthread_mutex_unlock(&h->mu);
    if (none)
        malloc_trim(0);
}

/* On completion: a request still at the gate leaves it (a waiter is only completed after a
 * resume, but stay safe) and a slot granted but never taken over goes back. Cannot fail. */
static void gate_forget(exp_http *h, req_ctx *ctx) {
    pthread_mutex_lock(&h->mu);
    if (ctx->gate == G_WAITING)
        for (req_ctx **pp = &h->wait_head; *pp; pp = &(*pp)->wnext)
            if (*pp == ctx) {
                *pp = ctx->wnext;
                if (h->wait_tail == &ctx->wnext)
                    h->wait_tail = pp;
                break;
            }
    int slot = ctx->slot;
    ctx->slot = 0;
    ctx->gate = G_NONE;
    pthread_mutex_unlock(&h->mu);
    if (slot)
        gate_leave(h);
}

/* ---- the watchdog ---------------------------------------------------------------------------- */

/* Monotonic ms as a timespec for pthread_cond_timedwait. Cannot fail. */
static struct timespec ms_to_ts(uint64_t ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};
    return ts;
}

/* The watchdog thread: cuts connections past their request or write deadline, refuses scrapes past
 * their wait, sleeps until the next deadline (at most WATCHDOG_MAX_SLEEP_MS; earlier when
 * poked). Returns NULL. */
static void *watchdog(void *arg) {
    exp_http *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->wd_stop) {
        uint64_t now = now_ms(), next = now + WATCHDOG_MAX_SLEEP_MS;
        unsigned timed_out = 0, write_timed_out = 0;
        for (conn_ent *e = h->conns.next; e != &h->conns; e = e->next) {
            uint64_t d = e->cut ? 0 : deadline_of(h, e);
            if (d && d <= now) {
                /* A cut response frees its scrape slot: MHD closes the connection, then frees
                 * the response (scrape_free gives the slot to the next waiter). */
                if (e->phase == CP_SENDING)
                    write_timed_out++;
                else
                    timed_out++;
                cut(h, e);
            } else if (d && d < next) {
                next = d;
            }
        }
        for (req_ctx **pp = &h->wait_head; *pp;) {
            if ((*pp)->wait_until <= now) {
                gate_resume(h, pp, G_REFUSED);
            } else {
                if ((*pp)->wait_until < next)
                    next = (*pp)->wait_until;
                pp = &(*pp)->wnext;
            }
        }
        if (timed_out || write_timed_out) {
            pthread_mutex_unlock(&h->mu);
            exp_self_http_closed(h->self, "request_timeout", timed_out);
            exp_self_http_closed(h->self, "write_timeout", write_timed_out);
            pthread_mutex_lock(&h->mu);
            continue;
        }
        h->wd_wake = next;
        struct timespec ts = ms_to_ts(next);
        pthread_cond_timedwait(&h->wd_cv, &h->mu, &ts);
        h->wd_wake = 0; /* awake: any new deadline is seen by the next pass */
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ---- routing and replies -----------------------------------------------------------------------
 */

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

/* A small response from a string (copied). allow: value of an Allow header, or NULL.
 * MHD_NO when out of memory. */
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

/* A 400 that also closes the connection: after a request whose framing or target cannot be
 * trusted, nothing else read from that connection can be either. MHD_NO when out of memory. */
static enum MHD_Result reply_bad_request(struct MHD_Connection *c, req_ctx *ctx, const char *text) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return queue(c, ctx, MHD_HTTP_BAD_REQUEST, resp);
}

static enum MHD_Result reply_text(struct MHD_Connection *c, req_ctx *ctx, unsigned code,
                                  const char *text, const char *allow) {
    return reply(c, ctx, code, "text/plain; charset=utf-8", text, strlen(text), allow);
}

/* ---- /metrics -------------------------------------------------------------------------------- */

typedef struct {
    exp_http *h;
    exp_scrape *sc; /* NULL for HEAD */
    int slot;       /* holds a scrape slot (GET), given back when the response is freed */
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

/* The response's free callback: MHD calls it once the response is done with (sent, or the
 * connection closed), from a worker thread holding no lock of MHD's. Cannot fail. */
static void scrape_free(void *cls) {
    scrape_job *job = cls;
    if (job->sc)
        exp_scrape_end(job->sc);
    exp_http *h = job->h;
    int slot = job->slot;
    free(job);
    if (slot)
        gate_leave(h); /* after the frees, so the trim sees them */
}

static enum MHD_Result serve_metrics(exp_http *h, struct MHD_Connection *c, req_ctx *ctx,
                                     int head) {
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    const char *ae =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    exp_format fmt = exp_negotiate(accept);
    int gzip = exp_accepts_gzip(ae);

    /* HEAD renders nothing, so it takes no slot. */
    if (!head) {
        switch (gate_enter(h, ctx)) {
        case GATE_WAIT:
            return MHD_YES; /* suspended; called again when resumed */
        case GATE_FULL:
            return reply_text(c, ctx, MHD_HTTP_SERVICE_UNAVAILABLE,
                              "too many concurrent scrapes, try again\n", NULL);
        case GATE_OK:
            break;
        }
    }
    scrape_job *job = calloc(1, sizeof *job);
    if (!job) {
        if (!head)
            gate_leave(h);
        return reply_text(c, ctx, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    }
    job->h = h;
    job->slot = !head;
    clock_gettime(CLOCK_MONOTONIC, &job->t0);
    if (!head) {
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    (void)upload_data;
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
        set_phase(h, ctx->ent, CP_BODY);
        ctx->r = route_of(h, url);
        if (bad_target(ctx, url, version)) {
            ctx->r = R_OTHER;
            return reply_bad_request(c, ctx, "invalid request target\n");
        }
        if (ambiguous_framing(c))
            return reply_bad_request(c, ctx, "ambiguous request body length\n");
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
    /* The request is complete: it is answered now (or waits for a scrape slot). */
    set_phase(h, ctx->ent, CP_BUSY);
    enum MHD_Result ret = answer(h, c, ctx, method);
    /* A response was queued (not suspended at the gate): write_timeout runs from now. */
    if (ctx->code)
        set_phase(h, ctx->ent, CP_SENDING);
    return ret;
}

/* The final handler call of a complete request: queues its response, or suspends it at the
 * scrape gate (MHD_YES, no response). MHD_NO when out of memory. */
static enum MHD_Result answer(exp_http *h, struct MHD_Connection *c, req_ctx *ctx,
                              const char *method) {
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
    gate_forget(h, ctx);
    /* Kept alive, the connection now waits for its next request. */
    set_phase(h, ctx->ent, CP_IDLE);
    if (ctx->code)
        exp_self_http_request(h->self, route_name(h, ctx->r), ctx->code);
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
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->wd_cv);
    free(h->telemetry_path);
    free(h);
}

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
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the clock of now_ms */
    pthread_cond_init(&h->wd_cv, &ca);
    pthread_condattr_destroy(&ca);
    h->conns.prev = h->conns.next = &h->conns;
    h->wait_tail = &h->wait_head;

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
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, /* first */
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)POOL_THREADS, MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_LIMIT,
        maxconn + EVICT_SLACK, MHD_OPTION_PER_IP_CONNECTION_LIMIT, perip,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot start the HTTP server on %s", h->address);
        close(h->listen_fd);
        http_free(h);
        return NULL;
    }
    int rc = pthread_create(&h->wd, NULL, watchdog, h);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the HTTP watchdog thread: %s", strerror(rc));
        MHD_stop_daemon(h->d); /* nothing suspended yet: no scrape has run */
        http_free(h);
        return NULL;
    }
    h->wd_running = 1;
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
        gate_resume(h, &h->wait_head, G_REFUSED);
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
    while ((left = atomic_load(&h->in_flight)) > 0 && since(&t0) * 1000.0 < drain_ms)
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
