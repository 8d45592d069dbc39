/* expfmt.c - the exposition formats: Prometheus text 0.0.4 and OpenMetrics 1.0 text, streamed.
 *
 * A scrape renders into an internal buffer a few lines at a time and hands it out in the
 * caller's chunk sizes, optionally through a gzip stream. Families are rendered in name order;
 * a family's series come from a registry cursor opened when the family starts.
 *
 * A scrape holds a registry section only while it renders one buffer (a refill), never while
 * its client reads: a slow or stalled client then pins no retired memory. The family list is
 * taken once, at the start, and each family is held (not freed) until the scrape ends. The
 * cursor hands out each series at most once across refills; a series whose lines straddle two
 * refills is finished from a copy of its labels and values. A family that was replaced
 * (a reload changed its definition) by the time the scrape reaches it is rendered in its new
 * definition: every family in the list appears once, in its old or new form.
 * Series label text is pre-rendered by the registry, so a sample line is a few memcpys and
 * one number. Rendering is resumable at line granularity: a line that does not fit waits
 * for the next refill, and a single line larger than the buffer grows it.
 *
 * Choices matching prometheus/client_golang + prometheus/common expfmt:
 *  - HELP is written only when the family has a non-empty help text; TYPE always.
 *  - Families without series are skipped entirely.
 *  - le and quantile label values are printed like Go's strconv.FormatFloat(v, 'g', -1, 64)
 *    (le="0.005", le="1", le="1e+06"); in OpenMetrics an integral value gets ".0"
 *    (le="1.0"), as writeOpenMetricsFloat does.
 *  - OpenMetrics counters: a family named x_total is "# TYPE x counter" with samples x_total
 *    and x_created. A counter whose name lacks _total is "# TYPE name unknown" with its
 *    samples unchanged (renaming it would change the series between the two formats).
 *  - OpenMetrics forbids a negative or NaN _sum (it is a counter) and any _sum when a
 *    histogram has negative bucket bounds: such a histogram series omits _sum and _count (the
 *    count is its +Inf bucket anyway), a summary series omits _sum. Negative summary quantile
 *    values are omitted likewise. The text format writes everything.
 * Numbers assume the C locale for LC_NUMERIC (snprintf/strtod decimal point).
 */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/expfmt.h"
#include "http/gzip.h"
#include "push/push.h"

#define EXP_BUF_SIZE (128 * 1024)
#define EXP_NUM_MAX 32 /* bytes for any formatted number (with OpenMetrics ".0") */
#define EXP_TOK_MAX 48 /* bytes for `le="..."` / `quantile="..."` */
#define EXP_PREFETCH 8 /* series ahead to prefetch while rendering */

/* ---- numbers ----------------------------------------------------------------------------- */

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static const uint64_t pow10_u64[20] = {1u,
                                       10u,
                                       100u,
                                       1000u,
                                       10000u,
                                       100000u,
                                       1000000u,
                                       10000000u,
                                       100000000u,
                                       1000000000u,
                                       10000000000u,
                                       100000000000u,
                                       1000000000000u,
                                       10000000000000u,
                                       100000000000000u,
                                       1000000000000000u,
                                       10000000000000000u,
                                       100000000000000000u,
                                       1000000000000000000u,
                                       10000000000000000000u};

/* The number of decimal digits of u (1 for 0), from its bit length: bits * 1233 / 4096 is
 * log10(2^bits) rounded down, one short of the count or exact. No loop, and no branch that
 * values of mixed lengths would mispredict. (u | 1 has the digits of u, and makes 0 one.) */
static inline size_t digits_u64(uint64_t u) {
    uint64_t v = u | 1;
    unsigned t = (unsigned)(64 - __builtin_clzll(v)) * 1233 >> 12;
    return t + (v >= pow10_u64[t]);
}

/* Decimal digits of u into buf (no NUL), written back to front in place, two a step: a
 * temporary and a copy of a variable length cost a libc memcpy call per number. Inline: it
 * is most of a counter's line. Returns the length (<= 20). */
static inline size_t fmt_u64(uint64_t u, char *buf) {
    size_t n = digits_u64(u);
    char *p = buf + n;
    while (u >= 100) {
        uint64_t q = u / 100;
        p -= 2;
        memcpy(p, digit_pairs + 2 * (u - q * 100), 2);
        u = q;
    }
    if (u >= 10)
        memcpy(p - 2, digit_pairs + 2 * u, 2);
    else
        p[-1] = (char)('0' + u);
    return n;
}

static const double pow10_tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Values with few decimals (0.5, 12.25, 0.001) without printf: the fewest decimals d such
 * that m / 10^d == v for an integer m. With m < 2^53 and 10^d exact, that IEEE division is
 * correctly rounded, i.e. exactly what strtod makes of the text, so the test is exact (the
 * classic fast path of decimal-to-double conversion). Returns 0 when v is not such a value
 * or outside [1e-4, 1e15), where %g would use an exponent. */
static size_t fmt_short_decimal(double v, char *buf) {
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e15))
        return 0;
    for (int d = 1; d <= 22; d++) {
        double x = a * pow10_tab[d];
        if (x >= 9007199254740992.0) /* 2^53 */
            return 0;
        uint64_t m = (uint64_t)(x + 0.5);
        if ((double)m / pow10_tab[d] != a)
            continue;
        while (m != 0 && m % 10 == 0) { /* the same decimal value, so the same double */
            m /= 10;
            d--;
        }
        char dig[24];
        size_t nd = fmt_u64(m, dig), n = 0;
        if (v < 0)
            buf[n++] = '-';
        if (nd <= (size_t)d) {
            buf[n++] = '0';
            buf[n++] = '.';
            for (size_t i = nd; i < (size_t)d; i++)
                buf[n++] = '0';
            memcpy(buf + n, dig, nd);
            n += nd;
        } else {
            memcpy(buf + n, dig, nd - (size_t)d);
            n += nd - (size_t)d;
            buf[n++] = '.';
            memcpy(buf + n, dig + nd - (size_t)d, (size_t)d);
            n += (size_t)d;
        }
        buf[n] = '\0';
        return n;
    }
    return 0;
}

/* v's digits (no NUL) when it is a whole number in [0, 1e15), as counts are; else 0. Inline
 * for a sample line, whose value is nearly always one: exp_format_double's own frame and
 * checks cost as much as the digits. -0 is "0". */
static inline size_t fmt_count(double v, char *buf) {
    if (!(v >= 0 && v < 1e15))
        return 0;
    uint64_t u = (uint64_t)v;
    return (double)u == v ? fmt_u64(u, buf) : 0;
}

size_t exp_format_double(double v, char *buf) {
    if (isnan(v)) {
        memcpy(buf, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        memcpy(buf, v > 0 ? "+Inf" : "-Inf", 5);
        return 4;
    }
    /* Most values are counts: print them as integers without going through printf. */
    size_t n = v < 0 ? fmt_count(-v, buf + 1) : fmt_count(v, buf);
    if (n > 0) {
        if (v < 0) {
            buf[0] = '-';
            n++;
        }
        buf[n] = '\0';
        return n;
    }
    n = fmt_short_decimal(v, buf);
    if (n > 0)
        return n;
    int k = 0;
    for (int prec = 15; prec <= 17; prec++) {
        k = snprintf(buf, EXP_NUM_MAX, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return (size_t)k;
}

/* The significant digits dig[0..nd) with decimal exponent exp, as Go's 'g' format places
 * them: exponent form below 1e-4 and from 1e6, else plain with a point (".0" appended on
 * integers when om). Returns the length written to out (no NUL). */
static size_t place_digits(const char *dig, size_t nd, int exp, int om, char *out) {
    size_t n = 0;
    if (exp < -4 || exp >= 6) {
        out[n++] = dig[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, dig + 1, nd - 1);
            n += nd - 1;
        }
        out[n++] = 'e';
        out[n++] = exp < 0 ? '-' : '+';
        unsigned ax = (unsigned)(exp < 0 ? -exp : exp);
        if (ax < 10)
            out[n++] = '0';
        n += fmt_u64(ax, out + n);
    } else if (exp < 0) {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = -1; i > exp; i--)
            out[n++] = '0';
        memcpy(out + n, dig, nd);
        n += nd;
    } else {
        size_t ip = (size_t)exp + 1; /* digits before the point */
        for (size_t i = 0; i < ip; i++)
            out[n++] = i < nd ? dig[i] : '0';
        if (nd > ip) {
            out[n++] = '.';
            memcpy(out + n, dig + ip, nd - ip);
            n += nd - ip;
        } else if (om) {
            out[n++] = '.';
            out[n++] = '0';
        }
    }
    return n;
}

/* v as Go's strconv.FormatFloat(v, 'g', -1, 64) prints it (the shortest digits that parse
 * back to v; exponent form when the decimal exponent is < -4 or >= 6, at least two exponent
 * digits), with prometheus/common's spellings +Inf/-Inf/NaN and 0 for -0. om: append ".0"
 * when the result has neither '.' nor 'e' (writeOpenMetricsFloat). Returns the length. */
static size_t fmt_go_float(double v, int om, char *buf) {
    if (isnan(v) || isinf(v) || v == 0) {
        if (v == 0) {
            memcpy(buf, om ? "0.0" : "0", om ? 4 : 2);
            return om ? 3 : 1;
        }
        return exp_format_double(v, buf);
    }
    char e[40];
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e is [-]d[.ddd]e[+-]xx: collect the significant digits and the exponent. */
    char dig[20];
    size_t nd = 0, n = 0;
    const char *p = e;
    if (*p == '-') {
        buf[n++] = '-';
        p++;
    }
    for (; *p && *p != 'e'; p++) {
        if (*p >= '0' && *p <= '9' && nd < sizeof dig)
            dig[nd++] = *p;
    }
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    assert(nd >= 1); /* %.*e of a finite value has a digit before its point */
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    n += place_digits(dig, nd, exp, om, buf + n);
    buf[n] = '\0';
    return n;
}

size_t exp_format_go_float(double v, char *buf) {
    return fmt_go_float(v, 0, buf);
}

/* A sample value: exp_format_double, plus ".0" on integers in OpenMetrics. */
static size_t fmt_value(double v, int om, char *buf) {
    size_t n = exp_format_double(v, buf);
    if (om && isfinite(v) && memchr(buf, '.', n) == NULL && memchr(buf, 'e', n) == NULL) {
        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = '\0';
    }
    return n;
}

/* A _created timestamp (seconds since the epoch), to the microsecond: the double holds
 * about that much, Prometheus keeps milliseconds, and shortest round-trip printing of a
 * 17-digit value would cost a printf per series. Integral values get ".0" (OpenMetrics). */
static size_t fmt_created(double c, char *buf) {
    if (!(c >= 0 && c < 1e11))
        return fmt_value(c, 1, buf);
    uint64_t us = (uint64_t)(c * 1e6 + 0.5);
    size_t n = fmt_u64(us / 1000000, buf);
    unsigned frac = (unsigned)(us % 1000000);
    buf[n++] = '.';
    if (frac == 0) {
        buf[n++] = '0';
    } else {
        char f[8];
        for (int i = 5; i >= 0; i--, frac /= 10)
            f[i] = (char)('0' + frac % 10);
        size_t fl = 6;
        while (f[fl - 1] == '0')
            fl--;
        memcpy(buf + n, f, fl);
        n += fl;
    }
    buf[n] = '\0';
    return n;
}

/* ---- scrape state ------------------------------------------------------------------------ */

typedef struct {
    reg_family *f;    /* held from exp_scrape_begin to exp_scrape_end; NULL once released, or
                       * for a name only pushed groups have */
    const char *name; /* in f's definition, or in a held group state */
    size_t mlen;      /* length of the metadata name: without _total for OpenMetrics counters */
    size_t push_first, push_count; /* its pushed families: exp_scrape.pushed[first..+count) */
} exp_fam;

/* One pushed family of one group, or one of a group's two push-time gauges (family NULL:
 * meta says which). */
typedef struct {
    const char *name;
    const reg_group *g;
    const reg_push_family *family;
    int meta;  /* 0; 1 push_time_seconds; 2 push_failure_time_seconds */
    size_t gi; /* index of g in exp_scrape.groups */
} exp_pushed;

typedef struct {
    uint8_t len;
    char s[EXP_TOK_MAX];
} exp_tok;

enum { PH_FAMILY, PH_HEADER, PH_SERIES, PH_PUSHED, PH_EOF, PH_DONE };

/* Sample name slots of the current family. */
enum { NM_MAIN, NM_BUCKET, NM_SUM, NM_COUNT, NM_CREATED, NM_N };

struct exp_scrape {
    reg_registry *reg;
    reg_thread *th;
    exp_format fmt;
    int om;
    int err;
    int phase;

    exp_fam *fams;
    size_t nfams, fi;

    /* Pushed groups: the states found at the start, held to the end, and their families in
     * name order (then group key order). */
    reg_group **groups;
    size_t ngroups, groups_cap;
    exp_pushed *pushed;
    size_t npushed;
    size_t pi, ps, pj;       /* rendering position: entry, series, line */
    reg_family_def push_def; /* the definition a name only pushed groups have renders with */
    char *meta_key;          /* labels of the current push-time series */
    size_t meta_key_cap;
    const char *last_meta; /* metadata name of the last family written (OpenMetrics dedup) */
    size_t last_mlen;

    /* Current family. */
    const reg_family_def *def;
    int om_counter;         /* OpenMetrics: a _total counter (TYPE counter, _created lines) */
    int om_sum_ok;          /* OpenMetrics histogram: no negative bucket bound */
    reg_cursor cur;         /* open from PH_FAMILY until the family's last series */
    int cur_open;           /* cur is open */
    reg_series *const *ser; /* the cursor's view in this refill */
    size_t nser, si, sj;
    int loaded;   /* values of the current series are in cum/sum/q/count */
    int detached; /* the current series is finished from the copy below, not ser[si] */
    char *key;    /* label text of the current series (multi-line types), rendered once: it
                   * outlives the series when the series is detached */
    size_t klen, key_cap;
    double created; /* of the current series, once detached */
    char *prefix;   /* rendered constant labels */
    size_t prefix_len, prefix_cap;
    char *names; /* NM_* sample names, each at names + nm_off[i] */
    size_t names_cap, nm_off[NM_N], nm_len[NM_N];
    char *head; /* `name{prefix,` or `name{`: a one-line series' text before its labels */
    size_t head_len, head_cap;
    exp_tok le[REG_MAX_BUCKETS + 1];
    exp_tok qt[REG_MAX_QUANTILES];
    uint64_t cum[REG_MAX_BUCKETS + 1];
    double q[REG_MAX_QUANTILES];
    uint64_t count;
    double sum;

    /* Rendered text not yet handed out (plain) or not yet compressed (gzip). */
    char *buf;
    size_t cap, blen, bpos;

    exp_gzip *gz; /* when gzip was asked */
};

/* Make room for need more bytes. 1: room; 0: the buffer holds text already, hand it out
 * first; -1: allocation failure. An empty buffer grows to fit any single line. */
static int reserve(exp_scrape *s, size_t need) {
    if (s->cap - s->blen >= need)
        return 1;
    if (s->blen > 0)
        return 0;
    char *nb = realloc(s->buf, need);
    if (nb == NULL)
        return -1;
    s->buf = nb;
    s->cap = need;
    return 1;
}

static int grow(char **p, size_t *cap, size_t need) {
    if (*cap >= need)
        return 0;
    size_t nc = *cap ? *cap : 256;
    while (nc < need)
        nc *= 2;
    char *np = realloc(*p, nc);
    if (np == NULL)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

/* Escape src into dst: backslash and newline always, double quote when quote. Returns the
 * length; dst needs 2 * strlen(src) bytes. */
static size_t escape(char *dst, const char *src, int quote) {
    size_t n = 0;
    for (const char *c = src; *c; c++) {
        if (*c == '\\' || (quote && *c == '"')) {
            dst[n++] = '\\';
            dst[n++] = *c;
        } else if (*c == '\n') {
            dst[n++] = '\\';
            dst[n++] = 'n';
        } else {
            dst[n++] = *c;
        }
    }
    return n;
}

static int cmp_fam(const void *a, const void *b) {
    const exp_fam *x = a, *y = b;
    size_t m = x->mlen < y->mlen ? x->mlen : y->mlen;
    int c = memcmp(x->name, y->name, m);
    if (c != 0)
        return c;
    if (x->mlen != y->mlen)
        return x->mlen < y->mlen ? -1 : 1;
    return strcmp(x->name, y->name);
}

typedef struct {
    exp_scrape *s;
    size_t cap;
    int oom;
} fam_list;

/* Point e at the held family f. Cannot fail. */
static void fam_set(const exp_scrape *s, exp_fam *e, reg_family *f) {
    const reg_family_def *d = reg_family_definition(f);
    e->f = f;
    e->name = d->name;
    e->mlen = strlen(d->name);
    if (s->om && d->type == REG_COUNTER && reg_name_has_suffix(d->name, e->mlen, "_total"))
        e->mlen -= 6;
}

static int add_family_cb(void *arg, reg_family *f) {
    fam_list *l = arg;
    exp_scrape *s = l->s;
    if (s->nfams == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        exp_fam *nf = realloc(s->fams, nc * sizeof(*nf));
        if (nf == NULL) {
            l->oom = 1;
            return 1;
        }
        s->fams = nf;
        l->cap = nc;
    }
    if (reg_family_hold(f) != REG_OK)
        return 0; /* removed meanwhile: not part of this scrape */
    exp_fam *e = &s->fams[s->nfams++];
    memset(e, 0, sizeof *e); /* no pushed families until list_pushed gives some */
    fam_set(s, e, f);
    return 0;
}

/* Releases every family still held. Cannot fail. */
static void release_families(exp_scrape *s) {
    for (size_t i = 0; i < s->nfams; i++)
        if (s->fams[i].f)
            reg_family_release(s->reg, s->fams[i].f);
}

static int cmp_pushed(const void *a, const void *b) {
    const exp_pushed *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->gi < y->gi ? -1 : x->gi > y->gi; /* group key order */
}

/* One more family entry (room was made) for a name only pushed groups have, its metadata
 * name as fam_set computes it. Cannot fail. */
static void add_pushed_name(exp_scrape *s, size_t first, size_t count) {
    const exp_pushed *p = &s->pushed[first];
    exp_fam *e = &s->fams[s->nfams++];
    reg_type type = p->family ? p->family->type : REG_GAUGE;
    *e = (exp_fam){NULL, p->name, strlen(p->name), first, count};
    if (s->om && type == REG_COUNTER && reg_name_has_suffix(e->name, e->mlen, "_total"))
        e->mlen -= 6;
}

/* List every held group's families (and its two push-time gauges) by name, and give each
 * name's run to the registry family of that name, or to a new entry. -1 out of memory. */
static int list_pushed(exp_scrape *s) {
    size_t n = 0;
    for (size_t i = 0; i < s->ngroups; i++)
        n += reg_group_family_count(s->groups[i]) + 2;
    if (n == 0)
        return 0;
    s->pushed = malloc(n * sizeof *s->pushed);
    exp_fam *grown = realloc(s->fams, (s->nfams + n) * sizeof *grown); /* a name each at most */
    if (grown)
        s->fams = grown;
    reg_strmap *by_name = reg_strmap_create(0);
    if (s->pushed == NULL || grown == NULL || by_name == NULL) {
        reg_strmap_free(by_name);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->ngroups; i++) {
        const reg_group *g = s->groups[i];
        const reg_push_family *f = reg_group_families(g);
        for (size_t j = 0; j < reg_group_family_count(g); j++)
            s->pushed[k++] = (exp_pushed){f[j].name, g, &f[j], 0, i};
        s->pushed[k++] = (exp_pushed){REG_PUSH_TIME_NAME, g, NULL, 1, i};
        s->pushed[k++] = (exp_pushed){REG_PUSH_FAILURE_TIME_NAME, g, NULL, 2, i};
    }
    s->npushed = n;
    qsort(s->pushed, n, sizeof *s->pushed, cmp_pushed);
    int rc = 0;
    for (size_t i = 0; i < s->nfams && rc == 0; i++)
        rc = reg_strmap_put(by_name, s->fams[i].name, strlen(s->fams[i].name),
                            (void *)(uintptr_t)(i + 1)); /* an index: fams may move */
    for (size_t i = 0, j; i < n && rc == 0; i = j) {
        for (j = i + 1; j < n && !strcmp(s->pushed[j].name, s->pushed[i].name); j++)
            ;
        uintptr_t at =
            (uintptr_t)reg_strmap_get(by_name, s->pushed[i].name, strlen(s->pushed[i].name));
        if (at) {
            s->fams[at - 1].push_first = i;
            s->fams[at - 1].push_count = j - i;
        } else {
            add_pushed_name(s, i, j - i);
        }
    }
    reg_strmap_free(by_name);
    return rc;
}

exp_scrape *exp_scrape_begin(reg_registry *r, exp_format fmt, int gzip) {
    exp_scrape *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->reg = r;
    s->fmt = fmt;
    s->om = fmt == EXP_FMT_OPENMETRICS;
    s->buf = malloc(EXP_BUF_SIZE);
    s->cap = EXP_BUF_SIZE;
    s->th = reg_thread_attach(r);
    if (s->buf == NULL || s->th == NULL)
        goto fail;
    if (gzip && (s->gz = exp_gzip_new()) == NULL)
        goto fail;
    reg_begin(s->th);
    fam_list l = {s, 0, 0};
    reg_foreach_family(s->th, add_family_cb, &l);
    long ng = l.oom ? -1 : reg_group_snapshot(s->th, &s->groups, &s->groups_cap);
    reg_end(s->th);
    if (ng < 0) {
        release_families(s);
        goto fail;
    }
    s->ngroups = (size_t)ng;
    if (list_pushed(s) != 0) {
        release_families(s);
        reg_group_release_all(r, s->groups, s->ngroups);
        goto fail;
    }
    if (s->nfams > 1)
        qsort(s->fams, s->nfams, sizeof(*s->fams), cmp_fam);
    s->phase = PH_FAMILY;
    return s;
fail:
    free(s->groups);
    free(s->pushed);
    if (s->th)
        reg_thread_detach(s->th);
    exp_gzip_free(s->gz);
    free(s->buf);
    free(s->fams);
    free(s);
    return NULL;
}

void exp_scrape_end(exp_scrape *s) {
    if (s == NULL)
        return;
    if (s->cur_open)
        reg_cursor_close(s->reg, &s->cur);
    release_families(s);
    reg_group_release_all(s->reg, s->groups, s->ngroups);
    reg_thread_detach(s->th);
    exp_gzip_free(s->gz);
    free(s->groups);
    free(s->pushed);
    free(s->meta_key);
    free(s->fams);
    free(s->key);
    free(s->prefix);
    free(s->names);
    free(s->head);
    free(s->buf);
    free(s);
}

/* ---- rendering --------------------------------------------------------------------------- */

/* Set sample name slot i to the family name (first base bytes of it) plus suffix. */
static void set_name(exp_scrape *s, int i, size_t *off, size_t base, const char *suffix) {
    size_t sl = strlen(suffix);
    memcpy(s->names + *off, s->def->name, base);
    memcpy(s->names + *off + base, suffix, sl);
    s->nm_off[i] = *off;
    s->nm_len[i] = base + sl;
    *off += base + sl;
}

/* Per-family precomputation: constant labels, sample names, le and quantile label text.
 * Returns -1 on allocation failure. */
static int family_setup(exp_scrape *s, const exp_fam *e) {
    const reg_family_def *d = s->def;
    size_t nl = strlen(d->name);

    size_t need = 1;
    for (size_t i = 0; i < d->nconst; i++)
        need += strlen(d->const_names[i]) + 2 * strlen(d->const_values[i]) + 4;
    if (grow(&s->prefix, &s->prefix_cap, need) < 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < d->nconst; i++) {
        size_t k = strlen(d->const_names[i]);
        if (i)
            s->prefix[n++] = ',';
        memcpy(s->prefix + n, d->const_names[i], k);
        n += k;
        s->prefix[n++] = '=';
        s->prefix[n++] = '"';
        n += escape(s->prefix + n, d->const_values[i], 1);
        s->prefix[n++] = '"';
    }
    s->prefix_len = n;

    if (grow(&s->names, &s->names_cap, NM_N * (nl + 16)) < 0)
        return -1;
    size_t off = 0;
    set_name(s, NM_MAIN, &off, nl, "");
    set_name(s, NM_BUCKET, &off, nl, "_bucket");
    set_name(s, NM_SUM, &off, nl, "_sum");
    set_name(s, NM_COUNT, &off, nl, "_count");
    set_name(s, NM_CREATED, &off, e->mlen, "_created");
    if (grow(&s->head, &s->head_cap, nl + s->prefix_len + 2) < 0)
        return -1;
    memcpy(s->head, d->name, nl);
    s->head[nl] = '{';
    memcpy(s->head + nl + 1, s->prefix, s->prefix_len);
    s->head_len = nl + 1 + s->prefix_len;
    if (s->prefix_len)
        s->head[s->head_len++] = ',';

    s->om_counter = s->om && d->type == REG_COUNTER && e->mlen != nl;
    s->om_sum_ok = 1;
    if (d->type == REG_HISTOGRAM) {
        for (size_t i = 0; i <= d->nbuckets; i++) {
            exp_tok *t = &s->le[i];
            memcpy(t->s, "le=\"", 4);
            size_t k = 4;
            if (i == d->nbuckets) {
                memcpy(t->s + k, "+Inf", 4);
                k += 4;
            } else {
                k += fmt_go_float(d->buckets[i], s->om, t->s + k);
            }
            t->s[k++] = '"';
            t->len = (uint8_t)k;
        }
        if (d->nbuckets > 0 && d->buckets[0] < 0)
            s->om_sum_ok = 0;
    } else if (d->type == REG_SUMMARY) {
        for (size_t i = 0; i < d->nobjectives; i++) {
            exp_tok *t = &s->qt[i];
            memcpy(t->s, "quantile=\"", 10);
            size_t k = 10 + fmt_go_float(d->objectives[i].quantile, s->om, t->s + 10);
            t->s[k++] = '"';
            t->len = (uint8_t)k;
        }
    }
    return 0;
}

static const char *type_word(const exp_scrape *s) {
    switch (s->def->type) {
    case REG_COUNTER:
        return s->om && !s->om_counter ? "unknown" : "counter";
    case REG_GAUGE:
        return "gauge";
    case REG_HISTOGRAM:
        return "histogram";
    case REG_SUMMARY:
        return "summary";
    default:
        return s->om ? "unknown" : "untyped";
    }
}

static char *put(char *p, const char *src, size_t n) {
    memcpy(p, src, n);
    return p + n;
}

/* HELP, TYPE and (OpenMetrics) UNIT lines. 1 written, 0 no room, -1 allocation failure. */
static int render_header(exp_scrape *s) {
    const reg_family_def *d = s->def;
    const exp_fam *e = &s->fams[s->fi];
    size_t hl = d->help ? strlen(d->help) : 0;
    size_t ul = d->unit ? strlen(d->unit) : 0;
    int unit = s->om && ul > 0 && e->mlen > ul && e->name[e->mlen - ul - 1] == '_' &&
               memcmp(e->name + e->mlen - ul, d->unit, ul) == 0;
    int rc = reserve(s, 3 * (e->mlen + 12) + 2 * hl + ul + 16);
    if (rc <= 0)
        return rc;
    char *p = s->buf + s->blen;
    if (hl > 0) {
        p = put(p, "# HELP ", 7);
        p = put(p, e->name, e->mlen);
        *p++ = ' ';
        p += escape(p, d->help, s->om);
        *p++ = '\n';
    }
    p = put(p, "# TYPE ", 7);
    p = put(p, e->name, e->mlen);
    *p++ = ' ';
    const char *tw = type_word(s);
    p = put(p, tw, strlen(tw));
    *p++ = '\n';
    if (unit) {
        p = put(p, "# UNIT ", 7);
        p = put(p, e->name, e->mlen);
        *p++ = ' ';
        p = put(p, d->unit, ul);
        *p++ = '\n';
    }
    s->blen = (size_t)(p - s->buf);
    return 1;
}

/* One sample line: name{prefix,labels,extra} value. 1 written, 0 no room, -1 no memory. */
static int put_line(exp_scrape *s, int nm, const char *key, size_t klen, const exp_tok *extra,
                    const char *val, size_t vlen) {
    size_t el = extra ? extra->len : 0;
    size_t need = s->nm_len[nm] + s->prefix_len + klen + el + vlen + 8;
    if (s->cap - s->blen < need) {
        int rc = reserve(s, need);
        if (rc <= 0)
            return rc;
    }
    char *p = s->buf + s->blen;
    p = put(p, s->names + s->nm_off[nm], s->nm_len[nm]);
    if (s->prefix_len | klen | el) {
        char sep = '{';
        if (s->prefix_len) {
            *p++ = sep;
            p = put(p, s->prefix, s->prefix_len);
            sep = ',';
        }
        if (klen) {
            *p++ = sep;
            p = put(p, key, klen);
            sep = ',';
        }
        if (el) {
            *p++ = sep;
            p = put(p, extra->s, el);
        }
        *p++ = '}';
    }
    *p++ = ' ';
    p = put(p, val, vlen);
    *p++ = '\n';
    s->blen = (size_t)(p - s->buf);
    return 1;
}

/* Creation time of the current series. */
static double current_created(const exp_scrape *s, const reg_series *x) {
    return s->detached ? s->created : reg_series_created(x);
}

/* Render line j of the current series x (NULL once detached: then j > 0 or its values are
 * loaded, and only the copies are read). 1 written (or nothing to write for j), 0 no room,
 * -1 no memory; *last set when j was the series' last line. */
static int render_series_line(exp_scrape *s, const reg_series *x, size_t j, int *last) {
    const reg_family_def *d = s->def;
    size_t klen = s->klen;
    const char *key = klen ? s->key : "";
    char num[EXP_NUM_MAX];
    size_t vl;
    *last = 0;
    switch (d->type) {
    case REG_COUNTER:
        if (j == 0) {
            vl = fmt_value(reg_series_value(x), s->om, num);
            *last = !s->om_counter;
            return put_line(s, NM_MAIN, key, klen, NULL, num, vl);
        }
        *last = 1;
        vl = fmt_created(current_created(s, x), num);
        return put_line(s, NM_CREATED, key, klen, NULL, num, vl);
    case REG_HISTOGRAM: {
        size_t nb = d->nbuckets;
        if (!s->loaded) {
            reg_series_histogram(x, s->fams[s->fi].f, s->cum, &s->sum);
            s->loaded = 1;
        }
        int sum_ok = !s->om || (s->om_sum_ok && s->sum >= 0);
        if (j <= nb) {
            vl = fmt_u64(s->cum[j], num);
            return put_line(s, NM_BUCKET, key, klen, &s->le[j], num, vl);
        }
        if (j == nb + 1) {
            if (!sum_ok)
                return 1;
            vl = fmt_value(s->sum, s->om, num);
            return put_line(s, NM_SUM, key, klen, NULL, num, vl);
        }
        if (j == nb + 2) {
            *last = !s->om;
            if (!sum_ok)
                return 1;
            vl = fmt_u64(s->cum[nb], num);
            return put_line(s, NM_COUNT, key, klen, NULL, num, vl);
        }
        *last = 1;
        vl = fmt_created(current_created(s, x), num);
        return put_line(s, NM_CREATED, key, klen, NULL, num, vl);
    }
    case REG_SUMMARY: {
        size_t nq = d->nobjectives;
        if (!s->loaded) {
            reg_series_summary(x, s->fams[s->fi].f, s->q, &s->count, &s->sum);
            s->loaded = 1;
        }
        if (j < nq) {
            if (s->om && s->q[j] < 0)
                return 1;
            vl = fmt_value(s->q[j], s->om, num);
            return put_line(s, NM_MAIN, key, klen, &s->qt[j], num, vl);
        }
        if (j == nq) {
            if (s->om && !(s->sum >= 0))
                return 1;
            vl = fmt_value(s->sum, s->om, num);
            return put_line(s, NM_SUM, key, klen, NULL, num, vl);
        }
        if (j == nq + 1) {
            *last = !s->om;
            vl = fmt_u64(s->count, num);
            return put_line(s, NM_COUNT, key, klen, NULL, num, vl);
        }
        *last = 1;
        vl = fmt_created(current_created(s, x), num);
        return put_line(s, NM_CREATED, key, klen, NULL, num, vl);
    }
    default: /* gauge, untyped */
        *last = 1;
        vl = fmt_value(reg_series_value(x), s->om, num);
        return put_line(s, NM_MAIN, key, klen, NULL, num, vl);
    }
}

/* A scrape is bound by cache misses on series scattered over the heap: fetch the header,
 * labels and value of series i + EXP_PREFETCH of ser[0..n) while series i is rendered. */
static inline void prefetch_ahead(reg_series *const *ser, size_t i, size_t n) {
    if (i + EXP_PREFETCH < n) {
        const char *ahead = (const char *)ser[i + EXP_PREFETCH];
        __builtin_prefetch(ahead);
        __builtin_prefetch(ahead + 64);
        __builtin_prefetch(ahead + 128);
    }
}

/* Counters, gauges and untyped in the text format: one line per series; the common case at
 * scale, kept free of the per-line state machine. A series with labels is written as the
 * family's head, its labels (rendered in place by the registry) and the value formatted in
 * place. The loop keeps the scrape's fields in locals and writes them back when it stops:
 * its byte stores may alias *s, as may the registry's calls as far as the compiler knows,
 * which reloaded every field each line and carried the buffer's length from line to line
 * through memory. 1 family done, 0 no room, -1 no memory. */
static int render_simple_series(exp_scrape *s) {
    const reg_family *f = s->fams[s->fi].f;
    const int bare = s->def->nlabels == 0;
    reg_series *const *ser = s->ser;
    const char *head = s->head;
    size_t si = s->si, nser = s->nser, head_len = s->head_len;
    const size_t fixed = head_len + EXP_NUM_MAX + 3; /* the head, `} `, the value, `\n` */
    char *buf = s->buf;
    size_t cap = s->cap, blen = s->blen;
    int rc = 1;
    for (; si < nser; si++) {
        const reg_series *x = ser[si];
        prefetch_ahead(ser, si, nser);
        size_t room = cap - blen, klen = 0;
        if (!bare) {
            char *labels = room > fixed ? buf + blen + head_len : buf;
            klen = reg_series_labels(f, x, labels, room > fixed ? room - fixed : 0);
        }
        if (bare || room < fixed + klen) { /* no labels, or no room: through s itself */
            s->blen = blen;
            if (bare) {
                char num[EXP_NUM_MAX];
                size_t vl = fmt_value(reg_series_value(x), 0, num);
                rc = put_line(s, NM_MAIN, "", 0, NULL, num, vl);
            } else {
                rc = reserve(s, fixed + klen);
            }
            buf = s->buf;
            cap = s->cap;
            blen = s->blen;
            if (rc <= 0)
                break;
            if (bare)
                continue;
            reg_series_labels(f, x, buf + blen + head_len, klen);
        }
        char *p = buf + blen;
        p = reg_copy_short(p, head, head_len) + klen;
        *p++ = '}';
        *p++ = ' ';
        double v = reg_series_value(x);
        size_t vl = fmt_count(v, p);
        p += vl > 0 ? vl : exp_format_double(v, p);
        *p++ = '\n';
        blen = (size_t)(p - buf);
    }
    s->si = si;
    s->blen = blen;
    return rc;
}

/* The label text of x into s->key. 0, or -1 when out of memory. */
static int load_labels(exp_scrape *s, const reg_series *x) {
    const reg_family *f = s->fams[s->fi].f;
    s->klen = reg_series_labels(f, x, s->key, s->key_cap);
    if (s->klen <= s->key_cap)
        return 0;
    if (grow(&s->key, &s->key_cap, s->klen) < 0)
        return -1;
    reg_series_labels(f, x, s->key, s->key_cap);
    return 0;
}

static int render_series(exp_scrape *s) {
    if (!s->om &&
        (s->def->type == REG_COUNTER || s->def->type == REG_GAUGE || s->def->type == REG_UNTYPED))
        return render_simple_series(s);
    for (;;) {
        const reg_series *x = NULL;
        if (!s->detached) {
            if (s->si >= s->nser)
                return 1;
            x = s->ser[s->si];
            if (s->sj == 0) {
                prefetch_ahead(s->ser, s->si, s->nser);
                if (load_labels(s, x) < 0)
                    return -1;
            }
        }
        for (;;) {
            int last;
            int rc = render_series_line(s, x, s->sj, &last);
            if (rc <= 0)
                return rc;
            s->sj++;
            if (last)
                break;
        }
        if (s->detached)
            s->detached = 0; /* it was handed out when it was detached */
        else
            s->si++;
        s->sj = 0;
        s->loaded = 0;
    }
}

/* End of a refill inside a family: hand the rendered series to the cursor and let it
 * remember them. A series partly written is handed out too; its labels are in s->key already
 * and its creation time is copied, so the next refill finishes it without touching the
 * series, which may be freed by then. Inside the refill's section. Cannot fail. */
static int pause_family(exp_scrape *s) {
    size_t done = s->si;
    if (!s->detached && s->si < s->nser && (s->sj > 0 || s->loaded)) {
        const reg_series *x = s->ser[s->si];
        s->created = reg_series_created(x);
        s->detached = 1;
        done++;
    }
    reg_cursor_consume(&s->cur, done);
    reg_cursor_pause(&s->cur);
    s->ser = NULL;
    s->nser = s->si = 0;
    return 0;
}

/* Start of a refill inside a family: make the cursor's view current. -1 out of memory. */
static int resume_family(exp_scrape *s) {
    if (reg_cursor_resume(s->th, &s->cur) != REG_OK)
        return -1;
    s->nser = reg_cursor_view(&s->cur, &s->ser);
    s->si = 0;
    return 0;
}

/* Open the cursor of family e, switching to the family now holding its name when e's was
 * replaced since the scrape began (a reload; each retry means another reload replaced it
 * meanwhile). 1 open, 0 nothing to render (removed), -1 no memory. */
static int open_family(exp_scrape *s, exp_fam *e) {
    for (int tries = 0; tries < 64; tries++) {
        int rc = reg_cursor_open(s->th, &s->cur, e->f);
        if (rc == REG_OK) {
            s->cur_open = 1;
            s->nser = reg_cursor_view(&s->cur, &s->ser);
            s->si = 0;
            return 1;
        }
        if (rc != REG_EGONE)
            return -1;
        reg_family *now = reg_family_find(s->th, e->name);
        if (now == NULL || reg_family_hold(now) != REG_OK)
            return 0;
        reg_family_release(s->reg, e->f);
        fam_set(s, e, now);
    }
    return 0; /* replaced over and over: a later scrape shows it */
}

/* The family is done: release its cursor. Cannot fail. */
static void close_family(exp_scrape *s) {
    reg_cursor_close(s->reg, &s->cur);
    s->cur_open = 0;
    s->ser = NULL;
    s->nser = s->si = 0;
}

/* ---- pushed groups ---------------------------------------------------------------------- */

static const char push_time_help[] =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
static const char push_failure_help[] =
    "Last Unix time when changing this group in the Pushgateway failed.";

/* The definition a name that only pushed groups have is rendered with: its type, and the help
 * of the first group (in key order) that gave one. Cannot fail. */
static const reg_family_def *pushed_def(exp_scrape *s, const exp_fam *e) {
    const exp_pushed *p = &s->pushed[e->push_first];
    memset(&s->push_def, 0, sizeof s->push_def);
    s->push_def.name = e->name;
    if (p->meta) {
        s->push_def.type = REG_GAUGE;
        s->push_def.help = p->meta == 1 ? push_time_help : push_failure_help;
        return &s->push_def;
    }
    s->push_def.type = p->family->type;
    for (size_t i = 0; i < e->push_count && !s->push_def.help; i++)
        s->push_def.help = p[i].family->help;
    return &s->push_def;
}

/* Labels of a group's push-time gauges (exp_push_meta_labels). NULL when out of memory. */
static const char *meta_labels(exp_scrape *s, const reg_group *g, size_t *len) {
    size_t kl;
    const char *key = reg_group_key(g, &kl);
    if (grow(&s->meta_key, &s->meta_key_cap, kl + EXP_PUSH_META_EXTRA) < 0)
        return NULL;
    *len = exp_push_meta_labels(key, kl, s->meta_key);
    return s->meta_key;
}

/* Line j of a pushed series x of type t. 1 written (or nothing to write for j), 0 no room, -1
 * no memory; *last set when j was its last line. */
static int render_pushed_line(exp_scrape *s, reg_type t, const reg_push_series *x, size_t j,
                              int *last) {
    char num[EXP_NUM_MAX];
    size_t vl;
    *last = 0;
    if (t != REG_HISTOGRAM && t != REG_SUMMARY) {
        *last = 1;
        vl = fmt_value(x->vals[0], s->om, num);
        return put_line(s, NM_MAIN, x->labels, x->labels_len, NULL, num, vl);
    }
    size_t np = (x->nvals - 2) / 2;
    const double *pairs = x->vals + 2;
    if (j < np) {
        exp_tok tok;
        int hist = t == REG_HISTOGRAM;
        size_t k = hist ? 4 : 10;
        memcpy(tok.s, hist ? "le=\"" : "quantile=\"", k);
        k += fmt_go_float(pairs[2 * j], s->om, tok.s + k);
        tok.s[k++] = '"';
        tok.len = (uint8_t)k;
        if (s->om && !hist && pairs[2 * j + 1] < 0)
            return 1;
        vl = fmt_value(pairs[2 * j + 1], s->om, num);
        return put_line(s, hist ? NM_BUCKET : NM_MAIN, x->labels, x->labels_len, &tok, num, vl);
    }
    /* OpenMetrics: no negative _sum, none at all beside negative bucket bounds. */
    int sum_ok = !s->om || (x->vals[0] >= 0 && (t != REG_HISTOGRAM || np == 0 || pairs[0] >= 0));
    if (j == np) {
        if (!sum_ok)
            return 1;
        vl = fmt_value(x->vals[0], s->om, num);
        return put_line(s, NM_SUM, x->labels, x->labels_len, NULL, num, vl);
    }
    *last = 1;
    if (!sum_ok && t == REG_HISTOGRAM)
        return 1;
    vl = fmt_value(x->vals[1], s->om, num);
    return put_line(s, NM_COUNT, x->labels, x->labels_len, NULL, num, vl);
}

/* A push-time gauge of group g. 1 written, 0 no room, -1 no memory. */
static int render_meta(exp_scrape *s, const exp_pushed *p) {
    size_t kl;
    const char *labels = meta_labels(s, p->g, &kl);
    if (labels == NULL)
        return -1;
    double v = p->meta == 1 ? reg_group_push_time(p->g) : reg_group_failure_time(p->g);
    char num[EXP_NUM_MAX];
    size_t vl = fmt_value(v, s->om, num);
    return put_line(s, NM_MAIN, labels, kl, NULL, num, vl);
}

/* The current family's pushed series, from where the last refill stopped (pi, ps, pj; the
 * group states are held, so no section is needed). 1 done, 0 no room, -1 no memory. */
static int render_pushed(exp_scrape *s) {
    const exp_fam *e = &s->fams[s->fi];
    for (; s->pi < e->push_first + e->push_count; s->pi++, s->ps = 0) {
        const exp_pushed *p = &s->pushed[s->pi];
        if (p->meta) {
            int rc = render_meta(s, p);
            if (rc <= 0)
                return rc;
            continue;
        }
        const reg_push_family *f = p->family;
        for (; s->ps < f->nseries; s->ps++, s->pj = 0) {
            for (;;) {
                int last;
                int rc = render_pushed_line(s, f->type, &f->series[s->ps], s->pj, &last);
                if (rc <= 0)
                    return rc;
                s->pj++;
                if (last)
                    break;
            }
        }
    }
    return 1;
}

/* One step of rendering. 1 progress, 0 buffer full, -1 error. */
static int step(exp_scrape *s) {
    switch (s->phase) {
    case PH_FAMILY: {
        if (s->fi >= s->nfams) {
            s->phase = s->om ? PH_EOF : PH_DONE;
            return 1;
        }
        exp_fam *e = &s->fams[s->fi];
        if (s->om && s->last_meta && e->mlen == s->last_mlen &&
            memcmp(e->name, s->last_meta, e->mlen) == 0) {
            s->fi++; /* x and x_total counters would both be "x" in OpenMetrics: keep one */
            return 1;
        }
        if (s->om && e->f == NULL && reg_name_has_suffix(e->name, strlen(e->name), "_created")) {
            /* A pushed x_created gauge (prometheus_client pushes one beside each counter,
             * histogram and summary) would clash with x's own _created in OpenMetrics, which
             * reserves the name: it is shown in the text format only. */
            s->fi++;
            return 1;
        }
        int rc = e->f ? open_family(s, e) : 0;
        if (rc < 0)
            return -1;
        if (rc > 0 && s->nser == 0)
            close_family(s);
        if (!s->cur_open && e->push_count == 0) {
            s->fi++;
            return 1;
        }
        s->sj = 0;
        s->loaded = s->detached = 0;
        s->pi = e->push_first;
        s->ps = s->pj = 0;
        s->def = rc > 0 ? reg_family_definition(e->f) : pushed_def(s, e);
        if (family_setup(s, e) < 0)
            return -1;
        s->phase = PH_HEADER;
        return 1;
    }
    case PH_HEADER: {
        int rc = render_header(s);
        if (rc <= 0)
            return rc;
        s->last_meta = s->fams[s->fi].name;
        s->last_mlen = s->fams[s->fi].mlen;
        s->phase = PH_SERIES;
        return 1;
    }
    case PH_SERIES: {
        if (s->cur_open) {
            int rc = render_series(s);
            if (rc <= 0)
                return rc;
            close_family(s);
        }
        s->phase = PH_PUSHED;
        return 1;
    }
    case PH_PUSHED: {
        int rc = render_pushed(s);
        if (rc <= 0)
            return rc;
        s->fi++;
        s->phase = PH_FAMILY;
        return 1;
    }
    case PH_EOF: {
        int rc = reserve(s, 6);
        if (rc <= 0)
            return rc;
        memcpy(s->buf + s->blen, "# EOF\n", 6);
        s->blen += 6;
        s->phase = PH_DONE;
        return 1;
    }
    default:
        return 0;
    }
}

/* Render into the (consumed) internal buffer until it is full or the scrape is done, inside
 * one registry section. Returns -1 on error. */
static int refill(exp_scrape *s) {
    s->blen = s->bpos = 0;
    reg_begin(s->th);
    int rc = s->cur_open ? resume_family(s) : 0;
    while (rc == 0 && s->phase != PH_DONE) {
        int st = step(s);
        if (st < 0)
            rc = -1;
        if (st <= 0)
            break;
    }
    if (s->cur_open && pause_family(s) < 0)
        rc = -1;
    reg_end(s->th);
    return rc;
}

long exp_scrape_read(exp_scrape *s, char *buf, size_t max) {
    if (s == NULL || buf == NULL || max == 0 || s->err)
        return -1;
    if (max > LONG_MAX)
        max = LONG_MAX;
    if (s->gz == NULL) {
        while (s->bpos == s->blen) {
            if (s->phase == PH_DONE)
                return 0;
            if (refill(s) < 0) {
                s->err = 1;
                return -1;
            }
        }
        size_t n = s->blen - s->bpos;
        if (n > max)
            n = max;
        memcpy(buf, s->buf + s->bpos, n);
        s->bpos += n;
        return (long)n;
    }
    size_t made = 0;
    while (made < max && !exp_gzip_finished(s->gz)) {
        if (s->bpos == s->blen && s->phase != PH_DONE) {
            if (refill(s) < 0) {
                s->err = 1;
                return -1;
            }
            continue; /* a refill may render nothing yet (or finish the scrape) */
        }
        size_t used, out;
        if (exp_gzip_run(s->gz, s->buf + s->bpos, s->blen - s->bpos, s->phase == PH_DONE,
                         buf + made, max - made, &used, &out) < 0) {
            s->err = 1;
            return -1;
        }
        s->bpos += used;
        made += out;
    }
    return (long)made;
}
