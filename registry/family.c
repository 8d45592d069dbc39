/* family.c - families: definition checks, the registry's family set, holds and removal.
 *
 * The family set is a ck_hs keyed by name: lock-free lookups, writers serialised by
 * reg_registry.fam_mu. A family's memory lives while it is linked or held (refs) and then
 * one grace period more (retired through the epoch), so a reader inside a section or a
 * holder never sees it freed.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- definitions ------------------------------------------------------------------------- */

/* Shared by the metric and label name rules: [a-zA-Z_(:)][a-zA-Z0-9_(:)]*, 1..REG_MAX_NAME
 * bytes. Cannot fail. */
static int valid_name(const char *s, size_t len, int colon_ok) {
    if (s == NULL || len == 0 || len > REG_MAX_NAME)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon_ok && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

/* 1 or 0; cannot fail. */
int reg_valid_metric_name(const char *s, size_t len) {
    return valid_name(s, len, 1);
}

/* 1 or 0; cannot fail. */
int reg_valid_label_name(const char *s, size_t len) {
    return valid_name(s, len, 0);
}

/* 1 or 0; cannot fail. */
int reg_name_has_suffix(const char *name, size_t len, const char *suffix) {
    size_t k = strlen(suffix);
    return len >= k && memcmp(name + len - k, suffix, k) == 0;
}

int reg_reserved_label_name(reg_type t, const char *s, size_t len) {
    if (s == NULL)
        return 0;
    if (len >= 2 && s[0] == '_' && s[1] == '_')
        return 1;
    if (t == REG_HISTOGRAM && len == 2 && memcmp(s, "le", 2) == 0)
        return 1;
    return t == REG_SUMMARY && len == 8 && memcmp(s, "quantile", 8) == 0;
}

/* 1 when s is a NUL-terminated valid name (at most REG_MAX_NAME bytes read past s). */
static int valid_cstr_name(const char *s, int colon_ok) {
    return s != NULL && valid_name(s, strnlen(s, REG_MAX_NAME + 1), colon_ok);
}

/* Label names and constant labels: valid, not reserved for the type, none twice, every
 * constant with a value. 1 or 0. */
static int labels_valid(const reg_family_def *d) {
    if (d->nlabels + d->nconst > REG_MAX_LABELS)
        return 0;
    for (size_t i = 0; i < d->nlabels + d->nconst; i++) {
        const char *n = i < d->nlabels ? d->labels[i] : d->const_names[i - d->nlabels];
        if (!valid_cstr_name(n, 0) || reg_reserved_label_name(d->type, n, strlen(n)))
            return 0;
        for (size_t j = 0; j < i; j++) {
            const char *m = j < d->nlabels ? d->labels[j] : d->const_names[j - d->nlabels];
            if (strcmp(n, m) == 0)
                return 0;
        }
        if (i >= d->nlabels && d->const_values[i - d->nlabels] == NULL)
            return 0;
    }
    return 1;
}

/* Histogram buckets: at most REG_MAX_BUCKETS, strictly increasing, no explicit +Inf (it is
 * implied; a second one would repeat le="+Inf"). 1 or 0. */
static int buckets_valid(const reg_family_def *d) {
    if (d->nbuckets > REG_MAX_BUCKETS)
        return 0;
    for (size_t i = 0; i < d->nbuckets; i++) {
        if (isnan(d->buckets[i]) || (i > 0 && !(d->buckets[i] > d->buckets[i - 1])))
            return 0;
    }
    return !(d->nbuckets > 0 && isinf(d->buckets[d->nbuckets - 1]) &&
             d->buckets[d->nbuckets - 1] > 0);
}

/* Summary objectives in (0,1) with an error in (0,1) (0 would mean no compression: a window
 * holding every sample), and window bounds that keep one series' state small (every flush
 * merges into each age bucket). 1 or 0. */
static int objectives_valid(const reg_family_def *d) {
    if (d->nobjectives > REG_MAX_QUANTILES)
        return 0;
    for (size_t i = 0; i < d->nobjectives; i++) {
        double q = d->objectives[i].quantile, e = d->objectives[i].error;
        if (!(q > 0 && q < 1) || !(e > 0 && e < 1))
            return 0;
    }
    return d->age_buckets <= REG_MAX_AGE_BUCKETS && d->buf_cap <= REG_MAX_BUF_CAP;
}

/* 1 when d is a definition reg_family_add accepts. */
int reg_family_def_valid(const reg_family_def *d) {
    if (!valid_cstr_name(d->name, 1) || (unsigned)d->type > REG_UNTYPED || !labels_valid(d))
        return 0;
    if (d->type == REG_HISTOGRAM)
        return buckets_valid(d);
    if (d->type == REG_SUMMARY)
        return objectives_valid(d);
    return 1;
}

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static char **dup_strv(const char *const *v, size_t n, int *fail) {
    if (n == 0)
        return NULL;
    char **out = calloc(n, sizeof(char *));
    if (out == NULL) {
        *fail = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (out[i] == NULL)
            *fail = 1;
    }
    return out;
}

static void *dup_mem(const void *p, size_t n, int *fail) {
    if (n == 0)
        return NULL;
    void *out = malloc(n);
    if (out == NULL) {
        *fail = 1;
        return NULL;
    }
    memcpy(out, p, n);
    return out;
}

static void free_strv(const char *const *v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        free((void *)v[i]);
    free((void *)v);
}

static void def_free(reg_family_def *d) {
    free((void *)d->name);
    free((void *)d->help);
    free((void *)d->unit);
    free_strv(d->labels, d->nlabels);
    free_strv(d->const_names, d->nconst);
    free_strv(d->const_values, d->nconst);
    free((void *)d->buckets);
    free((void *)d->objectives);
}

/* Deep copy; 0 or -1 when out of memory (dst then holds what was copied, for def_free). */
static int def_copy(reg_family_def *dst, const reg_family_def *src) {
    int fail = 0;
    *dst = *src;
    dst->name = strdup(src->name);
    dst->help = dup_or_null(src->help);
    dst->unit = dup_or_null(src->unit);
    fail |= dst->name == NULL || (src->help && !dst->help) || (src->unit && !dst->unit);
    dst->labels = (const char *const *)dup_strv(src->labels, src->nlabels, &fail);
    dst->const_names = (const char *const *)dup_strv(src->const_names, src->nconst, &fail);
    dst->const_values = (const char *const *)dup_strv(src->const_values, src->nconst, &fail);
    dst->buckets = src->type == REG_HISTOGRAM
                       ? dup_mem(src->buckets, src->nbuckets * sizeof(double), &fail)
                       : NULL;
    if (src->type != REG_HISTOGRAM)
        dst->nbuckets = 0;
    dst->objectives =
        src->type == REG_SUMMARY
            ? dup_mem(src->objectives, src->nobjectives * sizeof(reg_objective), &fail)
            : NULL;
    if (src->type != REG_SUMMARY)
        dst->nobjectives = 0;
    return fail ? -1 : 0;
}

static int str_eq(const char *a, const char *b) {
    return (a == NULL || b == NULL)
               ? (a == NULL && (b == NULL || *b == '\0')) || (b == NULL && *a == '\0')
               : strcmp(a, b) == 0;
}

int reg_family_matches(const reg_family *f, const reg_family_def *d) {
    const reg_family_def *e = &f->def;
    if (strcmp(e->name, d->name) != 0 || e->type != d->type || !str_eq(e->help, d->help) ||
        !str_eq(e->unit, d->unit) || e->nlabels != d->nlabels || e->nconst != d->nconst ||
        e->ttl_ns != d->ttl_ns || e->max_series != d->max_series || e->flags != d->flags)
        return 0;
    for (size_t i = 0; i < d->nlabels; i++)
        if (strcmp(e->labels[i], d->labels[i]) != 0)
            return 0;
    for (size_t i = 0; i < d->nconst; i++)
        if (strcmp(e->const_names[i], d->const_names[i]) != 0 ||
            strcmp(e->const_values[i], d->const_values[i]) != 0)
            return 0;
    if (d->type == REG_HISTOGRAM &&
        (e->nbuckets != d->nbuckets ||
         (d->nbuckets && memcmp(e->buckets, d->buckets, d->nbuckets * sizeof(double)) != 0)))
        return 0;
    if (d->type == REG_SUMMARY &&
        (e->nobjectives != d->nobjectives || e->max_age_ns != d->max_age_ns ||
         e->age_buckets != d->age_buckets || e->buf_cap != d->buf_cap ||
         (d->nobjectives &&
          memcmp(e->objectives, d->objectives, d->nobjectives * sizeof(reg_objective)) != 0)))
        return 0;
    return 1;
}

const reg_family_def *reg_family_definition(const reg_family *f) {
    return &f->def;
}

/* Relaxed reads: figures for self-metrics, exact only when the family is quiet; nothing is
 * read through them. The writers update them under the family mutex. */
size_t reg_family_series_count(const reg_family *f) {
    return atomic_load_explicit(&((reg_family *)f)->nseries, memory_order_relaxed);
}

uint64_t reg_family_refused(const reg_family *f) {
    return atomic_load_explicit(&((reg_family *)f)->refused, memory_order_relaxed);
}

/* ---- the family set ---------------------------------------------------------------------- */

static unsigned long fam_hash_cb(const void *obj, unsigned long seed) {
    (void)seed;
    return (unsigned long)((const reg_family *)obj)->key.hash;
}

/* The second argument is always a reg_probe (lookups and removal use probes). */
static bool fam_compare_cb(const void *stored, const void *key) {
    const reg_family *f = stored;
    const reg_probe *p = key;
    REG_TSAN_ACQUIRE(f); /* ck_hs calls this before get returns: pairs with the publish */
    return f->key.hash == p->hash && f->key.klen == p->klen &&
           memcmp(f->def.name, p->key, p->klen) == 0;
}

/* False when out of memory. */
bool reg_families_init(reg_registry *r) {
    return reg_hs_init(r, &r->families, fam_hash_cb, fam_compare_cb, 64, r->seed);
}

static reg_probe name_probe(const reg_registry *r, const char *name) {
    reg_probe p = {0, name, strlen(name)};
    p.hash = reg_hash_bytes(name, p.klen, r->seed);
    return p;
}

/* Free a family now: no reader can reach it. Its series were all killed. Cannot fail. */
void reg_family_free_now(struct reg_family *f) {
    for (size_t i = 0; f->lpre && i < f->def.nlabels; i++)
        free(f->lpre[i]);
    free(f->lpre);
    free(f->lpre_len);
    ck_hs_destroy(&f->hs);
    reg_family_view_free(f);
    pthread_mutex_destroy(&f->mu);
    def_free(&f->def);
    free(f);
}

/* Registry teardown: free every family and series directly (no concurrent users). */
void reg_families_destroy(reg_registry *r) {
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *obj;
    while (ck_hs_next(&r->families, &it, &obj)) {
        reg_family *f = obj;
        ck_hs_iterator_t si = CK_HS_ITERATOR_INITIALIZER;
        void *s;
        while (ck_hs_next(&f->hs, &si, &s))
            reg_series_free_now(reg_series_untag(s));
        reg_family_free_now(f);
    }
    ck_hs_destroy(&r->families);
}

reg_family *reg_family_find(reg_thread *t, const char *name) {
    reg_registry *r = t->reg;
    reg_probe p = name_probe(r, name);
    reg_family *f = ck_hs_get(&r->families, (unsigned long)p.hash, &p);
    /* Pairs with the release before ck_hs_put in reg_family_add. */
    REG_TSAN_ACQUIRE(f);
    return f;
}

/* Render each label's `name="` prefix once; 0 or -1 when out of memory. */
static int label_prefixes(reg_family *f) {
    size_t n = f->def.nlabels;
    if (n == 0)
        return 0;
    f->lpre = calloc(n, sizeof(char *));
    f->lpre_len = calloc(n, sizeof *f->lpre_len);
    if (f->lpre == NULL || f->lpre_len == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(f->def.labels[i]); /* <= REG_MAX_NAME: checked by def_valid */
        f->lpre[i] = malloc(len + 4);
        if (f->lpre[i] == NULL)
            return -1;
        int k = sprintf(f->lpre[i], "%s%s=\"", i ? "," : "", f->def.labels[i]);
        f->lpre_len[i] = (uint16_t)k;
        f->lpre_total += (size_t)k;
    }
    return 0;
}

/* Kill every series of f under f->mu, waiting for updaters to leave. Returns the number. */
static size_t kill_all_locked(reg_registry *r, reg_family *f) {
    size_t n = 0;
    for (;;) {
        ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
        void *s;
        if (!ck_hs_next(&f->hs, &it, &s))
            break;
        n += (size_t)reg_series_kill_locked(r, f, reg_series_untag(s), 1);
    }
    return n;
}

/* A new, unpublished family for a valid def; NULL when out of memory. */
static reg_family *family_new(reg_registry *r, const reg_family_def *def) {
    reg_family *f = reg_alloc_lines(sizeof(*f));
    if (f == NULL)
        return NULL;
    if (def_copy(&f->def, def) != 0) {
        def_free(&f->def);
        free(f);
        return NULL;
    }
    f->reg = r;
    f->key.key = f->def.name;
    f->key.klen = strlen(def->name);
    f->key.hash = reg_hash_bytes(def->name, f->key.klen, r->seed);
    f->nvals = def->type == REG_HISTOGRAM ? def->nbuckets + 2 : 1;
    atomic_init(&f->refs, 1);
    /* Adaptive: the lock is held for a lookup and an insert (the series is built before it is
     * taken), far shorter than the futex sleep and wake-up a plain mutex pays for every
     * contended lock when two threads create series in one family. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&f->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    if (!reg_series_hs_init(r, f)) {
        pthread_mutex_destroy(&f->mu);
        def_free(&f->def);
        free(f);
        return NULL;
    }
    if (label_prefixes(f) != 0) {
        reg_family_free_now(f);
        return NULL;
    }
    return f;
}

/* Link a new family under fam_mu: in place of old (ck_hs_set swaps the slot, so a lookup
 * finds one or the other), or as a new name. False when out of memory (nothing linked). */
static bool link_locked(reg_registry *r, reg_family *f, reg_family *old) {
    /* Fully initialised by family_new; pairs with the acquire in reg_family_find. */
    REG_TSAN_RELEASE(f);
    reg_writer_enter(r);
    bool ok;
    if (old) {
        void *previous = NULL;
        ok = ck_hs_set(&r->families, (unsigned long)f->key.hash, f, &previous);
        assert(!ok || previous == old);
    } else {
        ok = ck_hs_put_unique(&r->families, (unsigned long)f->key.hash, f);
    }
    reg_writer_leave();
    if (ok && !old)
        atomic_fetch_add_explicit(&r->nfamilies, 1, memory_order_relaxed);
    return ok;
}

/* Kill an unlinked family: mark it dead, remove its series, drop the registry's link.
 * Not under fam_mu. Cannot fail. */
static void family_kill(reg_registry *r, reg_family *f) {
    pthread_mutex_lock(&f->mu);
    /* Under mu: a creator that takes mu after this sees dead and fails with REG_EGONE;
     * updaters already inside a series are waited for by kill_all_locked. */
    atomic_store_explicit(&f->dead, 1, memory_order_relaxed);
    kill_all_locked(r, f);
    pthread_mutex_unlock(&f->mu);
    reg_family_release(r, f); /* the registry's link */
}

/* Free a family that was never published, with any series made in it (counted in the
 * registry's totals, so removed the usual way). Cannot fail. */
static void unpublished_free(reg_registry *r, reg_family *f) {
    pthread_mutex_lock(&f->mu);
    kill_all_locked(r, f);
    pthread_mutex_unlock(&f->mu);
    reg_family_free_now(f);
}

int reg_family_add(reg_thread *t, const reg_family_def *def, reg_family **out) {
    reg_registry *r = t->reg;
    *out = NULL;
    if (def == NULL || !reg_family_def_valid(def))
        return REG_EINVAL;
    reg_family *f = reg_family_find(t, def->name);
    if (f == NULL) {
        reg_family *nf = family_new(r, def);
        if (nf == NULL)
            return REG_ENOMEM;
        pthread_mutex_lock(&r->fam_mu);
        f = reg_family_find(t, def->name);
        if (f == NULL && reg_groups_fit_locked(r, def) != REG_OK) {
            pthread_mutex_unlock(&r->fam_mu);
            reg_family_free_now(nf);
            return REG_ECONFLICT;
        }
        if (f == NULL) {
            bool ok = link_locked(r, nf, NULL);
            pthread_mutex_unlock(&r->fam_mu);
            if (!ok) {
                reg_family_free_now(nf);
                return REG_ENOMEM;
            }
            *out = nf;
            return REG_OK;
        }
        pthread_mutex_unlock(&r->fam_mu);
        reg_family_free_now(nf); /* never published: another creator won */
    }
    if (!reg_family_matches(f, def))
        return REG_ECONFLICT;
    *out = f;
    return REG_OK;
}

int reg_family_replace(reg_thread *t, const reg_family_def *def, reg_family **out) {
    reg_registry *r = t->reg;
    *out = NULL;
    if (def == NULL || !reg_family_def_valid(def))
        return REG_EINVAL;
    reg_family *old = reg_family_find(t, def->name);
    if (old && reg_family_matches(old, def)) {
        *out = old;
        return REG_OK;
    }
    reg_family *f = family_new(r, def);
    if (f == NULL)
        return REG_ENOMEM;
    /* A family without labels has its one series before it is published: a reader that
     * finds the new family never finds it empty (a scrape would skip it: neither old nor new). */
    int touched = REG_OK;
    if (def->nlabels == 0) {
        static const char *const none[1] = {NULL};
        touched = reg_touch(t, f, none);
        if (touched == REG_ENOMEM) {
            unpublished_free(r, f);
            return REG_ENOMEM;
        }
    }
    pthread_mutex_lock(&r->fam_mu);
    old = reg_family_find(t, def->name); /* again: writers are serialised only from here */
    if (old && reg_family_matches(old, def)) {
        pthread_mutex_unlock(&r->fam_mu);
        unpublished_free(r, f);
        *out = old;
        return REG_OK;
    }
    if (reg_groups_fit_locked(r, def) != REG_OK) {
        pthread_mutex_unlock(&r->fam_mu);
        unpublished_free(r, f);
        return REG_ECONFLICT;
    }
    bool ok = link_locked(r, f, old);
    pthread_mutex_unlock(&r->fam_mu);
    if (!ok) {
        unpublished_free(r, f);
        return REG_ENOMEM;
    }
    if (old)
        family_kill(r, old);
    *out = f;
    return touched; /* REG_OK, or REG_ELIMIT: linked, but its series was refused */
}

int reg_family_hold(reg_family *f) {
    /* Increment unless zero: a family at zero is already retired. The acquire pairs with the
     * release decrement in reg_family_release so a holder sees a consistent family. */
    uint64_t n = atomic_load_explicit(&f->refs, memory_order_relaxed);
    do {
        if (n == 0)
            return REG_EGONE;
    } while (!atomic_compare_exchange_weak_explicit(&f->refs, &n, n + 1, memory_order_acquire,
                                                    memory_order_relaxed));
    return REG_OK;
}

void reg_family_release(reg_registry *r, reg_family *f) {
    /* Release pairs with the acquire in reg_family_hold; the last one out retires. */
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        reg_retire_family(r, f);
}

int reg_family_remove(reg_registry *r, const char *name) {
    pthread_mutex_lock(&r->fam_mu);
    reg_probe p = name_probe(r, name);
    reg_writer_enter(r);
    reg_family *f = ck_hs_remove(&r->families, (unsigned long)p.hash, &p);
    reg_writer_leave();
    if (f)
        atomic_fetch_sub_explicit(&r->nfamilies, 1, memory_order_relaxed);
    pthread_mutex_unlock(&r->fam_mu);
    if (f == NULL)
        return REG_ENOTFOUND;
    family_kill(r, f);
    return REG_OK;
}

int reg_family_reset(reg_registry *r, reg_family *f) {
    pthread_mutex_lock(&f->mu);
    kill_all_locked(r, f);
    pthread_mutex_unlock(&f->mu);
    return REG_OK;
}

size_t reg_foreach_family(reg_thread *t, int (*fn)(void *arg, reg_family *f), void *arg) {
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *obj;
    size_t n = 0;
    while (ck_hs_next_spmc(&t->reg->families, &it, &obj)) {
        reg_family *f = obj;
        REG_TSAN_ACQUIRE(f); /* pairs with the release before ck_hs_put */
        n++;
        if (fn(arg, f))
            break;
    }
    return n;
}

/* One TTL pass over f. Called by the reaper inside its section. Returns series removed. */
size_t reg_family_reap(reg_registry *r, struct reg_family *f, uint64_t now_ns) {
    size_t n = 0, cap = 0, cnt = 0;
    struct reg_series **victims = NULL;
    /* In the reaper's 32-bit clock, which wraps: ages compare as differences, and a TTL is
     * capped at half the wrap. Rounded down, so a series may expire up to one tick (16.8 ms)
     * early; a TTL under a tick expires it on the first pass that finds it idle. */
    uint32_t now_t = (uint32_t)(now_ns >> REG_REAP_SHIFT);
    uint64_t ttl_t = f->def.ttl_ns >> REG_REAP_SHIFT;
    if (ttl_t > UINT32_MAX / 2)
        ttl_t = UINT32_MAX / 2;
    pthread_mutex_lock(&f->mu);
    ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
    void *obj;
    /* First decide, then remove: removing while iterating one set is not allowed. */
    while (ck_hs_next(&f->hs, &it, &obj)) {
        struct reg_series *s = reg_series_untag(obj);
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        uint32_t seq = (uint32_t)(st >> REG_ST_SEQ_SHIFT);
        if ((st & REG_ST_INFL_MASK) != 0 || seq != s->reap_seq) {
            s->reap_seq = seq; /* updated since the last pass: restart its TTL */
            s->reap_t = now_t;
            continue;
        }
        if ((uint32_t)(now_t - s->reap_t) < ttl_t)
            continue;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct reg_series **nv = realloc(victims, nc * sizeof(*nv));
            if (nv == NULL)
                break; /* try the rest next pass */
            victims = nv;
            cap = nc;
        }
        victims[cnt++] = s;
    }
    for (size_t i = 0; i < cnt; i++) {
        struct reg_series *s = victims[i];
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        if ((uint32_t)(st >> REG_ST_SEQ_SHIFT) != s->reap_seq)
            continue; /* updated since we looked */
        n += (size_t)reg_series_kill_locked(r, f, s, 0);
    }
    /* Tombstones from removals slow probing; rebuild once they outnumber live entries. */
    struct ck_hs_stat stat;
    ck_hs_stat(&f->hs, &stat);
    if (stat.tombstones > 64 && stat.tombstones > stat.n_entries) {
        reg_writer_enter(r);
        ck_hs_rebuild(&f->hs);
        reg_writer_leave();
    }
    pthread_mutex_unlock(&f->mu);
    free(victims);
    return n;
}
