/* statsd_fixture.h - the StatsD listener fixture that tests/unit/test_statsd_ingest.c and
 * bench/statsd.c share: a configuration file in a fresh temporary directory, the command line
 * (with flags of the caller's), a registry with its reaper, self-metrics, the configuration
 * state and the StatsD listeners, exactly as main() wires them; and reading a series back.
 *
 * Header-only (static inline), so that each program includes it without a library of its
 * own: #include "../support/statsd_fixture.h" from tests/unit/, "../tests/support/..." from
 * bench/. Failures are returned with a reason, so the test can assert and the bench can exit.
 */
#ifndef ABACUS_TESTS_STATSD_FIXTURE_H
#define ABACUS_TESTS_STATSD_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flags.h"
#include "labels.h"
#include "selfmetrics.h"
#include "state.h"
#include "statsd/statsd.h"

#define STATSD_FIXTURE_MAX_FLAGS 6

typedef struct {
    char dir[64], path[128];                      /* the temporary directory, its abacus.yml */
    char args[STATSD_FIXTURE_MAX_FLAGS + 2][256]; /* the command line (exp_flags points into it) */
    char *argv[STATSD_FIXTURE_MAX_FLAGS + 2];
    exp_flags flags;
    reg_registry *reg;
    exp_self *self;
    exp_state *st;
    exp_statsd_listener *L;
    reg_thread *t; /* the caller's registry handle */
    reg_series **snap;
    size_t snap_cap;
    int udp_port; /* the bound UDP port, 0 when UDP is off */
} statsd_fixture;

/* A fresh directory /tmp/<prefix>-XXXXXX holding abacus.yml with yaml, in fx (zeroed first).
 * 0, or -1 with errno set (nothing left behind). */
static inline int statsd_fixture_prepare(statsd_fixture *fx, const char *prefix, const char *yaml) {
    memset(fx, 0, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/%s-XXXXXX", prefix);
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/abacus.yml", fx->dir);
    FILE *f = fopen(fx->path, "w");
    if (!f || fputs(yaml, f) < 0 || fclose(f) != 0) {
        unlink(fx->path);
        rmdir(fx->dir);
        return -1;
    }
    return 0;
}

/* Start everything for the prepared fx with the command line `abacus --config.file=PATH`
 * followed by flags (up to STATSD_FIXTURE_MAX_FLAGS; NULL-terminated), a registry reaping every
 * reap_interval_ns (0: its default). 0, or -1 with a reason in err (configuration errors are
 * printed to stderr); call statsd_fixture_stop either way. */
static inline int statsd_fixture_start(statsd_fixture *fx, const char *const *flags,
                                       uint64_t reap_interval_ns, char *err, size_t errlen) {
    int argc = 0;
    snprintf(fx->args[argc++], sizeof fx->args[0], "abacus");
    snprintf(fx->args[argc++], sizeof fx->args[0], "--config.file=%s", fx->path);
    for (size_t i = 0; flags && flags[i] && i < STATSD_FIXTURE_MAX_FLAGS; i++)
        snprintf(fx->args[argc++], sizeof fx->args[0], "%s", flags[i]);
    for (int i = 0; i < argc; i++)
        fx->argv[i] = fx->args[i];
    if (exp_flags_parse(&fx->flags, argc, fx->argv, stderr) != 0) {
        snprintf(err, errlen, "bad flags");
        return -1;
    }
    cfg_errors errs = {0};
    exp_config *c = exp_config_load(&fx->flags, &errs);
    if (!c)
        cfg_errors_print(&errs, stderr);
    cfg_errors_free(&errs);
    if (!c) {
        snprintf(err, errlen, "bad configuration");
        return -1;
    }
    reg_options opt = {.max_series = c->cfg->statsd.max_series,
                       .start_reaper = 1,
                       .reap_interval_ns = reap_interval_ns};
    fx->reg = reg_create(&opt);
    fx->self = fx->reg ? exp_self_create(fx->reg, err, errlen) : NULL;
    if (!fx->self)
        exp_config_release(c); /* exp_state_create owns it otherwise, also when it fails */
    fx->st = fx->self ? exp_state_create(fx->reg, &fx->flags, fx->self, c, err, errlen) : NULL;
    if (!fx->st) {
        if (!fx->reg)
            snprintf(err, errlen, "out of memory");
        return -1;
    }
    fx->L = exp_statsd_listener_start(fx->reg, fx->st, err, errlen);
    fx->t = fx->L ? reg_thread_attach(fx->reg) : NULL;
    if (!fx->t) {
        if (fx->L)
            snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *a = exp_statsd_listener_address(fx->L, EXP_STATSD_LISTENER_UDP);
    fx->udp_port = a ? atoi(strrchr(a, ':') + 1) : 0;
    return 0;
}

/* Stop and free what statsd_fixture_start made, remove the directory (the listener removes its
 * Unix socket). Cannot fail. */
static inline void statsd_fixture_stop(statsd_fixture *fx) {
    exp_statsd_listener_stop(fx->L);
    if (fx->t)
        reg_thread_detach(fx->t);
    if (fx->st)
        exp_state_destroy(fx->st);
    if (fx->self)
        exp_self_destroy(fx->self);
    if (fx->reg)
        reg_destroy(fx->reg);
    free(fx->snap);
    unlink(fx->path);
    rmdir(fx->dir);
}

/* The series of family f with rendered labels (`a="x",b="y"`, "" for none), NULL when absent.
 * Inside a section of fx->t; valid until it ends. Cannot fail otherwise (NULL when out of
 * memory). */
static inline reg_series *statsd_fixture_series(statsd_fixture *fx, reg_family *f,
                                                const char *labels) {
    long n = f ? reg_family_collect(fx->t, f, &fx->snap, &fx->snap_cap) : 0;
    for (long i = 0; i < n; i++) {
        size_t len;
        char lb[REG_MAX_KEY + 1];
        const char *l = test_labels(f, fx->snap[i], lb, &len);
        if (len == strlen(labels) && memcmp(l, labels, len) == 0)
            return fx->snap[i];
    }
    return NULL;
}

/* The number of series of family (0 when absent). Cannot fail. */
static inline size_t statsd_fixture_nseries(statsd_fixture *fx, const char *family) {
    reg_begin(fx->t);
    reg_family *f = reg_family_find(fx->t, family);
    size_t n = f ? reg_family_series_count(f) : 0;
    reg_end(fx->t);
    return n;
}

#endif
