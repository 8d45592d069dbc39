/* slab.c - memory for series in 8-byte size classes, without malloc's per-chunk header
 * (slab.h says why and who may call what).
 *
 * A slab is 64 KiB, mapped on its own and aligned to its size: a header, then blocks of its
 * class's size. Given-back blocks are handed out first (a list through their first word), then
 * blocks never handed out, from the top of the slab down (the bump pointer): the kernel maps
 * slabs top-down too, so a class's blocks, handed out one after another, lie in descending
 * addresses across slabs as well. A scrape walks series in address order and so writes them
 * in the reverse of the order they were made, consistently, and neighbours alike in the text
 * compress best (100,000 series gzipped: 752 KB; 769 KB with blocks taken upwards in slabs
 * mapped downwards). A class keeps the slabs that have a free
 * block on a list; a full slab is on none, and goes back on it when a block is given back. An
 * empty slab is unmapped, unless its class has no spare yet. */
#include "slab.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define SLAB_SIZE ((size_t)64 << 10)
#define SLAB_HEAD 64 /* the header's room: blocks start a cache line in */
#define NCLASS (REG_SLAB_MAX / 8)

size_t reg_slab_block_size(size_t size) {
    return (size + 7) & ~(size_t)7;
}

/* ASan builds: malloc and free, so that its quarantine still sees every series' lifetime. */
#if REG_SLAB_ASAN

static _Atomic size_t heap_live;

void *reg_slab_alloc(size_t size) {
    void *p = malloc(reg_slab_block_size(size));
    if (p != NULL)
        atomic_fetch_add_explicit(&heap_live, 1, memory_order_relaxed); /* a count only */
    return p;
}

void reg_slab_free(void *p) {
    atomic_fetch_sub_explicit(&heap_live, 1, memory_order_relaxed);
    free(p);
}

size_t reg_slab_in_use(void) {
    return atomic_load_explicit(&heap_live, memory_order_relaxed);
}

#else

typedef struct slab {
    struct slab *prev, *next; /* on its class's list while it has a free block */
    void *free;               /* blocks given back, each holding the next one's address */
    char *bump;               /* the lowest block handed out from the top; below, never used */
    char *end;                /* past the last whole block: where bump starts */
    uint32_t used;            /* blocks handed out */
    struct slab_class *home;  /* the class (of one shard) whose lists hold it */
} slab;

_Static_assert(sizeof(slab) <= SLAB_HEAD, "the header fits before the first block");

typedef struct slab_class {
    _Alignas(64) pthread_mutex_t mu; /* a line of its own: classes are locked independently */
    slab *partial;                   /* slabs with a free block */
    slab *spare;                     /* one empty slab, kept for the next one needed */
    size_t live;                     /* blocks handed out */
    char *fresh_lo, *fresh_hi;       /* mapped for slabs, none carved yet (slab_map) */
} slab_class;

/* Each size class is kept NSHARD times over, and a thread allocates from one shard of them
 * (threads take shards in turn): two threads creating series of one size then lock different
 * mutexes and write different lines (free + alloc on 2 threads sharing one class: 150-160 ns
 * of CPU against 32-46 on one). A block goes back to the shard it came from, whichever thread
 * frees it: the reaper's frees are spread over the shards. */
#define NSHARD 4
static slab_class classes[NSHARD * NCLASS];
static pthread_once_t classes_once = PTHREAD_ONCE_INIT;
static _Atomic unsigned next_shard;
static _Thread_local unsigned thread_shard = NSHARD; /* NSHARD: not chosen yet */

/* Adaptive mutexes: a class is held for a few list operations, far shorter than the futex
 * sleep and wake-up a plain mutex pays for every contended lock (two threads creating series
 * of one size: 250-290 ns a free and alloc on two threads against 26 on one). */
static void classes_init(void) {
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    for (size_t i = 0; i < NSHARD * NCLASS; i++)
        pthread_mutex_init(&classes[i].mu, &ma);
    pthread_mutexattr_destroy(&ma);
}

/* SLAB_RUN slabs' room, aligned to SLAB_SIZE, into [*lo, *hi). 0, or -1 when out of memory.
 * Slabs are mapped a run at a time: a mapping takes the process's address-space lock for
 * writing, which stalls every other thread's page faults, and a slab a call cost a creating
 * thread on two threads more than the slab saved. Pages not yet used take no memory. */
#define SLAB_RUN 32
static int map_run(char **lo, char **hi) {
    size_t len = (SLAB_RUN + 1) * SLAB_SIZE;
    char *raw;
    // cppcheck-suppress invalidFunctionArg ; MAP_ANONYMOUS wants fd -1
    raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return -1;
    char *start = (char *)(((uintptr_t)raw + SLAB_SIZE - 1) & ~(uintptr_t)(SLAB_SIZE - 1));
    char *end = start + SLAB_RUN * SLAB_SIZE;
    if (start > raw)
        munmap(raw, (size_t)(start - raw));
    if (raw + len > end)
        munmap(end, (size_t)(raw + len - end));
    *lo = start;
    *hi = end;
    return 0;
}

/* A fresh slab for class cls of shard home, from the top of its run (as blocks are taken from
 * the top of a slab). Under home's mutex. NULL when out of memory. */
static slab *slab_map(slab_class *home, uint32_t cls) {
    if (home->fresh_hi == home->fresh_lo && map_run(&home->fresh_lo, &home->fresh_hi) != 0)
        return NULL;
    home->fresh_hi -= SLAB_SIZE;
    char *start = home->fresh_hi;
    slab *sl = (slab *)(void *)start;
    size_t size = ((size_t)cls + 1) * 8;
    char *end = start + SLAB_HEAD + (SLAB_SIZE - SLAB_HEAD) / size * size;
    *sl = (slab){.bump = end, /* blocks are taken from the top down */
                 .end = end,
                 .home = home};
    return sl;
}

static void list_push(slab **head, slab *sl) {
    sl->prev = NULL;
    sl->next = *head;
    if (*head != NULL)
        (*head)->prev = sl;
    *head = sl;
}

static void list_unlink(slab **head, slab *sl) {
    if (sl->prev != NULL)
        sl->prev->next = sl->next;
    else
        *head = sl->next;
    if (sl->next != NULL)
        sl->next->prev = sl->prev;
}

static int slab_full(const slab *sl) {
    return sl->free == NULL && sl->bump == (char *)sl + SLAB_HEAD;
}

void *reg_slab_alloc(size_t size) {
    assert(size >= 1 && size <= REG_SLAB_MAX); /* else no class: the caller's contract */
    pthread_once(&classes_once, classes_init);
    uint32_t cls = (uint32_t)(reg_slab_block_size(size) / 8 - 1);
    if (thread_shard == NSHARD) /* relaxed: it only spreads threads over the shards */
        thread_shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % NSHARD;
    slab_class *c = &classes[thread_shard * NCLASS + cls];
    pthread_mutex_lock(&c->mu);
    slab *sl = c->partial;
    if (sl == NULL) {
        sl = c->spare != NULL ? c->spare : slab_map(c, cls);
        c->spare = NULL;
        if (sl == NULL) {
            pthread_mutex_unlock(&c->mu);
            return NULL;
        }
        list_push(&c->partial, sl);
    }
    void *p = sl->free;
    if (p != NULL) {
        sl->free = *(void **)p;
    } else {
        sl->bump -= (cls + 1) * 8;
        p = sl->bump;
    }
    sl->used++;
    c->live++;
    if (slab_full(sl))
        list_unlink(&c->partial, sl);
    pthread_mutex_unlock(&c->mu);
    return p;
}

void reg_slab_free(void *p) {
    slab *sl = (slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_SIZE - 1));
    slab_class *c = sl->home; /* written before the block was handed out */
    pthread_mutex_lock(&c->mu);
    if (slab_full(sl))
        list_push(&c->partial, sl);
    *(void **)p = sl->free;
    sl->free = p;
    sl->used--;
    c->live--;
    slab *unmap = NULL;
    if (sl->used == 0) {
        list_unlink(&c->partial, sl);
        if (c->spare == NULL) {
            sl->free = NULL; /* as fresh: its blocks are taken in order again */
            sl->bump = sl->end;
            c->spare = sl;
        } else {
            unmap = sl;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (unmap != NULL)
        munmap(unmap, SLAB_SIZE);
}

size_t reg_slab_in_use(void) {
    pthread_once(&classes_once, classes_init);
    size_t n = 0;
    for (size_t i = 0; i < NSHARD * NCLASS; i++) {
        pthread_mutex_lock(&classes[i].mu);
        n += classes[i].live;
        pthread_mutex_unlock(&classes[i].mu);
    }
    return n;
}

#endif
