/* stress_slab.c - the series allocator (registry/slab.h) on many threads: each thread keeps
 * blocks of random sizes filled with a pattern of its own, and gives back its own blocks and,
 * through a shared exchange, other threads' blocks. A block handed to two owners at once, or
 * written after it was given back, breaks a pattern; at the end every block is given back. */
#include <stdint.h>
#include <string.h>

#include "slab.h"
#include "stress.h"

#define STEPS (20000 * STRESS_SCALE)
#define LIVE 256     /* blocks a thread holds at a time */
#define EXCHANGE 512 /* blocks in transit between threads */

typedef struct {
    unsigned char *p;
    size_t size;
    unsigned tag;
} block;

static pthread_mutex_t exchange_mu = PTHREAD_MUTEX_INITIALIZER;
static block exchange[EXCHANGE];
static size_t exchange_n;

static void fill(const block *b) {
    for (size_t i = 0; i < b->size; i++)
        b->p[i] = (unsigned char)(b->tag + i * 7u);
}

static void check_and_free(const block *b) {
    for (size_t i = 0; i < b->size; i++)
        CHECK(b->p[i] == (unsigned char)(b->tag + i * 7u));
    reg_slab_free(b->p);
}

/* Put b in transit, or, when the exchange is full, take one out in its place: the caller
 * frees what it gets back. */
static block swap_in_transit(block b) {
    pthread_mutex_lock(&exchange_mu);
    if (exchange_n < EXCHANGE) {
        exchange[exchange_n++] = b;
        b.p = NULL;
    } else {
        size_t i = b.tag % EXCHANGE;
        block out = exchange[i];
        exchange[i] = b;
        b = out;
    }
    pthread_mutex_unlock(&exchange_mu);
    return b;
}

typedef struct {
    unsigned id;
} worker;

static void *run(void *arg) {
    worker *w = arg;
    block live[LIVE] = {0};
    unsigned x = w->id * 2654435761u + 1;
    for (unsigned step = 0; step < STEPS; step++) {
        x = x * 1664525u + 1013904223u;
        block *b = &live[(x >> 8) % LIVE];
        if (b->p != NULL) {
            if (x & 1) {
                check_and_free(b);
            } else {
                block back = swap_in_transit(*b);
                if (back.p != NULL)
                    check_and_free(&back);
            }
        }
        b->size = 1 + (x >> 16) % (x & 2 ? 96 : REG_SLAB_MAX);
        b->tag = w->id << 24 ^ step;
        b->p = reg_slab_alloc(b->size);
        CHECK(b->p != NULL);
        fill(b);
    }
    for (size_t i = 0; i < LIVE; i++)
        if (live[i].p != NULL)
            check_and_free(&live[i]);
    return NULL;
}

int main(void) {
    size_t before = reg_slab_in_use();
    worker w[NTHREADS];
    for (unsigned i = 0; i < NTHREADS; i++)
        w[i].id = i + 1;
    run_threads(NTHREADS, run, w, sizeof w[0]);
    for (size_t i = 0; i < exchange_n; i++)
        check_and_free(&exchange[i]);
    CHECK(reg_slab_in_use() == before);
    printf("stress_slab: %d threads x %d steps, every block given back\n", NTHREADS, STEPS);
    return 0;
}
