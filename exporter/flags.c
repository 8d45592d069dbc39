/* flags.c - the command line: the flag table, parsing argv into overrides of the
 * configuration file, --help, and which configuration file a load reads.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "flags.h"
#include "log.h"
#include "version.h"

/* ---- flag table ------------------------------------------------------------------------- */

typedef enum { F_BOOL, F_STR, F_INT, F_HELP, F_VERSION } flag_kind;

typedef struct {
    const char *name;
    flag_kind kind;
    size_t off;
    const char *def; /* shown in --help: the default, or a placeholder */
    const char *help;
} flag_def;

#define OFF(field) offsetof(exp_flags, field)

static const flag_def flags[] = {
    {"web.listen-address", F_STR, OFF(listen_address), "\":9102\"",
     "Address to serve /metrics and the web endpoints on (host:port, :port, [v6]:port)."},
    {"web.telemetry-path", F_STR, OFF(telemetry_path), "\"/metrics\"",
     "Path under which to expose metrics."},
    {"web.enable-lifecycle", F_BOOL, OFF(enable_lifecycle), NULL,
     "Enable configuration reload via HTTP (POST/PUT /-/reload)."},
    {"web.enable-admin-api", F_BOOL, OFF(enable_admin_api), NULL,
     "Enable the admin API (PUT /api/v1/admin/wipe deletes every pushed group)."},
    {"web.max-connections", F_INT, OFF(max_connections), "512",
     "Maximum number of simultaneous HTTP connections."},
    {"web.max-concurrent-scrapes", F_INT, OFF(max_concurrent_scrapes), "4",
     "Scrapes rendered at once; more wait for a slot (server.scrape_queue_timeout), then 503."},
    {"web.request-timeout", F_STR, OFF(request_timeout), "10s",
     "Close a connection whose request headers and body are not complete within this "
     "(duration; 0 = none)."},
    {"web.write-timeout", F_STR, OFF(write_timeout), "60s",
     "Cut a response (and free its scrape slot) not sent within this (duration; 0 = none)."},
    {"web.config.file", F_STR, OFF(web_config_file), "FILE",
     "Web config file of the Prometheus exporter toolkit (TLS, basic auth, headers); overrides "
     "server.web_config_file. \"\": none."},
    {"config.file", F_STR, OFF(config_file), "\"abacus.yml\"",
     "Configuration file. Without the flag: ./abacus.yml if present, else built-in defaults."},
    {"check-config", F_BOOL, OFF(check_config), NULL,
     "Validate the configuration, print every error as file:line:column: path: message, exit."},
    {"health-check", F_STR, OFF(health_check), "ADDRESS",
     "Probe the abacus listening on ADDRESS (\"127.0.0.1:9102\") for /-/healthy over HTTP or "
     "HTTPS, exit 0 if healthy: the image's HEALTHCHECK."},
    {"statsd.listen-udp", F_STR, OFF(statsd_listen_udp), "\":9125\"",
     "UDP address to receive StatsD lines on. \"\" disables it."},
    {"statsd.listen-tcp", F_STR, OFF(statsd_listen_tcp), "\":9125\"",
     "TCP address to receive StatsD lines on. \"\" disables it."},
    {"statsd.listen-unixgram", F_STR, OFF(statsd_listen_unixgram), "\"\"",
     "Unix datagram socket path to receive StatsD lines on. \"\" disables it."},
    {"statsd.mapping-config", F_STR, OFF(mapping_config), "FILE",
     "statsd_exporter mapping file; its mappings and defaults replace the config file's."},
    {"statsd.read-buffer", F_INT, OFF(statsd_read_buffer), "BYTES",
     "Receive buffer size (SO_RCVBUF bytes) of the UDP and Unixgram sockets."},
    {"statsd.cache-size", F_INT, OFF(statsd_cache_size), "1000",
     "Mapping cache entries per reader."},
    {"statsd.readers", F_INT, OFF(statsd_readers), "1", "UDP reader threads."},
    {"statsd.parse-dogstatsd-tags", F_BOOL, OFF(statsd_dogstatsd_tags), NULL,
     "Parse DogStatsD style tags (default on; --no-... disables)."},
    {"statsd.parse-influxdb-tags", F_BOOL, OFF(statsd_influxdb_tags), NULL,
     "Parse InfluxDB style tags (default on; --no-... disables)."},
    {"statsd.parse-librato-tags", F_BOOL, OFF(statsd_librato_tags), NULL,
     "Parse Librato style tags (default on; --no-... disables)."},
    {"statsd.parse-signalfx-tags", F_BOOL, OFF(statsd_signalfx_tags), NULL,
     "Parse SignalFX style tags (default on; --no-... disables)."},
    {"statsd.tcp-idle-timeout", F_STR, OFF(statsd_tcp_idle_timeout), "5m",
     "Close a StatsD TCP connection that sent nothing for this long (duration; 0 = never)."},
    {"statsd.max-tcp-connections", F_INT, OFF(statsd_max_tcp_connections), "1024",
     "Open StatsD TCP connections at most; more are refused and counted."},
    {"push.enabled", F_BOOL, OFF(push_enabled), NULL,
     "Serve the Pushgateway-compatible push endpoints (default on; --no-... disables)."},
    {"push.group-ttl", F_STR, OFF(push_group_ttl), "0",
     "Remove a pushed group this long after its last successful push (duration; 0 = never)."},
    {"push.max-body-bytes", F_INT, OFF(push_max_body_bytes), "16777216",
     "Largest push body accepted, also after gzip decoding."},
    {"push.max-buffered-bytes", F_INT, OFF(push_max_buffered_bytes), "67108864",
     "Push bodies being received hold at most this much together; a push beyond gets 503."},
    {"persistence.file", F_STR, OFF(persistence_file), "FILE",
     "Save the registry to this snapshot file and restore it at start. \"\" (default): off."},
    {"persistence.interval", F_STR, OFF(persistence_interval), "5m",
     "How often the snapshot is written (duration; 0 = only at shutdown)."},
    {"log.level", F_STR, OFF(log_level), "info",
     "Only log messages with the given severity or above: debug, info, warn, error."},
    {"log.format", F_STR, OFF(log_format), "logfmt",
     "Output format of log messages: logfmt, json."},
    {"version", F_VERSION, OFF(show_version), NULL, "Show the version and exit."},
    {"help", F_HELP, OFF(show_help), NULL, "Show this help and exit."},
};
#define NFLAGS (sizeof flags / sizeof flags[0])

/* Prints every flag with its default to out. Cannot fail (write errors are ignored). */
void exp_flags_usage(FILE *out) {
    fprintf(out, "usage: abacus [<flags>]\n\n"
                 "A Prometheus metrics sidecar: StatsD in, /metrics out.\n\nFlags:\n");
    for (size_t i = 0; i < NFLAGS; i++) {
        const flag_def *d = &flags[i];
        char head[96];
        if (d->kind == F_STR || d->kind == F_INT)
            snprintf(head, sizeof head, "--%s=%s", d->name,
                     d->def ? d->def : (d->kind == F_INT ? "N" : "VALUE"));
        else if (d->kind == F_HELP)
            snprintf(head, sizeof head, "-h, --help");
        else
            snprintf(head, sizeof head, "--%s", d->name);
        fprintf(out, "  %-38s %s\n", head, d->help);
    }
}

static int usage_error(FILE *err, const char *fmt, const char *arg) {
    fprintf(err, "abacus: error: ");
    fprintf(err, fmt, arg);
    fprintf(err, ", try --help\n");
    return 2;
}

static int parse_bool(const char *v, int *out) {
    if (!strcmp(v, "true") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "0"))
        *out = 0;
    else
        return -1;
    return 0;
}

static int parse_count(const char *v, long long *out) {
    if (*v < '0' || *v > '9') /* strtoll would take white space and signs */
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < 0)
        return -1;
    *out = n;
    return 0;
}

/* The flag a `--name` or `--no-name` argument names (name without the dashes, nlen bytes of
 * it); *negated set for the `no-` form. NULL when there is none. Cannot fail. */
static const flag_def *find_flag(const char *name, size_t nlen, int *negated) {
    for (int pass = 0; pass < 2; pass++) {
        const char *n = name;
        size_t len = nlen;
        if (pass == 1) {
            if (nlen <= 3 || strncmp(name, "no-", 3) != 0)
                return NULL;
            n += 3;
            len -= 3;
        }
        for (size_t k = 0; k < NFLAGS; k++) {
            if (strlen(flags[k].name) == len && !strncmp(flags[k].name, n, len)) {
                *negated = pass;
                return &flags[k];
            }
        }
    }
    return NULL;
}

/* Apply argv[*i] (and its value, which may be argv[*i + 1]) to f. Returns 0, or 2 on a usage
 * error after printing it to err. */
static int parse_one(exp_flags *f, int argc, char **argv, int *i, FILE *err) {
    const char *a = argv[*i];
    const char *name = a + 2;
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    int negated = 0;
    const flag_def *d = find_flag(name, nlen, &negated);
    if (!d || (negated && d->kind != F_BOOL))
        return usage_error(err, "unknown flag %s", a);
    void *field = (char *)f + d->off;
    if (d->kind == F_BOOL || d->kind == F_HELP || d->kind == F_VERSION) {
        int v = 1;
        if (eq && (negated || d->kind != F_BOOL || parse_bool(eq + 1, &v) != 0))
            return usage_error(err, "invalid value for flag %s", a);
        *(int *)field = negated ? 0 : v;
        return 0;
    }
    const char *val;
    if (eq)
        val = eq + 1;
    else if (*i + 1 < argc)
        val = argv[++*i];
    else
        return usage_error(err, "flag %s requires a value", a);
    if (d->kind == F_STR) {
        *(const char **)field = val;
    } else if (parse_count(val, (long long *)field) != 0) {
        fprintf(err,
                "abacus: error: invalid value \"%s\" for flag --%s (want a count), try --help\n",
                val, d->name);
        return 2;
    }
    return 0;
}

/* The values that are checked as a whole once every flag is read. 0, or 2 after printing a
 * usage error to err. */
static int check_values(const exp_flags *f, FILE *err) {
    uint64_t ns;
    if (f->request_timeout && cfg_parse_duration(f->request_timeout, &ns) != 0)
        return usage_error(err, "invalid --web.request-timeout %s (want a duration: 10s, 1m)",
                           f->request_timeout);
    if (f->write_timeout && cfg_parse_duration(f->write_timeout, &ns) != 0)
        return usage_error(err, "invalid --web.write-timeout %s (want a duration: 30s, 1m)",
                           f->write_timeout);
    if (f->statsd_tcp_idle_timeout && cfg_parse_duration(f->statsd_tcp_idle_timeout, &ns) != 0)
        return usage_error(err, "invalid --statsd.tcp-idle-timeout %s (want a duration: 30s, 5m)",
                           f->statsd_tcp_idle_timeout);
    if (f->push_group_ttl && cfg_parse_duration(f->push_group_ttl, &ns) != 0)
        return usage_error(err, "invalid --push.group-ttl %s (want a duration: 10m, 1h)",
                           f->push_group_ttl);
    if (f->persistence_interval && cfg_parse_duration(f->persistence_interval, &ns) != 0)
        return usage_error(err, "invalid --persistence.interval %s (want a duration: 30s, 5m)",
                           f->persistence_interval);
    if (f->log_level && exp_log_set_level(f->log_level) != 0)
        return usage_error(err, "invalid --log.level %s (debug, info, warn, error)", f->log_level);
    if (f->log_format && exp_log_set_format(f->log_format) != 0)
        return usage_error(err, "invalid --log.format %s (logfmt, json)", f->log_format);
    return 0;
}

/* Returns 0, or 2 on a usage error after printing it to err. */
int exp_flags_parse(exp_flags *f, int argc, char **argv, FILE *err) {
    memset(f, 0, sizeof *f);
    f->max_connections = EXP_UNSET;
    f->max_concurrent_scrapes = EXP_UNSET;
    f->statsd_read_buffer = f->statsd_cache_size = f->statsd_readers = EXP_UNSET;
    f->statsd_dogstatsd_tags = f->statsd_influxdb_tags = EXP_UNSET;
    f->statsd_librato_tags = f->statsd_signalfx_tags = EXP_UNSET;
    f->statsd_max_tcp_connections = EXP_UNSET;
    f->push_max_body_bytes = f->push_max_buffered_bytes = EXP_UNSET;
    f->push_enabled = EXP_UNSET;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h")) {
            f->show_help = 1;
            continue;
        }
        if (!strcmp(a, "--")) { /* the end of the flags; abacus takes no arguments */
            if (i + 1 < argc)
                return usage_error(err, "unexpected argument %s", argv[i + 1]);
            break;
        }
        if (strncmp(a, "--", 2) != 0)
            return usage_error(err, "unexpected argument %s", a);
        int rc = parse_one(f, argc, argv, &i, err);
        if (rc != 0)
            return rc;
    }
    return check_values(f, err);
}

/* The named file, ./abacus.yml when present, or NULL. Cannot fail. */
const char *exp_flags_config_path(const exp_flags *f) {
    if (f->config_file)
        return f->config_file;
    if (access(EXP_DEFAULT_CONFIG_FILE, F_OK) == 0)
        return EXP_DEFAULT_CONFIG_FILE;
    return NULL;
}
