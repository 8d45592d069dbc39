/* collect.c - the registry as remote write sends it: exactly the series a scrape shows.
 *
 * Rather than a second walk of the family model (cursors, pushed groups, histogram and summary
 * reads, the series-twice rules), a collection renders the registry with the scrape's own
 * renderer (http/expfmt.c, text format) and reads it back with the push parser
 * (push/textparse.c): names, labels and values are those of a scrape by construction, at the
 * price of formatting and parsing each number once (see bench/remote_write.c for the cost).
 * The whole rendering is held while it is parsed: memory proportional to one scrape's size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/expfmt.h"
#include "push/arena.h"
#include "push/textparse.h"
#include "remote/internal.h"

#define READ_CHUNK (256 * 1024)

/* The whole text rendering of scrape s into *buf (*len bytes); ends s. 0, or -1 (out of
 * memory). */
static int render(exp_scrape *s, char **buf, size_t *len) {
    size_t cap = READ_CHUNK, n = 0;
    char *b = s ? malloc(cap) : NULL;
    int rc = b ? 0 : -1;
    for (long got = 1; rc == 0 && got > 0;) {
        if (cap - n < READ_CHUNK) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                rc = -1;
                break;
            }
            b = nb;
            cap *= 2;
        }
        got = exp_scrape_read(s, b + n, cap - n);
        if (got < 0)
            rc = -1;
        else
            n += (size_t)got;
    }
    if (s)
        exp_scrape_end(s);
    if (rc != 0) {
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Points one metric becomes. Cannot fail. */
static size_t point_count(reg_type t, const exp_text_metric *m) {
    if (t == REG_HISTOGRAM)
        return m->nbuckets + (size_t)m->has_sum + (size_t)m->has_count;
    if (t == REG_SUMMARY)
        return m->nquantiles + (size_t)m->has_sum + (size_t)m->has_count;
    return 1;
}

typedef struct {
    push_arena_block *arena;
    rw_point *points;
    size_t n;
} builder;

/* Append a point: the metric's labels, __name__ first, and extra (le/quantile) when given.
 * 0, or -1 when out of memory. */
static int add_point(builder *b, const exp_text_metric *m, const char *name, const char *extra,
                     double bound, double value) {
    size_t n = m->nlabels + 1 + (extra ? 1 : 0);
    const char **names = push_arena_alloc(&b->arena, 2 * n * sizeof *names);
    if (!names)
        return -1;
    const char **values = names + n;
    names[0] = "__name__";
    values[0] = name;
    for (size_t i = 0; i < m->nlabels; i++) {
        names[i + 1] = m->labels[i].name;
        values[i + 1] = m->labels[i].value;
    }
    if (extra) {
        char num[32];
        size_t len = exp_format_go_float(bound, num);
        if (!(values[n - 1] = push_arena_str(&b->arena, num, len)))
            return -1;
        names[n - 1] = extra;
    }
    b->points[b->n++] = (rw_point){.nlabels = n,
                                   .names = names,
                                   .values = values,
                                   .value = value,
                                   .timestamp_ms = m->has_timestamp ? m->timestamp_ms : -1};
    return 0;
}

/* name followed by suffix, in the arena; NULL when out of memory. */
static const char *suffixed(builder *b, const char *name, const char *suffix) {
    size_t len = strlen(name) + strlen(suffix) + 1;
    char *s = push_arena_alloc(&b->arena, len);
    if (s)
        snprintf(s, len, "%s%s", name, suffix);
    return s;
}

/* The points of one family. 0, or -1 when out of memory. */
static int add_family(builder *b, const exp_text_family *f) {
    int hist = f->type == REG_HISTOGRAM, summ = f->type == REG_SUMMARY;
    const char *bucket = hist ? suffixed(b, f->name, "_bucket") : f->name;
    const char *sum = hist || summ ? suffixed(b, f->name, "_sum") : f->name;
    const char *count = hist || summ ? suffixed(b, f->name, "_count") : f->name;
    if (!bucket || !sum || !count)
        return -1;
    for (size_t i = 0; i < f->nmetrics; i++) {
        const exp_text_metric *m = &f->metrics[i];
        int rc = 0;
        if (!hist && !summ) {
            if (add_point(b, m, f->name, NULL, 0, m->value) != 0)
                return -1;
            continue;
        }
        for (size_t j = 0; hist && j < m->nbuckets; j++)
            rc |= add_point(b, m, bucket, "le", m->bounds[j], m->counts[j]);
        for (size_t j = 0; summ && j < m->nquantiles; j++)
            rc |= add_point(b, m, f->name, "quantile", m->quantiles[j], m->qvalues[j]);
        if (m->has_sum)
            rc |= add_point(b, m, sum, NULL, 0, m->sum);
        if (m->has_count)
            rc |= add_point(b, m, count, NULL, 0, m->count);
        if (rc)
            return -1;
    }
    return 0;
}

/* 0, or -1 with the reason in err. */
int rw_collect(exp_scrape *s, rw_collection *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    if (render(s, &text, &len) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    exp_text_result parsed = {0};
    char why[256];
    int rc = exp_text_parse(text, len, NULL, &parsed, why, sizeof why);
    free(text);
    if (rc != 0) {
        snprintf(err, errlen, "reading the rendering back: %s", why);
        return -1;
    }
    size_t total = 0;
    for (size_t i = 0; i < parsed.nfamilies; i++)
        for (size_t j = 0; j < parsed.families[i].nmetrics; j++)
            total += point_count(parsed.families[i].type, &parsed.families[i].metrics[j]);
    builder b = {0};
    b.points = malloc((total ? total : 1) * sizeof *b.points);
    rc = b.points ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < parsed.nfamilies; i++)
        rc = add_family(&b, &parsed.families[i]);
    if (rc != 0) {
        free(b.points);
        push_arena_free(b.arena);
        exp_text_free(&parsed);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* The labels point into the parse's arena: the collection keeps it. */
    out->parse_arena = parsed.arena;
    out->points = b.points;
    out->n = b.n;
    out->arena = b.arena;
    return 0;
}

/* Cannot fail. */
void rw_collection_free(rw_collection *c) {
    exp_text_result parsed = {.arena = c->parse_arena};
    exp_text_free(&parsed);
    free(c->points);
    push_arena_free(c->arena);
    memset(c, 0, sizeof *c);
}
