/* selfmetrics.c - abacus's own metrics and the standard process_* metrics, kept as ordinary
 * registry families so they render through the exposition code like everything else.
 *
 * Event counters (HTTP requests, scrape durations, reloads) are updated when the event
 * happens; derived figures (process_*, series per family) are refreshed before each scrape.
 * process_* follow client_golang's process collector: /proc/self/stat for CPU time, memory
 * and start time, /proc/self/fd for open descriptors, the rlimits for the maxima.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "selfmetrics.h"
#include "version.h"
#include "famset.h"
#include "log.h"

enum {
    F_BUILD_INFO,
    F_SERIES,
    F_REFUSED,
    F_SCRAPE_DURATION,
    F_HTTP_REQUESTS,
    F_HTTP_CLOSED,
    F_HTTP_CONNS,
    F_SCRAPES_QUEUED,
    F_RELOAD_OK,
    F_RELOADS,
    F_RELOAD_TS,
    F_CONFIG_HASH,
    F_PUSH_REFUSED,
    F_PUSH_GROUPS,
    F_AUTH_FAILURES,
    F_TLS_ENABLED,
    F_AUTH_ENABLED,
    F_TLS_RELOADS,
    F_CPU,
    F_OPEN_FDS,
    F_MAX_FDS,
    F_VSIZE,
    F_VSIZE_MAX,
    F_RSS,
    F_START_TIME,
    F_COUNT
};

static const char *const l_build[] = {"version", "revision", "compiler"};
static const char *const l_family[] = {"family"};
static const char *const l_http[] = {"handler", "code"};
static const char *const l_reason[] = {"reason"};
/* Every reason exp_self_http_closed takes, exported from start so rate() sees the first one. */
static const char *const closed_reasons[] = {"request_timeout", "write_timeout", "evicted",
                                             "refused"};
/* Every reason exp_self_push_refused takes, exported from start. */
static const char *const push_reasons[] = {"invalid_path", "invalid_body", "invalid_ttl",
                                           "conflict",     "series_limit", "too_large",
                                           "busy",         "method",       "out_of_memory"};
static const char *const l_outcome[] = {"outcome"};
/* Both outcomes of a reload, exported from start like the reasons above. */
static const char *const reload_outcomes[] = {"success", "failure"};
/* Every reason exp_self_auth_failure takes (exp_auth_reason), exported from start. */
static const char *const auth_reasons[] = {"missing",        "malformed", "unknown_user",
                                           "wrong_password", "busy",      "error"};
static const double scrape_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    2.5,   5};

#define DEF(n, h, t)                                                                               \
    { .name = n, .help = h, .type = t }

static const reg_family_def defs[F_COUNT] = {
    [F_BUILD_INFO] = {.name = "abacus_build_info",
                      .help = "A metric with a constant '1' value labeled by version, revision "
                              "and compiler from which abacus was built.",
                      .type = REG_GAUGE,
                      .nlabels = 3,
                      .labels = l_build},
    [F_SERIES] = {.name = "abacus_series",
                  .help = "Live series in each metric family.",
                  .type = REG_GAUGE,
                  .nlabels = 1,
                  .labels = l_family},
    [F_REFUSED] = {.name = "abacus_series_refused_total",
                   .help = "New series refused because a series limit was reached, by family.",
                   .type = REG_COUNTER,
                   .nlabels = 1,
                   .labels = l_family},
    [F_SCRAPE_DURATION] = {.name = "abacus_scrape_duration_seconds",
                           .help = "Time taken to serve one scrape of the telemetry path, from "
                                   "the request until its last byte was produced.",
                           .type = REG_HISTOGRAM,
                           .nbuckets = sizeof scrape_buckets / sizeof scrape_buckets[0],
                           .buckets = scrape_buckets},
    [F_HTTP_REQUESTS] = {.name = "abacus_http_requests_total",
                         .help = "HTTP requests answered, by handler and status code.",
                         .type = REG_COUNTER,
                         .nlabels = 2,
                         .labels = l_http},
    [F_HTTP_CLOSED] = {.name = "abacus_http_connections_closed_total",
                       .help = "HTTP connections closed by abacus itself, by reason: "
                               "request_timeout (headers or body not complete in time), "
                               "write_timeout (response not sent in time), "
                               "evicted (made room at the connection cap), refused (at the "
                               "cap with nothing to evict).",
                       .type = REG_COUNTER,
                       .nlabels = 1,
                       .labels = l_reason},
    [F_HTTP_CONNS] = DEF("abacus_http_connections", "Open HTTP connections.", REG_GAUGE),
    [F_SCRAPES_QUEUED] = DEF("abacus_scrapes_queued_total",
                             "Scrapes that waited for a free scrape slot "
                             "(server.max_concurrent_scrapes).",
                             REG_COUNTER),
    [F_RELOAD_OK] = DEF("abacus_config_last_reload_successful",
                        "Whether the last configuration reload attempt was successful.", REG_GAUGE),
    [F_RELOADS] = {.name = "abacus_config_reloads_total",
                   .help = "Configuration reloads (SIGHUP, /-/reload), by outcome; the load at "
                           "start is not one.",
                   .type = REG_COUNTER,
                   .nlabels = 1,
                   .labels = l_outcome},
    [F_RELOAD_TS] = DEF("abacus_config_last_reload_success_timestamp_seconds",
                        "Timestamp of the last successful configuration reload.", REG_GAUGE),
    [F_CONFIG_HASH] = DEF("abacus_config_hash",
                          "Hash of the loaded configuration files (low 53 bits; 0 for the "
                          "built-in defaults).",
                          REG_GAUGE),
    [F_PUSH_REFUSED] = {.name = "abacus_push_refused_total",
                        .help = "Pushes refused, by reason: invalid_path, invalid_body (not the "
                                "text format, timestamps, a histogram without +Inf, a series "
                                "twice), invalid_ttl, conflict (a type, help or labels that "
                                "differ from the metric of that name), series_limit, too_large "
                                "(push.max_body_bytes), busy (push.max_buffered_bytes), method, "
                                "out_of_memory.",
                        .type = REG_COUNTER,
                        .nlabels = 1,
                        .labels = l_reason},
    [F_PUSH_GROUPS] =
        DEF("abacus_push_groups", "Pushed groups held (one per grouping key).", REG_GAUGE),
    [F_AUTH_FAILURES] = {.name = "abacus_http_auth_failures_total",
                         .help = "HTTP requests refused by basic auth (web config file), by "
                                 "reason: missing, malformed, unknown_user, wrong_password (all "
                                 "answered 401), busy (no bcrypt run free in time: 503), error.",
                         .type = REG_COUNTER,
                         .nlabels = 1,
                         .labels = l_reason},
    [F_TLS_ENABLED] = DEF("abacus_tls_enabled",
                          "Whether the HTTP server serves HTTPS (web config file).", REG_GAUGE),
    [F_AUTH_ENABLED] =
        DEF("abacus_auth_enabled", "Whether HTTP basic auth is on (web config file).", REG_GAUGE),
    [F_TLS_RELOADS] = {.name = "abacus_tls_certificate_reloads_total",
                       .help = "Reads of changed TLS certificate, key or CA files, by outcome; a "
                               "failure keeps the old certificate serving.",
                       .type = REG_COUNTER,
                       .nlabels = 1,
                       .labels = l_outcome},
    [F_CPU] = DEF("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                  REG_COUNTER),
    [F_OPEN_FDS] = DEF("process_open_fds", "Number of open file descriptors.", REG_GAUGE),
    [F_MAX_FDS] = DEF("process_max_fds", "Maximum number of open file descriptors.", REG_GAUGE),
    [F_VSIZE] = DEF("process_virtual_memory_bytes", "Virtual memory size in bytes.", REG_GAUGE),
    [F_VSIZE_MAX] = DEF("process_virtual_memory_max_bytes",
                        "Maximum amount of virtual memory available in bytes.", REG_GAUGE),
    [F_RSS] = DEF("process_resident_memory_bytes", "Resident memory size in bytes.", REG_GAUGE),
    [F_START_TIME] = DEF("process_start_time_seconds",
                         "Start time of the process since unix epoch in seconds.", REG_GAUGE),
};

_Static_assert(F_COUNT <= EXP_FAMSET_MAX, "too many self-metric families");

#define POOL_MAX 16

/* One family name and a figure read from a snapshot (refresh bookkeeping). */
typedef struct {
    char *name;
    double value;
} named_value;

typedef struct {
    named_value *items;
    size_t count, cap;
} nv_list;

struct exp_self {
    reg_registry *reg;
    exp_famset fams;

    pthread_mutex_t pool_mu; /* spare reader handles */
    reg_thread *pool[POOL_MAX];
    size_t npool;

    pthread_mutex_t refresh_mu; /* one refresh at a time; guards everything below */
    reg_thread *refresh_t;
    double cpu_reported; /* process_cpu_seconds_total is a counter: we add the difference */
    reg_family *cpu_family;
    reg_series **snap;
    size_t snap_cap;
    nv_list series_seen, refused_seen, stale, resets;
    atomic_int loaded_once; /* exp_self_config_loaded saw the load at start */
};

/* ---- handles and families ------------------------------------------------------------------ */

static reg_thread *take_thread(exp_self *s) {
    pthread_mutex_lock(&s->pool_mu);
    reg_thread *t = s->npool ? s->pool[--s->npool] : NULL;
    pthread_mutex_unlock(&s->pool_mu);
    return t ? t : reg_thread_attach(s->reg);
}

static void give_thread(exp_self *s, reg_thread *t) {
    pthread_mutex_lock(&s->pool_mu);
    if (s->npool < POOL_MAX) {
        s->pool[s->npool++] = t;
        t = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (t)
        reg_thread_detach(t);
}

/* After an update failed with REG_EGONE (a reload removed a family of the same name): register
 * ours again. Inside a section. Returns 0 when the caller should retry. */
static int relink(exp_self *s, reg_thread *t, int i, reg_family *gone) {
    static exp_log_limit lim;
    int rc = exp_famset_relink(&s->fams, t, i, gone);
    if (rc != REG_OK)
        exp_log_limited(&lim, 5, EXP_LOG_WARN, "cannot register self-metric", "family",
                        defs[i].name, "err", reg_strerror(rc), NULL);
    return rc == REG_OK ? 0 : -1;
}

typedef int (*update_fn)(reg_thread *, reg_family *, const char *const *, double);

/* Apply one update to family i, relinking once if it was removed. Inside a section. */
static int update(exp_self *s, reg_thread *t, int i, update_fn fn, const char *const *values,
                  double v) {
    for (int attempt = 0;; attempt++) {
        reg_family *f = exp_famset_get(&s->fams, i);
        int rc = fn(t, f, values, v);
        if (rc != REG_EGONE || attempt > 0 || relink(s, t, i, f) != 0)
            return rc;
    }
}

static int touch_fn(reg_thread *t, reg_family *f, const char *const *values, double v) {
    (void)v;
    return reg_touch(t, f, values);
}

/* ---- /proc ---------------------------------------------------------------------------------- */

typedef struct {
    double cpu_seconds, vsize, rss, start_time;
    int ok;
} proc_stat;

static double boot_time(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long v;
        if (sscanf(line, "btime %llu", &v) == 1) {
            bt = (double)v;
            break;
        }
    }
    fclose(f);
    return bt;
}

static void read_proc_stat(proc_stat *ps) {
    ps->ok = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return;
    unsigned long long utime, stime, starttime, vsize;
    long long rss;
    /* fields 3..24: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss */
    if (sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %llu %lld",
               &utime, &stime, &starttime, &vsize, &rss) != 5)
        return;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    ps->cpu_seconds = (double)(utime + stime) / (double)hz;
    ps->vsize = (double)vsize;
    ps->rss = (double)rss * (double)sysconf(_SC_PAGESIZE);
    ps->start_time = boot_time() + (double)starttime / (double)hz;
    ps->ok = 1;
}

static long count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static double rlimit_value(int resource, int *ok) {
    struct rlimit rl;
    *ok = getrlimit(resource, &rl) == 0;
    if (!*ok)
        return 0;
    /* An unlimited limit reads as the largest uint64, as /proc/self/limits parsing gives. */
    return rl.rlim_cur == RLIM_INFINITY ? 18446744073709551615.0 : (double)rl.rlim_cur;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

/* Returns the self-metrics, or NULL with a reason in err. */
#define NELEMS(a) (sizeof(a) / sizeof *(a))

/* Export one series per value of a one-label family. REG_OK or the first registry error. */
static int touch_all(exp_self *s, reg_thread *t, int fam, const char *const *values, size_t n) {
    int rc = REG_OK;
    for (size_t i = 0; rc == REG_OK && i < n; i++) {
        const char *v[] = {values[i]};
        rc = reg_touch(t, exp_famset_get(&s->fams, fam), v);
    }
    return rc;
}

exp_self *exp_self_create(reg_registry *r, char *err, size_t errlen) {
    exp_self *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->reg = r;
    atomic_init(&s->loaded_once, 0);
    exp_famset_init(&s->fams, r, defs, F_COUNT);
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_mutex_init(&s->refresh_mu, NULL);
    s->refresh_t = reg_thread_attach(r);
    if (!s->refresh_t) {
        snprintf(err, errlen, "out of memory");
        exp_self_destroy(s);
        return NULL;
    }
    reg_thread *t = s->refresh_t;
    reg_begin(t);
    int rc = exp_famset_link_all(&s->fams, t, err, errlen);
    if (rc == REG_OK) {
#ifdef __clang__
        const char *compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
        const char *compiler = "gcc " __VERSION__;
#else
        const char *compiler = "unknown";
#endif
        const char *bv[] = {ABACUS_VERSION, ABACUS_REVISION, compiler};
        const char *none[] = {NULL};
        rc = reg_gauge_set(t, exp_famset_get(&s->fams, F_BUILD_INFO), bv, 1);
        /* Like client libraries: every label-less metric is exported from the start. */
        for (int i = 0; rc == REG_OK && i < F_COUNT; i++)
            if (defs[i].nlabels == 0)
                rc = reg_touch(t, exp_famset_get(&s->fams, i), none);
        /* Every label value of the labelled counters, so rate() sees the first event. */
        const struct {
            int fam;
            const char *const *values;
            size_t n;
        } all[] = {{F_HTTP_CLOSED, closed_reasons, NELEMS(closed_reasons)},
                   {F_RELOADS, reload_outcomes, NELEMS(reload_outcomes)},
                   {F_TLS_RELOADS, reload_outcomes, NELEMS(reload_outcomes)},
                   {F_PUSH_REFUSED, push_reasons, NELEMS(push_reasons)},
                   {F_AUTH_FAILURES, auth_reasons, NELEMS(auth_reasons)}};
        for (size_t i = 0; rc == REG_OK && i < NELEMS(all); i++)
            rc = touch_all(s, t, all[i].fam, all[i].values, all[i].n);
        if (rc != REG_OK)
            snprintf(err, errlen, "initialising self-metrics: %s", reg_strerror(rc));
    }
    reg_end(t);
    if (rc != REG_OK) {
        exp_self_destroy(s);
        return NULL;
    }
    exp_self_refresh(s);
    return s;
}

static void nv_clear(nv_list *l) {
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].name);
    l->count = 0;
}

static void nv_free(nv_list *l) {
    nv_clear(l);
    free(l->items);
    l->items = NULL;
    l->cap = 0;
}

/* Cannot fail. */
void exp_self_destroy(exp_self *s) {
    if (!s)
        return;
    exp_famset_destroy(&s->fams);
    for (size_t i = 0; i < s->npool; i++)
        reg_thread_detach(s->pool[i]);
    if (s->refresh_t)
        reg_thread_detach(s->refresh_t);
    free(s->snap);
    nv_free(&s->series_seen);
    nv_free(&s->refused_seen);
    nv_free(&s->stale);
    nv_free(&s->resets);
    pthread_mutex_destroy(&s->pool_mu);
    pthread_mutex_destroy(&s->refresh_mu);
    free(s);
}

/* ---- events -------------------------------------------------------------------------------- */

/* A pooled handle inside a section for one event's updates; NULL when s is NULL or no
 * handle can be had (the event is then dropped). */
static reg_thread *event_begin(exp_self *s) {
    reg_thread *t = s ? take_thread(s) : NULL;
    if (t)
        reg_begin(t);
    return t;
}

static void event_end(exp_self *s, reg_thread *t) {
    reg_end(t);
    give_thread(s, t);
}

/* Cannot fail (an update the registry refuses is dropped). */
void exp_self_http_request(exp_self *s, const char *handler, unsigned code) {
    char cbuf[12];
    snprintf(cbuf, sizeof cbuf, "%u", code);
    const char *v[] = {handler, cbuf};
    reg_thread *t = event_begin(s);
    if (!t)
        return;
    update(s, t, F_HTTP_REQUESTS, reg_counter_add, v, 1);
    event_end(s, t);
}

/* Cannot fail (an update the registry refuses is dropped). */
void exp_self_scrape_duration(exp_self *s, double seconds) {
    const char *none[] = {NULL};
    reg_thread *t = event_begin(s);
    if (!t)
        return;
    update(s, t, F_SCRAPE_DURATION, reg_observe, none, seconds < 0 ? 0 : seconds);
    event_end(s, t);
}

/* Cannot fail (an update the registry refuses is dropped). */
void exp_self_http_closed(exp_self *s, const char *reason, double n) {
    const char *v[] = {reason};
    reg_thread *t = n > 0 ? event_begin(s) : NULL;
    if (!t)
        return;
    update(s, t, F_HTTP_CLOSED, reg_counter_add, v, n);
    event_end(s, t);
}

/* Cannot fail (an update the registry refuses is dropped). */
void exp_self_push_refused(exp_self *s, const char *reason) {
    const char *v[] = {reason};
    reg_thread *t = event_begin(s);
    if (!t)
        return;
    update(s, t, F_PUSH_REFUSED, reg_counter_add, v, 1);
    event_end(s, t);
}

/* Cannot fail (an update the registry refuses is dropped). */
void exp_self_scrape_queued(exp_self *s) {
    const char *none[] = {NULL};
    reg_thread *t = event_begin(s);
    if (!t)
        return;
    update(s, t, F_SCRAPES_QUEUED, reg_counter_add, none, 1);
    event_end(s, t);
}

/* Cannot fail (an update the registry refuses is dropped). */
void exp_self_http_connections(exp_self *s, double open) {
    const char *none[] = {NULL};
    reg_thread *t = event_begin(s);
    if (!t)
        return;
    update(s, t, F_HTTP_CONNS, reg_gauge_set, none, open);
    event_end(s, t);
}

/* Cannot fail (an update the registry refuses is dropped). */
void exp_self_auth_failure(exp_self *s, const char *reason) {
    const char *v[] = {reason};
    reg_thread *t = event_begin(s);
    if (!t)
        return;
    update(s, t, F_AUTH_FAILURES, reg_counter_add, v, 1);
    event_end(s, t);
}

/* Cannot fail (an update the registry refuses is dropped). */
void exp_self_web_enabled(exp_self *s, int tls, int auth) {
    const char *none[] = {NULL};
    reg_thread *t = event_begin(s);
    if (!t)
        return;
    update(s, t, F_TLS_ENABLED, reg_gauge_set, none, tls ? 1 : 0);
    update(s, t, F_AUTH_ENABLED, reg_gauge_set, none, auth ? 1 : 0);
    event_end(s, t);
}

/* Cannot fail (an update the registry refuses is dropped). */
void exp_self_tls_reload(exp_self *s, int ok) {
    const char *v[] = {ok ? "success" : "failure"};
    reg_thread *t = event_begin(s);
    if (!t)
        return;
    update(s, t, F_TLS_RELOADS, reg_counter_add, v, 1);
    event_end(s, t);
}

/* Cannot fail (an update the registry refuses is dropped). */
void exp_self_config_loaded(exp_self *s, int ok, uint64_t hash) {
    const char *none[] = {NULL};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* The first successful load is the one at start (exp_state_create), not a reload. Relaxed:
     * it only tells the first call from the rest; nothing is published with it, so it pairs
     * with no other access (loads are serialised by the state's reload lock anyway). */
    int reload = s && (!ok || atomic_exchange_explicit(&s->loaded_once, 1, memory_order_relaxed));
    reg_thread *t = event_begin(s);
    if (!t)
        return;
    update(s, t, F_RELOAD_OK, reg_gauge_set, none, ok ? 1 : 0);
    if (reload) {
        const char *v[] = {ok ? "success" : "failure"};
        update(s, t, F_RELOADS, reg_counter_add, v, 1);
    }
    if (ok) {
        update(s, t, F_RELOAD_TS, reg_gauge_set, none,
               (double)now.tv_sec + (double)now.tv_nsec / 1e9);
        update(s, t, F_CONFIG_HASH, reg_gauge_set, none,
               (double)(hash & ((UINT64_C(1) << 53) - 1)));
    }
    event_end(s, t);
}

/* ---- refresh --------------------------------------------------------------------------------- */

static int nv_push(nv_list *l, const char *name, double v) {
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        named_value *items = realloc(l->items, cap * sizeof *items);
        if (!items)
            return -1;
        l->items = items;
        l->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return -1;
    l->items[l->count].name = copy; /* owned by the list from here */
    l->items[l->count].value = v;
    l->count++;
    return 0;
}

static int nv_cmp(const void *a, const void *b) {
    return strcmp(((const named_value *)a)->name, ((const named_value *)b)->name);
}

static const named_value *nv_find(const nv_list *l, const char *name) {
    named_value key = {(char *)name, 0};
    return l->count ? bsearch(&key, l->items, l->count, sizeof key, nv_cmp) : NULL;
}

/* Read the {family="..."} series of one of our families into l (sorted). Inside a section. */
static void read_by_family(exp_self *s, reg_thread *t, int i, nv_list *l) {
    nv_clear(l);
    long n = reg_family_collect(t, exp_famset_get(&s->fams, i), &s->snap, &s->snap_cap);
    char name[REG_MAX_NAME + 1]; /* family names, which the registry bounds */
    for (long k = 0; k < n; k++) {
        if (reg_series_label_value(s->snap[k], 0, name, sizeof name) < 0)
            continue;
        nv_push(l, name, reg_series_value(s->snap[k]));
    }
    if (l->count)
        qsort(l->items, l->count, sizeof *l->items, nv_cmp);
}

typedef struct {
    exp_self *s;
    reg_thread *t;
} walk_ctx;

static int per_family(void *arg, reg_family *f) {
    walk_ctx *w = arg;
    exp_self *s = w->s;
    const char *name = reg_family_definition(f)->name;
    const char *v[] = {name};
    update(s, w->t, F_SERIES, reg_gauge_set, v, (double)reg_family_series_count(f));
    double refused = (double)reg_family_refused(f);
    const named_value *seen = nv_find(&s->refused_seen, name);
    double prev = seen ? seen->value : 0;
    if (!seen)
        update(s, w->t, F_REFUSED, touch_fn, v, 0);
    if (refused > prev)
        update(s, w->t, F_REFUSED, reg_counter_add, v, refused - prev);
    else if (refused < prev)
        nv_push(&s->resets, name, refused); /* the family was replaced: a counter reset */
    return 0;
}

/* Cannot fail: figures that cannot be read keep their last value. */
void exp_self_refresh(exp_self *s) {
    if (!s)
        return;
    pthread_mutex_lock(&s->refresh_mu);
    reg_thread *t = s->refresh_t;
    const char *none[] = {NULL};

    proc_stat ps;
    read_proc_stat(&ps);
    long fds = count_fds();
    int ok_fd, ok_as;
    double max_fds = rlimit_value(RLIMIT_NOFILE, &ok_fd);
    double max_as = rlimit_value(RLIMIT_AS, &ok_as);

    reg_begin(t);
    if (ps.ok) {
        reg_family *cf = exp_famset_get(&s->fams, F_CPU);
        if (cf != s->cpu_family) { /* relinked: the new counter starts at 0 */
            s->cpu_family = cf;
            s->cpu_reported = 0;
        }
        if (ps.cpu_seconds > s->cpu_reported) {
            update(s, t, F_CPU, reg_counter_add, none, ps.cpu_seconds - s->cpu_reported);
            cf = exp_famset_get(&s->fams, F_CPU);
            if (cf != s->cpu_family) {
                /* Relinked by that update: the new counter got only the difference. */
                if (s->cpu_reported > 0)
                    update(s, t, F_CPU, reg_counter_add, none, s->cpu_reported);
                s->cpu_family = cf;
            }
            s->cpu_reported = ps.cpu_seconds;
        }
        update(s, t, F_VSIZE, reg_gauge_set, none, ps.vsize);
        update(s, t, F_RSS, reg_gauge_set, none, ps.rss);
        update(s, t, F_START_TIME, reg_gauge_set, none, ps.start_time);
    }
    if (fds >= 0)
        update(s, t, F_OPEN_FDS, reg_gauge_set, none, (double)fds);
    if (ok_fd)
        update(s, t, F_MAX_FDS, reg_gauge_set, none, max_fds);
    if (ok_as)
        update(s, t, F_VSIZE_MAX, reg_gauge_set, none, max_as);
    update(s, t, F_PUSH_GROUPS, reg_gauge_set, none, (double)reg_group_total(s->reg));

    /* Series per family: set the live ones, then drop entries of families that are gone. */
    read_by_family(s, t, F_REFUSED, &s->refused_seen);
    nv_clear(&s->resets);
    walk_ctx w = {s, t};
    reg_foreach_family(t, per_family, &w);
    nv_clear(&s->stale);
    read_by_family(s, t, F_SERIES, &s->series_seen);
    for (size_t i = 0; i < s->series_seen.count; i++)
        if (!reg_family_find(t, s->series_seen.items[i].name))
            nv_push(&s->stale, s->series_seen.items[i].name, 0);
    reg_family *series_f = exp_famset_get(&s->fams, F_SERIES);
    reg_family *refused_f = exp_famset_get(&s->fams, F_REFUSED);
    int held = reg_family_hold(series_f) == REG_OK;
    int held2 = reg_family_hold(refused_f) == REG_OK;
    reg_end(t);

    /* Deletions must happen outside a section. */
    for (size_t i = 0; i < s->stale.count; i++) {
        const char *v[] = {s->stale.items[i].name};
        if (held)
            reg_series_delete(s->reg, series_f, v);
        if (held2)
            reg_series_delete(s->reg, refused_f, v);
    }
    for (size_t i = 0; held2 && i < s->resets.count; i++) {
        const char *v[] = {s->resets.items[i].name};
        reg_series_delete(s->reg, refused_f, v);
        reg_begin(t);
        update(s, t, F_REFUSED, reg_counter_add, v, s->resets.items[i].value);
        reg_end(t);
    }
    if (held)
        reg_family_release(s->reg, series_f);
    if (held2)
        reg_family_release(s->reg, refused_f);
    pthread_mutex_unlock(&s->refresh_mu);
}
