/* stress_remote_queue.c - a remote-write queue between its two threads, as they use it: a
 * producer (the supervisor) pushes collections of samples for a set of series, each sample
 * holding a series reference, while a consumer (the sender) peeks batches, releases the lock
 * as a request would, and pops them; a third thread changes the capacity as a reload does.
 *
 * What must hold:
 *  - Order: the consumer sees every series' values strictly increasing (FIFO, one sender).
 *  - Exact accounting: pushed = consumed + refused; nothing is consumed twice.
 *  - References: after the queue is destroyed every series is back to its one reference.
 * Bounded by operation counts, not time. Run under TSan and ASan too. */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "remote/internal.h"
#include "stress.h"

#define NSERIES 64
#define COLLECTIONS (400 * STRESS_SCALE)
#define BATCH 100

static rw_queue q;
static rw_series *series[NSERIES];
static atomic_int producer_done;
static uint64_t pushed, refused, consumed; /* each written by one thread, read after joins */

static void *producer(void *arg) {
    (void)arg;
    rw_sample s[NSERIES];
    for (int c = 0; c < COLLECTIONS; c++) {
        for (int i = 0; i < NSERIES; i++)
            s[i] = (rw_sample){rw_series_ref(series[i]), (double)c, c};
        pthread_mutex_lock(&q.mu);
        refused += rw_queue_push_locked(&q, s, NSERIES, 0);
        pthread_cond_signal(&q.cv);
        pthread_mutex_unlock(&q.mu);
        pushed += NSERIES;
        sched_yield(); /* let the consumer in, so both outcomes (queued, refused) occur */
    }
    /* seq_cst: pairs with the consumer's load; the pushes above are already under the mutex. */
    atomic_store(&producer_done, 1);
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    double last[NSERIES];
    for (int i = 0; i < NSERIES; i++)
        last[i] = -1;
    rw_sample b[BATCH];
    for (;;) {
        pthread_mutex_lock(&q.mu);
        size_t n = rw_queue_peek_locked(&q, b, BATCH);
        if (n == 0) {
            pthread_mutex_unlock(&q.mu);
            if (atomic_load(&producer_done)) {
                pthread_mutex_lock(&q.mu);
                int empty = q.len == 0;
                pthread_mutex_unlock(&q.mu);
                if (empty)
                    return NULL;
            }
            sched_yield();
            continue;
        }
        pthread_mutex_unlock(&q.mu); /* a request is sent without the lock */
        for (size_t i = 0; i < n; i++) {
            int k = -1;
            for (int j = 0; j < NSERIES; j++)
                if (b[i].series == series[j])
                    k = j;
            CHECK(k >= 0);
            CHECK(b[i].value > last[k]);
            last[k] = b[i].value;
        }
        pthread_mutex_lock(&q.mu);
        rw_queue_pop_locked(&q, n, 0);
        pthread_mutex_unlock(&q.mu);
        consumed += n;
    }
}

static void *resizer(void *arg) {
    (void)arg;
    static const size_t caps[] = {50, 5000, 300, 100000};
    for (int i = 0; !atomic_load(&producer_done); i++) {
        pthread_mutex_lock(&q.mu);
        q.capacity = caps[i % 4];
        pthread_mutex_unlock(&q.mu);
        sched_yield();
    }
    return NULL;
}

static void *role(void *arg) {
    switch (*(int *)arg) {
    case 0:
        return producer(NULL);
    case 1:
        return consumer(NULL);
    default:
        return resizer(NULL);
    }
}

int main(void) {
    for (int i = 0; i < NSERIES; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        const char *names[] = {"__name__"}, *values[] = {name};
        CHECK((series[i] = rw_series_make(1, names, values)) != NULL);
    }
    CHECK(rw_queue_init(&q, 1000) == 0);
    int roles[] = {0, 1, 2};
    run_threads(3, role, roles, sizeof roles[0]);
    CHECK(pushed == (uint64_t)COLLECTIONS * NSERIES);
    CHECK(pushed == consumed + refused);
    CHECK(consumed > 0);
    rw_queue_destroy(&q);
    for (int i = 0; i < NSERIES; i++) {
        CHECK(atomic_load(&series[i]->refs) == 1);
        rw_series_unref(series[i]);
    }
    printf("stress_remote_queue: %llu pushed, %llu consumed, %llu refused\n",
           (unsigned long long)pushed, (unsigned long long)consumed, (unsigned long long)refused);
    return 0;
}
