/* series.c - a receiver's series: a collection's points turned into the label sets it sends
 * (external labels, job/instance, relabeling, sorted), each label set one rw_series kept from
 * collection to collection, and the staleness markers of those that went away.
 *
 * One thread (the supervisor) uses a set; the series it hands out in samples are shared with
 * the sender by reference counts.
 */
#include <stdlib.h>
#include <string.h>

#include "remote/internal.h"

/* 0, or -1 when out of memory. */
int rw_series_set_init(rw_series_set *set) {
    memset(set, 0, sizeof *set);
    set->series = reg_strmap_create(0);
    set->key = malloc(RW_MAX_KEY);
    if (!set->series || !set->key) {
        rw_series_set_free(set);
        return -1;
    }
    return 0;
}

/* Cannot fail. */
void rw_series_set_free(rw_series_set *set) {
    size_t pos = 0, len;
    const char *key;
    void *val;
    while (reg_strmap_next(set->series, &pos, &key, &len, &val))
        rw_series_unref(val);
    reg_strmap_free(set->series);
    free(set->batch);
    free(set->key);
    memset(set, 0, sizeof *set);
}

/* The labels of point p as sent: those with a value, the external labels and job/instance
 * where the series has none, relabeled, sorted. 1 keep, 0 dropped by a rule. */
static int series_labels(const rw_rules *r, const rw_point *p, rw_labels *l) {
    l->n = 0;
    l->used = 0;
    for (size_t i = 0; i < p->nlabels && l->n < RW_MAX_LABELS; i++) {
        if (!p->values[i][0])
            continue; /* an empty value is no label, as when Prometheus scrapes it */
        l->names[l->n] = p->names[i];
        l->values[l->n++] = p->values[i];
    }
    for (size_t i = 0; i < r->nexternal; i++)
        if (!rw_labels_get(l, r->external[i].name))
            rw_labels_set(l, r->external[i].name, r->external[i].value);
    if (!rw_labels_get(l, "job"))
        rw_labels_set(l, "job", "abacus");
    if (!rw_labels_get(l, "instance"))
        rw_labels_set(l, "instance", r->instance);
    if (!rw_relabel(r->relabel, l))
        return 0;
    rw_labels_sort(l);
    return 1;
}

/* The identity of l into buf (name\0value\0...). Returns its length, 0 when it does not fit. */
static size_t series_key(const rw_labels *l, char *buf, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        size_t nl = strlen(l->names[i]) + 1, vl = strlen(l->values[i]) + 1;
        if (n + nl + vl > cap)
            return 0;
        memcpy(buf + n, l->names[i], nl);
        memcpy(buf + n + nl, l->values[i], vl);
        n += nl + vl;
    }
    return n;
}

/* Room for n samples in the batch. 0, or -1 when out of memory. */
static int batch_room(rw_series_set *set, size_t n) {
    if (n <= set->batch_cap)
        return 0;
    rw_sample *b = realloc(set->batch, n * sizeof *b);
    if (!b)
        return -1;
    set->batch = b;
    set->batch_cap = n;
    return 0;
}

/* The series of l, made and remembered when new. NULL when out of memory. */
static rw_series *series_for(rw_series_set *set, const rw_labels *l, const char *key,
                             size_t keylen) {
    rw_series *s = reg_strmap_get(set->series, key, keylen);
    if (s)
        return s;
    if (!(s = rw_series_make(l->n, l->names, l->values)))
        return NULL;
    if (reg_strmap_put(set->series, s->key, s->keylen, s) != REG_OK) {
        rw_series_unref(s);
        return NULL;
    }
    return s;
}

/* Staleness markers for the series of the last collection that are not in this one; they
 * leave the map (its reference moves to the marker). Returns the batch's new length. */
static size_t add_stale_markers(rw_series_set *set, size_t n, int64_t ts) {
    size_t pos = 0, len, stale = 0;
    const char *key;
    void *val;
    while (reg_strmap_next(set->series, &pos, &key, &len, &val))
        stale += ((rw_series *)val)->seen != set->cycle;
    if (!stale || batch_room(set, n + stale) != 0)
        return n;
    pos = 0;
    size_t first = n;
    while (reg_strmap_next(set->series, &pos, &key, &len, &val))
        if (((rw_series *)val)->seen != set->cycle)
            set->batch[n++] = (rw_sample){val, rw_stale_nan(), ts};
    /* Removing during the walk would invalidate it: remove afterwards. */
    for (size_t i = first; i < n; i++)
        reg_strmap_remove(set->series, set->batch[i].series->key, set->batch[i].series->keylen);
    return n;
}

/* Returns the number of samples in set->batch. */
size_t rw_series_set_feed(rw_series_set *set, const rw_collection *c, const rw_rules *rules,
                          int64_t ts, size_t *lost) {
    char *key = set->key;
    rw_labels l;
    size_t n = 0;
    set->cycle++;
    /* Strictly increasing per set, so no series gets two samples at one timestamp (a receiver
     * refuses a second value) or an older one after a wall-clock step back. */
    if (ts <= set->last_ts)
        ts = set->last_ts + 1;
    set->last_ts = ts;
    if (batch_room(set, c->n + 1) != 0) {
        *lost += c->n;
        return 0;
    }
    for (size_t i = 0; i < c->n; i++) {
        const rw_point *p = &c->points[i];
        if (!series_labels(rules, p, &l))
            continue;
        size_t kl = series_key(&l, key, RW_MAX_KEY);
        rw_series *s = kl ? series_for(set, &l, key, kl) : NULL;
        if (!s) {
            ++*lost;
            continue;
        }
        if (s->seen == set->cycle)
            continue; /* relabeling made two series one: the first stands */
        s->seen = set->cycle;
        set->batch[n++] =
            (rw_sample){rw_series_ref(s), p->value, p->timestamp_ms >= 0 ? p->timestamp_ms : ts};
    }
    return add_stale_markers(set, n, ts);
}
