/* http_client.c (bench) - a minimal blocking HTTP/1.1 client for the benchmark programs, plain
 * or over GnuTLS; see http_client.h. */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

/* A free TCP port on 127.0.0.1 (bound to port 0, read back, released), or -1. */
int free_port(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Close the connection (TLS close_notify first), if any. Cannot fail. */
void http_close(http_client *c) {
    if (c->tls) {
        gnutls_bye(c->tls, GNUTLS_SHUT_WR);
        gnutls_deinit(c->tls);
        c->tls = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* TCP connect and, over TLS, the handshake (the server's certificate verified for
 * "localhost"). 0, or -1 (not connected). */
int http_connect(http_client *c) {
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)c->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    double t0 = now_s();
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->in_off = c->in_len = 0;
    if (c->cred) {
        int rc;
        if (gnutls_init(&c->tls, GNUTLS_CLIENT) < 0) {
            c->tls = NULL;
            http_close(c);
            return -1;
        }
        gnutls_set_default_priority(c->tls);
        gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->cred);
        gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, "localhost", 9);
        gnutls_session_set_verify_cert(c->tls, "localhost", 0);
        gnutls_transport_set_int(c->tls, c->fd);
        do
            rc = gnutls_handshake(c->tls);
        while (rc < 0 && !gnutls_error_is_fatal(rc));
        if (rc < 0) {
            http_close(c);
            return -1;
        }
        char *d = gnutls_session_get_desc(c->tls);
        snprintf(c->desc, sizeof c->desc, "%s", d ? d : "?");
        gnutls_free(d);
    }
    c->connections++;
    c->connect_s = now_s() - t0;
    return 0;
}

/* Bytes received into buf (blocking), 0 at the end of the stream, -1 on an error. */
static ssize_t conn_recv(http_client *c, char *buf, size_t n) {
    for (;;) {
        ssize_t got = c->tls ? gnutls_record_recv(c->tls, buf, n) : recv(c->fd, buf, n, 0);
        if (c->tls) {
            if (got == GNUTLS_E_AGAIN || got == GNUTLS_E_INTERRUPTED)
                continue;
            if (got == GNUTLS_E_PREMATURE_TERMINATION) /* closed without close_notify */
                return 0;
            return got < 0 ? -1 : got;
        }
        if (got < 0 && errno == EINTR)
            continue;
        return got;
    }
}

/* Send p[0..n) (more: more follows at once, MSG_MORE over plain TCP). 0, or -1 when the
 * connection failed. */
static int send_all(http_client *c, const char *p, size_t n, int more) {
    while (n > 0) {
        ssize_t sent = c->tls ? gnutls_record_send(c->tls, p, n)
                              : send(c->fd, p, n, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (c->tls && (sent == GNUTLS_E_AGAIN || sent == GNUTLS_E_INTERRUPTED))
            continue;
        if (!c->tls && sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return -1;
        p += sent;
        n -= (size_t)sent;
    }
    return 0;
}

/* Grow *buf to hold at least need bytes. 0, or -1 when out of memory. */
static int reserve(char **buf, size_t *cap, size_t need) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64 * 1024;
    while (n < need)
        n *= 2;
    char *grown = realloc(*buf, n);
    if (grown == NULL)
        return -1;
    *buf = grown;
    *cap = n;
    return 0;
}

/* Until at least n unconsumed bytes are buffered. 0, or -1 at the end of the stream. */
static int http_need(http_client *c, size_t n) {
    while (c->in_len - c->in_off < n) {
        if (c->in_off > 0) { /* move the unconsumed bytes to the front */
            memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
            c->in_len -= c->in_off;
            c->in_off = 0;
        }
        if (reserve(&c->in, &c->in_cap, c->in_len + 64 * 1024) != 0)
            return -1;
        ssize_t got = conn_recv(c, c->in + c->in_len, c->in_cap - c->in_len);
        if (got <= 0)
            return -1;
        c->in_len += (size_t)got;
    }
    return 0;
}

/* Length of the unconsumed bytes up to and including the next "\r\n" (or "\r\n\r\n" when
 * blank_line), reading as needed; 0 at the end of the stream. */
static size_t http_until(http_client *c, int blank_line) {
    const char *end = blank_line ? "\r\n\r\n" : "\r\n";
    size_t n = strlen(end);
    for (size_t scanned = 0;;) {
        size_t have = c->in_len - c->in_off;
        char *hit = have >= n ? memmem(c->in + c->in_off + scanned, have - scanned, end, n) : NULL;
        if (hit)
            return (size_t)(hit - (c->in + c->in_off)) + n;
        scanned = have >= n ? have - n + 1 : 0;
        if (http_need(c, have + 1) != 0)
            return 0;
    }
}

/* Move n buffered bytes to the answer's body. 0, or -1 when out of memory. */
static int http_take_body(http_client *c, size_t n) {
    if (reserve(&c->body, &c->body_cap, c->body_len + n + 1) != 0)
        return -1;
    memcpy(c->body + c->body_len, c->in + c->in_off, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
    c->in_off += n;
    return 0;
}

/* A header's value in the header block head (lines ending in "\r\n"), or NULL. */
static const char *header(const char *head, const char *name) {
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n"))
        if (strncasecmp(line + 2, name, n) == 0 && line[2 + n] == ':') {
            const char *v = line + 3 + n;
            while (*v == ' ')
                v++;
            return v;
        }
    return NULL;
}

/* Read one answer: its status, the body in c->body. -1 when the stream ends or is garbled. */
static int http_read_answer(http_client *c) {
    c->body_len = 0;
    size_t head_len = http_until(c, 1);
    if (head_len == 0)
        return -1;
    char *head = c->in + c->in_off;
    head[head_len - 1] = '\0'; /* the last '\n': terminates the header block for strstr */
    int status = 0;
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    const char *length = header(head, "Content-Length");
    const char *encoding = header(head, "Transfer-Encoding");
    const char *connection = header(head, "Connection");
    int chunked = encoding && strncasecmp(encoding, "chunked", 7) == 0;
    int closes = connection && strncasecmp(connection, "close", 5) == 0;
    long content = length ? strtol(length, NULL, 10) : -1;
    c->in_off += head_len;
    if (chunked) {
        for (;;) {
            size_t line = http_until(c, 0);
            if (line == 0)
                return -1;
            size_t size = strtoul(c->in + c->in_off, NULL, 16);
            c->in_off += line;
            if (size == 0)
                break;
            if (http_need(c, size + 2) != 0 || http_take_body(c, size) != 0)
                return -1;
            c->in_off += 2; /* the chunk's "\r\n" */
        }
        size_t line;
        while ((line = http_until(c, 0)) > 2) /* trailers, then a blank line */
            c->in_off += line;
        if (line == 0)
            return -1;
        c->in_off += line;
    } else if (status / 100 == 1 || status == 204 || status == 304) {
        /* no body */
    } else if (content >= 0) {
        if (http_need(c, (size_t)content) != 0 || http_take_body(c, (size_t)content) != 0)
            return -1;
    } else {
        while (http_need(c, 1) == 0) /* no length: the body runs to the end of the stream */
            http_take_body(c, c->in_len - c->in_off);
        closes = 1;
    }
    if (closes || c->close_each)
        http_close(c);
    return status;
}

/* One request on the kept-alive connection (opened, or reopened once when the server closed
 * it). The status, or -1 when no answer came. */
int http_request(http_client *c, const char *method, const char *path, const char *body,
                 size_t len) {
    char head[768];
    int head_len =
        snprintf(head, sizeof head,
                 "%s %s HTTP/1.1\r\nHost: localhost:%d\r\n%s%s"
                 "Content-Type: text/plain; version=0.0.4\r\n"
                 "Content-Length: %zu\r\n\r\n",
                 method, path, c->port, c->auth, c->close_each ? "Connection: close\r\n" : "", len);
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = c->fd >= 0;
        if (!reused && http_connect(c) != 0)
            return -1;
        if (send_all(c, head, (size_t)head_len, len > 0) == 0 && send_all(c, body, len, 0) == 0) {
            int status = http_read_answer(c);
            if (status >= 0)
                return status;
        }
        http_close(c);
        if (!reused)
            return -1;
    }
    return -1;
}

/* Close the connection and free the buffers (c can be used again). Cannot fail. */
void http_free(http_client *c) {
    http_close(c);
    free(c->in);
    free(c->body);
    c->in = c->body = NULL;
    c->in_cap = c->body_cap = 0;
}

/* c->auth for user:password (standard base64). Cannot fail (truncates absurd lengths). */
void set_basic_auth(http_client *c, const char *user, const char *password) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char plain[128], b64[200];
    size_t n = (size_t)snprintf(plain, sizeof plain, "%s:%s", user, password), o = 0;
    if (n >= sizeof plain)
        n = sizeof plain - 1;
    for (size_t i = 0; i < n; i += 3) {
        unsigned w = (unsigned char)plain[i] << 16;
        if (i + 1 < n)
            w |= (unsigned char)plain[i + 1] << 8;
        if (i + 2 < n)
            w |= (unsigned char)plain[i + 2];
        b64[o++] = digits[w >> 18 & 63];
        b64[o++] = digits[w >> 12 & 63];
        b64[o++] = i + 1 < n ? digits[w >> 6 & 63] : '=';
        b64[o++] = i + 2 < n ? digits[w & 63] : '=';
    }
    b64[o] = '\0';
    snprintf(c->auth, sizeof c->auth, "Authorization: Basic %s\r\n", b64);
}
