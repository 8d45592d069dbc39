/* http_client.h (bench) - a minimal blocking HTTP/1.1 client for the benchmark programs: one
 * connection to 127.0.0.1, kept alive, plain or over GnuTLS (default priorities, the server's
 * certificate verified for "localhost"), optional basic auth. */
#ifndef ABACUS_BENCH_HTTP_CLIENT_H
#define ABACUS_BENCH_HTTP_CLIENT_H

#include <gnutls/gnutls.h>
#include <stddef.h>

/* Zero it, then set port, fd = -1 and, for HTTPS, cred (owned by the caller). */
typedef struct {
    int port;
    int fd;                                /* -1: not connected */
    gnutls_certificate_credentials_t cred; /* NULL: plain HTTP */
    gnutls_session_t tls;                  /* the connection's session, when cred */
    char auth[256];                        /* an "Authorization: ...\r\n" line, or "" */
    int close_each;                        /* "Connection: close": a new connection a request */
    char *in; /* received bytes; those from in_off on are not consumed yet */
    size_t in_off, in_len, in_cap;
    char *body; /* the body of the last answer */
    size_t body_len, body_cap;
    unsigned connections; /* connections opened: 1 when keep-alive held */
    char desc[128];       /* the TLS version and cipher suite of the last session */
    double connect_s;     /* seconds of the last connect (TCP connect and TLS handshake) */
} http_client;

/* TCP connect to 127.0.0.1:port and, over TLS, the handshake. 0, or -1 (not connected). */
int http_connect(http_client *c);

/* Close the connection (TLS close_notify first), if any. Cannot fail. */
void http_close(http_client *c);

/* One request on the kept-alive connection (opened, or reopened once when the server closed
 * it); the answer's body in c->body. The status, or -1 when no answer came. */
int http_request(http_client *c, const char *method, const char *path, const char *body,
                 size_t len);

/* Close the connection and free the buffers (c can be used again). Cannot fail. */
void http_free(http_client *c);

/* c->auth for user:password (standard base64). Cannot fail (truncates absurd lengths). */
void set_basic_auth(http_client *c, const char *user, const char *password);

/* A free TCP port on 127.0.0.1 (bound to port 0, read back, released), or -1. */
int free_port(void);

#endif
