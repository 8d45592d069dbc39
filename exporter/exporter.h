/* exporter.h - the abacus process: command-line flags, the current configuration and its
 * reload, the HTTP server, self-metrics, listen sockets.
 *
 * main.c wires these together:
 *   flags -> exp_config_load -> registry + self-metrics -> exp_state (cfg_apply) ->
 *   HTTP server -> ingest listeners -> ready; then signals (SIGHUP reload, SIGTERM drain).
 * Ingest listeners (StatsD, push) read the configuration through exp_state: acquire a
 * snapshot, keep it while exp_state_generation() is unchanged, release it after use.
 */
#ifndef ABACUS_EXPORTER_H
#define ABACUS_EXPORTER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "registry.h"

#ifndef ABACUS_VERSION
#define ABACUS_VERSION "0.0.0"
#endif
#ifndef ABACUS_REVISION
#define ABACUS_REVISION "unknown"
#endif

/* ---- flags ------------------------------------------------------------------------------ */

#define EXP_UNSET (-1)

/* The command line. Strings point into argv. Overrides are NULL / EXP_UNSET when not given;
 * given ones replace the file's values on every load and reload. */
typedef struct {
    const char *config_file;    /* --config.file; NULL: ./abacus.yml if present, else defaults */
    const char *mapping_config; /* --statsd.mapping-config; NULL: rules from config_file */
    int check_config;           /* --check-config: validate, print errors, exit */
    int show_version, show_help;
    const char *log_level;  /* --log.level (debug|info|warn|error); default info */
    const char *log_format; /* --log.format (logfmt|json); default logfmt */
    int enable_lifecycle;   /* --web.enable-lifecycle: POST/PUT /-/reload allowed */
    /* overrides of the file */
    const char *listen_address; /* --web.listen-address */
    const char *telemetry_path; /* --web.telemetry-path */
    long long max_connections;  /* --web.max-connections */
    /* --web.max-concurrent-scrapes */
    long long max_concurrent_scrapes;
    const char *request_timeout; /* --web.request-timeout (a duration) */
    const char *write_timeout;   /* --web.write-timeout (a duration) */
    const char *statsd_listen_udp, *statsd_listen_tcp, *statsd_listen_unixgram;
    long long statsd_read_buffer, statsd_cache_size, statsd_readers;
    int statsd_dogstatsd_tags, statsd_influxdb_tags, statsd_librato_tags, statsd_signalfx_tags;
    const char *statsd_tcp_idle_timeout;  /* --statsd.tcp-idle-timeout (a duration) */
    long long statsd_max_tcp_connections; /* --statsd.max-tcp-connections */
} exp_flags;

/* Parse argv (GNU long options, `--name=value` or `--name value`; booleans also as
 * `--no-name`). Returns 0 on success; 2 on a usage error after printing it and a hint to err. */
int exp_flags_parse(exp_flags *f, int argc, char **argv, FILE *err);
/* The --help text. Cannot fail. */
void exp_flags_usage(FILE *out);
/* The config file a load would read: the flag, ./abacus.yml when it exists, or NULL for
 * built-in defaults. Cannot fail. */
const char *exp_flags_config_path(const exp_flags *f);

/* ---- configuration snapshots ------------------------------------------------------------- */

/* One loaded, validated configuration. Immutable and shared: any thread may read a snapshot
 * it acquired; it is freed when the last holder releases it. */
typedef struct exp_config {
    cfg_config *cfg;          /* the config file (or built-in defaults) with flags applied */
    cfg_config *mapping_file; /* --statsd.mapping-config, or NULL */
    const cfg_config *rules;  /* where StatsD mapping rules/defaults come from (one of both) */
    cfg_mapper *mapper;       /* compiled from rules */
    uint64_t hash;            /* of the files' bytes; 0 for built-in defaults */
    _Atomic unsigned refs;
} exp_config;

/* Load everything the flags name: the config file, the mapping file, flags applied, mapping
 * rules compiled, listen addresses checked. Returns a snapshot holding one reference, or
 * NULL with every problem appended to errs. */
exp_config *exp_config_load(const exp_flags *f, cfg_errors *errs);
/* Take / drop a reference. exp_config_release(NULL) is a no-op. Cannot fail. */
exp_config *exp_config_ref(exp_config *c);
void exp_config_release(exp_config *c);

/* ---- self-metrics ----------------------------------------------------------------------- */

typedef struct exp_self exp_self;

/* Register the abacus_* and process_* families in r. NULL on allocation failure or when a
 * family cannot be registered (message in err). */
exp_self *exp_self_create(reg_registry *r, char *err, size_t errlen);
void exp_self_destroy(exp_self *s);
/* Bring the derived figures up to date (process_*, abacus_series, refused counts); called
 * before each scrape. Not inside a registry section. Any thread; cannot fail (figures that
 * cannot be read keep their last value). */
void exp_self_refresh(exp_self *s);
/* Count one answered HTTP request. handler is a fixed route name. Cannot fail. */
void exp_self_http_request(exp_self *s, const char *handler, unsigned code);
/* Record the duration of one /metrics scrape. Cannot fail. */
void exp_self_scrape_duration(exp_self *s, double seconds);
/* Count n HTTP connections the server closed itself; reason is one of "request_timeout"
 * (headers or body not complete in time), "write_timeout" (response not sent in time),
 * "evicted" (made room for a newcomer at the connection cap), "refused" (at the cap,
 * nothing to evict). Cannot fail. */
void exp_self_http_closed(exp_self *s, const char *reason, double n);
/* Count one scrape that waited for a free scrape slot. Cannot fail. */
void exp_self_scrape_queued(exp_self *s);
/* Set the number of open HTTP connections. Cannot fail. */
void exp_self_http_connections(exp_self *s, double open);
/* Record a configuration (re)load outcome; hash is the loaded config's (ok only). Every call
 * after the first successful one (the load at start) counts in abacus_config_reloads_total.
 * Cannot fail. */
void exp_self_config_loaded(exp_self *s, int ok, uint64_t hash);

/* ---- the current configuration --------------------------------------------------------- */

typedef struct exp_state exp_state;

/* Take ownership of the initial snapshot and make the registry match it (cfg_apply).
 * NULL when applying fails (message in err) or on allocation failure. */
exp_state *exp_state_create(reg_registry *r, const exp_flags *f, exp_self *self,
                            exp_config *initial, char *err, size_t errlen);
void exp_state_destroy(exp_state *s);
/* The current snapshot, with a reference the caller releases. Never NULL. */
exp_config *exp_state_acquire(exp_state *s);
/* Bracket reading the registry's set of families (a scrape's start): a reload changes it
 * only outside these, so a scrape never sees half of a reload. Short; cannot fail. */
void exp_state_view_begin(exp_state *s);
void exp_state_view_end(exp_state *s);
/* Bumped by every successful reload: a cheap "is my snapshot still current?" check. */
uint64_t exp_state_generation(exp_state *s);
/* Reload (SIGHUP, /-/reload): load and validate everything first; invalid -> every error is
 * logged and appended to errs, the old configuration stays, returns -1; valid -> the registry
 * is made to match, the snapshot swapped, returns 0. A registry failure while applying rolls
 * back to the old configuration and returns -1. Serialised internally; any thread, not inside
 * a registry section. */
int exp_state_reload(exp_state *s, cfg_errors *errs);
/* Readiness (/-/ready): set once the configuration is applied and listeners are up. */
void exp_state_set_ready(exp_state *s, int ready);
int exp_state_ready(exp_state *s);

/* ---- sockets --------------------------------------------------------------------------- */

/* Split a listen address: "host:port", ":port" (all interfaces), "[v6addr]:port". host gets
 * "" for all interfaces. Returns 0, or -1 with a reason in err. */
int exp_split_address(const char *addr, char *host, size_t hostcap, unsigned *port, char *err,
                      size_t errlen);
/* A bound socket of the given type (SOCK_STREAM listens with a backlog; SOCK_DGRAM is only
 * bound) for a listen address. ":port" binds IPv6 dual-stack, or IPv4 when IPv6 is
 * unavailable. Returns the fd (close-on-exec), or -1 with a reason in err. */
int exp_listen(const char *addr, int socktype, char *err, size_t errlen);
/* The local address of a socket as "host:port" ("[v6]:port"). Returns buf; "?" on failure. */
const char *exp_sock_name(int fd, char *buf, size_t cap);

/* ---- HTTP server ------------------------------------------------------------------------- */

typedef struct exp_http exp_http;

/* Start the HTTP server on the snapshot's server settings (listen address, telemetry path,
 * limits; they are read once: changing them needs a restart). NULL with a reason in err. */
exp_http *exp_http_start(reg_registry *r, exp_state *st, exp_self *self, const exp_config *c,
                         int enable_lifecycle, char *err, size_t errlen);
/* "host:port" actually bound (useful with port 0). */
const char *exp_http_address(const exp_http *h);
/* Graceful stop: stop accepting, wait up to drain_ms for in-flight requests, then close
 * everything. Frees h. Cannot fail. */
void exp_http_stop(exp_http *h, unsigned drain_ms);

#endif
