/* state.h - the configuration as the process uses it: immutable snapshots of the loaded files
 * (flags applied, mapping rules compiled) and the current snapshot with its reload.
 *
 * Readers (ingest listeners, the HTTP server) acquire a snapshot, keep it while
 * exp_state_generation() is unchanged, and release it after use. */
#ifndef ABACUS_EXPORTER_STATE_H
#define ABACUS_EXPORTER_STATE_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "flags.h"
#include "registry.h"
#include "selfmetrics.h"

/* One loaded, validated configuration. Immutable and shared: any thread may read a snapshot
 * it acquired; it is freed when the last holder releases it. */
typedef struct exp_config {
    cfg_config *cfg;          /* the config file (or built-in defaults) with flags applied */
    cfg_config *mapping_file; /* --statsd.mapping-config, or NULL */
    const cfg_config *rules;  /* where StatsD mapping rules/defaults come from (one of both) */
    cfg_mapper *mapper;       /* compiled from rules */
    cfg_web *web;             /* --web.config.file, or NULL: plain HTTP, no auth */
    uint64_t hash;            /* of the files' bytes; 0 for built-in defaults */
    _Atomic unsigned refs;
} exp_config;

/* Load everything the flags name: the config file, the mapping file, flags applied, mapping
 * rules compiled, listen addresses checked, the web config file (--web.config.file or
 * server.web_config_file) loaded and checked. Returns a snapshot holding one reference, or
 * NULL with every problem appended to errs. */
exp_config *exp_config_load(const exp_flags *f, cfg_errors *errs);
/* Take / drop a reference. exp_config_release(NULL) is a no-op. Cannot fail. */
exp_config *exp_config_ref(exp_config *c);
void exp_config_release(exp_config *c);

typedef struct exp_state exp_state;

/* Take ownership of the initial snapshot (also when it fails: the snapshot is then released)
 * and make the registry match it (cfg_apply). NULL when applying fails (message in err) or on
 * allocation failure. */
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

#endif
