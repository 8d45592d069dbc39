/* statsd/internal.h - what the files of exporter/statsd/ share, and nothing else: the
 * listener and ingest-context structures, the per-thread counts, the reasons and names that
 * label the self-metrics, and the few functions one file of the module calls in another.
 * Everything else in the module is static. Not for use outside exporter/statsd/.
 *
 * The path of a line through the files: listen.c receives it (a datagram reader or the TCP
 * reader) and hands it to ingest.c, which parses it (parse.c), maps it, resolves its family
 * and updates the registry; each reader thread counts what happened in its ingest context and
 * metrics.c folds those counts into the abacus_statsd_* families.
 */
#ifndef ABACUS_STATSD_INTERNAL_H
#define ABACUS_STATSD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "famset.h"
#include "statsd/parse.h"
#include "statsd/statsd.h"

#define LABELS_CAP EXP_STATSD_MAX_TAGS_DEFAULT  /* tags per line */
#define MAX_LINE EXP_STATSD_MAX_LINE_DEFAULT    /* bytes per line */
#define MERGE_CAP (LABELS_CAP + REG_MAX_LABELS) /* tags plus a rule's labels */

/* Why a parsed event was not applied (abacus_statsd_events_dropped_total{reason}). */
enum {
    DR_CONFLICT,
    DR_SERIES_LIMIT,
    DR_INVALID_LABELS,
    DR_INVALID_VALUE,
    DR_EMPTY_NAME,
    DR_NEG_COUNTER,
    DR_TOO_MANY_LABELS,
    DR_OOM,
    DR_COUNT
};

/* What an applied event was (abacus_statsd_events_total{type}). */
enum { EV_COUNTER, EV_GAUGE, EV_OBSERVER, EV_COUNT };

/* Label values of the self-metrics (metrics.c), also used in log lines. */
extern const char *const exp_statsd_drop_names[DR_COUNT];
extern const char *const exp_statsd_kind_names[EXP_STATSD_LISTENER_KINDS];

/* Milliseconds of a coarse monotonic clock. Cannot fail. */
static inline uint64_t exp_statsd_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- per-thread state (ingest.c) ------------------------------------------------------------ */

/* Counts kept by one thread, folded into the self-metric families as differences. */
typedef struct {
    uint64_t packets, bytes, lines;
    uint64_t events[EV_COUNT];
    uint64_t dropped[DR_COUNT];
    uint64_t actions[2]; /* map, drop */
    uint64_t unmapped;
    uint64_t tcp_conns, tcp_errors;
    uint64_t tcp_refused_limit, tcp_closed_idle;
    uint64_t kernel_drops, truncated;
    uint64_t cache_hits, cache_misses;
    exp_statsd_stats ps; /* the parser's own counters */
} ingest_counts;

/* An entry of a ktab (ingest.c: a bounded per-thread cache of byte-string keys). Each entry
 * starts with a kent; its blob holds the key and then whatever the entry keeps. */
typedef struct {
    uint64_t hash;
    char *blob; /* the key, then entry data */
    uint32_t klen;
    uint32_t bsize; /* bytes of blob: klen and the entry data */
    reg_family *f;  /* held, or NULL */
} kent;

typedef struct {
    char *ents; /* cap entries of esize bytes, each starting with a kent */
    size_t esize, n, cap;
    size_t bytes, max_bytes; /* blob bytes held, and the most it holds beyond one entry */
    int32_t *slots;
    size_t mask;
    uint64_t rnd;
} ktab;

/* One label of an event being merged: tags and rule labels. */
typedef struct {
    const char *name, *val;
    size_t nlen, vlen;
    int src; /* tag index, or -1 for a rule's label */
} mlabel;

/* One ingest context: everything a reader thread (or a socketless user) needs to turn lines
 * into registry updates. Used by one thread at a time. */
struct exp_ingest {
    struct exp_statsd_listener *L;
    exp_statsd_listener_kind kind;
    reg_thread *t;
    exp_config *cfg; /* current snapshot (a reference) */
    uint64_t gen;
    exp_statsd_flags pflags;
    cfg_mapper_cache *mc;
    uint64_t seed;
    ktab lc;          /* line cache, in front of the parser */
    ktab sc, ec, fc;  /* series cache (level 0), event cache (1), family cache (2) */
    uint64_t ec_hits; /* counted as mapping cache hits (level 0 hits too) */
    /* parser storage and event scratch */
    exp_statsd_out out;
    mlabel ml[MERGE_CAP];
    char *key0, *key, *key2; /* level 0, 1 and 2 keys being built */
    size_t key0cap, keycap, key2cap;
    char *arena;
    /* counts */
    ingest_counts cur, done;
    uint64_t last_fold;
    int dgfd;             /* datagram socket whose kernel drops are counted, or -1 */
    uint32_t kdrops_seen; /* its SO_MEMINFO drop count at the last fold */
};

/* ---- the listener object (listen.c) -------------------------------------------------------- */

struct reader; /* one reader thread (listen.c) */

struct exp_statsd_listener {
    reg_registry *reg;
    exp_state *st;
    /* Set once by exp_statsd_listener_stop, read by every reader (stopping() in listen.c):
     * the flag only ends their loops; pthread_join orders the teardown. */
    _Atomic int stopping;
    int stopfd;
    char addr[EXP_STATSD_LISTENER_KINDS][300];
    int enabled[EXP_STATSD_LISTENER_KINDS];
    char *unix_path;
    struct reader *rd;
    size_t nrd;
    exp_famset sm;             /* self-metric families, relinked when a reload removed one */
    pthread_mutex_t create_mu; /* family creation by this module; guards created */
    reg_strmap *created;       /* names of the families it created (NULL until the first) */
    /* Settings read once at start, for the "needs a restart" warning on reload. */
    char *start_addr[EXP_STATSD_LISTENER_KINDS];
    size_t start_readers, start_rcvbuf, start_cache, start_max_series;
    /* The last generation checked: a CAS in exp_statsd_warn_restart_only elects one reader
     * per generation; set before the readers start (pthread_create orders it). */
    _Atomic uint64_t warned_gen;
};

/* ---- ingest.c --------------------------------------------------------------------------- */

/* The set of created families and its lock, empty. Cannot fail. */
void exp_statsd_created_init(exp_statsd_listener *L);
/* Frees them. Cannot fail. */
void exp_statsd_created_free(exp_statsd_listener *L);
/* Pick up a reloaded configuration (new mapper, tag styles, defaults, TCP settings). Outside
 * a section. Cannot fail. */
void exp_statsd_refresh_config(exp_ingest *in);
/* Start a batch: current configuration, then a registry section. Cannot fail. */
void exp_statsd_batch_begin(exp_ingest *in);
/* End a batch; while busy, counts are folded every EXP_STATSD_FOLD_MS. Cannot fail. */
void exp_statsd_batch_end(exp_ingest *in);
/* One line, one datagram (lines split at '\n'). Inside a batch. Cannot fail: bad input is
 * counted. */
void exp_statsd_ingest_line(exp_ingest *in, const char *p, size_t n);
void exp_statsd_ingest_packet(exp_ingest *in, const char *buf, size_t len);
/* 1 when counts wait for a fold. Cannot fail. */
int exp_statsd_pending(const exp_ingest *in);

/* ---- listen.c --------------------------------------------------------------------------- */

/* After a reload to generation gen (snapshot c): one reader logs a warning when settings that
 * only apply at start changed. Cannot fail. */
void exp_statsd_warn_restart_only(exp_statsd_listener *L, const exp_config *c, uint64_t gen);

/* ---- metrics.c -------------------------------------------------------------------------- */

/* The self-metric families, not registered yet. Cannot fail. */
void exp_statsd_metrics_init(exp_statsd_listener *L);
/* Register them and create their initial series (every listener in L->enabled). Outside a
 * section. REG_OK, or an error with a reason in err (a clash with a declared metric, out of
 * memory). */
int exp_statsd_metrics_start(exp_statsd_listener *L, char *err, size_t errlen);
/* Fold the counts of in since its last fold into the families. Inside a section. Cannot fail
 * (an update that fails is logged at a bounded rate). */
void exp_statsd_metrics_fold(exp_ingest *in);
/* Release the families. Cannot fail. */
void exp_statsd_metrics_free(exp_statsd_listener *L);

#endif
