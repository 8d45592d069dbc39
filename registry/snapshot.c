/* snapshot.c - the registry's state as bytes and back (reg_snapshot_write, reg_snapshot_load).
 *
 * Format, version 1. Integers are little-endian; an f64 is the IEEE-754 bits as a u64 (so
 * every value, NaN payloads included, comes back bit for bit); a str is a u32 length and
 * that many bytes (no NUL inside, no terminator).
 *
 *   header   16 bytes "ABACUS-SNAPSHOT\n", u32 version (1), u32 flags (0), u64 wall-clock
 *            time the write started (ns since the epoch)                        32 bytes
 *   records  each: u8 type, u32 payload length, the payload
 *   trailer  8 bytes "SNAP-END", u64 number of records, u32 CRC-32 (zlib's, the one of
 *            gzip and PNG) of every byte before the CRC                        20 bytes
 *
 *   FAMILY (1)  str name, str help, str unit ("" when absent), u8 type (0 counter, 1 gauge,
 *               2 histogram, 3 summary, 4 untyped), u32 n + n str label names, u32 n + n
 *               (str name, str value) constant labels, u32 n + n f64 bucket bounds, u32 n +
 *               n (f64 quantile, f64 error) objectives, u64 max_age_ns, u32 age_buckets,
 *               u32 buf_cap, u64 ttl_ns, u64 max_series, u32 flags (REG_FAMILY_OWN never:
 *               abacus's own metrics describe the process and are not saved)
 *   SERIES (2)  a series of the last FAMILY before it: u32 n + n str label values, f64
 *               created (s since the epoch), then by the family's type: counter, gauge,
 *               untyped: f64 value; histogram: u32 n (nbuckets + 1) + n u64 per-bucket
 *               counts (not cumulative; the last is +Inf), f64 sum; summary: u64 count,
 *               f64 sum, the quantile stream (registry/quantile.c, reg_qstream_encode)
 *   GROUP (3)   one pushed group (registry/group.c), after every FAMILY and SERIES: str
 *               grouping key (its label text `a="x",job="j"`, as reg_group_key gives it), f64
 *               push time, f64 failure time (wall-clock s; 0: none), u32 n + n families,
 *               each: str name, u8 help present (0 or 1) and, when 1, str help, u8 type, f64
 *               time of the push that last wrote it, u32 n + n series, each: str label text
 *               (grouping labels included), u32 n + n f64 values (the reg_push_series
 *               layout). Families sorted by name, series by label text, none twice.
 *
 * A GROUP is restored with reg_group_push, as the pushes that could have made it: a
 * REG_PUSH_REPLACE_ALL of its families at its push time (skipped when it only ever failed),
 * then a REG_PUSH_FAILED at its failure time when it has one. So what the public push API
 * cannot set is not restored: each family's time becomes the group's push time, and the
 * group has no TTL (the registry does not expose it; a later push with one sets it again).
 * A group the registry refuses (a conflicting family, the series limit) is skipped and
 * reported, as a conflicting family is.
 *
 * A file is refused as a whole, before anything is applied, when its magic, version, flags,
 * length, trailer, CRC or record count is wrong, or any record is malformed: an unknown type,
 * a payload not consumed exactly, a SERIES before any FAMILY, a definition reg_family_add
 * would refuse, a value count that does not fit the family, a stream state that breaks the
 * stream's invariants, a FAMILY or SERIES after a GROUP, a GROUP whose key or label text does
 * not parse, whose names are invalid, unsorted or repeated, or whose value counts do not fit
 * the family's type. So a torn, truncated or foreign file is never loaded half-way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "internal.h"
#include "quantile.h"

#define SNAP_MAGIC "ABACUS-SNAPSHOT\n" /* 16 bytes */
#define SNAP_END "SNAP-END"            /* 8 bytes */
#define HDR_LEN 32
#define TRL_LEN 20
#define REC_HDR 5
#define FLUSH_BYTES 65536   /* output buffered in one section at most (plus one record) */
#define SECTION_SERIES 1024 /* series encoded in one section at most */

static int64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wall-clock minus monotonic ns: how summary windows are saved (reg_qstream_encode). */
static int64_t wall_offset_ns(void) {
    return wall_ns() - (int64_t)reg_now_mono_ns();
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p) {
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* ---- the writer ------------------------------------------------------------------------------ */

struct reg_snapshot {
    unsigned char *buf; /* bytes not yet handed to the sink */
    size_t len, cap;
    size_t rec;       /* offset of the open record's header */
    uint64_t records; /* closed records */
    uLong crc;        /* of every byte handed to the sink */
    uint64_t bytes;   /* handed to the sink */
    int nomem;        /* an allocation failed or a record outgrew its u32 length */
    int64_t wall_offset;
    reg_snapshot_sink sink;
    void *arg;
};

static void put(reg_snapshot *w, const void *p, size_t n) {
    if (w->nomem)
        return;
    if (w->cap - w->len < n) {
        size_t nc = w->cap ? w->cap : 2 * FLUSH_BYTES;
        while (nc - w->len < n)
            nc *= 2;
        unsigned char *nb = realloc(w->buf, nc);
        if (nb == NULL) {
            w->nomem = 1;
            return;
        }
        w->buf = nb;
        w->cap = nc;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void reg_snapshot_put_u8(reg_snapshot *w, uint8_t v) {
    put(w, &v, 1);
}

void reg_snapshot_put_u32(reg_snapshot *w, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(w, b, 4);
}

void reg_snapshot_put_u64(reg_snapshot *w, uint64_t v) {
    reg_snapshot_put_u32(w, (uint32_t)v);
    reg_snapshot_put_u32(w, (uint32_t)(v >> 32));
}

void reg_snapshot_put_f64(reg_snapshot *w, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    reg_snapshot_put_u64(w, u);
}

void reg_snapshot_put_str(reg_snapshot *w, const char *s, size_t len) {
    reg_snapshot_put_u32(w, (uint32_t)len); /* names and values are far below 4 GiB */
    put(w, s, len);
}

/* Cannot fail (see reg_snapshot_put_*). */
void reg_snapshot_record_begin(reg_snapshot *w, unsigned type) {
    w->rec = w->len;
    reg_snapshot_put_u8(w, (uint8_t)type);
    reg_snapshot_put_u32(w, 0); /* the length, patched by record_end */
}

/* Cannot fail (a record over 4 GiB marks the writer failed). */
void reg_snapshot_record_end(reg_snapshot *w) {
    if (w->nomem)
        return;
    size_t plen = w->len - w->rec - REC_HDR;
    if (plen > UINT32_MAX) {
        w->nomem = 1;
        return;
    }
    unsigned char *p = w->buf + w->rec + 1;
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(plen >> (8 * i));
    w->records++;
}

/* Hand the buffered bytes to the sink. Outside any section. 0, or -1 when the sink failed. */
static int flush(reg_snapshot *w) {
    if (w->len == 0)
        return 0;
    w->crc = crc32_z(w->crc, w->buf, w->len);
    int rc = w->sink(w->arg, w->buf, w->len);
    w->bytes += w->len;
    w->len = 0;
    return rc == 0 ? 0 : -1;
}

static void put_cstr(reg_snapshot *w, const char *s) {
    reg_snapshot_put_str(w, s ? s : "", s ? strlen(s) : 0);
}

static void put_family(reg_snapshot *w, const reg_family_def *d) {
    reg_snapshot_record_begin(w, REG_SNAP_FAMILY);
    put_cstr(w, d->name);
    put_cstr(w, d->help);
    put_cstr(w, d->unit);
    reg_snapshot_put_u8(w, (uint8_t)d->type);
    reg_snapshot_put_u32(w, (uint32_t)d->nlabels);
    for (size_t i = 0; i < d->nlabels; i++)
        put_cstr(w, d->labels[i]);
    reg_snapshot_put_u32(w, (uint32_t)d->nconst);
    for (size_t i = 0; i < d->nconst; i++) {
        put_cstr(w, d->const_names[i]);
        put_cstr(w, d->const_values[i]);
    }
    reg_snapshot_put_u32(w, (uint32_t)d->nbuckets);
    for (size_t i = 0; i < d->nbuckets; i++)
        reg_snapshot_put_f64(w, d->buckets[i]);
    reg_snapshot_put_u32(w, (uint32_t)d->nobjectives);
    for (size_t i = 0; i < d->nobjectives; i++) {
        reg_snapshot_put_f64(w, d->objectives[i].quantile);
        reg_snapshot_put_f64(w, d->objectives[i].error);
    }
    reg_snapshot_put_u64(w, d->max_age_ns);
    reg_snapshot_put_u32(w, d->age_buckets);
    reg_snapshot_put_u32(w, d->buf_cap);
    reg_snapshot_put_u64(w, d->ttl_ns);
    reg_snapshot_put_u64(w, d->max_series);
    reg_snapshot_put_u32(w, d->flags);
    reg_snapshot_record_end(w);
}

/* One series, read through the accessors a scrape uses. Inside the section s was collected
 * in. */
static void put_series(reg_snapshot *w, const reg_family *f, const reg_series *s) {
    const reg_family_def *d = &f->def;
    char val[REG_MAX_KEY + 1]; /* a value is never longer than the label text */
    reg_snapshot_record_begin(w, REG_SNAP_SERIES);
    reg_snapshot_put_u32(w, (uint32_t)d->nlabels);
    for (size_t i = 0; i < d->nlabels; i++) {
        long n = reg_series_label_value(s, i, val, sizeof val);
        reg_snapshot_put_str(w, val, n < 0 ? 0 : (size_t)n);
    }
    reg_snapshot_put_f64(w, reg_series_created(s));
    if (d->type == REG_HISTOGRAM) {
        uint64_t cum[REG_MAX_BUCKETS + 1];
        double sum;
        reg_series_histogram(s, f, cum, &sum);
        reg_snapshot_put_u32(w, (uint32_t)d->nbuckets + 1);
        for (size_t i = 0; i <= d->nbuckets; i++)
            reg_snapshot_put_u64(w, cum[i] - (i ? cum[i - 1] : 0));
        reg_snapshot_put_f64(w, sum);
    } else if (d->type == REG_SUMMARY) {
        reg_series_summary_encode(s, w, w->wall_offset);
    } else {
        reg_snapshot_put_f64(w, reg_series_value(s));
    }
    reg_snapshot_record_end(w);
}

/* The families to write, each held, for walking outside this one short section. */
typedef struct {
    reg_family **v;
    size_t n, cap;
    int nomem;
} fam_list;

static int collect_one(void *arg, reg_family *f) {
    fam_list *l = arg;
    if ((f->def.flags & REG_FAMILY_OWN) || l->nomem)
        return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        reg_family **nv = realloc(l->v, nc * sizeof *nv);
        if (nv == NULL) {
            l->nomem = 1;
            return 1;
        }
        l->v = nv;
        l->cap = nc;
    }
    if (reg_family_hold(f) == REG_OK) /* REG_EGONE: being removed, nothing to save */
        l->v[l->n++] = f;
    return 0;
}

/* Write f's definition and its live series, in sections of bounded work; the sink runs
 * between them. Not inside a section. Returns 0, or -1 (w->nomem, or the sink failed). */
static int write_family(reg_thread *t, reg_snapshot *w, reg_family *f, reg_snapshot_stats *st) {
    reg_cursor c;
    reg_begin(t);
    int rc = reg_cursor_open(t, &c, f);
    if (rc != REG_OK) {
        reg_end(t);
        if (rc == REG_ENOMEM)
            w->nomem = 1;
        return rc == REG_EGONE ? 0 : -1; /* gone: removed meanwhile, nothing to save */
    }
    put_family(w, &f->def);
    st->families++;
    for (;;) {
        reg_series *const *v;
        size_t n = reg_cursor_view(&c, &v), k = 0;
        while (k < n) {
            put_series(w, f, v[k++]);
            st->series++;
            if (w->len >= FLUSH_BYTES || k == SECTION_SERIES)
                break;
        }
        reg_cursor_consume(&c, k);
        if (k == n)
            break;
        reg_cursor_pause(&c);
        reg_end(t);
        int ok = !w->nomem && flush(w) == 0;
        reg_begin(t);
        if (!ok || reg_cursor_resume(t, &c) != REG_OK) {
            w->nomem |= ok; /* resume failed: out of memory */
            reg_end(t);
            reg_cursor_close(t->reg, &c);
            return -1;
        }
    }
    reg_end(t);
    reg_cursor_close(t->reg, &c);
    if (w->nomem)
        return -1;
    return w->len >= FLUSH_BYTES ? flush(w) : 0;
}

/* One pushed group, read through the accessors a scrape uses. Cannot fail (see
 * reg_snapshot_put_*). */
static void put_group(reg_snapshot *w, const reg_group *g) {
    size_t klen;
    const char *key = reg_group_key(g, &klen);
    size_t nf = reg_group_family_count(g);
    const reg_push_family *f = reg_group_families(g);
    reg_snapshot_record_begin(w, REG_SNAP_GROUP);
    reg_snapshot_put_str(w, key, klen);
    reg_snapshot_put_f64(w, reg_group_push_time(g));
    reg_snapshot_put_f64(w, reg_group_failure_time(g));
    reg_snapshot_put_u32(w, (uint32_t)nf);
    for (size_t i = 0; i < nf; i++) {
        put_cstr(w, f[i].name);
        reg_snapshot_put_u8(w, f[i].help != NULL);
        if (f[i].help)
            put_cstr(w, f[i].help);
        reg_snapshot_put_u8(w, (uint8_t)f[i].type);
        reg_snapshot_put_f64(w, f[i].time);
        reg_snapshot_put_u32(w, (uint32_t)f[i].nseries);
        for (size_t k = 0; k < f[i].nseries; k++) {
            const reg_push_series *ps = &f[i].series[k];
            reg_snapshot_put_str(w, ps->labels, ps->labels_len);
            reg_snapshot_put_u32(w, ps->nvals);
            for (uint32_t v = 0; v < ps->nvals; v++)
                reg_snapshot_put_f64(w, ps->vals[v]);
        }
    }
    reg_snapshot_record_end(w);
}

/* Every pushed group, one record each. The states are taken in one short section and stay
 * valid without one (reg_group_snapshot), so no section is held while they are encoded or
 * while the sink runs. Returns 0, or -1 (w->nomem, or the sink failed). */
static int write_groups(reg_thread *t, reg_snapshot *w, reg_snapshot_stats *st) {
    reg_group **g = NULL;
    size_t cap = 0;
    reg_begin(t);
    long n = reg_group_snapshot(t, &g, &cap);
    reg_end(t);
    int rc = 0;
    if (n < 0) {
        w->nomem = 1;
        n = 0;
        rc = -1;
    }
    for (long i = 0; i < n && rc == 0; i++) {
        put_group(w, g[i]);
        st->groups++;
        if (w->nomem)
            rc = -1;
        else if (w->len >= FLUSH_BYTES)
            rc = flush(w);
    }
    reg_group_release_all(t->reg, g, (size_t)n);
    free(g);
    return rc;
}

/* Header; every family; every pushed group; trailer. Returns 0, or -1 (w->nomem, or the sink
 * failed). */
static int write_all(reg_thread *t, reg_snapshot *w, fam_list *l, reg_snapshot_stats *st) {
    put(w, SNAP_MAGIC, 16);
    reg_snapshot_put_u32(w, REG_SNAPSHOT_VERSION);
    reg_snapshot_put_u32(w, 0);
    reg_snapshot_put_u64(w, (uint64_t)wall_ns());
    size_t i = 0;
    for (; i < l->n; i++) {
        int rc = write_family(t, w, l->v[i], st);
        reg_family_release(t->reg, l->v[i]);
        if (rc != 0)
            break;
    }
    for (size_t k = i + 1; k < l->n; k++) /* after a failure: release the rest */
        reg_family_release(t->reg, l->v[k]);
    if (i < l->n || w->nomem || write_groups(t, w, st) != 0)
        return -1;
    put(w, SNAP_END, 8);
    reg_snapshot_put_u64(w, w->records);
    if (w->nomem || flush(w) != 0)
        return -1;
    reg_snapshot_put_u32(w, (uint32_t)w->crc);
    return w->nomem ? -1 : flush(w);
}

int reg_snapshot_write(reg_thread *t, reg_snapshot_sink sink, void *arg, reg_snapshot_stats *stats,
                       char *err, size_t errlen) {
    reg_snapshot w = {.crc = crc32_z(0, NULL, 0), .sink = sink, .arg = arg};
    w.wall_offset = wall_offset_ns();
    reg_snapshot_stats st = {0};
    fam_list l = {0};
    reg_begin(t);
    reg_foreach_family(t, collect_one, &l);
    reg_end(t);
    int rc = -1;
    if (l.nomem) {
        for (size_t i = 0; i < l.n; i++)
            reg_family_release(t->reg, l.v[i]);
        w.nomem = 1;
    } else {
        rc = write_all(t, &w, &l, &st);
    }
    free(l.v);
    free(w.buf);
    st.bytes = w.bytes;
    if (stats)
        *stats = st;
    if (rc != 0)
        snprintf(err, errlen, "%s", w.nomem ? "out of memory" : "write failed");
    return rc;
}

/* ---- reading records ------------------------------------------------------------------------- */

static const unsigned char *take(reg_snapshot_reader *r, size_t n) {
    if (r->bad || r->len - r->pos < n) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p + r->pos;
    r->pos += n;
    return p;
}

uint8_t reg_snapshot_get_u8(reg_snapshot_reader *r) {
    const unsigned char *p = take(r, 1);
    return p ? p[0] : 0;
}

uint32_t reg_snapshot_get_u32(reg_snapshot_reader *r) {
    const unsigned char *p = take(r, 4);
    return p ? le32(p) : 0;
}

uint64_t reg_snapshot_get_u64(reg_snapshot_reader *r) {
    const unsigned char *p = take(r, 8);
    return p ? le64(p) : 0;
}

double reg_snapshot_get_f64(reg_snapshot_reader *r) {
    uint64_t u = reg_snapshot_get_u64(r);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

const char *reg_snapshot_get_str(reg_snapshot_reader *r, size_t *len) {
    uint32_t n = reg_snapshot_get_u32(r);
    const unsigned char *p = take(r, n);
    *len = p ? n : 0;
    return (const char *)p;
}

/* Cannot fail. */
void reg_snapshot_reader_fail(reg_snapshot_reader *r) {
    r->bad = 1;
}

/* ---- decoding records ------------------------------------------------------------------------ */

/* NUL-terminated copies of a record's strings. */
typedef struct {
    char *p;
    size_t len, cap;
} arena;

/* Room for every string of a payload of plen bytes: each has a 4-byte length, so there are
 * at most plen / 4 of them, each needing one byte more than it takes. -1 when out of memory. */
static int arena_reset(arena *a, size_t plen) {
    size_t need = plen + plen / 4 + 1;
    a->len = 0;
    if (a->cap >= need)
        return 0;
    char *np = realloc(a->p, need);
    if (np == NULL)
        return -1;
    a->p = np;
    a->cap = need;
    return 0;
}

/* The next str as a NUL-terminated copy; NULL (r->bad set) when malformed or holding a NUL. */
static const char *arena_str(arena *a, reg_snapshot_reader *r) {
    size_t n;
    const char *s = reg_snapshot_get_str(r, &n);
    if (s == NULL || a->p == NULL || memchr(s, '\0', n) || a->cap - a->len < n + 1) {
        r->bad = 1;
        return NULL;
    }
    char *d = a->p + a->len;
    memcpy(d, s, n);
    d[n] = '\0';
    a->len += n + 1;
    return d;
}

/* A FAMILY record decoded: def points into the arrays and the arena. */
typedef struct {
    reg_family_def def;
    const char *labels[REG_MAX_LABELS], *cnames[REG_MAX_LABELS], *cvalues[REG_MAX_LABELS];
    double buckets[REG_MAX_BUCKETS];
    reg_objective obj[REG_MAX_QUANTILES];
    arena a;
} fam_rec;

/* Read n (at most max) strings into out. */
static void get_strs(fam_rec *fr, reg_snapshot_reader *r, const char **out, size_t n) {
    for (size_t i = 0; i < n && !r->bad; i++)
        out[i] = arena_str(&fr->a, r);
}

/* Decode and check a FAMILY payload. Returns 0, or -1 when malformed (r->bad set) or out of
 * memory (r->bad clear). */
static int fam_decode(fam_rec *fr, reg_snapshot_reader *r) {
    if (arena_reset(&fr->a, r->len) != 0)
        return -1;
    reg_family_def *d = &fr->def;
    memset(d, 0, sizeof *d);
    d->name = arena_str(&fr->a, r);
    d->help = arena_str(&fr->a, r);
    d->unit = arena_str(&fr->a, r);
    d->type = (reg_type)reg_snapshot_get_u8(r);
    d->nlabels = reg_snapshot_get_u32(r);
    if (d->nlabels > REG_MAX_LABELS)
        r->bad = 1;
    get_strs(fr, r, fr->labels, d->nlabels);
    d->nconst = reg_snapshot_get_u32(r);
    if (d->nconst > REG_MAX_LABELS - d->nlabels)
        r->bad = 1;
    for (size_t i = 0; i < d->nconst && !r->bad; i++) {
        fr->cnames[i] = arena_str(&fr->a, r);
        fr->cvalues[i] = arena_str(&fr->a, r);
    }
    d->nbuckets = reg_snapshot_get_u32(r);
    if (d->nbuckets > REG_MAX_BUCKETS)
        r->bad = 1;
    for (size_t i = 0; i < d->nbuckets && !r->bad; i++)
        fr->buckets[i] = reg_snapshot_get_f64(r);
    d->nobjectives = reg_snapshot_get_u32(r);
    if (d->nobjectives > REG_MAX_QUANTILES)
        r->bad = 1;
    for (size_t i = 0; i < d->nobjectives && !r->bad; i++) {
        fr->obj[i].quantile = reg_snapshot_get_f64(r);
        fr->obj[i].error = reg_snapshot_get_f64(r);
    }
    d->max_age_ns = reg_snapshot_get_u64(r);
    d->age_buckets = reg_snapshot_get_u32(r);
    d->buf_cap = reg_snapshot_get_u32(r);
    d->ttl_ns = reg_snapshot_get_u64(r);
    d->max_series = (size_t)reg_snapshot_get_u64(r);
    d->flags = reg_snapshot_get_u32(r);
    if (r->bad || r->pos != r->len || (d->flags & REG_FAMILY_OWN)) {
        r->bad = 1;
        return -1;
    }
    d->help = *d->help ? d->help : NULL;
    d->unit = *d->unit ? d->unit : NULL;
    d->labels = fr->labels;
    d->const_names = fr->cnames;
    d->const_values = fr->cvalues;
    d->buckets = fr->buckets;
    d->objectives = fr->obj;
    if (!reg_family_def_valid(d)) {
        r->bad = 1;
        return -1;
    }
    return 0;
}

/* A SERIES record decoded. */
typedef struct {
    const char *values[REG_MAX_LABELS];
    uint64_t buckets[REG_MAX_BUCKETS + 1];
    reg_series_state st;
    arena a;
} series_rec;

/* Decode and check a SERIES payload of a family defined by d. build: also build the summary
 * stream (sr->st.q, the caller's). Returns 0, or -1 when malformed (r->bad set) or out of
 * memory (r->bad clear). */
static int series_decode(series_rec *sr, reg_snapshot_reader *r, const reg_family_def *d,
                         int64_t wall_offset, int build) {
    if (arena_reset(&sr->a, r->len) != 0)
        return -1;
    memset(&sr->st, 0, sizeof sr->st);
    if (reg_snapshot_get_u32(r) != d->nlabels)
        r->bad = 1;
    for (size_t i = 0; i < d->nlabels && !r->bad; i++)
        sr->values[i] = arena_str(&sr->a, r);
    sr->st.created = reg_snapshot_get_f64(r);
    if (d->type == REG_HISTOGRAM) {
        if (reg_snapshot_get_u32(r) != d->nbuckets + 1)
            r->bad = 1;
        for (size_t i = 0; i <= d->nbuckets && !r->bad; i++)
            sr->buckets[i] = reg_snapshot_get_u64(r);
        sr->st.buckets = sr->buckets;
        sr->st.sum = reg_snapshot_get_f64(r);
    } else if (d->type == REG_SUMMARY) {
        sr->st.count = reg_snapshot_get_u64(r);
        sr->st.sum = reg_snapshot_get_f64(r);
        if (!r->bad &&
            reg_qstream_decode(r, d, wall_offset, reg_now_mono_ns(), build ? &sr->st.q : NULL) != 0)
            return -1;
    } else {
        sr->st.value = reg_snapshot_get_f64(r);
    }
    if (r->bad || r->pos != r->len) {
        reg_qstream_destroy(sr->st.q);
        sr->st.q = NULL;
        r->bad = 1;
        return -1;
    }
    return 0;
}

/* A GROUP record decoded. The check pass walks it once and only counts; the apply pass
 * sizes the arrays from the counts and walks it again to fill them. */
typedef struct {
    reg_push p;
    double push_time, failure_time;
    size_t nfam, nser, nval, nkey; /* counted */
    reg_push_family *fams;         /* the rest: in mem */
    reg_push_series *ser;
    double *vals;
    const char **key_names;
    int fill; /* the arrays are sized: fill them */
    arena a;
} group_rec;

/* Byte order, then length: how group.c sorts families and series. */
static int cmp_bytes(const char *a, size_t la, const char *b, size_t lb) {
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/* Check label text `a="x",b="y"` as reg_series_labels renders it: valid label names, values
 * escaped with \\ \" \n only and valid UTF-8. Returns the number of labels, or -1 when
 * malformed. names: also each name, NUL-terminated in a, into names (sized by a first call). */
static long label_text(const char *s, size_t n, arena *a, const char **names) {
    size_t i = 0;
    long count = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && s[i] != '=')
            i++;
        if (!reg_valid_label_name(s + start, i - start) || n - i < 2 || s[i + 1] != '"')
            return -1;
        if (names) {
            if (a->cap - a->len < i - start + 1)
                return -1;
            names[count] = a->p + a->len;
            memcpy(a->p + a->len, s + start, i - start);
            a->p[a->len + i - start] = '\0';
            a->len += i - start + 1;
        }
        count++;
        i += 2;
        size_t vstart = i;
        while (i < n && s[i] != '"') {
            if (s[i] == '\\' &&
                (i + 1 == n || (s[i + 1] != '\\' && s[i + 1] != '"' && s[i + 1] != 'n')))
                return -1;
            i += s[i] == '\\' ? 2 : 1;
        }
        if (i == n || !reg_valid_utf8(s + vstart, i - vstart))
            return -1; /* escapes are ASCII: the raw text is UTF-8 when the value is */
        i++;
        if (i < n && (s[i] != ',' || ++i == n))
            return -1;
    }
    return count;
}

/* The next str of a GROUP record, NUL-free: a NUL-terminated copy in gr's arena (filling),
 * or the bytes in the payload (counting). NULL (r->bad set) when malformed. */
static const char *group_str(group_rec *gr, reg_snapshot_reader *r, size_t *len) {
    if (gr->fill) {
        const char *c = arena_str(&gr->a, r);
        *len = c ? strlen(c) : 0;
        return c;
    }
    const char *p = reg_snapshot_get_str(r, len);
    if (p && memchr(p, '\0', *len))
        r->bad = 1;
    return r->bad ? NULL : p;
}

/* One family of a GROUP record, after the one named *prev (NULL: the first; then set to this
 * one's name: the payload's bytes when counting). Its series and values go to gr's arrays
 * when filling. Sets r->bad when malformed. */
static void group_family(group_rec *gr, reg_snapshot_reader *r, reg_push_family *f,
                         const char **prev, size_t *prev_len) {
    size_t len;
    f->name = group_str(gr, r, &len);
    if (f->name == NULL || !reg_valid_metric_name(f->name, len) ||
        (*prev && cmp_bytes(*prev, *prev_len, f->name, len) >= 0) ||
        (len == strlen(REG_PUSH_TIME_NAME) && !memcmp(f->name, REG_PUSH_TIME_NAME, len)) ||
        (len == strlen(REG_PUSH_FAILURE_TIME_NAME) &&
         !memcmp(f->name, REG_PUSH_FAILURE_TIME_NAME, len)))
        r->bad = 1;
    *prev = f->name;
    *prev_len = len;
    uint8_t has_help = reg_snapshot_get_u8(r);
    size_t hlen;
    f->help = has_help ? group_str(gr, r, &hlen) : NULL;
    f->type = (reg_type)reg_snapshot_get_u8(r);
    f->time = reg_snapshot_get_f64(r);
    f->nseries = reg_snapshot_get_u32(r);
    if (has_help > 1 || f->type > REG_UNTYPED || f->nseries > r->len - r->pos)
        r->bad = 1; /* more series than bytes left: stop before looping over them */
    f->series = gr->fill ? gr->ser + gr->nser : NULL;
    int multi = f->type == REG_HISTOGRAM || f->type == REG_SUMMARY;
    const char *prev_labels = NULL;
    size_t prev_llen = 0;
    for (size_t k = 0; k < f->nseries && !r->bad; k++, gr->nser++) {
        size_t llen;
        const char *labels = group_str(gr, r, &llen);
        uint32_t nvals = reg_snapshot_get_u32(r);
        if (labels == NULL || label_text(labels, llen, NULL, NULL) < 0 ||
            (prev_labels && cmp_bytes(prev_labels, prev_llen, labels, llen) >= 0) ||
            nvals > (r->len - r->pos) / 8 || (multi ? nvals < 2 || nvals % 2 : nvals != 1)) {
            r->bad = 1;
            break;
        }
        prev_labels = labels;
        prev_llen = llen;
        if (gr->fill) {
            gr->ser[gr->nser] =
                (reg_push_series){labels, (uint32_t)llen, nvals, gr->vals + gr->nval};
            for (uint32_t v = 0; v < nvals; v++)
                gr->vals[gr->nval + v] = reg_snapshot_get_f64(r);
        } else {
            r->pos += (size_t)nvals * 8;
        }
        gr->nval += nvals;
    }
}

/* Walk a GROUP payload: counting (gr->fill 0) or filling gr's arrays. Returns 0, or -1
 * when malformed (r->bad set). */
static int group_walk(group_rec *gr, reg_snapshot_reader *r) {
    gr->nfam = gr->nser = gr->nval = 0;
    size_t klen;
    const char *key = group_str(gr, r, &klen);
    long nkey = key ? label_text(key, klen, &gr->a, gr->fill ? gr->key_names : NULL) : -1;
    if (nkey < 0)
        r->bad = 1;
    gr->nkey = nkey < 0 ? 0 : (size_t)nkey;
    gr->push_time = reg_snapshot_get_f64(r);
    gr->failure_time = reg_snapshot_get_f64(r);
    uint32_t nfam = reg_snapshot_get_u32(r);
    if (nfam > r->len - r->pos)
        r->bad = 1; /* more families than bytes left: stop before looping over them */
    const char *prev = NULL;
    size_t prev_len = 0;
    for (; gr->nfam < nfam && !r->bad; gr->nfam++) {
        reg_push_family scratch = {0}, *f = gr->fill ? &gr->fams[gr->nfam] : &scratch;
        group_family(gr, r, f, &prev, &prev_len);
    }
    if (r->bad || r->pos != r->len) {
        r->bad = 1;
        return -1;
    }
    gr->p = (reg_push){.key = key,
                       .key_len = klen,
                       .nkey_names = gr->nkey,
                       .key_names = gr->key_names,
                       .mode = REG_PUSH_REPLACE_ALL,
                       .nfamilies = gr->nfam,
                       .families = gr->fams,
                       .time = gr->push_time};
    return 0;
}

/* Free what group_decode built (its arena too: groups are few, the arena is not kept for
 * the next). Cannot fail. */
static void group_free(group_rec *gr) {
    free(gr->fams);
    free(gr->ser);
    free(gr->vals);
    free(gr->key_names);
    free(gr->a.p);
    gr->a.p = NULL;
    gr->a.len = gr->a.cap = 0;
    gr->fams = NULL;
    gr->ser = NULL;
    gr->vals = NULL;
    gr->key_names = NULL;
    gr->fill = 0;
}

/* Decode and check a GROUP payload; build: also build gr->p, its arrays sized by a counting
 * walk. Returns 0, or -1 when malformed (r->bad set) or out of memory (r->bad clear). */
static int group_decode(group_rec *gr, reg_snapshot_reader *r, int build) {
    group_free(gr);
    reg_snapshot_reader again = *r;
    if (group_walk(gr, r) != 0)
        return -1;
    if (!build)
        return 0;
    gr->fams = calloc(gr->nfam + 1, sizeof *gr->fams);
    gr->ser = calloc(gr->nser + 1, sizeof *gr->ser);
    gr->vals = calloc(gr->nval + 1, sizeof *gr->vals);
    gr->key_names = calloc(gr->nkey + 1, sizeof *gr->key_names);
    /* The arena: the payload's strings (see arena_reset), then the key's label names, no
     * longer than the key. A new one (group_free freed the last): nothing to realloc. */
    arena a = {0};
    if (!gr->fams || !gr->ser || !gr->vals || !gr->key_names || arena_reset(&a, 2 * r->len) != 0) {
        group_free(gr);
        return -1;
    }
    gr->a = a;
    gr->fill = 1;
    *r = again;
    return group_walk(gr, r);
}

/* ---- loading --------------------------------------------------------------------------------- */

/* One pass over the records: checking every one (apply 0), or applying them (apply 1). */
typedef struct {
    reg_thread *t;
    int apply;
    int64_t wall_offset;
    reg_snapshot_report *rep;
    fam_rec fr;
    int have_family; /* a FAMILY record was seen */
    reg_family *cur; /* apply: where its series go; NULL: skipped */
    int in_section;  /* apply: inside the section cur is valid in */
    int in_groups;   /* a GROUP record was seen: only GROUP records may follow */
    group_rec gr;
    int nomem;
} walker;

/* Append open, name[0..len) and close to the comma-separated list b of cap bytes, or "..."
 * once the next one does not fit. Cannot fail. */
static void list_add(char *b, size_t cap, const char *open, const char *name, size_t len,
                     const char *close) {
    size_t have = strlen(b);
    if (have >= 3 && strcmp(b + have - 3, "...") == 0)
        return;
    size_t need = strlen(open) + len + strlen(close) + (have ? 1 : 0);
    if (have + need + 4 > cap) { /* room for "..." after it */
        snprintf(b + have, cap - have, "%s...", have ? "," : "");
        return;
    }
    snprintf(b + have, cap - have, "%s%s%.*s%s", have ? "," : "", open, (int)len, name, close);
}

static void note_conflict(reg_snapshot_report *rep, const char *name) {
    rep->conflicts++;
    list_add(rep->conflict_names, sizeof rep->conflict_names, "", name, strlen(name), "");
}

/* Apply a decoded FAMILY: the registry's equal family, a new one, or none (conflict).
 * Leaves w->in_section set. Returns 0, or -1 when out of memory. */
static int apply_family(walker *w) {
    if (w->in_section)
        reg_end(w->t);
    reg_begin(w->t);
    w->in_section = 1;
    const reg_family_def *d = &w->fr.def;
    reg_family *f = reg_family_find(w->t, d->name);
    int rc = REG_OK;
    if (f == NULL)
        rc = reg_family_add(w->t, d, &f);
    else if (!reg_family_matches(f, d))
        rc = REG_ECONFLICT;
    if (rc == REG_ENOMEM)
        return -1;
    w->cur = rc == REG_OK ? f : NULL;
    if (rc == REG_OK)
        w->rep->families++;
    else
        note_conflict(w->rep, d->name);
    return 0;
}

/* Apply a decoded SERIES to w->cur. Returns 0, or -1 when out of memory. */
static int apply_series(walker *w, series_rec *sr) {
    int rc = reg_series_restore(w->t, w->cur, sr->values, &sr->st);
    sr->st.q = NULL; /* taken over or freed */
    if (rc == REG_OK)
        w->rep->series++;
    else if (rc == REG_ENOMEM)
        return -1;
    else if (rc == REG_EGONE)
        w->cur = NULL; /* removed meanwhile (not at start-up) */
    else
        w->rep->series_refused++; /* REG_ELIMIT, REG_EINVAL */
    return 0;
}

/* Apply a decoded GROUP in a section of its own: the pushes that make its state (see the
 * top of this file). Returns 0, or -1 when out of memory. */
static int apply_group(walker *w) {
    group_rec *gr = &w->gr;
    if (w->in_section)
        reg_end(w->t);
    w->in_section = 0;
    w->cur = NULL;
    int rc = REG_OK;
    reg_begin(w->t);
    if (gr->push_time != 0 || gr->nfam > 0 || gr->failure_time == 0)
        rc = reg_group_push(w->t, &gr->p, NULL, 0);
    if (rc == REG_OK && gr->failure_time != 0) {
        reg_push failed = gr->p;
        failed.mode = REG_PUSH_FAILED;
        failed.time = gr->failure_time;
        rc = reg_group_push(w->t, &failed, NULL, 0);
    }
    reg_end(w->t);
    if (rc == REG_ENOMEM)
        return -1;
    if (rc == REG_OK) {
        w->rep->groups++;
    } else { /* REG_ECONFLICT, REG_ELIMIT, REG_EINVAL */
        w->rep->groups_refused++;
        list_add(w->rep->refused_groups, sizeof w->rep->refused_groups, "{", gr->p.key,
                 gr->p.key_len, "}");
    }
    return 0;
}

/* One record. Returns 0; -1 when malformed (with the reason in why) or out of memory
 * (w->nomem). */
static int one_record(walker *w, unsigned type, reg_snapshot_reader *r, series_rec *sr,
                      const char **why) {
    if (w->in_groups && type != REG_SNAP_GROUP) {
        *why = "a family or series after the pushed groups";
        return -1;
    }
    if (type == REG_SNAP_GROUP) {
        if (group_decode(&w->gr, r, w->apply) != 0) {
            w->nomem = !r->bad;
            *why = "malformed pushed group";
            return -1;
        }
        w->in_groups = 1;
        if (w->apply && apply_group(w) != 0) {
            w->nomem = 1;
            return -1;
        }
        return 0;
    }
    if (type == REG_SNAP_FAMILY) {
        if (fam_decode(&w->fr, r) != 0) {
            w->nomem = !r->bad;
            *why = "malformed family definition";
            return -1;
        }
        w->have_family = 1;
        if (w->apply && apply_family(w) != 0) {
            w->nomem = 1;
            return -1;
        }
        return 0;
    }
    if (type == REG_SNAP_SERIES) {
        if (!w->have_family) {
            *why = "series before any family";
            return -1;
        }
        if (w->apply && w->cur == NULL)
            return 0; /* its family was skipped (checked in the first pass) */
        if (series_decode(sr, r, &w->fr.def, w->wall_offset, w->apply) != 0) {
            w->nomem = !r->bad;
            *why = "malformed series";
            return -1;
        }
        if (w->apply && apply_series(w, sr) != 0) {
            w->nomem = 1;
            return -1;
        }
        return 0;
    }
    *why = "unknown record type";
    return -1;
}

/* Walk the records of a framed snapshot (check_frame passed). Returns REG_OK, REG_EINVAL
 * (malformed; reason in err) or REG_ENOMEM. */
static int walk(walker *w, const unsigned char *b, size_t len, uint64_t records, char *err,
                size_t errlen) {
    series_rec *sr = calloc(1, sizeof *sr);
    if (sr == NULL)
        return REG_ENOMEM;
    size_t pos = HDR_LEN, end = len - TRL_LEN;
    uint64_t n = 0;
    int rc = REG_OK;
    while (rc == REG_OK && pos < end) {
        const char *why = NULL;
        unsigned type = b[pos];
        size_t plen = 0;
        if (end - pos < REC_HDR || (plen = le32(b + pos + 1)) > end - pos - REC_HDR) {
            why = "record runs past the trailer";
        } else {
            reg_snapshot_reader r = {b + pos + REC_HDR, plen, 0, 0};
            if (one_record(w, type, &r, sr, &why) == 0) {
                pos += REC_HDR + plen;
                n++;
                continue;
            }
        }
        if (w->nomem) {
            rc = REG_ENOMEM;
            snprintf(err, errlen, "out of memory");
        } else {
            rc = REG_EINVAL;
            snprintf(err, errlen, "record %llu (type %u at byte %zu): %s",
                     (unsigned long long)n + 1, type, pos, why);
        }
    }
    if (rc == REG_OK && n != records) {
        rc = REG_EINVAL;
        snprintf(err, errlen, "%llu records, the trailer says %llu", (unsigned long long)n,
                 (unsigned long long)records);
    }
    if (w->in_section)
        reg_end(w->t);
    w->in_section = 0;
    group_free(&w->gr);
    free(sr->a.p);
    free(sr);
    return rc;
}

/* Header, trailer and CRC. Returns 0 (*records and *written set), or -1 with the reason. */
static int check_frame(const unsigned char *b, size_t len, uint64_t *records, uint64_t *written,
                       char *err, size_t errlen) {
    size_t m = len < 16 ? len : 16;
    if (memcmp(b, SNAP_MAGIC, m) != 0) {
        snprintf(err, errlen, "not an abacus snapshot (unknown magic)");
        return -1;
    }
    if (len < HDR_LEN + TRL_LEN) {
        snprintf(err, errlen, "truncated: %zu bytes, shorter than a header and a trailer", len);
        return -1;
    }
    uint32_t version = le32(b + 16), flags = le32(b + 20);
    if (version != REG_SNAPSHOT_VERSION) {
        snprintf(err, errlen, "unsupported format version %u (this abacus reads version %u)",
                 version, REG_SNAPSHOT_VERSION);
        return -1;
    }
    if (flags != 0) {
        snprintf(err, errlen, "unsupported header flags 0x%x", flags);
        return -1;
    }
    const unsigned char *t = b + len - TRL_LEN;
    if (memcmp(t, SNAP_END, 8) != 0) {
        snprintf(err, errlen, "truncated or torn: no trailer at the end");
        return -1;
    }
    uint32_t want = le32(t + 16), got = (uint32_t)crc32_z(crc32_z(0, NULL, 0), b, len - 4);
    if (want != got) {
        snprintf(err, errlen, "checksum mismatch (crc32 %08x, the trailer says %08x)", got, want);
        return -1;
    }
    *records = le64(t + 8);
    *written = le64(b + 24);
    return 0;
}

int reg_snapshot_load(reg_thread *t, const void *buf, size_t len, reg_snapshot_report *rep,
                      char *err, size_t errlen) {
    memset(rep, 0, sizeof *rep);
    uint64_t records;
    if (check_frame(buf, len, &records, &rep->written_ns, err, errlen) != 0)
        return REG_EINVAL;
    walker *w = calloc(1, sizeof *w);
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return REG_ENOMEM;
    }
    reg_snapshot_report scratch = {0};
    *w = (walker){.t = t, .apply = 0, .wall_offset = wall_offset_ns(), .rep = &scratch};
    int rc = walk(w, buf, len, records, err, errlen);
    if (rc == REG_OK) {
        char *a = w->fr.a.p;
        *w = (walker){.t = t, .apply = 1, .wall_offset = w->wall_offset, .rep = rep};
        w->fr.a.p = a; /* the arena is reused (its cap is zeroed: it is grown again) */
        rc = walk(w, buf, len, records, err, errlen);
    }
    free(w->fr.a.p);
    free(w);
    return rc;
}
