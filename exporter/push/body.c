/* body.c - a parsed push body into the registry's pushed families (push_families_build).
 *
 * The Pushgateway's view of a pushed sample: its labels are the body's, with the grouping
 * key's set on top (the path wins), and an empty instance label where none is given; they
 * are rendered sorted by name. What it refuses, abacus refuses here too: timestamps,
 * reserved label names, label values that are not UTF-8; and abacus also refuses a
 * histogram without a +Inf bucket, which Prometheus could not read.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push/internal.h"

#define MAX_SERIES_LABELS (2 * REG_MAX_LABELS + PUSH_MAX_KEY_LABELS + 1)

/* One label of a series being built: name and unescaped value. */
typedef struct {
    const char *name, *value;
} label;

/* The labels of metric m pushed to key, sorted: key's override m's; instance="" added when
 * neither has one (measure checked them). Insertion sort: a handful of labels, usually
 * sorted already. Returns their count, or -1 with err when there are too many. */
static long series_labels(const exp_text_family *f, const exp_text_metric *m, const push_key *key,
                          label *out, char *err, size_t errlen) {
    size_t n = 0;
    int instance = 0;
    for (size_t i = 0; i < key->n; i++) {
        out[n++] = (label){key->names[i], key->values[i]};
        instance |= !strcmp(key->names[i], "instance");
    }
    for (size_t i = 0; i < m->nlabels; i++) {
        const exp_text_label *l = &m->labels[i];
        int overridden = key->empty_instance && !strcmp(l->name, "instance");
        for (size_t k = 0; k < key->n && !overridden; k++)
            overridden = !strcmp(key->names[k], l->name);
        if (overridden)
            continue;
        if (n == MAX_SERIES_LABELS - 1) {
            snprintf(err, errlen, "%s: too many labels", f->name);
            return -1;
        }
        out[n++] = (label){l->name, l->value};
        instance |= !strcmp(l->name, "instance");
    }
    if (!instance)
        out[n++] = (label){"instance", ""};
    for (size_t i = 1; i < n; i++) {
        label x = out[i];
        size_t j = i;
        for (; j > 0 && strcmp(out[j - 1].name, x.name) > 0; j--)
            out[j] = out[j - 1];
        out[j] = x;
    }
    return (long)n;
}

/* Refuse what the Pushgateway's consistency check refuses in the labels: a reserved name in
 * the body, or in the grouping key for the family's type (le on a histogram, quantile on a
 * summary: the sample lines would carry it twice). The parsers checked names and UTF-8.
 * 0, or -1 with err. */
static int check_labels(const exp_text_family *f, const exp_text_metric *m, const push_key *key,
                        char *err, size_t errlen) {
    for (size_t i = 0; m == NULL && i < key->n; i++)
        if (reg_reserved_label_name(f->type, key->names[i], strlen(key->names[i]))) {
            snprintf(err, errlen, "%s: grouping label \"%s\" is reserved for its type", f->name,
                     key->names[i]);
            return -1;
        }
    for (size_t i = 0; m && i < m->nlabels; i++)
        if (reg_reserved_label_name(f->type, m->labels[i].name, strlen(m->labels[i].name))) {
            snprintf(err, errlen, "%s: label name \"%s\" is reserved", f->name, m->labels[i].name);
            return -1;
        }
    return 0;
}

/* Bytes the rendered text of m's labels may take at most, with key's and instance (escaping
 * doubles a value at most; an overridden label is counted too). */
static size_t labels_room(const exp_text_metric *m, const push_key *key) {
    size_t need = 1 + sizeof "instance=\"\"," - 1;
    for (size_t i = 0; i < key->n; i++)
        need += strlen(key->names[i]) + 2 * strlen(key->values[i]) + 4;
    for (size_t i = 0; i < m->nlabels; i++)
        need += strlen(m->labels[i].name) + 2 * strlen(m->labels[i].value) + 4;
    return need;
}

/* Render `a="x",b="y"` into out. Returns its length. Cannot fail. */
static size_t render_labels(const label *l, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[k++] = ',';
        size_t nl = strlen(l[i].name);
        memcpy(out + k, l[i].name, nl);
        k += nl;
        out[k++] = '=';
        out[k++] = '"';
        k += reg_escape_label_value(l[i].value, strlen(l[i].value), out + k);
        out[k++] = '"';
    }
    out[k] = '\0';
    return k;
}

/* Value words of one metric (see reg_push_series). */
static size_t value_count(reg_type t, const exp_text_metric *m) {
    if (t == REG_HISTOGRAM)
        return 2 + 2 * m->nbuckets;
    if (t == REG_SUMMARY)
        return 2 + 2 * m->nquantiles;
    return 1;
}

typedef struct {
    double key, value;
} pair;

static int cmp_pair(const void *a, const void *b) {
    double x = ((const pair *)a)->key, y = ((const pair *)b)->key;
    return x < y ? -1 : x > y;
}

/* Lay out the values of m (type t) in vals. 0, or -1 with err (a histogram without +Inf,
 * a bucket or quantile twice). */
static int fill_values(const exp_text_family *f, const exp_text_metric *m, double *vals, char *err,
                       size_t errlen) {
    if (f->type != REG_HISTOGRAM && f->type != REG_SUMMARY) {
        vals[0] = m->value;
        return 0;
    }
    int hist = f->type == REG_HISTOGRAM;
    size_t n = hist ? m->nbuckets : m->nquantiles;
    pair *pairs = (pair *)(vals + 2);
    for (size_t i = 0; i < n; i++)
        pairs[i] =
            hist ? (pair){m->bounds[i], m->counts[i]} : (pair){m->quantiles[i], m->qvalues[i]};
    qsort(pairs, n, sizeof *pairs, cmp_pair);
    for (size_t i = 0; i < n; i++)
        if (isnan(pairs[i].key) || (i > 0 && pairs[i].key == pairs[i - 1].key)) {
            snprintf(err, errlen, "%s: %s \"%g\" given twice or not a number", f->name,
                     hist ? "bucket" : "quantile", pairs[i].key);
            return -1;
        }
    if (hist && (n == 0 || !(isinf(pairs[n - 1].key) && pairs[n - 1].key > 0))) {
        snprintf(err, errlen, "%s: histogram without a +Inf bucket", f->name);
        return -1;
    }
    /* Without a _count line the count is 0, as the Pushgateway shows it. */
    vals[0] = m->has_sum ? m->sum : 0;
    vals[1] = m->has_count ? m->count : 0;
    return 0;
}

/* 1 for the push-time gauges a body may carry: the Pushgateway sets them itself and drops
 * pushed ones. */
static int is_meta(const exp_text_family *f) {
    return !strcmp(f->name, REG_PUSH_TIME_NAME) || !strcmp(f->name, REG_PUSH_FAILURE_TIME_NAME);
}

/* Sizes of everything the families need, for one allocation. */
typedef struct {
    size_t families, series, vals, text;
} sizes;

/* First pass: check every metric and add up sizes. 0, or -1 with err. */
static int measure(const exp_text_result *parsed, const push_key *key, sizes *z, char *err,
                   size_t errlen) {
    for (size_t i = 0; i < parsed->nfamilies; i++) {
        const exp_text_family *f = &parsed->families[i];
        if (is_meta(f))
            continue;
        if (check_labels(f, NULL, key, err, errlen) != 0)
            return -1;
        z->families++;
        for (size_t k = 0; k < f->nmetrics; k++) {
            const exp_text_metric *m = &f->metrics[k];
            if (m->has_timestamp) {
                snprintf(err, errlen, "pushed metrics must not have timestamps (%s, line %u)",
                         f->name, m->line);
                return -1;
            }
            if (check_labels(f, m, key, err, errlen) != 0)
                return -1;
            z->series++;
            z->vals += value_count(f->type, m);
            z->text += labels_room(m, key);
        }
    }
    return 0;
}

int push_families_build(const exp_text_result *parsed, const push_key *key, push_families *out,
                        char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    label scratch[MAX_SERIES_LABELS];
    sizes z = {0, 0, 0, 0};
    if (measure(parsed, key, &z, err, errlen) != 0)
        return -1;
    size_t off_ser = z.families * sizeof(reg_push_family);
    size_t off_val = off_ser + z.series * sizeof(reg_push_series);
    size_t off_txt = off_val + z.vals * sizeof(double);
    char *mem = malloc(off_txt + z.text + 1);
    if (mem == NULL)
        return -2;
    reg_push_family *fams = (reg_push_family *)mem;
    reg_push_series *ser = (reg_push_series *)(mem + off_ser);
    // cppcheck-suppress invalidPointerCast ; one block: the doubles start 8-byte aligned there
    double *vals = (double *)(mem + off_val);
    char *text = mem + off_txt;
    size_t nf = 0;
    for (size_t i = 0; i < parsed->nfamilies; i++) {
        const exp_text_family *f = &parsed->families[i];
        if (is_meta(f))
            continue;
        fams[nf++] = (reg_push_family){f->name, f->help, f->type, 0, f->nmetrics, ser};
        for (size_t k = 0; k < f->nmetrics; k++) {
            const exp_text_metric *m = &f->metrics[k];
            long nl = series_labels(f, m, key, scratch, err, errlen);
            if (nl < 0) {
                free(mem);
                return -1;
            }
            size_t len = render_labels(scratch, (size_t)nl, text);
            if (len > REG_MAX_KEY) {
                snprintf(err, errlen, "%s: labels longer than %d bytes (line %u)", f->name,
                         REG_MAX_KEY, m->line);
                free(mem);
                return -1;
            }
            size_t nv = value_count(f->type, m);
            if (fill_values(f, m, vals, err, errlen) != 0) {
                free(mem);
                return -1;
            }
            *ser++ = (reg_push_series){text, (uint32_t)len, (uint32_t)nv, vals};
            text += len + 1;
            vals += nv;
        }
    }
    out->families = fams;
    out->n = nf;
    out->mem = mem;
    return 0;
}

void push_families_free(push_families *p) {
    free(p->mem);
    memset(p, 0, sizeof *p);
}
