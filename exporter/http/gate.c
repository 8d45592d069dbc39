/* gate.c - the bound on concurrent scrapes: a slot per rendering scrape, a FIFO of suspended
 * waiters, 503 when a wait runs out.
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

/* ---- the scrape gate ------------------------------------------------------------------------
 *
 * At most max_scrapes scrapes render at once, so the memory scrapes hold is bounded by a
 * few render buffers, not by the number of clients. A scrape that finds every slot taken is
 * suspended (MHD_suspend_connection) in a FIFO; a finishing scrape hands its slot to the
 * oldest waiter and resumes it; the watchdog resumes a waiter whose wait ran out, and it
 * answers 503. Suspension and resumption both happen under mu, so a connection is never
 * resumed before it was suspended (undefined in MHD).
 */

/* Take a scrape slot for the request (GATE_OK: the caller owns one and gives it back with
 * exp_http_gate_leave), or suspend it until one is free (GATE_WAIT: return MHD_YES; the handler
 * runs again when resumed), or neither (GATE_FULL: answer 503). Called from the handler. */
gate_result exp_http_gate_enter(exp_http *h, req_ctx *ctx) {
    gate_result r;
    pthread_mutex_lock(&h->mu);
    if (ctx->gate == G_GRANTED) {
        r = GATE_OK; /* the slot came with the grant */
        ctx->slot = 0;
    } else if (ctx->gate == G_REFUSED) { // NOLINT(bugprone-branch-clone): a reason of its own
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
        exp_http_wd_poke(h, ctx->wait_until);
        r = GATE_WAIT;
    }
    ctx->gate = r == GATE_WAIT ? G_WAITING : G_NONE;
    pthread_mutex_unlock(&h->mu);
    if (r == GATE_WAIT)
        exp_self_scrape_queued(h->self);
    return r;
}

/* Unlink the waiter at *pp and resume it with the given outcome. Under mu. */
void exp_http_gate_resume(exp_http *h, req_ctx **pp, gate_state outcome) {
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
void exp_http_gate_leave(exp_http *h) {
    pthread_mutex_lock(&h->mu);
    if (h->wait_head)
        exp_http_gate_resume(h, &h->wait_head, G_GRANTED);
    else
        h->scrapes--;
    int none = h->scrapes == 0;
    pthread_mutex_unlock(&h->mu);
    if (none)
        malloc_trim(0);
}

/* On completion: a request still at the gate leaves it (a waiter is only completed after a
 * resume, but stay safe) and a slot granted but never taken over goes back. Cannot fail. */
void exp_http_gate_forget(exp_http *h, req_ctx *ctx) {
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
        exp_http_gate_leave(h);
}
