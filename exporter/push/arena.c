/* push/arena.c - the parse arena of the push body parsers (arena.h). */
#include "push/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct push_arena_block {
    struct push_arena_block *next;
    size_t cap, used;
};

#define ALIGN alignof(max_align_t)
#define HDR ((sizeof(push_arena_block) + ALIGN - 1) / ALIGN * ALIGN)
#define BLOCK_BYTES (64 * 1024)

/* See arena.h. */
void *push_arena_alloc(push_arena_block **head, size_t n) {
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + ALIGN - 1) / ALIGN * ALIGN;
    push_arena_block *b = *head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > BLOCK_BYTES - HDR ? n : BLOCK_BYTES - HDR;
        b = malloc(HDR + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = *head;
        *head = b;
    }
    void *p = (char *)b + HDR + b->used;
    b->used += n;
    return p;
}

/* See arena.h. */
void *push_arena_vec_room(push_arena_block **head, void *v, size_t n, size_t elem) {
    if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
        return v;
    size_t cap = n == 0 ? 4 : 2 * n;
    if (cap > SIZE_MAX / elem)
        return NULL;
    void *nv = push_arena_alloc(head, cap * elem);
    if (nv && n)
        memcpy(nv, v, n * elem);
    return nv;
}

/* See arena.h. */
char *push_arena_str(push_arena_block **head, const char *s, size_t n) {
    char *c = push_arena_alloc(head, n + 1);
    if (c) {
        if (n)
            memcpy(c, s, n);
        c[n] = 0;
    }
    return c;
}

/* See arena.h. */
void push_arena_free(push_arena_block *b) {
    while (b) {
        push_arena_block *next = b->next;
        free(b);
        b = next;
    }
}

int push_arena_add_pair(push_arena_block **head, double **av, double **bv, size_t *n, double a,
                        double b) {
    double *x = push_arena_vec_room(head, *av, *n, sizeof *x);
    double *y = x ? push_arena_vec_room(head, *bv, *n, sizeof *y) : NULL;
    if (!x || !y)
        return -1;
    x[*n] = a;
    y[*n] = b;
    *av = x;
    *bv = y;
    (*n)++;
    return 0;
}
