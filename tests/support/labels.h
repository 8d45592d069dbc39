/* labels.h (tests) - a series' label text as a C string, for tests that compare it. */
#ifndef ABACUS_TESTS_LABELS_H
#define ABACUS_TESTS_LABELS_H

#include <stddef.h>

#include "registry.h"

/* The label text of series s of family f (reg_series_labels) into buf, NUL-terminated; *len
 * its length when len is not NULL. Returns buf. Cannot fail. */
static inline const char *test_labels(const reg_family *f, const reg_series *s,
                                      char buf[REG_MAX_KEY + 1], size_t *len) {
    size_t n = reg_series_labels(f, s, buf, REG_MAX_KEY);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

#endif
