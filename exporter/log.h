/* log.h - internal: structured logging to stderr, one line per event (logfmt or JSON).
 *
 * Every call writes its whole line with one write(2), so lines from concurrent threads never
 * interleave. Messages take key/value string pairs ending with NULL:
 *
 *     exp_log(EXP_LOG_INFO, "listening", "address", "127.0.0.1:9102", NULL);
 *
 * logfmt: ts=2024-05-01T12:00:00.123Z level=info msg=listening address=127.0.0.1:9102
 * json:   {"ts":"2024-05-01T12:00:00.123Z","level":"info","msg":"listening",...}
 */
#ifndef ABACUS_EXPORTER_LOG_H
#define ABACUS_EXPORTER_LOG_H

#include <stdatomic.h>
#include <stdint.h>

typedef enum { EXP_LOG_DEBUG = 0, EXP_LOG_INFO, EXP_LOG_WARN, EXP_LOG_ERROR } exp_log_level;

/* "debug" | "info" | "warn" | "error". Returns 0, or -1 for an unknown name (unchanged). */
int exp_log_set_level(const char *name);
/* "logfmt" | "json". Returns 0, or -1 for an unknown name (unchanged). */
int exp_log_set_format(const char *name);
/* 1 when messages at lvl are written. Cannot fail. */
int exp_log_enabled(exp_log_level lvl);

/* Log msg with key/value pairs (const char *, NULL-terminated list; a NULL value is written
 * as an empty string). Lines longer than 8 KiB are truncated. Cannot fail (write errors are
 * ignored: there is nowhere else to report them). */
void exp_log(exp_log_level lvl, const char *msg, ...) __attribute__((sentinel));

/* A rate limit for one kind of message (bad input lines and the like): at most `burst` lines
 * per 10-second window; the first line after a suppressed stretch carries suppressed=N.
 * Zero-initialise (static storage is fine); any number of threads may share one. */
typedef struct {
    _Atomic uint64_t window;     /* window number the counters belong to */
    _Atomic uint64_t logged;     /* lines written in that window */
    _Atomic uint64_t suppressed; /* lines dropped since the last written one */
} exp_log_limit;

/* Like exp_log, but subject to lim (burst lines per 10 s; 0 means 10). Cannot fail. */
void exp_log_limited(exp_log_limit *lim, unsigned burst, exp_log_level lvl, const char *msg, ...)
    __attribute__((sentinel));

#endif
