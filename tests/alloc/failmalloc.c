/* failmalloc.c - the allocator shim of tests/alloc (see failmalloc.h).
 *
 * It defines malloc, calloc, realloc, reallocarray, aligned_alloc, posix_memalign, memalign,
 * valloc, strdup and strndup in the executable. Each counts the call (while armed), fails the
 * chosen one, and otherwise forwards to the next definition in the lookup order, found with
 * dlsym(RTLD_NEXT): AddressSanitizer's allocator in the address build (so LeakSanitizer and
 * ASan see every block), glibc's otherwise. strdup and strndup are built on malloc here, as
 * ASan's own strdup would allocate without passing through malloc. free is defined too, only
 * to recognise the few bytes handed out while dlsym itself allocates (bootstrap arena).
 * The loader allocates while ASan is starting, before its shadow memory exists: this file is
 * built without sanitizer instrumentation (tests/CMakeLists.txt).
 */
#include "failmalloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef void *(*aligned_fn)(size_t, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);

static malloc_fn real_malloc;
static calloc_fn real_calloc;
static realloc_fn real_realloc;
static free_fn real_free;
static aligned_fn real_aligned_alloc, real_memalign;
static posix_memalign_fn real_posix_memalign;

static atomic_int armed;
/* Only the thread that armed counts: allocations of other threads (the registry's reaper,
 * glibc's and the sanitizers' bookkeeping when a thread starts) happen at times that vary
 * from run to run, and failing those inside the sanitizer runtime aborts it. */
static __thread int arming_thread;
static atomic_ulong counted;
static unsigned long fail_at; /* 0: never */
static atomic_int hit;

/* dlsym may allocate (its error buffer) before the real functions are known. */
static _Alignas(max_align_t) unsigned char arena[4096];
static size_t arena_used;
static int resolving;

static int in_arena(const void *p) {
    return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + sizeof arena;
}

static void *arena_alloc(size_t n) {
    size_t a = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (a > sizeof arena - arena_used)
        return NULL;
    void *p = arena + arena_used;
    arena_used += a;
    return p;
}

static void resolve(void) {
    if (real_malloc || resolving)
        return;
    resolving = 1;
    real_calloc = (calloc_fn)dlsym(RTLD_NEXT, "calloc");
    real_realloc = (realloc_fn)dlsym(RTLD_NEXT, "realloc");
    real_free = (free_fn)dlsym(RTLD_NEXT, "free");
    real_aligned_alloc = (aligned_fn)dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = (aligned_fn)dlsym(RTLD_NEXT, "memalign");
    real_posix_memalign = (posix_memalign_fn)dlsym(RTLD_NEXT, "posix_memalign");
    real_malloc = (malloc_fn)dlsym(RTLD_NEXT, "malloc"); /* last: it ends the bootstrap */
    resolving = 0;
}

/* 1 when this allocation is the one to fail. */
static int should_fail(void) {
    if (!arming_thread || !atomic_load_explicit(&armed, memory_order_relaxed))
        return 0;
    unsigned long n = atomic_fetch_add_explicit(&counted, 1, memory_order_relaxed) + 1;
    if (fail_at == 0 || n != fail_at)
        return 0;
    atomic_store(&hit, 1);
    errno = ENOMEM;
    return 1;
}

void failmalloc_arm(void) {
    resolve();
    const char *s = getenv("ABACUS_FAIL_ALLOC");
    fail_at = s ? strtoul(s, NULL, 10) : 0;
    atomic_store(&counted, 0);
    atomic_store(&hit, 0);
    arming_thread = 1;
    atomic_store(&armed, 1);
}

void failmalloc_disarm(void) {
    atomic_store(&armed, 0);
    arming_thread = 0;
}

unsigned long failmalloc_count(void) {
    return atomic_load(&counted);
}

int failmalloc_hit(void) {
    return atomic_load(&hit);
}

void *malloc(size_t n) {
    resolve();
    if (!real_malloc)
        return arena_alloc(n);
    return should_fail() ? NULL : real_malloc(n);
}

void *calloc(size_t k, size_t n) {
    resolve();
    if (!real_malloc) {
        if (n && k > SIZE_MAX / n)
            return NULL;
        return arena_alloc(k * n); /* static: already zero */
    }
    return should_fail() ? NULL : real_calloc(k, n);
}

void *realloc(void *p, size_t n) {
    resolve();
    if (!real_malloc || in_arena(p)) { /* bootstrap: a fresh block, the old bytes copied */
        void *q = malloc(n);
        if (q && p)
            memcpy(q, p,
                   n < (size_t)(arena + sizeof arena - (unsigned char *)p)
                       ? n
                       : (size_t)(arena + sizeof arena - (unsigned char *)p));
        return q;
    }
    if (p && n == 0) /* a free, not an allocation */
        return real_realloc(p, n);
    return should_fail() ? NULL : real_realloc(p, n);
}

void *reallocarray(void *p, size_t k, size_t n) {
    if (n && k > SIZE_MAX / n) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, k * n);
}

void free(void *p) {
    if (!p || in_arena(p))
        return;
    resolve();
    real_free(p);
}

void *aligned_alloc(size_t align, size_t n) {
    resolve();
    return should_fail() ? NULL : real_aligned_alloc(align, n);
}

void *memalign(size_t align, size_t n) {
    resolve();
    return should_fail() ? NULL : real_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
    resolve();
    return should_fail() ? ENOMEM : real_posix_memalign(out, align, n);
}

void *valloc(size_t n) {
    return memalign(4096, n);
}

char *strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

char *strndup(const char *s, size_t max) {
    size_t n = strnlen(s, max);
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
