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
 *
 * Where this differs from beorn7/perks (which client_golang uses), and why: perks can miss
 * an objective's error, badly on descending input (a q=0.5 estimate off by about 6e for
 * e=0.05, measured), and client_golang's own tests allow 2e. Here, provably within e*n:
 *  - a sample merged in gets delta = g+delta-1 of its successor (its true rank uncertainty),
 *    or 0 below the minimum or above the maximum, instead of f(r)-1;
 *  - the invariant g_i + delta_i <= f(r, n) is evaluated at the predecessor's rank r, as in
 *    the paper, so that a merge can never loosen a tuple beyond what its position allows;
 *  - the targeted invariant alone bounds the low-side rank error only by about
 *    e/(1 - 2e/(1-q)) (x1.25 for the usual objectives), so each objective's error is
 *    tightened to e/(1 + e/(1-q)) inside f, which costs ~10% more tuples;
 *  - a query returns the tuple whose rank interval lies closest to q*n.
 */
#include "quantile.h"

#include <assert.h>
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
    double q, e; /* as given (clamped) */
    double ef;   /* the tightened error used in f */
    double lo_k; /* 2ef/q: factor for ranks at or above q*n */
    double hi_k; /* 2ef/(1-q): factor for ranks below q*n */
    int flat;    /* q is 0 or 1: use the uniform bound 2ef*n */
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

/* Sorting the hot buffer: NaNs are moved to the end first, so the sorts below compare with
 * plain < (a total order without NaN). Introsort: no allocation (glibc's qsort may malloc),
 * recursion only into the smaller part, heapsort when partitions keep coming out lopsided. */
static void qs_swap(double *a, size_t i, size_t j) {
    double t = a[i];
    a[i] = a[j];
    a[j] = t;
}

static void qs_heapsort(double *a, size_t n) {
    for (size_t k = n; k-- > 0;) { /* heapify, then pop into place */
        for (size_t root = k, c; (c = 2 * root + 1) < n; root = c) {
            if (c + 1 < n && a[c] < a[c + 1])
                c++;
            if (!(a[root] < a[c]))
                break;
            qs_swap(a, root, c);
        }
    }
    for (size_t end = n; end-- > 1;) {
        qs_swap(a, 0, end);
        for (size_t root = 0, c; (c = 2 * root + 1) < end; root = c) {
            if (c + 1 < end && a[c] < a[c + 1])
                c++;
            if (!(a[root] < a[c]))
                break;
            qs_swap(a, root, c);
        }
    }
}

static void qs_introsort(double *a, size_t n, unsigned depth) {
    while (n > 16) {
        if (depth-- == 0) {
            qs_heapsort(a, n);
            return;
        }
        size_t mid = n / 2;
        if (a[mid] < a[0])
            qs_swap(a, mid, 0);
        if (a[n - 1] < a[0])
            qs_swap(a, n - 1, 0);
        if (a[n - 1] < a[mid])
            qs_swap(a, n - 1, mid);
        double pivot = a[mid];
        /* Hoare partition; a[0] <= pivot <= a[n-1] keeps both scans in bounds. */
        size_t i = 0, j = n - 1;
        for (;;) {
            while (a[i] < pivot)
                i++;
            while (pivot < a[j])
                j--;
            if (i >= j)
                break;
            qs_swap(a, i++, j--);
        }
        /* [0, j] <= pivot <= [j+1, n) */
        size_t left = j + 1;
        if (left < n - left) {
            qs_introsort(a, left, depth);
            a += left;
            n -= left;
        } else {
            qs_introsort(a + left, n - left, depth);
            n = left;
        }
    }
    for (size_t i = 1; i < n; i++) {
        double v = a[i];
        size_t k = i;
        for (; k > 0 && v < a[k - 1]; k--)
            a[k] = a[k - 1];
        a[k] = v;
    }
}

static void qs_sort(double *a, size_t n) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(a[i]))
            qs_swap(a, m++, i);
    unsigned depth = 0;
    for (size_t k = m; k > 1; k >>= 1)
        depth += 2;
    qs_introsort(a, m, depth);
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
            f = 2.0 * t->ef * n;
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

/* Merge adjacent tuples wherever the invariant allows; one backward pass, in place. A tuple
 * absorbing its predecessor c must then satisfy the invariant at c's predecessor's rank. */
static void qs_compress(const reg_qstream *q, qs_stream *st) {
    if (st->len < 2)
        return;
    qs_sample *l = st->l;
    size_t w = st->len - 1;    /* the tuple that absorbs its predecessors */
    double after = l[w].width; /* widths of the tuples after c */
    for (size_t i = st->len - 1; i-- > 0;) {
        qs_sample c = l[i];
        double before = st->n - after - c.width; /* rank of c's predecessor */
        if (c.width + l[w].width + l[w].delta <= qs_f(q, before, st->n)) {
            l[w].width += c.width;
        } else {
            w--;
            l[w] = c; /* w > i until now, so slot w is already read */
        }
        after += c.width;
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
    for (size_t j = 0; j < q->blen; j++) {
        double v = q->buf[j];
        /* A new value goes after existing equal ones. Its rank is exact below the old
         * minimum or above the old maximum; otherwise it is as uncertain as the gap up to
         * its successor's highest possible rank. */
        while (i < st->len && !qs_less(v, st->l[i].value))
            out[o++] = st->l[i++];
        double delta = 0;
        if (i > 0 && i < st->len)
            delta = st->l[i].width + st->l[i].delta - 1;
        out[o++] = (qs_sample){v, 1, delta};
    }
    while (i < st->len)
        out[o++] = st->l[i++];

    size_t out_cap = q->spare_cap;
    q->spare = st->l;
    q->spare_cap = st->cap;
    st->l = out;
    st->cap = out_cap;
    st->len = o;
    st->n += (double)q->blen;
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
            qs_merge(q, &q->s[((uint64_t)q->head + k) % q->nb]);
    }
    q->blen = 0;
    q->bsorted = 1;
}

/* Slide the window by k bucket durations (the caller moves exp): buffered samples, which
 * belong to the period that just ended, are merged first, then the k oldest streams reset. */
static void qs_rotate(reg_qstream *q, uint64_t k) {
    if (q->nb == 0)
        return; /* cannot happen: a stream has 1..REG_MAX_AGE_BUCKETS buckets */
    unsigned resets = k >= q->nb ? q->nb : (unsigned)k;
    qs_flush(q, resets);
    for (unsigned j = 0; j < resets; j++) {
        qs_stream *st = &q->s[((uint64_t)q->head + j) % q->nb];
        st->len = 0;
        st->n = 0;
    }
    q->head = (unsigned)(((uint64_t)q->head + k % q->nb) % q->nb);
}

/* Rotate the age buckets so that now falls in the head's last period. */
static void qs_advance(reg_qstream *q, uint64_t now) {
    assert(q->nb >= 1 && q->dur >= 1); /* reg_qstream_create makes them so */
    if (now <= q->exp)
        return;
    uint64_t diff = now - q->exp;
    uint64_t k = diff / q->dur + (diff % q->dur != 0);
    if (k > (UINT64_MAX - q->exp) / q->dur)
        q->exp = UINT64_MAX;
    else
        q->exp += k * q->dur;
    qs_rotate(q, k);
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
        /* Out-of-range input is clamped: a negative error means exact, like 0 (the registry
         * should refuse both); an error of 1 already allows any answer. */
        t->q = t->q < 0 ? 0 : t->q > 1 ? 1 : t->q;
        t->e = t->e < 0 ? 0 : t->e > 1 ? 1 : t->e;
        /* At q = 0 or 1 one branch divides by zero; the uniform bound 2en is never looser
         * than the targeted one and needs no tightening. */
        t->flat = t->q <= 0 || t->q >= 1;
        t->ef = t->flat ? t->e : t->e / (1.0 + t->e / (1.0 - t->q));
        if (!t->flat) {
            t->lo_k = 2.0 * t->ef / t->q;
            t->hi_k = 2.0 * t->ef / (1.0 - t->q);
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

/* The value whose possible ranks [rmin, rmin+delta] stray least from phi*n; ties go to the
 * higher rank, as the exact path rounds the rank up. The invariant guarantees a tuple within
 * e*n (the CKMS query's answer is one). */
static double qs_stream_query(const qs_stream *st, double phi) {
    double want = phi * st->n, rmin = 0, best_err = INFINITY, best = NAN;
    for (size_t i = 0; i < st->len; i++) {
        const qs_sample *c = &st->l[i];
        rmin += c->width;
        if (rmin - want > best_err)
            break; /* ranks only grow from here */
        double lo = want - rmin, hi = rmin + c->delta - want;
        double err = lo > hi ? lo : hi;
        if (err <= best_err) {
            best_err = err;
            best = c->value;
        }
    }
    return best;
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
        out[i] = (h->len == 0 || !q->t[i].valid) ? NAN : qs_stream_query(h, q->t[i].q);
}

/* ---- snapshots -------------------------------------------------------------------------------
 * A stream's state, in this order: u32 age buckets, u32 head, i64 the head's expiry as
 * wall-clock ns, u32 buffer sorted (0/1), u32 buffered count and the buffered f64s, then per
 * age bucket (by index): f64 n, u32 tuples and per tuple f64 value, width, delta. */

/* Cannot fail (the writer keeps errors). */
void reg_qstream_encode(const reg_qstream *q, reg_snapshot *w, int64_t wall_offset_ns) {
    reg_snapshot_put_u32(w, q->nb);
    reg_snapshot_put_u32(w, q->head);
    /* Both clocks are far below 2^62 ns (146 years); a saturated expiry (never) stays far. */
    const int64_t lim = (int64_t)1 << 62;
    int64_t exp = q->exp >= (uint64_t)lim ? lim : (int64_t)q->exp + wall_offset_ns;
    reg_snapshot_put_u64(w, (uint64_t)(exp < 0 ? 0 : exp > lim ? lim : exp));
    reg_snapshot_put_u32(w, (uint32_t)q->bsorted);
    reg_snapshot_put_u32(w, (uint32_t)q->blen);
    for (size_t i = 0; i < q->blen; i++)
        reg_snapshot_put_f64(w, q->buf[i]);
    for (unsigned k = 0; k < q->nb; k++) {
        const qs_stream *st = &q->s[k];
        reg_snapshot_put_f64(w, st->n);
        reg_snapshot_put_u32(w, (uint32_t)st->len);
        for (size_t i = 0; i < st->len; i++) {
            reg_snapshot_put_f64(w, st->l[i].value);
            reg_snapshot_put_f64(w, st->l[i].width);
            reg_snapshot_put_f64(w, st->l[i].delta);
        }
    }
}

/* 1 when x is a finite, non-negative count-like figure. */
static int qs_count_ok(double x) {
    return isfinite(x) && x >= 0;
}

/* Set the head's expiry from its wall-clock time, sliding the window by the bucket durations
 * that passed meanwhile (a restart after a long pause drops the old observations). */
static void qs_restore_expiry(reg_qstream *q, int64_t exp_wall, int64_t wall_offset_ns,
                              uint64_t now) {
    int64_t e = exp_wall - wall_offset_ns; /* monotonic; both bounded by 2^62 */
    if (e >= 0 && (uint64_t)e >= now) {
        q->exp = (uint64_t)e;
        return;
    }
    uint64_t diff = (uint64_t)((int64_t)now - e);
    uint64_t k = diff / q->dur + (diff % q->dur != 0);
    uint64_t left = k * q->dur - diff; /* k * dur < diff + dur: no overflow while diff < 2^63 */
    q->exp = left > UINT64_MAX - now ? UINT64_MAX : now + left;
    qs_rotate(q, k);
}

/* Reads one stream's state (see reg_qstream_encode) for a family defined by d. out NULL:
 * check only, nothing allocated. Returns 0, or -1 when malformed (r->bad set) or out of
 * memory (r->bad clear). */
int reg_qstream_decode(reg_snapshot_reader *r, const reg_family_def *d, int64_t wall_offset_ns,
                       uint64_t now_ns, reg_qstream **out) {
    unsigned nb = d->age_buckets ? d->age_buckets : QS_DEF_AGE_BUCKETS;
    size_t bcap = d->buf_cap ? d->buf_cap : QS_DEF_BUF_CAP;
    reg_qstream *q = NULL;
    if (out) {
        q = reg_qstream_create(d->objectives, d->nobjectives, d->max_age_ns, d->age_buckets,
                               d->buf_cap, now_ns);
        if (!q)
            return -1;
    }
    uint32_t fnb = reg_snapshot_get_u32(r), head = reg_snapshot_get_u32(r);
    int64_t exp_wall = (int64_t)reg_snapshot_get_u64(r);
    uint32_t sorted = reg_snapshot_get_u32(r), blen = reg_snapshot_get_u32(r);
    const int64_t lim = (int64_t)1 << 62;
    if (fnb != nb || head >= nb || exp_wall < 0 || exp_wall > lim || sorted > 1 || blen >= bcap)
        reg_snapshot_reader_fail(r);
    double prev = -INFINITY;
    for (uint32_t i = 0; i < blen && !r->bad; i++) {
        double v = reg_snapshot_get_f64(r);
        if (sorted && qs_less(v, prev))
            reg_snapshot_reader_fail(r);
        prev = v;
        if (q)
            q->buf[i] = v;
    }
    for (unsigned k = 0; k < nb && !r->bad; k++) {
        double n = reg_snapshot_get_f64(r);
        uint32_t len = reg_snapshot_get_u32(r);
        /* each tuple takes 24 bytes: a length beyond what is left is malformed */
        if (!qs_count_ok(n) || len > (r->len - r->pos) / 24)
            reg_snapshot_reader_fail(r);
        qs_stream *st = q ? &q->s[k] : NULL;
        if (st && !r->bad && len > 0) {
            st->l = malloc(len * sizeof *st->l);
            if (!st->l) {
                reg_qstream_destroy(q);
                return -1;
            }
            st->cap = len;
        }
        prev = -INFINITY;
        for (uint32_t i = 0; i < len && !r->bad; i++) {
            qs_sample c;
            c.value = reg_snapshot_get_f64(r); /* one statement each: read in order */
            c.width = reg_snapshot_get_f64(r);
            c.delta = reg_snapshot_get_f64(r);
            if (qs_less(c.value, prev) || !qs_count_ok(c.width) || !qs_count_ok(c.delta))
                reg_snapshot_reader_fail(r);
            prev = c.value;
            if (st)
                st->l[i] = c;
        }
        if (st) {
            st->n = n;
            st->len = len;
        }
    }
    if (r->bad) {
        reg_qstream_destroy(q);
        return -1;
    }
    if (q) {
        q->head = head;
        q->blen = blen;
        q->bsorted = (int)sorted;
        qs_restore_expiry(q, exp_wall, wall_offset_ns, now_ns);
        *out = q;
    }
    return 0;
}
