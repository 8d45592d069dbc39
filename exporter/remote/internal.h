/* remote/internal.h - what the files of exporter/remote/ share among themselves (not included
 * outside it, except by its unit tests and bench): series identities, the bounded queue, the
 * encoder, the relabeler, the collector and the HTTP client.
 */
#ifndef ABACUS_REMOTE_INTERNAL_H
#define ABACUS_REMOTE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http/expfmt.h"
#include "registry.h"

/* The staleness marker: the NaN Prometheus stores when a series ends (bits 0x7ff0000000000002),
 * distinct from any NaN a value may hold. */
#define RW_STALE_NAN_BITS 0x7ff0000000000002ull
double rw_stale_nan(void);
/* 1 when v has exactly the staleness marker's bits. Cannot fail. */
int rw_is_stale_nan(double v);

/* ---- series: one label set as sent (sorted by name, __name__ among them) ------------------ */

/* Immutable once made; shared by the receiver's series map and every queued sample of it. */
typedef struct {
    _Atomic unsigned refs;
    size_t nlabels;
    const char **names, **values; /* point into key */
    size_t keylen;
    char *key;     /* name\0value\0 per label, in order: the identity */
    uint64_t seen; /* the last collection that produced it (the collector's field only) */
} rw_series;

/* A series from parallel arrays already sorted by name (n >= 1), holding one reference. NULL
 * when out of memory. */
rw_series *rw_series_make(size_t n, const char *const *names, const char *const *values);
/* One more reference. Cannot fail. */
rw_series *rw_series_ref(rw_series *s);
/* Drop a reference; the last frees. NULL is a no-op. Cannot fail. */
void rw_series_unref(rw_series *s);

/* ---- the bounded queue: one per receiver, FIFO, so a series' samples keep their order ----- */

typedef struct {
    rw_series *series; /* one reference held while queued */
    double value;
    int64_t timestamp_ms;
} rw_sample;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC; signalled on push, on stop, on a settings swap */
    rw_sample *ring;   /* grown by doubling up to capacity */
    size_t ring_cap, head, len;
    size_t capacity;          /* the bound: samples beyond it are refused and counted */
    uint64_t first_pushed_ns; /* monotonic time the oldest queued sample arrived */
} rw_queue;

/* A condition variable whose timed waits use CLOCK_MONOTONIC (so a wall-clock step neither
 * cuts a wait short nor stretches it). 0, or -1. */
int rw_cond_init_monotonic(pthread_cond_t *cv);
/* An empty queue bounded at capacity (>= 1). 0, or -1 when out of memory. */
int rw_queue_init(rw_queue *q, size_t capacity);
/* Frees the ring, dropping the references of what is still queued. Cannot fail. */
void rw_queue_destroy(rw_queue *q);
/* Under q->mu: append up to n samples (their references move into the queue; those refused
 * are unreferenced). Returns how many were refused (the queue was full, or out of memory). */
size_t rw_queue_push_locked(rw_queue *q, rw_sample *s, size_t n, uint64_t now_ns);
/* Under q->mu: copy the first up to max samples into out (the queue keeps them and their
 * references). Returns the count. Cannot fail. */
size_t rw_queue_peek_locked(const rw_queue *q, rw_sample *out, size_t max);
/* Under q->mu: remove the first n samples, dropping their references. Cannot fail. */
void rw_queue_pop_locked(rw_queue *q, size_t n, uint64_t now_ns);

/* The wait before retry `attempt` (0-based): min doubled per attempt up to max, then a jitter
 * taking away up to half of it (so receivers that recover are not hit by every sender at
 * once). rnd is a uniform random 64-bit number. Cannot fail. */
uint64_t rw_backoff_ns(uint64_t min_ns, uint64_t max_ns, unsigned attempt, uint64_t rnd);

/* ---- the wire: a WriteRequest, protobuf-encoded and snappy-compressed -------------------- */

typedef struct {
    char *raw, *compressed; /* scratch, reused between requests */
    size_t raw_cap, compressed_cap;
    void *ts, *labels, *samples, *ptrs; /* protobuf-c scratch arrays */
    size_t ts_cap, labels_cap;
} rw_encoder;

/* Encode n samples (one TimeSeries each, in order) into a snappy-compressed WriteRequest;
 * *out points into the encoder until its next use. Returns the compressed length, or -1
 * when out of memory. *raw_len (may be NULL) gets the uncompressed size. */
long rw_encode(rw_encoder *e, const rw_sample *s, size_t n, const char **out, size_t *raw_len);
void rw_encoder_free(rw_encoder *e);

/* ---- relabeling (write_relabel_configs: replace, keep, drop) --------------------------------- */

typedef struct rw_relabeler rw_relabeler;

/* Compile rules (their regexes were checked by the loader). NULL when out of memory or a
 * regex does not compile (message in err). n may be 0. */
rw_relabeler *rw_relabeler_create(const cfg_relabel *rules, size_t n, char *err, size_t errlen);
void rw_relabeler_free(rw_relabeler *r);

/* A label set being built: name/value pairs, strings owned by the caller or by `store`. */
#define RW_MAX_LABELS (REG_MAX_LABELS + 8) /* a family's, le/quantile, job, instance, ... */
typedef struct {
    size_t n;
    const char *names[RW_MAX_LABELS];
    const char *values[RW_MAX_LABELS];
    char store[4096]; /* replace results */
    size_t used;
} rw_labels;

/* Apply the rules to l in order. Returns 1 keep, 0 drop (a drop/keep rule, an empty name, or
 * a result that does not fit). Single-threaded per relabeler (it has match scratch). */
int rw_relabel(rw_relabeler *r, rw_labels *l);
/* Sort by name (insertion sort: a few dozen labels); a later duplicate name replaces the
 * earlier. Cannot fail. */
void rw_labels_sort(rw_labels *l);
/* The value of name in l, or NULL. Cannot fail. */
const char *rw_labels_get(const rw_labels *l, const char *name);
/* Set name to value (replacing it when present; value "" removes it, as in Prometheus).
 * 0, or -1 when full. */
int rw_labels_set(rw_labels *l, const char *name, const char *value);

/* ---- collecting: the registry as the series a scrape shows ------------------------------- */

/* One series of a collection: its labels (unsorted, __name__ first) and its value. */
typedef struct {
    size_t nlabels;
    const char *const *names, *const *values;
    double value;
    int64_t timestamp_ms; /* -1: the collection's time */
} rw_point;

typedef struct {
    rw_point *points;
    size_t n;
    void *arena, *parse_arena; /* private */
} rw_collection;

/* Read scrape s (begun with exp_scrape_begin(r, EXP_FMT_TEXT, 0); ended here, whatever the
 * outcome) and turn every sample into a point: counters, gauges, untyped; histograms as
 * _bucket (with le), _sum, _count; summaries with quantile, _sum, _count. Not inside a
 * registry section. 0, or -1 with the reason in err (out of memory, or the rendering could not
 * be read back: a bug). */
int rw_collect(exp_scrape *s, rw_collection *out, char *err, size_t errlen);
void rw_collection_free(rw_collection *c);

/* ---- a receiver's series from collection to collection (series.c) ---------------------- */

/* What turns a point into the labels a receiver sends. */
typedef struct {
    rw_relabeler *relabel;     /* may be NULL */
    const cfg_label *external; /* external_labels */
    size_t nexternal;
    const char *instance; /* the default instance label */
} rw_rules;

typedef struct {
    reg_strmap *series; /* key -> rw_series (one reference each): the last collection's */
    uint64_t cycle;     /* collections fed so far */
    int64_t last_ts;    /* the last collection's timestamp (ms) */
    rw_sample *batch;   /* the last feed's samples (their references are the caller's) */
    size_t batch_cap;
    char *key; /* RW_MAX_KEY bytes: a label set's identity being built */
} rw_series_set;

/* Bytes of a series' identity (its labels as name\0value\0...); a longer one is not sent
 * and counted as dropped. */
#define RW_MAX_KEY (64 * 1024)

/* 0, or -1 when out of memory (set is then empty and may be freed). */
int rw_series_set_init(rw_series_set *set);
/* Drops every series. Cannot fail. */
void rw_series_set_free(rw_series_set *set);
/* One collection at wall-clock ts (ms; moved to just after the previous collection's when it
 * is not later): a sample per point the rules keep (a point whose labels
 * equal an earlier one's is skipped), then a staleness marker at ts for each series of the
 * previous collection not in this one. The samples are in set->batch, each holding a reference
 * the caller takes over; returns their count. Points that cannot be sent (labels too long, out
 * of memory) are added to *lost. Cannot fail otherwise. */
size_t rw_series_set_feed(rw_series_set *set, const rw_collection *c, const rw_rules *rules,
                          int64_t ts, size_t *lost);

/* ---- the HTTP client (libcurl) -------------------------------------------------------------- */

typedef enum {
    RW_SENT = 0, /* 2xx */
    RW_RETRY,    /* 5xx, 429 with retry_on_http_429, a connection error or timeout */
    RW_REJECTED, /* another 4xx (or 429 without retry): dropped, not retried */
} rw_outcome;

typedef struct rw_client rw_client;

/* A client for one receiver. NULL when out of memory. */
rw_client *rw_client_create(void);
void rw_client_free(rw_client *c);
/* POST body (a compressed WriteRequest) to w's url with w's headers, auth and TLS, within
 * w->remote_timeout_ns. Returns the outcome; *status gets the HTTP status (0 when none) and
 * why a one-line reason when not RW_SENT. Only one thread uses a client at a time. */
rw_outcome rw_client_send(rw_client *c, const cfg_remote_write *w, const char *body, size_t len,
                          unsigned *status, char *why, size_t whylen);

#endif
