/* load.c - reads the YAML file into a validated, immutable cfg_config: the schema walk.
 *
 * yaml.c turns the file into a node tree (anchors, aliases, merge keys, positions, bounds);
 * this file walks the tree along the schema, section by section and key by key, fills the
 * config and reports every problem with its position ("path: message", path like
 * `mappings[2].labels`); only YAML syntax errors stop early. Checks that span sections (a
 * rule feeding a declared metric, duplicate names) run last.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "config.h"
#include "internal.h"
#include "walk.h"
#include "yaml_tree.h"

/* A Unix socket path, NUL excluded (sun_path holds 108 bytes on Linux). */
#define MAX_UNIX_PATH (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* statsd_exporter's defaults: client_golang's DefBuckets and its default objectives. */
static const double def_buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
static const reg_objective def_objectives[] = {{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}};

/* One load in progress. */
typedef struct {
    cfg_yaml_report report;
    cfg_config *cfg;
    int def_obs_explicit; /* defaults gave observer_type or timer_type */
} loader;

/* ---- schema mappings (cfg_read_fields, paths and the plain reads are in walk.c) ---------- */

/* A list item that must be a mapping (a null one is an error too). 1 with f filled, or 0
 * (reported). */
static int read_item_fields(loader *c, cfg_node *n, const char *path, const char *const *names,
                            size_t nn, cfg_fields *f) {
    int r = cfg_read_fields(&c->report, n, path, names, nn, f);
    if (r == 0)
        cfg_yaml_error(&c->report, n, path, "expected a mapping, got null");
    return r > 0;
}

/* ---- typed values: 1 = set, 0 = absent or null, -1 = invalid (reported) ------------------ */

/* s[0..len) without YAML's digit-separating underscores, into buf[cap]. 0, or -1 when it does
 * not fit (no number is that long). */
static int strip_underscores(const char *s, size_t len, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '_')
            continue;
        if (o + 1 >= cap)
            return -1;
        buf[o++] = s[i];
    }
    buf[o] = 0;
    return 0;
}

/* YAML's .inf / .nan spellings (p is past the sign; nan takes none). 1 with *out set, or 0. */
static int yaml_special_float(const char *p, int neg, int signed_, double *out) {
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
        *out = neg ? -INFINITY : INFINITY;
        return 1;
    }
    if (!signed_ && (!strcmp(p, ".nan") || !strcmp(p, ".NaN") || !strcmp(p, ".NAN"))) {
        *out = NAN;
        return 1;
    }
    return 0;
}

/* 1 when p is digits with an optional fraction and exponent (at least one digit before the
 * exponent), nothing else. */
static int decimal_syntax(const char *p) {
    int digits = 0;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (!digits)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == 0;
}

/* A YAML 1.2 float: [-+] digits, fraction, exponent, `_` separators, .inf, .nan. 0 with *out,
 * or -1 when s is no number or overflows. */
static int yaml_float(const char *s, size_t len, double *out) {
    char buf[128];
    if (strip_underscores(s, len, buf, sizeof buf) != 0)
        return -1;
    const char *p = buf;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (yaml_special_float(p, neg, p != buf, out))
        return 0;
    if (!decimal_syntax(p))
        return -1;
    errno = 0;
    double v = strtod(buf, NULL);
    if (errno == ERANGE && isinf(v))
        return -1;
    *out = v;
    return 0;
}

static int read_number(loader *c, cfg_node *n, const char *path, double *out) {
    cfg_quoted b;
    if (cfg_yaml_is_null(n))
        return 0;
    if (n->kind != CFG_NODE_SCALAR || n->quoted || yaml_float(n->s, n->len, out) != 0) {
        cfg_yaml_error(&c->report, n, path, "expected a number, got %s", cfg_yaml_describe(n, &b));
        return -1;
    }
    return 1;
}

/* See internal.h. */
int cfg_read_uint(cfg_yaml_report *rep, cfg_node *n, const char *path, uint64_t max,
                  uint64_t *out) {
    cfg_quoted b;
    if (cfg_yaml_is_null(n))
        return 0;
    if (n->kind != CFG_NODE_SCALAR || n->quoted) {
        cfg_yaml_error(rep, n, path, "expected a whole number, got %s", cfg_yaml_describe(n, &b));
        return -1;
    }
    double d;
    if (n->s[0] == '-' && yaml_float(n->s, n->len, &d) == 0 && d != 0) {
        cfg_yaml_error(rep, n, path, "must not be negative, got %s", cfg_yaml_describe(n, &b));
        return -1;
    }
    uint64_t v = 0;
    int digits = 0, over = 0;
    size_t i = (n->s[0] == '+' || n->s[0] == '-') ? 1 : 0;
    for (; i < n->len; i++) {
        char ch = n->s[i];
        if (ch == '_')
            continue;
        if (ch < '0' || ch > '9') {
            cfg_yaml_error(rep, n, path, "expected a whole number, got %s",
                           cfg_yaml_describe(n, &b));
            return -1;
        }
        if (v > (UINT64_MAX - (uint64_t)(ch - '0')) / 10)
            over = 1;
        else
            v = v * 10 + (uint64_t)(ch - '0');
        digits++;
    }
    if (!digits) {
        cfg_yaml_error(rep, n, path, "expected a whole number, got %s", cfg_yaml_describe(n, &b));
        return -1;
    }
    if (over || v > max) {
        cfg_yaml_error(rep, n, path, "%s is out of range (max %llu)", cfg_yaml_describe(n, &b),
                       (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 1;
}

/* See internal.h. */
int cfg_read_duration(cfg_yaml_report *rep, cfg_node *n, const char *path, uint64_t *out) {
    cfg_quoted b;
    if (cfg_yaml_is_null(n))
        return 0;
    if (n->kind != CFG_NODE_SCALAR) {
        cfg_yaml_error(rep, n, path, "expected a duration, got %s", cfg_yaml_describe(n, &b));
        return -1;
    }
    uint64_t v;
    if (!memchr(n->s, 0, n->len) && cfg_parse_duration(n->s, &v) == 0) {
        *out = v;
        return 1;
    }
    size_t digits = strspn(n->s, "0123456789");
    if (n->s[0] == '-' && cfg_parse_duration(n->s + 1, &v) == 0)
        cfg_yaml_error(rep, n, path, "negative duration %s", cfg_yaml_describe(n, &b));
    else if (n->len > 0 && digits == n->len)
        cfg_yaml_error(rep, n, path, "invalid duration %s: missing unit (e.g. 30s)",
                       cfg_yaml_describe(n, &b));
    else
        cfg_yaml_error(rep, n, path, "invalid duration %s (e.g. 30s, 5m, 1h30m, 500ms)",
                       cfg_yaml_describe(n, &b));
    return -1;
}

/* names is NULL-terminated; *out is the index of the match. */
static int read_enum(loader *c, cfg_node *n, const char *path, const char *const *names,
                     const char *want, int *out) {
    cfg_quoted b;
    if (cfg_yaml_is_null(n))
        return 0;
    if (n->kind == CFG_NODE_SCALAR) {
        for (int i = 0; names[i]; i++) {
            if (strlen(names[i]) == n->len && !memcmp(names[i], n->s, n->len)) {
                *out = i;
                return 1;
            }
        }
    }
    cfg_yaml_error(&c->report, n, path, "invalid value %s (want %s)", cfg_yaml_describe(n, &b),
                   want);
    return -1;
}

/* A required, non-empty string: reports a missing key at `parent`. */
static int read_required_string(loader *c, cfg_fields *f, int i, const cfg_node *parent,
                                char **out) {
    char p[CFG_PATH_LEN];
    cfg_quoted b;
    if (!f->val[i]) {
        cfg_yaml_error(&c->report, parent, f->path, "missing required key %s",
                       cfg_quote_str(&b, f->names[i]));
        return -1;
    }
    int r = cfg_read_string(&c->report, f->val[i], cfg_field_path(p, f, i), out);
    if (r == 0 || (r > 0 && !**out)) {
        cfg_yaml_error(&c->report, f->val[i], p, "must not be empty");
        return -1;
    }
    return r;
}

/* A sequence of at most max items (`what` names them in the error), with a zeroed array of
 * as many elements of `size` bytes for the caller to fill (*mem NULL for `[]`). Returns as
 * read_sequence; -1 when reported (too many items, out of memory). */
static int read_sequence_alloc(loader *c, cfg_node *n, const char *path, size_t max,
                               const char *what, size_t size, cfg_node ***items, size_t *count,
                               void **mem) {
    *mem = NULL;
    int r = cfg_read_sequence(&c->report, n, path, items, count);
    if (r <= 0)
        return r;
    if (*count > max) {
        cfg_yaml_error(&c->report, n, path, "too many %s: %zu (max %zu)", what, *count, max);
        return -1;
    }
    if (*count && !(*mem = calloc(*count, size))) {
        cfg_yaml_oom(&c->report);
        return -1;
    }
    return 1;
}

/* Histogram buckets: finite, strictly increasing. 1 with *nout possibly 0 for `[]`. */
static int read_buckets(loader *c, cfg_node *n, const char *path, double **out, size_t *nout) {
    cfg_node **it;
    size_t cnt;
    void *mem;
    *out = NULL;
    *nout = 0;
    int r = read_sequence_alloc(c, n, path, REG_MAX_BUCKETS, "buckets", sizeof(double), &it, &cnt,
                                &mem);
    if (r <= 0 || cnt == 0)
        return r;
    double *v = mem;
    int bad = 0;
    for (size_t i = 0; i < cnt; i++) {
        char p[CFG_PATH_LEN];
        if (!cfg_yaml_visit(&c->report)) {
            bad = 1;
            break;
        }
        cfg_path_index(p, path, i);
        int rr = read_number(c, it[i], p, &v[i]);
        if (rr == 0)
            cfg_yaml_error(&c->report, it[i], p, "expected a number, got null");
        if (rr <= 0) {
            bad = 1;
            v[i] = i ? v[i - 1] : -INFINITY;
            continue;
        }
        if (!isfinite(v[i])) {
            cfg_yaml_error(&c->report, it[i], p, "buckets must be finite (+Inf is implied)");
            bad = 1;
        } else if (i && v[i] == v[i - 1]) {
            cfg_yaml_error(&c->report, it[i], p, "duplicate bucket %g", v[i]);
            bad = 1;
        } else if (i && v[i] < v[i - 1]) {
            cfg_yaml_error(&c->report, it[i], p, "buckets must be increasing: %g after %g", v[i],
                           v[i - 1]);
            bad = 1;
        }
    }
    if (bad) {
        free(v);
        return -1;
    }
    *out = v;
    *nout = cnt;
    return 1;
}

enum { QO_QUANTILE, QO_ERROR, QO_N };
static const char *const qo_keys[QO_N] = {"quantile", "error"};

/* Summary objectives: quantile and error each in (0,1), no quantile twice. */
static int read_objectives(loader *c, cfg_node *n, const char *path, reg_objective **out,
                           size_t *nout) {
    cfg_node **it;
    size_t cnt;
    void *mem;
    *out = NULL;
    *nout = 0;
    int r = read_sequence_alloc(c, n, path, REG_MAX_QUANTILES, "quantiles", sizeof(reg_objective),
                                &it, &cnt, &mem);
    if (r <= 0 || cnt == 0)
        return r;
    reg_objective *o = mem;
    int bad = 0;
    for (size_t i = 0; i < cnt; i++) {
        char ip[CFG_PATH_LEN], p[CFG_PATH_LEN];
        cfg_quoted b;
        if (!cfg_yaml_visit(&c->report)) {
            bad = 1;
            break;
        }
        cfg_path_index(ip, path, i);
        cfg_fields f;
        if (!read_item_fields(c, it[i], ip, qo_keys, QO_N, &f)) {
            bad = 1;
            continue;
        }
        /* NaN until read and valid: NaN equals nothing, so an item whose quantile was missing
         * or bad (reported already) is no duplicate of another such item. */
        double v[QO_N] = {NAN, NAN};
        for (int k = 0; k < QO_N; k++) {
            if (!f.val[k]) {
                cfg_yaml_error(&c->report, it[i], ip, "missing required key %s",
                               cfg_quote_str(&b, qo_keys[k]));
                bad = 1;
                continue;
            }
            double x = NAN;
            int rr = read_number(c, f.val[k], cfg_field_path(p, &f, k), &x);
            if (rr == 0)
                cfg_yaml_error(&c->report, f.val[k], p, "expected a number, got null");
            if (rr <= 0) {
                bad = 1;
            } else if (!(x > 0 && x < 1)) {
                cfg_yaml_error(&c->report, f.val[k], p, "must be in (0,1), got %g", x);
                bad = 1;
            } else {
                v[k] = x;
            }
        }
        for (size_t j = 0; j < i && !isnan(v[QO_QUANTILE]); j++) {
            if (o[j].quantile == v[QO_QUANTILE]) {
                cfg_yaml_error(&c->report, f.val[QO_QUANTILE], cfg_field_path(p, &f, QO_QUANTILE),
                               "duplicate quantile %g", v[QO_QUANTILE]);
                bad = 1;
                break;
            }
        }
        o[i].quantile = v[QO_QUANTILE];
        o[i].error = v[QO_ERROR];
    }
    if (bad) {
        free(o);
        return -1;
    }
    *out = o;
    *nout = cnt;
    return 1;
}

/* Wrappers reading field i of f. */
static int field_uint(loader *c, cfg_fields *f, int i, uint64_t max, uint64_t *out) {
    char p[CFG_PATH_LEN];
    return f->val[i] ? cfg_read_uint(&c->report, f->val[i], cfg_field_path(p, f, i), max, out) : 0;
}

static int field_duration(loader *c, cfg_fields *f, int i, uint64_t *out) {
    char p[CFG_PATH_LEN];
    return f->val[i] ? cfg_read_duration(&c->report, f->val[i], cfg_field_path(p, f, i), out) : 0;
}

static int field_enum(loader *c, cfg_fields *f, int i, const char *const *names, const char *want,
                      int *out) {
    char p[CFG_PATH_LEN];
    return f->val[i] ? read_enum(c, f->val[i], cfg_field_path(p, f, i), names, want, out) : 0;
}

/* A whole number 1..max (a limit, where 0 would refuse everything). Returns 1 read, 0 not
 * given, -1 reported (0 too, at its position; *out is then unchanged). */
static int field_positive(loader *c, cfg_fields *f, int i, uint64_t max, size_t *out) {
    char p[CFG_PATH_LEN];
    uint64_t u;
    int rc = field_uint(c, f, i, max, &u);
    if (rc <= 0)
        return rc;
    if (u == 0) {
        cfg_yaml_error(&c->report, f->val[i], cfg_field_path(p, f, i), "must be at least 1");
        return -1;
    }
    *out = (size_t)u;
    return 1;
}

/* ---- option blocks ------------------------------------------------------------------------ */

enum { HO_BUCKETS, HO_NFACTOR, HO_NMAX, HO_N };
static const char *const ho_keys[HO_N] = {"buckets", "native_histogram_bucket_factor",
                                          "native_histogram_max_buckets"};

/* histogram_options. The native-histogram keys of statsd_exporter are checked and ignored:
 * abacus exposes classic buckets only. */
static int load_histogram_options(loader *c, cfg_node *n, const char *path,
                                  cfg_histogram_options *h) {
    cfg_fields f;
    char p[CFG_PATH_LEN];
    int r = cfg_read_fields(&c->report, n, path, ho_keys, HO_N, &f);
    if (r <= 0)
        return r;
    read_buckets(c, f.val[HO_BUCKETS], cfg_field_path(p, &f, HO_BUCKETS), &h->buckets,
                 &h->nbuckets);
    double x;
    if (read_number(c, f.val[HO_NFACTOR], cfg_field_path(p, &f, HO_NFACTOR), &x) > 0 &&
        !(x >= 0 && isfinite(x)))
        cfg_yaml_error(&c->report, f.val[HO_NFACTOR], p, "must be a finite number >= 0, got %g", x);
    uint64_t u;
    field_uint(c, &f, HO_NMAX, UINT32_MAX, &u);
    return 1;
}

enum { SO_QUANTILES, SO_MAXAGE, SO_AGEB, SO_BUFCAP, SO_N };
static const char *const so_keys[SO_N] = {"quantiles", "max_age", "age_buckets", "buf_cap"};

/* summary_options. An empty quantile list means "inherit" in statsd_exporter's sections and
 * "no quantiles" (count and sum only) in a declared metric (empty_is_none). */
static int load_summary_options(loader *c, cfg_node *n, const char *path, cfg_summary_options *s,
                                int empty_is_none) {
    cfg_fields f;
    char p[CFG_PATH_LEN];
    int r = cfg_read_fields(&c->report, n, path, so_keys, SO_N, &f);
    if (r <= 0)
        return r;
    reg_objective *o;
    size_t no;
    if (read_objectives(c, f.val[SO_QUANTILES], cfg_field_path(p, &f, SO_QUANTILES), &o, &no) > 0) {
        if (no || empty_is_none) {
            s->objectives = o;
            s->nobjectives = no;
            s->has_objectives = 1;
        } else {
            free(o);
        }
    }
    field_duration(c, &f, SO_MAXAGE, &s->max_age_ns);
    uint64_t u;
    if (field_uint(c, &f, SO_AGEB, REG_MAX_AGE_BUCKETS, &u) > 0)
        s->age_buckets = (unsigned)u;
    if (field_uint(c, &f, SO_BUFCAP, REG_MAX_BUF_CAP, &u) > 0)
        s->buf_cap = (unsigned)u;
    return 1;
}

/* *dst = a malloc'd copy of n elements of size elem (NULL when n is 0). 0, or -1 when out of
 * memory (reported). */
static int dup_array(loader *c, void **dst, const void *src, size_t n, size_t elem) {
    *dst = NULL;
    if (!n)
        return 0;
    if (!(*dst = malloc(n * elem))) {
        cfg_yaml_oom(&c->report);
        return -1;
    }
    memcpy(*dst, src, n * elem);
    return 0;
}

/* Both copy from the defaults: 0, or -1 when out of memory (reported; the list stays empty). */
static int copy_buckets(loader *c, cfg_histogram_options *dst, const double *b, size_t n) {
    int rc = dup_array(c, (void **)&dst->buckets, b, n, sizeof *b);
    dst->nbuckets = rc ? 0 : n;
    return rc;
}

static int copy_objectives(loader *c, cfg_summary_options *dst, const reg_objective *o, size_t n) {
    dst->has_objectives = 1;
    int rc = dup_array(c, (void **)&dst->objectives, o, n, sizeof *o);
    dst->nobjectives = rc ? 0 : n;
    return rc;
}

/* Fill what a summary block left unset from the defaults. */
static void resolve_summary(loader *c, cfg_summary_options *s, const cfg_summary_options *d) {
    if (!s->has_objectives)
        copy_objectives(c, s, d->objectives, d->nobjectives);
    if (!s->max_age_ns)
        s->max_age_ns = d->max_age_ns;
    if (!s->age_buckets)
        s->age_buckets = d->age_buckets;
    if (!s->buf_cap)
        s->buf_cap = d->buf_cap;
}

/* ---- names, globs, regexes ----------------------------------------------------------------- */

static int is_word(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

/* A mapping's name: metric-name characters and $1 / ${1} captures; a literal part may not
 * start the name with a digit. *captures tells whether any capture appears. */
static int valid_name_template(const char *s, size_t len, int *captures) {
    *captures = 0;
    if (len == 0 || strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len;) {
        if (s[i] == '$') {
            size_t j = i + 1;
            int brace = j < len && s[j] == '{';
            j += (size_t)brace;
            size_t d = j;
            while (j < len && s[j] >= '0' && s[j] <= '9')
                j++;
            if (j == d)
                return 0;
            if (brace) {
                if (j >= len || s[j] != '}')
                    return 0;
                j++;
            }
            *captures = 1;
            i = j;
            continue;
        }
        if (!(is_word(s[i]) || s[i] == ':') || (i == 0 && s[i] >= '0' && s[i] <= '9'))
            return 0;
        i++;
    }
    return 1;
}

/* 0, or -1 when the pattern does not compile (reported). */
static int check_regex(loader *c, cfg_node *n, const char *path) {
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)n->s, n->len, PCRE2_UTF, &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        cfg_yaml_error(&c->report, n, path, "invalid regex: %s (at offset %zu)", (const char *)msg,
                       (size_t)off);
        return -1;
    }
    pcre2_code_free(re);
    return 0;
}

/* The registry's label name rules, each broken one reported with its own message; type < 0
 * when unknown (then only the "__" prefix is reserved). Returns 1 when acceptable. */
static int check_label_name(loader *c, const cfg_node *n, const char *path, const char *name,
                            size_t len, int type) {
    cfg_quoted b;
    reg_type t = type < 0 ? REG_UNTYPED : (reg_type)type;
    if (len > REG_MAX_NAME) {
        cfg_yaml_error(&c->report, n, path, "label name too long: %zu bytes (max %d)", len,
                       REG_MAX_NAME);
        return 0;
    }
    if (!reg_valid_label_name(name, len)) {
        cfg_yaml_error(&c->report, n, path, "invalid label name %s", cfg_quote(&b, name, len));
        return 0;
    }
    if (reg_reserved_label_name(REG_UNTYPED, name, len)) {
        cfg_yaml_error(&c->report, n, path, "label name %s is reserved (starts with \"__\")",
                       cfg_quote_str(&b, name));
        return 0;
    }
    if (reg_reserved_label_name(t, name, len)) {
        cfg_yaml_error(&c->report, n, path, "label name %s is reserved for %s",
                       cfg_quote_str(&b, name), t == REG_HISTOGRAM ? "histograms" : "summaries");
        return 0;
    }
    return 1;
}

/* The pair callback of cfg_read_label_map: one label, unless a duplicate or one too many
 * (both reported). */
static void label_map_pair(void *arg, cfg_node *k, cfg_node *v, int merged) {
    cfg_label_map *m = arg;
    cfg_quoted b;
    if (m->full)
        return;
    for (size_t i = 0; i < m->n; i++) {
        if (strlen(m->items[i].name) == k->len && !memcmp(m->items[i].name, k->s, k->len)) {
            if (!merged)
                cfg_yaml_error(m->r, k, m->path, "duplicate key %s", cfg_quote(&b, k->s, k->len));
            return;
        }
    }
    if (m->n == REG_MAX_LABELS) {
        cfg_yaml_error(m->r, k, m->path, "too many labels (max %d)", REG_MAX_LABELS);
        m->full = 1;
        return;
    }
    char p[CFG_PATH_LEN];
    snprintf(p, sizeof p, "%s.%.*s", m->path, (int)(k->len > 40 ? 40 : k->len), k->s);
    char *val = NULL;
    int r = cfg_read_string(m->r, v, p, &val);
    if (r < 0)
        return;
    if (r == 0 && !(val = cfg_copy_text(m->r, "", 0)))
        return;
    char *name = cfg_copy_text(m->r, k->s, k->len);
    if (!name) {
        free(val);
        return;
    }
    m->items[m->n] = (cfg_label){.name = name, .value = val};
    m->keys[m->n++] = k;
}

/* See internal.h. */
int cfg_read_label_map(cfg_yaml_report *rep, cfg_node *n, const char *path, cfg_label_map *m) {
    memset(m, 0, sizeof *m);
    m->r = rep;
    m->path = path;
    if (cfg_yaml_is_null(n))
        return 0;
    if (n->kind != CFG_NODE_MAP) {
        cfg_quoted b;
        cfg_yaml_error(m->r, n, path, "expected a mapping, got %s", cfg_yaml_describe(n, &b));
        return -1;
    }
    m->items = calloc(REG_MAX_LABELS, sizeof *m->items);
    m->keys = calloc(REG_MAX_LABELS, sizeof *m->keys);
    if (!m->items || !m->keys) {
        free(m->items);
        free(m->keys);
        m->items = NULL;
        m->keys = NULL;
        cfg_yaml_oom(m->r);
        return -1;
    }
    cfg_yaml_walk_map(m->r, n, path, label_map_pair, m);
    return 1;
}

/* See internal.h. */
void cfg_free_labels(cfg_label *l, size_t n) {
    for (size_t i = 0; l && i < n; i++) {
        free(l[i].name);
        free(l[i].value);
    }
    free(l);
}

/* ---- sections ----------------------------------------------------------------------------- */

static const char *const obs_names[] = {"histogram", "summary", NULL};
static const char *const match_names[] = {"glob", "regex", NULL};
static const char *const mmt_names[] = {"counter", "gauge", "observer", NULL};
static const char *const action_names[] = {"map", "drop", NULL};
/* In reg_type order. */
static const char *const type_names[] = {"counter", "gauge", "histogram", "summary", NULL};

enum {
    SV_LISTEN,
    SV_PATH,
    SV_MAXCONN,
    SV_MAXIP,
    SV_TIMEOUT,
    SV_MAXREQ,
    SV_REQTIMEOUT,
    SV_MAXSCRAPES,
    SV_QUEUETIMEOUT,
    SV_WRITETIMEOUT,
    SV_WEBCONFIG,
    SV_N
};
static const char *const sv_keys[SV_N] = {
    "listen_address",       "telemetry_path",    "max_connections", "max_connections_per_ip",
    "connection_timeout",   "max_request_bytes", "request_timeout", "max_concurrent_scrapes",
    "scrape_queue_timeout", "write_timeout",     "web_config_file"};

/* A relative, non-empty *path made relative to the directory of the file being loaded instead
 * (kept when that is the current one). Cannot fail (out of memory is reported). */
static void resolve_against_file(loader *c, char **path) {
    cfg_resolve_against(&c->report, c->cfg->path, path);
}

/* `server`; every problem reported. */
static void load_server(loader *c, cfg_node *n) {
    cfg_server *s = &c->cfg->server;
    cfg_fields f;
    char p[CFG_PATH_LEN];
    cfg_quoted b;
    if (cfg_read_fields(&c->report, n, "server", sv_keys, SV_N, &f) <= 0)
        return;
    if (cfg_field_string(&f, SV_LISTEN, &s->listen_address) > 0) {
        if (!*s->listen_address)
            cfg_yaml_error(&c->report, f.val[SV_LISTEN], cfg_field_path(p, &f, SV_LISTEN),
                           "must not be empty");
        else if (cfg_parse_address(s->listen_address, NULL, 0, NULL, NULL, 0) != 0)
            cfg_yaml_error(&c->report, f.val[SV_LISTEN], cfg_field_path(p, &f, SV_LISTEN),
                           "invalid address %s (want host:port or :port)",
                           cfg_quote_str(&b, s->listen_address));
    }
    if (cfg_field_string(&f, SV_PATH, &s->telemetry_path) > 0) {
        const char *t = s->telemetry_path;
        if (t[0] != '/' || !strcmp(t, "/") || !strncmp(t, "/-/", 3) || strpbrk(t, " \t?#"))
            cfg_yaml_error(&c->report, f.val[SV_PATH], cfg_field_path(p, &f, SV_PATH),
                           "invalid path %s (want /something, not \"/\" nor under \"/-/\")",
                           cfg_quote_str(&b, t));
    }
    uint64_t u;
    field_positive(c, &f, SV_MAXCONN, 1000000, &s->max_connections);
    if (field_uint(c, &f, SV_MAXIP, 1000000, &u) > 0)
        s->max_connections_per_ip = (size_t)u;
    field_duration(c, &f, SV_TIMEOUT, &s->connection_timeout_ns);
    field_positive(c, &f, SV_MAXREQ, CFG_MAX_BYTES_SETTING, &s->max_request_bytes);
    field_duration(c, &f, SV_REQTIMEOUT, &s->request_timeout_ns);
    field_positive(c, &f, SV_MAXSCRAPES, 1024, &s->max_concurrent_scrapes);
    field_duration(c, &f, SV_QUEUETIMEOUT, &s->scrape_queue_timeout_ns);
    field_duration(c, &f, SV_WRITETIMEOUT, &s->write_timeout_ns);
    if (cfg_field_string(&f, SV_WEBCONFIG, &s->web_config_file) > 0)
        resolve_against_file(c, &s->web_config_file);
}

enum {
    SD_UDP,
    SD_TCP,
    SD_UNIX,
    SD_RBUF,
    SD_READERS,
    SD_DOG,
    SD_INFLUX,
    SD_LIBRATO,
    SD_SIGNALFX,
    SD_CACHE,
    SD_MAXS,
    SD_TCP_IDLE,
    SD_TCP_MAX,
    SD_N
};
static const char *const sd_keys[SD_N] = {"listen_udp",
                                          "listen_tcp",
                                          "listen_unixgram",
                                          "read_buffer",
                                          "readers",
                                          "parse_dogstatsd_tags",
                                          "parse_influxdb_tags",
                                          "parse_librato_tags",
                                          "parse_signalfx_tags",
                                          "cache_size",
                                          "max_series",
                                          "tcp_idle_timeout",
                                          "max_tcp_connections"};

/* `statsd`; every problem reported. */
static void load_statsd(loader *c, cfg_node *n) {
    cfg_statsd *s = &c->cfg->statsd;
    cfg_fields f;
    char p[CFG_PATH_LEN];
    cfg_quoted b;
    if (cfg_read_fields(&c->report, n, "statsd", sd_keys, SD_N, &f) <= 0)
        return;
    char **addrs[2] = {&s->listen_udp, &s->listen_tcp};
    for (int i = 0; i < 2; i++) {
        if (cfg_field_string(&f, SD_UDP + i, addrs[i]) > 0 && **addrs[i] &&
            cfg_parse_address(*addrs[i], NULL, 0, NULL, NULL, 0) != 0)
            cfg_yaml_error(&c->report, f.val[SD_UDP + i], cfg_field_path(p, &f, SD_UDP + i),
                           "invalid address %s (want host:port, :port, or \"\" to disable)",
                           cfg_quote_str(&b, *addrs[i]));
    }
    if (cfg_field_string(&f, SD_UNIX, &s->listen_unixgram) > 0 &&
        strlen(s->listen_unixgram) > MAX_UNIX_PATH)
        cfg_yaml_error(&c->report, f.val[SD_UNIX], cfg_field_path(p, &f, SD_UNIX),
                       "socket path too long (max %zu bytes)", MAX_UNIX_PATH);
    uint64_t u;
    if (field_uint(c, &f, SD_RBUF, INT32_MAX, &u) > 0)
        s->read_buffer = (size_t)u;
    if (field_uint(c, &f, SD_READERS, 256, &u) > 0)
        s->readers = (unsigned)u;
    cfg_field_bool(&f, SD_DOG, &s->dogstatsd_tags);
    cfg_field_bool(&f, SD_INFLUX, &s->influxdb_tags);
    cfg_field_bool(&f, SD_LIBRATO, &s->librato_tags);
    cfg_field_bool(&f, SD_SIGNALFX, &s->signalfx_tags);
    if (field_uint(c, &f, SD_CACHE, 10000000, &u) > 0)
        s->cache_size = (size_t)u;
    if (field_uint(c, &f, SD_MAXS, SIZE_MAX, &u) > 0)
        s->max_series = (size_t)u;
    field_duration(c, &f, SD_TCP_IDLE, &s->tcp_idle_timeout_ns);
    field_positive(c, &f, SD_TCP_MAX, 1000000, &s->max_tcp_connections);
}

enum { PU_TTL, PU_MAXBODY, PU_MAXBUF, PU_ENABLED, PU_N };
static const char *const pu_keys[PU_N] = {"group_ttl", "max_body_bytes", "max_buffered_bytes",
                                          "enabled"};

/* `push`; every problem reported. */
static void load_push(loader *c, cfg_node *n) {
    cfg_push *s = &c->cfg->push;
    cfg_fields f;
    if (cfg_read_fields(&c->report, n, "push", pu_keys, PU_N, &f) <= 0)
        return;
    field_duration(c, &f, PU_TTL, &s->group_ttl_ns);
    field_positive(c, &f, PU_MAXBODY, CFG_MAX_BYTES_SETTING, &s->max_body_bytes);
    field_positive(c, &f, PU_MAXBUF, CFG_MAX_BYTES_SETTING, &s->max_buffered_bytes);
    cfg_field_bool(&f, PU_ENABLED, &s->enabled);
}

enum {
    DF_TTL,
    DF_MAXS,
    DF_OBS,
    DF_TIMER,
    DF_HIST,
    DF_SUM,
    DF_MATCH,
    DF_GLOBORD,
    DF_BUCKETS,
    DF_QUANTILES,
    DF_N
};
static const char *const df_keys[DF_N] = {"ttl",
                                          "max_series",
                                          "observer_type",
                                          "timer_type",
                                          "histogram_options",
                                          "summary_options",
                                          "match_type",
                                          "glob_disable_ordering",
                                          "buckets",
                                          "quantiles"};

/* The observer options of one block (defaults or a mapping rule) as written: the option
 * blocks, and statsd_exporter's deprecated top-level buckets / quantiles. */
typedef struct {
    cfg_histogram_options hist;
    cfg_summary_options summ;
    int hist_given, summ_given; /* the option block was a mapping */
    double *buckets;            /* deprecated `buckets` (NULL when not given or []) */
    size_t nbuckets;
    reg_objective *quantiles; /* deprecated `quantiles` */
    size_t nquantiles;
} observer_options;

/* Each reads one key of an observer block into o (invalid values reported). */
static void read_observer_histogram(loader *c, cfg_fields *f, int i, observer_options *o) {
    char p[CFG_PATH_LEN];
    o->hist_given = load_histogram_options(c, f->val[i], cfg_field_path(p, f, i), &o->hist) > 0;
}

static void read_observer_summary(loader *c, cfg_fields *f, int i, observer_options *o) {
    char p[CFG_PATH_LEN];
    o->summ_given = load_summary_options(c, f->val[i], cfg_field_path(p, f, i), &o->summ, 0) > 0;
}

static void read_observer_buckets(loader *c, cfg_fields *f, int i, observer_options *o) {
    char p[CFG_PATH_LEN];
    read_buckets(c, f->val[i], cfg_field_path(p, f, i), &o->buckets, &o->nbuckets);
}

static void read_observer_quantiles(loader *c, cfg_fields *f, int i, observer_options *o) {
    char p[CFG_PATH_LEN];
    read_objectives(c, f->val[i], cfg_field_path(p, f, i), &o->quantiles, &o->nquantiles);
}

/* statsd_exporter's rule for the deprecated keys: each is used only when its modern
 * counterpart gave none. Moves the chosen lists into o->hist and o->summ and frees the
 * others. Cannot fail. */
static void fold_deprecated_options(observer_options *o) {
    if (!o->hist.nbuckets && o->nbuckets) {
        o->hist = (cfg_histogram_options){.buckets = o->buckets, .nbuckets = o->nbuckets};
        o->buckets = NULL;
    }
    free(o->buckets);
    o->buckets = NULL;
    if (!o->summ.has_objectives && o->nquantiles) {
        o->summ.objectives = o->quantiles;
        o->summ.nobjectives = o->nquantiles;
        o->summ.has_objectives = 1;
        o->quantiles = NULL;
    }
    free(o->quantiles);
    o->quantiles = NULL;
}

/* `defaults`, with statsd_exporter's deprecated timer_type / buckets / quantiles honoured the
 * way it does: each is used only when its modern counterpart is not given. */
static void load_defaults(loader *c, cfg_node *n) {
    cfg_defaults *d = &c->cfg->defaults;
    cfg_fields f;
    if (cfg_read_fields(&c->report, n, "defaults", df_keys, DF_N, &f) <= 0)
        return;
    field_duration(c, &f, DF_TTL, &d->ttl_ns);
    uint64_t u;
    if (field_uint(c, &f, DF_MAXS, SIZE_MAX, &u) > 0)
        d->max_series = (size_t)u;
    int eo = 0, et = 0;
    int ro = field_enum(c, &f, DF_OBS, obs_names, "histogram or summary", &eo);
    int rt = field_enum(c, &f, DF_TIMER, obs_names, "histogram or summary", &et);
    if (ro > 0 || rt > 0) {
        d->observer_type = (ro > 0 ? eo : et) == 0 ? CFG_OBS_HISTOGRAM : CFG_OBS_SUMMARY;
        c->def_obs_explicit = 1;
    }

    /* Read in this order (and the rule's in its own), so that two errors at one node (an
     * alias used twice) keep their order. */
    observer_options o = {0};
    read_observer_histogram(c, &f, DF_HIST, &o);
    read_observer_buckets(c, &f, DF_BUCKETS, &o);
    read_observer_summary(c, &f, DF_SUM, &o);
    read_observer_quantiles(c, &f, DF_QUANTILES, &o);
    fold_deprecated_options(&o);
    if (o.hist.nbuckets) {
        free(d->histogram.buckets);
        d->histogram = o.hist;
    }
    if (o.summ.has_objectives) {
        free(d->summary.objectives);
        d->summary.objectives = o.summ.objectives;
        d->summary.nobjectives = o.summ.nobjectives;
    }
    d->summary.max_age_ns = o.summ.max_age_ns;
    d->summary.age_buckets = o.summ.age_buckets;
    d->summary.buf_cap = o.summ.buf_cap;

    int e;
    if (field_enum(c, &f, DF_MATCH, match_names, "glob or regex", &e) > 0)
        d->match_type = e == 0 ? CFG_MATCH_GLOB : CFG_MATCH_REGEX;
    cfg_field_bool(&f, DF_GLOBORD, &d->glob_disable_ordering);
}

/* Nodes of a declared metric kept for the checks across sections. */
typedef struct {
    cfg_node *node, *name;
    int type_ok;
} metric_nodes;

/* Nodes of a mapping rule kept for the checks across sections. */
typedef struct {
    cfg_node *node, *name, *labels, *mmt, *obs;
    cfg_node **lkeys; /* key node of each label */
    int literal;      /* name has no captures */
    int obs_explicit; /* the rule (or defaults) chose the observer type */
} rule_nodes;

enum {
    MT_NAME,
    MT_HELP,
    MT_TYPE,
    MT_LABELS,
    MT_CONST,
    MT_HIST,
    MT_SUM,
    MT_TTL,
    MT_MAXS,
    MT_UNIT,
    MT_N
};
static const char *const mt_keys[MT_N] = {
    "name", "help",       "type", "labels", "const_labels", "histogram_options", "summary_options",
    "ttl",  "max_series", "unit"};

/* const_labels are stored as one block: the cfg_label array followed by the parallel name and
 * value pointer arrays that reg_family_def wants (see cfg_metric_family_def). NULL when out of
 * memory (reported). */
static cfg_label *const_block(loader *c, const cfg_label_map *m) {
    cfg_label *blk = malloc(m->n * (sizeof(cfg_label) + 2 * sizeof(char *)));
    if (!blk) {
        cfg_yaml_oom(&c->report);
        return NULL;
    }
    const char **names = (const char **)(blk + m->n), **values = names + m->n;
    for (size_t i = 0; i < m->n; i++) {
        blk[i] = m->items[i];
        names[i] = blk[i].name;
        values[i] = blk[i].value;
    }
    return blk;
}

/* `name`: required, a valid metric name (m->name stays NULL otherwise; reported). */
static void load_metric_name(loader *c, cfg_fields *f, cfg_node *n, cfg_metric *m) {
    char p[CFG_PATH_LEN];
    cfg_quoted b;
    if (read_required_string(c, f, MT_NAME, n, &m->name) <= 0)
        return;
    size_t len = strlen(m->name);
    if (len > REG_MAX_NAME)
        cfg_yaml_error(&c->report, f->val[MT_NAME], cfg_field_path(p, f, MT_NAME),
                       "name too long: %zu bytes (max %d)", len, REG_MAX_NAME);
    else if (!reg_valid_metric_name(m->name, len))
        cfg_yaml_error(&c->report, f->val[MT_NAME], cfg_field_path(p, f, MT_NAME),
                       "invalid metric name %s", cfg_quote_str(&b, m->name));
    else
        return;
    free(m->name);
    m->name = NULL;
}

/* `type`: required. Returns the reg_type, or -1 when missing or invalid (reported). */
static int load_metric_type(loader *c, cfg_fields *f, cfg_node *n, const char *path) {
    int e;
    if (!f->val[MT_TYPE])
        cfg_yaml_error(&c->report, n, path, "missing required key \"type\"");
    else if (field_enum(c, f, MT_TYPE, type_names, "counter, gauge, histogram or summary", &e) > 0)
        return e;
    return -1;
}

/* 1 when name (before `_total` for a counter) ends with `_<unit>`, as OpenMetrics wants. */
static int name_has_unit(const char *name, int type, const char *unit) {
    size_t nl = strlen(name), ul = strlen(unit);
    if (type == REG_COUNTER && nl > 6 && !strcmp(name + nl - 6, "_total"))
        nl -= 6;
    return nl > ul + 1 && name[nl - ul - 1] == '_' && !strncmp(name + nl - ul, unit, ul);
}

/* `unit`: word characters, and the metric name must carry it (both reported). */
static void load_metric_unit(loader *c, cfg_fields *f, cfg_metric *m, int type) {
    char p[CFG_PATH_LEN];
    cfg_quoted b, b2;
    if (cfg_field_string(f, MT_UNIT, &m->unit) <= 0)
        return;
    size_t ul = strlen(m->unit);
    int ok = ul > 0;
    for (size_t i = 0; i < ul; i++)
        ok &= is_word(m->unit[i]);
    if (!ok)
        cfg_yaml_error(&c->report, f->val[MT_UNIT], cfg_field_path(p, f, MT_UNIT),
                       "invalid unit %s", cfg_quote_str(&b, m->unit));
    else if (m->name && !name_has_unit(m->name, type, m->unit))
        cfg_yaml_error(&c->report, f->val[MT_UNIT], cfg_field_path(p, f, MT_UNIT),
                       "metric name %s must end with \"_%s\" to have unit %s",
                       cfg_quote_str(&b, m->name), m->unit, cfg_quote_str(&b2, m->unit));
}

/* One item of `labels`: a valid label name not given before. Returns the copy, or NULL
 * (reported). */
static char *load_metric_label(loader *c, cfg_node *item, const char *path, const cfg_metric *m,
                               int type) {
    cfg_quoted b;
    char *s = NULL;
    if (cfg_yaml_is_null(item)) {
        cfg_yaml_error(&c->report, item, path, "expected a label name, got null");
        return NULL;
    }
    if (cfg_read_string(&c->report, item, path, &s) <= 0)
        return NULL;
    int ok = check_label_name(c, item, path, s, item->len, type);
    for (size_t j = 0; ok && j < m->nlabels; j++) {
        if (!strcmp(m->labels[j], s)) {
            cfg_yaml_error(&c->report, item, path, "duplicate label name %s", cfg_quote_str(&b, s));
            ok = 0;
        }
    }
    if (!ok) {
        free(s);
        return NULL;
    }
    return s;
}

/* `labels`: a sequence of label names, in order (bad ones reported and left out). */
static void load_metric_labels(loader *c, cfg_fields *f, cfg_metric *m, int type) {
    char p[CFG_PATH_LEN];
    cfg_node **it;
    size_t cnt;
    void *mem;
    if (read_sequence_alloc(c, f->val[MT_LABELS], cfg_field_path(p, f, MT_LABELS), REG_MAX_LABELS,
                            "labels", sizeof *m->labels, &it, &cnt, &mem) <= 0)
        return;
    m->labels = mem;
    for (size_t i = 0; i < cnt && cfg_yaml_visit(&c->report); i++) {
        char ip[CFG_PATH_LEN];
        char *s = load_metric_label(c, it[i], cfg_path_index(ip, p, i), m, type);
        if (s)
            m->labels[m->nlabels++] = s;
    }
}

/* `const_labels`: a map of valid label names not among `labels`, within the label limit. */
static void load_metric_const_labels(loader *c, cfg_fields *f, cfg_metric *m, int type) {
    char p[CFG_PATH_LEN];
    cfg_quoted b;
    cfg_label_map lm;
    if (cfg_read_label_map(&c->report, f->val[MT_CONST], cfg_field_path(p, f, MT_CONST), &lm) <= 0)
        return;
    for (size_t i = 0; i < lm.n; i++) {
        const char *name = lm.items[i].name;
        if (!check_label_name(c, lm.keys[i], p, name, lm.keys[i]->len, type))
            continue;
        for (size_t j = 0; j < m->nlabels; j++)
            if (!strcmp(m->labels[j], name))
                cfg_yaml_error(&c->report, lm.keys[i], p, "%s is also in labels",
                               cfg_quote_str(&b, name));
    }
    if (lm.n + m->nlabels > REG_MAX_LABELS)
        cfg_yaml_error(&c->report, f->val[MT_CONST], p, "too many labels and const_labels (max %d)",
                       REG_MAX_LABELS);
    if (lm.n && (m->const_labels = const_block(c, &lm)) != NULL) {
        m->nconst = lm.n;
        free(lm.items); /* the strings moved into the block */
    } else {
        cfg_free_labels(lm.items, lm.n);
    }
    free(lm.keys);
}

/* histogram_options / summary_options (only with the matching type), ttl and max_series,
 * then what is unset from the defaults. */
static void load_metric_options(loader *c, cfg_fields *f, const char *path, cfg_metric *m,
                                int type) {
    const cfg_defaults *d = &c->cfg->defaults;
    char p[CFG_PATH_LEN];
    if (!cfg_yaml_is_null(f->val[MT_HIST])) {
        if (type >= 0 && type != REG_HISTOGRAM)
            cfg_yaml_error(&c->report, f->key[MT_HIST], path,
                           "histogram_options is only valid with type histogram");
        else
            load_histogram_options(c, f->val[MT_HIST], cfg_field_path(p, f, MT_HIST),
                                   &m->histogram);
    }
    if (!cfg_yaml_is_null(f->val[MT_SUM])) {
        if (type >= 0 && type != REG_SUMMARY)
            cfg_yaml_error(&c->report, f->key[MT_SUM], path,
                           "summary_options is only valid with type summary");
        else
            load_summary_options(c, f->val[MT_SUM], cfg_field_path(p, f, MT_SUM), &m->summary, 1);
    }
    m->has_ttl = field_duration(c, f, MT_TTL, &m->ttl_ns) > 0;
    if (!m->has_ttl)
        m->ttl_ns = d->ttl_ns;
    uint64_t u;
    if (field_uint(c, f, MT_MAXS, SIZE_MAX, &u) > 0)
        m->max_series = (size_t)u;
    else
        m->max_series = d->max_series;
    if (type == REG_HISTOGRAM && !m->histogram.nbuckets)
        copy_buckets(c, &m->histogram, d->histogram.buckets, d->histogram.nbuckets);
    if (type == REG_SUMMARY)
        resolve_summary(c, &m->summary, &d->summary);
}

/* One declared metric (`metrics[i]`); every problem reported. */
static void load_metric(loader *c, cfg_node *n, const char *path, cfg_metric *m,
                        metric_nodes *where) {
    cfg_fields f;
    where->node = n;
    m->line = n->line;
    m->column = n->col;
    if (!read_item_fields(c, n, path, mt_keys, MT_N, &f))
        return;
    where->name = f.val[MT_NAME];
    load_metric_name(c, &f, n, m);
    int type = load_metric_type(c, &f, n, path);
    where->type_ok = type >= 0;
    m->type = type >= 0 ? (reg_type)type : REG_UNTYPED;
    cfg_field_string(&f, MT_HELP, &m->help);
    load_metric_unit(c, &f, m, type);
    load_metric_labels(c, &f, m, type);
    load_metric_const_labels(c, &f, m, type);
    load_metric_options(c, &f, path, m, type);
}

enum {
    MP_MATCH,
    MP_NAME,
    MP_LABELS,
    MP_MTYPE,
    MP_MMT,
    MP_ACTION,
    MP_OBS,
    MP_TIMER,
    MP_HIST,
    MP_SUM,
    MP_BUCKETS,
    MP_QUANTILES,
    MP_TTL,
    MP_HELP,
    MP_HONOR,
    MP_SCALE,
    MP_N
};
static const char *const mp_keys[MP_N] = {"match",
                                          "name",
                                          "labels",
                                          "match_type",
                                          "match_metric_type",
                                          "action",
                                          "observer_type",
                                          "timer_type",
                                          "histogram_options",
                                          "summary_options",
                                          "buckets",
                                          "quantiles",
                                          "ttl",
                                          "help",
                                          "honor_labels",
                                          "scale"};

/* `action`, `match_type` and `match`: a required glob or regex that must be valid. */
static void load_mapping_match(loader *c, cfg_fields *f, cfg_node *n, cfg_mapping *r) {
    char p[CFG_PATH_LEN];
    cfg_quoted b;
    int e;
    if (field_enum(c, f, MP_ACTION, action_names, "map or drop", &e) > 0)
        r->action = e == 0 ? CFG_ACTION_MAP : CFG_ACTION_DROP;
    if (field_enum(c, f, MP_MTYPE, match_names, "glob or regex", &e) > 0)
        r->match_type = e == 0 ? CFG_MATCH_GLOB : CFG_MATCH_REGEX;
    if (read_required_string(c, f, MP_MATCH, n, &r->match) <= 0)
        return;
    cfg_field_path(p, f, MP_MATCH);
    if (r->match_type != CFG_MATCH_GLOB)
        check_regex(c, f->val[MP_MATCH], p);
    else if (!cfg_valid_glob(r->match, strlen(r->match)))
        cfg_yaml_error(&c->report, f->val[MP_MATCH], p,
                       "invalid glob %s (dot-separated parts, each \"*\" or made of letters, "
                       "digits, \"_\" and \"-\")",
                       cfg_quote_str(&b, r->match));
}

/* `name`: required unless the action is drop; metric-name characters and captures. */
static void load_mapping_name(loader *c, cfg_fields *f, cfg_node *n, cfg_mapping *r,
                              rule_nodes *where) {
    char p[CFG_PATH_LEN];
    cfg_quoted b;
    where->name = f->val[MP_NAME];
    int has_name = 0;
    if (r->action == CFG_ACTION_MAP)
        has_name = read_required_string(c, f, MP_NAME, n, &r->name) > 0;
    else if (cfg_field_string(f, MP_NAME, &r->name) > 0 && *r->name)
        has_name = 1;
    if (r->name && !*r->name) {
        free(r->name);
        r->name = NULL;
    }
    if (!has_name)
        return;
    int caps;
    if (where->name->len > REG_MAX_NAME)
        cfg_yaml_error(&c->report, where->name, cfg_field_path(p, f, MP_NAME),
                       "name too long: %zu bytes (max %d)", where->name->len, REG_MAX_NAME);
    else if (!valid_name_template(r->name, where->name->len, &caps))
        cfg_yaml_error(&c->report, where->name, cfg_field_path(p, f, MP_NAME),
                       "invalid metric name %s (letters, digits, \"_\", \":\" and $1 or ${1} "
                       "captures; not starting with a digit)",
                       cfg_quote_str(&b, r->name));
    else
        where->literal = !caps;
}

/* The rule's observer_type, else its deprecated timer_type: 0 histogram, 1 summary, -1 when
 * neither is given (or valid). */
static int read_mapping_observer_type(loader *c, cfg_fields *f, rule_nodes *where) {
    int eo = 0, et = 0;
    int ro = field_enum(c, f, MP_OBS, obs_names, "histogram or summary", &eo);
    int rt = field_enum(c, f, MP_TIMER, obs_names, "histogram or summary", &et);
    where->obs = ro > 0 ? f->val[MP_OBS] : rt > 0 ? f->val[MP_TIMER] : NULL;
    return ro > 0 ? eo : rt > 0 ? et : -1;
}

/* The observer type: the rule's (obs), else an explicit default, else a summary as
 * statsd_exporter does (its exporter treats the unset observer type as summary, whatever
 * options are given). Options for the other type are reported. */
static void choose_mapping_observer_type(loader *c, cfg_fields *f, const char *path, cfg_mapping *r,
                                         rule_nodes *where, int obs, const observer_options *o) {
    if (obs < 0 && !c->def_obs_explicit) {
        r->observer_type = CFG_OBS_SUMMARY;
        return;
    }
    cfg_observer_type ot = obs >= 0 ? (obs == 0 ? CFG_OBS_HISTOGRAM : CFG_OBS_SUMMARY)
                                    : c->cfg->defaults.observer_type;
    where->obs_explicit = 1;
    r->observer_type = ot;
    if (ot == CFG_OBS_HISTOGRAM && o->summ_given)
        cfg_yaml_error(&c->report, f->key[MP_SUM], path,
                       "summary_options cannot be used with a histogram");
    if (ot == CFG_OBS_SUMMARY && o->hist_given)
        cfg_yaml_error(&c->report, f->key[MP_HIST], path,
                       "histogram_options cannot be used with a summary");
}

/* The rule's observer type, buckets and objectives, resolved against the defaults. */
static void load_mapping_observer(loader *c, cfg_fields *f, const char *path, cfg_mapping *r,
                                  rule_nodes *where) {
    const cfg_defaults *d = &c->cfg->defaults;
    int obs = read_mapping_observer_type(c, f, where);
    observer_options o = {0};
    read_observer_histogram(c, f, MP_HIST, &o);
    read_observer_summary(c, f, MP_SUM, &o);
    read_observer_buckets(c, f, MP_BUCKETS, &o);
    read_observer_quantiles(c, f, MP_QUANTILES, &o);
    if (o.nbuckets && o.hist.nbuckets)
        cfg_yaml_error(&c->report, f->key[MP_BUCKETS], path,
                       "buckets and histogram_options.buckets cannot both be given");
    if (o.nquantiles && o.summ.has_objectives)
        cfg_yaml_error(&c->report, f->key[MP_QUANTILES], path,
                       "quantiles and summary_options.quantiles cannot both be given");
    choose_mapping_observer_type(c, f, path, r, where, obs, &o);
    fold_deprecated_options(&o);
    if (o.hist.nbuckets)
        r->histogram = o.hist;
    else
        copy_buckets(c, &r->histogram, d->histogram.buckets, d->histogram.nbuckets);
    r->summary = o.summ;
    resolve_summary(c, &r->summary, &d->summary);
}

/* `labels`: valid label names (reserved ones depend on the type an observer rule makes). */
static void load_mapping_labels(loader *c, cfg_fields *f, cfg_mapping *r, rule_nodes *where) {
    char p[CFG_PATH_LEN];
    cfg_label_map lm;
    where->labels = f->val[MP_LABELS];
    if (cfg_read_label_map(&c->report, f->val[MP_LABELS], cfg_field_path(p, f, MP_LABELS), &lm) <=
        0)
        return;
    int type = -1;
    if (r->match_metric_type == CFG_MMT_OBSERVER)
        type = r->observer_type == CFG_OBS_SUMMARY ? REG_SUMMARY : REG_HISTOGRAM;
    for (size_t i = 0; i < lm.n; i++)
        check_label_name(c, lm.keys[i], p, lm.items[i].name, lm.keys[i]->len, type);
    r->labels = lm.items;
    r->nlabels = lm.n;
    where->lkeys = lm.keys;
}

/* `ttl` (else the default), `help`, `honor_labels` and a finite `scale`. */
static void load_mapping_rest(loader *c, cfg_fields *f, cfg_mapping *r) {
    char p[CFG_PATH_LEN];
    r->has_ttl = field_duration(c, f, MP_TTL, &r->ttl_ns) > 0;
    if (!r->has_ttl)
        r->ttl_ns = c->cfg->defaults.ttl_ns;
    cfg_field_string(f, MP_HELP, &r->help);
    cfg_field_bool(f, MP_HONOR, &r->honor_labels);
    double x;
    if (f->val[MP_SCALE] &&
        read_number(c, f->val[MP_SCALE], cfg_field_path(p, f, MP_SCALE), &x) > 0) {
        if (!isfinite(x))
            cfg_yaml_error(&c->report, f->val[MP_SCALE], p, "must be finite, got %g", x);
        r->scale = x;
        r->has_scale = 1;
    }
}

/* One statsd_exporter mapping rule, same keys and rules, plus: `name` may be omitted for
 * action drop; an observer type is inferred from the options given when none is set. Every
 * problem reported. */
static void load_mapping(loader *c, cfg_node *n, const char *path, cfg_mapping *r,
                         rule_nodes *where) {
    const cfg_defaults *d = &c->cfg->defaults;
    cfg_fields f;
    where->node = n;
    r->line = n->line;
    r->column = n->col;
    r->scale = 1;
    r->match_type = d->match_type;
    r->observer_type = d->observer_type;
    if (!read_item_fields(c, n, path, mp_keys, MP_N, &f))
        return;
    load_mapping_match(c, &f, n, r);
    load_mapping_name(c, &f, n, r, where);
    int e;
    where->mmt = f.val[MP_MMT];
    if (field_enum(c, &f, MP_MMT, mmt_names, "counter, gauge or observer", &e) > 0)
        r->match_metric_type = (cfg_metric_kind)(e + 1);
    load_mapping_observer(c, &f, path, r, where);
    load_mapping_labels(c, &f, r, where);
    load_mapping_rest(c, &f, r);
}

/* ---- checks across sections --------------------------------------------------------------- */

static const char *type_name(reg_type t) {
    return t >= REG_COUNTER && t <= REG_SUMMARY ? type_names[t] : "untyped";
}

static int rule_type(const cfg_mapping *r) {
    switch (r->match_metric_type) {
    case CFG_MMT_COUNTER:
        return REG_COUNTER;
    case CFG_MMT_GAUGE:
        return REG_GAUGE;
    case CFG_MMT_OBSERVER:
        return r->observer_type == CFG_OBS_SUMMARY ? REG_SUMMARY : REG_HISTOGRAM;
    default:
        return -1;
    }
}

/* A rule whose name is a declared metric must feed it: same label names, compatible type. */
static void check_rule_vs_metric(loader *c, size_t k, const cfg_mapping *r, const rule_nodes *where,
                                 size_t mi, const cfg_metric *m, const metric_nodes *mx) {
    char path[CFG_PATH_LEN], p[CFG_PATH_LEN];
    cfg_quoted b, b2;
    cfg_path_index(path, "mappings", k);
    if (mx->type_ok) {
        int mt = m->type;
        const char *mmt = r->match_metric_type == CFG_MMT_COUNTER ? "counter"
                          : r->match_metric_type == CFG_MMT_GAUGE ? "gauge"
                                                                  : "observer";
        int ok = r->match_metric_type == CFG_MMT_ANY ||
                 (r->match_metric_type == CFG_MMT_COUNTER && mt == REG_COUNTER) ||
                 (r->match_metric_type == CFG_MMT_GAUGE && mt == REG_GAUGE) ||
                 (r->match_metric_type == CFG_MMT_OBSERVER &&
                  (mt == REG_HISTOGRAM || mt == REG_SUMMARY));
        if (!ok)
            cfg_yaml_error(
                &c->report, where->mmt, cfg_path_key(p, path, "match_metric_type"),
                "%s events cannot update %s metric %s (declared by metrics[%zu] at %u:%u)", mmt,
                type_name(m->type), cfg_quote_str(&b, m->name), mi, mx->name->line, mx->name->col);
        if (where->obs && (mt == REG_HISTOGRAM || mt == REG_SUMMARY)) {
            int ot = r->observer_type == CFG_OBS_SUMMARY ? REG_SUMMARY : REG_HISTOGRAM;
            if (ot != mt)
                cfg_yaml_error(&c->report, where->obs, cfg_path_key(p, path, "observer_type"),
                               "%s conflicts with %s metric %s (declared by metrics[%zu] at %u:%u)",
                               type_name((reg_type)ot), type_name(m->type),
                               cfg_quote_str(&b, m->name), mi, mx->name->line, mx->name->col);
        }
    }
    cfg_path_key(p, path, "labels");
    for (size_t i = 0; i < m->nlabels; i++) {
        size_t j = 0;
        while (j < r->nlabels && strcmp(r->labels[j].name, m->labels[i]))
            j++;
        if (j == r->nlabels)
            cfg_yaml_error(&c->report,
                           where->labels && !cfg_yaml_is_null(where->labels) ? where->labels
                                                                             : where->node,
                           p, "missing label %s of metric %s", cfg_quote_str(&b, m->labels[i]),
                           cfg_quote_str(&b2, m->name));
    }
    for (size_t j = 0; j < r->nlabels; j++) {
        size_t i = 0;
        while (i < m->nlabels && strcmp(r->labels[j].name, m->labels[i]))
            i++;
        if (i == m->nlabels)
            cfg_yaml_error(&c->report, where->lkeys[j], p, "metric %s has no label %s",
                           cfg_quote_str(&b, m->name), cfg_quote_str(&b2, r->labels[j].name));
    }
}

/* Index + 1 of each name (0 is "absent" for a string map, which holds no NULL values). */
static size_t index_get(const reg_strmap *m, const char *name, size_t len) {
    return (size_t)(uintptr_t)reg_strmap_get(m, name, len);
}

static int index_put(reg_strmap *m, const char *name, size_t len, size_t i) {
    return reg_strmap_put(m, name, len, (void *)(uintptr_t)(i + 1));
}

/* Indexes declared metrics by name (into names, borrowing the names) and reports
 * duplicates. 0, or -1 when out of memory (reported). */
static int check_duplicate_metrics(loader *c, const metric_nodes *ma, reg_strmap *names) {
    const cfg_config *g = c->cfg;
    char path[CFG_PATH_LEN], p[CFG_PATH_LEN];
    cfg_quoted b;
    for (size_t i = 0; i < g->nmetrics; i++) {
        const cfg_metric *m = &g->metrics[i];
        if (!m->name)
            continue;
        size_t j = index_get(names, m->name, strlen(m->name));
        if (j) {
            cfg_yaml_error(
                &c->report, ma[i].name, cfg_path_key(p, cfg_path_index(path, "metrics", i), "name"),
                "duplicate metric %s (first declared by metrics[%zu] at %u:%u)",
                cfg_quote_str(&b, m->name), j - 1, ma[j - 1].name->line, ma[j - 1].name->col);
        } else if (index_put(names, m->name, strlen(m->name), i) != REG_OK) {
            cfg_yaml_oom(&c->report);
            return -1;
        }
    }
    return 0;
}

/* A histogram or summary owns the names of its _bucket, _count and _sum series: a declared
 * metric with one of those names is reported. */
static void check_series_collisions(loader *c, const metric_nodes *ma, const reg_strmap *names) {
    static const char *const sfx[] = {"_count", "_sum", "_bucket"};
    const cfg_config *g = c->cfg;
    char path[CFG_PATH_LEN], p[CFG_PATH_LEN];
    cfg_quoted b, b2;
    for (size_t i = 0; i < g->nmetrics; i++) {
        const cfg_metric *m = &g->metrics[i];
        if (!m->name || !ma[i].type_ok || (m->type != REG_HISTOGRAM && m->type != REG_SUMMARY))
            continue;
        if (index_get(names, m->name, strlen(m->name)) != i + 1)
            continue; /* a duplicate, already reported */
        for (size_t s = 0; s < (m->type == REG_HISTOGRAM ? 3u : 2u); s++) {
            char nm[REG_MAX_NAME + 16];
            int len = snprintf(nm, sizeof nm, "%s%s", m->name, sfx[s]);
            if (len < 0 || (size_t)len >= sizeof nm)
                continue;
            size_t j = index_get(names, nm, (size_t)len);
            if (j)
                cfg_yaml_error(&c->report, ma[j - 1].name,
                               cfg_path_key(p, cfg_path_index(path, "metrics", j - 1), "name"),
                               "metric %s collides with the series of %s %s (declared by "
                               "metrics[%zu] at %u:%u)",
                               cfg_quote_str(&b, nm), type_name(m->type),
                               cfg_quote_str(&b2, m->name), i, ma[i].name->line, ma[i].name->col);
        }
    }
}

/* A rule with a literal name feeds the declared metric of that name (checked against it), or
 * a family of its own: then every rule of that name must make the same type. 0, or -1 when
 * out of memory (reported). */
static int check_rule_names(loader *c, const metric_nodes *ma, const rule_nodes *ra,
                            const reg_strmap *names) {
    const cfg_config *g = c->cfg;
    char path[CFG_PATH_LEN], p[CFG_PATH_LEN];
    cfg_quoted b;
    reg_strmap *rules = reg_strmap_create(0); /* name -> first rule making it */
    if (!rules) {
        cfg_yaml_oom(&c->report);
        return -1;
    }
    int rc = 0;
    assert(g->nmappings == 0 || ra);
    assert(g->nmetrics == 0 || ma);
    for (size_t k = 0; k < g->nmappings && rc == 0; k++) {
        const cfg_mapping *r = &g->mappings[k];
        if (r->action != CFG_ACTION_MAP || !ra[k].literal || !r->name)
            continue;
        size_t len = strlen(r->name);
        size_t j = index_get(names, r->name, len);
        if (j) {
            check_rule_vs_metric(c, k, r, &ra[k], j - 1, &g->metrics[j - 1], &ma[j - 1]);
            continue;
        }
        int t = rule_type(r);
        if (t < 0)
            continue;
        size_t first = index_get(rules, r->name, len);
        if (!first) {
            if (index_put(rules, r->name, len, k) != REG_OK) {
                cfg_yaml_oom(&c->report);
                rc = -1;
            }
        } else if (rule_type(&g->mappings[first - 1]) != t) {
            const cfg_node *fn = ra[first - 1].name;
            cfg_yaml_error(&c->report, ra[k].name,
                           cfg_path_key(p, cfg_path_index(path, "mappings", k), "name"),
                           "conflicting types for %s: %s here, %s by mappings[%zu] at %u:%u",
                           cfg_quote_str(&b, r->name), type_name((reg_type)t),
                           type_name((reg_type)rule_type(&g->mappings[first - 1])), first - 1,
                           fn->line, fn->col);
        }
    }
    reg_strmap_free(rules);
    return rc;
}

/* The checks that need every section loaded. Cannot fail (out of memory is reported). */
static void check_across_sections(loader *c, const metric_nodes *ma, const rule_nodes *ra) {
    /* The node arrays exist whenever their sections have entries (load_config made both). */
    assert(c->cfg->nmetrics == 0 || ma);
    assert(c->cfg->nmappings == 0 || ra);
    reg_strmap *names = reg_strmap_create(0); /* declared metric name -> index + 1 */
    if (!names) {
        cfg_yaml_oom(&c->report);
        return;
    }
    if (check_duplicate_metrics(c, ma, names) == 0) {
        check_series_collisions(c, ma, names);
        check_rule_names(c, ma, ra, names);
    }
    reg_strmap_free(names);
}

/* The top-level mapping: each section in turn, then the checks across them. */
static void load_root(loader *c, cfg_node *root) {
    enum {
        TP_SERVER,
        TP_STATSD,
        TP_PUSH,
        TP_DEFAULTS,
        TP_METRICS,
        TP_MAPPINGS,
        TP_REMOTE_WRITE,
        TP_N
    };
    static const char *const tp_keys[TP_N] = {"server",  "statsd",   "push",        "defaults",
                                              "metrics", "mappings", "remote_write"};
    cfg_config *g = c->cfg;
    cfg_fields f;
    if (cfg_read_fields(&c->report, root, "", tp_keys, TP_N, &f) <= 0)
        return;
    /* Defaults first: metrics and mappings resolve against them. */
    load_defaults(c, f.val[TP_DEFAULTS]);
    load_server(c, f.val[TP_SERVER]);
    load_statsd(c, f.val[TP_STATSD]);
    load_push(c, f.val[TP_PUSH]);
    cfg_load_remote_write(&c->report, g, f.val[TP_REMOTE_WRITE]);

    metric_nodes *ma = NULL;
    rule_nodes *ra = NULL;
    cfg_node **it;
    size_t cnt;
    if (cfg_read_sequence(&c->report, f.val[TP_METRICS], "metrics", &it, &cnt) > 0 && cnt) {
        g->metrics = calloc(cnt, sizeof *g->metrics);
        ma = calloc(cnt, sizeof *ma);
        if (!g->metrics || !ma) {
            cfg_yaml_oom(&c->report);
            goto out;
        }
        for (size_t i = 0; i < cnt && cfg_yaml_visit(&c->report); i++) {
            char p[CFG_PATH_LEN];
            g->nmetrics = i + 1;
            load_metric(c, it[i], cfg_path_index(p, "metrics", i), &g->metrics[i], &ma[i]);
        }
    }
    if (cfg_read_sequence(&c->report, f.val[TP_MAPPINGS], "mappings", &it, &cnt) > 0 && cnt) {
        g->mappings = calloc(cnt, sizeof *g->mappings);
        ra = calloc(cnt, sizeof *ra);
        if (!g->mappings || !ra) {
            cfg_yaml_oom(&c->report);
            goto out;
        }
        for (size_t i = 0; i < cnt && cfg_yaml_visit(&c->report); i++) {
            char p[CFG_PATH_LEN];
            g->nmappings = i + 1;
            load_mapping(c, it[i], cfg_path_index(p, "mappings", i), &g->mappings[i], &ra[i]);
        }
    }
    if (!c->report.oom)
        check_across_sections(c, ma, ra);
out:
    for (size_t i = 0; ra && i < g->nmappings; i++)
        free(ra[i].lkeys);
    free(ra);
    free(ma);
}

/* ---- public ------------------------------------------------------------------------------- */

/* FNV-1a of the file's bytes: the config hash self-metric, the same for the same file in
 * every run (so not the seeded reg_hash_bytes). Cannot fail. */
static uint64_t file_hash(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void free_hist(cfg_histogram_options *h) {
    free(h->buckets);
}

static void free_summ(cfg_summary_options *s) {
    free(s->objectives);
}

/* Frees c and everything it owns. Cannot fail; NULL is ignored. */
void cfg_free(cfg_config *c) {
    if (!c)
        return;
    free(c->path);
    free(c->server.listen_address);
    free(c->server.telemetry_path);
    free(c->server.web_config_file);
    free(c->statsd.listen_udp);
    free(c->statsd.listen_tcp);
    free(c->statsd.listen_unixgram);
    free_hist(&c->defaults.histogram);
    free_summ(&c->defaults.summary);
    for (size_t i = 0; i < c->nmetrics; i++) {
        cfg_metric *m = &c->metrics[i];
        free(m->name);
        free(m->help);
        free(m->unit);
        for (size_t j = 0; j < m->nlabels; j++)
            free(m->labels[j]);
        free(m->labels);
        for (size_t j = 0; j < m->nconst; j++) {
            free(m->const_labels[j].name);
            free(m->const_labels[j].value);
        }
        free(m->const_labels); /* one block with the pointer arrays */
        free_hist(&m->histogram);
        free_summ(&m->summary);
    }
    free(c->metrics);
    for (size_t i = 0; i < c->nmappings; i++) {
        cfg_mapping *r = &c->mappings[i];
        free(r->match);
        free(r->name);
        cfg_free_labels(r->labels, r->nlabels);
        free(r->help);
        free_hist(&r->histogram);
        free_summ(&r->summary);
    }
    free(c->mappings);
    cfg_remote_write_free(c);
    free(c);
}

/* Built-in defaults. NULL on allocation failure. */
cfg_config *cfg_default(void) {
    cfg_config *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->server.listen_address = strdup(":9102");
    c->server.telemetry_path = strdup("/metrics");
    c->server.max_connections = 512;
    c->server.max_connections_per_ip = 64;
    c->server.connection_timeout_ns = 30ULL * 1000000000ULL;
    c->server.max_request_bytes = 4u << 20;
    c->server.request_timeout_ns = 10ULL * 1000000000ULL;
    c->server.max_concurrent_scrapes = 4;
    c->server.scrape_queue_timeout_ns = 10ULL * 1000000000ULL;
    /* Prometheus's scrape_timeout is at most its interval (10s-60s as usually set). */
    c->server.write_timeout_ns = 60ULL * 1000000000ULL;
    c->statsd.listen_udp = strdup(":9125");
    c->statsd.listen_tcp = strdup(":9125");
    c->statsd.listen_unixgram = strdup("");
    c->statsd.readers = 1;
    c->statsd.dogstatsd_tags = c->statsd.influxdb_tags = 1;
    c->statsd.librato_tags = c->statsd.signalfx_tags = 1;
    c->statsd.cache_size = 1000;
    c->statsd.tcp_idle_timeout_ns = 300ULL * 1000000000ULL;
    c->statsd.max_tcp_connections = 1024;
    c->push.max_body_bytes = 16u << 20;
    c->push.max_buffered_bytes = 64u << 20;
    c->push.enabled = 1;
    c->defaults.observer_type = CFG_OBS_SUMMARY; /* statsd_exporter's default */
    c->defaults.match_type = CFG_MATCH_GLOB;
    size_t nb = sizeof def_buckets / sizeof def_buckets[0];
    size_t no = sizeof def_objectives / sizeof def_objectives[0];
    c->defaults.histogram.buckets = malloc(sizeof def_buckets);
    c->defaults.summary.objectives = malloc(sizeof def_objectives);
    if (!c->server.listen_address || !c->server.telemetry_path || !c->statsd.listen_udp ||
        !c->statsd.listen_tcp || !c->statsd.listen_unixgram || !c->defaults.histogram.buckets ||
        !c->defaults.summary.objectives) {
        cfg_free(c);
        return NULL;
    }
    memcpy(c->defaults.histogram.buckets, def_buckets, sizeof def_buckets);
    c->defaults.histogram.nbuckets = nb;
    memcpy(c->defaults.summary.objectives, def_objectives, sizeof def_objectives);
    c->defaults.summary.nobjectives = no;
    c->defaults.summary.has_objectives = 1;
    return c;
}

/* Parses and validates yaml[0..len). NULL with every problem appended to errs. */
cfg_config *cfg_load_string(const char *name, const char *yaml, size_t len, cfg_errors *errs) {
    cfg_errors local = {0};
    loader c = {.report = {.file = name ? name : "<config>",
                           .errs = errs ? errs : &local,
                           .visits = CFG_YAML_MAX_VISITS}};
    cfg_yaml_report *r = &c.report;
    size_t start = r->errs->count;
    cfg_config *g = cfg_default();
    if (!g || (name && !(g->path = strdup(name)))) {
        cfg_free(g);
        cfg_errors_add_at(r->errs, r->file, 0, 0, "out of memory");
        cfg_errors_free(&local);
        return NULL;
    }
    c.cfg = g;
    g->hash = file_hash(yaml, len);
    if (len > CFG_MAX_FILE) {
        cfg_yaml_error_at(r, 0, 0, NULL, "file too large: %zu bytes (max %u)", len, CFG_MAX_FILE);
    } else {
        cfg_yaml_tree t = {0};
        cfg_node *root;
        if (cfg_yaml_parse(r, yaml ? yaml : "", yaml ? len : 0, &t, &root) == 0) {
            if (root && root->kind != CFG_NODE_MAP && !root->null) {
                cfg_quoted b;
                cfg_yaml_error(r, root, "", "expected a mapping at the top level, got %s",
                               cfg_yaml_describe(root, &b));
            } else {
                load_root(&c, root);
            }
        }
        cfg_yaml_tree_free(&t);
    }
    cfg_sort_errors(r->errs, start);
    cfg_errors_free(&local);
    if (r->nerr || r->oom) {
        cfg_free(g);
        return NULL;
    }
    return g;
}

/* Reads and parses path. A missing or unreadable file is one error naming it. */
cfg_config *cfg_load(const char *path, cfg_errors *errs) {
    cfg_errors local = {0};
    char *buf;
    size_t len;
    cfg_config *c = NULL;
    if (cfg_read_file(path, errs ? errs : &local, &buf, &len) == 0)
        c = cfg_load_string(path, buf, len, errs);
    free(buf);
    cfg_errors_free(&local);
    return c;
}

/* The family definition of a declared metric; points into m. Cannot fail. */
void cfg_metric_family_def(const cfg_metric *m, reg_family_def *out) {
    memset(out, 0, sizeof *out);
    out->name = m->name;
    out->help = m->help;
    out->unit = m->unit;
    out->type = m->type;
    out->nlabels = m->nlabels;
    out->labels = (const char *const *)m->labels;
    out->nconst = m->nconst;
    if (m->nconst) {
        const char *const *names = (const char *const *)(m->const_labels + m->nconst);
        out->const_names = names;
        out->const_values = names + m->nconst;
    }
    if (m->type == REG_HISTOGRAM) {
        out->nbuckets = m->histogram.nbuckets;
        out->buckets = m->histogram.buckets;
    }
    if (m->type == REG_SUMMARY) {
        out->nobjectives = m->summary.nobjectives;
        out->objectives = m->summary.objectives;
        out->max_age_ns = m->summary.max_age_ns;
        out->age_buckets = m->summary.age_buckets;
        out->buf_cap = m->summary.buf_cap;
    }
    out->ttl_ns = m->ttl_ns;
    out->max_series = m->max_series;
}
