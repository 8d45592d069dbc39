/* strmap.c - a small string-keyed hash map (reg_strmap_*), shared so that no module writes
 * its own table keyed by names.
 *
 * Open addressing with linear probing over a power-of-two slot array, at most half full. Keys
 * are byte strings with a length (NULs allowed); the full hash is kept per slot so a probe
 * compares bytes only when the hashes agree. Keys may come from senders, so each map hashes
 * with its own seed, derived from one getrandom() value per process: nobody outside can
 * choose keys that all land in one probe run.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

#include "registry.h"

typedef struct {
    const char *key; /* NULL: empty slot */
    size_t len;
    uint64_t hash;
    void *val;
} strmap_slot;

struct reg_strmap {
    strmap_slot *slots; /* NULL until the first put: an empty map costs one small block */
    size_t cap, n;
    uint64_t seed;
    unsigned flags;
};

#define STRMAP_MIN_CAP 8

/* A seed per map: one random value per process, mixed with a per-map count, so creating a
 * map costs no system call. Relaxed atomics: only the values matter, nothing is published
 * through them (two threads racing to initialise both store a random value; either is
 * fine). */
static uint64_t strmap_seed(void) {
    static _Atomic uint64_t base, count;
    uint64_t b = atomic_load_explicit(&base, memory_order_relaxed);
    if (!b) {
        if (getrandom(&b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
            /* Entropy pool not ready (early boot): the clock and an address still differ
             * from run to run. */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            b = reg_hash_bytes(&ts, sizeof ts, (uint64_t)(uintptr_t)&ts);
        }
        b |= 1;
        atomic_store_explicit(&base, b, memory_order_relaxed);
    }
    uint64_t k = atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return reg_hash_bytes(&k, sizeof k, b);
}

/* NULL when out of memory. */
reg_strmap *reg_strmap_create(unsigned flags) {
    reg_strmap *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->seed = strmap_seed();
    m->flags = flags;
    return m;
}

/* The slot holding key, or the empty slot where it would go. slots must have a free slot. */
static strmap_slot *strmap_probe(strmap_slot *slots, size_t cap, const char *key, size_t len,
                                 uint64_t hash) {
    size_t i = (size_t)hash & (cap - 1);
    while (slots[i].key &&
           !(slots[i].hash == hash && slots[i].len == len && memcmp(slots[i].key, key, len) == 0))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* Doubles the slot array. 0, or -1 when out of memory (the map is unchanged). */
static int strmap_grow(reg_strmap *m) {
    size_t cap = m->cap ? m->cap * 2 : STRMAP_MIN_CAP;
    strmap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            *strmap_probe(slots, cap, m->slots[i].key, m->slots[i].len, m->slots[i].hash) =
                m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* REG_OK; REG_EINVAL for a NULL map, key or value; REG_ENOMEM (the map is unchanged). */
int reg_strmap_put(reg_strmap *m, const char *key, size_t len, void *val) {
    if (!m || (!key && len) || !val)
        return REG_EINVAL;
    if (!key)
        key = "";
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m) != 0)
        return REG_ENOMEM;
    uint64_t h = reg_hash_bytes(key, len, m->seed);
    strmap_slot *s = strmap_probe(m->slots, m->cap, key, len, h);
    if (!s->key) {
        const char *k = key;
        if (m->flags & REG_STRMAP_COPY) {
            char *copy = malloc(len + 1);
            if (!copy)
                return REG_ENOMEM;
            memcpy(copy, key, len);
            copy[len] = '\0';
            k = copy;
        }
        *s = (strmap_slot){.key = k, .len = len, .hash = h};
        m->n++;
    }
    s->val = val;
    return REG_OK;
}

/* NULL when absent (or m is NULL). Cannot fail. */
void *reg_strmap_get(const reg_strmap *m, const char *key, size_t len) {
    if (!m || !m->n || (!key && len))
        return NULL;
    if (!key)
        key = "";
    uint64_t h = reg_hash_bytes(key, len, m->seed);
    return strmap_probe(m->slots, m->cap, key, len, h)->val;
}

/* Linear probing without tombstones: after emptying slot i, move back every later entry of
 * the run that may live at i (its home slot is not cyclically in (i, j]), so no probe run
 * is cut short. Returns 1 when removed, 0 when absent. Cannot fail. */
int reg_strmap_remove(reg_strmap *m, const char *key, size_t len) {
    if (!m || !m->n || (!key && len))
        return 0;
    if (!key)
        key = "";
    uint64_t h = reg_hash_bytes(key, len, m->seed);
    strmap_slot *s = strmap_probe(m->slots, m->cap, key, len, h);
    if (!s->key)
        return 0;
    if (m->flags & REG_STRMAP_COPY)
        free((void *)s->key);
    size_t mask = m->cap - 1, i = (size_t)(s - m->slots), j = i;
    for (;;) {
        /* Emptied whole: reg_strmap_get returns the probed slot's value, NULL when empty. */
        m->slots[i] = (strmap_slot){0};
        for (;;) {
            j = (j + 1) & mask;
            if (!m->slots[j].key) {
                m->n--;
                return 1;
            }
            size_t home = (size_t)m->slots[j].hash & mask;
            /* Stays when home lies cyclically in (i, j]. */
            if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
                continue;
            break;
        }
        m->slots[i] = m->slots[j];
        i = j;
    }
}

/* Cannot fail. */
size_t reg_strmap_count(const reg_strmap *m) {
    return m ? m->n : 0;
}

/* 1 with the next entry, 0 at the end. Cannot fail. */
int reg_strmap_next(const reg_strmap *m, size_t *pos, const char **key, size_t *len, void **val) {
    for (; m && *pos < m->cap; (*pos)++) {
        const strmap_slot *s = &m->slots[*pos];
        if (!s->key)
            continue;
        if (key)
            *key = s->key;
        if (len)
            *len = s->len;
        if (val)
            *val = s->val;
        (*pos)++;
        return 1;
    }
    return 0;
}

/* Cannot fail; NULL is ignored. */
void reg_strmap_free(reg_strmap *m) {
    if (!m)
        return;
    if (m->flags & REG_STRMAP_COPY)
        for (size_t i = 0; i < m->cap; i++)
            free((void *)m->slots[i].key);
    free(m->slots);
    free(m);
}
