/* failmalloc.h - allocation-failure injection for the sweeps in tests/alloc (failmalloc.c).
 *
 * An executable linked with failmalloc.c owns malloc and its relatives for the whole process
 * (its symbols come first in the dynamic lookup), so allocations made by our static
 * libraries, by the shared ones (libyaml, PCRE2, zlib, ck) and by glibc itself (strdup,
 * vasprintf, fopen) are all counted. While armed, allocation number ABACUS_FAIL_ALLOC=N
 * (counted from the arm, 1-based, in the thread that armed: other threads allocate at times
 * that vary between runs) returns NULL with errno ENOMEM, once; all others succeed. Unset or
 * 0: nothing fails, allocations are only counted.
 */
#ifndef ABACUS_FAILMALLOC_H
#define ABACUS_FAILMALLOC_H

/* Start counting from 0 and read ABACUS_FAIL_ALLOC (the allocation to fail). */
void failmalloc_arm(void);
/* Stop counting: nothing fails until the next arm. */
void failmalloc_disarm(void);
/* Allocations counted since the arm. */
unsigned long failmalloc_count(void);
/* 1 once the chosen allocation has been failed (since the arm). */
int failmalloc_hit(void);

#endif
