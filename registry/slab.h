/* slab.h - memory for series: blocks of one size carved from 64 KiB slabs (internal).
 *
 * malloc puts an 8-byte size header in front of every chunk and rounds chunks up to 16
 * bytes: 8 to 23 bytes on a series that is 72 bytes long. A slab holds blocks of one size
 * class, in 8-byte steps, with no header of their own: the slab a block belongs to is found
 * by its address (slabs are aligned to their size), and its header says the class.
 *
 * Concurrency: reg_slab_alloc and reg_slab_free may be called by any thread, concurrently
 * with any other call of either (one mutex per size class). A block is handed to one caller
 * at a time: the mutex orders a free before the alloc that hands the block out again.
 *
 * Memory goes back to the system when a slab empties, except one empty slab a class keeps
 * for the next allocation. ASan builds pass every call to malloc and free, so that its
 * quarantine keeps catching a use of a freed series (a slab would hand the block out again at
 * once). */
#ifndef ABACUS_REGISTRY_SLAB_H
#define ABACUS_REGISTRY_SLAB_H

#include <stddef.h>

#define REG_SLAB_MAX 1024 /* the largest block; bigger ones come from malloc */

/* 1 in AddressSanitizer builds (gcc says so by __SANITIZE_ADDRESS__, clang by __has_feature):
 * there every block comes from malloc. */
#if defined(__SANITIZE_ADDRESS__)
#define REG_SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REG_SLAB_ASAN 1
#endif
#endif
#ifndef REG_SLAB_ASAN
#define REG_SLAB_ASAN 0
#endif

/* A block of size bytes (1..REG_SLAB_MAX), 8-byte aligned, uninitialised. NULL when out of
 * memory. */
void *reg_slab_alloc(size_t size);
/* Give back block p from reg_slab_alloc. Cannot fail. */
void reg_slab_free(void *p);
/* The bytes a block of size bytes takes: size rounded up to its class. Cannot fail. */
size_t reg_slab_block_size(size_t size);
/* Blocks handed out and not given back, in the whole process (tests: nothing leaks). */
size_t reg_slab_in_use(void);

#endif
