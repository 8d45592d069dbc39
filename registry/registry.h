/* registry.h - the metric store: families of series, lock-free updates, safe removal.
 *
 * A registry holds families (one metric name each); a family holds series (one set of label
 * values each). Lookups and updates never take a lock; creating or removing a series takes
 * the family's mutex, and a collection may take it briefly when it is free (never waiting
 * for it: see reg_family_collect). Memory of removed entries is reclaimed through ck_epoch,
 * so a reader never touches freed memory.
 *
 * Threads. Every thread that calls into a registry first attaches with reg_thread_attach()
 * and then brackets its calls with reg_begin()/reg_end() (a read-side section; cheap, may be
 * held across many updates, must not be held across blocking calls). Any number of threads
 * may update, create, scrape and remove concurrently; functions below say what they need.
 *
 * The guarantee (model-checked in registry/model/series.pml):
 *  - An entry becomes reachable only after it is fully initialised.
 *  - Lookup-or-create is one atomic step: racing creators of one label set get one series.
 *  - An update that returns REG_OK has landed in a series that was live (reachable) when the
 *    update finished: it is visible to every later scrape of that series, or, if the series
 *    is removed later, it is part of the final value passed to the removal hook. An update
 *    never lands in a series after its removal; it re-creates the series instead.
 *  - A series is removed by the reaper only when no update is in flight on it and none has
 *    been seen for its TTL. Explicit deletes wait for in-flight updates to leave.
 *  - A snapshot (reg_family_collect) never contains two series with the same labels and never
 *    a half-initialised one; histogram buckets read from it are cumulative, non-decreasing,
 *    and the count equals the +Inf bucket.
 */
#ifndef ABACUS_REGISTRY_H
#define ABACUS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct reg_registry reg_registry;
typedef struct reg_family reg_family;
typedef struct reg_series reg_series;
typedef struct reg_thread reg_thread;

typedef enum { REG_COUNTER = 0, REG_GAUGE, REG_HISTOGRAM, REG_SUMMARY, REG_UNTYPED } reg_type;

/* Result codes. Every fallible function returns one of these (REG_OK is 0). */
typedef enum {
    REG_OK = 0,
    REG_ENOMEM = -1,    /* allocation failed; nothing changed */
    REG_EINVAL = -2,    /* bad argument: wrong label count, negative counter add, ... */
    REG_ELIMIT = -3,    /* family or registry series limit reached: series refused */
    REG_ECONFLICT = -4, /* family exists with a different definition */
    REG_ENOTFOUND = -5, /* no such family or series */
    REG_EGONE = -6,     /* the family was removed (reload, delete): resolve it again */
    REG_ESTALE = -7,    /* a remembered series was removed: update by label values */
} reg_err;

#define REG_MAX_NAME 1024       /* bytes of a metric or label name */
#define REG_MAX_LABELS 32       /* label names per family, const labels included */
#define REG_MAX_BUCKETS 256     /* histogram buckets per family (+Inf excluded) */
#define REG_MAX_QUANTILES 32    /* summary objectives per family */
#define REG_MAX_KEY 16384       /* bytes of a series' rendered label text; longer: REG_EINVAL */
#define REG_MAX_AGE_BUCKETS 100 /* summary window slices */
#define REG_MAX_BUF_CAP 1000000 /* summary samples buffered per series */

/* One summary objective: the quantile in (0,1) and its allowed rank error in (0,1)
 * (client_golang semantics). */
typedef struct {
    double quantile;
    double error;
} reg_objective;

/* What a family is. Strings and arrays are copied by reg_family_add; the caller keeps its own. */
typedef struct {
    const char *name; /* metric name, [a-zA-Z_:][a-zA-Z0-9_:]* */
    const char *help; /* may be NULL */
    const char *unit; /* OpenMetrics unit, may be NULL */
    reg_type type;
    size_t nlabels;
    const char *const *labels; /* label names, in order */
    size_t nconst;
    const char *const *const_names;
    const char *const *const_values;
    size_t nbuckets; /* histogram: sorted, strictly increasing upper bounds, +Inf implied */
    const double *buckets;
    size_t nobjectives; /* summary: may be 0 (count and sum only) */
    const reg_objective *objectives;
    uint64_t max_age_ns;  /* summary window; 0 = 10 minutes */
    unsigned age_buckets; /* summary window slices; 0 = 5; at most REG_MAX_AGE_BUCKETS */
    unsigned buf_cap;     /* summary sample buffer; 0 = 500; at most REG_MAX_BUF_CAP */
    uint64_t ttl_ns;      /* 0 = series never expire; kept in 16.8 ms ticks, at most 1.1 years */
    size_t max_series;    /* 0 = unlimited (the registry limit still applies) */
    unsigned flags;       /* REG_FAMILY_* */
} reg_family_def;

/* The process's own metrics (self-metrics): their series are neither counted in nor refused
 * by the registry-wide limit, which bounds what clients create. Otherwise a client that
 * fills the registry would also stop the counters that report its refusals. */
#define REG_FAMILY_OWN 1u

/* Called for each removed series (reaper, delete, reset) after its final value is read. The
 * series may only be read through the reg_series_* accessors during the call. */
typedef void (*reg_remove_hook)(void *arg, const reg_family *f, const reg_series *s);

typedef struct {
    size_t max_series;         /* registry-wide series limit; 0 = unlimited */
    uint64_t reap_interval_ns; /* how often the reaper runs; 0 = 1 second */
    int start_reaper;          /* 0: no background thread; call reg_reap() yourself */
    reg_remove_hook on_remove; /* may be NULL */
    void *on_remove_arg;
} reg_options;

/* Creation and teardown. reg_create returns NULL on allocation or thread failure.
 * reg_destroy must be called once no other thread uses the registry. */
reg_registry *reg_create(const reg_options *opt);
void reg_destroy(reg_registry *r);

/* Reader handles (an epoch record each). reg_thread_attach returns a new handle, NULL on
 * allocation failure. A handle may be used by one thread at a time (it need not be the same
 * thread each time) and must not be in a section when detached. Cheap: records are reused. */
reg_thread *reg_thread_attach(reg_registry *r);
void reg_thread_detach(reg_thread *t);

/* Read-side section. Pointers to families and series obtained inside a section are valid
 * until the matching reg_end. Sections do not nest. Cannot fail. */
void reg_begin(reg_thread *t);
void reg_end(reg_thread *t);

/* Families. reg_family_add creates a family, or returns the existing one when the definition
 * is equal (REG_OK); REG_ECONFLICT when a family of that name differs or pushed groups have
 * the name with another type, REG_EINVAL for a bad definition. Safe concurrently with everything;
 * must be called inside a section, and *out is valid until reg_end. */
int reg_family_add(reg_thread *t, const reg_family_def *def, reg_family **out);
/* NULL when absent. Inside a section. */
reg_family *reg_family_find(reg_thread *t, const char *name);
/* Put a family built from def in place of the family of the same name, in one step: a reader
 * finds the old family or the new one, never neither and never both. The old family's series
 * are removed (each reported to the removal hook) and updates on it fail with REG_EGONE from
 * then on. No family of that name: adds it. One equal to def: keeps it (REG_OK, nothing
 * removed). A new family without labels is published with its one series already made, so it
 * is never seen empty. REG_EINVAL for a bad definition, REG_ECONFLICT (pushed groups have the name
 * with another type; nothing changed), REG_ENOMEM (nothing changed), REG_ELIMIT (replaced, but the
 * label-less series was refused by a limit). Inside a section; *out is valid until reg_end. Waits
 * for in-flight updates on the old series to leave. */
int reg_family_replace(reg_thread *t, const reg_family_def *def, reg_family **out);
/* Remove a family and all its series (each reported to the removal hook). REG_ENOTFOUND when
 * absent. Must NOT be called inside a section. Concurrent updates on the family fail with
 * REG_EGONE once it is gone. */
int reg_family_remove(reg_registry *r, const char *name);
/* Remove every series of a family, keeping the family. Must NOT be called inside a section. */
int reg_family_reset(reg_registry *r, reg_family *f);
/* Keep a family's memory valid outside sections (e.g. in a cache). Inside a section:
 * REG_OK, or REG_EGONE when it was already removed. Updates on a held family that has since
 * been removed fail with REG_EGONE. Every successful hold needs one reg_family_release
 * (any thread, no section needed; cannot fail). */
int reg_family_hold(reg_family *f);
void reg_family_release(reg_registry *r, reg_family *f);
/* 1 when equal to def (same type, labels, const labels, buckets, objectives, ttl, limit). */
int reg_family_matches(const reg_family *f, const reg_family_def *def);

const reg_family_def *reg_family_definition(const reg_family *f);
size_t reg_family_series_count(const reg_family *f);
uint64_t reg_family_refused(const reg_family *f); /* creates refused by a limit */

/* Iterate families in the registry, in no particular order. Inside a section. Returns the
 * number visited. The callback returns non-zero to stop. */
size_t reg_foreach_family(reg_thread *t, int (*fn)(void *arg, reg_family *f), void *arg);

/* Updates, by label values (nvalues must equal the family's label count). Inside a section.
 * REG_OK, REG_EINVAL (wrong count, value too long, wrong type, a counter increment that is
 * negative or not finite, an observation that is not finite: one NaN or Inf would stay in a
 * counter or a _sum for good),
 * REG_ELIMIT (new series refused), REG_ENOMEM, REG_EGONE (family removed). */
int reg_counter_add(reg_thread *t, reg_family *f, const char *const *values, double v);
int reg_gauge_set(reg_thread *t, reg_family *f, const char *const *values, double v);
int reg_gauge_add(reg_thread *t, reg_family *f, const char *const *values, double v);
/* Histogram or summary observation. */
int reg_observe(reg_thread *t, reg_family *f, const char *const *values, double v);
/* Observe v `count` times (sampled StatsD timers); count >= 1. */
int reg_observe_n(reg_thread *t, reg_family *f, const char *const *values, double v,
                  uint64_t count);
/* Create the series if absent without changing its value (for declared metrics without
 * labels). Same results as the updates. */
int reg_touch(reg_thread *t, reg_family *f, const char *const *values);

/* Remembered series, for a thread that updates the same series again and again (a StatsD
 * reader's hot label sets): reg_update fills a reg_series_ref with the series it updated, and
 * reg_update_ref updates that series again, in this or a later section, without hashing,
 * looking up or comparing label values. A ref stays usable until any series of its family is
 * removed (TTL, delete, reset, reload); reg_update_ref then answers REG_ESTALE, and the caller
 * updates by label values again (getting a fresh ref). The caller keeps f alive meanwhile (a
 * hold, reg_family_hold). A ref belongs to the thread that filled it. */
typedef enum {
    REG_OP_COUNTER_ADD, /* reg_counter_add */
    REG_OP_GAUGE_SET,   /* reg_gauge_set */
    REG_OP_GAUGE_ADD,   /* reg_gauge_add */
    REG_OP_OBSERVE,     /* reg_observe_n: v observed n times */
    REG_OP_TOUCH,       /* reg_touch */
} reg_op;
typedef struct {
    reg_series *s;
    uint64_t removals; /* the family's removal count when s was found */
} reg_series_ref;
/* Inside a section. op with v (n: observations, else ignored) on the series of values, as
 * the function named by op, with its results; on REG_OK, when ref is not NULL, *ref names the
 * series. */
int reg_update(reg_thread *t, reg_family *f, const char *const *values, reg_op op, double v,
               uint64_t n, reg_series_ref *ref);
/* Inside a section. op on the series ref names (filled by reg_update on f): REG_OK,
 * REG_EINVAL (as reg_update), or REG_ESTALE (the series may have been removed; nothing was
 * applied). */
int reg_update_ref(reg_thread *t, reg_family *f, const reg_series_ref *ref, reg_op op, double v,
                   uint64_t n);

/* Delete one series by label values. REG_ENOTFOUND when absent. Must NOT be inside a section;
 * waits for in-flight updates on that series to leave. */
int reg_series_delete(reg_registry *r, reg_family *f, const char *const *values);

/* Snapshot for exposition. Inside a section: fills *out with the family's live series (no
 * label set twice) and returns their count, or -1 on allocation failure. *out is a buffer
 * owned by the caller, grown with realloc; *cap is its capacity in entries. From 4,096 series
 * on they are sorted by address (a span of 4 GiB at a time), and the family keeps the result
 * (4 bytes a series; none when its series would need more than four spans of 4 GiB) for the
 * next call, which takes it instead of walking the set if no series was removed since: as it
 * is when none was created either, else brought up to date from the family's log of its last
 * 256 creations, read under the family's lock if that is free at once (a collection never
 * waits for it). Any number of threads may collect one family at once, concurrently with
 * updates, creations and removals. */
long reg_family_collect(reg_thread *t, reg_family *f, reg_series ***out, size_t *cap);

/* A cursor: one family's live series, walked across several sections, so a slow consumer
 * (a scrape whose client reads slowly) holds no section while it waits and memory retired
 * meanwhile is freed. The walk hands out each label set at most once, never a series that
 * was DEAD when its section began, and never a freed one: when any series of the family was
 * removed between two sections, resuming collects the family again and drops the label sets
 * already handed out (identified by their 64-bit label hash; a collision can only hide a
 * series, never show one twice). Series created after opening may or may not appear.
 *
 * Use: reg_cursor_open inside a section; reg_cursor_view / reg_cursor_consume to walk; before
 * reg_end, reg_cursor_pause; in the next section, reg_cursor_resume, then view again; at the
 * end reg_cursor_close. One cursor is used by one thread at a time; any number may be open
 * on one family, concurrently with updates, creations, removals and reaping. The fields are
 * private. */
union reg_cursor_slot;
typedef struct {
    reg_family *f;              /* held while open */
    union reg_cursor_slot *v;   /* [0, hashed): hashes handed out; [hashed, n): series */
    size_t n, cap, pos, hashed; /* [hashed, pos): handed out in this section */
    uint64_t removals;          /* the family's removal count the series in v were valid for */
} reg_cursor;

/* Inside a section: hold f and collect its live series. REG_OK; REG_EGONE when f was
 * removed or is being removed (look the name up again for the family that replaced it;
 * nothing to close); REG_ENOMEM (nothing to close). */
int reg_cursor_open(reg_thread *t, reg_cursor *c, reg_family *f);
/* The series not yet handed out, in *out, and their count; valid until the next call on c or
 * reg_end. Cannot fail. */
size_t reg_cursor_view(const reg_cursor *c, reg_series *const **out);
/* Hand out the first k series of the view. Cannot fail (k is clamped to the view). */
void reg_cursor_consume(reg_cursor *c, size_t k);
/* Before leaving the section mid-walk: remember the label sets handed out so far. Inside the
 * section the series were handed out in. Cannot fail. */
void reg_cursor_pause(reg_cursor *c);
/* In a new section after reg_cursor_pause: make the view valid again (collecting anew when
 * a series of the family was removed since). REG_OK, or REG_ENOMEM (the cursor stays paused
 * and may be resumed again or closed). */
int reg_cursor_resume(reg_thread *t, reg_cursor *c);
/* Release the family and free the cursor's memory. Any time, in or out of a section; cannot
 * fail; a closed or zeroed cursor may be closed again. */
void reg_cursor_close(reg_registry *r, reg_cursor *c);

/* Series accessors: valid for a series from a snapshot or hook, inside the same section. */
/* The label text of series s of family f without braces, `a="x",b="y"` (escaped as in the
 * text format; "" for a series without labels; constant labels are not included), written to
 * out (no NUL) when it fits in cap bytes. Returns its length, at most REG_MAX_KEY: a larger
 * value than cap means nothing was written. Cannot fail. */
size_t reg_series_labels(const reg_family *f, const reg_series *s, char *out, size_t cap);
/* Label value i, unescaped, into buf (NUL-terminated). Returns its length or -1 if it does
 * not fit or i is out of range. */
long reg_series_label_value(const reg_series *s, size_t i, char *buf, size_t bufsz);
double reg_series_value(const reg_series *s); /* counter, gauge, untyped */
/* Histogram: fills cum[0..nbuckets] with cumulative counts (cum[nbuckets] is +Inf == count),
 * sets *sum. cum must hold nbuckets+1 entries. */
void reg_series_histogram(const reg_series *s, const reg_family *f, uint64_t *cum, double *sum);
/* Summary: fills q[0..nobjectives-1] with quantile estimates (NaN when no observation in the
 * window), *count and *sum. Takes the series' summary lock briefly. */
void reg_series_summary(const reg_series *s, const reg_family *f, double *q, uint64_t *count,
                        double *sum);
/* Seconds since the epoch at which the series was created (OpenMetrics _created). */
double reg_series_created(const reg_series *s);
/* The bytes series s of family f takes: its header, label values and value words, rounded up
 * to its slab's size class (one too big for a slab: as asked of malloc). For benchmarks;
 * cannot fail. */
size_t reg_series_footprint(const reg_family *f, const reg_series *s);

/* Run one reaper pass now (TTL expiry, then reclaim memory retired so far). Must NOT be
 * called inside a section. Returns the number of series removed. */
size_t reg_reap(reg_registry *r);

/* Registry-wide figures (relaxed reads; for self-metrics). */
size_t reg_series_total(const reg_registry *r);
size_t reg_family_total(const reg_registry *r);

/* ---- pushed groups (registry/group.c) ------------------------------------------------------
 *
 * A group is what one Pushgateway grouping key holds: families of samples that each push
 * replaces, or adds to, as a whole. Each state of a group is one immutable object published
 * with one pointer swap in the registry's group set (ck_hs_set) and freed through the epoch;
 * a scrape holds the states it found when it began (reg_group_snapshot), so it shows every
 * group wholly before or wholly after each push. Pushes serialise on the registry's push
 * mutex; their cost grows with the size of the group pushed to, never with other groups.
 *
 * Names are one registry: a pushed name has one type across all groups, and a pushed family
 * whose name is also a registry family (declared, StatsD-fed, self-metric) must fit it: the
 * same type, the same help when the push gives one, and label names that, without the
 * grouping key's and instance, are the family's labels and constant labels; that is checked
 * for the families a push brings. The other way, reg_family_add and reg_family_replace refuse
 * (REG_ECONFLICT) a new family only when pushed groups have its name with another type (help
 * and labels may differ: what was pushed before stays). Pushed series count towards the
 * registry-wide series limit, and so do each group's two push-time gauges.
 */

/* One pushed series: its label text (`a="x",b="y"`, sorted by label name, grouping labels
 * included, escaped as reg_series_labels renders it) and its values:
 *   counter, gauge, untyped: vals[0]
 *   histogram: vals[0] sum, vals[1] count, then (upper bound, cumulative count) pairs by
 *              increasing bound, the last bound +Inf
 *   summary:   vals[0] sum, vals[1] count, then (quantile, value) pairs by increasing quantile */
typedef struct {
    const char *labels; /* NUL-terminated */
    uint32_t labels_len;
    uint32_t nvals;
    const double *vals;
} reg_push_series;

typedef struct {
    const char *name;
    const char *help; /* NULL when the push gave none */
    reg_type type;
    double time; /* wall-clock seconds of the push that last wrote it (set by the registry) */
    size_t nseries;
    const reg_push_series *series; /* sorted by label text, none twice */
} reg_push_family;

typedef enum {
    REG_PUSH_REPLACE_ALL,      /* PUT: the body is the group's new content */
    REG_PUSH_REPLACE_FAMILIES, /* POST: families in the body replace those of the same name */
    REG_PUSH_ADD,    /* counters and histograms add to the stored series of the same labels;
                      * other types replace as with REG_PUSH_REPLACE_FAMILIES */
    REG_PUSH_FAILED, /* a push that was refused: records its time, changes nothing else */
} reg_push_mode;

/* What a push is. The registry copies what it keeps. */
typedef struct {
    const char *key; /* the grouping key's label text, sorted: identifies the group */
    size_t key_len;
    size_t nkey_names; /* the grouping key's label names (for the fit check) */
    const char *const *key_names;
    reg_push_mode mode;
    size_t nfamilies; /* names unique; not push_time_seconds or push_failure_time_seconds */
    const reg_push_family *families;
    double time;     /* wall-clock seconds */
    uint64_t ttl_ns; /* the group goes this long after its last successful push; 0 never */
} reg_push;

typedef struct reg_group reg_group;

#define REG_PUSH_TIME_NAME "push_time_seconds"
#define REG_PUSH_FAILURE_TIME_NAME "push_failure_time_seconds"

/* Apply a push in one step. REG_OK; REG_ECONFLICT (a family does not fit another group's or a
 * registry family of its name), REG_EINVAL (REG_PUSH_ADD onto a series of another bucket
 * layout, a reserved name), REG_ELIMIT (the series limit), REG_ENOMEM: then the group is as it
 * was, and err says why (names the family). REG_PUSH_FAILED conflicts only with a registry family
 * named push_time_seconds or push_failure_time_seconds that is not a gauge. Inside a section (the
 * section is not held across anything that waits). */
int reg_group_push(reg_thread *t, const reg_push *p, char *err, size_t errlen);
/* REG_OK when a family of def could be added (or put in place of its name) as far as pushed
 * groups go, REG_ECONFLICT when reg_family_add/replace would refuse it for them (see above).
 * A check only: a push may change the answer right after. Any thread, in or out of a section. */
int reg_family_fits_pushed(reg_thread *t, const reg_family_def *def);
/* Remove a group. REG_OK or REG_ENOTFOUND. Any thread, in or out of a section. */
int reg_group_delete(reg_registry *r, const char *key, size_t key_len);
/* Remove every group; returns how many. Any thread, in or out of a section. */
size_t reg_group_wipe(reg_registry *r);

/* The current states of all groups, each held, in *out (grown with realloc; *cap entries),
 * sorted by key. Returns the count, or -1 out of memory (nothing held). Inside a section; the
 * states stay valid after reg_end until reg_group_release_all. */
long reg_group_snapshot(reg_thread *t, reg_group ***out, size_t *cap);
/* Release states from reg_group_snapshot. Any thread; cannot fail. */
void reg_group_release_all(reg_registry *r, reg_group **g, size_t n);

/* Accessors of a held state. Cannot fail. */
const char *reg_group_key(const reg_group *g, size_t *len);
double reg_group_push_time(const reg_group *g);    /* 0 when no push succeeded yet */
double reg_group_failure_time(const reg_group *g); /* 0 when none failed */
size_t reg_group_family_count(const reg_group *g);
const reg_push_family *reg_group_families(const reg_group *g); /* sorted by name */
/* The family of that name in g, NULL when absent. */
const reg_push_family *reg_group_family(const reg_group *g, const char *name);
size_t reg_group_total(const reg_registry *r); /* number of groups (relaxed read) */
/* ---- snapshots: the registry's state as bytes (persistence) ------------------------------
 *
 * The format is documented in registry/snapshot.c (and README.md, "Persistence"): a header
 * with magic and version, length-prefixed typed records, a trailer with the record count and
 * a CRC-32 of everything before it. Families with REG_FAMILY_OWN are not written. */

#define REG_SNAPSHOT_VERSION 1u
/* Record types (one byte). A type this version does not know makes a file malformed. */
#define REG_SNAP_FAMILY 1u /* a family definition; the SERIES records after it belong to it */
#define REG_SNAP_SERIES 2u /* one series: label values, created time, exact value state */
#define REG_SNAP_GROUP 3u  /* one pushed group (registry/group.c), after every family */

/* Where reg_snapshot_write puts its bytes, in order, in pieces of at most about 64 KiB.
 * Called outside any registry section. Returns 0, or non-zero to abort the write. */
typedef int (*reg_snapshot_sink)(void *arg, const void *buf, size_t len);

typedef struct {
    size_t families, series; /* written */
    size_t groups;           /* pushed groups written */
    uint64_t bytes;          /* handed to the sink */
} reg_snapshot_stats;

/* Write every family (but REG_FAMILY_OWN ones) and its live series, then every pushed group
 * (each state as one push left it), to sink. Families are walked with cursors in bounded
 * sections (at most 64 KiB of output or 1024 series each); no section is held while the sink
 * runs, so updates and scrapes never wait for it. Each series is read as a scrape reads it.
 * Must NOT be called inside a section. Returns 0, or -1 with the reason in err (out of
 * memory, or "write failed" when the sink failed: the sink keeps its own reason). stats may
 * be NULL. */
int reg_snapshot_write(reg_thread *t, reg_snapshot_sink sink, void *arg, reg_snapshot_stats *stats,
                       char *err, size_t errlen);

/* What a load did. conflict_names lists the first skipped families, comma-separated;
 * refused_groups the first refused groups' keys, each in braces. */
typedef struct {
    uint64_t written_ns;      /* wall-clock time the snapshot was started, from its header */
    size_t families;          /* restored: found with an equal definition, or created */
    size_t series;            /* series restored */
    size_t series_refused;    /* series refused by a series limit (or invalid label values) */
    size_t conflicts;         /* families skipped: the live family's definition differs */
    char conflict_names[256]; /* "a,b,c" (truncated with "..." when longer) */
    size_t groups;            /* pushed groups restored */
    size_t groups_refused;    /* pushed groups the registry refused (a conflict, a limit) */
    char refused_groups[256]; /* `{job="a"},{job="b"}` (truncated with "...") */
} reg_snapshot_report;

/* Check a whole snapshot (magic, version, length, CRC, every record well-formed), and only
 * then apply it: a family already present with an equal definition gets the saved series,
 * an absent one is created from the saved definition, one whose definition differs is
 * skipped and reported. Series are set exactly (values, buckets, summary streams, created
 * time); series limits apply. Pushed groups are pushed again (reg_group_push): the same
 * families, series, values, push and failure times; each family's time becomes the group's
 * push time and the group has no TTL; a group the registry refuses is skipped and reported.
 * For start-up: run it before anything else updates or reads the registry (restored series
 * are overwritten, not merged). Must NOT be called inside a section. Returns REG_OK (rep
 * filled); REG_EINVAL when the snapshot is refused, with the reason in err and nothing
 * applied; REG_ENOMEM (err says so; what was applied stays). */
int reg_snapshot_load(reg_thread *t, const void *buf, size_t len, reg_snapshot_report *rep,
                      char *err, size_t errlen);

/* Record building, for writers of further record types (pushed groups). A record is opened,
 * filled and closed inside one call of the writer; values are little-endian, strings are a
 * u32 length and the bytes. Errors (out of memory) are kept in the writer and reported by
 * reg_snapshot_write; these cannot fail. */
typedef struct reg_snapshot reg_snapshot;
void reg_snapshot_record_begin(reg_snapshot *w, unsigned type);
void reg_snapshot_record_end(reg_snapshot *w);
void reg_snapshot_put_u8(reg_snapshot *w, uint8_t v);
void reg_snapshot_put_u32(reg_snapshot *w, uint32_t v);
void reg_snapshot_put_u64(reg_snapshot *w, uint64_t v);
void reg_snapshot_put_f64(reg_snapshot *w, double v); /* the exact bits */
void reg_snapshot_put_str(reg_snapshot *w, const char *s, size_t len);

/* Reading one record's payload: every get checks the bounds; past the end (or on a bad
 * value a caller reports with reg_snapshot_reader_fail) `bad` is set and gets return 0 /
 * NULL from then on. Cannot fail otherwise. */
typedef struct {
    const unsigned char *p;
    size_t len, pos;
    int bad;
} reg_snapshot_reader;
uint8_t reg_snapshot_get_u8(reg_snapshot_reader *r);
uint32_t reg_snapshot_get_u32(reg_snapshot_reader *r);
uint64_t reg_snapshot_get_u64(reg_snapshot_reader *r);
double reg_snapshot_get_f64(reg_snapshot_reader *r);
/* The string's bytes (not NUL-terminated) and *len, or NULL. */
const char *reg_snapshot_get_str(reg_snapshot_reader *r, size_t *len);
void reg_snapshot_reader_fail(reg_snapshot_reader *r);

/* ---- shared utilities: the one home of rules and tools other modules use too ----------- */

/* A fast 64-bit hash of n bytes (wyhash-style multiply-fold; not cryptographic: seed it
 * randomly where senders choose the keys). Shared so other modules need no hash of their
 * own. Cannot fail. */
uint64_t reg_hash_bytes(const void *p, size_t n, uint64_t seed);

/* Name rules (Prometheus's), the ones reg_family_add checks. s[0..len) need not be
 * NUL-terminated; a NUL inside makes it invalid. Each returns 1 or 0 and cannot fail.
 * Metric name: [a-zA-Z_:][a-zA-Z0-9_:]*, 1..REG_MAX_NAME bytes. */
int reg_valid_metric_name(const char *s, size_t len);
/* Label name: [a-zA-Z_][a-zA-Z0-9_]*, 1..REG_MAX_NAME bytes. A reserved name is valid here:
 * ask reg_reserved_label_name as well. */
int reg_valid_label_name(const char *s, size_t len);
/* 1 when a family of type t may not use the label name: names starting with "__" (reserved
 * for Prometheus's own use) always, "le" in a histogram, "quantile" in a summary (the
 * exposition adds them). REG_UNTYPED when the type is not known: only the prefix rule. */
int reg_reserved_label_name(reg_type t, const char *s, size_t len);
/* 1 when s[0..n) is well-formed UTF-8 (Prometheus requires it in label values). Cannot
 * fail. */
int reg_valid_utf8(const char *s, size_t n);
/* Write a label value escaped as in the text format (backslash, double quote, newline) to
 * dst, which has room for 2 * n bytes. Returns the length written. Cannot fail. */
size_t reg_escape_label_value(const char *src, size_t n, char *dst);
/* Copy n bytes to dst and return dst + n, for the short pieces of a sample line (label names
 * and values, a family's head): fixed-size moves, the last one overlapping the one before,
 * inline where memcpy of a variable length is a call per piece. Reads and writes nothing
 * outside [src, src + n) and [dst, dst + n). Cannot fail. */
static inline char *reg_copy_short(char *dst, const char *src, size_t n) {
    if (n >= 16) {
        for (size_t i = 0; i + 16 < n; i += 16)
            memcpy(dst + i, src + i, 16);
        memcpy(dst + n - 16, src + n - 16, 16);
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, src, 8);
        memcpy(&b, src + n - 8, 8);
        memcpy(dst, &a, 8);
        memcpy(dst + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, src, 4);
        memcpy(&b, src + n - 4, 4);
        memcpy(dst, &a, 4);
        memcpy(dst + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i];
    }
    return dst + n;
}
/* 1 when the name's first len bytes end with suffix (`_total`, `_bucket`, `_count`, `_sum`:
 * the suffixes the exposition formats give meaning to). Cannot fail. */
int reg_name_has_suffix(const char *name, size_t len, const char *suffix);

/* A string-keyed hash map: keys are byte strings (s, len), values non-NULL pointers. Open
 * addressing, seeded per map from getrandom() so senders cannot choose colliding keys. Not
 * thread-safe: one writer, or readers only. Keys are borrowed (they must outlive the map and
 * not change) unless the map was created with REG_STRMAP_COPY. */
typedef struct reg_strmap reg_strmap;
#define REG_STRMAP_COPY 1u /* keys are copied by put and freed with the map */

/* An empty map (no slots until the first put). NULL when out of memory. */
reg_strmap *reg_strmap_create(unsigned flags);
/* Insert key, or replace its value. REG_OK; REG_EINVAL (NULL map or value); REG_ENOMEM (the
 * map is unchanged). */
int reg_strmap_put(reg_strmap *m, const char *key, size_t len, void *val);
/* The value of key; NULL when absent or m is NULL. Cannot fail. */
void *reg_strmap_get(const reg_strmap *m, const char *key, size_t len);
/* Remove key (freeing its copy under REG_STRMAP_COPY). 1 when removed, 0 when absent.
 * Cannot fail. */
int reg_strmap_remove(reg_strmap *m, const char *key, size_t len);
/* Number of keys; 0 for NULL. Cannot fail. */
size_t reg_strmap_count(const reg_strmap *m);
/* Iteration in no particular order: start with *pos = 0; each call returns 1 and fills the
 * non-NULL outputs with the next entry, or 0 at the end. A put during the walk invalidates
 * it. Cannot fail. */
int reg_strmap_next(const reg_strmap *m, size_t *pos, const char **key, size_t *len, void **val);
/* Frees the map (and the keys it copied). Cannot fail; NULL is ignored. */
void reg_strmap_free(reg_strmap *m);

const char *reg_strerror(int err);
const char *reg_type_name(reg_type t); /* "counter", "gauge", ... */

#endif
