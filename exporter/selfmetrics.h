/* selfmetrics.h - abacus's own metrics (abacus_*) and the standard process_* metrics,
 * registered in the registry like any other family and refreshed before each scrape. */
#ifndef ABACUS_EXPORTER_SELFMETRICS_H
#define ABACUS_EXPORTER_SELFMETRICS_H

#include <stdint.h>

#include "registry.h"

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
/* Count one refused push; reason is one of those abacus_push_refused_total's help lists.
 * Cannot fail. */
void exp_self_push_refused(exp_self *s, const char *reason);
/* Count one scrape that waited for a free scrape slot. Cannot fail. */
void exp_self_scrape_queued(exp_self *s);
/* Set the number of open HTTP connections. Cannot fail. */
void exp_self_http_connections(exp_self *s, double open);
/* Count one request refused by basic auth; reason is one of those
 * abacus_http_auth_failures_total's help lists. Cannot fail. */
void exp_self_auth_failure(exp_self *s, const char *reason);
/* Set abacus_tls_enabled and abacus_auth_enabled. Cannot fail. */
void exp_self_web_enabled(exp_self *s, int tls, int auth);
/* Count one read of changed TLS files (ok: the new certificate serves). Cannot fail. */
void exp_self_tls_reload(exp_self *s, int ok);
/* Record a configuration (re)load outcome; hash is the loaded config's (ok only). Every call
 * after the first successful one (the load at start) counts in abacus_config_reloads_total.
 * Cannot fail. */
void exp_self_config_loaded(exp_self *s, int ok, uint64_t hash);

#endif
