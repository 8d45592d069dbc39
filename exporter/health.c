/* health.c - the container health probe (`abacus --health-check=ADDRESS`).
 *
 * The image's HEALTHCHECK runs this: a second abacus process that asks the serving one for
 * /-/healthy and exits 0 or 1. It does not read the configuration: the web config file that
 * turns TLS on is often given to the serving process only (`docker run IMAGE
 * --web.config.file=...`), so the probe finds out the scheme from the answer instead. Plain
 * HTTP first: a TLS listener answers it with no HTTP at all, and only then does the probe
 * open a second connection with a TLS handshake.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "config.h"
#include "health.h"

#define REQUEST                                                                                    \
    "GET /-/healthy HTTP/1.0\r\nHost: localhost\r\nUser-Agent: abacus-health-check\r\n\r\n"

/* What one attempt found. */
typedef enum {
    PROBE_STATUS,      /* an HTTP status line: status holds the code */
    PROBE_NOT_HTTP,    /* the connection answered, but not with HTTP */
    PROBE_CERT_WANTED, /* TLS: the server ended the handshake asking for a client certificate */
    PROBE_FAILED,      /* no answer: refused, timed out, reset */
} probe_result;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The remaining time as a socket timeout, at least 1 ms. Cannot fail. */
static void set_timeouts(int fd, long long deadline) {
    long long left = deadline - now_ms();
    if (left < 1)
        left = 1;
    struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* A connected socket to the first address of host:port that accepts before the deadline,
 * with send and receive timeouts at the deadline. Returns the fd, or -1 with a reason in
 * err. */
static int connect_by(const char *host, const char *port, long long deadline, char *err,
                      size_t errlen) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *list;
    int rc = getaddrinfo(host, port, &hints, &list);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    snprintf(err, errlen, "%s:%s: no address", host, port);
    for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        int left = (int)(deadline - now_ms());
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
            (errno != EINPROGRESS || left <= 0 || poll(&p, 1, left) != 1 ||
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0)) {
            snprintf(err, errlen, "%s:%s: %s", host, port,
                     soerr ? strerror(soerr)
                           : (errno == EINPROGRESS ? "timed out" : strerror(errno)));
            close(fd);
            fd = -1;
            continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        set_timeouts(fd, deadline);
    }
    freeaddrinfo(list);
    return fd;
}

/* A connection to the listener: to host, or to the loopback (IPv4, then IPv6) when host is
 * empty or a wildcard. Returns the fd, or -1 with a reason in err. */
static int connect_listener(const char *host, unsigned port, long long deadline, char *err,
                            size_t errlen) {
    char service[8];
    snprintf(service, sizeof service, "%u", port);
    if (*host && strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0)
        return connect_by(host, service, deadline, err, errlen);
    int fd = connect_by("127.0.0.1", service, deadline, err, errlen);
    return fd >= 0 ? fd : connect_by("::1", service, deadline, err, errlen);
}

/* The status code of an HTTP status line at the start of buf[len], or -1 if it is none. */
static int status_of(const char *buf, size_t len) {
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return -1;
    int code = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        code = code * 10 + (buf[i] - '0');
    }
    return code;
}

/* One connection's reading end: a socket, or a TLS session over it. */
typedef struct {
    int fd;
    gnutls_session_t session; /* NULL: plain */
    int tls_error;            /* the last GnuTLS error, 0 if none */
} reader;

/* Up to cap bytes; 0 at the end of the stream, -1 on an error, -2 when the deadline passed. */
static long reader_recv(reader *r, char *buf, size_t cap) {
    if (!r->session) {
        ssize_t n = recv(r->fd, buf, cap, 0);
        return n >= 0 ? (long)n : (errno == EAGAIN || errno == EWOULDBLOCK) ? -2 : -1;
    }
    ssize_t n;
    do
        n = gnutls_record_recv(r->session, buf, cap);
    while (n == GNUTLS_E_INTERRUPTED);
    if (n >= 0)
        return (long)n;
    r->tls_error = (int)n;
    return n == GNUTLS_E_AGAIN ? -2 : -1;
}

/* Reads the first line of the answer, stopping at the line end, 64 bytes or the end of the
 * stream. Cannot fail: a timeout is PROBE_FAILED; a close, a reset or bytes that are no status
 * line are PROBE_NOT_HTTP (what a TLS listener answers to HTTP). */
static probe_result read_status(reader *r, int *status) {
    char buf[64] = {0};
    size_t len = 0;
    while (len < sizeof buf && !memchr(buf, '\n', len)) {
        long n = reader_recv(r, buf + len, sizeof buf - len);
        if (n == -2)
            return PROBE_FAILED;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    *status = status_of(buf, len);
    return *status < 0 ? PROBE_NOT_HTTP : PROBE_STATUS;
}

/* GET /-/healthy over plain HTTP on fd. Cannot fail: the outcome is the result. */
static probe_result probe_plain(int fd, int *status) {
    if (send(fd, REQUEST, sizeof REQUEST - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof REQUEST - 1))
        return PROBE_FAILED;
    reader r = {.fd = fd};
    return read_status(&r, status);
}

/* 1 when the server ended the session because the probe has no client certificate: it
 * asked for one (a CertificateRequest), then closed or sent a fatal alert. A server that far
 * into a handshake is alive. Cannot fail. */
static int refused_for_certificate(gnutls_session_t session, int error) {
    if (error == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        gnutls_alert_description_t a = gnutls_alert_get(session);
        if (a == GNUTLS_A_CERTIFICATE_REQUIRED || a == GNUTLS_A_HANDSHAKE_FAILURE ||
            a == GNUTLS_A_BAD_CERTIFICATE)
            return 1;
    }
    return gnutls_certificate_client_get_request_status(session) != 0;
}

/* GET /-/healthy over TLS on fd, without verifying the server's certificate and without a
 * client certificate. Returns PROBE_FAILED also when GnuTLS cannot be set up. */
static probe_result probe_tls(int fd, int *status, char *err, size_t errlen) {
    gnutls_certificate_credentials_t creds = NULL;
    gnutls_session_t session = NULL;
    probe_result r = PROBE_FAILED;
    int rc = gnutls_certificate_allocate_credentials(&creds);
    if (rc == 0)
        rc = gnutls_init(&session, GNUTLS_CLIENT);
    if (rc == 0)
        rc = gnutls_set_default_priority(session);
    if (rc == 0)
        rc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, creds);
    if (rc == 0) {
        gnutls_transport_set_int(session, fd);
        gnutls_handshake_set_timeout(session, GNUTLS_INDEFINITE_TIMEOUT); /* the socket's */
        do
            rc = gnutls_handshake(session);
        while (rc < 0 && !gnutls_error_is_fatal(rc) && rc != GNUTLS_E_AGAIN);
    }
    if (rc == 0) {
        ssize_t sent = gnutls_record_send(session, REQUEST, sizeof REQUEST - 1);
        rc = sent < 0 ? (int)sent : 0;
    }
    if (rc == 0) {
        /* TLS 1.3 asks for the client certificate after the client's Finished: the refusal
         * arrives as the first record instead of a status line. */
        reader rd = {.fd = fd, .session = session};
        r = read_status(&rd, status);
        rc = r == PROBE_STATUS ? 0 : rd.tls_error;
    }
    if (rc < 0 && session && refused_for_certificate(session, rc))
        r = PROBE_CERT_WANTED;
    else if (rc < 0) {
        r = PROBE_FAILED;
        snprintf(err, errlen, "TLS: %s", gnutls_strerror(rc));
    }
    if (session)
        gnutls_deinit(session);
    if (creds)
        gnutls_certificate_free_credentials(creds);
    return r;
}

/* See health.h. */
int exp_health_check(const char *addr, unsigned timeout_ms, FILE *out) {
    char host[256], err[256] = "";
    unsigned port;
    if (cfg_parse_address(addr, host, sizeof host, &port, err, sizeof err) != 0) {
        fprintf(out, "unhealthy: --health-check=%s: %s\n", addr, err);
        return 1;
    }
    long long deadline = now_ms() + timeout_ms;
    int status = 0, tls = 0;
    int fd = connect_listener(host, port, deadline, err, sizeof err);
    probe_result r = fd < 0 ? PROBE_FAILED : probe_plain(fd, &status);
    if (fd >= 0)
        close(fd);
    if (r == PROBE_NOT_HTTP) {
        tls = 1;
        fd = connect_listener(host, port, deadline, err, sizeof err);
        r = fd < 0 ? PROBE_FAILED : probe_tls(fd, &status, err, sizeof err);
        if (fd >= 0)
            close(fd);
    }
    const char *scheme = tls ? "HTTPS" : "HTTP";
    switch (r) {
    case PROBE_STATUS:
        fprintf(out, "%s: %s %d from /-/healthy\n",
                status == 200 || status == 401 ? "healthy" : "unhealthy", scheme, status);
        return status == 200 || status == 401 ? 0 : 1;
    case PROBE_CERT_WANTED:
        fprintf(out, "healthy: the TLS listener wants a client certificate\n");
        return 0;
    case PROBE_NOT_HTTP:
        fprintf(out, "unhealthy: %s: no HTTP status line from /-/healthy\n", scheme);
        return 1;
    case PROBE_FAILED:
        break;
    }
    fprintf(out, "unhealthy: %s\n", *err ? err : "no answer");
    return 1;
}
