/* sweep.h - the driver shared by the allocation-failure sweeps (tests/alloc/sweep_*.c).
 *
 * A sweep program defines one scenario and calls sweep_main. The driver makes a counting run
 * (nothing fails: it finds how many allocations the scenario makes), then for every N = 1,
 * 2, ... a forked child runs the scenario with allocation N failing (failmalloc.h), until a
 * run no longer reaches N. A child must end cleanly: no crash, no hang, no sanitizer report
 * and, in the address build, no leak (LeakSanitizer checks at the child's exit). With
 * compare set, a child whose scenario reports success although an allocation failed must
 * produce the output of the counting run (compared line-sorted): a failure swallowed without
 * trace is a bug too. Failing runs are printed with their output and fail the program.
 *
 * Usage of a sweep program: PROG [FIRST [LAST]]        N in [FIRST, LAST] (default 1..end)
 *                           ABACUS_FAIL_ALLOC=N PROG --one   one run in this process
 *                           PROG --print                 the output of a run without failures
 * Environment: ABACUS_SWEEP_JOBS (children at once; default: online CPUs). The driver sets
 * ABACUS_SWEEP_DIR, a directory under /tmp for a scenario's files, removed at the end with
 * whatever a crashed run left in it.
 */
#ifndef ABACUS_SWEEP_H
#define ABACUS_SWEEP_H

#include <stddef.h>

/* A growable NUL-terminated string. */
typedef struct {
    char *buf;
    size_t len, cap;
} sweep_text;

/* Append s[0..n). 0, or -1 when out of memory. */
int sweep_text_add(sweep_text *t, const char *s, size_t n);

/* A scenario: 0 when every step succeeded, -1 when a step reported a failure (after cleaning
 * up everything). What it appends to out is compared across runs (see compare). */
typedef int (*sweep_scenario)(sweep_text *out);

/* Where the scenario's failing step is: set by SWEEP_FAIL, printed with the run's result. */
extern int sweep_failed_line;
#define SWEEP_FAIL()                                                                               \
    do {                                                                                           \
        sweep_failed_line = __LINE__;                                                              \
        goto done;                                                                                 \
    } while (0)

int sweep_main(int argc, char **argv, sweep_scenario scenario, int compare);

#endif
