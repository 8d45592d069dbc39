/* health.h - `abacus --health-check=ADDRESS`: probe a running abacus, for a container's
 * HEALTHCHECK (the image has no curl, and bash cannot speak TLS). */
#ifndef ABACUS_EXPORTER_HEALTH_H
#define ABACUS_EXPORTER_HEALTH_H

#include <stdio.h>

/* Asks the abacus listening on addr (the --web.listen-address grammar; an empty or wildcard
 * host means this machine's loopback) for GET /-/healthy, over plain HTTP and, when the answer
 * is not HTTP, over TLS (the certificate is not verified: the check is of liveness, and it
 * holds no CA). Healthy is a 200; or a 401, which a live server with basic auth gives an
 * anonymous request; or, over TLS, a handshake the server ends with an alert because it wants
 * a client certificate. The whole check takes at most timeout_ms. Prints one line on out
 * saying what it found. Returns 0 when healthy, 1 when not (the exit code Docker expects). */
int exp_health_check(const char *addr, unsigned timeout_ms, FILE *out);

#endif
