/* http.h - the HTTP server (libmicrohttpd): /metrics with content negotiation and gzip, the
 * landing page, health, readiness and reload, with bounds on every connection and request
 * (exporter/http/server.c and the files beside it). */
#ifndef ABACUS_EXPORTER_HTTP_H
#define ABACUS_EXPORTER_HTTP_H

#include "registry.h"
#include "selfmetrics.h"
#include "state.h"

typedef struct exp_http exp_http;

/* What the command line enables (exp_http_start's features). */
#define EXP_HTTP_LIFECYCLE 1u /* --web.enable-lifecycle: POST/PUT /-/reload */
#define EXP_HTTP_ADMIN_API 2u /* --web.enable-admin-api: PUT /api/v1/admin/wipe */

/* Start the HTTP server on the snapshot's server and push settings (listen address,
 * telemetry path, limits; they are read once: changing them needs a restart). NULL with a
 * reason in err. */
exp_http *exp_http_start(reg_registry *r, exp_state *st, exp_self *self, const exp_config *c,
                         unsigned features, char *err, size_t errlen);
/* What exp_http_start would do with the web config's TLS settings, without serving: the
 * priority string built, the certificate, key and CA files loaded and the key matched to the
 * certificate (for --check-config; promtool check web-config loads the pair too). 0 when they
 * would serve or TLS is off, or -1 with a reason in err. */
int exp_http_check_tls(const exp_config *c, char *err, size_t errlen);
/* "host:port" actually bound (useful with port 0). */
const char *exp_http_address(const exp_http *h);
/* Graceful stop: stop accepting, wait up to drain_ms for in-flight requests, then close
 * everything. Frees h. Cannot fail. */
void exp_http_stop(exp_http *h, unsigned drain_ms);

#endif
