/* statsd/metrics.c - the abacus_statsd_* self-metrics of the StatsD ingest: the family
 * definitions, folding one ingest context's counts into them, and the series that exist from
 * the start.
 *
 * Each reader thread counts what it did in its ingest context (ingest_counts, internal.h),
 * without atomics; a fold adds the differences since the last fold to the families, inside
 * the reader's registry section. The families are held by the listener (an exp_famset) and
 * registered again once when a reload removed one (a declaration took its name).
 */
#include <linux/sock_diag.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "statsd/internal.h"

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

/* ---- the families ----------------------------------------------------------------------- */

enum {
    SM_PACKETS,
    SM_BYTES,
    SM_LINES,
    SM_SAMPLES,
    SM_TAGS,
    SM_TAG_ERRORS,
    SM_SAMPLE_ERRORS,
    SM_EVENTS,
    SM_DROPPED,
    SM_ACTIONS,
    SM_UNMAPPED,
    SM_CACHE_HITS,
    SM_CACHE_MISSES,
    SM_TCP_CONNS,
    SM_TCP_ERRORS,
    SM_TCP_REFUSED,
    SM_TCP_CLOSED,
    SM_PACKET_DROPS,
    SM_UNKNOWN_FIELDS,
    SM_COUNT
};

static const char *const l_listener[] = {"listener"};
static const char *const l_reason[] = {"reason"};
static const char *const l_type[] = {"type"};
static const char *const l_action[] = {"action"};
static const char *const l_listener_reason[] = {"listener", "reason"};

#define SMDEF(n, h, nl, l)                                                                         \
    { .name = n, .help = h, .type = REG_COUNTER, .nlabels = nl, .labels = l }

_Static_assert(SM_COUNT <= EXP_FAMSET_MAX, "too many self-metric families");

static const reg_family_def sm_defs[SM_COUNT] = {
    [SM_PACKETS] = SMDEF("abacus_statsd_packets_total",
                         "StatsD datagrams received, by listener (udp, unixgram).", 1, l_listener),
    [SM_BYTES] = SMDEF("abacus_statsd_bytes_total", "Bytes of StatsD input received, by listener.",
                       1, l_listener),
    [SM_LINES] =
        SMDEF("abacus_statsd_lines_total", "StatsD lines received, by listener.", 1, l_listener),
    [SM_SAMPLES] = SMDEF("abacus_statsd_samples_total",
                         "StatsD samples seen in lines that passed the line checks.", 0, NULL),
    [SM_TAGS] = SMDEF("abacus_statsd_tags_total", "StatsD samples accepted with at least one tag.",
                      0, NULL),
    [SM_TAG_ERRORS] =
        SMDEF("abacus_statsd_tag_errors_total", "Malformed StatsD tags skipped.", 0, NULL),
    [SM_SAMPLE_ERRORS] =
        SMDEF("abacus_statsd_sample_errors_total",
              "StatsD lines or samples refused by the parser, by reason.", 1, l_reason),
    [SM_EVENTS] =
        SMDEF("abacus_statsd_events_total",
              "StatsD events applied to a metric, by type (counter, gauge, observer).", 1, l_type),
    [SM_DROPPED] = SMDEF("abacus_statsd_events_dropped_total",
                         "Parsed StatsD events that were not applied, by reason.", 1, l_reason),
    [SM_ACTIONS] =
        SMDEF("abacus_statsd_events_actions_total",
              "StatsD events that matched a mapping rule, by the rule's action.", 1, l_action),
    [SM_UNMAPPED] = SMDEF("abacus_statsd_events_unmapped_total",
                          "StatsD events that matched no mapping rule.", 0, NULL),
    [SM_CACHE_HITS] =
        SMDEF("abacus_statsd_mapping_cache_hits_total",
              "StatsD name mappings answered from a reader's mapping cache.", 0, NULL),
    [SM_CACHE_MISSES] = SMDEF("abacus_statsd_mapping_cache_misses_total",
                              "StatsD name mappings that ran the mapping rules.", 0, NULL),
    [SM_TCP_CONNS] = SMDEF("abacus_statsd_tcp_connections_total",
                           "TCP connections accepted by the StatsD listener.", 0, NULL),
    [SM_TCP_ERRORS] = SMDEF("abacus_statsd_tcp_connection_errors_total",
                            "StatsD TCP connections ended by an error (read or accept failed, "
                            "out of memory).",
                            0, NULL),
    [SM_TCP_REFUSED] = SMDEF("abacus_statsd_tcp_connections_refused_total",
                             "StatsD TCP connections closed as soon as accepted, by reason "
                             "(limit: statsd.max_tcp_connections were open).",
                             1, l_reason),
    [SM_TCP_CLOSED] = SMDEF("abacus_statsd_tcp_connections_closed_total",
                            "StatsD TCP connections abacus closed, by reason (idle_timeout: "
                            "nothing received for statsd.tcp_idle_timeout).",
                            1, l_reason),
    [SM_PACKET_DROPS] = SMDEF("abacus_statsd_packets_dropped_total",
                              "StatsD datagrams lost, by listener and reason (kernel: the socket's "
                              "receive queue overflowed; truncated: larger than the read buffer).",
                              2, l_listener_reason),
    [SM_UNKNOWN_FIELDS] = SMDEF("abacus_statsd_unknown_fields_total",
                                "DogStatsD fields abacus does not know (e.g. |card:low), skipped; "
                                "their samples are kept.",
                                0, NULL),
};

const char *const exp_statsd_drop_names[DR_COUNT] = {
    "conflict",        "series_limit",      "invalid_labels",
    "invalid_value",   "empty_metric_name", "illegal_negative_counter",
    "too_many_labels", "out_of_memory"};
const char *const exp_statsd_kind_names[EXP_STATSD_LISTENER_KINDS] = {"udp", "tcp", "unixgram"};
static const char *const ev_names[EV_COUNT] = {"counter", "gauge", "observer"};

/* ---- updating them ------------------------------------------------------------------------ */

/* Add v to self-metric i (v = 0: create the series). Inside a section. A family removed by a
 * reload (a declaration took its name) is registered again once. Cannot fail: failures are
 * logged at a bounded rate. */
static void sm_add(exp_statsd_listener *L, reg_thread *t, int i, const char *const *values,
                   double v) {
    static exp_log_limit lim;
    for (int attempt = 0; attempt < 2; attempt++) {
        reg_family *f = exp_famset_get(&L->sm, i);
        if (!f)
            return;
        int rc = v > 0 ? reg_counter_add(t, f, values, v) : reg_touch(t, f, values);
        if (rc == REG_OK)
            return;
        if (rc != REG_EGONE || attempt) {
            exp_log_limited(&lim, 5, EXP_LOG_WARN, "cannot update self-metric", "family",
                            sm_defs[i].name, "err", reg_strerror(rc), NULL);
            return;
        }
        exp_famset_relink(&L->sm, t, i, f); /* a failure shows on the retry */
    }
}

/* Add a count difference d (if any) to self-metric i. Inside a section. Cannot fail (see
 * sm_add). */
static void sm_add_delta(exp_statsd_listener *L, reg_thread *t, int i, const char *const *values,
                         uint64_t d) {
    if (d)
        sm_add(L, t, i, values, (double)d);
}

/* The datagram socket's own drop counter (receive queue full), cumulative in the kernel,
 * into in->cur.kernel_drops. Cannot fail (nothing is counted when the kernel says nothing). */
static void count_kernel_drops(exp_ingest *in) {
    uint32_t mi[SK_MEMINFO_VARS];
    socklen_t ml = sizeof mi;
    if (getsockopt(in->dgfd, SOL_SOCKET, SO_MEMINFO, mi, &ml) == 0 &&
        ml > SK_MEMINFO_DROPS * sizeof mi[0]) {
        in->cur.kernel_drops += (uint32_t)(mi[SK_MEMINFO_DROPS] - in->kdrops_seen);
        in->kdrops_seen = mi[SK_MEMINFO_DROPS];
    }
}

#define DELTA(field) (in->cur.field - in->done.field)

/* Fold the counts since the last fold into the self-metric families. Inside a section.
 * Cannot fail. */
void exp_statsd_metrics_fold(exp_ingest *in) {
    exp_statsd_listener *L = in->L;
    reg_thread *t = in->t;
    const char *lv[] = {exp_statsd_kind_names[in->kind]};
    cfg_mapper_cache_stats(in->mc, &in->cur.cache_hits, &in->cur.cache_misses);
    in->cur.cache_hits += in->ec_hits; /* the event cache answers before the mapper's */
    if (in->dgfd >= 0)
        count_kernel_drops(in);
    sm_add_delta(L, t, SM_PACKETS, lv, DELTA(packets));
    sm_add_delta(L, t, SM_BYTES, lv, DELTA(bytes));
    sm_add_delta(L, t, SM_LINES, lv, DELTA(lines));
    sm_add_delta(L, t, SM_SAMPLES, NULL, DELTA(ps.samples));
    sm_add_delta(L, t, SM_TAGS, NULL, DELTA(ps.tags));
    sm_add_delta(L, t, SM_TAG_ERRORS, NULL, DELTA(ps.tag_errors));
    for (int r = 0; r < EXP_STATSD_ERR_COUNT; r++) {
        const char *v[] = {exp_statsd_reason_name((exp_statsd_reason)r)};
        sm_add_delta(L, t, SM_SAMPLE_ERRORS, v, DELTA(ps.errors[r]));
    }
    for (int e = 0; e < EV_COUNT; e++) {
        const char *v[] = {ev_names[e]};
        sm_add_delta(L, t, SM_EVENTS, v, DELTA(events[e]));
    }
    for (int r = 0; r < DR_COUNT; r++) {
        const char *v[] = {exp_statsd_drop_names[r]};
        sm_add_delta(L, t, SM_DROPPED, v, DELTA(dropped[r]));
    }
    for (int a = 0; a < 2; a++) {
        const char *v[] = {a ? "drop" : "map"};
        sm_add_delta(L, t, SM_ACTIONS, v, DELTA(actions[a]));
    }
    sm_add_delta(L, t, SM_UNMAPPED, NULL, DELTA(unmapped));
    sm_add_delta(L, t, SM_CACHE_HITS, NULL, DELTA(cache_hits));
    sm_add_delta(L, t, SM_CACHE_MISSES, NULL, DELTA(cache_misses));
    sm_add_delta(L, t, SM_TCP_CONNS, NULL, DELTA(tcp_conns));
    sm_add_delta(L, t, SM_TCP_ERRORS, NULL, DELTA(tcp_errors));
    const char *limit[] = {"limit"}, *idle[] = {"idle_timeout"};
    sm_add_delta(L, t, SM_TCP_REFUSED, limit, DELTA(tcp_refused_limit));
    sm_add_delta(L, t, SM_TCP_CLOSED, idle, DELTA(tcp_closed_idle));
    sm_add_delta(L, t, SM_UNKNOWN_FIELDS, NULL, DELTA(ps.unknown_fields));
    const char *kernel[] = {lv[0], "kernel"}, *truncated[] = {lv[0], "truncated"};
    sm_add_delta(L, t, SM_PACKET_DROPS, kernel, DELTA(kernel_drops));
    sm_add_delta(L, t, SM_PACKET_DROPS, truncated, DELTA(truncated));
    in->done = in->cur;
    in->last_fold = exp_statsd_now_ms();
}

/* Every self-metric series exists from the start, so that a full global series limit never
 * hides one and dashboards see zeros rather than gaps. Inside a section. Cannot fail (see
 * sm_add). */
static void touch_initial(exp_statsd_listener *L, reg_thread *t) {
    for (int e = 0; e < EV_COUNT; e++) {
        const char *v[] = {ev_names[e]};
        sm_add(L, t, SM_EVENTS, v, 0);
    }
    for (int r = 0; r < DR_COUNT; r++) {
        const char *v[] = {exp_statsd_drop_names[r]};
        sm_add(L, t, SM_DROPPED, v, 0);
    }
    for (int r = 0; r < EXP_STATSD_ERR_COUNT; r++) {
        const char *v[] = {exp_statsd_reason_name((exp_statsd_reason)r)};
        sm_add(L, t, SM_SAMPLE_ERRORS, v, 0);
    }
    const char *map[] = {"map"}, *dropv[] = {"drop"};
    sm_add(L, t, SM_ACTIONS, map, 0);
    sm_add(L, t, SM_ACTIONS, dropv, 0);
    static const int plain[] = {SM_SAMPLES,   SM_TAGS,       SM_TAG_ERRORS,
                                SM_UNMAPPED,  SM_CACHE_HITS, SM_CACHE_MISSES,
                                SM_TCP_CONNS, SM_TCP_ERRORS, SM_UNKNOWN_FIELDS};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        sm_add(L, t, plain[i], NULL, 0);
    if (L->enabled[EXP_STATSD_LISTENER_TCP]) {
        const char *limit[] = {"limit"}, *idle[] = {"idle_timeout"};
        sm_add(L, t, SM_TCP_REFUSED, limit, 0);
        sm_add(L, t, SM_TCP_CLOSED, idle, 0);
    }
    for (int k = 0; k < EXP_STATSD_LISTENER_KINDS; k++) {
        if (!L->enabled[k])
            continue;
        const char *lv[] = {exp_statsd_kind_names[k]};
        sm_add(L, t, SM_BYTES, lv, 0);
        sm_add(L, t, SM_LINES, lv, 0);
        if (k != EXP_STATSD_LISTENER_TCP) {
            const char *kv[] = {exp_statsd_kind_names[k], "kernel"},
                       *tv[] = {exp_statsd_kind_names[k], "truncated"};
            sm_add(L, t, SM_PACKETS, lv, 0);
            sm_add(L, t, SM_PACKET_DROPS, kv, 0);
            sm_add(L, t, SM_PACKET_DROPS, tv, 0);
        }
    }
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

/* The families of L, not registered yet. Cannot fail. */
void exp_statsd_metrics_init(exp_statsd_listener *L) {
    exp_famset_init(&L->sm, L->reg, sm_defs, SM_COUNT);
}

/* Register the families and their initial series, in a registry thread and section of their
 * own. REG_OK, or an error with a reason in err (a clash with a declared metric, out of
 * memory). */
int exp_statsd_metrics_start(exp_statsd_listener *L, char *err, size_t errlen) {
    reg_thread *t = reg_thread_attach(L->reg);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return REG_ENOMEM;
    }
    reg_begin(t);
    int rc = exp_famset_link_all(&L->sm, t, err, errlen);
    if (rc == REG_OK)
        touch_initial(L, t);
    reg_end(t);
    reg_thread_detach(t);
    return rc;
}

/* Releases the families. Cannot fail. */
void exp_statsd_metrics_free(exp_statsd_listener *L) {
    exp_famset_destroy(&L->sm);
}
