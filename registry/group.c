/* group.c - pushed groups (reg_group_*): what each Pushgateway grouping key holds.
 *
 * A group's state is one immutable block (the struct, its families, series, values and
 * strings) built in full, then published in the group set with ck_hs_put or swapped in with
 * ck_hs_set: a reader finds the old state or the new one, never a mix. Writers serialise on
 * push_mu; a push costs the size of its group and body, whatever the number of other groups.
 *
 * A state's memory lives while it is linked or held: refs counts the link (1) plus every
 * hold. The writer that unlinks a state drops the link; whoever drops the last reference
 * retires the block to the epoch, so a reader that found it inside a section (and failed to
 * hold it, refs being 0) never reads freed memory.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct reg_group {
    /* First member: ck_hs hands the state itself to the compare callback, which reads its
     * second argument as a reg_probe (the key's hash, text and length). */
    reg_probe key;
    _Atomic uint64_t refs; /* 1 while linked, plus one per hold */
    ck_epoch_entry_t epoch_entry;
    double push_time, failure_time;
    uint64_t ttl_ns, expires_ns; /* monotonic deadline; 0: never */
    size_t nseries; /* counted in the registry's series total: its series and the two push-time
                     * gauges, so groups made by empty or refused pushes are bounded too */
    size_t nfamilies;
    reg_push_family *families; /* in the block, sorted by name */
    /* then: families, series, values, strings */
};

/* A pushed name's entry in push_names. */
typedef struct {
    reg_type type;
    size_t groups; /* groups holding a family of that name */
} push_name;

/* ---- the group set ----------------------------------------------------------------------- */

static unsigned long group_hash_cb(const void *obj, unsigned long seed) {
    (void)seed;
    return (unsigned long)((const reg_group *)obj)->key.hash;
}

/* The second argument is a reg_probe: lookups and removals use probes; put and set hand the
 * state itself, whose first member is one. */
static bool group_compare_cb(const void *stored, const void *key) {
    const reg_group *g = stored;
    const reg_probe *p = key;
    REG_TSAN_ACQUIRE(g); /* ck_hs calls this before get returns: pairs with the publish */
    return g->key.hash == p->hash && g->key.klen == p->klen &&
           memcmp(g->key.key, p->key, p->klen) == 0;
}

/* False when out of memory. */
bool reg_groups_init(reg_registry *r) {
    pthread_mutex_init(&r->push_mu, NULL);
    r->push_names = reg_strmap_create(REG_STRMAP_COPY);
    if (r->push_names == NULL)
        return false;
    if (!reg_hs_init(r, &r->groups, group_hash_cb, group_compare_cb, 16, r->seed)) {
        reg_strmap_free(r->push_names);
        r->push_names = NULL;
        return false;
    }
    return true;
}

/* Registry teardown: no reader or writer is left. Cannot fail. */
void reg_groups_destroy(reg_registry *r) {
    if (r->push_names == NULL)
        return; /* reg_groups_init failed */
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *obj;
    while (ck_hs_next(&r->groups, &it, &obj))
        free(obj);
    ck_hs_destroy(&r->groups);
    size_t pos = 0;
    void *val;
    while (reg_strmap_next(r->push_names, &pos, NULL, NULL, &val))
        free(val);
    reg_strmap_free(r->push_names);
    pthread_mutex_destroy(&r->push_mu);
}

static reg_probe key_probe(const reg_registry *r, const char *key, size_t len) {
    reg_probe p = {reg_hash_bytes(key, len, r->seed), key, len};
    return p;
}

/* The linked state of key, or NULL. Under push_mu, or inside a section. */
static reg_group *group_find(reg_registry *r, const char *key, size_t len) {
    reg_probe p = key_probe(r, key, len);
    reg_group *g = ck_hs_get(&r->groups, (unsigned long)p.hash, &p);
    REG_TSAN_ACQUIRE(g); /* pairs with the release before ck_hs_put/set in group_link */
    return g;
}

static void free_group_cb(ck_epoch_entry_t *e) {
    REG_TSAN_ACQUIRE(&reg_tsan_epoch); /* pairs with the release in reg_end */
    free((char *)e - offsetof(reg_group, epoch_entry));
}

/* Drop one reference; the last one retires the block. acq_rel: the releaser's reads of the
 * state happen before the free, which the last dropper orders after every other drop. Any
 * thread; cannot fail. */
static void group_unref(reg_registry *r, reg_group *g) {
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
        reg_retire(r, &g->epoch_entry, free_group_cb);
}

/* Take a reference on a state found inside a section, unless its last one is gone (it was
 * unlinked and released meanwhile; its memory lasts until the section ends). 1 held, 0 not.
 * The acquire pairs with the acq_rel drop in group_unref. */
static int group_hold(reg_group *g) {
    uint64_t n = atomic_load_explicit(&g->refs, memory_order_acquire);
    while (n > 0)
        if (atomic_compare_exchange_weak_explicit(&g->refs, &n, n + 1, memory_order_acquire,
                                                  memory_order_acquire))
            return 1;
    return 0;
}

/* ---- the name index ---------------------------------------------------------------------- */

/* A name counted once more (type t) or once less (t < 0). Under push_mu and fam_mu. REG_OK or
 * REG_ENOMEM (nothing changed). */
static int name_count(reg_registry *r, const char *name, int t) {
    size_t len = strlen(name);
    push_name *e = reg_strmap_get(r->push_names, name, len);
    if (t < 0) {
        if (e && --e->groups == 0) {
            reg_strmap_remove(r->push_names, name, len);
            free(e);
        }
        return REG_OK;
    }
    if (e) {
        e->type = (reg_type)t;
        e->groups++;
        return REG_OK;
    }
    e = malloc(sizeof *e);
    if (e == NULL)
        return REG_ENOMEM;
    *e = (push_name){(reg_type)t, 1};
    if (reg_strmap_put(r->push_names, name, len, e) != REG_OK) {
        free(e);
        return REG_ENOMEM;
    }
    return REG_OK;
}

/* ---- sample names ------------------------------------------------------------------------
 *
 * A family renders samples under names of its own besides its name: a histogram h as h_bucket,
 * h_count, h_sum, a summary as s_count, s_sum, a counter c_total under the metadata name c in
 * OpenMetrics. Two families of which one renders
 * a name the other has would give two TYPE lines for one name: Prometheus rejects the scrape.
 * The Pushgateway refuses such a push ("collides with previously collected histogram"); so
 * does abacus, between pushed names and against the registry's families.
 */

/* Where names are looked up: a type, or -1 when nobody has the name. */
typedef int (*type_of_fn)(void *arg, const char *name, size_t len);

/* The names a family (name, t) renders besides its own, into out (each NUL-terminated, room
 * for REG_MAX_NAME + 16 bytes each, 3 at most). Returns their count. Cannot fail. _created is
 * not among them: client libraries push x_created gauges beside counters, histograms and
 * summaries (prometheus_client does), which the text format shows as families of their own
 * and the Pushgateway accepts. */
static size_t rendered_names(const char *name, size_t len, reg_type t,
                             char out[3][REG_MAX_NAME + 16]) {
    static const char *const hist[] = {"_bucket", "_count", "_sum"};
    static const char *const summ[] = {"_count", "_sum"};
    size_t n = 0;
    if (t == REG_HISTOGRAM || t == REG_SUMMARY) {
        const char *const *sfx = t == REG_HISTOGRAM ? hist : summ;
        for (size_t i = 0; i < (t == REG_HISTOGRAM ? 3u : 2u); i++)
            snprintf(out[n++], REG_MAX_NAME + 16, "%.*s%s", (int)len, name, sfx[i]);
    } else if (t == REG_COUNTER && reg_name_has_suffix(name, len, "_total")) {
        snprintf(out[n++], REG_MAX_NAME + 16, "%.*s", (int)len - 6, name);
    }
    return n;
}

/* 1 when a family (name, t) and another that type_of knows clash: the one renders a name the
 * other has; with then holds the other's name (room for REG_MAX_NAME + 16 bytes). */
static int clashes(const char *name, reg_type t, type_of_fn type_of, void *arg, char *with) {
    size_t len = strlen(name);
    char names[3][REG_MAX_NAME + 16];
    /* Names this family renders that another family has. */
    size_t n = rendered_names(name, len, t, names);
    for (size_t i = 0; i < n; i++)
        if (type_of(arg, names[i], strlen(names[i])) >= 0) {
            memcpy(with, names[i], strlen(names[i]) + 1);
            return 1;
        }
    /* Families that would render this name: a base of a suffix, or x_total for x. */
    static const char *const sfx[] = {"_bucket", "_count", "_sum", "_total"};
    for (size_t i = 0; i <= sizeof sfx / sizeof *sfx; i++) {
        size_t k = i < sizeof sfx / sizeof *sfx ? strlen(sfx[i]) : 0;
        if (i < sizeof sfx / sizeof *sfx) {
            if (!reg_name_has_suffix(name, len, sfx[i]))
                continue;
            snprintf(with, REG_MAX_NAME + 16, "%.*s", (int)(len - k), name); /* the base */
        } else {
            snprintf(with, REG_MAX_NAME + 16, "%s_total", name); /* x_total renders x */
        }
        size_t wl = strlen(with);
        int other = type_of(arg, with, wl);
        if (other < 0)
            continue;
        n = rendered_names(with, wl, (reg_type)other, names);
        for (size_t j = 0; j < n; j++)
            if (!strcmp(names[j], name))
                return 1;
    }
    return 0;
}

/* type_of over the push name index alone. */
static int pushed_type_of(void *arg, const char *name, size_t len) {
    const push_name *e = reg_strmap_get(((reg_registry *)arg)->push_names, name, len);
    return e ? (int)e->type : -1;
}

static int is_meta_name(const char *name) {
    return !strcmp(name, REG_PUSH_TIME_NAME) || !strcmp(name, REG_PUSH_FAILURE_TIME_NAME);
}

static int has_label(const reg_family_def *d, const char *name) {
    for (size_t i = 0; i < d->nlabels; i++)
        if (!strcmp(d->labels[i], name))
            return 1;
    for (size_t i = 0; i < d->nconst; i++)
        if (!strcmp(d->const_names[i], name))
            return 1;
    return 0;
}

int reg_groups_fit_locked(reg_registry *r, const reg_family_def *def) {
    /* The push-time gauges' names: only a label-less gauge may share them. */
    if (is_meta_name(def->name))
        return def->type == REG_GAUGE && def->nlabels == 0 && def->nconst == 0 ? REG_OK
                                                                               : REG_ECONFLICT;
    const push_name *e = reg_strmap_get(r->push_names, def->name, strlen(def->name));
    if (e && e->type != def->type)
        return REG_ECONFLICT;
    /* Pushed series carry job (and instance): a family of that name with a job label could
     * render the same series twice. */
    if (e && (has_label(def, "job") || has_label(def, "instance")))
        return REG_ECONFLICT;
    char with[REG_MAX_NAME + 16];
    return clashes(def->name, def->type, pushed_type_of, r, with) ? REG_ECONFLICT : REG_OK;
}

int reg_family_fits_pushed(reg_thread *t, const reg_family_def *def) {
    reg_registry *r = t->reg;
    pthread_mutex_lock(&r->fam_mu);
    int rc = reg_groups_fit_locked(r, def);
    pthread_mutex_unlock(&r->fam_mu);
    return rc;
}

/* ---- checks on what is pushed ------------------------------------------------------------ */

static void say(char *err, size_t errlen, const char *fmt, const char *name) {
    if (err && errlen)
        snprintf(err, errlen, fmt, name);
}

/* The value layout of one series is what its type says (see reg_push_series). 1 or 0. */
static int series_shape_ok(reg_type type, const reg_push_series *s) {
    if (type != REG_HISTOGRAM && type != REG_SUMMARY)
        return s->nvals == 1;
    if (s->nvals < 2 || s->nvals % 2 != 0)
        return 0;
    size_t pairs = (s->nvals - 2) / 2;
    const double *v = s->vals + 2;
    for (size_t i = 1; i < pairs; i++)
        if (!(v[2 * i] > v[2 * i - 2]))
            return 0; /* bounds or quantiles strictly increasing (and not NaN) */
    if (type == REG_HISTOGRAM)
        return pairs >= 1 && isinf(v[2 * pairs - 2]) && v[2 * pairs - 2] > 0;
    return 1;
}

/* Label names of series text `a="x",b="y"`, each as (start, length), into names (at most max).
 * Returns the count, or -1 when there are more than max. Cannot fail otherwise: the text
 * was rendered by the pusher as the contract says. */
static long label_names(const char *text, size_t len, const char **names, size_t *lens,
                        size_t max) {
    size_t n = 0, i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && text[i] != '=')
            i++;
        if (n == max)
            return -1;
        names[n] = text + start;
        lens[n++] = i - start;
        i += 2; /* =" */
        while (i < len && text[i] != '"')
            i += text[i] == '\\' ? 2 : 1;
        i += 2; /* ", */
    }
    return (long)n;
}

static int in_list(const char *s, size_t len, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
            return 1;
    return 0;
}

/* 1 when every series of pf, without the grouping key's labels, has exactly the labels and
 * constant labels of the registry family f, and type and help agree. Every pushed series has
 * an instance label (empty when nobody gave one): it counts only when f has one too. */
static int fits_family(const reg_family *f, const reg_push *p, const reg_push_family *pf) {
    const reg_family_def *d = reg_family_definition(f);
    if (d->type != pf->type || d->nconst > 0) /* const labels: the series would carry them twice */
        return 0;
    if (pf->help && (d->help == NULL || strcmp(d->help, pf->help) != 0))
        return 0;
    int with_instance = in_list("instance", 8, d->labels, d->nlabels) ||
                        in_list("instance", 8, d->const_names, d->nconst);
    const char *names[REG_MAX_LABELS * 2];
    size_t lens[REG_MAX_LABELS * 2];
    for (size_t i = 0; i < pf->nseries; i++) {
        const reg_push_series *s = &pf->series[i];
        long n = label_names(s->labels, s->labels_len, names, lens, REG_MAX_LABELS * 2);
        if (n < 0)
            return 0;
        size_t own = 0;
        for (long k = 0; k < n; k++) {
            if (in_list(names[k], lens[k], p->key_names, p->nkey_names) ||
                (!with_instance && lens[k] == 8 && !memcmp(names[k], "instance", 8)))
                continue;
            if (!in_list(names[k], lens[k], d->labels, d->nlabels) &&
                !in_list(names[k], lens[k], d->const_names, d->nconst))
                return 0;
            own++;
        }
        if (own != d->nlabels + d->nconst)
            return 0;
    }
    return 1;
}

/* ---- building a state -------------------------------------------------------------------- */

/* Where a new state's family comes from: the push's body, the old state, or a sum of both
 * (REG_PUSH_ADD: series and vals owned by the builder). */
typedef struct {
    reg_push_family f;
    reg_push_series *own_series; /* freed after packing, with own_vals */
    double *own_vals;
} fam_src;

static int cmp_src_name(const void *a, const void *b) {
    return strcmp(((const fam_src *)a)->f.name, ((const fam_src *)b)->f.name);
}

static int cmp_series(const void *a, const void *b) {
    const reg_push_series *x = a, *y = b;
    size_t m = x->labels_len < y->labels_len ? x->labels_len : y->labels_len;
    int c = memcmp(x->labels, y->labels, m);
    if (c != 0)
        return c;
    return x->labels_len < y->labels_len ? -1 : x->labels_len > y->labels_len;
}

static size_t str_size(const char *s) {
    return s ? strlen(s) + 1 : 0;
}

static char *put_str(char **strings, const char *s) {
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *at = *strings;
    memcpy(at, s, n);
    *strings += n;
    return at;
}

/* One block holding key and the families of src (sorted by name), each family's series
 * sorted by labels. NULL when out of memory. *dup names a family with a series twice (the
 * block is not built then). */
static reg_group *pack(const reg_registry *r, const char *key, size_t key_len, fam_src *src,
                       size_t n, const char **dup) {
    size_t nseries = 0, nvals = 0, nstr = key_len + 1;
    for (size_t i = 0; i < n; i++) {
        const reg_push_family *f = &src[i].f;
        nstr += str_size(f->name) + str_size(f->help);
        nseries += f->nseries;
        for (size_t k = 0; k < f->nseries; k++) {
            nvals += f->series[k].nvals;
            nstr += f->series[k].labels_len + 1;
        }
    }
    size_t off_fam = (sizeof(reg_group) + 7) & ~(size_t)7;
    size_t off_ser = off_fam + n * sizeof(reg_push_family);
    size_t off_val = off_ser + nseries * sizeof(reg_push_series);
    size_t off_str = off_val + nvals * sizeof(double);
    char *block = malloc(off_str + nstr);
    if (block == NULL)
        return NULL;
    reg_group *g = (reg_group *)block;
    memset(g, 0, sizeof *g);
    reg_push_family *fams = (reg_push_family *)(block + off_fam);
    reg_push_series *ser = (reg_push_series *)(block + off_ser);
    // cppcheck-suppress invalidPointerCast ; one block: the doubles start 8-byte aligned there
    double *vals = (double *)(block + off_val);
    char *strings = block + off_str;

    memcpy(strings, key, key_len);
    strings[key_len] = '\0';
    g->key = key_probe(r, strings, key_len);
    strings += key_len + 1;
    g->families = fams;
    g->nfamilies = n;
    g->nseries = nseries + 2; /* push_time_seconds, push_failure_time_seconds */
    for (size_t i = 0; i < n; i++) {
        const reg_push_family *f = &src[i].f;
        fams[i] = *f;
        fams[i].name = put_str(&strings, f->name);
        fams[i].help = put_str(&strings, f->help);
        fams[i].series = ser;
        for (size_t k = 0; k < f->nseries; k++) {
            const reg_push_series *s = &f->series[k];
            memcpy(vals, s->vals, s->nvals * sizeof(double));
            memcpy(strings, s->labels, s->labels_len);
            strings[s->labels_len] = '\0';
            ser[k] = (reg_push_series){strings, s->labels_len, s->nvals, vals};
            strings += s->labels_len + 1;
            vals += s->nvals;
        }
        qsort(ser, f->nseries, sizeof *ser, cmp_series);
        for (size_t k = 1; k < f->nseries; k++)
            if (cmp_series(&ser[k - 1], &ser[k]) == 0) {
                *dup = f->name; /* the caller's copy: the block goes now */
                free(block);
                return NULL;
            }
        ser += f->nseries;
    }
    return g;
}

/* The family of that name in a sorted array, or NULL. */
static const reg_push_family *find_family(const reg_push_family *fams, size_t n, const char *name) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(fams[mid].name, name);
        if (c == 0)
            return &fams[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The stored series of the same labels as s in sorted old, or NULL. */
static const reg_push_series *find_series(const reg_push_family *old, const reg_push_series *s) {
    const reg_push_series *hit = bsearch(s, old->series, old->nseries, sizeof *s, cmp_series);
    return hit;
}

/* add = stored + pushed, for one series of a counter or histogram. 0, or -1 when the bucket
 * layouts differ. */
static int add_series(reg_type type, const reg_push_series *stored, const reg_push_series *pushed,
                      double *out) {
    if (type == REG_COUNTER) {
        out[0] = stored->vals[0] + pushed->vals[0];
        return 0;
    }
    if (stored->nvals != pushed->nvals)
        return -1;
    out[0] = stored->vals[0] + pushed->vals[0];
    out[1] = stored->vals[1] + pushed->vals[1];
    for (size_t i = 2; i < pushed->nvals; i += 2) {
        if (stored->vals[i] != pushed->vals[i])
            return -1;
        out[i] = pushed->vals[i];
        out[i + 1] = stored->vals[i + 1] + pushed->vals[i + 1];
    }
    return 0;
}

/* REG_PUSH_ADD of one family: src (the pushed family) becomes stored + pushed, series of
 * either side kept. REG_OK, REG_EINVAL (layouts differ; err says so), REG_ENOMEM. */
static int add_family(fam_src *src, const reg_push_family *old, char *err, size_t errlen) {
    const reg_push_family *pushed = &src->f;
    size_t n = old->nseries + pushed->nseries, nvals = 0;
    for (size_t i = 0; i < old->nseries; i++)
        nvals += old->series[i].nvals;
    for (size_t i = 0; i < pushed->nseries; i++)
        nvals += pushed->series[i].nvals;
    reg_push_series *ser = malloc((n ? n : 1) * sizeof *ser);
    double *vals = malloc((nvals ? nvals : 1) * sizeof *vals);
    if (ser == NULL || vals == NULL) {
        free(ser);
        free(vals);
        return REG_ENOMEM;
    }
    size_t k = 0;
    double *v = vals;
    for (size_t i = 0; i < pushed->nseries; i++) {
        const reg_push_series *s = &pushed->series[i];
        const reg_push_series *stored = find_series(old, s);
        ser[k] = *s;
        if (stored) {
            if (add_series(pushed->type, stored, s, v) != 0) {
                say(err, errlen,
                    "aggregating push of %s: bucket layout differs from the stored one",
                    pushed->name);
                free(ser);
                free(vals);
                return REG_EINVAL;
            }
            ser[k].vals = v;
            v += s->nvals;
        }
        k++;
    }
    for (size_t i = 0; i < old->nseries; i++) {
        const reg_push_series *s = &old->series[i];
        if (bsearch(s, pushed->series, pushed->nseries, sizeof *s, cmp_series) == NULL)
            ser[k++] = *s;
    }
    src->own_series = ser;
    src->own_vals = vals;
    src->f.series = ser;
    src->f.nseries = k;
    return REG_OK;
}

/* ---- applying a push --------------------------------------------------------------------- */

/* The families of the new state, in *out (malloc'ed; free_sources frees it): the body's, and
 * for POST and ADD the old state's families the body does not name. Pushed series arrays
 * must be sorted for REG_PUSH_ADD lookups: the pushed family is sorted into a copy. */
static void free_sources(fam_src *src, size_t n) {
    for (size_t i = 0; src && i < n; i++) {
        free(src[i].own_series);
        free(src[i].own_vals);
    }
    free(src);
}

static int sorted_copy(fam_src *src) {
    reg_push_series *copy = malloc((src->f.nseries ? src->f.nseries : 1) * sizeof *copy);
    if (copy == NULL)
        return REG_ENOMEM;
    memcpy(copy, src->f.series, src->f.nseries * sizeof *copy);
    qsort(copy, src->f.nseries, sizeof *copy, cmp_series);
    src->own_series = copy;
    src->f.series = copy;
    return REG_OK;
}

/* 1 when what an aggregating push adds keeps counters counters: counter values and
 * histogram counts finite and not negative (other types replace, and are not checked). */
static int increments_valid(const reg_push_family *f) {
    for (size_t i = 0; i < f->nseries; i++) {
        const reg_push_series *x = &f->series[i];
        if (f->type == REG_COUNTER && !(x->vals[0] >= 0 && isfinite(x->vals[0])))
            return 0;
        for (uint32_t k = 1; f->type == REG_HISTOGRAM && k < x->nvals;
             k += 2) /* _count, then each bucket count */
            if (!(x->vals[k] >= 0 && isfinite(x->vals[k])))
                return 0;
    }
    return 1;
}

static int gather_sources(const reg_push *p, const reg_group *old, fam_src **out, size_t *nout,
                          char *err, size_t errlen) {
    size_t nold = old && p->mode != REG_PUSH_REPLACE_ALL ? old->nfamilies : 0;
    size_t nbody = p->mode == REG_PUSH_FAILED ? 0 : p->nfamilies;
    if (p->mode == REG_PUSH_FAILED && old)
        nold = old->nfamilies;
    fam_src *src = calloc(nold + nbody + 1, sizeof *src);
    if (src == NULL)
        return REG_ENOMEM;
    size_t n = 0;
    int rc = REG_OK;
    for (size_t i = 0; i < nbody && rc == REG_OK; i++) {
        src[n].f = p->families[i];
        src[n].f.time = p->time;
        if (p->mode == REG_PUSH_ADD && !increments_valid(&p->families[i])) {
            say(err, errlen, "aggregating push of %s: counts must be finite and not negative",
                p->families[i].name);
            rc = REG_EINVAL;
            break;
        }
        const reg_push_family *stored =
            p->mode == REG_PUSH_ADD && old
                ? find_family(old->families, old->nfamilies, p->families[i].name)
                : NULL;
        if (stored && stored->type == src[n].f.type &&
            (stored->type == REG_COUNTER || stored->type == REG_HISTOGRAM)) {
            rc = sorted_copy(&src[n]);
            reg_push_series *sorted = src[n].own_series;
            src[n].own_series = NULL;
            if (rc == REG_OK)
                rc = add_family(&src[n], stored, err, errlen);
            free(sorted);
        }
        n++;
    }
    for (size_t i = 0; i < nold && rc == REG_OK; i++) {
        const reg_push_family *f = &old->families[i];
        int named = 0;
        for (size_t k = 0; k < nbody && !named; k++)
            named = strcmp(p->families[k].name, f->name) == 0;
        if (!named)
            src[n++].f = *f;
    }
    if (rc != REG_OK) {
        free_sources(src, n);
        return rc;
    }
    qsort(src, n, sizeof *src, cmp_src_name);
    *out = src;
    *nout = n;
    return REG_OK;
}

/* Checks of the body alone: names, shapes, no name twice. REG_OK or REG_EINVAL with err. */
static int check_body(const reg_push *p, char *err, size_t errlen) {
    for (size_t i = 0; i < p->nfamilies; i++) {
        const reg_push_family *f = &p->families[i];
        if (!reg_valid_metric_name(f->name, strlen(f->name)) ||
            !strcmp(f->name, REG_PUSH_TIME_NAME) || !strcmp(f->name, REG_PUSH_FAILURE_TIME_NAME)) {
            say(err, errlen, "metric name %s may not be pushed", f->name);
            return REG_EINVAL;
        }
        for (size_t k = 0; k < f->nseries; k++)
            if (!series_shape_ok(f->type, &f->series[k])) {
                say(err, errlen, "%s: a series' values do not fit its type", f->name);
                return REG_EINVAL;
            }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(p->families[k].name, f->name)) {
                say(err, errlen, "%s: family given twice", f->name);
                return REG_EINVAL;
            }
    }
    return REG_OK;
}

/* Names a push is checked against: the new state's own families, other groups' (the index
 * without this group's old families), and the registry's. */
typedef struct {
    reg_thread *t;
    const reg_group *old, *g;
} lookup;

/* type_of for a push (see clashes). Under push_mu and fam_mu. */
static int any_type_of(void *arg, const char *name, size_t len) {
    const lookup *c = arg;
    (void)len; /* name is NUL-terminated */
    const reg_push_family *own = find_family(c->g->families, c->g->nfamilies, name);
    if (own)
        return (int)own->type;
    const push_name *e = reg_strmap_get(c->t->reg->push_names, name, strlen(name));
    if (e && e->groups > (c->old && find_family(c->old->families, c->old->nfamilies, name)))
        return (int)e->type;
    const reg_family *rf = reg_family_find(c->t, name);
    return rf ? (int)reg_family_definition(rf)->type : -1;
}

/* Checks of the families the push brings (the body's, already in g) against other groups
 * and the registry's families. Families kept from the old state were checked when they were
 * pushed: a registry family made since (it may differ in help or labels, see registry.h) must
 * not refuse a later push of other families. Under push_mu and fam_mu. REG_OK or
 * REG_ECONFLICT with err naming the family. */
static int check_names(reg_thread *t, const reg_push *p, const reg_group *old, const reg_group *g,
                       char *err, size_t errlen) {
    for (size_t i = 0; p->mode != REG_PUSH_FAILED && i < p->nfamilies; i++) {
        const reg_push_family *f = find_family(g->families, g->nfamilies, p->families[i].name);
        if (f == NULL)
            continue; /* cannot happen: the body's families are all in g */
        const push_name *e = reg_strmap_get(t->reg->push_names, f->name, strlen(f->name));
        size_t others = e ? e->groups : 0;
        if (others > 0 && old && find_family(old->families, old->nfamilies, f->name))
            others--; /* this group's own earlier push of the name */
        if (others > 0 && e->type != f->type) {
            say(err, errlen, "%s: its type differs from the same metric pushed to another group",
                f->name);
            return REG_ECONFLICT;
        }
        const reg_family *rf = reg_family_find(t, f->name);
        if (rf && !fits_family(rf, p, f)) {
            say(err, errlen,
                "%s: conflicts with the metric of that name abacus already has (its type, help, "
                "label names or constant labels differ)",
                f->name);
            return REG_ECONFLICT;
        }
        lookup ctx = {t, old, g};
        char with[REG_MAX_NAME + 16];
        if (clashes(f->name, f->type, any_type_of, &ctx, with)) {
            char msg[2 * REG_MAX_NAME + 64];
            snprintf(msg, sizeof msg,
                     "%s: collides with the metric named %s (one renders the "
                     "other's name)",
                     f->name, with);
            say(err, errlen, "%s", msg);
            return REG_ECONFLICT;
        }
    }
    return REG_OK;
}

/* Count g's names in the index (its families and the two push-time gauges). Under push_mu
 * and fam_mu. REG_OK, or REG_ENOMEM (the index is as before). */
static int names_add(reg_registry *r, const reg_group *g) {
    if (name_count(r, REG_PUSH_TIME_NAME, REG_GAUGE) != REG_OK)
        return REG_ENOMEM;
    if (name_count(r, REG_PUSH_FAILURE_TIME_NAME, REG_GAUGE) != REG_OK) {
        name_count(r, REG_PUSH_TIME_NAME, -1);
        return REG_ENOMEM;
    }
    for (size_t i = 0; i < g->nfamilies; i++) {
        if (name_count(r, g->families[i].name, (int)g->families[i].type) == REG_OK)
            continue;
        while (i-- > 0)
            name_count(r, g->families[i].name, -1);
        name_count(r, REG_PUSH_TIME_NAME, -1);
        name_count(r, REG_PUSH_FAILURE_TIME_NAME, -1);
        return REG_ENOMEM;
    }
    return REG_OK;
}

/* Uncount g's names. Under push_mu and fam_mu. Cannot fail. */
static void names_drop(reg_registry *r, const reg_group *g) {
    for (size_t k = 0; k < g->nfamilies; k++)
        name_count(r, g->families[k].name, -1);
    name_count(r, REG_PUSH_TIME_NAME, -1);
    name_count(r, REG_PUSH_FAILURE_TIME_NAME, -1);
}

/* Publish g in place of old (or as new). Under push_mu. False when out of memory. */
static bool group_link(reg_registry *r, reg_group *g, reg_group *old) {
    atomic_store_explicit(&g->refs, 1, memory_order_relaxed); /* published by the put below */
    REG_TSAN_RELEASE(g); /* fully built: pairs with the acquire in group_find and the compare */
    reg_writer_enter(r);
    bool ok;
    if (old) {
        void *previous = NULL;
        ok = ck_hs_set(&r->groups, (unsigned long)g->key.hash, g, &previous);
        assert(!ok || previous == old);
    } else {
        ok = ck_hs_put_unique(&r->groups, (unsigned long)g->key.hash, g);
    }
    reg_writer_leave();
    if (ok && !old)
        atomic_fetch_add_explicit(&r->ngroups, 1, memory_order_relaxed);
    return ok;
}

/* Reserve the growth of the series total from old to g against the registry-wide limit.
 * Relaxed: one atomic counter shared with series creation (series.c), reserve then check. */
static int reserve_series(reg_registry *r, const reg_group *old, const reg_group *g) {
    size_t before = old ? old->nseries : 0;
    if (g->nseries <= before) {
        atomic_fetch_sub_explicit(&r->nseries, before - g->nseries, memory_order_relaxed);
        return REG_OK;
    }
    size_t grow = g->nseries - before;
    size_t had = atomic_fetch_add_explicit(&r->nseries, grow, memory_order_relaxed);
    if (r->opt.max_series && had + grow > r->opt.max_series) {
        atomic_fetch_sub_explicit(&r->nseries, grow, memory_order_relaxed);
        return REG_ELIMIT;
    }
    return REG_OK;
}

static void unreserve_series(reg_registry *r, const reg_group *old, const reg_group *g) {
    size_t before = old ? old->nseries : 0;
    if (g->nseries <= before)
        atomic_fetch_add_explicit(&r->nseries, before - g->nseries, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&r->nseries, g->nseries - before, memory_order_relaxed);
}

/* Build the new state of p's group from its old state. NULL with *rc and err on failure. */
static reg_group *build_state(reg_registry *r, const reg_push *p, const reg_group *old, int *rc,
                              char *err, size_t errlen) {
    fam_src *src = NULL;
    size_t n = 0;
    *rc = gather_sources(p, old, &src, &n, err, errlen);
    if (*rc != REG_OK)
        return NULL;
    const char *dup = NULL;
    reg_group *g = pack(r, p->key, p->key_len, src, n, &dup);
    free_sources(src, n);
    if (g == NULL) {
        *rc = dup ? REG_EINVAL : REG_ENOMEM;
        if (dup)
            say(err, errlen, "%s: a series is given twice", dup);
        return NULL;
    }
    int failed = p->mode == REG_PUSH_FAILED;
    g->push_time = failed ? (old ? old->push_time : 0) : p->time;
    g->failure_time = failed ? p->time : (old ? old->failure_time : 0);
    g->ttl_ns = failed && old ? old->ttl_ns : p->ttl_ns;
    g->expires_ns =
        failed && old ? old->expires_ns : (g->ttl_ns ? reg_now_mono_ns() + g->ttl_ns : 0);
    return g;
}

/* Link g in place of old: series reserved, names counted, published, old's link dropped.
 * Under push_mu. REG_OK; REG_ECONFLICT, REG_ELIMIT or REG_ENOMEM with err (nothing changed,
 * g not linked). */
static int group_install(reg_thread *t, const reg_push *p, reg_group *old, reg_group *g, char *err,
                         size_t errlen) {
    reg_registry *r = t->reg;
    pthread_mutex_lock(&r->fam_mu);
    int rc = check_names(t, p, old, g, err, errlen);
    if (rc == REG_OK && (rc = reserve_series(r, old, g)) != REG_OK)
        say(err, errlen, "%s", "the series limit is reached");
    if (rc == REG_OK && (rc = names_add(r, g)) != REG_OK)
        unreserve_series(r, old, g);
    if (rc == REG_OK && !group_link(r, g, old)) {
        names_drop(r, g);
        unreserve_series(r, old, g);
        rc = REG_ENOMEM;
    }
    if (rc == REG_OK && old)
        names_drop(r, old);
    pthread_mutex_unlock(&r->fam_mu);
    if (rc == REG_OK && old)
        group_unref(r, old); /* its link */
    if (rc == REG_ENOMEM)
        say(err, errlen, "%s", "out of memory");
    return rc;
}

int reg_group_push(reg_thread *t, const reg_push *p, char *err, size_t errlen) {
    reg_registry *r = t->reg;
    if (err && errlen)
        err[0] = '\0';
    if (p->mode != REG_PUSH_FAILED) {
        int rc = check_body(p, err, errlen);
        if (rc != REG_OK)
            return rc;
    }
    pthread_mutex_lock(&r->push_mu);
    reg_group *old = group_find(r, p->key, p->key_len);
    int rc;
    reg_group *g = build_state(r, p, old, &rc, err, errlen);
    if (g != NULL && (rc = group_install(t, p, old, g, err, errlen)) != REG_OK)
        free(g); /* never published */
    pthread_mutex_unlock(&r->push_mu);
    return rc;
}

/* Unlink g: the set, the index, the series total, then its link. Under push_mu. */
static void group_unlink(reg_registry *r, reg_group *g) {
    pthread_mutex_lock(&r->fam_mu);
    names_drop(r, g);
    pthread_mutex_unlock(&r->fam_mu);
    reg_writer_enter(r);
    void *removed = ck_hs_remove(&r->groups, (unsigned long)g->key.hash, &g->key);
    reg_writer_leave();
    assert(removed == g);
    (void)removed;
    atomic_fetch_sub_explicit(&r->ngroups, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&r->nseries, g->nseries, memory_order_relaxed);
    group_unref(r, g);
}

int reg_group_delete(reg_registry *r, const char *key, size_t key_len) {
    pthread_mutex_lock(&r->push_mu);
    reg_group *g = group_find(r, key, key_len);
    if (g)
        group_unlink(r, g);
    pthread_mutex_unlock(&r->push_mu);
    return g ? REG_OK : REG_ENOTFOUND;
}

/* Unlink every state that expire says should go. Under push_mu. Returns how many. */
static size_t unlink_where(reg_registry *r, uint64_t now_ns) {
    size_t n = 0;
    for (;;) {
        /* ck_hs_next may not run across a removal: find one, remove it, start over. Groups
         * are few next to series, and a pass that removes nothing walks them once. */
        ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
        void *obj;
        reg_group *victim = NULL;
        while (victim == NULL && ck_hs_next(&r->groups, &it, &obj)) {
            reg_group *g = obj;
            if (now_ns == 0 || (g->expires_ns && now_ns >= g->expires_ns))
                victim = g;
        }
        if (victim == NULL)
            return n;
        group_unlink(r, victim);
        n++;
    }
}

size_t reg_group_wipe(reg_registry *r) {
    pthread_mutex_lock(&r->push_mu);
    size_t n = unlink_where(r, 0);
    pthread_mutex_unlock(&r->push_mu);
    return n;
}

size_t reg_groups_reap(reg_registry *r, uint64_t now_ns) {
    pthread_mutex_lock(&r->push_mu);
    size_t n = unlink_where(r, now_ns ? now_ns : 1);
    pthread_mutex_unlock(&r->push_mu);
    return n;
}

/* ---- readers ----------------------------------------------------------------------------- */

static int cmp_group_key(const void *a, const void *b) {
    const reg_group *x = *(reg_group *const *)a, *y = *(reg_group *const *)b;
    size_t m = x->key.klen < y->key.klen ? x->key.klen : y->key.klen;
    int c = memcmp(x->key.key, y->key.key, m);
    if (c != 0)
        return c;
    return x->key.klen < y->key.klen ? -1 : x->key.klen > y->key.klen;
}

long reg_group_snapshot(reg_thread *t, reg_group ***out, size_t *cap) {
    reg_registry *r = t->reg;
    size_t n = 0;
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *obj;
    while (ck_hs_next_spmc(&r->groups, &it, &obj)) {
        reg_group *g = obj;
        REG_TSAN_ACQUIRE(g);
        /* Its last reference gone: replaced since the walk reached its slot; the state that
         * replaced it is linked under the same key (or the group was deleted). */
        int held = 0;
        for (int tries = 0; g && !held && tries < 64; tries++) {
            held = group_hold(g);
            if (!held)
                g = group_find(r, g->key.key, g->key.klen);
        }
        if (!held)
            continue; /* deleted, or replaced over and over: a later scrape shows it */
        if (n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            reg_group **grown = realloc(*out, nc * sizeof *grown);
            if (grown == NULL) {
                group_unref(r, g);
                reg_group_release_all(r, *out, n);
                return -1;
            }
            *out = grown;
            *cap = nc;
        }
        (*out)[n++] = g;
    }
    if (n < 2)
        return (long)n;
    /* A group deleted and pushed anew during the walk can be met twice (old slot, then its
     * new one): keep one state per key. */
    qsort(*out, n, sizeof **out, cmp_group_key);
    size_t kept = 1;
    for (size_t i = 1; i < n; i++) {
        if (cmp_group_key(&(*out)[kept - 1], &(*out)[i]) == 0)
            group_unref(r, (*out)[i]);
        else
            (*out)[kept++] = (*out)[i];
    }
    return (long)kept;
}

void reg_group_release_all(reg_registry *r, reg_group **g, size_t n) {
    for (size_t i = 0; i < n; i++)
        group_unref(r, g[i]);
}

const char *reg_group_key(const reg_group *g, size_t *len) {
    if (len)
        *len = g->key.klen;
    return g->key.key;
}

double reg_group_push_time(const reg_group *g) {
    return g->push_time;
}

double reg_group_failure_time(const reg_group *g) {
    return g->failure_time;
}

size_t reg_group_family_count(const reg_group *g) {
    return g->nfamilies;
}

const reg_push_family *reg_group_families(const reg_group *g) {
    return g->families;
}

const reg_push_family *reg_group_family(const reg_group *g, const char *name) {
    return find_family(g->families, g->nfamilies, name);
}

size_t reg_group_total(const reg_registry *r) {
    return atomic_load_explicit(&((reg_registry *)r)->ngroups, memory_order_relaxed);
}
