/* main.c - the abacus process: parse flags, load the configuration, start the components,
 * then serve signals (SIGHUP reloads, SIGTERM/SIGINT drain and exit 0).
 *
 * Signals are blocked in every thread (the mask is set before any thread starts) and taken
 * synchronously with sigwait() here, so no code runs in signal-handler context.
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "flags.h"
#include "health.h"
#include "http/http.h"
#include "persist.h"
#include "remote/remote.h"
#include "selfmetrics.h"
#include "state.h"
#include "version.h"
#include "log.h"
#include "statsd/statsd.h"

#define DRAIN_MS 10000 /* how long SIGTERM waits for in-flight HTTP requests */
/* --health-check's whole time: within the image's HEALTHCHECK --timeout=3s. */
#define HEALTH_CHECK_MS 2500

/* Everything the process runs. Start order: registry, self-metrics, configuration, HTTP
 * server, ingest listeners, ready. Stop order is the reverse. */
typedef struct {
    exp_flags flags;
    reg_registry *reg;
    exp_self *self;
    exp_state *state;
    exp_http *http;
    /* Ingest listeners (StatsD UDP/TCP/Unixgram, HTTP push) get their handles here. */
    exp_statsd_listener *statsd;
    /* Persistence (--persistence.file): loaded before the server starts, written last. */
    exp_persist *persist;
    /* Remote write: started last, stopped (flushing its queues) after the inputs stopped. */
    exp_remote *remote;
    int started; /* reached ready: only then does the stop write a final snapshot */
} app;

#ifdef __clang__
#define COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER "unknown"
#endif

/* Ingest listeners start here: they read the configuration through a->state (acquire a
 * snapshot; re-acquire when exp_state_generation changes) and write into a->reg.
 * Returns 0, or -1 with a reason in err. */
static int start_listeners(app *a, char *err, size_t errlen) {
    a->statsd = exp_statsd_listener_start(a->reg, a->state, err, errlen);
    return a->statsd ? 0 : -1;
}

/* ...and stop here, before the HTTP server drains. Cannot fail. */
static void stop_listeners(app *a) {
    exp_statsd_listener_stop(a->statsd); /* reads what is queued, then closes */
    a->statsd = NULL;
}

/* Validate like a start would, without binding anything: load, then apply to a scratch
 * registry that holds the self-metrics (catches declared metrics clashing with them). */
static int check_config(const exp_flags *f) {
    cfg_errors errs = {0};
    exp_config *c = exp_config_load(f, &errs);
    if (!c) {
        cfg_errors_print(&errs, stderr);
        cfg_errors_free(&errs);
        return 1;
    }
    int rc = 1;
    char err[512] = "out of memory";
    const char *file = c->cfg->path ? c->cfg->path : "<built-in defaults>"; /* what err is about */
    reg_options opt = {0};
    reg_registry *r = reg_create(&opt);
    exp_self *self = r ? exp_self_create(r, err, sizeof err) : NULL;
    if (self) {
        int arc = cfg_apply(r, NULL, c->cfg);
        if (arc != REG_OK)
            snprintf(err, sizeof err, "declared metrics cannot be registered: %s",
                     reg_strerror(arc));
        else if (exp_http_check_tls(c, err, sizeof err) == 0)
            rc = 0;
        else
            file = c->web->path; /* the web config's TLS files do not load */
    }
    if (rc == 0) {
        char nm[24], nmap[24];
        snprintf(nm, sizeof nm, "%zu", c->cfg->nmetrics);
        snprintf(nmap, sizeof nmap, "%zu", c->rules->nmappings);
        exp_log(EXP_LOG_INFO, "configuration is valid", "file",
                c->cfg->path ? c->cfg->path : "<built-in defaults>", "metrics", nm, "mappings",
                nmap, "web_config", c->web ? c->web->path : "none", NULL);
    } else {
        fprintf(stderr, "%s: %s\n", file, err);
    }
    exp_self_destroy(self);
    if (r)
        reg_destroy(r);
    exp_config_release(c);
    return rc;
}

/* With --persistence.file: register its self-metrics and load the snapshot, after the
 * configuration is applied (declared families exist) and before anything updates or scrapes.
 * Returns 0 (also when the file is missing or refused: logged), or -1 with a reason in err. */
static int start_persistence(app *a, char *err, size_t errlen) {
    const char *file = a->flags.persistence_file;
    if (!file || !*file)
        return 0;
    uint64_t ns = EXP_PERSIST_DEFAULT_INTERVAL_NS; /* a given value was checked by the parse */
    if (a->flags.persistence_interval)
        cfg_parse_duration(a->flags.persistence_interval, &ns);
    a->persist = exp_persist_create(a->reg, file, ns, err, errlen);
    if (!a->persist)
        return -1;
    exp_persist_load(a->persist);
    return 0;
}

/* The periodic writer, once everything runs. 0, or -1 with a reason in err. */
static int start_writer(app *a, char *err, size_t errlen) {
    return a->persist ? exp_persist_start(a->persist, err, errlen) : 0;
}

static void stop_all(app *a) {
    if (a->state)
        exp_state_set_ready(a->state, 0);
    stop_listeners(a);
    exp_http_stop(a->http, DRAIN_MS);
    a->http = NULL;
    exp_remote_stop(a->remote, EXP_REMOTE_FLUSH_DEADLINE_NS);
    a->remote = NULL;
    exp_persist_stop(a->persist, a->started); /* nothing updates the registry any more */
    a->persist = NULL;
    exp_state_destroy(a->state);
    exp_self_destroy(a->self);
    if (a->reg)
        reg_destroy(a->reg);
}

/* Blocks of 128 KiB and more (push bodies, their parse and build memory, group states, scrape
 * buffers, hash set arrays) are mapped on their own and unmapped when freed. glibc would
 * otherwise raise this threshold after the first large free, serve later large blocks from a
 * thread's arena, and keep them resident: one 100,000-series push left 11 MB behind.
 * Setting it explicitly turns that adjustment off. Cannot fail (a refusal keeps glibc's
 * default). */
static void memory_policy(void) {
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

int main(int argc, char **argv) {
    memory_policy();
    app a = {0};
    int rc = exp_flags_parse(&a.flags, argc, argv, stderr);
    if (rc != 0)
        return rc;
    if (a.flags.show_help) {
        exp_flags_usage(stdout);
        return 0;
    }
    if (a.flags.show_version) {
        printf("abacus, version %s (revision: %s)\n  compiler: %s\n", ABACUS_VERSION,
               ABACUS_REVISION, COMPILER);
        return 0;
    }
    if (a.flags.check_config)
        return check_config(&a.flags);
    if (a.flags.health_check)
        return exp_health_check(a.flags.health_check, HEALTH_CHECK_MS, stdout);

    /* Before any thread exists, so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    exp_log(EXP_LOG_INFO, "starting abacus", "version", ABACUS_VERSION, "revision", ABACUS_REVISION,
            NULL);
    if (!exp_flags_config_path(&a.flags))
        exp_log(EXP_LOG_INFO, "no --config.file and no ./abacus.yml: using built-in defaults",
                NULL);
    cfg_errors errs = {0};
    exp_config *cfg = exp_config_load(&a.flags, &errs);
    if (!cfg) {
        for (size_t i = 0; i < errs.count; i++) {
            char line[16], col[16];
            snprintf(line, sizeof line, "%u", errs.items[i].line);
            snprintf(col, sizeof col, "%u", errs.items[i].column);
            exp_log(EXP_LOG_ERROR, "invalid configuration", "file", errs.items[i].file, "line",
                    line, "column", col, "err", errs.items[i].message, NULL);
        }
        cfg_errors_free(&errs);
        return 1;
    }

    char err[512] = "out of memory";
    reg_options opt = {.max_series = cfg->cfg->statsd.max_series, .start_reaper = 1};
    a.reg = reg_create(&opt);
    if (a.reg)
        a.self = exp_self_create(a.reg, err, sizeof err);
    if (a.self)
        a.state = exp_state_create(a.reg, &a.flags, a.self, cfg, err, sizeof err);
    else
        exp_config_release(cfg);
    if (a.state && start_persistence(&a, err, sizeof err) == 0)
        a.http = exp_http_start(a.reg, a.state, a.self, cfg,
                                (a.flags.enable_lifecycle ? EXP_HTTP_LIFECYCLE : 0u) |
                                    (a.flags.enable_admin_api ? EXP_HTTP_ADMIN_API : 0u),
                                err, sizeof err);
    if (!a.http || start_listeners(&a, err, sizeof err) != 0) {
        exp_log(EXP_LOG_ERROR, "cannot start", "err", err, NULL);
        stop_all(&a);
        return 1;
    }
    if (start_writer(&a, err, sizeof err) != 0 ||
        !(a.remote = exp_remote_start(a.reg, a.state, a.self, err, sizeof err))) {
        exp_log(EXP_LOG_ERROR, "cannot start", "err", err, NULL);
        stop_all(&a);
        return 1;
    }
    a.started = 1;
    exp_state_set_ready(a.state, 1);
    exp_log(EXP_LOG_INFO, "ready", NULL);

    for (;;) {
        int sig;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            exp_log(EXP_LOG_INFO, "reload requested", "via", "SIGHUP", NULL);
            cfg_errors e = {0};
            exp_state_reload(a.state, &e); /* logs its outcome */
            cfg_errors_free(&e);
            continue;
        }
        exp_log(EXP_LOG_INFO, "shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                NULL);
        break;
    }
    stop_all(&a);
    exp_log(EXP_LOG_INFO, "stopped", NULL);
    return 0;
}
