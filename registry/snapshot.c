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
 *   GROUP (3)   reserved: pushed groups
 *
 * A file is refused as a whole, before anything is applied, when its magic, version, flags,
 * length, trailer, CRC or record count is wrong, or any record is malformed: an unknown type,
 * a payload not consumed exactly, a SERIES before any FAMILY, a definition reg_family_add
 * would refuse, a value count that does not fit the family, a stream state that breaks the
 * stream's invariants. So a torn, truncated or foreign file is never loaded half-way.
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

/* Header; every family; trailer. Returns 0, or -1 (w->nomem, or the sink failed). */
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
    if (i < l->n || w->nomem)
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
    int nomem;
} walker;

static void note_conflict(reg_snapshot_report *rep, const char *name) {
    rep->conflicts++;
    char *b = rep->conflict_names;
    size_t cap = sizeof rep->conflict_names, len = strlen(b);
    if (len >= 3 && strcmp(b + len - 3, "...") == 0)
        return;
    size_t need = strlen(name) + (len ? 1 : 0);
    if (len + need + 4 > cap) { /* room for "..." after it */
        snprintf(b + len, cap - len, "%s...", len ? "," : "");
        return;
    }
    snprintf(b + len, cap - len, "%s%s", len ? "," : "", name);
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

/* One record. Returns 0; -1 when malformed (with the reason in why) or out of memory
 * (w->nomem). */
static int one_record(walker *w, unsigned type, reg_snapshot_reader *r, series_rec *sr,
                      const char **why) {
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
    *why = type == REG_SNAP_GROUP ? "pushed groups are not supported by this build"
                                  : "unknown record type";
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
