/* push/arena.h - the arena the push body parsers (textparse.c, protoparse.c) build their
 * results in (exporter/push/ only): blocks of 64 KiB or more, freed all at once, so a parse
 * result is one pointer to free (exp_text_result.arena, freed by exp_text_free). Not shared
 * between threads: each parse has its own.
 */
#ifndef ABACUS_PUSH_ARENA_H
#define ABACUS_PUSH_ARENA_H

#include <stddef.h>

/* A block of an arena; an arena is a pointer to its newest block (NULL when empty). */
typedef struct push_arena_block push_arena_block;

/* n bytes, aligned for any type, from the arena *head. NULL when out of memory (or n
 * absurdly large). */
void *push_arena_alloc(push_arena_block **head, size_t n);

/* Room for one more element in an arena array v of n elements of elem bytes, whose capacity
 * follows from n (4, 8, 16, ...: full when n is 0 or a power of two from 4 on). Returns v, or
 * a bigger copy; NULL when out of memory. The old copy stays in the arena: all the copies of
 * one array together are at most twice its final size. */
void *push_arena_vec_room(push_arena_block **head, void *v, size_t n, size_t elem);

/* Append the pair (a, b) to the parallel arena arrays *av and *bv of *n elements (histogram
 * bounds and counts, summary quantiles and values), growing both as push_arena_vec_room does.
 * 0, or -1 when out of memory (the arrays unchanged). */
int push_arena_add_pair(push_arena_block **head, double **av, double **bv, size_t *n, double a,
                        double b);
/* A NUL-terminated arena copy of s[0..n). NULL when out of memory. */
char *push_arena_str(push_arena_block **head, const char *s, size_t n);

/* Frees every block of the arena whose newest block is b. Cannot fail; NULL is fine. */
void push_arena_free(push_arena_block *b);

#endif
