/* guard.c - every connection tracked from accept to close: the request deadline (headers and
 * body), the write deadline (a response still being sent), eviction when every slot is taken,
 * and the watchdog thread that enforces them.
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
void exp_http_wd_poke(exp_http *h, uint64_t deadline) {
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
void exp_http_set_phase(exp_http *h, conn_ent *e, conn_phase p) {
    if (!e)
        return;
    pthread_mutex_lock(&h->mu);
    if (e->phase != p) {
        /* A body's deadline is the request's: it keeps the start of the headers. */
        if (p != CP_BODY)
            e->since = now_ms();
        e->phase = p;
        exp_http_wd_poke(h, deadline_of(h, e));
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
void exp_http_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
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
        exp_tls_on_closed(e);
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
    if (h->tls)
        exp_tls_on_started(h->tls, c, e);
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
    exp_http_wd_poke(h, deadline_of(h, e));
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
void *exp_http_on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
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
            exp_http_wd_poke(h, deadline_of(h, ctx->ent));
        }
        pthread_mutex_unlock(&h->mu);
    }
    return ctx;
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
void *exp_http_watchdog(void *arg) {
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
                exp_http_gate_resume(h, pp, G_REFUSED);
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
