/* persist.h - persistence: the registry saved to a snapshot file (--persistence.file) every
 * --persistence.interval and at shutdown, and loaded at start-up. The file format is the
 * registry's (registry/snapshot.c); this is the file side: atomic replacement (temporary
 * file, fsync, rename, fsync of the directory), the periodic writer thread, refusing a bad
 * file (renamed aside), and the abacus_persistence_* self-metrics. */
#ifndef ABACUS_EXPORTER_PERSIST_H
#define ABACUS_EXPORTER_PERSIST_H

#include <stdint.h>

#include "registry.h"

/* The largest snapshot file loaded; a larger one is refused (and renamed aside). */
#define EXP_PERSIST_MAX_BYTES (1024ull << 20)
#define EXP_PERSIST_DEFAULT_INTERVAL_NS (300ull * 1000000000ull) /* 5m */

typedef struct exp_persist exp_persist;

/* Persistence to path (NUL-terminated, non-empty) every interval_ns (0: only at shutdown),
 * with its self-metrics registered in r. No thread yet. NULL with a reason in err on
 * allocation failure or when a self-metric cannot be registered. */
exp_persist *exp_persist_create(reg_registry *r, const char *path, uint64_t interval_ns, char *err,
                                size_t errlen);
/* Load the file into the registry: at start-up, after the configuration is applied and
 * before anything updates or scrapes. A missing file is normal (logged at info). A file that
 * is refused (too large, foreign, wrong version, truncated, torn, checksum or record
 * malformed) is logged with the file and the reason, renamed to `<path>.corrupt` and
 * counted; nothing of it is applied. Returns the number of series restored. Cannot fail
 * (every failure is logged and counted; the process starts with what it has). */
size_t exp_persist_load(exp_persist *p);
/* Start the writer thread (none with interval 0). 0, or -1 with a reason in err. */
int exp_persist_start(exp_persist *p, char *err, size_t errlen);
/* Write a snapshot now. Not concurrently with the writer thread (before start or after
 * stop). Returns 0, or -1 (logged and counted; the previous file stays intact). */
int exp_persist_write(exp_persist *p);
/* Stop the thread; then, when final_write, write a last snapshot (the SIGTERM path: after the
 * listeners stopped and drained, before the registry is destroyed). Frees p; NULL is a
 * no-op. Cannot fail (a failed final write is logged). */
void exp_persist_stop(exp_persist *p, int final_write);

#endif
