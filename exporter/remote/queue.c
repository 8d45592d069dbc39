/* queue.c - a receiver's bounded FIFO of samples, the series identities they point to, and
 * the retry backoff.
 *
 * One queue per receiver, drained by one sender thread that takes a batch from the head and
 * removes it only once it was delivered or given up: a series' samples therefore leave in the
 * order they arrived, retries included. The collector never waits for room: what does not fit
 * under the capacity is refused and counted by the caller, so a stalled receiver costs memory
 * up to the bound and nothing else.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "remote/internal.h"

/* ---- series ------------------------------------------------------------------------------ */

/* NULL when out of memory. */
rw_series *rw_series_make(size_t n, const char *const *names, const char *const *values) {
    size_t keylen = 0;
    for (size_t i = 0; i < n; i++)
        keylen += strlen(names[i]) + 1 + strlen(values[i]) + 1;
    rw_series *s = malloc(sizeof *s + 2 * n * sizeof(char *) + keylen);
    if (!s)
        return NULL;
    s->nlabels = n;
    s->names = (const char **)(s + 1);
    s->values = s->names + n;
    s->key = (char *)(s->values + n);
    s->keylen = keylen;
    s->seen = 0;
    char *p = s->key;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(names[i]) + 1, vl = strlen(values[i]) + 1;
        s->names[i] = memcpy(p, names[i], nl);
        p += nl;
        s->values[i] = memcpy(p, values[i], vl);
        p += vl;
    }
    atomic_init(&s->refs, 1);
    return s;
}

/* Cannot fail. */
rw_series *rw_series_ref(rw_series *s) {
    /* Relaxed: the caller already holds a reference, so the series cannot go meanwhile. */
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

/* Cannot fail. */
void rw_series_unref(rw_series *s) {
    /* acq_rel: each holder's reads happen before its release; the last holder's acquire pairs
     * with every earlier release, so the free comes after all of them (no fence: TSan cannot
     * see fences). */
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        free(s);
}

/* ---- queue --------------------------------------------------------------------------------- */

/* 0, or -1 (pthread_cond_init's failure). */
int rw_cond_init_monotonic(pthread_cond_t *cv) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc == 0 ? 0 : -1;
}

/* 0, or -1 when out of memory. */
int rw_queue_init(rw_queue *q, size_t capacity) {
    memset(q, 0, sizeof *q);
    q->capacity = capacity ? capacity : 1;
    if (rw_cond_init_monotonic(&q->cv) != 0)
        return -1;
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        pthread_cond_destroy(&q->cv);
        return -1;
    }
    return 0;
}

/* Cannot fail. */
void rw_queue_destroy(rw_queue *q) {
    rw_queue_pop_locked(q, q->len, 0);
    free(q->ring);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}

/* Room for one more sample: grows the ring by doubling (it only grows up to the capacity).
 * 0, or -1 when out of memory. */
static int grow(rw_queue *q) {
    size_t cap = q->ring_cap ? q->ring_cap * 2 : 1024;
    if (cap > q->capacity)
        cap = q->capacity;
    rw_sample *r = malloc(cap * sizeof *r);
    if (!r)
        return -1;
    /* Unwrap: the oldest sample goes to index 0. */
    for (size_t i = 0; i < q->len; i++)
        r[i] = q->ring[(q->head + i) % q->ring_cap];
    free(q->ring);
    q->ring = r;
    q->ring_cap = cap;
    q->head = 0;
    return 0;
}

/* Returns the number refused. */
size_t rw_queue_push_locked(rw_queue *q, rw_sample *s, size_t n, uint64_t now_ns) {
    size_t i = 0;
    for (; i < n && q->len < q->capacity; i++) {
        if (q->len == q->ring_cap && grow(q) != 0)
            break;
        if (q->len == 0)
            q->first_pushed_ns = now_ns;
        q->ring[(q->head + q->len) % q->ring_cap] = s[i];
        q->len++;
    }
    for (size_t j = i; j < n; j++)
        rw_series_unref(s[j].series);
    return n - i;
}

/* Cannot fail. */
size_t rw_queue_peek_locked(const rw_queue *q, rw_sample *out, size_t max) {
    size_t n = q->len < max ? q->len : max;
    for (size_t i = 0; i < n; i++)
        out[i] = q->ring[(q->head + i) % q->ring_cap];
    return n;
}

/* Cannot fail. */
void rw_queue_pop_locked(rw_queue *q, size_t n, uint64_t now_ns) {
    if (n > q->len)
        n = q->len;
    for (size_t i = 0; i < n; i++) {
        rw_series_unref(q->ring[q->head].series);
        q->head = (q->head + 1) % q->ring_cap;
    }
    q->len -= n;
    /* The next batch's deadline counts from now: its samples waited behind this one. */
    q->first_pushed_ns = now_ns;
}

/* ---- backoff --------------------------------------------------------------------------------- */

/* Cannot fail. */
uint64_t rw_backoff_ns(uint64_t min_ns, uint64_t max_ns, unsigned attempt, uint64_t rnd) {
    uint64_t d = min_ns ? min_ns : 1;
    for (unsigned i = 0; i < attempt && d < max_ns; i++)
        d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
    if (d > max_ns)
        d = max_ns;
    uint64_t half = d / 2;
    return d - (half ? rnd % (half + 1) : 0);
}
