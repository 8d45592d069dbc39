/* config.h - the one YAML file: what abacus serves, listens on, and how StatsD names map.
 *
 * cfg_load() parses and validates a file completely (every error, each with its position)
 * into an immutable cfg_config. cfg_apply() makes a registry match a loaded config. The
 * mapper turns a StatsD metric name into a family name and labels following the rules of
 * prometheus/statsd_exporter's mapping file.
 *
 * A cfg_config is immutable once loaded: any number of threads may read it concurrently.
 */
#ifndef ABACUS_CONFIG_H
#define ABACUS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"

/* ---- errors ---------------------------------------------------------------------------- */

/* One problem found in a file: 1-based line and column (0 when not tied to a position). */
typedef struct {
    char *file;
    unsigned line, column;
    char *message;
} cfg_error;

typedef struct {
    cfg_error *items;
    size_t count, cap;
} cfg_errors;

void cfg_errors_free(cfg_errors *e);
/* Append one error (file may be NULL; line/column 0 when not tied to a position). Returns 0,
 * or -1 when out of memory (the error is then lost). */
int cfg_errors_add_at(cfg_errors *e, const char *file, unsigned line, unsigned column,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* "file:line:column: message" per error, one per line, to f. */
void cfg_errors_print(const cfg_errors *e, void *stdio_file);

/* ---- the model --------------------------------------------------------------------------- */

typedef enum { CFG_OBS_DEFAULT = 0, CFG_OBS_HISTOGRAM, CFG_OBS_SUMMARY } cfg_observer_type;
typedef enum { CFG_MATCH_DEFAULT = 0, CFG_MATCH_GLOB, CFG_MATCH_REGEX } cfg_match_type;
typedef enum { CFG_ACTION_MAP = 0, CFG_ACTION_DROP } cfg_action;
/* Which StatsD events a rule applies to (statsd_exporter's match_metric_type). */
typedef enum { CFG_MMT_ANY = 0, CFG_MMT_COUNTER, CFG_MMT_GAUGE, CFG_MMT_OBSERVER } cfg_metric_kind;

typedef struct {
    size_t nbuckets;
    double *buckets; /* NULL/0 = not set (inherit) */
} cfg_histogram_options;

typedef struct {
    size_t nobjectives;
    reg_objective *objectives; /* NULL/0 with has_objectives 0 = inherit */
    int has_objectives;
    uint64_t max_age_ns; /* 0 = inherit */
    unsigned age_buckets;
    unsigned buf_cap;
} cfg_summary_options;

typedef struct {
    char *name, *value;
} cfg_label;

/* A declared metric (`metrics:`). */
typedef struct {
    char *name, *help, *unit;
    reg_type type;
    size_t nlabels;
    char **labels;
    size_t nconst;
    cfg_label *const_labels;
    cfg_histogram_options histogram; /* resolved: defaults applied */
    cfg_summary_options summary;     /* resolved: defaults applied */
    uint64_t ttl_ns;
    int has_ttl;
    size_t max_series;
    unsigned line, column; /* where it was declared */
} cfg_metric;

/* A mapping rule (`mappings:`), syntax of statsd_exporter's mapping file. */
typedef struct {
    char *match;               /* glob or regex source */
    cfg_match_type match_type; /* resolved: defaults applied, never CFG_MATCH_DEFAULT */
    cfg_metric_kind match_metric_type;
    cfg_action action;
    char *name; /* may hold $1 / ${1} captures; NULL only with action drop */
    size_t nlabels;
    cfg_label *labels; /* values may hold captures */
    char *help;
    cfg_observer_type observer_type; /* resolved */
    cfg_histogram_options histogram; /* resolved */
    cfg_summary_options summary;     /* resolved */
    uint64_t ttl_ns;
    int has_ttl;
    double scale; /* 1 when not given */
    int has_scale;
    int honor_labels;
    unsigned line, column;
} cfg_mapping;

typedef struct {
    uint64_t ttl_ns;
    size_t max_series;
    cfg_observer_type observer_type; /* never CFG_OBS_DEFAULT after load: summary */
    cfg_histogram_options histogram; /* statsd_exporter defaults when not given */
    cfg_summary_options summary;
    cfg_match_type match_type;
    int glob_disable_ordering;
} cfg_defaults;

typedef struct {
    char *listen_address; /* ":9102" */
    char *telemetry_path; /* "/metrics" */
    size_t max_connections;
    size_t max_connections_per_ip;
    uint64_t connection_timeout_ns;
    size_t max_request_bytes;
    uint64_t request_timeout_ns;      /* headers and body complete within it; 0 = none (10s) */
    size_t max_concurrent_scrapes;    /* scrapes rendered at once; more wait (4) */
    uint64_t scrape_queue_timeout_ns; /* longest wait for a scrape slot, then 503 (10s) */
    uint64_t write_timeout_ns;        /* a response sent within it, or cut; 0 = none (60s) */
    char *web_config_file; /* the web config file; a relative one as written is resolved against
                            * the config file's directory; NULL or "": none */
} cfg_server;

typedef struct {
    char *listen_udp;      /* ":9125"; "" disables */
    char *listen_tcp;      /* ":9125"; "" disables */
    char *listen_unixgram; /* "" disables */
    size_t read_buffer;    /* SO_RCVBUF bytes; 0 = system default */
    unsigned readers;      /* UDP reader threads; 0 = 1 */
    int dogstatsd_tags, influxdb_tags, librato_tags, signalfx_tags; /* 1 = parse (default) */
    size_t cache_size;            /* mapping cache entries per reader; 0 = 1000 */
    size_t max_series;            /* global series limit; 0 = unlimited */
    uint64_t tcp_idle_timeout_ns; /* close a TCP connection idle this long; 0 = never (5m) */
    size_t max_tcp_connections;   /* open TCP connections; more are refused (1024) */
} cfg_statsd;

/* The Pushgateway-compatible push API on the HTTP listener. */
typedef struct {
    uint64_t group_ttl_ns;     /* a group goes this long after its last push; 0 = never (0) */
    size_t max_body_bytes;     /* largest push body, also after gzip decoding (16 MiB) */
    size_t max_buffered_bytes; /* bodies being received, together; more: 503 (64 MiB) */
    int enabled;               /* 1 = the push endpoints exist (1) */
} cfg_push;

/* ---- remote write (`remote_write:`, one entry per receiver; Prometheus's keys) ----------- */

/* write_relabel_configs actions abacus supports (Prometheus has more; they are refused). */
typedef enum { CFG_RELABEL_REPLACE = 0, CFG_RELABEL_KEEP, CFG_RELABEL_DROP } cfg_relabel_action;

/* One write_relabel_configs rule, Prometheus's semantics for its three actions. */
typedef struct {
    cfg_relabel_action action;
    size_t nsource_labels;
    char **source_labels; /* values joined with separator are matched ([] = "") */
    char *separator;      /* ";" */
    char *regex;          /* as written; matched anchored (^(?:regex)$); "(.*)" */
    char *target_label;   /* replace: required; may use $1 captures */
    char *replacement;    /* replace: "$1" */
    unsigned line, column;
} cfg_relabel;

typedef struct {
    char *name;                 /* `name:` or NULL; remote_name is then a hash of the url */
    char *url;                  /* http:// or https:// */
    uint64_t remote_timeout_ns; /* one send attempt's bound (30s) */
    uint64_t interval_ns;       /* how often the registry is sent (15s) */
    size_t nheaders;            /* extra request headers */
    char **header_names, **header_values;
    char *basic_username; /* basic_auth: username and password or password_file */
    char *basic_password, *basic_password_file;
    char *auth_type; /* authorization: type ("Bearer") and credentials(_file) */
    char *auth_credentials, *auth_credentials_file;
    char *ca_file, *cert_file, *key_file, *server_name; /* tls_config (paths resolved) */
    int insecure_skip_verify;
    size_t nrelabel;
    cfg_relabel *relabel; /* write_relabel_configs, in order */
    size_t nexternal;
    cfg_label *external_labels; /* added to series that lack them */
    /* queue_config */
    size_t capacity;                         /* samples queued at most (500000); beyond: dropped */
    size_t max_samples_per_send;             /* samples per request (2000) */
    uint64_t batch_send_deadline_ns;         /* longest wait for a full batch (5s) */
    uint64_t min_backoff_ns, max_backoff_ns; /* retry backoff (30ms, 5s) */
    int retry_on_http_429;                   /* 429 retried like 5xx (0: dropped like 4xx) */
    unsigned line, column;
} cfg_remote_write;

/* The largest byte-size setting (1 TiB): server.max_request_bytes, push.max_body_bytes and
 * push.max_buffered_bytes, in the file and as flags. */
#define CFG_MAX_BYTES_SETTING ((uint64_t)1 << 40)

typedef struct cfg_config {
    char *path;    /* file it came from; NULL for built-in defaults */
    uint64_t hash; /* of the file's bytes (config hash metric); 0 for defaults */
    cfg_server server;
    cfg_statsd statsd;
    cfg_push push;
    cfg_defaults defaults;
    size_t nmetrics;
    cfg_metric *metrics;
    size_t nmappings;
    cfg_mapping *mappings;
    size_t nremote_write;
    cfg_remote_write *remote_write;
} cfg_config;

/* 1 when two remote_write entries are the same receiver (the same name, or both unnamed with
 * the same url): a reload keeps its queue. Cannot fail. */
int cfg_remote_write_same_receiver(const cfg_remote_write *a, const cfg_remote_write *b);
/* 1 when every setting of a and b is equal. Cannot fail. */
int cfg_remote_write_equal(const cfg_remote_write *a, const cfg_remote_write *b);

/* ---- loading ----------------------------------------------------------------------------- */

/* Built-in defaults: no metrics, no mappings, default listeners. NULL on allocation failure. */
cfg_config *cfg_default(void);
/* Parse and validate path. Returns the config, or NULL with every problem appended to errs
 * (errs->count > 0). A missing or unreadable file is one error. */
cfg_config *cfg_load(const char *path, cfg_errors *errs);
/* Same, from a string (tests); name is used in error positions. */
cfg_config *cfg_load_string(const char *name, const char *yaml, size_t len, cfg_errors *errs);
void cfg_free(cfg_config *c);

/* The registry family definition of a declared metric. The result points into m and into
 * storage owned by *scratch-less* m; valid as long as m. Cannot fail. */
void cfg_metric_family_def(const cfg_metric *m, reg_family_def *out);

/* Make the registry's declared families match c: add new ones, replace changed ones (their
 * series are dropped), remove those declared by `old` but not by c, keep unchanged ones and
 * their series. Label-less declared metrics get their series (value 0) at once. Must not be
 * called inside a registry section. Returns REG_OK; REG_ECONFLICT when a declared metric
 * conflicts with pushed groups (found before anything changed, the registry as it was; only a
 * push racing with the apply can make it happen later); or the first other registry error
 * (the registry may then hold a mix; the caller logs it). */
int cfg_apply(reg_registry *r, const cfg_config *old, const cfg_config *c);

/* ---- the web config file (--web.config.file, the Prometheus exporter toolkit's format) ---- */

/* tls_server_config.client_auth_type, the toolkit's five values (Go's tls.ClientAuthType). */
typedef enum {
    CFG_CLIENT_AUTH_NONE = 0,          /* NoClientCert (default) */
    CFG_CLIENT_AUTH_REQUEST,           /* RequestClientCert */
    CFG_CLIENT_AUTH_REQUIRE_ANY,       /* RequireAnyClientCert */
    CFG_CLIENT_AUTH_VERIFY_IF_GIVEN,   /* VerifyClientCertIfGiven */
    CFG_CLIENT_AUTH_REQUIRE_AND_VERIFY /* RequireAndVerifyClientCert */
} cfg_client_auth;

/* TLS protocol versions as on the wire: 0x0301 TLS10 ... 0x0304 TLS13. */
#define CFG_TLS10 0x0301u
#define CFG_TLS11 0x0302u
#define CFG_TLS12 0x0303u
#define CFG_TLS13 0x0304u

/* A loaded web config file. Immutable once loaded. Paths are resolved against the file's
 * directory, as the toolkit does. */
typedef struct {
    char *path; /* the file */
    int tls;    /* tls_server_config with cert_file and key_file: serve HTTPS */
    char *cert_file, *key_file, *client_ca_file; /* NULL when not given */
    cfg_client_auth client_auth;
    size_t nallowed_sans;
    char **allowed_sans;  /* client_allowed_sans */
    unsigned min_version; /* CFG_TLS1x; the toolkit's default TLS12 */
    unsigned max_version; /* 0: no maximum */
    size_t ncipher_suites;
    char **cipher_suites; /* Go names, as written (e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) */
    size_t ncurves;
    char **curves; /* Go names: CurveP256, CurveP384, CurveP521, X25519 */
    int prefer_server_cipher_suites;
    size_t nusers;
    char **users, **hashes; /* basic_auth_users: name -> bcrypt hash */
    size_t nheaders;
    char **header_names, **header_values; /* http_server_config.headers */
} cfg_web;

/* Load and check a web config file completely: every error with its position
 * ("file:line:column: path: message"), as cfg_load reports. NULL on any error. */
cfg_web *cfg_web_load(const char *path, cfg_errors *errs);
void cfg_web_free(cfg_web *w);

/* ---- mapping ----------------------------------------------------------------------------- */

typedef struct cfg_mapper cfg_mapper;

/* The outcome of mapping one StatsD name. Strings point into storage owned by the mapper
 * cache and stay valid until the next cfg_mapper_map call on the same cfg_mapper_cache. */
typedef struct {
    int drop;                /* 1: action drop; ignore the event */
    int mapped;              /* 1: a rule matched; 0: default escaping of the name */
    const cfg_mapping *rule; /* the matching rule, NULL when unmapped */
    const char *name;        /* the metric (family) name */
    size_t nlabels;
    const char *const *label_names;
    const char *const *label_values;
} cfg_map_result;

typedef struct cfg_mapper_cache cfg_mapper_cache;

/* Compile the rules of c (globs into a matcher, regexes with PCRE2). The config must outlive
 * the mapper. NULL with errs filled when a rule does not compile. Immutable: any number of
 * threads may map concurrently, each with its own cache. */
cfg_mapper *cfg_mapper_create(const cfg_config *c, cfg_errors *errs);
void cfg_mapper_free(cfg_mapper *m);

/* A bounded name -> result cache; one per thread (not thread-safe). NULL on alloc failure. */
cfg_mapper_cache *cfg_mapper_cache_create(size_t entries);
void cfg_mapper_cache_free(cfg_mapper_cache *c);
/* Cache hits and misses so far (for self-metrics). */
void cfg_mapper_cache_stats(const cfg_mapper_cache *c, uint64_t *hits, uint64_t *misses);

/* Map a StatsD name of the given kind. Returns 0 and fills *out; -1 when out of memory.
 * The cache is invalidated automatically when used with a different mapper. */
int cfg_mapper_map(const cfg_mapper *m, cfg_mapper_cache *cache, const char *name, size_t len,
                   cfg_metric_kind kind, cfg_map_result *out);

/* statsd_exporter's escaping of an unmapped name into a valid metric name (invalid characters
 * become '_', a leading digit gets a '_' prefix). Writes at most cap bytes incl. NUL; returns
 * the length, or -1 if it does not fit. */
long cfg_escape_metric_name(const char *name, size_t len, char *out, size_t cap);

/* Metric and label name rules: reg_valid_metric_name, reg_valid_label_name and
 * reg_reserved_label_name in registry.h (one rule for files, families and ingest alike). */

/* 1 when two settings of a configuration differ, NULL and "" both meaning "not set" (for the
 * warnings about settings a reload cannot change). Cannot fail. */
int cfg_setting_changed(const char *a, const char *b);

/* A listen address: `host:port`, `:port` (all interfaces) or `[v6]:port`; port 0-65535 (0: any
 * free port). A host has no space, control character, ':' or any of "[]/"; a bracketed IPv6
 * address only hex digits, ':', '.' and '%'. Returns 0 with the host (brackets removed, ""
 * for all interfaces) copied into host[hostcap] unless host is NULL, and *port unless port is
 * NULL; or -1 with a one-line reason in err[errlen] (unless err is NULL). The one grammar for
 * the file and the command line. */
int cfg_parse_address(const char *addr, char *host, size_t hostcap, unsigned *port, char *err,
                      size_t errlen);

/* Parse a duration like "30s", "5m", "1h", "1h30m", "500ms", "0s" (Prometheus syntax).
 * Returns 0 and sets *ns, or -1 when invalid. */
int cfg_parse_duration(const char *s, uint64_t *ns);

#endif
