/* mapper.c - StatsD name -> family name and labels, with prometheus/statsd_exporter's rules.
 *
 * Semantics (statsd_exporter pkg/mapper, checked against its source):
 *  - Glob rules are tried first, regex rules only when no glob rule matches.
 *  - A glob is dot-separated parts, each "*" or a literal name; "*" matches exactly one whole
 *    part of the metric name (any bytes but '.', possibly empty) and captures it as $1..$n.
 *    By default the first matching glob rule in file order wins. With glob_disable_ordering the
 *    most specific match wins: literal parts beat "*", compared from left to right.
 *  - Regex rules are PCRE2 patterns, not anchored (like Go's FindStringSubmatchIndex), tried in
 *    file order; the first match of the right kind wins. Templates follow Go's Regexp.Expand:
 *    $0 the whole match, $1 / ${1} groups, $name / ${name} named groups, $$ a '$'.
 *  - Glob templates follow statsd_exporter's formatter: a reference is `$` `{`? then a run of
 *    [A-Za-z0-9_$] then `}`?; a run that is a number from 0 to the number of "*" inserts that
 *    capture ($0: the whole name), anything else is removed ("$1_x" and "$1$2" vanish: write
 *    "${1}_x", "${1}${2}").
 *  - match_metric_type restricts a rule to counters, gauges or observers.
 *  - The mapped name is escaped like statsd_exporter's exporter does (EscapeMetricName); an
 *    unmapped name is escaped and gets no labels.
 * Deliberate differences from statsd_exporter, where its behaviour is a defect: a glob rule
 * is never silently lost when an earlier rule's glob extends it ("a.b" after "a.b.c"), a name
 * part that is literally "*" is captured like any other, glob_disable_ordering always
 * backtracks fully, and invalid UTF-8 bytes are escaped one '_' each.
 *
 * Globs are compiled into one trie (each node's literal children in a string map, keyed by the
 * part and borrowing it from the rule's match string; one "*" child per node);
 * each node knows the smallest rule index below it per metric kind, so an ordered lookup
 * prunes every subtree that cannot beat the best match found so far.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"
#include "internal.h"

#define NONE UINT32_MAX
#define NSLOTS 4               /* kind slots: 0 = untyped event, then counter/gauge/observer */
#define CACHE_MAX_KEY 1024     /* longer names are mapped but not cached */
#define CACHE_MAX_RESULT 16384 /* bigger results are not cached either */
#define CACHE_MAX_ENTRIES (1u << 24)
#define REGEX_MATCH_LIMIT 1000000 /* PCRE2 backtracking steps per rule and name */
#define JIT_STACK_MAX (512 * 1024)

/* ---- small helpers ------------------------------------------------------------------------ */

static _Atomic uint64_t mapper_generation;

__attribute__((format(printf, 4, 5))) static void
err_add(cfg_errors *e, const cfg_config *c, const cfg_mapping *m, const char *fmt, ...) {
    if (!e)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    (void)cfg_errors_add_at(e, c ? c->path : NULL, m ? m->line : 0, m ? m->column : 0, "%s", msg);
}

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Growable byte buffer; never shrinks, so steady-state misses do not allocate. */
typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra) {
    if (extra > SIZE_MAX - b->len)
        return -1;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    char *n = realloc(b->p, ncap);
    if (!n)
        return -1;
    b->p = n;
    b->cap = ncap;
    return 0;
}

static int buf_add(buf_t *b, const char *s, size_t n) {
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

/* ---- escaping ----------------------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s if it is valid (Go's decoder rules: shortest form, no
 * surrogates, at most U+10FFFF), else 1: Go treats each invalid byte as one rune. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 1;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 1;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
            return 1;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 1;
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
            return 1;
        return 4;
    }
    return 1;
}

static inline int is_name_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* EscapeMetricName: a leading digit gets a '_' prefix; every other character (rune) outside
 * [a-zA-Z0-9_] becomes one '_', except that a '-' right after a '-' is dropped. Writes to out
 * when non-NULL (room for n + 1 bytes suffices); returns the length. */
static size_t escape_core(const char *name, size_t n, char *out) {
    const unsigned char *s = (const unsigned char *)name;
    size_t o = 0, i = 0;
    int prev_dash = 0;
    if (n && s[0] >= '0' && s[0] <= '9') {
        if (out)
            out[o] = '_';
        o++;
    }
    while (i < n) {
        if (is_name_char(s[i])) {
            if (out)
                out[o] = (char)s[i];
            o++;
            i++;
            prev_dash = 0;
            continue;
        }
        if (s[i] == '-' && prev_dash) {
            i++;
            continue;
        }
        prev_dash = s[i] == '-';
        i += utf8_len(s + i, n - i);
        if (out)
            out[o] = '_';
        o++;
    }
    return o;
}

/* Returns the escaped length, or -1 when it does not fit in cap bytes with its NUL. */
long cfg_escape_metric_name(const char *name, size_t len, char *out, size_t cap) {
    if (!name)
        len = 0;
    size_t need = len ? escape_core(name, len, NULL) : 0;
    if (!out || need >= cap || need > (size_t)LONG_MAX)
        return -1;
    if (need)
        escape_core(name, len, out);
    out[need] = '\0';
    return (long)need;
}

/* ---- templates ---------------------------------------------------------------------------- */

/* A template is a list of parts: literal bytes of the source, then an optional reference. */
typedef struct {
    uint32_t off, len;
    int32_t ref; /* capture/group number, -1: none */
} tpl_part;

typedef struct {
    const char *src;
    size_t nparts;
    tpl_part *parts;
} tpl;

static int tpl_push(tpl *t, size_t *cap, size_t off, size_t len, int32_t ref) {
    if (t->nparts == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        tpl_part *n = realloc(t->parts, ncap * sizeof(*n));
        if (!n)
            return -1;
        t->parts = n;
        *cap = ncap;
    }
    t->parts[t->nparts++] = (tpl_part){(uint32_t)off, (uint32_t)len, ref};
    return 0;
}

static inline int glob_ref_char(unsigned char c) {
    return is_name_char(c) || c == '$';
}

/* statsd_exporter's glob formatter: `\$\{?([a-zA-Z0-9_\$]+)\}?`, the group parsed as a
 * decimal number in [0, nstars] (0 = the whole name, as since statsd_exporter PR #735). */
static int tpl_compile_glob(tpl *t, const char *src, uint32_t nstars) {
    size_t n = strlen(src), cap = 0, lit = 0, p = 0;
    t->src = src;
    if (n > UINT32_MAX)
        return -1;
    while (p < n) {
        if (src[p] != '$') {
            p++;
            continue;
        }
        size_t j = p + 1;
        if (j < n && src[j] == '{')
            j++;
        size_t k = j;
        while (k < n && glob_ref_char((unsigned char)src[k]))
            k++;
        if (k == j) {
            p++;
            continue;
        }
        size_t end = k < n && src[k] == '}' ? k + 1 : k;
        int32_t ref = -1;
        uint64_t num = 0;
        size_t d = j;
        for (; d < k && src[d] >= '0' && src[d] <= '9'; d++) {
            num = num * 10 + (uint64_t)(src[d] - '0');
            if (num > nstars)
                break;
        }
        if (d == k && num <= nstars)
            ref = (int32_t)num;
        if (tpl_push(t, &cap, lit, p - lit, ref) != 0)
            return -1;
        lit = p = end;
    }
    return tpl_push(t, &cap, lit, n - lit, -1);
}

/* Go's Regexp.Expand: $name or ${name}, name = [A-Za-z0-9_]+ (non-ASCII letters are not
 * taken as name characters here); a number without leading zeros is a group index, other
 * names are named groups; $$ is '$'; a malformed reference leaves the '$' as text. */
static int tpl_compile_regex(tpl *t, const char *src, const pcre2_code *re) {
    size_t n = strlen(src), cap = 0, lit = 0, p = 0;
    t->src = src;
    if (n > UINT32_MAX)
        return -1;
    while (p < n) {
        if (src[p] != '$') {
            p++;
            continue;
        }
        if (p + 1 < n && src[p + 1] == '$') {
            if (tpl_push(t, &cap, lit, p + 1 - lit, -1) != 0)
                return -1;
            lit = p = p + 2;
            continue;
        }
        size_t s = p + 1;
        int brace = s < n && src[s] == '{';
        if (brace)
            s++;
        size_t k = s;
        while (k < n && is_name_char((unsigned char)src[k]))
            k++;
        if (k == s || (brace && (k >= n || src[k] != '}'))) {
            p++;
            continue;
        }
        size_t end = brace ? k + 1 : k;
        int32_t ref = -1;
        int numeric = 1;
        uint64_t num = 0;
        for (size_t d = s; d < k; d++) {
            if (src[d] < '0' || src[d] > '9' || num >= 100000000u) {
                numeric = 0;
                break;
            }
            num = num * 10 + (uint64_t)(src[d] - '0');
        }
        if (numeric && src[s] == '0' && k - s > 1)
            numeric = 0;
        if (numeric) {
            ref = (int32_t)num;
        } else {
            char name[256];
            if (k - s < sizeof(name)) {
                memcpy(name, src + s, k - s);
                name[k - s] = '\0';
                int g = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
                if (g > 0)
                    ref = g;
            }
        }
        if (tpl_push(t, &cap, lit, p - lit, ref) != 0)
            return -1;
        lit = p = end;
    }
    return tpl_push(t, &cap, lit, n - lit, -1);
}

/* ---- the compiled mapper ------------------------------------------------------------------ */

typedef struct {
    uint32_t parent, star;   /* star: the "*" child or NONE */
    uint32_t rules;          /* first glob rule ending here (file order), NONE */
    uint32_t minrem, maxrem; /* parts left to the end of any rule through this node */
    uint32_t minrule[NSLOTS];
    reg_strmap *literal; /* literal part -> child index (never 0: the root is no child); NULL
                            until the node has one */
} gnode;

typedef struct {
    const cfg_mapping *m;
    int is_regex;
    pcre2_code *re;
    uint32_t nparts;   /* glob: number of dot-separated parts */
    uint32_t nstars;   /* glob: number of "*" */
    uint32_t *starpos; /* glob: part index of each "*" */
    uint32_t next;     /* glob: next rule ending at the same node */
    tpl name;          /* unset (nparts 0) for drop rules without a name */
    tpl *labels;
} crule;

struct cfg_mapper {
    const cfg_config *c;
    uint64_t gen;
    size_t nrules;
    crule *rules;
    uint32_t *regex; /* regex rule indices, file order */
    size_t nregex;
    uint32_t max_groups;
    size_t max_labels;
    int ordered;
    gnode *nodes;
    size_t nnodes, nodes_cap;
    uint32_t glob_maxdepth; /* most parts of any glob rule; 0 = no glob rules */
};

/* The literal child of parent for part s[0..n), or NONE. Cannot fail. */
static uint32_t edge_find(const cfg_mapper *m, uint32_t parent, const char *s, size_t n) {
    void *child = reg_strmap_get(m->nodes[parent].literal, s, n);
    return child ? (uint32_t)(uintptr_t)child : NONE;
}

/* s (borrowed: the rule's match string outlives the mapper) leads from parent to child. 0, or
 * -1 when out of memory. */
static int edge_insert(cfg_mapper *m, uint32_t parent, const char *s, size_t n, uint32_t child) {
    gnode *g = &m->nodes[parent];
    if (!g->literal && !(g->literal = reg_strmap_create(0)))
        return -1;
    return reg_strmap_put(g->literal, s, n, (void *)(uintptr_t)child) == REG_OK ? 0 : -1;
}

static uint32_t node_new(cfg_mapper *m, uint32_t parent) {
    if (m->nnodes == m->nodes_cap) {
        size_t ncap = m->nodes_cap ? m->nodes_cap * 2 : 16;
        if (ncap >= NONE)
            return NONE;
        gnode *n = realloc(m->nodes, ncap * sizeof(*n));
        if (!n)
            return NONE;
        m->nodes = n;
        m->nodes_cap = ncap;
    }
    gnode *g = &m->nodes[m->nnodes];
    g->parent = parent;
    g->star = NONE;
    g->rules = NONE;
    g->minrem = NONE;
    g->maxrem = 0;
    g->literal = NULL;
    for (int k = 0; k < NSLOTS; k++)
        g->minrule[k] = NONE;
    return (uint32_t)m->nnodes++;
}

static inline void node_span(gnode *g, uint32_t rem) {
    if (rem < g->minrem)
        g->minrem = rem;
    if (rem > g->maxrem)
        g->maxrem = rem;
}

static int glob_add(cfg_mapper *m, uint32_t idx) {
    crule *r = &m->rules[idx];
    const char *s = r->m->match;
    uint32_t nparts = 1, nstars = 0;
    for (const char *p = s; *p; p++)
        nparts += *p == '.';
    r->nparts = nparts;
    r->starpos = malloc(nparts * sizeof(uint32_t));
    if (!r->starpos)
        return -1;
    if (nparts > m->glob_maxdepth)
        m->glob_maxdepth = nparts;
    uint32_t cur = 0;
    node_span(&m->nodes[0], nparts);
    const char *p = s;
    for (uint32_t i = 0; i < nparts; i++) {
        const char *e = strchr(p, '.');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        uint32_t child;
        if (len == 1 && p[0] == '*') {
            r->starpos[nstars++] = i;
            child = m->nodes[cur].star;
            if (child == NONE) {
                child = node_new(m, cur);
                if (child == NONE)
                    return -1;
                m->nodes[cur].star = child;
            }
        } else {
            child = edge_find(m, cur, p, len);
            if (child == NONE) {
                child = node_new(m, cur);
                if (child == NONE || edge_insert(m, cur, p, len, child) != 0)
                    return -1;
            }
        }
        cur = child;
        node_span(&m->nodes[cur], nparts - i - 1);
        p = e ? e + 1 : p + len;
    }
    r->nstars = nstars;
    /* Append to the node's rule list: rules are added in file order. */
    r->next = NONE;
    if (m->nodes[cur].rules == NONE) {
        m->nodes[cur].rules = idx;
    } else {
        uint32_t t = m->nodes[cur].rules;
        while (m->rules[t].next != NONE)
            t = m->rules[t].next;
        m->rules[t].next = idx;
    }
    cfg_metric_kind k = r->m->match_metric_type;
    for (int slot = 0; slot < NSLOTS; slot++)
        if (k == CFG_MMT_ANY || (int)k == slot)
            if (idx < m->nodes[cur].minrule[slot])
                m->nodes[cur].minrule[slot] = idx;
    return 0;
}

static void crule_free(crule *r) {
    if (r->re)
        pcre2_code_free(r->re);
    free(r->starpos);
    free(r->name.parts);
    if (r->labels)
        for (size_t i = 0; i < r->m->nlabels; i++)
            free(r->labels[i].parts);
    free(r->labels);
}

/* Cannot fail. */
void cfg_mapper_free(cfg_mapper *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->nrules; i++)
        crule_free(&m->rules[i]);
    free(m->rules);
    free(m->regex);
    for (size_t i = 0; i < m->nnodes; i++)
        reg_strmap_free(m->nodes[i].literal);
    free(m->nodes);
    free(m);
}

static int compile_regex(cfg_mapper *m, crule *r, cfg_errors *errs) {
    int ec = 0;
    PCRE2_SIZE eo = 0;
    /* UTF like Go, and $ only at the very end (Go's $ without (?m) is \z). Neither changes
     * which patterns compile, so the loader's check (PCRE2_UTF) agrees with this one. */
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY;
    r->re = pcre2_compile((PCRE2_SPTR)r->m->match, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
    if (!r->re) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", ec);
        err_add(errs, m->c, r->m, "invalid regex \"%.200s\" in mapping: %s at offset %zu",
                r->m->match, (char *)msg, (size_t)eo);
        return 1;
    }
    (void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    uint32_t cc = 0;
    pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &cc);
    if (cc > m->max_groups)
        m->max_groups = cc;
    return 0;
}

/* The name and label templates of rule r. 0, or -1 when out of memory. */
static int compile_templates(cfg_mapper *m, crule *r) {
    const cfg_mapping *mp = r->m;
    if (mp->nlabels > m->max_labels)
        m->max_labels = mp->nlabels;
    if (mp->name) {
        int rc = r->is_regex ? tpl_compile_regex(&r->name, mp->name, r->re)
                             : tpl_compile_glob(&r->name, mp->name, r->nstars);
        if (rc != 0)
            return -1;
    }
    if (!mp->nlabels)
        return 0;
    r->labels = calloc(mp->nlabels, sizeof(tpl));
    if (!r->labels)
        return -1;
    for (size_t l = 0; l < mp->nlabels; l++) {
        const char *v = mp->labels[l].value ? mp->labels[l].value : "";
        int rc = r->is_regex ? tpl_compile_regex(&r->labels[l], v, r->re)
                             : tpl_compile_glob(&r->labels[l], v, r->nstars);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Rule i into the trie or the regex list, with its templates. 0; 1 when the rule is bad
 * (reported in errs); -1 when out of memory. */
static int compile_rule(cfg_mapper *m, size_t i, cfg_errors *errs) {
    const cfg_config *c = m->c;
    const cfg_mapping *mp = &c->mappings[i];
    crule *r = &m->rules[i];
    r->m = mp;
    if (!mp->match) {
        err_add(errs, c, mp, "mapping has no match");
        return 1;
    }
    if (!mp->name && mp->action != CFG_ACTION_DROP) {
        err_add(errs, c, mp, "mapping for \"%.200s\" has no name", mp->match);
        return 1;
    }
    cfg_match_type mt = mp->match_type;
    if (mt == CFG_MATCH_DEFAULT)
        mt = c->defaults.match_type == CFG_MATCH_REGEX ? CFG_MATCH_REGEX : CFG_MATCH_GLOB;
    if (mt == CFG_MATCH_REGEX) {
        r->is_regex = 1;
        if (compile_regex(m, r, errs) != 0)
            return 1;
        m->regex[m->nregex++] = (uint32_t)i;
    } else if (!cfg_valid_glob(mp->match, strlen(mp->match))) {
        err_add(errs, c, mp,
                "invalid match \"%.200s\": glob parts are \"*\" or names of [a-zA-Z0-9_-] "
                "starting with [a-zA-Z0-9_] (the first not with a digit)",
                mp->match);
        return 1;
    } else if (glob_add(m, (uint32_t)i) != 0) {
        return -1;
    }
    return compile_templates(m, r);
}

/* Children always come after their parent: fold subtree minima upwards in one pass. Cannot
 * fail. */
static void fold_subtree_minima(cfg_mapper *m) {
    for (size_t i = m->nnodes; i-- > 1;) {
        gnode *g = &m->nodes[i], *p = &m->nodes[g->parent];
        for (int k = 0; k < NSLOTS; k++)
            if (g->minrule[k] < p->minrule[k])
                p->minrule[k] = g->minrule[k];
    }
}

/* Returns the mapper, or NULL with one error per bad rule appended to errs (or an
 * out-of-memory error). */
cfg_mapper *cfg_mapper_create(const cfg_config *c, cfg_errors *errs) {
    if (!c) {
        err_add(errs, NULL, NULL, "no configuration to build the mapper from");
        return NULL;
    }
    cfg_mapper *m = calloc(1, sizeof(*m));
    if (!m)
        goto oom;
    m->c = c;
    /* Relaxed: only uniqueness matters (a cache tells a new mapper at a reused address from
     * the old one); no data is published through the counter. */
    m->gen = atomic_fetch_add_explicit(&mapper_generation, 1, memory_order_relaxed) + 1;
    m->ordered = !c->defaults.glob_disable_ordering;
    if (c->nmappings >= NONE) {
        err_add(errs, c, NULL, "too many mappings (%zu)", c->nmappings);
        cfg_mapper_free(m);
        return NULL;
    }
    m->rules = calloc(c->nmappings ? c->nmappings : 1, sizeof(crule));
    m->regex = calloc(c->nmappings ? c->nmappings : 1, sizeof(uint32_t));
    if (!m->rules || !m->regex || node_new(m, NONE) != 0)
        goto oom;
    m->nrules = c->nmappings; /* only now: cfg_mapper_free walks rules[0, nrules) */
    size_t bad = 0;
    for (size_t i = 0; i < c->nmappings; i++) {
        int rc = compile_rule(m, i, errs);
        if (rc < 0)
            goto oom;
        bad += (size_t)rc;
    }
    if (bad) {
        cfg_mapper_free(m);
        return NULL;
    }
    fold_subtree_minima(m);
    return m;
oom:
    err_add(errs, c, NULL, "out of memory while compiling the mappings");
    cfg_mapper_free(m);
    return NULL;
}

/* ---- the cache ---------------------------------------------------------------------------- */

typedef struct {
    uint64_t hash;
    char *blob; /* pointer arrays, key, result strings */
    size_t blob_cap;
    size_t key_off;
    uint32_t keylen;
    uint8_t kind;
    int32_t prev, next; /* LRU list, head = most recent */
    cfg_map_result res;
} centry;

typedef struct {
    uint32_t node, depth;
    int phase;
} dframe;

struct cfg_mapper_cache {
    size_t cap;
    centry *entries;
    size_t nused;
    int32_t *slots;
    size_t mask;
    int32_t head, tail;
    uint64_t seed;
    _Atomic uint64_t hits, misses;
    const cfg_mapper *m;
    uint64_t gen;
    /* scratch, reused across misses */
    uint32_t *parts; /* start offset of each name part, plus one past the end */
    size_t parts_cap;
    dframe *stack;
    buf_t tmp, out;
    size_t *offs;
    const char **ptrs; /* label names then values of an uncached result */
    size_t offs_cap;
    pcre2_match_data *md;
    uint32_t md_pairs;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
};

/* NULL on allocation failure. entries 0 disables caching (every call maps afresh). */
cfg_mapper_cache *cfg_mapper_cache_create(size_t entries) {
    cfg_mapper_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (entries > CACHE_MAX_ENTRIES)
        entries = CACHE_MAX_ENTRIES;
    c->cap = entries;
    c->head = c->tail = -1;
    if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) != (ssize_t)sizeof(c->seed))
        c->seed = mix64((uint64_t)(uintptr_t)c ^ (uint64_t)time(NULL));
    if (entries) {
        size_t ns = 16;
        while (ns < entries * 2)
            ns *= 2;
        c->entries = calloc(entries, sizeof(centry));
        c->slots = malloc(ns * sizeof(int32_t));
        if (!c->entries || !c->slots) {
            cfg_mapper_cache_free(c);
            return NULL;
        }
        memset(c->slots, 0xff, ns * sizeof(int32_t));
        c->mask = ns - 1;
    }
    return c;
}

/* Cannot fail. */
void cfg_mapper_cache_free(cfg_mapper_cache *c) {
    if (!c)
        return;
    if (c->entries)
        for (size_t i = 0; i < c->cap; i++)
            free(c->entries[i].blob);
    free(c->entries);
    free(c->slots);
    free(c->parts);
    free(c->stack);
    free(c->tmp.p);
    free(c->out.p);
    free(c->offs);
    free(c->ptrs);
    if (c->md)
        pcre2_match_data_free(c->md);
    if (c->mctx)
        pcre2_match_context_free(c->mctx);
    if (c->jit)
        pcre2_jit_stack_free(c->jit);
    free(c);
}

/* Cannot fail; either pointer may be NULL. */
void cfg_mapper_cache_stats(const cfg_mapper_cache *c, uint64_t *hits, uint64_t *misses) {
    /* Relaxed: statistics, paired with bump(); read approximately; no data depends on them. */
    if (hits)
        *hits = c ? atomic_load_explicit(&c->hits, memory_order_relaxed) : 0;
    if (misses)
        *misses = c ? atomic_load_explicit(&c->misses, memory_order_relaxed) : 0;
}

static inline void bump(_Atomic uint64_t *ctr) {
    /* Only the owning thread writes, so load+store is no lost update; relaxed: a statistic
     * read approximately by cfg_mapper_cache_stats; no other data depends on it. */
    atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void lru_unlink(cfg_mapper_cache *c, int32_t i) {
    centry *e = &c->entries[i];
    if (e->prev >= 0)
        c->entries[e->prev].next = e->next;
    else
        c->head = e->next;
    if (e->next >= 0)
        c->entries[e->next].prev = e->prev;
    else
        c->tail = e->prev;
}

static void lru_push_front(cfg_mapper_cache *c, int32_t i) {
    centry *e = &c->entries[i];
    e->prev = -1;
    e->next = c->head;
    if (c->head >= 0)
        c->entries[c->head].prev = i;
    c->head = i;
    if (c->tail < 0)
        c->tail = i;
}

/* Linear-probing delete with backward shift, so lookups never need tombstones. */
static void slot_remove(cfg_mapper_cache *c, int32_t idx) {
    size_t i = c->entries[idx].hash & c->mask;
    while (c->slots[i] != idx)
        i = (i + 1) & c->mask;
    c->slots[i] = -1;
    for (size_t j = (i + 1) & c->mask; c->slots[j] >= 0; j = (j + 1) & c->mask) {
        size_t k = c->entries[c->slots[j]].hash & c->mask;
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            c->slots[i] = c->slots[j];
            c->slots[j] = -1;
            i = j;
        }
    }
}

static void cache_reset(cfg_mapper_cache *c, const cfg_mapper *m) {
    if (c->slots)
        memset(c->slots, 0xff, (c->mask + 1) * sizeof(int32_t));
    c->nused = 0;
    c->head = c->tail = -1;
    c->m = m;
    c->gen = m ? m->gen : 0;
}

/* ---- matching ----------------------------------------------------------------------------- */

static inline int slot_of(cfg_metric_kind kind) {
    return kind >= CFG_MMT_COUNTER && kind <= CFG_MMT_OBSERVER ? (int)kind : 0;
}

static inline int rule_applies(const crule *r, int slot) {
    return r->m->match_metric_type == CFG_MMT_ANY || (int)r->m->match_metric_type == slot;
}

/* The glob rule for the name split at c->parts[0..np], or NONE. Ordered: the smallest rule
 * index among all matches. Unordered: depth-first, literal part before "*", first hit. */
static uint32_t glob_lookup(const cfg_mapper *m, cfg_mapper_cache *c, const char *name, uint32_t np,
                            int slot) {
    uint32_t best = NONE;
    dframe *st = c->stack;
    size_t sp = 0;
    st[0] = (dframe){0, 0, 0};
    for (;;) {
        dframe *f = &st[sp];
        const gnode *g = &m->nodes[f->node];
        uint32_t child = NONE;
        if (f->phase == 0) {
            f->phase = 1;
            uint32_t rem = np - f->depth;
            if (g->minrule[slot] >= best || rem < g->minrem || rem > g->maxrem)
                goto pop;
            if (rem == 0) {
                for (uint32_t r = g->rules; r != NONE; r = m->rules[r].next)
                    if (rule_applies(&m->rules[r], slot)) {
                        if (r < best)
                            best = r;
                        break;
                    }
                if (!m->ordered && best != NONE)
                    return best;
                goto pop;
            }
            uint32_t s = c->parts[f->depth], e = c->parts[f->depth + 1] - 1;
            child = edge_find(m, f->node, name + s, e - s);
        } else if (f->phase == 1) {
            f->phase = 2;
            child = g->star;
        }
        if (child != NONE) {
            st[sp + 1] = (dframe){child, f->depth + 1, 0};
            sp++;
            continue;
        }
        if (f->phase == 1)
            continue; /* no literal child: try "*" */
    pop:
        if (sp == 0)
            return best;
        sp--;
    }
}

/* Makes sure per-mapper scratch fits m; -1 on allocation failure. */
static int scratch_fit(cfg_mapper_cache *c, const cfg_mapper *m) {
    static const cfg_mapper none;
    if (!m)
        m = &none;
    size_t need = (size_t)m->glob_maxdepth + 2;
    if (m->glob_maxdepth && c->parts_cap < need) {
        uint32_t *p = realloc(c->parts, need * sizeof(*p));
        if (!p)
            return -1;
        c->parts = p;
        dframe *s = realloc(c->stack, need * sizeof(*s));
        if (!s)
            return -1;
        c->stack = s;
        c->parts_cap = need;
    }
    if (c->offs_cap < m->max_labels + 1) {
        size_t n = m->max_labels + 1;
        size_t *o = realloc(c->offs, n * sizeof(*o));
        if (!o)
            return -1;
        c->offs = o;
        const char **p = realloc(c->ptrs, 2 * n * sizeof(*p));
        if (!p)
            return -1;
        c->ptrs = p;
        c->offs_cap = n;
    }
    if (m->nregex) {
        if (!c->mctx) {
            c->mctx = pcre2_match_context_create(NULL);
            if (!c->mctx)
                return -1;
            pcre2_set_match_limit(c->mctx, REGEX_MATCH_LIMIT);
            c->jit = pcre2_jit_stack_create(32 * 1024, JIT_STACK_MAX, NULL);
            if (c->jit)
                pcre2_jit_stack_assign(c->mctx, NULL, c->jit);
        }
        if (!c->md || c->md_pairs < m->max_groups + 1) {
            pcre2_match_data *md = pcre2_match_data_create(m->max_groups + 1, NULL);
            if (!md)
                return -1;
            if (c->md)
                pcre2_match_data_free(c->md);
            c->md = md;
            c->md_pairs = m->max_groups + 1;
        }
    }
    return 0;
}

/* Where the captures of a match come from. */
typedef struct {
    const char *name;
    size_t len;
    const crule *r;
    const uint32_t *parts; /* glob */
    const PCRE2_SIZE *ov;  /* regex */
    int rc;                /* regex: pairs set */
} capsrc;

static int tpl_expand(buf_t *b, const tpl *t, const capsrc *cs) {
    for (size_t i = 0; i < t->nparts; i++) {
        const tpl_part *p = &t->parts[i];
        if (buf_add(b, t->src + p->off, p->len) != 0)
            return -1;
        if (p->ref < 0)
            continue;
        size_t s = 0, e = 0;
        if (p->ref == 0 && !cs->r->is_regex) {
            e = cs->len;
        } else if (!cs->r->is_regex) {
            uint32_t part = cs->r->starpos[p->ref - 1];
            s = cs->parts[part];
            e = cs->parts[part + 1] - 1;
        } else if (p->ref < cs->rc && cs->ov[2 * p->ref] != PCRE2_UNSET) {
            s = cs->ov[2 * p->ref];
            e = cs->ov[2 * p->ref + 1];
            if (e < s) /* \K can end a match before its start */
                e = s;
        }
        if (buf_add(b, cs->name + s, e - s) != 0)
            return -1;
    }
    return 0;
}

/* Escapes name into c->out (appending a NUL). */
static int out_escaped(cfg_mapper_cache *c, const char *s, size_t n) {
    if (n == SIZE_MAX || buf_reserve(&c->out, n + 2) != 0)
        return -1;
    c->out.len += escape_core(s, n, c->out.p + c->out.len);
    c->out.p[c->out.len++] = '\0';
    return 0;
}

/* Computes the result into c->out / c->offs: offs[0] name, offs[1 + i] label value i. */
static int compute(const cfg_mapper *m, cfg_mapper_cache *c, const char *name, size_t len, int slot,
                   const cfg_mapping **rule_out, int *drop) {
    c->out.len = 0;
    *rule_out = NULL;
    *drop = 0;
    capsrc cs = {name, len, NULL, NULL, NULL, 0};
    uint32_t ri = NONE;
    if (m && m->glob_maxdepth && len < UINT32_MAX) {
        uint32_t np = 0;
        c->parts[0] = 0;
        for (size_t i = 0; i <= len; i++) {
            if (i == len || name[i] == '.') {
                if (np == m->glob_maxdepth) {
                    np = NONE; /* more parts than any glob has */
                    break;
                }
                c->parts[++np] = (uint32_t)(i + 1);
            }
        }
        if (np != NONE) {
            ri = glob_lookup(m, c, name, np, slot);
            cs.parts = c->parts;
        }
    }
    if (m && ri == NONE) {
        pcre2_match_data *md = c->md;
        for (size_t k = 0; k < m->nregex; k++) {
            const crule *r = &m->rules[m->regex[k]];
            if (!rule_applies(r, slot))
                continue;
            int rc = pcre2_match(r->re, (PCRE2_SPTR)name, len, 0, 0, md, c->mctx);
            if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
                rc = pcre2_match(r->re, (PCRE2_SPTR)name, len, 0, PCRE2_NO_JIT, md, c->mctx);
            if (rc <= 0)
                continue; /* no match, or over the match limit: treated as no match */
            ri = m->regex[k];
            cs.ov = pcre2_get_ovector_pointer(md);
            cs.rc = rc;
            break;
        }
    }
    if (ri == NONE)
        return out_escaped(c, name, len);
    const crule *r = &m->rules[ri];
    cs.r = r;
    *rule_out = r->m;
    if (r->m->action == CFG_ACTION_DROP) {
        *drop = 1;
        return buf_add(&c->out, "", 1);
    }
    c->tmp.len = 0;
    if (tpl_expand(&c->tmp, &r->name, &cs) != 0)
        return -1;
    c->offs[0] = 0;
    if (out_escaped(c, c->tmp.p, c->tmp.len) != 0)
        return -1;
    for (size_t i = 0; i < r->m->nlabels; i++) {
        c->offs[1 + i] = c->out.len;
        if (tpl_expand(&c->out, &r->labels[i], &cs) != 0 || buf_add(&c->out, "", 1) != 0)
            return -1;
    }
    return 0;
}

static void fill_result(cfg_map_result *out, const cfg_mapping *rule, int drop, const char *strs,
                        const size_t *offs, const char **ptrs) {
    size_t n = rule && !drop ? rule->nlabels : 0;
    out->drop = drop;
    out->mapped = rule != NULL;
    out->rule = rule;
    out->name = strs;
    out->nlabels = n;
    out->label_names = n ? ptrs : NULL;
    out->label_values = n ? ptrs + n : NULL;
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = rule->labels[i].name;
        ptrs[n + i] = strs + offs[1 + i];
    }
}

/* Returns 0 with *out filled, or -1 when out of memory (the cache stays usable). */
int cfg_mapper_map(const cfg_mapper *m, cfg_mapper_cache *cache, const char *name, size_t len,
                   cfg_metric_kind kind, cfg_map_result *out) {
    if (!cache || !out)
        return -1;
    if (!name) {
        name = "";
        len = 0;
    }
    if (cache->m != m || cache->gen != (m ? m->gen : 0))
        cache_reset(cache, m);
    int slot = slot_of(kind);
    int cacheable = cache->cap && len <= CACHE_MAX_KEY;
    uint64_t h = 0;
    if (cacheable) {
        h = reg_hash_bytes(name, len, cache->seed ^ (uint64_t)slot);
        for (size_t i = h & cache->mask;; i = (i + 1) & cache->mask) {
            int32_t idx = cache->slots[i];
            if (idx < 0)
                break;
            centry *e = &cache->entries[idx];
            if (e->hash == h && e->kind == slot && e->keylen == len &&
                memcmp(e->blob + e->key_off, name, len) == 0) {
                if (cache->head != idx) {
                    lru_unlink(cache, idx);
                    lru_push_front(cache, idx);
                }
                bump(&cache->hits);
                *out = e->res;
                return 0;
            }
        }
    }
    bump(&cache->misses);
    if (scratch_fit(cache, m) != 0)
        return -1;
    const cfg_mapping *rule;
    int drop;
    if (compute(m, cache, name, len, slot, &rule, &drop) != 0)
        return -1;
    size_t n = rule && !drop ? rule->nlabels : 0;
    size_t ptr_bytes = 2 * n * sizeof(char *);
    size_t total = ptr_bytes + len + cache->out.len;
    if (!cacheable || total > CACHE_MAX_RESULT + CACHE_MAX_KEY) {
        fill_result(out, rule, drop, cache->out.p, cache->offs, cache->ptrs);
        return 0;
    }
    /* Take a free entry, or evict the least recently used one. Grow its blob first, so a
     * failed allocation leaves the cache as it was. */
    int32_t idx = cache->nused < cache->cap ? (int32_t)cache->nused : cache->tail;
    centry *e = &cache->entries[idx];
    if (e->blob_cap < total) {
        char *b = realloc(e->blob, total);
        if (!b)
            return -1;
        e->blob = b;
        e->blob_cap = total;
    }
    if ((size_t)idx == cache->nused) {
        cache->nused++;
    } else {
        slot_remove(cache, idx);
        lru_unlink(cache, idx);
    }
    const char **ptrs = (const char **)(void *)e->blob;
    e->key_off = ptr_bytes;
    memcpy(e->blob + ptr_bytes, name, len);
    char *strs = e->blob + ptr_bytes + len;
    memcpy(strs, cache->out.p, cache->out.len);
    e->hash = h;
    e->keylen = (uint32_t)len;
    e->kind = (uint8_t)slot;
    fill_result(&e->res, rule, drop, strs, cache->offs, ptrs);
    lru_push_front(cache, idx);
    for (size_t i = h & cache->mask;; i = (i + 1) & cache->mask)
        if (cache->slots[i] < 0) {
            cache->slots[i] = idx;
            break;
        }
    *out = e->res;
    return 0;
}
