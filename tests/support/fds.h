/* fds.h - how many descriptors this process has open, for tests that check none leaks.
 * Header-only; cmocka must be included first. */
#ifndef ABACUS_TESTS_FDS_H
#define ABACUS_TESTS_FDS_H

#include <dirent.h>

/* Open descriptors, counting the one that reads /proc/self/fd (as process_open_fds does). */
static inline int open_fds_now(void) {
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

#endif
