/* peer.h - the server processes a bench starts (abacus, the Pushgateway): each in a session
 * of its own, ready when GET /-/ready answers 200, stopped with SIGTERM (then SIGKILL), and
 * killed when the bench itself is interrupted. Shared by bench_push and bench_https. Not
 * thread-safe: a bench starts and stops its servers from its main thread. */
#ifndef ABACUS_BENCH_PEER_H
#define ABACUS_BENCH_PEER_H

#include <stddef.h>
#include <sys/types.h>

#include "http_client.h"

/* Start argv[0] (stdout and stderr to /dev/null when quiet) and wait up to 30 s until GET
 * /-/ready through probe answers 200. 0 with *pid set; -1 (it is stopped, *pid is 0). */
int peer_start(pid_t *pid, const char *name, char *const argv[], int quiet, http_client *probe);
/* SIGTERM, then SIGKILL after 30 s; reports an exit other than 0. *pid becomes 0. Cannot
 * fail; a 0 *pid is ignored. */
void peer_stop(pid_t *pid, const char *name);
/* The abacus binary of the bench's own build (exporter/abacus beside bench/) into out. 0, or
 * -1 when /proc/self/exe cannot be read. */
int peer_build_abacus(char *out, size_t cap);
/* Room peer_abacus_argv needs: its own arguments, up to PEER_EXTRA_MAX more, the NULL. */
#define PEER_EXTRA_MAX 4
#define PEER_ARGV_MAX (7 + PEER_EXTRA_MAX)
/* The arguments of abacus binary bin serving only HTTP (an empty configuration, no StatsD
 * listeners, warnings only) with the flag listen (--web.listen-address=...), then the flags in
 * extra (NULL-terminated, at most PEER_EXTRA_MAX; NULL for none), into argv. Returns argv.
 * Cannot fail. */
char **peer_abacus_argv(char *argv[PEER_ARGV_MAX], const char *bin, const char *listen,
                        const char *const *extra);
/* A push body (text format) of n gauge series bench_gauge{service,endpoint}, endpoints
 * numbered from first; its length in *len. Exits when out of memory. */
char *peer_gauge_body(size_t n, size_t first, size_t *len);
/* SIGKILL to every server still running (from a signal handler: async-signal-safe). */
void peer_kill_all(void);

#endif
