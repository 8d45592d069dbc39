/* state.c - the process configuration: loading the files the flags name into immutable
 * snapshots (flags applied on top, mapping rules compiled, settings checked), and the current
 * snapshot with its reload (SIGHUP, /-/reload).
 *
 * Flags override the file on every load, so a reload never loses them. Readers take a
 * reference on the current snapshot under a short mutex; a reload swaps the pointer and drops
 * the state's reference, so a snapshot is freed only after its last reader released it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "state.h"

/* ---- loading ------------------------------------------------------------------------------ */

/* Replace a config string (cfg_free releases them with free()). -1 when out of memory. */
static int set_str(char **field, const char *v) {
    char *copy = strdup(v);
    if (!copy)
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

static int apply_flags(const exp_flags *f, cfg_config *c) {
    int rc = 0;
    if (f->listen_address)
        rc |= set_str(&c->server.listen_address, f->listen_address);
    if (f->web_config_file)
        rc |= set_str(&c->server.web_config_file, f->web_config_file);
    if (f->telemetry_path)
        rc |= set_str(&c->server.telemetry_path, f->telemetry_path);
    if (f->max_connections != EXP_UNSET)
        c->server.max_connections = (size_t)f->max_connections;
    if (f->max_concurrent_scrapes != EXP_UNSET)
        c->server.max_concurrent_scrapes = (size_t)f->max_concurrent_scrapes;
    if (f->statsd_listen_udp)
        rc |= set_str(&c->statsd.listen_udp, f->statsd_listen_udp);
    if (f->statsd_listen_tcp)
        rc |= set_str(&c->statsd.listen_tcp, f->statsd_listen_tcp);
    if (f->statsd_listen_unixgram)
        rc |= set_str(&c->statsd.listen_unixgram, f->statsd_listen_unixgram);
    if (f->statsd_read_buffer != EXP_UNSET)
        c->statsd.read_buffer = (size_t)f->statsd_read_buffer;
    if (f->statsd_cache_size != EXP_UNSET)
        c->statsd.cache_size = (size_t)f->statsd_cache_size;
    if (f->statsd_readers != EXP_UNSET)
        c->statsd.readers = (unsigned)f->statsd_readers;
    if (f->statsd_dogstatsd_tags != EXP_UNSET)
        c->statsd.dogstatsd_tags = f->statsd_dogstatsd_tags;
    if (f->statsd_influxdb_tags != EXP_UNSET)
        c->statsd.influxdb_tags = f->statsd_influxdb_tags;
    if (f->statsd_librato_tags != EXP_UNSET)
        c->statsd.librato_tags = f->statsd_librato_tags;
    if (f->statsd_signalfx_tags != EXP_UNSET)
        c->statsd.signalfx_tags = f->statsd_signalfx_tags;
    uint64_t ns; /* checked by exp_flags_parse */
    if (f->request_timeout && cfg_parse_duration(f->request_timeout, &ns) == 0)
        c->server.request_timeout_ns = ns;
    if (f->write_timeout && cfg_parse_duration(f->write_timeout, &ns) == 0)
        c->server.write_timeout_ns = ns;
    if (f->statsd_tcp_idle_timeout && cfg_parse_duration(f->statsd_tcp_idle_timeout, &ns) == 0)
        c->statsd.tcp_idle_timeout_ns = ns;
    if (f->statsd_max_tcp_connections != EXP_UNSET)
        c->statsd.max_tcp_connections = (size_t)f->statsd_max_tcp_connections;
    if (f->push_group_ttl && cfg_parse_duration(f->push_group_ttl, &ns) == 0)
        c->push.group_ttl_ns = ns;
    if (f->push_max_body_bytes != EXP_UNSET)
        c->push.max_body_bytes = (size_t)f->push_max_body_bytes;
    if (f->push_max_buffered_bytes != EXP_UNSET)
        c->push.max_buffered_bytes = (size_t)f->push_max_buffered_bytes;
    if (f->push_enabled != EXP_UNSET)
        c->push.enabled = f->push_enabled;
    return rc ? -1 : 0;
}

/* Where a server/statsd value came from, for error messages. */
static const char *origin(const char *flagval, const char *flagname, const cfg_config *c) {
    if (flagval)
        return flagname;
    return c->path ? c->path : "<defaults>";
}

static void check_address(cfg_errors *errs, const char *where, const char *key, const char *addr,
                          int may_be_empty) {
    char host[256], why[160];
    unsigned port;
    if (!addr || !*addr) {
        if (!may_be_empty)
            cfg_errors_add_at(errs, where, 0, 0, "%s: a listen address is required", key);
        return;
    }
    if (cfg_parse_address(addr, host, sizeof host, &port, why, sizeof why) != 0)
        cfg_errors_add_at(errs, where, 0, 0, "%s: invalid listen address \"%s\": %s", key, addr,
                          why);
}

/* "/" is the landing page; "/-/" holds the lifecycle endpoints. */
static int reserved_path(const char *p) {
    return !strcmp(p, "/") || !strncmp(p, "/-/", 3);
}

/* A limit flag (where 0 would refuse everything) gets the loader's bounds for the same key:
 * 1..max; unset is fine. Cannot fail. */
static void check_limit(cfg_errors *errs, const char *flag, long long v, long long max) {
    if (v != EXP_UNSET && (v < 1 || v > max))
        cfg_errors_add_at(errs, flag, 0, 0, "must be between 1 and %lld", max);
}

static void check_settings(const exp_flags *f, const cfg_config *c, cfg_errors *errs) {
    check_address(errs, origin(f->listen_address, "--web.listen-address", c),
                  "server.listen_address", c->server.listen_address, 0);
    const char *tp = c->server.telemetry_path;
    const char *where = origin(f->telemetry_path, "--web.telemetry-path", c);
    if (!tp || tp[0] != '/' || strpbrk(tp, "?# \t\r\n"))
        cfg_errors_add_at(
            errs, where, 0, 0,
            "server.telemetry_path: \"%s\" must be an absolute path without query or spaces",
            tp ? tp : "");
    else if (reserved_path(tp))
        cfg_errors_add_at(
            errs, where, 0, 0,
            "server.telemetry_path: \"%s\" is reserved (\"/\" and paths under \"/-/\")", tp);
    /* Flag values get the limits the loader applies to the same keys in the file. */
    check_limit(errs, "--web.max-connections", f->max_connections, 1000000);
    check_limit(errs, "--web.max-concurrent-scrapes", f->max_concurrent_scrapes, 1024);
    if (f->statsd_read_buffer != EXP_UNSET && f->statsd_read_buffer > INT32_MAX)
        cfg_errors_add_at(errs, "--statsd.read-buffer", 0, 0, "must be at most %d", INT32_MAX);
    if (f->statsd_readers != EXP_UNSET && f->statsd_readers > 256)
        cfg_errors_add_at(errs, "--statsd.readers", 0, 0, "must be at most 256");
    if (f->statsd_cache_size != EXP_UNSET && f->statsd_cache_size > 10000000)
        cfg_errors_add_at(errs, "--statsd.cache-size", 0, 0, "must be at most 10000000");
    check_limit(errs, "--statsd.max-tcp-connections", f->statsd_max_tcp_connections, 1000000);
    check_limit(errs, "--push.max-body-bytes", f->push_max_body_bytes,
                (long long)CFG_MAX_BYTES_SETTING);
    check_limit(errs, "--push.max-buffered-bytes", f->push_max_buffered_bytes,
                (long long)CFG_MAX_BYTES_SETTING);
    if (c->statsd.listen_unixgram && strlen(c->statsd.listen_unixgram) > 107)
        cfg_errors_add_at(errs, origin(f->statsd_listen_unixgram, "--statsd.listen-unixgram", c), 0,
                          0, "statsd.listen_unixgram: socket path too long (max 107 bytes)");
    check_address(errs, origin(f->statsd_listen_udp, "--statsd.listen-udp", c), "statsd.listen_udp",
                  c->statsd.listen_udp, 1);
    check_address(errs, origin(f->statsd_listen_tcp, "--statsd.listen-tcp", c), "statsd.listen_tcp",
                  c->statsd.listen_tcp, 1);
}

/* Cannot fail. */
exp_config *exp_config_ref(exp_config *c) {
    /* Relaxed: taken from a reference already held (the caller's or s->cur's under cur_lock),
     * so the count cannot reach 0 meanwhile; the release below orders the uses. */
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

/* Frees the snapshot with its last reference. Cannot fail. */
void exp_config_release(exp_config *c) {
    /* acq_rel: the release orders this holder's uses before the free; the acquire makes the
     * last one out see every other holder's uses before it frees. */
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (c->mapper)
        cfg_mapper_free(c->mapper);
    cfg_web_free(c->web);
    cfg_free(c->mapping_file);
    cfg_free(c->cfg);
    free(c);
}

/* Returns a snapshot, or NULL with every problem appended to errs. */
exp_config *exp_config_load(const exp_flags *f, cfg_errors *errs) {
    size_t before = errs->count;
    const char *path = exp_flags_config_path(f);
    cfg_config *cfg = path ? cfg_load(path, errs) : cfg_default();
    if (!cfg && errs->count == before)
        cfg_errors_add_at(errs, path ? path : "<defaults>", 0, 0, "cannot load: out of memory");
    cfg_config *mf = NULL;
    if (f->mapping_config) {
        size_t b = errs->count;
        mf = cfg_load(f->mapping_config, errs);
        if (!mf && errs->count == b)
            cfg_errors_add_at(errs, f->mapping_config, 0, 0, "cannot load: out of memory");
        if (mf && mf->nmetrics > 0)
            cfg_errors_add_at(
                errs, f->mapping_config, mf->metrics[0].line, mf->metrics[0].column,
                "metrics: declared metrics belong in the config file (--config.file), "
                "not in the mapping file");
    }
    for (size_t i = 0; cfg && i < cfg->nmetrics; i++) {
        const cfg_metric *m = &cfg->metrics[i];
        if (!strncmp(m->name, "abacus_", 7) || !strncmp(m->name, "process_", 8))
            cfg_errors_add_at(
                errs, cfg->path, m->line, m->column,
                "metrics[%zu].name: \"%s\": the abacus_ and process_ prefixes are reserved "
                "for abacus's own metrics",
                i, m->name);
    }
    exp_config *c = NULL;
    cfg_web *web = NULL;
    if (cfg) {
        if (apply_flags(f, cfg) != 0)
            cfg_errors_add_at(errs, "<flags>", 0, 0, "out of memory applying flags");
        check_settings(f, cfg, errs);
        const char *wpath = cfg->server.web_config_file;
        if (wpath && *wpath) {
            size_t b = errs->count;
            web = cfg_web_load(wpath, errs);
            if (!web && errs->count == b)
                cfg_errors_add_at(errs, wpath, 0, 0, "cannot load: out of memory");
        }
    }
    if (!cfg || errs->count > before) /* no cfg and no error: the error itself found no memory */
        goto fail;
    c = calloc(1, sizeof *c);
    if (!c) {
        cfg_errors_add_at(errs, "<config>", 0, 0, "out of memory");
        goto fail;
    }
    c->cfg = cfg;
    c->mapping_file = mf;
    c->web = web;
    c->rules = mf ? mf : cfg;
    c->hash = cfg->hash;
    if (mf)
        c->hash ^= mf->hash * 0x9E3779B97F4A7C15ULL;
    atomic_init(&c->refs, 1);
    c->mapper = cfg_mapper_create(c->rules, errs);
    if (!c->mapper) {
        if (errs->count == before)
            cfg_errors_add_at(errs, c->rules->path, 0, 0, "cannot compile the mapping rules");
        c->web = NULL;
        free(c);
        goto fail;
    }
    return c;
fail:
    cfg_web_free(web);
    cfg_free(mf);
    cfg_free(cfg);
    return NULL;
}

/* ---- the current snapshot ------------------------------------------------------------------ */

struct exp_state {
    reg_registry *reg;
    exp_flags flags; /* a copy: config_file pinned to the file the first load used */
    exp_self *self;
    pthread_mutex_t cur_lock;    /* guards cur for acquire/swap; held for a pointer copy */
    exp_config *cur;             /* holds one reference */
    pthread_mutex_t reload_lock; /* one reload at a time */
    /* Scrapes read the registry's family list under it (read); a reload changes the
     * registry under it (write): a scrape sees the old configuration's families or the
     * new one's, never a mix. Writer-preferring, so reloads are not starved. */
    pthread_rwlock_t view_lock;
    _Atomic uint64_t generation;
    _Atomic int ready;
};

static void log_errors(const cfg_errors *e, size_t from, const char *msg) {
    for (size_t i = from; i < e->count; i++) {
        char line[16], col[16];
        snprintf(line, sizeof line, "%u", e->items[i].line);
        snprintf(col, sizeof col, "%u", e->items[i].column);
        exp_log(EXP_LOG_ERROR, msg, "file", e->items[i].file, "line", line, "column", col, "err",
                e->items[i].message, NULL);
    }
}

static void log_loaded(const char *msg, const exp_config *c) {
    char nm[24], nmap[24], hash[24];
    snprintf(nm, sizeof nm, "%zu", c->cfg->nmetrics);
    snprintf(nmap, sizeof nmap, "%zu", c->rules->nmappings);
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)c->hash);
    exp_log(EXP_LOG_INFO, msg, "file", c->cfg->path ? c->cfg->path : "<built-in defaults>",
            "mapping_file", c->mapping_file ? c->mapping_file->path : "", "metrics", nm, "mappings",
            nmap, "hash", hash, NULL);
}

/* Returns the state, or NULL with a reason in err (apply failed, out of memory). */
/* Why cfg_apply failed, for a log line or an error list. Cannot fail. */
static const char *apply_error(int rc) {
    if (rc == REG_ECONFLICT)
        return "a declared metric conflicts with pushed metrics (its type, a job or instance "
               "label, or a name one of them renders; push_time_seconds and "
               "push_failure_time_seconds only as label-less gauges)";
    return reg_strerror(rc);
}

exp_state *exp_state_create(reg_registry *r, const exp_flags *f, exp_self *self,
                            exp_config *initial, char *err, size_t errlen) {
    exp_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        exp_config_release(initial); /* owned from the call on, also on failure */
        return NULL;
    }
    int rc = cfg_apply(r, NULL, initial->cfg);
    if (rc != REG_OK) {
        snprintf(err, errlen, "applying the configuration to the registry: %s", apply_error(rc));
        free(s);
        exp_config_release(initial);
        return NULL;
    }
    s->reg = r;
    s->flags = *f;
    /* Started from ./abacus.yml: reloads keep reading it (a deleted file is an error, not a
     * silent switch to the built-in defaults). */
    if (!s->flags.config_file && initial->cfg->path)
        s->flags.config_file = EXP_DEFAULT_CONFIG_FILE;
    s->self = self;
    s->cur = initial;
    pthread_mutex_init(&s->cur_lock, NULL);
    pthread_mutex_init(&s->reload_lock, NULL);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->view_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    atomic_init(&s->generation, 1);
    atomic_init(&s->ready, 0);
    if (self)
        exp_self_config_loaded(self, 1, initial->hash);
    log_loaded("configuration loaded", initial);
    return s;
}

/* Cannot fail. */
void exp_state_destroy(exp_state *s) {
    if (!s)
        return;
    exp_config_release(s->cur);
    pthread_mutex_destroy(&s->cur_lock);
    pthread_mutex_destroy(&s->reload_lock);
    pthread_rwlock_destroy(&s->view_lock);
    free(s);
}

/* Never NULL. Cannot fail. */
exp_config *exp_state_acquire(exp_state *s) {
    pthread_mutex_lock(&s->cur_lock);
    exp_config *c = exp_config_ref(s->cur);
    pthread_mutex_unlock(&s->cur_lock);
    return c;
}

/* Cannot fail. */
uint64_t exp_state_generation(exp_state *s) {
    /* Acquire: pairs with the release increment in exp_state_reload, so a caller that sees
     * the new generation then gets the new snapshot from exp_state_acquire. */
    return atomic_load_explicit(&s->generation, memory_order_acquire);
}

/* Cannot fail. */
void exp_state_view_begin(exp_state *s) {
    pthread_rwlock_rdlock(&s->view_lock);
}

/* Cannot fail. */
void exp_state_view_end(exp_state *s) {
    pthread_rwlock_unlock(&s->view_lock);
}

/* Returns 0 when applied; -1 when rejected (errors in errs, old config kept). */
int exp_state_reload(exp_state *s, cfg_errors *errs) {
    pthread_mutex_lock(&s->reload_lock);
    size_t before = errs->count;
    exp_config *next = exp_config_load(&s->flags, errs);
    if (!next) {
        log_errors(errs, before, "invalid configuration, keeping the old one");
        exp_self_config_loaded(s->self, 0, 0);
        pthread_mutex_unlock(&s->reload_lock);
        return -1;
    }
    exp_config *old = s->cur; /* only reloads swap it, and we hold reload_lock */
    pthread_rwlock_wrlock(&s->view_lock);
    int rc = cfg_apply(s->reg, old->cfg, next->cfg);
    if (rc != REG_OK) {
        cfg_errors_add_at(errs, next->cfg->path ? next->cfg->path : "<defaults>", 0, 0,
                          "applying the configuration to the registry failed: %s", apply_error(rc));
        log_errors(errs, before, "configuration rejected, keeping the old one");
        /* A conflict with pushed groups is found before anything changes: nothing to undo
         * (undoing would empty the old families it re-creates). */
        int rb = rc == REG_ECONFLICT ? REG_OK : cfg_apply(s->reg, next->cfg, old->cfg);
        pthread_rwlock_unlock(&s->view_lock);
        if (rb != REG_OK)
            exp_log(EXP_LOG_ERROR, "restoring the old configuration's metrics failed", "err",
                    reg_strerror(rb), NULL);
        exp_config_release(next);
        exp_self_config_loaded(s->self, 0, 0);
        pthread_mutex_unlock(&s->reload_lock);
        return -1;
    }
    pthread_rwlock_unlock(&s->view_lock);
    const cfg_server *a = &old->cfg->server, *b = &next->cfg->server;
    if (cfg_setting_changed(a->listen_address, b->listen_address) ||
        cfg_setting_changed(a->telemetry_path, b->telemetry_path) ||
        a->max_connections != b->max_connections ||
        a->max_connections_per_ip != b->max_connections_per_ip ||
        a->connection_timeout_ns != b->connection_timeout_ns ||
        a->max_request_bytes != b->max_request_bytes ||
        a->request_timeout_ns != b->request_timeout_ns ||
        a->max_concurrent_scrapes != b->max_concurrent_scrapes ||
        a->scrape_queue_timeout_ns != b->scrape_queue_timeout_ns ||
        a->write_timeout_ns != b->write_timeout_ns)
        exp_log(EXP_LOG_WARN, "server settings changed; they take effect after a restart", NULL);
    /* The push endpoints belong to the HTTP listener, which reads its settings once; group_ttl
     * is read from the current snapshot at each push, so a reload applies it. */
    const cfg_push *pa = &old->cfg->push, *pb = &next->cfg->push;
    if (pa->enabled != pb->enabled || pa->max_body_bytes != pb->max_body_bytes ||
        pa->max_buffered_bytes != pb->max_buffered_bytes)
        exp_log(EXP_LOG_WARN,
                "push settings changed (enabled, max_body_bytes or max_buffered_bytes); they take "
                "effect after a restart",
                NULL);
    pthread_mutex_lock(&s->cur_lock);
    s->cur = next;
    pthread_mutex_unlock(&s->cur_lock);
    /* Release: pairs with the acquire in exp_state_generation; cur was swapped before it. */
    atomic_fetch_add_explicit(&s->generation, 1, memory_order_release);
    exp_config_release(old);
    exp_self_config_loaded(s->self, 1, next->hash);
    log_loaded("configuration reloaded", next);
    pthread_mutex_unlock(&s->reload_lock);
    return 0;
}

/* Cannot fail. */
void exp_state_set_ready(exp_state *s, int ready) {
    /* seq_cst, relaxed would do: pairs with the load in exp_state_ready; only the /-/ready
     * answer depends on the flag, no other data is published with it. */
    atomic_store(&s->ready, ready);
}

/* Cannot fail. */
int exp_state_ready(exp_state *s) {
    /* seq_cst, relaxed would do: pairs with exp_state_set_ready; nothing else is read after. */
    return atomic_load(&s->ready);
}
