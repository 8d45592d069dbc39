/* remote.c - remote write's lifecycle: the supervisor thread (configuration, collections,
 * self-metrics), a sender thread per receiver, and reloads that keep queues.
 *
 * Ordering. A receiver's queue is FIFO and has one sender, which removes a batch only after it
 * was delivered or given up, so samples of one series leave in the order they were collected;
 * collections are strictly later than the one before (one supervisor), so every series'
 * timestamps increase.
 *
 * Staleness. Each receiver remembers the series it sent in its last collection; one that is
 * not in the next (expired by its TTL, deleted, a pushed group gone, relabeled away) gets the
 * staleness marker at that collection's timestamp, so queries stop showing it at once.
 *
 * Reload. Receivers are matched by name (or url when unnamed): an unchanged one keeps
 * everything; a changed one keeps its queue, series and thread and gets the new settings
 * (client, relabeling, bounds) from its next request; a removed one flushes until
 * EXP_REMOTE_FLUSH_DEADLINE_NS and stops; a new one starts.
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "famset.h"
#include "http/expfmt.h"
#include "log.h"
#include "remote/internal.h"
#include "remote/remote.h"

#define TICK_NS (250ull * 1000000ull) /* the supervisor's longest sleep: reload, metrics */

/* ---- self-metrics ------------------------------------------------------------------------- */

enum {
    M_SAMPLES,
    M_FAILED,
    M_RETRIED,
    M_DROPPED,
    M_BYTES,
    M_PENDING,
    M_CAPACITY,
    M_HIGHEST,
    M_LAST_SEND,
    M_COUNT
};

static const char *const l_receiver[] = {"remote_name", "url"};

#define DEF(n, h, t)                                                                               \
    { .name = n, .help = h, .type = t, .nlabels = 2, .labels = l_receiver, .flags = REG_FAMILY_OWN }

static const reg_family_def defs[M_COUNT] = {
    [M_SAMPLES] = DEF("abacus_remote_write_samples_total",
                      "Samples delivered to the remote write receiver (2xx answers).", REG_COUNTER),
    [M_FAILED] = DEF("abacus_remote_write_samples_failed_total",
                     "Samples the receiver refused with a non-retryable answer (4xx; 429 "
                     "without retry_on_http_429): dropped, not retried.",
                     REG_COUNTER),
    [M_RETRIED] = DEF("abacus_remote_write_samples_retried_total",
                      "Samples of requests that failed in a retryable way (5xx, 429 with "
                      "retry_on_http_429, connection errors, remote_timeout) and were sent again.",
                      REG_COUNTER),
    [M_DROPPED] = DEF("abacus_remote_write_samples_dropped_total",
                      "Samples never sent: refused by a full queue (queue_config.capacity), or "
                      "still queued when the flush deadline of a shutdown or removal passed.",
                      REG_COUNTER),
    [M_BYTES] = DEF("abacus_remote_write_bytes_total",
                    "Compressed request bytes delivered to the receiver.", REG_COUNTER),
    [M_PENDING] =
        DEF("abacus_remote_write_samples_pending", "Samples queued for the receiver.", REG_GAUGE),
    [M_CAPACITY] = DEF("abacus_remote_write_queue_capacity",
                       "Samples the receiver's queue holds at most.", REG_GAUGE),
    [M_HIGHEST] = DEF("abacus_remote_write_highest_sent_timestamp_seconds",
                      "Highest sample timestamp delivered to the receiver.", REG_GAUGE),
    [M_LAST_SEND] = DEF("abacus_remote_write_last_send_timestamp_seconds",
                        "Unix time of the last successful request to the receiver.", REG_GAUGE),
};

/* ---- settings: one receiver's configuration, immutable, shared with its sender ------------ */

typedef struct {
    _Atomic unsigned refs;
    exp_config *snap;          /* held: w points into it */
    const cfg_remote_write *w; /* the entry */
    rw_relabeler *relabel;     /* used by the supervisor only */
    char instance[300];        /* the default instance label: host:port of the listener */
} rw_settings;

/* Drop a reference; the last frees. NULL is a no-op. Cannot fail. */
static void settings_unref(rw_settings *s) {
    /* acq_rel: the last holder frees after every other holder's use (they release). */
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        rw_relabeler_free(s->relabel);
        exp_config_release(s->snap);
        free(s);
    }
}

/* One more reference, under the queue mutex. Cannot fail. */
static rw_settings *settings_ref(rw_settings *s) {
    /* Relaxed: taken under the queue mutex from the receiver's reference, which cannot go
     * meanwhile (the swap happens under that mutex). */
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

/* The default instance: this host's name and the listener's port. Cannot fail. */
static void default_instance(const cfg_config *c, char *out, size_t cap) {
    char host[256] = "localhost", h[256];
    unsigned port = 9102;
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    if (c->server.listen_address)
        cfg_parse_address(c->server.listen_address, h, sizeof h, &port, NULL, 0);
    snprintf(out, cap, "%s:%u", host, port);
}

/* Settings for entry i of snap (a reference is taken). NULL with a reason in err. */
static rw_settings *settings_make(exp_config *snap, size_t i, char *err, size_t errlen) {
    rw_settings *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->w = &snap->cfg->remote_write[i];
    s->relabel = rw_relabeler_create(s->w->relabel, s->w->nrelabel, err, errlen);
    if (!s->relabel) {
        free(s);
        return NULL;
    }
    s->snap = exp_config_ref(snap);
    default_instance(snap->cfg, s->instance, sizeof s->instance);
    atomic_init(&s->refs, 1);
    return s;
}

/* ---- receivers ------------------------------------------------------------------------------- */

typedef struct receiver receiver;
struct receiver {
    exp_remote *rm;
    pthread_t thread;
    rw_queue q;            /* q.mu also guards settings, stopping and deadline */
    rw_settings *settings; /* under q.mu; the supervisor reads its own without it */
    int stopping;
    uint64_t deadline_ns; /* with stopping: give up on what is queued at this time */
    /* The supervisor's alone. */
    char remote_name[64], *url; /* self-metric labels */
    rw_series_set set;          /* the series of the last collection */
    uint64_t next_due_ns;
    uint64_t published[M_COUNT];
    /* Counters the sender (and the supervisor, for dropped) add to; the supervisor publishes
     * them. Relaxed: each is a statistic read on its own. */
    _Atomic uint64_t sent, failed, retried, dropped, bytes;
    _Atomic int64_t highest_ms, last_send_ms;
    receiver *next;
};

struct exp_remote {
    reg_registry *reg;
    exp_state *st;
    exp_self *self;
    reg_thread *t; /* the supervisor's */
    exp_famset fams;
    pthread_t thread;
    pthread_mutex_t mu; /* guards stopping; with cv, the supervisor's timed wait */
    pthread_cond_t cv;
    int stopping;
    uint64_t generation;
    receiver *receivers; /* the supervisor's alone */
    uint64_t seed;       /* jitter */
};

/* Nanoseconds of clock clk. Cannot fail. */
static uint64_t now_ns(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ns as a timespec for pthread_cond_timedwait (CLOCK_MONOTONIC). Cannot fail. */
static struct timespec abs_time(uint64_t ns) {
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000ull),
                             .tv_nsec = (long)(ns % 1000000000ull)};
}

/* The remote_name label: the entry's name, else a short hash of its url (stable across
 * reloads that change other settings, as the queue is). Cannot fail. */
static void remote_name(const cfg_remote_write *w, char *out, size_t cap) {
    if (w->name) {
        snprintf(out, cap, "%s", w->name);
        return;
    }
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: the same in every run */
    for (const char *p = w->url; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    snprintf(out, cap, "%06llx", (unsigned long long)(h & 0xffffff));
}

/* ---- sending (the receiver's thread) --------------------------------------------------------- */

/* Under q.mu: wait until a batch is due (full, or its oldest sample waited
 * batch_send_deadline), or stopping. Returns 0 to send, -1 to stop. */
static int wait_for_batch(receiver *x) {
    for (;;) {
        const cfg_remote_write *w = x->settings->w;
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        if (x->stopping && (x->q.len == 0 || now >= x->deadline_ns))
            return -1;
        if (x->q.len >= w->max_samples_per_send || (x->q.len && x->stopping) ||
            (x->q.len && now >= x->q.first_pushed_ns + w->batch_send_deadline_ns))
            return 0;
        uint64_t until = x->stopping ? x->deadline_ns
                         : x->q.len  ? x->q.first_pushed_ns + w->batch_send_deadline_ns
                                     : now + TICK_NS * 4;
        struct timespec ts = abs_time(until);
        pthread_cond_timedwait(&x->q.cv, &x->q.mu, &ts);
    }
}

/* Under q.mu: sleep for a retry's backoff, shorter when stopping. 0 to retry, -1 when the
 * flush deadline passed. */
static int backoff(receiver *x, unsigned attempt) {
    const cfg_remote_write *w = x->settings->w;
    uint64_t rnd =
        x->rm->seed ^ ((uint64_t)attempt * 0x9e3779b97f4a7c15ull) ^ now_ns(CLOCK_MONOTONIC);
    uint64_t until = now_ns(CLOCK_MONOTONIC) + rw_backoff_ns(w->min_backoff_ns, w->max_backoff_ns,
                                                             attempt, rnd * 0xff51afd7ed558ccdull);
    for (;;) {
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        if (x->stopping && now >= x->deadline_ns)
            return -1;
        if (now >= until)
            return 0;
        uint64_t wake = x->stopping && x->deadline_ns < until ? x->deadline_ns : until;
        struct timespec ts = abs_time(wake);
        pthread_cond_timedwait(&x->q.cv, &x->q.mu, &ts);
    }
}

/* Records a delivered batch. Cannot fail. */
static void count_sent(receiver *x, const rw_sample *b, size_t n, long bytes) {
    assert(b != NULL || n == 0);
    int64_t hi = atomic_load_explicit(&x->highest_ms, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        if (b[i].timestamp_ms > hi)
            hi = b[i].timestamp_ms;
    atomic_store_explicit(&x->highest_ms, hi, memory_order_relaxed);
    atomic_store_explicit(&x->last_send_ms, (int64_t)(now_ns(CLOCK_REALTIME) / 1000000),
                          memory_order_relaxed);
    atomic_fetch_add_explicit(&x->sent, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&x->bytes, (uint64_t)bytes, memory_order_relaxed);
}

/* One batch until delivered, refused or given up. Called and returns under q.mu (released
 * while sending). Returns 1 when the batch is done with (pop it), 0 when the flush deadline
 * passed first. */
static int send_batch(receiver *x, rw_client *c, rw_encoder *e, rw_sample *b, size_t n) {
    static exp_log_limit lim;
    const char *body;
    long len = rw_encode(e, b, n, &body, NULL);
    for (unsigned attempt = 0;; attempt++) {
        rw_settings *s = settings_ref(x->settings);
        cfg_remote_write w = *s->w; /* a copy: the timeout may be cut at shutdown */
        if (x->stopping) {
            uint64_t now = now_ns(CLOCK_MONOTONIC),
                     left = x->deadline_ns > now ? x->deadline_ns - now : 1000000;
            if (left < w.remote_timeout_ns)
                w.remote_timeout_ns = left;
        }
        pthread_mutex_unlock(&x->q.mu);
        unsigned status = 0;
        char why[512] = "out of memory";
        rw_outcome o =
            len < 0 ? RW_RETRY : rw_client_send(c, &w, body, (size_t)len, &status, why, sizeof why);
        if (o == RW_SENT)
            count_sent(x, b, n, len);
        else if (o == RW_REJECTED)
            atomic_fetch_add_explicit(&x->failed, n, memory_order_relaxed);
        else
            atomic_fetch_add_explicit(&x->retried, n, memory_order_relaxed);
        if (o != RW_SENT) {
            char cnt[24];
            snprintf(cnt, sizeof cnt, "%zu", n);
            exp_log_limited(&lim, 10, EXP_LOG_WARN,
                            o == RW_REJECTED ? "remote write refused: samples dropped"
                                             : "remote write failed: will retry",
                            "remote_name", x->remote_name, "url", w.url, "samples", cnt, "err", why,
                            NULL);
        }
        pthread_mutex_lock(&x->q.mu);
        settings_unref(s);
        if (o != RW_RETRY)
            return 1;
        if (backoff(x, attempt) != 0)
            return 0;
        if (len < 0)
            len = rw_encode(e, b, n, &body, NULL);
    }
}

/* The sender thread: batches from the queue's head until stopped and flushed. Returns NULL;
 * cannot fail (out of memory ends it early and what is queued is counted as dropped). */
static void *sender_main(void *arg) {
    receiver *x = arg;
    rw_client *c = rw_client_create();
    rw_encoder e = {0};
    rw_sample *b = NULL;
    size_t bcap = 0;
    pthread_mutex_lock(&x->q.mu);
    while (c && wait_for_batch(x) == 0) {
        size_t want = x->settings->w->max_samples_per_send;
        if (want > bcap) {
            rw_sample *nb = realloc(b, want * sizeof *nb);
            if (!nb)
                break;
            b = nb;
            bcap = want;
        }
        size_t n = rw_queue_peek_locked(&x->q, b, want);
        if (!send_batch(x, c, &e, b, n))
            break;
        rw_queue_pop_locked(&x->q, n, now_ns(CLOCK_MONOTONIC));
    }
    /* Stopped (or out of memory): what is left was never sent. */
    atomic_fetch_add_explicit(&x->dropped, x->q.len, memory_order_relaxed);
    rw_queue_pop_locked(&x->q, x->q.len, 0);
    pthread_mutex_unlock(&x->q.mu);
    free(b);
    rw_encoder_free(&e);
    rw_client_free(c);
    return NULL;
}

/* ---- collecting into a receiver's queue (the supervisor) ----------------------------------- */

/* Turn a collection into x's samples and queue them. Cannot fail: what cannot be queued (full,
 * out of memory) is counted as dropped. */
static void feed(receiver *x, const rw_collection *c, int64_t ts) {
    const rw_settings *s = x->settings;
    rw_rules rules = {s->relabel, s->w->external_labels, s->w->nexternal, s->instance};
    size_t lost = 0, n = rw_series_set_feed(&x->set, c, &rules, ts, &lost);
    pthread_mutex_lock(&x->q.mu);
    lost += rw_queue_push_locked(&x->q, x->set.batch, n, now_ns(CLOCK_MONOTONIC));
    /* Wakes the sender: pairs with its timed wait in wait_for_batch. */
    pthread_cond_signal(&x->q.cv);
    pthread_mutex_unlock(&x->q.mu);
    if (lost)
        atomic_fetch_add_explicit(&x->dropped, lost, memory_order_relaxed);
}

/* ---- self-metrics publishing ---------------------------------------------------------------- */

/* Apply one update to family i for x (relinked once when a reload removed it). Inside the
 * supervisor's section. Cannot fail: a self-metric that cannot be updated keeps its value. */
static void metric(exp_remote *rm, receiver *x, int i, double v) {
    const char *values[] = {x->remote_name, x->url};
    for (int attempt = 0; attempt < 2; attempt++) {
        reg_family *f = exp_famset_get(&rm->fams, i);
        int rc = defs[i].type == REG_COUNTER ? reg_counter_add(rm->t, f, values, v)
                                             : reg_gauge_set(rm->t, f, values, v);
        if (rc != REG_EGONE || exp_famset_relink(&rm->fams, rm->t, i, f) != REG_OK)
            break;
    }
}

/* Publish x's figures. Cannot fail. */
static void publish(exp_remote *rm, receiver *x) {
    uint64_t now[M_COUNT] = {
        [M_SAMPLES] = atomic_load_explicit(&x->sent, memory_order_relaxed),
        [M_FAILED] = atomic_load_explicit(&x->failed, memory_order_relaxed),
        [M_RETRIED] = atomic_load_explicit(&x->retried, memory_order_relaxed),
        [M_DROPPED] = atomic_load_explicit(&x->dropped, memory_order_relaxed),
        [M_BYTES] = atomic_load_explicit(&x->bytes, memory_order_relaxed),
    };
    pthread_mutex_lock(&x->q.mu);
    double pending = (double)x->q.len, capacity = (double)x->q.capacity;
    pthread_mutex_unlock(&x->q.mu);
    reg_begin(rm->t);
    for (int i = M_SAMPLES; i <= M_BYTES; i++) {
        metric(rm, x, i, (double)(now[i] - x->published[i]));
        x->published[i] = now[i];
    }
    metric(rm, x, M_PENDING, pending);
    metric(rm, x, M_CAPACITY, capacity);
    metric(rm, x, M_HIGHEST,
           (double)atomic_load_explicit(&x->highest_ms, memory_order_relaxed) / 1000.0);
    metric(rm, x, M_LAST_SEND,
           (double)atomic_load_explicit(&x->last_send_ms, memory_order_relaxed) / 1000.0);
    reg_end(rm->t);
}

/* Remove x's self-metric series (a removed receiver, or one whose labels change). Not inside
 * a section. Cannot fail. */
static void unpublish(exp_remote *rm, receiver *x) {
    const char *values[] = {x->remote_name, x->url};
    for (int i = 0; i < M_COUNT; i++) {
        reg_family *f = exp_famset_get(&rm->fams, i);
        if (f)
            reg_series_delete(rm->reg, f, values);
    }
}

/* ---- receivers: start, reconfigure, stop ----------------------------------------------------- */

/* Stop x's sender (flushing until deadline_ns from now), publish its last figures, remove
 * them, free x. Cannot fail. */
static void receiver_stop(exp_remote *rm, receiver *x, uint64_t deadline_ns) {
    pthread_mutex_lock(&x->q.mu);
    x->stopping = 1;
    x->deadline_ns = now_ns(CLOCK_MONOTONIC) + deadline_ns;
    /* Wakes the sender: pairs with its timed waits (batch, backoff). */
    pthread_cond_signal(&x->q.cv);
    pthread_mutex_unlock(&x->q.mu);
    pthread_join(x->thread, NULL);
    publish(rm, x);
    unpublish(rm, x);
    rw_series_set_free(&x->set);
    rw_queue_destroy(&x->q);
    settings_unref(x->settings);
    free(x->url);
    free(x);
}

/* libcurl's process-wide initialisation (pthread_once). A failure shows at the first request. */
static void curl_setup(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* A started receiver for entry i of snap. NULL with the reason logged. */
static receiver *receiver_start(exp_remote *rm, exp_config *snap, size_t i) {
    static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
    /* libcurl's global set-up (TLS libraries included), once, before the first handle: only a
     * process that has receivers pays its memory. */
    pthread_once(&curl_once, curl_setup);
    char err[256] = "out of memory";
    receiver *x = calloc(1, sizeof *x);
    const cfg_remote_write *w = &snap->cfg->remote_write[i];
    if (x && !(x->settings = settings_make(snap, i, err, sizeof err))) {
        free(x);
        x = NULL;
    }
    if (x && (rw_series_set_init(&x->set) != 0 || !(x->url = strdup(w->url)) ||
              rw_queue_init(&x->q, w->capacity) != 0)) {
        rw_series_set_free(&x->set);
        settings_unref(x->settings);
        free(x->url);
        free(x);
        x = NULL;
    }
    if (!x) {
        exp_log(EXP_LOG_ERROR, "cannot start remote write", "url", w->url, "err", err, NULL);
        return NULL;
    }
    x->rm = rm;
    remote_name(w, x->remote_name, sizeof x->remote_name);
    x->next_due_ns = now_ns(CLOCK_MONOTONIC);
    if (pthread_create(&x->thread, NULL, sender_main, x) != 0) {
        exp_log(EXP_LOG_ERROR, "cannot start remote write", "url", w->url, "err",
                "cannot create a thread", NULL);
        rw_queue_destroy(&x->q);
        rw_series_set_free(&x->set);
        settings_unref(x->settings);
        free(x->url);
        free(x);
        return NULL;
    }
    exp_log(EXP_LOG_INFO, "remote write started", "remote_name", x->remote_name, "url", w->url,
            NULL);
    publish(rm, x);
    return x;
}

/* Give x the settings of entry i of snap, keeping its queue, series and thread. Cannot fail (a
 * failure keeps the old settings, logged). */
static void receiver_update(exp_remote *rm, receiver *x, exp_config *snap, size_t i) {
    char err[256];
    const cfg_remote_write *w = &snap->cfg->remote_write[i];
    if (cfg_remote_write_equal(x->settings->w, w)) {
        rw_settings *s = settings_make(snap, i, err, sizeof err); /* same values, new snapshot */
        if (!s)
            return;
        pthread_mutex_lock(&x->q.mu);
        rw_settings *old = x->settings;
        x->settings = s;
        pthread_mutex_unlock(&x->q.mu);
        settings_unref(old);
        return;
    }
    rw_settings *s = settings_make(snap, i, err, sizeof err);
    char *url = strdup(w->url);
    if (!s || !url) {
        exp_log(EXP_LOG_ERROR, "remote write keeps its old settings", "url", w->url, "err", err,
                NULL);
        settings_unref(s);
        free(url);
        return;
    }
    char name[64];
    remote_name(w, name, sizeof name);
    if (strcmp(name, x->remote_name) || strcmp(url, x->url)) {
        publish(rm, x); /* the old labels' figures go; the counters start afresh */
        unpublish(rm, x);
        memset(x->published, 0, sizeof x->published);
        atomic_store(&x->sent, 0);
        atomic_store(&x->failed, 0);
        atomic_store(&x->retried, 0);
        atomic_store(&x->dropped, 0);
        atomic_store(&x->bytes, 0);
        snprintf(x->remote_name, sizeof x->remote_name, "%s", name);
        free(x->url);
        x->url = url;
    } else {
        free(url);
    }
    if (x->settings->w->interval_ns != w->interval_ns)
        x->next_due_ns = now_ns(CLOCK_MONOTONIC);
    pthread_mutex_lock(&x->q.mu);
    rw_settings *old = x->settings;
    x->settings = s;
    x->q.capacity = w->capacity; /* a smaller bound refuses new samples until it drains */
    /* Wakes the sender for the new batch rules: pairs with its timed waits. */
    pthread_cond_signal(&x->q.cv);
    pthread_mutex_unlock(&x->q.mu);
    settings_unref(old);
    publish(rm, x); /* under the new labels when they changed, before the log line says so */
    exp_log(EXP_LOG_INFO, "remote write reconfigured", "remote_name", x->remote_name, "url", w->url,
            NULL);
}

/* Make the receivers match the current configuration. 0, or -1 when out of memory (nothing
 * changed: the caller tries again). */
static int reconcile(exp_remote *rm) {
    exp_config *snap = exp_state_acquire(rm->st);
    const cfg_config *c = snap->cfg;
    receiver *keep = NULL, **tail = &keep;
    char *taken = calloc(c->nremote_write ? c->nremote_write : 1, 1);
    if (!taken) {
        exp_config_release(snap);
        return -1;
    }
    for (receiver *x = rm->receivers, *next; x; x = next) {
        next = x->next;
        size_t i = 0;
        while (i < c->nremote_write &&
               !cfg_remote_write_same_receiver(x->settings->w, &c->remote_write[i]))
            i++;
        if (i == c->nremote_write || taken[i]) {
            exp_log(EXP_LOG_INFO, "remote write removed", "remote_name", x->remote_name, NULL);
            receiver_stop(rm, x, EXP_REMOTE_FLUSH_DEADLINE_NS);
            continue;
        }
        taken[i] = 1;
        receiver_update(rm, x, snap, i);
        x->next = NULL;
        *tail = x;
        tail = &x->next;
    }
    for (size_t i = 0; i < c->nremote_write; i++) {
        receiver *x = taken[i] ? NULL : receiver_start(rm, snap, i);
        if (x) {
            *tail = x;
            tail = &x->next;
        }
    }
    rm->receivers = keep;
    free(taken);
    exp_config_release(snap);
    return 0;
}

/* ---- the supervisor ----------------------------------------------------------------------------
 */

/* Collect once and feed every receiver that is due. Cannot fail (a failed collection is logged
 * and tried again at the next tick). */
static void collect_due(exp_remote *rm, uint64_t now) {
    static exp_log_limit lim;
    int due = 0;
    for (receiver *x = rm->receivers; x; x = x->next)
        due |= x->next_due_ns <= now;
    if (!due)
        return;
    /* As a scrape starts: self-metrics current, the family set not mid-reload. */
    exp_state_view_begin(rm->st);
    if (rm->self)
        exp_self_refresh(rm->self);
    exp_scrape *s = exp_scrape_begin(rm->reg, EXP_FMT_TEXT, 0);
    exp_state_view_end(rm->st);
    rw_collection c;
    char err[256] = "out of memory";
    if (!s || rw_collect(s, &c, err, sizeof err) != 0) {
        exp_log_limited(&lim, 10, EXP_LOG_ERROR, "remote write cannot collect", "err", err, NULL);
        return;
    }
    int64_t ts = (int64_t)(now_ns(CLOCK_REALTIME) / 1000000);
    for (receiver *x = rm->receivers; x; x = x->next) {
        if (x->next_due_ns > now)
            continue;
        feed(x, &c, ts);
        uint64_t iv = x->settings->w->interval_ns;
        x->next_due_ns += iv;
        if (x->next_due_ns <= now) /* fell behind (a slow collection): no burst to catch up */
            x->next_due_ns = now + iv;
    }
    rw_collection_free(&c);
}

/* The wake-up time: the next due collection, at most a tick away. Cannot fail. */
static uint64_t next_wake(const exp_remote *rm, uint64_t now) {
    uint64_t wake = now + TICK_NS;
    for (const receiver *x = rm->receivers; x; x = x->next)
        if (x->next_due_ns < wake)
            wake = x->next_due_ns;
    return wake;
}

/* The supervisor thread: reloads, collections, self-metrics, until exp_remote_stop. Returns
 * NULL; cannot fail. */
static void *supervisor_main(void *arg) {
    exp_remote *rm = arg;
    pthread_mutex_lock(&rm->mu);
    while (!rm->stopping) {
        pthread_mutex_unlock(&rm->mu);
        uint64_t gen = exp_state_generation(rm->st);
        if (gen != rm->generation && reconcile(rm) == 0)
            rm->generation = gen;
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        collect_due(rm, now);
        for (receiver *x = rm->receivers; x; x = x->next)
            publish(rm, x);
        struct timespec ts = abs_time(next_wake(rm, now_ns(CLOCK_MONOTONIC)));
        pthread_mutex_lock(&rm->mu);
        if (!rm->stopping)
            pthread_cond_timedwait(&rm->cv, &rm->mu, &ts);
    }
    pthread_mutex_unlock(&rm->mu);
    return NULL;
}

/* ---- public ---------------------------------------------------------------------------------- */

/* Cannot fail. */
static void remote_free(exp_remote *rm) {
    exp_famset_destroy(&rm->fams);
    if (rm->t)
        reg_thread_detach(rm->t);
    pthread_mutex_destroy(&rm->mu);
    pthread_cond_destroy(&rm->cv);
    free(rm);
}

/* NULL with a reason in err. */
exp_remote *exp_remote_start(reg_registry *r, exp_state *st, exp_self *self, char *err,
                             size_t errlen) {
    exp_remote *rm = calloc(1, sizeof *rm);
    if (!rm) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rm->reg = r;
    rm->st = st;
    rm->self = self;
    exp_famset_init(&rm->fams, r, defs, M_COUNT);
    pthread_mutex_init(&rm->mu, NULL);
    if (rw_cond_init_monotonic(&rm->cv) != 0) {
        snprintf(err, errlen, "cannot make a condition variable");
        pthread_mutex_destroy(&rm->mu);
        exp_famset_destroy(&rm->fams);
        free(rm);
        return NULL;
    }
    if (getrandom(&rm->seed, sizeof rm->seed, 0) != sizeof rm->seed)
        rm->seed = now_ns(CLOCK_REALTIME);
    if (!(rm->t = reg_thread_attach(r))) {
        snprintf(err, errlen, "out of memory");
        remote_free(rm);
        return NULL;
    }
    reg_begin(rm->t);
    int rc = exp_famset_link_all(&rm->fams, rm->t, err, errlen);
    reg_end(rm->t);
    if (rc != REG_OK) {
        remote_free(rm);
        return NULL;
    }
    if (pthread_create(&rm->thread, NULL, supervisor_main, rm) != 0) {
        snprintf(err, errlen, "cannot create the remote write thread");
        remote_free(rm);
        return NULL;
    }
    return rm;
}

/* Cannot fail. */
void exp_remote_stop(exp_remote *rm, uint64_t deadline_ns) {
    if (!rm)
        return;
    pthread_mutex_lock(&rm->mu);
    rm->stopping = 1;
    /* Wakes the supervisor: pairs with its timed wait. */
    pthread_cond_signal(&rm->cv);
    pthread_mutex_unlock(&rm->mu);
    pthread_join(rm->thread, NULL);
    /* Every sender flushes at once, each until the same deadline. */
    uint64_t until = now_ns(CLOCK_MONOTONIC) + deadline_ns;
    for (receiver *x = rm->receivers; x; x = x->next) {
        pthread_mutex_lock(&x->q.mu);
        x->stopping = 1;
        x->deadline_ns = until;
        pthread_cond_signal(&x->q.cv);
        pthread_mutex_unlock(&x->q.mu);
    }
    for (receiver *x = rm->receivers, *next; x; x = next) {
        next = x->next;
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        receiver_stop(rm, x, until > now ? until - now : 0);
    }
    remote_free(rm);
}
