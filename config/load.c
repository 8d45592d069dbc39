/* load.c - reads the YAML file into a validated, immutable cfg_config.
 *
 * libyaml's event parser feeds a small node tree built here: an anchor is registered when its
 * node is complete (so an alias never points into its own ancestors), aliases share the
 * anchored node, and nesting depth, node count, alias expansion and file size are bounded. A
 * walk driven by the schema then fills the config and reports every problem with its position
 * ("path: message", path like `mappings[2].labels`); only YAML syntax errors stop early.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"

#define LD_MAX_FILE (16u << 20) /* bytes; a ConfigMap holds at most 1 MiB */
#define LD_MAX_DEPTH 64         /* nesting; the schema needs 6 */
#define LD_MAX_NODES 500000     /* nodes built from the file */
#define LD_MAX_VISITS 1000000   /* nodes visited by the walk, aliases expanded */
#define LD_MAX_ERRORS 1000
#define LD_MAX_MERGE 8 /* nested `<<` merges */
#define LD_PATH 256
#define LD_MAX_NAME 1024 /* bytes of a metric or label name */

/* statsd_exporter's defaults: client_golang's DefBuckets and its default objectives. */
static const double def_buckets[] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};
static const reg_objective def_objectives[] = {{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}};

/* ---- node tree ------------------------------------------------------------------------- */

enum { LN_SCALAR, LN_SEQ, LN_MAP };

typedef struct ln ln;
struct ln {
    int kind;
    int quoted; /* scalar: always a string (quoted, block, or tagged !!str / !) */
    int null;   /* scalar: empty plain, ~, null, or tagged !!null */
    unsigned line, col;
    char *s; /* scalar text, NUL-terminated; len counts NULs written as escapes */
    size_t len;
    ln **kids; /* sequence items, or map keys and values alternating */
    size_t n, cap;
};

typedef struct {
    ln **all;
    size_t n, cap;
} ln_tree;

static void ln_tree_free(ln_tree *t) {
    for (size_t i = 0; i < t->n; i++) {
        free(t->all[i]->s);
        free(t->all[i]->kids);
        free(t->all[i]);
    }
    free(t->all);
    t->all = NULL;
    t->n = t->cap = 0;
}

/* ---- a small string -> pointer hash map (anchors, names) --------------------------------- */

typedef struct {
    char *key;
    size_t klen;
    void *val;
} hm_slot;

typedef struct {
    hm_slot *slots;
    size_t cap, n;
    int own; /* keys are copied and freed by the map */
} hm;

static uint64_t fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static hm_slot *hm_slot_of(hm_slot *slots, size_t cap, const char *k, size_t klen) {
    size_t i = (size_t)fnv1a(k, klen) & (cap - 1);
    while (slots[i].key && !(slots[i].klen == klen && memcmp(slots[i].key, k, klen) == 0))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static void *hm_get(const hm *m, const char *k, size_t klen) {
    if (!m->cap)
        return NULL;
    hm_slot *s = hm_slot_of(m->slots, m->cap, k, klen);
    return s->key ? s->val : NULL;
}

/* Insert or overwrite. -1 when out of memory. */
static int hm_put(hm *m, const char *k, size_t klen, void *val) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        hm_slot *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -1;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key)
                *hm_slot_of(slots, cap, m->slots[i].key, m->slots[i].klen) = m->slots[i];
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    hm_slot *s = hm_slot_of(m->slots, m->cap, k, klen);
    if (!s->key) {
        char *key = (char *)k;
        if (m->own) {
            key = malloc(klen + 1);
            if (!key)
                return -1;
            memcpy(key, k, klen);
            key[klen] = 0;
        }
        s->key = key;
        s->klen = klen;
        m->n++;
    }
    s->val = val;
    return 0;
}

static void hm_free(hm *m) {
    if (m->own)
        for (size_t i = 0; i < m->cap; i++)
            free(m->slots[i].key);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ---- loader context, errors ------------------------------------------------------------- */

typedef struct {
    const char *file;
    cfg_errors *errs;
    size_t nerr; /* errors added by this load (including lost ones) */
    long visits; /* walk budget left; -1 once exhausted and reported */
    int oom;
    cfg_config *cfg;
    int def_obs_explicit; /* defaults gave observer_type or timer_type */
} ld;

static void ld_vadd(ld *c, unsigned line, unsigned col, const char *path, const char *fmt,
                    va_list ap) {
    if (c->nerr > LD_MAX_ERRORS)
        return;
    if (c->nerr++ == LD_MAX_ERRORS) {
        cfg_errors_add_at(c->errs, c->file, 0, 0, "too many errors; stopped after %d",
                          LD_MAX_ERRORS);
        return;
    }
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (path && *path)
        cfg_errors_add_at(c->errs, c->file, line, col, "%s: %s", path, msg);
    else
        cfg_errors_add_at(c->errs, c->file, line, col, "%s", msg);
}

__attribute__((format(printf, 4, 5))) static void ld_err(ld *c, const ln *n, const char *path,
                                                         const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ld_vadd(c, n ? n->line : 0, n ? n->col : 0, path, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 4, 5))) static void ld_errat(ld *c, unsigned line, unsigned col,
                                                           const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ld_vadd(c, line, col, NULL, fmt, ap);
    va_end(ap);
}

static void ld_oom(ld *c) {
    if (!c->oom)
        ld_errat(c, 0, 0, "out of memory");
    c->oom = 1;
}

/* One node visited by the walk; 0 once the budget is spent (reported once). */
static int ld_visit(ld *c) {
    if (c->visits > 0) {
        c->visits--;
        return 1;
    }
    if (c->visits == 0) {
        ld_errat(c, 0, 0, "document too large: more than %d nodes with aliases expanded",
                 LD_MAX_VISITS);
        c->visits = -1;
    }
    return 0;
}

/* A quoted, escaped, truncated copy of s for messages. */
typedef struct {
    char b[96];
} qb;

static const char *q(qb *b, const char *s, size_t len) {
    size_t o = 0;
    b->b[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (o >= 60 && (ch & 0xC0) != 0x80) {
            memcpy(b->b + o, "...\"", 5);
            return b->b;
        }
        if (ch == '"' || ch == '\\') {
            b->b[o++] = '\\';
            b->b[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(b->b + o, 5, "\\x%02x", ch);
        } else {
            b->b[o++] = (char)ch;
        }
    }
    b->b[o++] = '"';
    b->b[o] = 0;
    return b->b;
}

static const char *qs(qb *b, const char *s) {
    return q(b, s, strlen(s));
}

static const char *ln_what(const ln *n, qb *b) {
    if (n->kind == LN_MAP)
        return "a mapping";
    if (n->kind == LN_SEQ)
        return "a sequence";
    if (n->null)
        return "null";
    return q(b, n->s, n->len);
}

/* Path building truncates silently: paths only label messages. */
static size_t pcat(char *out, size_t o, const char *s) {
    size_t n = strlen(s);
    if (n > LD_PATH - 1 - o)
        n = LD_PATH - 1 - o;
    memcpy(out + o, s, n);
    out[o + n] = 0;
    return o + n;
}

static const char *pk(char *out, const char *base, const char *key) {
    size_t o = pcat(out, 0, base);
    if (o)
        o = pcat(out, o, ".");
    pcat(out, o, key);
    return out;
}

static const char *pi(char *out, const char *base, size_t i) {
    char num[32];
    snprintf(num, sizeof num, "[%zu]", i);
    pcat(out, pcat(out, 0, base), num);
    return out;
}

static int ln_isnull(const ln *n) {
    return !n || (n->kind == LN_SCALAR && n->null);
}

static char *ld_strndup(ld *c, const char *s, size_t n) {
    char *r = malloc(n + 1);
    if (!r) {
        ld_oom(c);
        return NULL;
    }
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

/* ---- YAML -> node tree ------------------------------------------------------------------ */

static int is_null_text(const char *s, size_t n) {
    return n == 0 || (n == 1 && s[0] == '~') ||
           (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static void ld_syntax(ld *c, const yaml_parser_t *p, const char *buf, size_t len) {
    if (p->error == YAML_MEMORY_ERROR) {
        ld_oom(c);
        return;
    }
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset; count lines up to it. */
        size_t off = p->problem_offset < len ? p->problem_offset : len;
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (buf[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        if (p->problem_value != -1)
            ld_errat(c, line, col, "invalid input: %s (byte 0x%02x)", problem,
                     (unsigned)p->problem_value & 0xffu);
        else
            ld_errat(c, line, col, "invalid input: %s", problem);
        return;
    }
    unsigned line = (unsigned)p->problem_mark.line + 1, col = (unsigned)p->problem_mark.column + 1;
    if (p->context)
        ld_errat(c, line, col, "syntax error: %s (%s at %u:%u)", problem, p->context,
                 (unsigned)p->context_mark.line + 1, (unsigned)p->context_mark.column + 1);
    else
        ld_errat(c, line, col, "syntax error: %s", problem);
}

static ln *ln_new(ld *c, ln_tree *t, int kind, yaml_mark_t m) {
    if (t->n == LD_MAX_NODES) {
        ld_errat(c, (unsigned)m.line + 1, (unsigned)m.column + 1,
                 "document too large: more than %d nodes", LD_MAX_NODES);
        return NULL;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        ln **all = realloc(t->all, cap * sizeof *all);
        if (!all) {
            ld_oom(c);
            return NULL;
        }
        t->all = all;
        t->cap = cap;
    }
    ln *n = calloc(1, sizeof *n);
    if (!n) {
        ld_oom(c);
        return NULL;
    }
    n->kind = kind;
    n->line = (unsigned)m.line + 1;
    n->col = (unsigned)m.column + 1;
    t->all[t->n++] = n;
    return n;
}

static int ln_push(ld *c, ln *parent, ln *kid) {
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        ln **k = realloc(parent->kids, cap * sizeof *k);
        if (!k) {
            ld_oom(c);
            return -1;
        }
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

/* Parse buf into t. Returns 0 with *root set (NULL for an empty document), or -1 after
 * reporting a syntax or limit error. */
static int ld_parse(ld *c, const char *buf, size_t len, ln_tree *t, ln **root) {
    yaml_parser_t p;
    *root = NULL;
    if (!yaml_parser_initialize(&p)) {
        ld_oom(c);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    hm anchors = {.own = 1};
    ln *stack[LD_MAX_DEPTH];
    char *pending[LD_MAX_DEPTH]; /* anchor of each open container, registered at its end */
    int depth = 0, docs = 0, ok = 1, done = 0;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            ld_syntax(c, &p, buf, len);
            ok = 0;
            break;
        }
        yaml_mark_t m = ev.start_mark;
        ln *node = NULL;
        int opens = 0;
        char *anchor = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                ld_errat(c, (unsigned)m.line + 1, (unsigned)m.column + 1,
                         "only one YAML document is allowed");
                ok = 0;
                done = 1;
            }
            break;
        case YAML_ALIAS_EVENT: {
            const char *a = (const char *)ev.data.alias.anchor;
            node = hm_get(&anchors, a, strlen(a));
            if (!node) {
                qb b;
                ld_errat(c, (unsigned)m.line + 1, (unsigned)m.column + 1,
                         "undefined alias %s (an anchor must be complete before its aliases)",
                         qs(&b, a));
                ok = 0;
                done = 1;
            }
            break;
        }
        case YAML_SCALAR_EVENT: {
            node = ln_new(c, t, LN_SCALAR, m);
            if (!node) {
                ok = 0;
                done = 1;
                break;
            }
            node->s = (char *)ev.data.scalar.value; /* taken over from the event */
            node->len = ev.data.scalar.length;
            ev.data.scalar.value = NULL;
            const char *tag = (const char *)ev.data.scalar.tag;
            int plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            node->quoted = !plain || (tag && (!strcmp(tag, YAML_STR_TAG) || !strcmp(tag, "!")));
            node->null = (tag && !strcmp(tag, YAML_NULL_TAG)) ||
                         (plain && !tag && is_null_text(node->s, node->len));
            anchor = (char *)ev.data.scalar.anchor;
            ev.data.scalar.anchor = NULL;
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            node = ln_new(c, t, ev.type == YAML_SEQUENCE_START_EVENT ? LN_SEQ : LN_MAP, m);
            if (!node) {
                ok = 0;
                done = 1;
                break;
            }
            opens = 1;
            if (ev.type == YAML_SEQUENCE_START_EVENT) {
                anchor = (char *)ev.data.sequence_start.anchor;
                ev.data.sequence_start.anchor = NULL;
            } else {
                anchor = (char *)ev.data.mapping_start.anchor;
                ev.data.mapping_start.anchor = NULL;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0) {
                depth--;
                if (pending[depth]) {
                    if (hm_put(&anchors, pending[depth], strlen(pending[depth]), stack[depth])) {
                        ld_oom(c);
                        ok = 0;
                        done = 1;
                    }
                    free(pending[depth]);
                }
            }
            break;
        default:
            break;
        }
        if (node && ok) {
            if (depth == 0) {
                *root = node;
            } else if (ln_push(c, stack[depth - 1], node)) {
                ok = 0;
                done = 1;
            }
        }
        if (node && ok && opens) {
            if (depth == LD_MAX_DEPTH) {
                ld_errat(c, node->line, node->col, "nesting deeper than %d levels", LD_MAX_DEPTH);
                ok = 0;
                done = 1;
            } else {
                stack[depth] = node;
                pending[depth++] = anchor;
                anchor = NULL;
            }
        } else if (node && ok && anchor) {
            if (hm_put(&anchors, anchor, strlen(anchor), node)) {
                ld_oom(c);
                ok = 0;
                done = 1;
            }
        }
        free(anchor);
        yaml_event_delete(&ev);
    }
    while (depth > 0)
        free(pending[--depth]);
    hm_free(&anchors);
    yaml_parser_delete(&p);
    return ok ? 0 : -1;
}

/* ---- walking maps (with `<<` merge keys) ------------------------------------------------- */

typedef void (*ld_pair_fn)(ld *c, void *arg, ln *k, ln *v, int merged);

static int is_merge_key(const ln *k) {
    return k->kind == LN_SCALAR && !k->quoted && k->len == 2 && k->s[0] == '<' && k->s[1] == '<';
}

/* Calls fn for each pair of map n: explicit keys first, in order, then the pairs of `<<` merge
 * sources (merged = 1), which by YAML's rule never override a key already given. */
static void ld_walk(ld *c, ln *n, const char *path, int merged, int depth, ld_pair_fn fn,
                    void *arg) {
    for (size_t i = 0; i + 1 < n->n; i += 2) {
        ln *k = n->kids[i];
        if (!ld_visit(c))
            return;
        if (is_merge_key(k))
            continue;
        if (k->kind != LN_SCALAR) {
            ld_err(c, k, path, "mapping keys must be strings, got %s",
                   k->kind == LN_MAP ? "a mapping" : "a sequence");
            continue;
        }
        fn(c, arg, k, n->kids[i + 1], merged);
    }
    for (size_t i = 0; i + 1 < n->n; i += 2) {
        ln *k = n->kids[i], *v = n->kids[i + 1];
        if (!is_merge_key(k))
            continue;
        if (depth >= LD_MAX_MERGE) {
            ld_err(c, k, path, "merges (<<) nested deeper than %d levels", LD_MAX_MERGE);
            return;
        }
        if (v->kind == LN_MAP) {
            ld_walk(c, v, path, 1, depth + 1, fn, arg);
        } else if (v->kind == LN_SEQ) {
            for (size_t j = 0; j < v->n; j++) {
                if (v->kids[j]->kind == LN_MAP)
                    ld_walk(c, v->kids[j], path, 1, depth + 1, fn, arg);
                else
                    ld_err(c, v->kids[j], path, "a merge (<<) takes mappings");
            }
        } else {
            ld_err(c, v, path, "a merge (<<) takes a mapping or a sequence of mappings");
        }
    }
}

/* A schema mapping: the value node of each known key. */
#define LD_MAXF 16
typedef struct {
    const char *path;
    const char *const *names;
    size_t n;
    ln *key[LD_MAXF], *val[LD_MAXF];
} ld_f;

static void ld_fields_fn(ld *c, void *arg, ln *k, ln *v, int merged) {
    ld_f *f = arg;
    qb b;
    for (size_t i = 0; i < f->n; i++) {
        if (strlen(f->names[i]) == k->len && memcmp(f->names[i], k->s, k->len) == 0) {
            if (f->val[i]) {
                if (!merged)
                    ld_err(c, k, f->path, "duplicate key %s", q(&b, k->s, k->len));
                return;
            }
            f->key[i] = k;
            f->val[i] = v;
            return;
        }
    }
    ld_err(c, k, f->path, "unknown key %s", q(&b, k->s, k->len));
}

/* 1: n is a mapping, f filled; 0: n absent or null; -1: not a mapping (reported). */
static int ld_fields(ld *c, ln *n, const char *path, const char *const *names, size_t nn, ld_f *f) {
    memset(f, 0, sizeof *f);
    f->path = path;
    f->names = names;
    f->n = nn;
    if (ln_isnull(n))
        return 0;
    if (n->kind != LN_MAP) {
        qb b;
        ld_err(c, n, path, "expected a mapping, got %s", ln_what(n, &b));
        return -1;
    }
    ld_walk(c, n, path, 0, 0, ld_fields_fn, f);
    return 1;
}

static const char *fpath(char *out, const ld_f *f, int i) {
    return pk(out, f->path, f->names[i]);
}

/* ---- typed values: 1 = set, 0 = absent or null, -1 = invalid (reported) ------------------ */

static int g_str(ld *c, ln *n, const char *path, char **out) {
    qb b;
    if (ln_isnull(n))
        return 0;
    if (n->kind != LN_SCALAR) {
        ld_err(c, n, path, "expected a string, got %s", ln_what(n, &b));
        return -1;
    }
    if (memchr(n->s, 0, n->len)) {
        ld_err(c, n, path, "string contains a NUL character");
        return -1;
    }
    char *s = ld_strndup(c, n->s, n->len);
    if (!s)
        return -1;
    free(*out);
    *out = s;
    return 1;
}

static int yaml_float(const char *s, size_t len, double *out) {
    char buf[128];
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '_')
            continue;
        if (o + 1 >= sizeof buf)
            return -1;
        buf[o++] = s[i];
    }
    buf[o] = 0;
    const char *p = buf;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (p == buf && (!strcmp(p, ".nan") || !strcmp(p, ".NaN") || !strcmp(p, ".NAN"))) {
        *out = NAN;
        return 0;
    }
    int digits = 0;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (!digits)
        return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p)
        return -1;
    errno = 0;
    double v = strtod(buf, NULL);
    if (errno == ERANGE && isinf(v))
        return -1;
    *out = v;
    return 0;
}

static int g_num(ld *c, ln *n, const char *path, double *out) {
    qb b;
    if (ln_isnull(n))
        return 0;
    if (n->kind != LN_SCALAR || n->quoted || yaml_float(n->s, n->len, out) != 0) {
        ld_err(c, n, path, "expected a number, got %s", ln_what(n, &b));
        return -1;
    }
    return 1;
}

static int g_uint(ld *c, ln *n, const char *path, uint64_t max, uint64_t *out) {
    qb b;
    if (ln_isnull(n))
        return 0;
    if (n->kind != LN_SCALAR || n->quoted) {
        ld_err(c, n, path, "expected a whole number, got %s", ln_what(n, &b));
        return -1;
    }
    double d;
    if (n->s[0] == '-' && yaml_float(n->s, n->len, &d) == 0 && d != 0) {
        ld_err(c, n, path, "must not be negative, got %s", ln_what(n, &b));
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
            ld_err(c, n, path, "expected a whole number, got %s", ln_what(n, &b));
            return -1;
        }
        if (v > (UINT64_MAX - (uint64_t)(ch - '0')) / 10)
            over = 1;
        else
            v = v * 10 + (uint64_t)(ch - '0');
        digits++;
    }
    if (!digits) {
        ld_err(c, n, path, "expected a whole number, got %s", ln_what(n, &b));
        return -1;
    }
    if (over || v > max) {
        ld_err(c, n, path, "%s is out of range (max %llu)", ln_what(n, &b),
               (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 1;
}

static int g_bool(ld *c, ln *n, const char *path, int *out) {
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                      "on",   "On",   "ON",   "y",   "Y"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
                                     "off",   "Off",   "OFF",   "n",  "N"};
    qb b;
    if (ln_isnull(n))
        return 0;
    if (n->kind == LN_SCALAR && !n->quoted) {
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            if (!strcmp(n->s, yes[i])) {
                *out = 1;
                return 1;
            }
            if (!strcmp(n->s, no[i])) {
                *out = 0;
                return 1;
            }
        }
    }
    ld_err(c, n, path, "expected true or false, got %s", ln_what(n, &b));
    return -1;
}

static int g_dur(ld *c, ln *n, const char *path, uint64_t *out) {
    qb b;
    if (ln_isnull(n))
        return 0;
    if (n->kind != LN_SCALAR) {
        ld_err(c, n, path, "expected a duration, got %s", ln_what(n, &b));
        return -1;
    }
    uint64_t v;
    if (!memchr(n->s, 0, n->len) && cfg_parse_duration(n->s, &v) == 0) {
        *out = v;
        return 1;
    }
    size_t digits = strspn(n->s, "0123456789");
    if (n->s[0] == '-' && cfg_parse_duration(n->s + 1, &v) == 0)
        ld_err(c, n, path, "negative duration %s", ln_what(n, &b));
    else if (n->len > 0 && digits == n->len)
        ld_err(c, n, path, "invalid duration %s: missing unit (e.g. 30s)", ln_what(n, &b));
    else
        ld_err(c, n, path, "invalid duration %s (e.g. 30s, 5m, 1h30m, 500ms)", ln_what(n, &b));
    return -1;
}

/* names is NULL-terminated; *out is the index of the match. */
static int g_enum(ld *c, ln *n, const char *path, const char *const *names, const char *want,
                  int *out) {
    qb b;
    if (ln_isnull(n))
        return 0;
    if (n->kind == LN_SCALAR) {
        for (int i = 0; names[i]; i++) {
            if (strlen(names[i]) == n->len && !memcmp(names[i], n->s, n->len)) {
                *out = i;
                return 1;
            }
        }
    }
    ld_err(c, n, path, "invalid value %s (want %s)", ln_what(n, &b), want);
    return -1;
}

/* A required, non-empty string: reports a missing key at `parent`. */
static int g_req_str(ld *c, ld_f *f, int i, const ln *parent, char **out) {
    char p[LD_PATH];
    qb b;
    if (!f->val[i]) {
        ld_err(c, parent, f->path, "missing required key %s", qs(&b, f->names[i]));
        return -1;
    }
    int r = g_str(c, f->val[i], fpath(p, f, i), out);
    if (r == 0 || (r > 0 && !**out)) {
        ld_err(c, f->val[i], p, "must not be empty");
        return -1;
    }
    return r;
}

static int g_seq(ld *c, ln *n, const char *path, ln ***items, size_t *count) {
    qb b;
    *items = NULL;
    *count = 0;
    if (ln_isnull(n))
        return 0;
    if (n->kind != LN_SEQ) {
        ld_err(c, n, path, "expected a sequence, got %s", ln_what(n, &b));
        return -1;
    }
    *items = n->kids;
    *count = n->n;
    return 1;
}

/* A sequence of at most max items (`what` names them in the error), with a zeroed array of
 * as many elements of `size` bytes for the caller to fill (*mem NULL for `[]`). Returns as
 * g_seq; -1 when reported (too many items, out of memory). */
static int g_seq_alloc(ld *c, ln *n, const char *path, size_t max, const char *what, size_t size,
                       ln ***items, size_t *count, void **mem) {
    *mem = NULL;
    int r = g_seq(c, n, path, items, count);
    if (r <= 0)
        return r;
    if (*count > max) {
        ld_err(c, n, path, "too many %s: %zu (max %zu)", what, *count, max);
        return -1;
    }
    if (*count && !(*mem = calloc(*count, size))) {
        ld_oom(c);
        return -1;
    }
    return 1;
}

/* Histogram buckets: finite, strictly increasing. 1 with *nout possibly 0 for `[]`. */
static int g_buckets(ld *c, ln *n, const char *path, double **out, size_t *nout) {
    ln **it;
    size_t cnt;
    void *mem;
    *out = NULL;
    *nout = 0;
    int r = g_seq_alloc(c, n, path, REG_MAX_BUCKETS, "buckets", sizeof(double), &it, &cnt, &mem);
    if (r <= 0 || cnt == 0)
        return r;
    double *v = mem;
    int bad = 0;
    for (size_t i = 0; i < cnt; i++) {
        char p[LD_PATH];
        if (!ld_visit(c)) {
            bad = 1;
            break;
        }
        pi(p, path, i);
        int rr = g_num(c, it[i], p, &v[i]);
        if (rr == 0)
            ld_err(c, it[i], p, "expected a number, got null");
        if (rr <= 0) {
            bad = 1;
            v[i] = i ? v[i - 1] : -INFINITY;
            continue;
        }
        if (!isfinite(v[i])) {
            ld_err(c, it[i], p, "buckets must be finite (+Inf is implied)");
            bad = 1;
        } else if (i && v[i] == v[i - 1]) {
            ld_err(c, it[i], p, "duplicate bucket %g", v[i]);
            bad = 1;
        } else if (i && v[i] < v[i - 1]) {
            ld_err(c, it[i], p, "buckets must be increasing: %g after %g", v[i], v[i - 1]);
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
static int g_objectives(ld *c, ln *n, const char *path, reg_objective **out, size_t *nout) {
    ln **it;
    size_t cnt;
    void *mem;
    *out = NULL;
    *nout = 0;
    int r = g_seq_alloc(c, n, path, REG_MAX_QUANTILES, "quantiles", sizeof(reg_objective), &it,
                        &cnt, &mem);
    if (r <= 0 || cnt == 0)
        return r;
    reg_objective *o = mem;
    int bad = 0;
    for (size_t i = 0; i < cnt; i++) {
        char ip[LD_PATH], p[LD_PATH];
        qb b;
        if (!ld_visit(c)) {
            bad = 1;
            break;
        }
        pi(ip, path, i);
        ld_f f;
        int fr = ld_fields(c, it[i], ip, qo_keys, QO_N, &f);
        if (fr == 0)
            ld_err(c, it[i], ip, "expected a mapping, got null");
        if (fr <= 0) {
            bad = 1;
            continue;
        }
        double v[QO_N] = {0, 0};
        for (int k = 0; k < QO_N; k++) {
            if (!f.val[k]) {
                ld_err(c, it[i], ip, "missing required key %s", qs(&b, qo_keys[k]));
                bad = 1;
                continue;
            }
            int rr = g_num(c, f.val[k], fpath(p, &f, k), &v[k]);
            if (rr == 0)
                ld_err(c, f.val[k], p, "expected a number, got null");
            if (rr <= 0) {
                bad = 1;
            } else if (!(v[k] > 0 && v[k] < 1)) {
                ld_err(c, f.val[k], p, "must be in (0,1), got %g", v[k]);
                bad = 1;
            }
        }
        for (size_t j = 0; j < i && f.val[QO_QUANTILE]; j++) {
            if (o[j].quantile == v[QO_QUANTILE]) {
                ld_err(c, f.val[QO_QUANTILE], fpath(p, &f, QO_QUANTILE), "duplicate quantile %g",
                       v[QO_QUANTILE]);
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
static int f_str(ld *c, ld_f *f, int i, char **out) {
    char p[LD_PATH];
    return f->val[i] ? g_str(c, f->val[i], fpath(p, f, i), out) : 0;
}

static int f_uint(ld *c, ld_f *f, int i, uint64_t max, uint64_t *out) {
    char p[LD_PATH];
    return f->val[i] ? g_uint(c, f->val[i], fpath(p, f, i), max, out) : 0;
}

static int f_bool(ld *c, ld_f *f, int i, int *out) {
    char p[LD_PATH];
    return f->val[i] ? g_bool(c, f->val[i], fpath(p, f, i), out) : 0;
}

static int f_dur(ld *c, ld_f *f, int i, uint64_t *out) {
    char p[LD_PATH];
    return f->val[i] ? g_dur(c, f->val[i], fpath(p, f, i), out) : 0;
}

static int f_enum(ld *c, ld_f *f, int i, const char *const *names, const char *want, int *out) {
    char p[LD_PATH];
    return f->val[i] ? g_enum(c, f->val[i], fpath(p, f, i), names, want, out) : 0;
}

/* ---- option blocks ------------------------------------------------------------------------ */

enum { HO_BUCKETS, HO_NFACTOR, HO_NMAX, HO_N };
static const char *const ho_keys[HO_N] = {"buckets", "native_histogram_bucket_factor",
                                          "native_histogram_max_buckets"};

/* histogram_options. The native-histogram keys of statsd_exporter are checked and ignored:
 * abacus exposes classic buckets only. */
static int ld_hist(ld *c, ln *n, const char *path, cfg_histogram_options *h) {
    ld_f f;
    char p[LD_PATH];
    int r = ld_fields(c, n, path, ho_keys, HO_N, &f);
    if (r <= 0)
        return r;
    g_buckets(c, f.val[HO_BUCKETS], fpath(p, &f, HO_BUCKETS), &h->buckets, &h->nbuckets);
    double x;
    if (g_num(c, f.val[HO_NFACTOR], fpath(p, &f, HO_NFACTOR), &x) > 0 && !(x >= 0 && isfinite(x)))
        ld_err(c, f.val[HO_NFACTOR], p, "must be a finite number >= 0, got %g", x);
    uint64_t u;
    f_uint(c, &f, HO_NMAX, UINT32_MAX, &u);
    return 1;
}

enum { SO_QUANTILES, SO_MAXAGE, SO_AGEB, SO_BUFCAP, SO_N };
static const char *const so_keys[SO_N] = {"quantiles", "max_age", "age_buckets", "buf_cap"};

/* summary_options. An empty quantile list means "inherit" in statsd_exporter's sections and
 * "no quantiles" (count and sum only) in a declared metric (empty_is_none). */
static int ld_summ(ld *c, ln *n, const char *path, cfg_summary_options *s, int empty_is_none) {
    ld_f f;
    char p[LD_PATH];
    int r = ld_fields(c, n, path, so_keys, SO_N, &f);
    if (r <= 0)
        return r;
    reg_objective *o;
    size_t no;
    if (g_objectives(c, f.val[SO_QUANTILES], fpath(p, &f, SO_QUANTILES), &o, &no) > 0) {
        if (no || empty_is_none) {
            s->objectives = o;
            s->nobjectives = no;
            s->has_objectives = 1;
        } else {
            free(o);
        }
    }
    f_dur(c, &f, SO_MAXAGE, &s->max_age_ns);
    uint64_t u;
    if (f_uint(c, &f, SO_AGEB, 100, &u) > 0)
        s->age_buckets = (unsigned)u;
    if (f_uint(c, &f, SO_BUFCAP, 1000000, &u) > 0)
        s->buf_cap = (unsigned)u;
    return 1;
}

/* *dst = a malloc'd copy of n elements of size elem (NULL when n is 0). 0, or -1 when out of
 * memory (reported). */
static int dup_array(ld *c, void **dst, const void *src, size_t n, size_t elem) {
    *dst = NULL;
    if (!n)
        return 0;
    if (!(*dst = malloc(n * elem))) {
        ld_oom(c);
        return -1;
    }
    memcpy(*dst, src, n * elem);
    return 0;
}

static int copy_buckets(ld *c, cfg_histogram_options *dst, const double *b, size_t n) {
    int rc = dup_array(c, (void **)&dst->buckets, b, n, sizeof *b);
    dst->nbuckets = rc ? 0 : n;
    return rc;
}

static int copy_objectives(ld *c, cfg_summary_options *dst, const reg_objective *o, size_t n) {
    dst->has_objectives = 1;
    int rc = dup_array(c, (void **)&dst->objectives, o, n, sizeof *o);
    dst->nobjectives = rc ? 0 : n;
    return rc;
}

/* Fill what a summary block left unset from the defaults. */
static void resolve_summary(ld *c, cfg_summary_options *s, const cfg_summary_options *d) {
    if (!s->has_objectives)
        copy_objectives(c, s, d->objectives, d->nobjectives);
    if (!s->max_age_ns)
        s->max_age_ns = d->max_age_ns;
    if (!s->age_buckets)
        s->age_buckets = d->age_buckets;
    if (!s->buf_cap)
        s->buf_cap = d->buf_cap;
}

/* ---- addresses, names, globs -------------------------------------------------------------- */

/* host:port, [v6]:port or :port. */
static int valid_addr(const char *s) {
    const char *colon = strrchr(s, ':');
    if (!colon)
        return 0;
    const char *port = colon + 1;
    size_t pl = strlen(port);
    if (pl == 0 || pl > 5 || strspn(port, "0123456789") != pl || atol(port) > 65535)
        return 0;
    size_t hl = (size_t)(colon - s);
    if (hl == 0)
        return 1;
    if (s[0] == '[')
        return hl > 2 && s[hl - 1] == ']' && strspn(s + 1, "0123456789abcdefABCDEF:.%") >= hl - 2;
    for (size_t i = 0; i < hl; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= ' ' || ch == ':' || ch == '[' || ch == ']' || ch == '/' || ch == 0x7f)
            return 0;
    }
    return 1;
}

static int is_word(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

/* statsd_exporter's glob (its metricLineRE): dot-separated parts, each `*` or a word
 * character followed by word characters and dashes (`foo--bar`, `foo-` too); the first part
 * must not start with a digit. */
static int valid_glob(const char *s, size_t len) {
    size_t i = 0;
    int first = 1;
    for (;;) {
        if (i < len && s[i] == '*') {
            i++;
        } else {
            if (i >= len || !is_word(s[i]) || (first && s[i] >= '0' && s[i] <= '9'))
                return 0;
            i++;
            while (i < len && (is_word(s[i]) || s[i] == '-'))
                i++;
        }
        if (i == len)
            return 1;
        if (s[i] != '.')
            return 0;
        i++;
        first = 0;
    }
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

static int check_regex(ld *c, ln *n, const char *path) {
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)n->s, n->len, PCRE2_UTF, &ec, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        ld_err(c, n, path, "invalid regex: %s (at offset %zu)", (const char *)msg, (size_t)off);
        return -1;
    }
    pcre2_code_free(re);
    return 0;
}

/* Label name rules; type < 0 when unknown. Returns 1 when acceptable. */
static int check_label_name(ld *c, const ln *n, const char *path, const char *name, size_t len,
                            int type) {
    qb b;
    if (len > LD_MAX_NAME) {
        ld_err(c, n, path, "label name too long: %zu bytes (max %d)", len, LD_MAX_NAME);
        return 0;
    }
    if (strlen(name) != len || !cfg_valid_label_name(name)) {
        ld_err(c, n, path, "invalid label name %s", q(&b, name, len));
        return 0;
    }
    if (name[0] == '_' && name[1] == '_') {
        ld_err(c, n, path, "label name %s is reserved (starts with \"__\")", qs(&b, name));
        return 0;
    }
    if (type == REG_HISTOGRAM && !strcmp(name, "le")) {
        ld_err(c, n, path, "label name \"le\" is reserved for histograms");
        return 0;
    }
    if (type == REG_SUMMARY && !strcmp(name, "quantile")) {
        ld_err(c, n, path, "label name \"quantile\" is reserved for summaries");
        return 0;
    }
    return 1;
}

/* A map of label name -> string (const_labels, a mapping's labels). */
typedef struct {
    const char *path;
    cfg_label *items;
    ln **keys; /* key node of each item, for positions */
    size_t n;
    int full;
} ld_lmap;

static void ld_lmap_fn(ld *c, void *arg, ln *k, ln *v, int merged) {
    ld_lmap *m = arg;
    qb b;
    if (m->full)
        return;
    for (size_t i = 0; i < m->n; i++) {
        if (strlen(m->items[i].name) == k->len && !memcmp(m->items[i].name, k->s, k->len)) {
            if (!merged)
                ld_err(c, k, m->path, "duplicate key %s", q(&b, k->s, k->len));
            return;
        }
    }
    if (m->n == REG_MAX_LABELS) {
        ld_err(c, k, m->path, "too many labels (max %d)", REG_MAX_LABELS);
        m->full = 1;
        return;
    }
    char p[LD_PATH];
    snprintf(p, sizeof p, "%s.%.*s", m->path, (int)(k->len > 40 ? 40 : k->len), k->s);
    char *val = NULL;
    int r = g_str(c, v, p, &val);
    if (r < 0)
        return;
    if (r == 0 && !(val = ld_strndup(c, "", 0)))
        return;
    char *name = ld_strndup(c, k->s, k->len);
    if (!name) {
        free(val);
        return;
    }
    m->items[m->n] = (cfg_label){.name = name, .value = val};
    m->keys[m->n++] = k;
}

/* 1 when n was a mapping (m filled, arrays owned by m), 0 when absent, -1 on error. */
static int ld_labels_map(ld *c, ln *n, const char *path, ld_lmap *m) {
    memset(m, 0, sizeof *m);
    m->path = path;
    if (ln_isnull(n))
        return 0;
    if (n->kind != LN_MAP) {
        qb b;
        ld_err(c, n, path, "expected a mapping, got %s", ln_what(n, &b));
        return -1;
    }
    m->items = calloc(REG_MAX_LABELS, sizeof *m->items);
    m->keys = calloc(REG_MAX_LABELS, sizeof *m->keys);
    if (!m->items || !m->keys) {
        free(m->items);
        free(m->keys);
        m->items = NULL;
        m->keys = NULL;
        ld_oom(c);
        return -1;
    }
    ld_walk(c, n, path, 0, 0, ld_lmap_fn, m);
    return 1;
}

static void free_labels(cfg_label *l, size_t n) {
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
    SV_N
};
static const char *const sv_keys[SV_N] = {
    "listen_address",       "telemetry_path",    "max_connections", "max_connections_per_ip",
    "connection_timeout",   "max_request_bytes", "request_timeout", "max_concurrent_scrapes",
    "scrape_queue_timeout", "write_timeout"};

static void ld_server(ld *c, ln *n) {
    cfg_server *s = &c->cfg->server;
    ld_f f;
    char p[LD_PATH];
    qb b;
    if (ld_fields(c, n, "server", sv_keys, SV_N, &f) <= 0)
        return;
    if (f_str(c, &f, SV_LISTEN, &s->listen_address) > 0) {
        if (!*s->listen_address)
            ld_err(c, f.val[SV_LISTEN], fpath(p, &f, SV_LISTEN), "must not be empty");
        else if (!valid_addr(s->listen_address))
            ld_err(c, f.val[SV_LISTEN], fpath(p, &f, SV_LISTEN),
                   "invalid address %s (want host:port or :port)", qs(&b, s->listen_address));
    }
    if (f_str(c, &f, SV_PATH, &s->telemetry_path) > 0) {
        const char *t = s->telemetry_path;
        if (t[0] != '/' || !strcmp(t, "/") || !strncmp(t, "/-/", 3) || strpbrk(t, " \t?#"))
            ld_err(c, f.val[SV_PATH], fpath(p, &f, SV_PATH),
                   "invalid path %s (want /something, not \"/\" nor under \"/-/\")", qs(&b, t));
    }
    uint64_t u;
    if (f_uint(c, &f, SV_MAXCONN, 1000000, &u) > 0) {
        if (u == 0)
            ld_err(c, f.val[SV_MAXCONN], fpath(p, &f, SV_MAXCONN), "must be at least 1");
        s->max_connections = (size_t)u;
    }
    if (f_uint(c, &f, SV_MAXIP, 1000000, &u) > 0)
        s->max_connections_per_ip = (size_t)u;
    f_dur(c, &f, SV_TIMEOUT, &s->connection_timeout_ns);
    if (f_uint(c, &f, SV_MAXREQ, (uint64_t)1 << 40, &u) > 0) {
        if (u == 0)
            ld_err(c, f.val[SV_MAXREQ], fpath(p, &f, SV_MAXREQ), "must be at least 1");
        s->max_request_bytes = (size_t)u;
    }
    f_dur(c, &f, SV_REQTIMEOUT, &s->request_timeout_ns);
    if (f_uint(c, &f, SV_MAXSCRAPES, 1024, &u) > 0) {
        if (u == 0)
            ld_err(c, f.val[SV_MAXSCRAPES], fpath(p, &f, SV_MAXSCRAPES), "must be at least 1");
        s->max_concurrent_scrapes = (size_t)u;
    }
    f_dur(c, &f, SV_QUEUETIMEOUT, &s->scrape_queue_timeout_ns);
    f_dur(c, &f, SV_WRITETIMEOUT, &s->write_timeout_ns);
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

static void ld_statsd(ld *c, ln *n) {
    cfg_statsd *s = &c->cfg->statsd;
    ld_f f;
    char p[LD_PATH];
    qb b;
    if (ld_fields(c, n, "statsd", sd_keys, SD_N, &f) <= 0)
        return;
    char **addrs[2] = {&s->listen_udp, &s->listen_tcp};
    for (int i = 0; i < 2; i++) {
        if (f_str(c, &f, SD_UDP + i, addrs[i]) > 0 && **addrs[i] && !valid_addr(*addrs[i]))
            ld_err(c, f.val[SD_UDP + i], fpath(p, &f, SD_UDP + i),
                   "invalid address %s (want host:port, :port, or \"\" to disable)",
                   qs(&b, *addrs[i]));
    }
    if (f_str(c, &f, SD_UNIX, &s->listen_unixgram) > 0 && strlen(s->listen_unixgram) > 107)
        ld_err(c, f.val[SD_UNIX], fpath(p, &f, SD_UNIX), "socket path too long (max 107 bytes)");
    uint64_t u;
    if (f_uint(c, &f, SD_RBUF, INT32_MAX, &u) > 0)
        s->read_buffer = (size_t)u;
    if (f_uint(c, &f, SD_READERS, 256, &u) > 0)
        s->readers = (unsigned)u;
    f_bool(c, &f, SD_DOG, &s->dogstatsd_tags);
    f_bool(c, &f, SD_INFLUX, &s->influxdb_tags);
    f_bool(c, &f, SD_LIBRATO, &s->librato_tags);
    f_bool(c, &f, SD_SIGNALFX, &s->signalfx_tags);
    if (f_uint(c, &f, SD_CACHE, 10000000, &u) > 0)
        s->cache_size = (size_t)u;
    if (f_uint(c, &f, SD_MAXS, SIZE_MAX, &u) > 0)
        s->max_series = (size_t)u;
    f_dur(c, &f, SD_TCP_IDLE, &s->tcp_idle_timeout_ns);
    if (f_uint(c, &f, SD_TCP_MAX, 1000000, &u) > 0) {
        if (u == 0)
            ld_err(c, f.val[SD_TCP_MAX], fpath(p, &f, SD_TCP_MAX), "must be at least 1");
        s->max_tcp_connections = (size_t)u;
    }
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

/* `defaults`, with statsd_exporter's deprecated timer_type / buckets / quantiles honoured the
 * way it does: each is used only when its modern counterpart is not given. */
static void ld_defaults(ld *c, ln *n) {
    cfg_defaults *d = &c->cfg->defaults;
    ld_f f;
    char p[LD_PATH];
    if (ld_fields(c, n, "defaults", df_keys, DF_N, &f) <= 0)
        return;
    f_dur(c, &f, DF_TTL, &d->ttl_ns);
    uint64_t u;
    if (f_uint(c, &f, DF_MAXS, SIZE_MAX, &u) > 0)
        d->max_series = (size_t)u;
    int eo = 0, et = 0;
    int ro = f_enum(c, &f, DF_OBS, obs_names, "histogram or summary", &eo);
    int rt = f_enum(c, &f, DF_TIMER, obs_names, "histogram or summary", &et);
    if (ro > 0 || rt > 0) {
        d->observer_type = (ro > 0 ? eo : et) == 0 ? CFG_OBS_HISTOGRAM : CFG_OBS_SUMMARY;
        c->def_obs_explicit = 1;
    }

    cfg_histogram_options h = {0};
    double *lb;
    size_t nlb;
    ld_hist(c, f.val[DF_HIST], fpath(p, &f, DF_HIST), &h);
    g_buckets(c, f.val[DF_BUCKETS], fpath(p, &f, DF_BUCKETS), &lb, &nlb);
    if (h.nbuckets || nlb) {
        free(d->histogram.buckets);
        d->histogram = h.nbuckets ? h : (cfg_histogram_options){.buckets = lb, .nbuckets = nlb};
        if (h.nbuckets)
            free(lb);
    } else {
        free(h.buckets);
        free(lb);
    }

    cfg_summary_options s = {0};
    reg_objective *lq;
    size_t nlq;
    ld_summ(c, f.val[DF_SUM], fpath(p, &f, DF_SUM), &s, 0);
    g_objectives(c, f.val[DF_QUANTILES], fpath(p, &f, DF_QUANTILES), &lq, &nlq);
    if (!s.has_objectives && nlq) {
        s.objectives = lq;
        s.nobjectives = nlq;
        s.has_objectives = 1;
        lq = NULL;
    }
    free(lq);
    if (s.has_objectives) {
        free(d->summary.objectives);
        d->summary.objectives = s.objectives;
        d->summary.nobjectives = s.nobjectives;
    }
    d->summary.max_age_ns = s.max_age_ns;
    d->summary.age_buckets = s.age_buckets;
    d->summary.buf_cap = s.buf_cap;

    int e;
    if (f_enum(c, &f, DF_MATCH, match_names, "glob or regex", &e) > 0)
        d->match_type = e == 0 ? CFG_MATCH_GLOB : CFG_MATCH_REGEX;
    f_bool(c, &f, DF_GLOBORD, &d->glob_disable_ordering);
}

/* Per-item positions kept for the checks across sections. */
typedef struct {
    ln *node, *name;
    int type_ok;
} ld_maux;

typedef struct {
    ln *node, *name, *labels, *mmt, *obs;
    ln **lkeys;       /* key node of each label */
    int literal;      /* name has no captures */
    int obs_explicit; /* the rule (or defaults) chose the observer type */
} ld_raux;

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
 * value pointer arrays that reg_family_def wants (see cfg_metric_family_def). */
static cfg_label *const_block(ld *c, const ld_lmap *m) {
    cfg_label *blk = malloc(m->n * (sizeof(cfg_label) + 2 * sizeof(char *)));
    if (!blk) {
        ld_oom(c);
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

static void ld_metric(ld *c, ln *n, const char *path, cfg_metric *m, ld_maux *ax) {
    const cfg_defaults *d = &c->cfg->defaults;
    ld_f f;
    char p[LD_PATH];
    qb b, b2;
    ax->node = n;
    m->line = n->line;
    m->column = n->col;
    int r = ld_fields(c, n, path, mt_keys, MT_N, &f);
    if (r == 0)
        ld_err(c, n, path, "expected a mapping, got null");
    if (r <= 0)
        return;

    ax->name = f.val[MT_NAME];
    if (g_req_str(c, &f, MT_NAME, n, &m->name) > 0) {
        int ok = 0;
        if (strlen(m->name) > LD_MAX_NAME)
            ld_err(c, f.val[MT_NAME], fpath(p, &f, MT_NAME), "name too long: %zu bytes (max %d)",
                   strlen(m->name), LD_MAX_NAME);
        else if (!cfg_valid_metric_name(m->name))
            ld_err(c, f.val[MT_NAME], fpath(p, &f, MT_NAME), "invalid metric name %s",
                   qs(&b, m->name));
        else
            ok = 1;
        if (!ok) {
            free(m->name);
            m->name = NULL;
        }
    }
    int t = -1, e;
    if (!f.val[MT_TYPE])
        ld_err(c, n, path, "missing required key \"type\"");
    else if (f_enum(c, &f, MT_TYPE, type_names, "counter, gauge, histogram or summary", &e) > 0)
        t = e;
    ax->type_ok = t >= 0;
    m->type = t >= 0 ? (reg_type)t : REG_UNTYPED;
    f_str(c, &f, MT_HELP, &m->help);

    if (f_str(c, &f, MT_UNIT, &m->unit) > 0) {
        size_t ul = strlen(m->unit);
        int ok = ul > 0;
        for (size_t i = 0; i < ul; i++)
            ok &= is_word(m->unit[i]);
        if (!ok) {
            ld_err(c, f.val[MT_UNIT], fpath(p, &f, MT_UNIT), "invalid unit %s", qs(&b, m->unit));
        } else if (m->name) {
            /* OpenMetrics: the family name ends with _<unit> (a counter's before _total). */
            size_t nl = strlen(m->name);
            if (t == REG_COUNTER && nl > 6 && !strcmp(m->name + nl - 6, "_total"))
                nl -= 6;
            if (!(nl > ul + 1 && m->name[nl - ul - 1] == '_' &&
                  !strncmp(m->name + nl - ul, m->unit, ul)))
                ld_err(c, f.val[MT_UNIT], fpath(p, &f, MT_UNIT),
                       "metric name %s must end with \"_%s\" to have unit %s", qs(&b, m->name),
                       m->unit, qs(&b2, m->unit));
        }
    }

    ln **it;
    size_t cnt;
    void *mem;
    if (g_seq_alloc(c, f.val[MT_LABELS], fpath(p, &f, MT_LABELS), REG_MAX_LABELS, "labels",
                    sizeof *m->labels, &it, &cnt, &mem) > 0) {
        m->labels = mem;
        for (size_t i = 0; i < cnt && ld_visit(c); i++) {
            char ip[LD_PATH];
            char *s = NULL;
            pi(ip, p, i);
            if (ln_isnull(it[i])) {
                ld_err(c, it[i], ip, "expected a label name, got null");
                continue;
            }
            if (g_str(c, it[i], ip, &s) <= 0)
                continue;
            int ok = check_label_name(c, it[i], ip, s, it[i]->len, t);
            for (size_t j = 0; ok && j < m->nlabels; j++) {
                if (!strcmp(m->labels[j], s)) {
                    ld_err(c, it[i], ip, "duplicate label name %s", qs(&b, s));
                    ok = 0;
                }
            }
            if (ok)
                m->labels[m->nlabels++] = s;
            else
                free(s);
        }
    }

    ld_lmap lm;
    if (ld_labels_map(c, f.val[MT_CONST], fpath(p, &f, MT_CONST), &lm) > 0) {
        for (size_t i = 0; i < lm.n; i++) {
            const char *name = lm.items[i].name;
            if (!check_label_name(c, lm.keys[i], p, name, lm.keys[i]->len, t))
                continue;
            for (size_t j = 0; j < m->nlabels; j++)
                if (!strcmp(m->labels[j], name))
                    ld_err(c, lm.keys[i], p, "%s is also in labels", qs(&b, name));
        }
        if (lm.n + m->nlabels > REG_MAX_LABELS)
            ld_err(c, f.val[MT_CONST], p, "too many labels and const_labels (max %d)",
                   REG_MAX_LABELS);
        if (lm.n && (m->const_labels = const_block(c, &lm)) != NULL) {
            m->nconst = lm.n;
            free(lm.items); /* the strings moved into the block */
        } else {
            free_labels(lm.items, lm.n);
        }
        free(lm.keys);
    }

    if (!ln_isnull(f.val[MT_HIST])) {
        if (t >= 0 && t != REG_HISTOGRAM)
            ld_err(c, f.key[MT_HIST], path, "histogram_options is only valid with type histogram");
        else
            ld_hist(c, f.val[MT_HIST], fpath(p, &f, MT_HIST), &m->histogram);
    }
    if (!ln_isnull(f.val[MT_SUM])) {
        if (t >= 0 && t != REG_SUMMARY)
            ld_err(c, f.key[MT_SUM], path, "summary_options is only valid with type summary");
        else
            ld_summ(c, f.val[MT_SUM], fpath(p, &f, MT_SUM), &m->summary, 1);
    }
    m->has_ttl = f_dur(c, &f, MT_TTL, &m->ttl_ns) > 0;
    if (!m->has_ttl)
        m->ttl_ns = d->ttl_ns;
    uint64_t u;
    if (f_uint(c, &f, MT_MAXS, SIZE_MAX, &u) > 0)
        m->max_series = (size_t)u;
    else
        m->max_series = d->max_series;

    if (t == REG_HISTOGRAM && !m->histogram.nbuckets)
        copy_buckets(c, &m->histogram, d->histogram.buckets, d->histogram.nbuckets);
    if (t == REG_SUMMARY)
        resolve_summary(c, &m->summary, &d->summary);
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

/* One statsd_exporter mapping rule, same keys and rules, plus: `name` may be omitted for
 * action drop; an observer type is inferred from the options given when none is set. */
static void ld_mapping(ld *c, ln *n, const char *path, cfg_mapping *r, ld_raux *ax) {
    const cfg_defaults *d = &c->cfg->defaults;
    ld_f f;
    char p[LD_PATH];
    qb b;
    ax->node = n;
    r->line = n->line;
    r->column = n->col;
    r->scale = 1;
    r->match_type = d->match_type;
    r->observer_type = d->observer_type;
    int fr = ld_fields(c, n, path, mp_keys, MP_N, &f);
    if (fr == 0)
        ld_err(c, n, path, "expected a mapping, got null");
    if (fr <= 0)
        return;

    int e;
    if (f_enum(c, &f, MP_ACTION, action_names, "map or drop", &e) > 0)
        r->action = e == 0 ? CFG_ACTION_MAP : CFG_ACTION_DROP;
    if (f_enum(c, &f, MP_MTYPE, match_names, "glob or regex", &e) > 0)
        r->match_type = e == 0 ? CFG_MATCH_GLOB : CFG_MATCH_REGEX;
    if (g_req_str(c, &f, MP_MATCH, n, &r->match) > 0) {
        fpath(p, &f, MP_MATCH);
        if (r->match_type == CFG_MATCH_GLOB) {
            if (!valid_glob(r->match, strlen(r->match)))
                ld_err(c, f.val[MP_MATCH], p,
                       "invalid glob %s (dot-separated parts, each \"*\" or made of letters, "
                       "digits, \"_\" and \"-\")",
                       qs(&b, r->match));
        } else {
            check_regex(c, f.val[MP_MATCH], p);
        }
    }

    ax->name = f.val[MP_NAME];
    int has_name = 0;
    if (r->action == CFG_ACTION_MAP)
        has_name = g_req_str(c, &f, MP_NAME, n, &r->name) > 0;
    else if (f_str(c, &f, MP_NAME, &r->name) > 0 && *r->name)
        has_name = 1;
    if (r->name && !*r->name) {
        free(r->name);
        r->name = NULL;
    }
    if (has_name) {
        int caps;
        if (ax->name->len > LD_MAX_NAME)
            ld_err(c, ax->name, fpath(p, &f, MP_NAME), "name too long: %zu bytes (max %d)",
                   ax->name->len, LD_MAX_NAME);
        else if (!valid_name_template(r->name, ax->name->len, &caps))
            ld_err(c, ax->name, fpath(p, &f, MP_NAME),
                   "invalid metric name %s (letters, digits, \"_\", \":\" and $1 or ${1} "
                   "captures; not starting with a digit)",
                   qs(&b, r->name));
        else
            ax->literal = !caps;
    }

    ax->mmt = f.val[MP_MMT];
    if (f_enum(c, &f, MP_MMT, mmt_names, "counter, gauge or observer", &e) > 0)
        r->match_metric_type = (cfg_metric_kind)(e + 1);

    int eo = 0, et = 0;
    int ro = f_enum(c, &f, MP_OBS, obs_names, "histogram or summary", &eo);
    int rt = f_enum(c, &f, MP_TIMER, obs_names, "histogram or summary", &et);
    int obs = ro > 0 ? eo : rt > 0 ? et : -1;
    ax->obs = ro > 0 ? f.val[MP_OBS] : rt > 0 ? f.val[MP_TIMER] : NULL;

    cfg_histogram_options h = {0};
    cfg_summary_options s = {0};
    int hr = ld_hist(c, f.val[MP_HIST], fpath(p, &f, MP_HIST), &h);
    int sr = ld_summ(c, f.val[MP_SUM], fpath(p, &f, MP_SUM), &s, 0);
    double *lb;
    size_t nlb;
    reg_objective *lq;
    size_t nlq;
    g_buckets(c, f.val[MP_BUCKETS], fpath(p, &f, MP_BUCKETS), &lb, &nlb);
    g_objectives(c, f.val[MP_QUANTILES], fpath(p, &f, MP_QUANTILES), &lq, &nlq);
    if (nlb && h.nbuckets)
        ld_err(c, f.key[MP_BUCKETS], path,
               "buckets and histogram_options.buckets cannot both be given");
    if (nlq && s.has_objectives)
        ld_err(c, f.key[MP_QUANTILES], path,
               "quantiles and summary_options.quantiles cannot both be given");

    if (obs >= 0 || c->def_obs_explicit) {
        cfg_observer_type ot =
            obs >= 0 ? (obs == 0 ? CFG_OBS_HISTOGRAM : CFG_OBS_SUMMARY) : d->observer_type;
        ax->obs_explicit = 1;
        r->observer_type = ot;
        if (ot == CFG_OBS_HISTOGRAM && sr > 0)
            ld_err(c, f.key[MP_SUM], path, "summary_options cannot be used with a histogram");
        if (ot == CFG_OBS_SUMMARY && hr > 0)
            ld_err(c, f.key[MP_HIST], path, "histogram_options cannot be used with a summary");
    } else {
        /* Neither the rule nor the defaults say: a summary, as statsd_exporter does (its
         * exporter treats the unset observer type as summary, whatever options are given). */
        r->observer_type = CFG_OBS_SUMMARY;
    }

    if (h.nbuckets) {
        r->histogram = h;
        h.buckets = NULL;
    } else if (nlb) {
        r->histogram = (cfg_histogram_options){.buckets = lb, .nbuckets = nlb};
        lb = NULL;
    } else {
        copy_buckets(c, &r->histogram, d->histogram.buckets, d->histogram.nbuckets);
    }
    free(h.buckets);
    free(lb);
    if (!s.has_objectives && nlq) {
        s.objectives = lq;
        s.nobjectives = nlq;
        s.has_objectives = 1;
        lq = NULL;
    }
    free(lq);
    r->summary = s;
    resolve_summary(c, &r->summary, &d->summary);

    ld_lmap lm;
    ax->labels = f.val[MP_LABELS];
    if (ld_labels_map(c, f.val[MP_LABELS], fpath(p, &f, MP_LABELS), &lm) > 0) {
        int t = -1;
        if (r->match_metric_type == CFG_MMT_OBSERVER)
            t = r->observer_type == CFG_OBS_SUMMARY ? REG_SUMMARY : REG_HISTOGRAM;
        for (size_t i = 0; i < lm.n; i++)
            check_label_name(c, lm.keys[i], p, lm.items[i].name, lm.keys[i]->len, t);
        r->labels = lm.items;
        r->nlabels = lm.n;
        ax->lkeys = lm.keys;
    }

    r->has_ttl = f_dur(c, &f, MP_TTL, &r->ttl_ns) > 0;
    if (!r->has_ttl)
        r->ttl_ns = d->ttl_ns;
    f_str(c, &f, MP_HELP, &r->help);
    f_bool(c, &f, MP_HONOR, &r->honor_labels);
    double x;
    if (f.val[MP_SCALE] && g_num(c, f.val[MP_SCALE], fpath(p, &f, MP_SCALE), &x) > 0) {
        if (!isfinite(x))
            ld_err(c, f.val[MP_SCALE], p, "must be finite, got %g", x);
        r->scale = x;
        r->has_scale = 1;
    }
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
static void check_rule_vs_metric(ld *c, size_t k, const cfg_mapping *r, const ld_raux *ax,
                                 size_t mi, const cfg_metric *m, const ld_maux *mx) {
    char path[LD_PATH], p[LD_PATH];
    qb b, b2;
    pi(path, "mappings", k);
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
            ld_err(c, ax->mmt, pk(p, path, "match_metric_type"),
                   "%s events cannot update %s metric %s (declared by metrics[%zu] at %u:%u)", mmt,
                   type_name(m->type), qs(&b, m->name), mi, mx->name->line, mx->name->col);
        if (ax->obs && (mt == REG_HISTOGRAM || mt == REG_SUMMARY)) {
            int ot = r->observer_type == CFG_OBS_SUMMARY ? REG_SUMMARY : REG_HISTOGRAM;
            if (ot != mt)
                ld_err(c, ax->obs, pk(p, path, "observer_type"),
                       "%s conflicts with %s metric %s (declared by metrics[%zu] at %u:%u)",
                       type_name((reg_type)ot), type_name(m->type), qs(&b, m->name), mi,
                       mx->name->line, mx->name->col);
        }
    }
    pk(p, path, "labels");
    for (size_t i = 0; i < m->nlabels; i++) {
        size_t j = 0;
        while (j < r->nlabels && strcmp(r->labels[j].name, m->labels[i]))
            j++;
        if (j == r->nlabels)
            ld_err(c, ax->labels && !ln_isnull(ax->labels) ? ax->labels : ax->node, p,
                   "missing label %s of metric %s", qs(&b, m->labels[i]), qs(&b2, m->name));
    }
    for (size_t j = 0; j < r->nlabels; j++) {
        size_t i = 0;
        while (i < m->nlabels && strcmp(r->labels[j].name, m->labels[i]))
            i++;
        if (i == m->nlabels)
            ld_err(c, ax->lkeys[j], p, "metric %s has no label %s", qs(&b, m->name),
                   qs(&b2, r->labels[j].name));
    }
}

static void ld_cross(ld *c, ld_maux *ma, ld_raux *ra) {
    cfg_config *g = c->cfg;
    hm names = {0}, rules = {0};
    char path[LD_PATH], p[LD_PATH];
    qb b, b2;
    for (size_t i = 0; i < g->nmetrics; i++) {
        const cfg_metric *m = &g->metrics[i];
        if (!m->name)
            continue;
        size_t j = (size_t)(uintptr_t)hm_get(&names, m->name, strlen(m->name));
        if (j) {
            ld_err(c, ma[i].name, pk(p, pi(path, "metrics", i), "name"),
                   "duplicate metric %s (first declared by metrics[%zu] at %u:%u)", qs(&b, m->name),
                   j - 1, ma[j - 1].name->line, ma[j - 1].name->col);
        } else if (hm_put(&names, m->name, strlen(m->name), (void *)(uintptr_t)(i + 1))) {
            ld_oom(c);
            goto out;
        }
    }
    /* A histogram or summary owns the names of its _bucket, _count and _sum series. */
    for (size_t i = 0; i < g->nmetrics; i++) {
        const cfg_metric *m = &g->metrics[i];
        static const char *const sfx[] = {"_count", "_sum", "_bucket"};
        if (!m->name || !ma[i].type_ok || (m->type != REG_HISTOGRAM && m->type != REG_SUMMARY))
            continue;
        if ((size_t)(uintptr_t)hm_get(&names, m->name, strlen(m->name)) != i + 1)
            continue; /* a duplicate, already reported */
        for (size_t s = 0; s < (m->type == REG_HISTOGRAM ? 3u : 2u); s++) {
            char nm[LD_MAX_NAME + 16];
            int len = snprintf(nm, sizeof nm, "%s%s", m->name, sfx[s]);
            if (len < 0 || (size_t)len >= sizeof nm)
                continue;
            size_t j = (size_t)(uintptr_t)hm_get(&names, nm, (size_t)len);
            if (j)
                ld_err(c, ma[j - 1].name, pk(p, pi(path, "metrics", j - 1), "name"),
                       "metric %s collides with the series of %s %s (declared by metrics[%zu] at "
                       "%u:%u)",
                       qs(&b, nm), type_name(m->type), qs(&b2, m->name), i, ma[i].name->line,
                       ma[i].name->col);
        }
    }
    for (size_t k = 0; k < g->nmappings; k++) {
        const cfg_mapping *r = &g->mappings[k];
        if (r->action != CFG_ACTION_MAP || !ra[k].literal || !r->name)
            continue;
        size_t len = strlen(r->name);
        size_t j = (size_t)(uintptr_t)hm_get(&names, r->name, len);
        if (j) {
            check_rule_vs_metric(c, k, r, &ra[k], j - 1, &g->metrics[j - 1], &ma[j - 1]);
            continue;
        }
        int t = rule_type(r);
        if (t < 0)
            continue;
        size_t first = (size_t)(uintptr_t)hm_get(&rules, r->name, len);
        if (!first) {
            if (hm_put(&rules, r->name, len, (void *)(uintptr_t)(k + 1))) {
                ld_oom(c);
                goto out;
            }
        } else if (rule_type(&g->mappings[first - 1]) != t) {
            const ln *fn = ra[first - 1].name;
            ld_err(c, ra[k].name, pk(p, pi(path, "mappings", k), "name"),
                   "conflicting types for %s: %s here, %s by mappings[%zu] at %u:%u",
                   qs(&b, r->name), type_name((reg_type)t),
                   type_name((reg_type)rule_type(&g->mappings[first - 1])), first - 1, fn->line,
                   fn->col);
        }
    }
out:
    hm_free(&names);
    hm_free(&rules);
}

static void ld_root(ld *c, ln *root) {
    enum { TP_SERVER, TP_STATSD, TP_DEFAULTS, TP_METRICS, TP_MAPPINGS, TP_N };
    static const char *const tp_keys[TP_N] = {"server", "statsd", "defaults", "metrics",
                                              "mappings"};
    cfg_config *g = c->cfg;
    ld_f f;
    if (ld_fields(c, root, "", tp_keys, TP_N, &f) <= 0)
        return;
    /* Defaults first: metrics and mappings resolve against them. */
    ld_defaults(c, f.val[TP_DEFAULTS]);
    ld_server(c, f.val[TP_SERVER]);
    ld_statsd(c, f.val[TP_STATSD]);

    ld_maux *ma = NULL;
    ld_raux *ra = NULL;
    ln **it;
    size_t cnt;
    if (g_seq(c, f.val[TP_METRICS], "metrics", &it, &cnt) > 0 && cnt) {
        g->metrics = calloc(cnt, sizeof *g->metrics);
        ma = calloc(cnt, sizeof *ma);
        if (!g->metrics || !ma) {
            ld_oom(c);
            goto out;
        }
        for (size_t i = 0; i < cnt && ld_visit(c); i++) {
            char p[LD_PATH];
            g->nmetrics = i + 1;
            ld_metric(c, it[i], pi(p, "metrics", i), &g->metrics[i], &ma[i]);
        }
    }
    if (g_seq(c, f.val[TP_MAPPINGS], "mappings", &it, &cnt) > 0 && cnt) {
        g->mappings = calloc(cnt, sizeof *g->mappings);
        ra = calloc(cnt, sizeof *ra);
        if (!g->mappings || !ra) {
            ld_oom(c);
            goto out;
        }
        for (size_t i = 0; i < cnt && ld_visit(c); i++) {
            char p[LD_PATH];
            g->nmappings = i + 1;
            ld_mapping(c, it[i], pi(p, "mappings", i), &g->mappings[i], &ra[i]);
        }
    }
    if (!c->oom)
        ld_cross(c, ma, ra);
out:
    for (size_t i = 0; ra && i < g->nmappings; i++)
        free(ra[i].lkeys);
    free(ra);
    free(ma);
}

/* Stable sort of the errors from index `from` by position; those without one go last. */
static void sort_errors(cfg_errors *e, size_t from) {
    for (size_t i = from + 1; i < e->count; i++) {
        cfg_error x = e->items[i];
        uint64_t kx = x.line ? ((uint64_t)x.line << 32 | x.column) : UINT64_MAX;
        size_t j = i;
        while (j > from) {
            const cfg_error *y = &e->items[j - 1];
            uint64_t ky = y->line ? ((uint64_t)y->line << 32 | y->column) : UINT64_MAX;
            if (ky <= kx)
                break;
            e->items[j] = *y;
            j--;
        }
        e->items[j] = x;
    }
}

/* ---- public ------------------------------------------------------------------------------- */

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
        free_labels(r->labels, r->nlabels);
        free(r->help);
        free_hist(&r->histogram);
        free_summ(&r->summary);
    }
    free(c->mappings);
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
    ld c = {
        .file = name ? name : "<config>", .errs = errs ? errs : &local, .visits = LD_MAX_VISITS};
    size_t start = c.errs->count;
    cfg_config *g = cfg_default();
    if (!g || (name && !(g->path = strdup(name)))) {
        cfg_free(g);
        cfg_errors_add_at(c.errs, c.file, 0, 0, "out of memory");
        cfg_errors_free(&local);
        return NULL;
    }
    c.cfg = g;
    g->hash = fnv1a(yaml, len);
    if (len > LD_MAX_FILE) {
        ld_errat(&c, 0, 0, "file too large: %zu bytes (max %u)", len, LD_MAX_FILE);
    } else {
        ln_tree t = {0};
        ln *root;
        if (ld_parse(&c, yaml ? yaml : "", yaml ? len : 0, &t, &root) == 0) {
            if (root && root->kind != LN_MAP && !root->null) {
                qb b;
                ld_err(&c, root, "", "expected a mapping at the top level, got %s",
                       ln_what(root, &b));
            } else {
                ld_root(&c, root);
            }
        }
        ln_tree_free(&t);
    }
    sort_errors(c.errs, start);
    cfg_errors_free(&local);
    if (c.nerr || c.oom) {
        cfg_free(g);
        return NULL;
    }
    return g;
}

/* Reads and parses path. A missing or unreadable file is one error naming it. */
cfg_config *cfg_load(const char *path, cfg_errors *errs) {
    cfg_errors local = {0};
    cfg_errors *e = errs ? errs : &local;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cfg_errors_add_at(e, path, 0, 0, "cannot open: %s", strerror(errno));
        cfg_errors_free(&local);
        return NULL;
    }
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    int err = 0;
    while (buf) {
        if (len == cap) {
            if (cap > LD_MAX_FILE)
                break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                err = errno ? errno : EIO;
            break;
        }
    }
    fclose(f);
    cfg_config *c = NULL;
    if (!buf)
        cfg_errors_add_at(e, path, 0, 0, "cannot read: out of memory");
    else if (err)
        cfg_errors_add_at(e, path, 0, 0, "cannot read: %s", strerror(err));
    else if (len > LD_MAX_FILE)
        cfg_errors_add_at(e, path, 0, 0, "file too large (max %u bytes)", LD_MAX_FILE);
    else
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
