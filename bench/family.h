/* family.h (bench) - the counter family with two labels that the registry, scrape and remote
 * write benchmarks fill with series: made once, here. */
#ifndef ABACUS_BENCH_FAMILY_H
#define ABACUS_BENCH_FAMILY_H

#include "registry.h"

/* Adds the counter family name with labels {first, second} to t's registry. Returns it, or NULL
 * when the registry refuses it (out of memory, a name taken). */
static inline reg_family *bench_counter_family(reg_thread *t, const char *name, const char *first,
                                               const char *second) {
    const char *labels[] = {first, second};
    reg_family_def d = {
        .name = name, .help = "Requests.", .type = REG_COUNTER, .nlabels = 2, .labels = labels};
    reg_family *f;
    reg_begin(t);
    if (reg_family_add(t, &d, &f) != REG_OK)
        f = NULL;
    reg_end(t);
    return f;
}

#endif
