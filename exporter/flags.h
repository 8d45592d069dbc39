/* flags.h - the command line: Prometheus-convention flags (GNU long options), parsed into
 * overrides that every configuration load and reload applies on top of the file. */
#ifndef ABACUS_EXPORTER_FLAGS_H
#define ABACUS_EXPORTER_FLAGS_H

#include <stdio.h>

#define EXP_UNSET (-1)
/* Read when --config.file is not given and the file exists (else built-in defaults). */
#define EXP_DEFAULT_CONFIG_FILE "abacus.yml"

/* The command line. Strings point into argv. Overrides are NULL / EXP_UNSET when not given;
 * given ones replace the file's values on every load and reload. */
typedef struct {
    const char *config_file;    /* --config.file; NULL: ./abacus.yml if present, else defaults */
    const char *mapping_config; /* --statsd.mapping-config; NULL: rules from config_file */
    int check_config;           /* --check-config: validate, print errors, exit */
    const char *health_check;   /* --health-check=ADDRESS: probe a running abacus, exit */
    int show_version, show_help;
    const char *log_level;  /* --log.level (debug|info|warn|error); default info */
    const char *log_format; /* --log.format (logfmt|json); default logfmt */
    int enable_lifecycle;   /* --web.enable-lifecycle: POST/PUT /-/reload allowed */
    int enable_admin_api;   /* --web.enable-admin-api: PUT /api/v1/admin/wipe allowed */
    /* overrides of the file */
    const char *listen_address; /* --web.listen-address */
    const char *telemetry_path; /* --web.telemetry-path */
    long long max_connections;  /* --web.max-connections */
    /* --web.max-concurrent-scrapes */
    long long max_concurrent_scrapes;
    const char *request_timeout; /* --web.request-timeout (a duration) */
    const char *write_timeout;   /* --web.write-timeout (a duration) */
    const char *web_config_file; /* --web.config.file; NULL: server.web_config_file; "": none */
    const char *statsd_listen_udp, *statsd_listen_tcp, *statsd_listen_unixgram;
    long long statsd_read_buffer, statsd_cache_size, statsd_readers;
    int statsd_dogstatsd_tags, statsd_influxdb_tags, statsd_librato_tags, statsd_signalfx_tags;
    const char *statsd_tcp_idle_timeout;  /* --statsd.tcp-idle-timeout (a duration) */
    long long statsd_max_tcp_connections; /* --statsd.max-tcp-connections */
    const char *push_group_ttl;           /* --push.group-ttl (a duration) */
    long long push_max_body_bytes;        /* --push.max-body-bytes */
    long long push_max_buffered_bytes;    /* --push.max-buffered-bytes */
    int push_enabled;                     /* --[no-]push.enabled */
    /* persistence (flags only, no file keys) */
    const char *persistence_file;     /* --persistence.file; NULL or "": off */
    const char *persistence_interval; /* --persistence.interval (a duration); NULL: 5m */
} exp_flags;

/* Parse argv (GNU long options, `--name=value` or `--name value`; booleans also as
 * `--no-name`). Returns 0 on success; 2 on a usage error after printing it and a hint to err. */
int exp_flags_parse(exp_flags *f, int argc, char **argv, FILE *err);
/* The --help text. Cannot fail. */
void exp_flags_usage(FILE *out);
/* The config file a load would read: the flag, ./abacus.yml when it exists, or NULL for
 * built-in defaults. Cannot fail. */
const char *exp_flags_config_path(const exp_flags *f);

#endif
