/* push/protoparse.c - the delimited protobuf format of pushed bodies (protoparse.h lists the
 * rules and where they differ from Go's), and the Content-Type check that selects it.
 *
 * A body is read field by field: next_field reads one whole field of any wire type, so an
 * unknown field is skipped by reading it, and each message kind is a small function of its
 * known fields (decode calls it per field). A family is gathered whole first (its fields come
 * in any order: the type may follow the metrics) and checked and converted at its end
 * (finish_family). Everything the result holds lives in the parse arena (arena.h).
 */
#include "push/protoparse.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push/arena.h"
#include "registry.h"

/* ---- the parser state ----------------------------------------------------------------------- */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* One field as read: its number, wire type, the offset of its tag, and its value. */
typedef struct {
    uint32_t num;
    unsigned wt;
    size_t at;
    uint64_t v;    /* varint, fixed64, fixed32 */
    const char *s; /* length-delimited: its bytes, n of them */
    size_t n;
} field;

/* Which value messages a metric carried. */
enum {
    HAS_COUNTER = 1,
    HAS_GAUGE = 2,
    HAS_HISTOGRAM = 4,
    HAS_SUMMARY = 8,
    HAS_UNTYPED = 16,
    HAS_TIMESTAMP = 32
};

/* A metric as decoded: all it carried; its family's type picks what counts, at the end. */
typedef struct {
    exp_text_label *labels; /* arena array */
    size_t nlabels;
    unsigned has;
    double counter, gauge, untyped;
    uint64_t s_count, h_count;
    double s_sum, h_sum, h_count_float;
    double *quantiles, *qvalues, *bounds, *counts; /* arena arrays */
    size_t nquantiles, nbuckets;
    int64_t timestamp_ms;
} pmetric;

/* The family message being decoded. Strings point into the body (NULL: not given). */
typedef struct {
    const char *name, *help;
    size_t namelen, helplen;
    uint64_t type;
    pmetric *metrics; /* arena array */
    size_t nmetrics;
} pfamily;

typedef struct {
    const char *buf;
    size_t len;
    size_t max_labels, max_families, max_metrics;
    int status; /* 0, -1 (parse error), -2 (out of memory) */
    char *err;
    size_t errlen;
    push_arena_block *arena;
    size_t index;  /* 1-based number of the family message being read */
    size_t fam_at; /* offset of its first byte */
    pfamily fam;
    /* the innermost message being decoded, where the field functions put what they read */
    pmetric *metric;
    const char *vname;          /* the value message's name, for messages (Gauge, ...) */
    double *value;              /* where its value goes */
    const char *lname, *lvalue; /* the label pair's strings, in the body */
    size_t lnamelen, lvaluelen;
    double pair[2];       /* a quantile (quantile, value) or bucket (upper_bound, -) */
    uint64_t bcount;      /* a bucket's cumulative_count */
    double bcount_float;  /* and cumulative_count_float */
    exp_text_family *out; /* arena array: families in order of first appearance */
    size_t nout, nonempty, nmetrics;
    reg_strmap *byname;           /* family name -> index in out, plus 1 */
    const exp_text_label **order; /* malloc scratch: a metric's labels sorted by name */
    size_t ordercap;
} parser;

/* Records an error at byte `at` of the body. Always returns -1, for `return fail_at(...)`. */
static int fail_at(parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int inconsistent(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_at(parser *p, size_t at, const char *fmt, ...) {
    p->status = -1;
    if (p->errlen == 0)
        return -1;
    int k =
        snprintf(p->err, p->errlen,
                 "protobuf format parsing error in metric family %zu at byte %zu: ", p->index, at);
    if (k >= 0 && (size_t)k < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Records running out of memory. Always returns -1. */
static int oom(parser *p) {
    p->status = -2;
    if (p->errlen)
        snprintf(p->err, p->errlen, "out of memory");
    return -1;
}

/* Whether s[0..n) is printable ASCII, so a message may quote it as is. Cannot fail. */
static bool printable(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7E)
            return false;
    return true;
}

/* ---- the wire format ------------------------------------------------------------------------ */

/* The varint at *pos, before end, of at most maxbytes bytes (10, or 5 for a length prefix as
 * Go's ReadDelimited reads it) and 64 bits. 0 with *v set and *pos after it; -1 (error
 * recorded). */
static int read_varint(parser *p, size_t *pos, size_t end, size_t maxbytes, uint64_t *v) {
    const unsigned char *b = (const unsigned char *)p->buf + *pos;
    uint64_t x = 0;
    for (size_t i = 0;; i++) {
        if (i == maxbytes)
            return fail_at(p, *pos, "varint longer than %zu bytes", maxbytes);
        if (i >= end - *pos)
            return fail_at(p, *pos, "truncated varint at the end of %s",
                           end == p->len ? "the body" : "its message");
        if (i == 9 && b[i] > 1)
            return fail_at(p, *pos, "varint over 64 bits");
        x |= (uint64_t)(b[i] & 0x7F) << (7 * i);
        if (!(b[i] & 0x80)) {
            *pos += i + 1;
            *v = x;
            return 0;
        }
    }
}

static const char *const wire_names[8] = {"varint",      "fixed64",    "length-delimited",
                                          "group start", "group end",  "fixed32",
                                          "wire type 6", "wire type 7"};

/* The whole field at *pos, before end, into *f; *pos after it. 0, or -1 (error recorded). */
static int next_field(parser *p, size_t *pos, size_t end, field *f) {
    uint64_t tag = 0;
    f->at = *pos;
    if (read_varint(p, pos, end, 10, &tag) < 0)
        return -1;
    if (tag >> 3 == 0 || tag >> 3 > 0x1FFFFFFF)
        return fail_at(p, f->at, "invalid field number %llu", (unsigned long long)(tag >> 3));
    f->num = (uint32_t)(tag >> 3);
    f->wt = (unsigned)(tag & 7);
    if (f->wt == WT_VARINT)
        return read_varint(p, pos, end, 10, &f->v);
    if (f->wt == WT_I64 || f->wt == WT_I32) {
        size_t k = f->wt == WT_I64 ? 8 : 4;
        if (end - *pos < k)
            return fail_at(p, f->at, "field %u: truncated %s value", f->num, wire_names[f->wt]);
        f->v = 0;
        for (size_t i = 0; i < k; i++)
            f->v |= (uint64_t)(unsigned char)p->buf[*pos + i] << (8 * i);
        *pos += k;
        return 0;
    }
    if (f->wt != WT_LEN)
        return fail_at(p, f->at, "field %u: unsupported wire type %u (%s)", f->num, f->wt,
                       wire_names[f->wt]);
    uint64_t n = 0;
    if (read_varint(p, pos, end, 10, &n) < 0)
        return -1;
    if (n > end - *pos)
        return fail_at(p, f->at,
                       "field %u: length %llu beyond the end of its message (%zu bytes left)",
                       f->num, (unsigned long long)n, end - *pos);
    f->s = p->buf + *pos;
    f->n = (size_t)n;
    *pos += f->n;
    return 0;
}

/* What decode calls for each field of a message. 0, or -1 (error recorded). */
typedef int (*field_fn)(parser *p, const field *f);

/* Every field of the message s[0..n) (a range of the body), handed to fn. 0, or -1. */
static int decode(parser *p, const char *s, size_t n, field_fn fn) {
    size_t pos = (size_t)(s - p->buf), end = pos + n;
    field f = {0};
    while (pos < end)
        if (next_field(p, &pos, end, &f) < 0 || fn(p, &f) < 0)
            return -1;
    return 0;
}

/* 0 when known field `what` has wire type wt, else -1 (error recorded). */
static int want(parser *p, const field *f, unsigned wt, const char *what) {
    if (f->wt == wt)
        return 0;
    return fail_at(p, f->at, "%s (field %u) has wire type %s, want %s", what, f->num,
                   wire_names[f->wt], wire_names[wt]);
}

/* A double field into *d. 0 or -1. */
static int get_double(parser *p, const field *f, const char *what, double *d) {
    if (want(p, f, WT_I64, what) < 0)
        return -1;
    memcpy(d, &f->v, sizeof *d);
    return 0;
}

/* A varint field into *v. 0 or -1. */
static int get_varint(parser *p, const field *f, const char *what, uint64_t *v) {
    if (want(p, f, WT_VARINT, what) < 0)
        return -1;
    *v = f->v;
    return 0;
}

/* A string field into *s, *n. 0 or -1. */
static int get_bytes(parser *p, const field *f, const char *what, const char **s, size_t *n) {
    if (want(p, f, WT_LEN, what) < 0)
        return -1;
    *s = f->s;
    *n = f->n;
    return 0;
}

/* ---- the messages -----------------------------------------------------------------------------
 */

/* Appends (a, b) to the arena arrays *av, *bv of n pairs. 0 or -1 (out of memory). */
static int add_pair(parser *p, double **av, double **bv, size_t *n, double a, double b) {
    return push_arena_add_pair(&p->arena, av, bv, n, a, b) == 0 ? 0 : oom(p);
}

/* Gauge, Counter, Untyped: field 1, the value (Counter's exemplar and created timestamp are
 * skipped). 0 or -1. */
static int value_field(parser *p, const field *f) {
    return f->num == 1 ? get_double(p, f, p->vname, p->value) : 0;
}

/* Quantile: 1 quantile, 2 value. 0 or -1. */
static int quantile_field(parser *p, const field *f) {
    if (f->num == 1 || f->num == 2)
        return get_double(p, f, f->num == 1 ? "Quantile.quantile" : "Quantile.value",
                          &p->pair[f->num - 1]);
    return 0;
}

/* Bucket: 1 cumulative_count, 4 cumulative_count_float, 2 upper_bound (3, the exemplar, is
 * skipped). 0 or -1. */
static int bucket_field(parser *p, const field *f) {
    switch (f->num) {
    case 1:
        return get_varint(p, f, "Bucket.cumulative_count", &p->bcount);
    case 2:
        return get_double(p, f, "Bucket.upper_bound", &p->pair[0]);
    case 4:
        return get_double(p, f, "Bucket.cumulative_count_float", &p->bcount_float);
    default:
        return 0;
    }
}

/* A repeated Quantile or Bucket message: decoded, then appended to the metric. 0 or -1. */
static int add_element(parser *p, const field *f, bool bucket) {
    if (want(p, f, WT_LEN, bucket ? "Histogram.bucket" : "Summary.quantile") < 0)
        return -1;
    p->pair[0] = p->pair[1] = 0;
    p->bcount = 0;
    p->bcount_float = 0;
    if (decode(p, f->s, f->n, bucket ? bucket_field : quantile_field) < 0)
        return -1;
    pmetric *m = p->metric;
    if (!bucket)
        return add_pair(p, &m->quantiles, &m->qvalues, &m->nquantiles, p->pair[0], p->pair[1]);
    double count = p->bcount_float > 0 ? p->bcount_float : (double)p->bcount;
    return add_pair(p, &m->bounds, &m->counts, &m->nbuckets, p->pair[0], count);
}

/* Summary: 1 sample_count, 2 sample_sum, 3 quantiles (4, the created timestamp, is
 * skipped). 0 or -1. */
static int summary_field(parser *p, const field *f) {
    switch (f->num) {
    case 1:
        return get_varint(p, f, "Summary.sample_count", &p->metric->s_count);
    case 2:
        return get_double(p, f, "Summary.sample_sum", &p->metric->s_sum);
    case 3:
        return add_element(p, f, false);
    default:
        return 0;
    }
}

/* Histogram: 1 sample_count, 4 sample_count_float, 2 sample_sum, 3 buckets; the native
 * histogram's fields (5..16) are skipped. 0 or -1. */
static int histogram_field(parser *p, const field *f) {
    switch (f->num) {
    case 1:
        return get_varint(p, f, "Histogram.sample_count", &p->metric->h_count);
    case 2:
        return get_double(p, f, "Histogram.sample_sum", &p->metric->h_sum);
    case 3:
        return add_element(p, f, true);
    case 4:
        return get_double(p, f, "Histogram.sample_count_float", &p->metric->h_count_float);
    default:
        return 0;
    }
}

/* LabelPair: 1 name, 2 value. 0 or -1. */
static int label_field(parser *p, const field *f) {
    if (f->num == 1)
        return get_bytes(p, f, "LabelPair.name", &p->lname, &p->lnamelen);
    if (f->num == 2)
        return get_bytes(p, f, "LabelPair.value", &p->lvalue, &p->lvaluelen);
    return 0;
}

/* A LabelPair message: decoded, checked (name, NUL bytes, UTF-8, max_labels) and appended to
 * the metric's labels. 0 or -1. */
static int add_label(parser *p, const field *f) {
    pmetric *m = p->metric;
    if (want(p, f, WT_LEN, "Metric.label") < 0)
        return -1;
    if (p->max_labels && m->nlabels >= p->max_labels)
        return fail_at(p, f->at, "too many labels (max_labels %zu)", p->max_labels);
    p->lname = p->lvalue = "";
    p->lnamelen = p->lvaluelen = 0;
    if (decode(p, f->s, f->n, label_field) < 0)
        return -1;
    if (!reg_valid_label_name(p->lname, p->lnamelen)) {
        if (printable(p->lname, p->lnamelen) && p->lnamelen <= 200)
            return inconsistent(p, "invalid label name \"%.*s\"", (int)p->lnamelen, p->lname);
        return inconsistent(p, "invalid label name");
    }
    if (memchr(p->lvalue, 0, p->lvaluelen))
        return fail_at(p, f->at, "label %.*s: NUL byte in its value", (int)p->lnamelen, p->lname);
    if (!reg_valid_utf8(p->lvalue, p->lvaluelen))
        return inconsistent(p, "label %.*s: value is not valid UTF-8", (int)p->lnamelen, p->lname);
    exp_text_label *v = push_arena_vec_room(&p->arena, m->labels, m->nlabels, sizeof *v);
    if (!v)
        return oom(p);
    m->labels = v;
    v[m->nlabels].name = push_arena_str(&p->arena, p->lname, p->lnamelen);
    v[m->nlabels].value = push_arena_str(&p->arena, p->lvalue, p->lvaluelen);
    if (!v[m->nlabels].name || !v[m->nlabels].value)
        return oom(p);
    m->nlabels++;
    return 0;
}

/* A Gauge, Counter or Untyped message of the metric (bit `has`), into *value. 0 or -1. */
static int value_message(parser *p, const field *f, const char *what, unsigned has, double *value) {
    if (want(p, f, WT_LEN, what) < 0)
        return -1;
    p->metric->has |= has;
    p->vname = what;
    p->value = value;
    return decode(p, f->s, f->n, value_field);
}

/* Metric: 1 labels, 2 gauge, 3 counter, 4 summary, 5 untyped, 6 timestamp_ms, 7 histogram.
 * 0 or -1. */
static int metric_field(parser *p, const field *f) {
    pmetric *m = p->metric;
    switch (f->num) {
    case 1:
        return add_label(p, f);
    case 2:
        return value_message(p, f, "Gauge.value", HAS_GAUGE, &m->gauge);
    case 3:
        return value_message(p, f, "Counter.value", HAS_COUNTER, &m->counter);
    case 5:
        return value_message(p, f, "Untyped.value", HAS_UNTYPED, &m->untyped);
    case 4:
    case 7:
        if (want(p, f, WT_LEN, f->num == 4 ? "Metric.summary" : "Metric.histogram") < 0)
            return -1;
        m->has |= f->num == 4 ? HAS_SUMMARY : HAS_HISTOGRAM;
        return decode(p, f->s, f->n, f->num == 4 ? summary_field : histogram_field);
    case 6: {
        uint64_t ts = 0;
        if (get_varint(p, f, "Metric.timestamp_ms", &ts) < 0)
            return -1;
        m->has |= HAS_TIMESTAMP;
        m->timestamp_ms = (int64_t)ts;
        return 0;
    }
    default:
        return 0;
    }
}

/* MetricFamily: 1 name, 2 help, 3 type, 4 metrics (5, the unit, is skipped). 0 or -1. */
static int family_field(parser *p, const field *f) {
    pfamily *fam = &p->fam;
    switch (f->num) {
    case 1:
        return get_bytes(p, f, "MetricFamily.name", &fam->name, &fam->namelen);
    case 2:
        return get_bytes(p, f, "MetricFamily.help", &fam->help, &fam->helplen);
    case 3:
        return get_varint(p, f, "MetricFamily.type", &fam->type);
    case 4: {
        if (want(p, f, WT_LEN, "MetricFamily.metric") < 0)
            return -1;
        pmetric *v = push_arena_vec_room(&p->arena, fam->metrics, fam->nmetrics, sizeof *v);
        if (!v)
            return oom(p);
        fam->metrics = v;
        p->metric = &v[fam->nmetrics++];
        memset(p->metric, 0, sizeof *p->metric);
        return decode(p, f->s, f->n, metric_field);
    }
    default:
        return 0;
    }
}

/* ---- a family's end: checks and the result ------------------------------------------------- */

static const char *const type_names[] = {"COUNTER", "GAUGE", "SUMMARY", "UNTYPED", "HISTOGRAM"};
static const reg_type types[] = {REG_COUNTER, REG_GAUGE, REG_SUMMARY, REG_UNTYPED, REG_HISTOGRAM};
static const unsigned type_needs[] = {HAS_COUNTER, HAS_GAUGE, HAS_SUMMARY, HAS_UNTYPED,
                                      HAS_HISTOGRAM};

/* qsort order of label pointers by name. */
static int by_name(const void *a, const void *b) {
    return strcmp((*(const exp_text_label *const *)a)->name,
                  (*(const exp_text_label *const *)b)->name);
}

/* The labels of metric m of a family of type t (its index in the family, i): reserved names
 * (and quantile on any metric with a Summary, as Go's consistency check has it) and a name
 * given twice are errors. 0 or -1. */
static int check_labels(parser *p, reg_type t, const pmetric *m, size_t i) {
    const char *fname = p->fam.name;
    int flen = (int)p->fam.namelen;
    if (m->nlabels > p->ordercap) {
        const exp_text_label **o = realloc(p->order, m->nlabels * sizeof *o);
        if (!o)
            return oom(p);
        p->order = o;
        p->ordercap = m->nlabels;
    }
    for (size_t k = 0; k < m->nlabels; k++) {
        const char *n = m->labels[k].name;
        if (reg_reserved_label_name(t, n, strlen(n)) ||
            ((m->has & HAS_SUMMARY) && strcmp(n, "quantile") == 0))
            return inconsistent(p, "metric %zu of %.*s: label name \"%s\" is reserved", i + 1, flen,
                                fname, n);
        p->order[k] = &m->labels[k];
    }
    if (m->nlabels > 1)
        qsort((void *)p->order, m->nlabels, sizeof *p->order, by_name);
    for (size_t k = 1; k < m->nlabels; k++)
        if (strcmp(p->order[k]->name, p->order[k - 1]->name) == 0)
            return inconsistent(p, "metric %zu of %.*s: duplicate label name \"%s\"", i + 1, flen,
                                fname, p->order[k]->name);
    return 0;
}

/* A body that decodes but that the Pushgateway's consistency check refuses (a metric of the
 * wrong type, a label name invalid, reserved or twice, a value not UTF-8): status -3, so the
 * push records its failure time, as the Pushgateway's does. Returns -1. */
static int inconsistent(parser *p, const char *fmt, ...) {
    p->status = -3;
    if (p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, p->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The +Inf bucket Go's text writer shows when none was sent: count, the sample count. 0 or
 * -1 (out of memory). */
static int add_inf_bucket(parser *p, pmetric *m, double count) {
    for (size_t k = 0; k < m->nbuckets; k++)
        if (isinf(m->bounds[k]) && m->bounds[k] > 0)
            return 0;
    return add_pair(p, &m->bounds, &m->counts, &m->nbuckets, INFINITY, count);
}

/* Metric i of the family, of type index ti, into *out: the value of its type's message. 0,
 * or -1 (a metric without its type's message, a label error). */
static int build_metric(parser *p, size_t ti, pmetric *m, size_t i, exp_text_metric *out) {
    reg_type t = types[ti];
    if (!(m->has & type_needs[ti]))
        return inconsistent(p, "collected metric %zu of \"%.*s\" is not a %s", i + 1,
                            (int)p->fam.namelen, p->fam.name, type_names[ti]);
    if (check_labels(p, t, m, i) < 0)
        return -1;
    *out = (exp_text_metric){.nlabels = m->nlabels,
                             .labels = m->labels,
                             .has_timestamp = (m->has & HAS_TIMESTAMP) != 0,
                             .timestamp_ms = m->timestamp_ms,
                             .line = (unsigned)(p->index > UINT32_MAX ? UINT32_MAX : p->index)};
    if (t == REG_COUNTER || t == REG_GAUGE || t == REG_UNTYPED) {
        out->value = t == REG_COUNTER ? m->counter : t == REG_GAUGE ? m->gauge : m->untyped;
        return 0;
    }
    out->has_sum = out->has_count = 1;
    if (t == REG_SUMMARY) {
        out->sum = m->s_sum;
        out->count = (double)m->s_count;
        out->nquantiles = m->nquantiles;
        out->quantiles = m->quantiles;
        out->qvalues = m->qvalues;
        return 0;
    }
    out->sum = m->h_sum;
    out->count = m->h_count_float > 0 ? m->h_count_float : (double)m->h_count;
    if (add_inf_bucket(p, m, out->count) < 0)
        return -1;
    out->nbuckets = m->nbuckets;
    out->bounds = m->bounds;
    out->counts = m->counts;
    return 0;
}

/* The family's name, type and help checked; *ti its type's index. 0 or -1. */
static int check_family(parser *p, size_t *ti) {
    const pfamily *f = &p->fam;
    if (!f->name || !reg_valid_metric_name(f->name, f->namelen)) {
        if (f->name && f->namelen <= 200 && printable(f->name, f->namelen))
            return fail_at(p, p->fam_at, "invalid metric name \"%.*s\"", (int)f->namelen, f->name);
        return fail_at(p, p->fam_at, "invalid metric name");
    }
    if (f->type == 5)
        return fail_at(p, p->fam_at, "%.*s: unsupported metric type GAUGE_HISTOGRAM",
                       (int)f->namelen, f->name);
    if (f->type >= sizeof types / sizeof types[0])
        return fail_at(p, p->fam_at, "%.*s: unknown metric type %llu", (int)f->namelen, f->name,
                       (unsigned long long)f->type);
    if (f->help && memchr(f->help, 0, f->helplen))
        return fail_at(p, p->fam_at, "%.*s: NUL byte in its help", (int)f->namelen, f->name);
    *ti = (size_t)f->type;
    return 0;
}

/* Puts the converted family into the result: in place of an earlier one of its name (Go
 * keeps the last), else after the others. 0 or -1 (out of memory). */
static int place_family(parser *p, exp_text_family *nf) {
    uintptr_t at = (uintptr_t)reg_strmap_get(p->byname, p->fam.name, p->fam.namelen);
    exp_text_family *slot;
    if (at) {
        slot = &p->out[at - 1];
        p->nmetrics -= slot->nmetrics;
        p->nonempty -= slot->nmetrics > 0;
    } else {
        exp_text_family *v = push_arena_vec_room(&p->arena, p->out, p->nout, sizeof *v);
        if (!v)
            return oom(p);
        p->out = v;
        slot = &v[p->nout];
        nf->name = push_arena_str(&p->arena, p->fam.name, p->fam.namelen);
        if (!nf->name || reg_strmap_put(p->byname, nf->name, p->fam.namelen,
                                        (void *)(uintptr_t)(p->nout + 1)) != REG_OK)
            return oom(p);
        p->nout++;
    }
    if (at)
        nf->name = slot->name;
    *slot = *nf;
    p->nmetrics += nf->nmetrics;
    p->nonempty += nf->nmetrics > 0;
    return 0;
}

/* The family just decoded, checked and converted into the result. A family without metrics
 * is not checked (Go never looks at it) but still replaces an earlier one of its name. 0 or
 * -1. */
static int finish_family(parser *p) {
    pfamily *f = &p->fam;
    exp_text_family nf = {0};
    if (f->nmetrics == 0) {
        if (f->name && reg_strmap_get(p->byname, f->name, f->namelen))
            return place_family(p, &nf);
        return 0;
    }
    size_t ti = 0;
    if (check_family(p, &ti) < 0)
        return -1;
    exp_text_metric *ms = push_arena_alloc(&p->arena, f->nmetrics * sizeof *ms);
    if (!ms)
        return oom(p);
    for (size_t i = 0; i < f->nmetrics; i++)
        if (build_metric(p, ti, &f->metrics[i], i, &ms[i]) < 0)
            return -1;
    nf.type = types[ti];
    nf.nmetrics = f->nmetrics;
    nf.metrics = ms;
    if (f->help && f->helplen) {
        nf.help = push_arena_str(&p->arena, f->help, f->helplen);
        if (!nf.help)
            return oom(p);
    }
    return place_family(p, &nf);
}

/* ---- the whole body ------------------------------------------------------------------------- */

/* Every length-prefixed MetricFamily message of the body, then the limits. 0 or -1. */
static int parse_body(parser *p) {
    size_t pos = 0;
    while (pos < p->len) {
        uint64_t n = 0; /* set by read_varint: gcc -O2 cannot tell */
        size_t at = pos;
        p->index++;
        if (read_varint(p, &pos, p->len, 5, &n) < 0)
            return -1;
        if (n > p->len - pos)
            return fail_at(p, at, "message length %llu beyond the end of the body (%zu bytes left)",
                           (unsigned long long)n, p->len - pos);
        p->fam = (pfamily){0};
        p->fam_at = pos;
        if (decode(p, p->buf + pos, (size_t)n, family_field) < 0 || finish_family(p) < 0)
            return -1;
        pos += (size_t)n;
    }
    /* The limits bound the result, so they are checked once every replacement is known (the
     * memory used is bounded by the body's size anyway). */
    if (p->max_families && p->nonempty > p->max_families)
        return fail_at(p, p->len, "too many metric families (max_families %zu)", p->max_families);
    if (p->max_metrics && p->nmetrics > p->max_metrics)
        return fail_at(p, p->len, "too many metrics (max_metrics %zu)", p->max_metrics);
    return 0;
}

/* The result: the families with metrics, in order. 0 or -1 (out of memory). */
static int build_result(parser *p, exp_text_result *out) {
    exp_text_family *v = NULL;
    if (p->nonempty) {
        v = push_arena_alloc(&p->arena, p->nonempty * sizeof *v);
        if (!v)
            return oom(p);
    }
    size_t k = 0;
    for (size_t i = 0; v && i < p->nout; i++) /* v is NULL only when no family has metrics */
        if (p->out[i].nmetrics)
            v[k++] = p->out[i];
    out->families = v;
    out->nfamilies = k;
    out->arena = p->arena;
    p->arena = NULL;
    return 0;
}

/* See protoparse.h. */
int exp_proto_parse(const char *buf, size_t len, const exp_text_limits *lim, exp_text_result *out,
                    char *err, size_t errlen) {
    parser p = {.buf = buf, .len = len, .err = err, .errlen = err ? errlen : 0};
    memset(out, 0, sizeof *out);
    if (p.errlen)
        err[0] = 0;
    if (lim) {
        p.max_labels = lim->max_labels;
        p.max_families = lim->max_families;
        p.max_metrics = lim->max_metrics;
    }
    p.byname = reg_strmap_create(0);
    if (!p.byname)
        oom(&p);
    else if (parse_body(&p) == 0)
        build_result(&p, out);
    push_arena_free(p.arena);
    reg_strmap_free(p.byname);
    free(p.order);
    if (p.status)
        memset(out, 0, sizeof *out);
    return p.status;
}

/* ---- Content-Type: Go's mime.ParseMediaType, as far as the Pushgateway's decision needs ---- */

/* The byte length of the Unicode white space rune (Go's unicode.IsSpace) at s[0..n), or 0.
 * Cannot fail. */
static size_t space_len(const unsigned char *s, size_t n) {
    static const char *const wide[] = {"\xC2\x85",     "\xC2\xA0",     "\xE1\x9A\x80",
                                       "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE2\x80\xAF",
                                       "\xE2\x81\x9F", "\xE3\x80\x80"};
    if (n == 0)
        return 0;
    if (s[0] == ' ' || (s[0] >= '\t' && s[0] <= '\r'))
        return 1;
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x80 && s[2] >= 0x80 && s[2] <= 0x8A)
        return 3; /* U+2000..U+200A */
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++) {
        size_t k = strlen(wide[i]);
        if (n >= k && memcmp(s, wide[i], k) == 0)
            return k;
    }
    return 0;
}

/* s[i..n) after its leading white space (strings.TrimLeftFunc(s, unicode.IsSpace)). Cannot
 * fail. */
static size_t skip_space(const char *s, size_t i, size_t n) {
    size_t k;
    while ((k = space_len((const unsigned char *)s + i, n - i)) > 0)
        i += k;
    return i;
}

/* Whether s[0..n) is `want` (lowercase ASCII) once Go's strings.ToLower folded it: ASCII
 * letters, and the two runes whose lower case is ASCII (U+0130 is i, U+212A is k). With
 * trim, white space around it is dropped first (strings.TrimSpace). Cannot fail. */
static bool fold_equal(const char *s, size_t n, const char *want, bool trim) {
    size_t i = trim ? skip_space(s, 0, n) : 0;
    for (; *want; want++) {
        unsigned char c = i < n ? (unsigned char)s[i] : 0;
        if (i < n && c < 0x80 && (c >= 'A' && c <= 'Z' ? c + 32 : c) == (unsigned char)*want) {
            i++;
        } else if (*want == 'i' && n - i >= 2 && memcmp(s + i, "\xC4\xB0", 2) == 0) {
            i += 2;
        } else if (*want == 'k' && n - i >= 3 && memcmp(s + i, "\xE2\x84\xAA", 3) == 0) {
            i += 3;
        } else {
            return false;
        }
    }
    return (trim ? skip_space(s, i, n) : i) == n;
}

/* Go's isTSpecial: the MIME separators. Cannot fail. */
static bool tspecial(char c) {
    return c != 0 && strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* The length of the MIME token at s[i..n) (printable ASCII but separators). Cannot fail. */
static size_t token_len(const char *s, size_t i, size_t n) {
    size_t k = 0;
    while (i + k < n && s[i + k] > 0x20 && s[i + k] < 0x7F && !tspecial(s[i + k]))
        k++;
    return k;
}

/* A parameter: name (folded to lower case) and value (unquoted), in the scratch buffer. */
typedef struct {
    const char *name, *value;
    size_t namelen, valuelen;
} mparam;

/* Go's consumeValue at s[*i..n): a token, or a quoted string unescaped into dst (a backslash
 * before a separator escapes it, else is kept; CR or LF ends it unsuccessfully). The value's
 * length, or -1 when there is none (then *i is unchanged). Cannot fail otherwise. */
static long consume_value(const char *s, size_t *i, size_t n, char *dst) {
    if (*i < n && s[*i] != '"') {
        size_t k = token_len(s, *i, n);
        memcpy(dst, s + *i, k);
        *i += k;
        return k ? (long)k : -1;
    }
    size_t k = 0;
    for (size_t j = *i + 1; j < n; j++) {
        if (s[j] == '"') {
            *i = j + 1;
            return (long)k;
        }
        if (s[j] == '\\' && j + 1 < n && tspecial(s[j + 1]))
            j++;
        else if (s[j] == '\r' || s[j] == '\n')
            return -1;
        dst[k++] = s[j];
    }
    return -1;
}

/* Go's consumeMediaParam at s[*i..n): `; name = value`, name folded to lower case, both
 * written at *dst (advanced past them). 1 with *pr filled and *i after it; 0 when there is
 * no parameter there (*i unchanged). Cannot fail. */
static int consume_param(const char *s, size_t *i, size_t n, char **dst, mparam *pr) {
    size_t j = skip_space(s, *i, n);
    if (j >= n || s[j] != ';')
        return 0;
    j = skip_space(s, j + 1, n);
    size_t k = token_len(s, j, n);
    if (k == 0)
        return 0;
    for (size_t c = 0; c < k; c++)
        (*dst)[c] = (char)(s[j + c] >= 'A' && s[j + c] <= 'Z' ? s[j + c] + 32 : s[j + c]);
    pr->name = *dst;
    pr->namelen = k;
    j = skip_space(s, j + k, n);
    if (j >= n || s[j] != '=')
        return 0;
    j = skip_space(s, j + 1, n);
    long v = consume_value(s, &j, n, *dst + k);
    if (v < 0)
        return 0;
    pr->value = *dst + k;
    pr->valuelen = (size_t)v;
    *dst += k + (size_t)v;
    *i = j;
    return 1;
}

/* qsort order of parameters: by name, then value. */
static int by_param(const void *a, const void *b) {
    const mparam *x = a, *y = b;
    size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
    int c = memcmp(x->name, y->name, n);
    if (c || x->namelen != y->namelen)
        return c ? c : (x->namelen > y->namelen) - (x->namelen < y->namelen);
    n = x->valuelen < y->valuelen ? x->valuelen : y->valuelen;
    c = memcmp(x->value, y->value, n);
    return c ? c : (x->valuelen > y->valuelen) - (x->valuelen < y->valuelen);
}

/* The parameters after the media type (s[i..n), starting at its ';'), sorted, into ps (room
 * for n / 2 + 1), strings into dst (room for n). Their count, or -1 when Go's parse fails:
 * bad syntax (a lone trailing ';' is fine), or a name given twice with different values.
 * Cannot fail otherwise. */
static long parse_params(const char *s, size_t i, size_t n, mparam *ps, char *dst) {
    size_t np = 0;
    for (;;) {
        i = skip_space(s, i, n);
        if (i >= n)
            break;
        if (!consume_param(s, &i, n, &dst, &ps[np])) {
            if (s[i] == ';' && skip_space(s, i + 1, n) == n)
                break;
            return -1;
        }
        np++;
    }
    if (np > 1)
        qsort(ps, np, sizeof *ps, by_param);
    for (size_t k = 1; k < np; k++)
        if (ps[k].namelen == ps[k - 1].namelen &&
            memcmp(ps[k].name, ps[k - 1].name, ps[k].namelen) == 0 &&
            by_param(&ps[k], &ps[k - 1]) != 0)
            return -1;
    return (long)np;
}

/* The parameter called name[0..len) among the sorted ps, or NULL. Cannot fail. */
static const mparam *find_param(const mparam *ps, size_t np, const char *name, size_t len) {
    mparam key = {name, "", len, 0};
    size_t lo = 0, hi = np;
    while (lo < hi) { /* the first not below (name, "") */
        size_t mid = lo + (hi - lo) / 2;
        if (by_param(&ps[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < np && ps[lo].namelen == len && memcmp(ps[lo].name, name, len) == 0 ? &ps[lo] : NULL;
}

/* Go's percentHexUnescape of s[0..n) into dst: its length, or -1 when a '%' is not followed
 * by two hex digits. Cannot fail otherwise. */
static long percent_unescape(const char *s, size_t n, char *dst) {
    static const char hex[] = "0123456789abcdefABCDEF";
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            dst[k++] = s[i];
            continue;
        }
        if (i + 2 >= n || !s[i + 1] || !s[i + 2] || !strchr(hex, s[i + 1]) ||
            !strchr(hex, s[i + 2]))
            return -1;
        char h[3] = {s[i + 1], s[i + 2], 0};
        dst[k++] = (char)strtol(h, NULL, 16);
        i += 2;
    }
    return (long)k;
}

/* Go's decode2231Enc of s[0..n) (charset'language'percent-encoded, charset us-ascii or
 * utf-8) into dst: its length, or -1. Cannot fail otherwise. */
static long decode_2231(const char *s, size_t n, char *dst) {
    const char *q1 = memchr(s, '\'', n);
    const char *q2 = q1 ? memchr(q1 + 1, '\'', n - (size_t)(q1 + 1 - s)) : NULL;
    if (!q2 || q1 == s)
        return -1;
    size_t cl = (size_t)(q1 - s);
    if (!fold_equal(s, cl, "us-ascii", false) && !fold_equal(s, cl, "utf-8", false))
        return -1;
    return percent_unescape(q2 + 1, n - (size_t)(q2 + 1 - s), dst);
}

/* The value Go's ParseMediaType gives parameter `name`: a plain `name=`, replaced by an RFC
 * 2231 `name*=` that decodes, or else by the pieces `name*0`, `name*1*`, ... joined, when
 * there is a piece 0. Whether it equals want. Cannot fail. */
static bool param_is(const mparam *ps, size_t np, const char *name, const char *want, char *dst) {
    char key[48];
    size_t nl = strlen(name), wl = strlen(want);
    const mparam *pr;
    snprintf(key, sizeof key, "%s*", name);
    if ((pr = find_param(ps, np, key, nl + 1)) != NULL) {
        long k = decode_2231(pr->value, pr->valuelen, dst);
        if (k >= 0)
            return (size_t)k == wl && memcmp(dst, want, wl) == 0;
    } else {
        size_t len = 0;
        bool valid = false;
        for (unsigned i = 0;; i++) {
            int kl = snprintf(key, sizeof key, "%s*%u*", name, i);
            bool encoded = false;
            if ((pr = find_param(ps, np, key, (size_t)kl - 1)) == NULL) {
                if ((pr = find_param(ps, np, key, (size_t)kl)) == NULL)
                    break;
                encoded = true;
            }
            valid = true;
            long k = !encoded ? (memcpy(dst + len, pr->value, pr->valuelen), (long)pr->valuelen)
                     : i == 0 ? decode_2231(pr->value, pr->valuelen, dst + len)
                              : percent_unescape(pr->value, pr->valuelen, dst + len);
            len += k > 0 ? (size_t)k : 0;
        }
        if (valid)
            return len == wl && memcmp(dst, want, wl) == 0;
    }
    pr = find_param(ps, np, name, nl);
    return pr && pr->valuelen == wl && memcmp(pr->value, want, wl) == 0;
}

/* See protoparse.h. */
int exp_proto_content_type(const char *content_type) {
    if (!content_type)
        return 0;
    size_t n = strlen(content_type);
    const char *semi = memchr(content_type, ';', n);
    size_t base = semi ? (size_t)(semi - content_type) : n;
    if (!fold_equal(content_type, base, "application/vnd.google.protobuf", true))
        return 0;
    mparam *ps = malloc((n / 2 + 1) * sizeof *ps);
    char *strs = malloc(2 * n + 1); /* the parameters' strings, then a joined value */
    if (ps == NULL || strs == NULL) {
        free(ps);
        free(strs);
        return -1;
    }
    long np = parse_params(content_type, base, n, ps, strs);
    int yes = np >= 0 &&
              param_is(ps, (size_t)np, "proto", "io.prometheus.client.MetricFamily", strs + n) &&
              param_is(ps, (size_t)np, "encoding", "delimited", strs + n);
    free(ps);
    free(strs);
    return yes;
}
