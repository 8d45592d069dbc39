/* quantile.c - targeted-quantile streams over sliding age buckets, for summaries.
 *
 * Each age bucket is a CKMS "targeted quantiles" stream (Cormode, Korn, Muthukrishnan,
 * Srivastava, "Effective Computation of Biased Quantiles over Data Streams"): a sorted list of
 * (value, width, delta) tuples, compressed under an error invariant f(r, n) derived from the
 * objectives. Window handling follows client_golang's Summary: every observation goes to every
 * bucket's stream, queries read the head (oldest) stream, and each time a bucket's duration
 * (max_age / age_buckets) elapses the head is reset and the next stream becomes the head.
 *
 * Observations collect in one hot buffer shared by all streams; it is sorted once and merged
 * into every stream when it fills, when a bucket expires, or before a query. While the head
 * stream has never been merged into, its whole content is the buffer and queries are exact.
 * Values are ordered totally: NaN sorts above +Inf, so hostile input cannot break the sort.
 */
#include "quantile.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QS_DEF_MAX_AGE_NS (600ull * 1000000000ull)
#define QS_DEF_AGE_BUCKETS 5u
#define QS_DEF_BUF_CAP 500u

/* One tuple of a stream: width is g (rank gap to the predecessor), delta the rank
 * uncertainty. Doubles, as the invariant arithmetic is in floating point anyway. */
typedef struct {
    double value;
    double width;
    double delta;
} qs_sample;

typedef struct {
    qs_sample *l;
    size_t len, cap;
    double n; /* observations merged since the last reset */
} qs_stream;

/* One objective, pre-digested for the invariant. */
typedef struct {
    double q, e;
    double lo_k; /* 2e/q: factor for ranks at or above q*n */
    double hi_k; /* 2e/(1-q): factor for ranks below q*n */
    int flat;    /* q is 0 or 1: use the uniform bound 2en */
    int valid;   /* 0 for NaN objectives: no constraint, query yields NaN */
} qs_target;

struct reg_qstream {
    qs_target *t;
    size_t nt;
    size_t nvalid;

    double *buf; /* hot buffer, fixed capacity */
    size_t blen, bcap;
    int bsorted;

    qs_stream *s;
    unsigned nb;   /* age buckets */
    unsigned head; /* index of the oldest stream, the one queried */
    uint64_t dur;  /* one bucket's duration */
    uint64_t exp;  /* the head stream expires after this time */

    /* Spare sample array for merges; swapped with the merged stream's array afterwards, so
     * a merge never copies back and arrays only grow while the window's content grows. */
    qs_sample *spare;
    size_t spare_cap;
};

/* Total order on doubles: NaN above everything. */
static int qs_less(double a, double b) {
    if (isnan(a))
        return 0;
    return isnan(b) || a < b;
}

static void qs_sift(double *a, size_t root, size_t n) {
    for (;;) {
        size_t c = 2 * root + 1;
        if (c >= n)
            return;
        if (c + 1 < n && qs_less(a[c], a[c + 1]))
            c++;
        if (!qs_less(a[root], a[c]))
            return;
        double tmp = a[root];
        a[root] = a[c];
        a[c] = tmp;
        root = c;
    }
}

/* Heapsort: in place, no recursion and no allocation (glibc's qsort may malloc). */
static void qs_sort(double *a, size_t n) {
    if (n < 2)
        return;
    for (size_t i = n / 2; i-- > 0;)
        qs_sift(a, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        double tmp = a[0];
        a[0] = a[end];
        a[end] = tmp;
        qs_sift(a, 0, end);
    }
}

/* The targeted invariant: the largest rank uncertainty allowed at rank r among n. */
static double qs_f(const reg_qstream *q, double r, double n) {
    double m = DBL_MAX;
    for (size_t i = 0; i < q->nt; i++) {
        const qs_target *t = &q->t[i];
        double f;
        if (!t->valid)
            continue;
        if (t->flat)
            f = 2.0 * t->e * n;
        else if (t->q * n <= r)
            f = t->lo_k * r;
        else
            f = t->hi_k * (n - r);
        if (f < m)
            m = f;
    }
    return m;
}

/* Grow the spare array to hold need samples. 0 or -1 when out of memory. */
static int qs_spare_reserve(reg_qstream *q, size_t need) {
    if (q->spare_cap >= need)
        return 0;
    size_t cap = q->spare_cap ? q->spare_cap : 64;
    while (cap < need)
        cap *= 2;
    qs_sample *p = realloc(q->spare, cap * sizeof(*p));
    if (!p)
        return -1;
    q->spare = p;
    q->spare_cap = cap;
    return 0;
}

/* Merge adjacent tuples wherever the invariant allows; one backward pass, in place. */
static void qs_compress(const reg_qstream *q, qs_stream *st) {
    if (st->len < 2)
        return;
    qs_sample *l = st->l;
    size_t w = st->len - 1; /* the tuple that absorbs its predecessors */
    double r = st->n - 1 - l[w].width;
    for (size_t i = st->len - 1; i-- > 0;) {
        qs_sample c = l[i];
        if (c.width + l[w].width + l[w].delta <= qs_f(q, r, st->n)) {
            l[w].width += c.width;
        } else {
            w--;
            l[w] = c; /* w > i until now, so slot w is already read */
        }
        r -= c.width;
    }
    st->len -= w;
    if (w)
        memmove(l, l + w, st->len * sizeof(*l));
}

/* Merge the sorted buffer into one stream. On allocation failure the stream misses them. */
static void qs_merge(reg_qstream *q, qs_stream *st) {
    if (qs_spare_reserve(q, st->len + q->blen) != 0)
        return;
    qs_sample *out = q->spare;
    size_t o = 0, i = 0;
    double r = 0, n = st->n;
    for (size_t j = 0; j < q->blen; j++) {
        double v = q->buf[j];
        /* A new value goes after existing equal ones. */
        while (i < st->len && !qs_less(v, st->l[i].value)) {
            r += st->l[i].width;
            out[o++] = st->l[i++];
        }
        double delta = 0;
        if (i < st->len) {
            delta = floor(qs_f(q, r, n)) - 1;
            if (!(delta > 0))
                delta = 0;
        }
        out[o++] = (qs_sample){v, 1, delta};
        n += 1;
        r += 1;
    }
    while (i < st->len)
        out[o++] = st->l[i++];

    size_t out_cap = q->spare_cap;
    q->spare = st->l;
    q->spare_cap = st->cap;
    st->l = out;
    st->cap = out_cap;
    st->len = o;
    st->n = n;
    qs_compress(q, st);
}

/* Merge the buffer into streams head+skip .. head+nb-1 (the others are about to be reset),
 * then empty it. */
static void qs_flush(reg_qstream *q, unsigned skip) {
    if (q->blen == 0)
        return;
    if (skip < q->nb) {
        if (!q->bsorted)
            qs_sort(q->buf, q->blen);
        for (unsigned k = skip; k < q->nb; k++)
            qs_merge(q, &q->s[(q->head + k) % q->nb]);
    }
    q->blen = 0;
    q->bsorted = 1;
}

/* Rotate the age buckets so that now falls in the head's last period; buffered samples,
 * which belong to the period that just ended, are merged first. */
static void qs_advance(reg_qstream *q, uint64_t now) {
    if (now <= q->exp)
        return;
    uint64_t diff = now - q->exp;
    uint64_t k = diff / q->dur + (diff % q->dur != 0);
    if (k > (UINT64_MAX - q->exp) / q->dur)
        q->exp = UINT64_MAX;
    else
        q->exp += k * q->dur;

    unsigned resets = k >= q->nb ? q->nb : (unsigned)k;
    qs_flush(q, resets);
    for (unsigned j = 0; j < resets; j++) {
        qs_stream *st = &q->s[(q->head + j) % q->nb];
        st->len = 0;
        st->n = 0;
    }
    q->head = (unsigned)((q->head + k % q->nb) % q->nb);
}

/* NULL on allocation failure, or when objectives is NULL while n > 0. */
reg_qstream *reg_qstream_create(const reg_objective *objectives, size_t n, uint64_t max_age_ns,
                                unsigned age_buckets, unsigned buf_cap, uint64_t now_ns) {
    if (n && !objectives)
        return NULL;
    reg_qstream *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    if (!max_age_ns)
        max_age_ns = QS_DEF_MAX_AGE_NS;
    q->nb = age_buckets ? age_buckets : QS_DEF_AGE_BUCKETS;
    q->bcap = buf_cap ? buf_cap : QS_DEF_BUF_CAP;
    q->dur = max_age_ns / q->nb;
    if (!q->dur)
        q->dur = 1;
    q->exp = now_ns > UINT64_MAX - q->dur ? UINT64_MAX : now_ns + q->dur;
    q->bsorted = 1;

    q->nt = n;
    q->t = calloc(n ? n : 1, sizeof(*q->t));
    q->buf = malloc(q->bcap * sizeof(*q->buf));
    q->s = calloc(q->nb, sizeof(*q->s));
    if (!q->t || !q->buf || !q->s) {
        reg_qstream_destroy(q);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        qs_target *t = &q->t[i];
        t->q = objectives[i].quantile;
        t->e = objectives[i].error;
        t->valid = !isnan(t->q) && !isnan(t->e);
        if (!t->valid)
            continue;
        q->nvalid++;
        /* Out-of-range input is clamped; a negative error means "exact" like 0 does. */
        t->q = t->q < 0 ? 0 : t->q > 1 ? 1 : t->q;
        t->e = t->e < 0 ? 0 : t->e;
        /* At q = 0 or 1 one branch divides by zero; the uniform bound 2en is never looser
         * than the targeted one, so it keeps the guarantee. */
        t->flat = t->q <= 0 || t->q >= 1;
        if (!t->flat) {
            t->lo_k = 2.0 * t->e / t->q;
            t->hi_k = 2.0 * t->e / (1.0 - t->q);
        }
    }
    return q;
}

/* Cannot fail; q may be NULL. */
void reg_qstream_destroy(reg_qstream *q) {
    if (!q)
        return;
    if (q->s)
        for (unsigned i = 0; i < q->nb; i++)
            free(q->s[i].l);
    free(q->s);
    free(q->spare);
    free(q->buf);
    free(q->t);
    free(q);
}

/* Cannot fail. */
void reg_qstream_observe(reg_qstream *q, double v, uint64_t now_ns) {
    if (!q->nvalid)
        return; /* nothing would ever read the streams */
    qs_advance(q, now_ns);
    q->buf[q->blen++] = v;
    q->bsorted = 0;
    if (q->blen == q->bcap)
        qs_flush(q, 0);
}

/* Rank query on a stream, as CKMS: the last tuple whose maximal rank stays within the
 * allowed error of the target rank. */
static double qs_stream_query(const reg_qstream *q, const qs_stream *st, double phi) {
    double t = ceil(phi * st->n);
    t += ceil(qs_f(q, t, st->n) / 2);
    const qs_sample *p = &st->l[0];
    double r = 0;
    for (size_t i = 1; i < st->len; i++) {
        const qs_sample *c = &st->l[i];
        r += p->width;
        if (r + c->width + c->delta > t)
            return p->value;
        p = c;
    }
    return p->value;
}

/* Cannot fail. */
void reg_qstream_query(reg_qstream *q, uint64_t now_ns, double *out) {
    qs_advance(q, now_ns);
    qs_stream *h = &q->s[q->head];
    if (h->len == 0 && q->blen > 0) {
        /* Streams younger than the head hold a subset of it, so all are empty: the buffer is
         * the whole window. Answer exactly and keep it buffered. */
        if (!q->bsorted) {
            qs_sort(q->buf, q->blen);
            q->bsorted = 1;
        }
        for (size_t i = 0; i < q->nt; i++) {
            if (!q->t[i].valid) {
                out[i] = NAN;
                continue;
            }
            size_t k = (size_t)ceil((double)q->blen * q->t[i].q);
            if (k > 0)
                k--;
            if (k >= q->blen)
                k = q->blen - 1;
            out[i] = q->buf[k];
        }
        return;
    }
    qs_flush(q, 0);
    for (size_t i = 0; i < q->nt; i++)
        out[i] = (h->len == 0 || !q->t[i].valid) ? NAN : qs_stream_query(q, h, q->t[i].q);
}
