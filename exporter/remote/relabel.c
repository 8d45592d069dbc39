/* relabel.c - write_relabel_configs: Prometheus's replace, keep and drop actions on the labels
 * of a series about to be queued (__name__ included), with its regex anchoring and Go's
 * template expansion ($1, ${1}, $name, ${name}, $$), so a rule copied from a Prometheus
 * configuration behaves the same.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/internal.h"

typedef struct {
    const cfg_relabel *rule;
    pcre2_code *re;
} compiled_rule;

struct rw_relabeler {
    size_t n;
    compiled_rule *rules;
    pcre2_match_data *md;
};

/* NULL with a reason in err. */
rw_relabeler *rw_relabeler_create(const cfg_relabel *rules, size_t n, char *err, size_t errlen) {
    rw_relabeler *r = calloc(1, sizeof *r);
    if (!r || !(r->rules = calloc(n ? n : 1, sizeof *r->rules)) ||
        !(r->md = pcre2_match_data_create(32, NULL))) {
        snprintf(err, errlen, "out of memory");
        rw_relabeler_free(r);
        return NULL;
    }
    for (size_t i = 0; i < n; i++, r->n++) {
        int code;
        PCRE2_SIZE off;
        char *anchored = NULL;
        if (asprintf(&anchored, "^(?:%s)$", rules[i].regex ? rules[i].regex : "(.*)") < 0) {
            snprintf(err, errlen, "out of memory");
            rw_relabeler_free(r);
            return NULL;
        }
        r->rules[i].rule = &rules[i];
        r->rules[i].re = pcre2_compile((PCRE2_SPTR)anchored, PCRE2_ZERO_TERMINATED, PCRE2_UTF,
                                       &code, &off, NULL);
        free(anchored);
        if (!r->rules[i].re) {
            snprintf(err, errlen, "write_relabel_configs[%zu]: regex does not compile", i);
            rw_relabeler_free(r);
            return NULL;
        }
    }
    return r;
}

/* Cannot fail; NULL is ignored. */
void rw_relabeler_free(rw_relabeler *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        pcre2_code_free(r->rules[i].re);
    free(r->rules);
    pcre2_match_data_free(r->md);
    free(r);
}

/* ---- label sets --------------------------------------------------------------------------- */

/* Cannot fail. */
const char *rw_labels_get(const rw_labels *l, const char *name) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->names[i], name))
            return l->values[i];
    return NULL;
}

/* 0, or -1 when full. */
int rw_labels_set(rw_labels *l, const char *name, const char *value) {
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->names[i], name))
            continue;
        if (*value) {
            l->values[i] = value;
        } else { /* an empty value removes the label, as Prometheus does */
            l->n--;
            l->names[i] = l->names[l->n];
            l->values[i] = l->values[l->n];
        }
        return 0;
    }
    if (!*value)
        return 0;
    if (l->n == RW_MAX_LABELS)
        return -1;
    l->names[l->n] = name;
    l->values[l->n++] = value;
    return 0;
}

/* Cannot fail. */
void rw_labels_sort(rw_labels *l) {
    for (size_t i = 1; i < l->n; i++) {
        const char *n = l->names[i], *v = l->values[i];
        size_t j = i;
        while (j > 0 && strcmp(l->names[j - 1], n) > 0) {
            l->names[j] = l->names[j - 1];
            l->values[j] = l->values[j - 1];
            j--;
        }
        l->names[j] = n;
        l->values[j] = v;
    }
    size_t out = 0; /* equal names: the later one wins */
    for (size_t i = 0; i < l->n; i++) {
        if (out && !strcmp(l->names[out - 1], l->names[i]))
            out--;
        l->names[out] = l->names[i];
        l->values[out++] = l->values[i];
    }
    l->n = out;
}

/* A copy of s[0..n) in the store. NULL when it does not fit. */
static char *store(rw_labels *l, const char *s, size_t n) {
    if (l->used + n + 1 > sizeof l->store)
        return NULL;
    char *p = l->store + l->used;
    memcpy(p, s, n);
    p[n] = '\0';
    l->used += n + 1;
    return p;
}

/* ---- one rule ------------------------------------------------------------------------------- */

/* The source labels' values joined by the separator into buf. Returns the length, or -1
 * when it does not fit. */
static long join_sources(const cfg_relabel *rule, const rw_labels *l, char *buf, size_t cap) {
    size_t len = 0, sl = strlen(rule->separator ? rule->separator : ";");
    for (size_t i = 0; i < rule->nsource_labels; i++) {
        const char *v = rw_labels_get(l, rule->source_labels[i]);
        size_t vl = v ? strlen(v) : 0;
        if (len + vl + sl + 1 > cap)
            return -1;
        if (i) {
            memcpy(buf + len, rule->separator ? rule->separator : ";", sl);
            len += sl;
        }
        memcpy(buf + len, v ? v : "", vl);
        len += vl;
    }
    buf[len] = '\0';
    return (long)len;
}

/* Go's regexp.Expand of template against the match in md over subject: $n, ${n}, $name,
 * ${name} (a missing group is ""), $$ a dollar. Returns the length written to out (NUL
 * added), or -1 when it does not fit. */
static long expand(const pcre2_code *re, pcre2_match_data *md, const char *subject,
                   const char *template, char *out, size_t cap) {
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t groups = pcre2_get_ovector_count(md);
    size_t len = 0;
    for (const char *p = template; *p;) {
        const char *from = p;
        size_t n = 1;
        char name[64];
        if (*p == '$' && p[1] == '$') {
            p += 2;
        } else if (*p == '$') {
            int braced = p[1] == '{';
            const char *s = p + 1 + braced;
            size_t k = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
            if (k == 0 || k >= sizeof name || (braced && s[k] != '}')) {
                p++; /* not a reference: a literal '$' (Go drops a bad one; this keeps it) */
            } else {
                memcpy(name, s, k);
                name[k] = '\0';
                p = s + k + braced;
                long g = strspn(name, "0123456789") == k
                             ? strtol(name, NULL, 10)
                             : pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
                from = NULL;
                n = 0;
                if (g >= 0 && (uint32_t)g < groups && ov[2 * g] != PCRE2_UNSET) {
                    from = subject + ov[2 * g];
                    n = ov[2 * g + 1] - ov[2 * g];
                }
            }
        } else {
            p++;
        }
        if (len + n + 1 > cap)
            return -1;
        if (n)
            memcpy(out + len, from, n);
        len += n;
    }
    out[len] = '\0';
    return (long)len;
}

/* 1 keep, 0 drop. */
static int apply(rw_relabeler *r, const compiled_rule *c, rw_labels *l) {
    const cfg_relabel *rule = c->rule;
    char joined[4096], target[256], value[2048];
    long jl = join_sources(rule, l, joined, sizeof joined);
    if (jl < 0)
        return 0;
    int m = pcre2_match(c->re, (PCRE2_SPTR)joined, (size_t)jl, 0, 0, r->md, NULL) >= 0;
    switch (rule->action) {
    case CFG_RELABEL_KEEP:
        return m;
    case CFG_RELABEL_DROP:
        return !m;
    case CFG_RELABEL_REPLACE:
        break;
    }
    if (!m)
        return 1;
    long tl = expand(c->re, r->md, joined, rule->target_label, target, sizeof target);
    long vl = expand(c->re, r->md, joined, rule->replacement ? rule->replacement : "$1", value,
                     sizeof value);
    if (tl <= 0 || vl < 0 || !reg_valid_label_name(target, (size_t)tl))
        return 1; /* Prometheus leaves the labels as they are */
    char *t = store(l, target, (size_t)tl), *v = store(l, value, (size_t)vl);
    return t && v && rw_labels_set(l, t, v) == 0;
}

/* 1 keep, 0 drop. */
int rw_relabel(rw_relabeler *r, rw_labels *l) {
    for (size_t i = 0; r && i < r->n; i++)
        if (!apply(r, &r->rules[i], l))
            return 0;
    const char *name = rw_labels_get(l, "__name__");
    return name && *name;
}
