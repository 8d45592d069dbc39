/* stress.h - tiny helpers shared by the stress tests: threads, checks that abort loudly. */
#ifndef ABACUS_STRESS_H
#define ABACUS_STRESS_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NTHREADS 8

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Run fn(arg_i) on n threads, args[i] each, and join them. */
static inline void run_threads(int n, void *(*fn)(void *), void *args, size_t argsize) {
    pthread_t th[64];
    CHECK(n <= 64);
    for (int i = 0; i < n; i++)
        CHECK(pthread_create(&th[i], NULL, fn, (char *)args + (size_t)i * argsize) == 0);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

/* Iteration counts shrink under sanitizers, which slow everything tenfold. */
#if defined(ABACUS_TSAN) || defined(__SANITIZE_ADDRESS__)
#define STRESS_SCALE 1
#else
#define STRESS_SCALE 8
#endif

#endif
