/* https.c (bench) - what HTTPS and basic auth (the web config file) cost a scrape. Prints
 * figures; asserts nothing.
 *
 * Two abacus processes of the same build run side by side on free loopback ports: one plain
 * (no web config file), one with a web config file that turns on TLS (a self-signed
 * certificate and key made at run time with `openssl req`, in a temporary directory) and basic
 * auth (users whose bcrypt hashes, cost 10, are made at run time with libcrypt's
 * crypt_gensalt/crypt). Each gets the same 10,000 gauge series with two labels, one PUT to the
 * push API (over HTTPS with the password for the second). Then:
 *
 *  - latency of a GET /metrics (plain text, no gzip: no Accept-Encoding) in three ways,
 *    interleaved one scrape each in turn so that a busy machine slows all three alike:
 *    (a) plain HTTP over one keep-alive connection; (b) HTTPS with basic auth over one
 *    keep-alive connection (the credentials are cached after the first request); (c) HTTPS
 *    with basic auth, a new TCP connection and full TLS handshake per scrape (no session
 *    resumption; "Connection: close"). Median, p99 (nearest rank) and the slowest, after 10
 *    unmeasured scrapes each, and for (c) the TCP connect and handshake alone;
 *  - the credentials cache: in each round, 100 scrapes over one keep-alive HTTPS connection
 *    with credentials verified before and 100 with a user never seen before, whose first
 *    scrape runs bcrypt (one such user per round; odd rounds take the new user first). Totals,
 *    the first scrape of each, and the other 99; medians over the rounds.
 *
 * The client is minimal: blocking sockets, HTTP/1.1, GnuTLS with its default priorities, the
 * server's certificate verified against the one made here. Every answer must be 200 with the
 * 10,000 series (counted on every scrape); any other is counted as failed.
 *
 * Usage: bench_https [--abacus BIN] [--scrapes N] [--rounds R] [--key ec|rsa]
 *   --abacus: default ../exporter/abacus from this program's directory (the same build);
 *   --scrapes: measured scrapes of each latency case (default 500);
 *   --rounds: rounds of the credentials-cache figures, one new user each (default 5);
 *   --key: the certificate's key, EC P-256 (default) or RSA 2048.
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <libgen.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define SERIES 10000
#define WARMUP 10
#define CACHE_SCRAPES 100
#define MAX_ROUNDS 50
#define PASSWORD "bench-password"

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A free TCP port on 127.0.0.1 (bound to port 0, read back, released), or -1. */
static int free_port(void) {
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

/* ---- a minimal blocking HTTP/1.1 client, plain or over GnuTLS -------------------------- */

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

static void http_close(http_client *c) {
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
 * "localhost"). 0, or -1. */
static int http_connect(http_client *c) {
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

static int send_all(http_client *c, const char *p, size_t n) {
    while (n > 0) {
        ssize_t sent = c->tls ? gnutls_record_send(c->tls, p, n) : send(c->fd, p, n, MSG_NOSIGNAL);
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

/* Move n buffered bytes to the answer's body. */
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
static int http_request(http_client *c, const char *method, const char *path, const char *body,
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
        if (send_all(c, head, (size_t)head_len) == 0 && send_all(c, body, len) == 0) {
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

static void http_free(http_client *c) {
    http_close(c);
    free(c->in);
    free(c->body);
    c->in = c->body = NULL;
    c->in_cap = c->body_cap = 0;
}

/* c->auth for user:password (standard base64). Cannot fail (truncates absurd lengths). */
static void set_basic_auth(http_client *c, const char *user, const char *password) {
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

/* ---- the servers: real processes ------------------------------------------------------- */

typedef struct {
    const char *name;
    pid_t pid; /* also its process group */
} server;

static pid_t started[4];
static int nstarted;
static char tmpdir[64];

static void remove_tmpdir(void) {
    static const char *const files[] = {"cert.pem", "key.pem", "web.yml", "openssl.log"};
    char path[128];
    if (!tmpdir[0])
        return;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

/* Stops whatever is still running when this program is interrupted. */
static void on_signal(int sig) {
    for (int i = 0; i < nstarted; i++)
        if (started[i] > 0)
            kill(-started[i], SIGKILL);
    remove_tmpdir();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Start argv[0] in a session of its own and wait until GET /-/ready answers 200 through
 * probe. 0, or -1 (it is stopped). */
static int server_start(server *s, const char *name, char *const argv[], http_client *probe) {
    *s = (server){.name = name};
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        setsid();
        execv(argv[0], argv);
        _exit(127);
    }
    started[nstarted++] = s->pid;
    for (double deadline = now_s() + 30; now_s() < deadline; sleep_ms(20)) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            fprintf(stderr, "%s exited while starting (wait status %d)\n", name, status);
            s->pid = 0;
            return -1;
        }
        if (http_request(probe, "GET", "/-/ready", "", 0) == 200)
            return 0;
    }
    fprintf(stderr, "%s: not ready within 30 s\n", name);
    kill(-s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

/* SIGTERM, then SIGKILL after 30 s. Reports an exit other than 0 after SIGTERM. */
static void server_stop(server *s) {
    if (s->pid <= 0)
        return;
    kill(-s->pid, SIGTERM);
    int status = 0;
    double deadline = now_s() + 30;
    while (waitpid(s->pid, &status, WNOHANG) == 0) {
        if (now_s() > deadline) {
            fprintf(stderr, "%s did not stop within 30 s of SIGTERM: killed\n", s->name);
            kill(-s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        sleep_ms(10);
    }
    if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "%s ended with %s %d after SIGTERM\n", s->name,
                WIFSIGNALED(status) ? "signal" : "exit status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    for (int i = 0; i < nstarted; i++)
        if (started[i] == s->pid)
            started[i] = 0;
    s->pid = 0;
}

/* ---- the key material ------------------------------------------------------------------ */

/* A bcrypt hash (cost 10) of password from libcrypt, into out; *seconds: the crypt run alone.
 * 0, or -1. */
static int bcrypt_hash(const char *password, char out[CRYPT_OUTPUT_SIZE], double *seconds) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    if (crypt_gensalt_rn("$2b$", 10, NULL, 0, salt, sizeof salt) == NULL)
        return -1;
    double t0 = now_s();
    const char *h = crypt_rn(password, salt, &cd, (int)sizeof cd);
    *seconds = now_s() - t0;
    if (h == NULL || strncmp(h, "$2b$10$", 7) != 0 || strlen(h) != 60)
        return -1;
    snprintf(out, CRYPT_OUTPUT_SIZE, "%s", h);
    return 0;
}

/* In tmpdir: cert.pem and key.pem (self-signed, for localhost and 127.0.0.1, by openssl) and
 * web.yml with TLS and users "bench" and "cold1".."cold<rounds>", all with PASSWORD. 0, or -1.
 * *bcrypt_s: the median time of one cost-10 bcrypt run here. */
static int make_web_config(const char *key, int rounds, double *bcrypt_s) {
    char cmd[1024], path[128], hash[CRYPT_OUTPUT_SIZE];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey %s -nodes -days 1 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s/key.pem -out "
             "%s/cert.pem >%s/openssl.log 2>&1",
             strcmp(key, "rsa") == 0 ? "rsa:2048" : "ec -pkeyopt ec_paramgen_curve:prime256v1",
             tmpdir, tmpdir, tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl failed (%s/openssl.log): %s\n", tmpdir, cmd);
        return -1;
    }
    snprintf(path, sizeof path, "%s/web.yml", tmpdir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
               "basic_auth_users:\n");
    double runs[MAX_ROUNDS + 1];
    for (int i = 0; i <= rounds; i++) {
        if (bcrypt_hash(PASSWORD, hash, &runs[i]) != 0) {
            fprintf(stderr, "libcrypt: no $2b$ (bcrypt) hash\n");
            fclose(f);
            return -1;
        }
        if (i == 0)
            fprintf(f, "  bench: '%s'\n", hash);
        else
            fprintf(f, "  cold%d: '%s'\n", i, hash);
    }
    /* the median run (insertion sort: at most MAX_ROUNDS + 1) */
    for (int i = 1; i <= rounds; i++)
        for (int j = i; j > 0 && runs[j] < runs[j - 1]; j--) {
            double t = runs[j];
            runs[j] = runs[j - 1];
            runs[j - 1] = t;
        }
    *bcrypt_s = runs[rounds / 2];
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- the traffic ----------------------------------------------------------------------- */

/* A text-format body of n gauge series with two labels. */
static char *gauge_body(size_t n, size_t *len) {
    size_t cap = 64 + n * 96, used = 0;
    char *body = malloc(cap);
    if (body == NULL)
        exit(1);
    used += (size_t)snprintf(body, cap, "# TYPE bench_gauge gauge\n");
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(body + used, cap - used,
                                 "bench_gauge{service=\"svc-%zu\",endpoint=\"/api/v1/item/%zu\"} "
                                 "%zu\n",
                                 i % 100, i, i % 1000);
    *len = used;
    return body;
}

/* Series of the bench family in the last answer's body (lines "bench_gauge{"). */
static long count_series(const http_client *c) {
    long n = 0;
    if (c->body == NULL)
        return 0;
    for (const char *p = c->body; (p = strstr(p, "bench_gauge{")) != NULL; p++)
        n += p == c->body || p[-1] == '\n';
    return n;
}

static unsigned failed; /* scrapes not answered 200 with the SERIES series */

/* One GET /metrics; its seconds. Counts it as failed unless 200 with every series. */
static double scrape(http_client *c) {
    double t0 = now_s();
    int status = http_request(c, "GET", "/metrics", "", 0);
    double dt = now_s() - t0;
    if (status != 200 || count_series(c) != SERIES)
        failed++;
    return dt;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-quantile by nearest rank of v[0..n) (sorts v). */
static double quantile(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int rank = (int)(p * n + 0.999999);
    return v[rank < 1 ? 0 : rank > n ? n - 1 : rank - 1];
}

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    char self[4096], abacus[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    snprintf(abacus, sizeof abacus, "%s/../exporter/abacus", dirname(self));
    const char *bin = abacus, *key = "ec";
    int scrapes = 500, rounds = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--abacus") && i + 1 < argc)
            bin = argv[++i];
        else if (!strcmp(argv[i], "--scrapes") && i + 1 < argc)
            scrapes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--key") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "ec") || !strcmp(argv[i + 1], "rsa")))
            key = argv[++i];
        else {
            fprintf(stderr, "usage: bench_https [--abacus BIN] [--scrapes N] [--rounds R] "
                            "[--key ec|rsa]\n");
            return 2;
        }
    }
    if (scrapes < 1 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "bench_https: --scrapes >= 1, --rounds 1..%d\n", MAX_ROUNDS);
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    snprintf(tmpdir, sizeof tmpdir, "/tmp/bench_https.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    double bcrypt_s;
    if (make_web_config(key, rounds, &bcrypt_s) != 0) {
        remove_tmpdir();
        return 1;
    }
    char cert[128];
    snprintf(cert, sizeof cert, "%s/cert.pem", tmpdir);
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
        gnutls_certificate_set_x509_trust_file(cred, cert, GNUTLS_X509_FMT_PEM) != 1) {
        fprintf(stderr, "gnutls: cannot trust %s\n", cert);
        remove_tmpdir();
        return 1;
    }

    /* the servers */
    int port[2] = {free_port(), free_port()};
    while (port[1] == port[0])
        port[1] = free_port();
    char listen[2][64], webcfg[160];
    for (int i = 0; i < 2; i++)
        snprintf(listen[i], sizeof listen[i], "--web.listen-address=127.0.0.1:%d", port[i]);
    snprintf(webcfg, sizeof webcfg, "--web.config.file=%s/web.yml", tmpdir);
    char *plain_argv[] = {(char *)bin,
                          listen[0],
                          "--config.file=/dev/null",
                          "--statsd.listen-udp=",
                          "--statsd.listen-tcp=",
                          "--log.level=warn",
                          NULL};
    char *https_argv[] = {(char *)bin,
                          listen[1],
                          "--config.file=/dev/null",
                          "--statsd.listen-udp=",
                          "--statsd.listen-tcp=",
                          "--log.level=warn",
                          webcfg,
                          NULL};
    http_client plain = {.port = port[0], .fd = -1};
    http_client https = {.port = port[1], .fd = -1, .cred = cred};
    http_client fresh = {.port = port[1], .fd = -1, .cred = cred, .close_each = 1};
    http_client cold = {.port = port[1], .fd = -1, .cred = cred};
    set_basic_auth(&https, "bench", PASSWORD);
    set_basic_auth(&fresh, "bench", PASSWORD);
    server servers[2];
    if (server_start(&servers[0], "abacus (plain)", plain_argv, &plain) != 0) {
        remove_tmpdir();
        return 1;
    }
    if (server_start(&servers[1], "abacus (https)", https_argv, &https) != 0) {
        server_stop(&servers[0]);
        remove_tmpdir();
        return 1;
    }

    /* the series: one PUT of SERIES gauges to each */
    size_t len;
    char *body = gauge_body(SERIES, &len);
    int put[2] = {http_request(&plain, "PUT", "/metrics/job/bench", body, len),
                  http_request(&https, "PUT", "/metrics/job/bench", body, len)};
    free(body);
    if (put[0] != 200 || put[1] != 200) {
        fprintf(stderr, "push of %d series: plain %d, https %d (want 200)\n", SERIES, put[0],
                put[1]);
        server_stop(&servers[0]);
        server_stop(&servers[1]);
        remove_tmpdir();
        return 1;
    }
    scrape(&https); /* the body size and TLS parameters, for the header below */
    printf("bench_https: %ld CPUs; %d gauge series with 2 labels (one push), GET /metrics in the "
           "text format\n(no gzip), %zu bytes a scrape; both servers are abacus of the same "
           "build on loopback;\nTLS: %s, %s certificate; basic auth: bcrypt cost 10 (one run "
           "here: %.1f ms)\n\n",
           sysconf(_SC_NPROCESSORS_ONLN), SERIES, https.body_len, https.desc,
           strcmp(key, "rsa") == 0 ? "RSA 2048" : "EC P-256", bcrypt_s * 1e3);
    fflush(stdout);

    /* latency: the three ways interleaved */
    static const char *const CASES[] = {"(a) HTTP, keep-alive", "(b) HTTPS + auth, keep-alive",
                                        "(c) HTTPS + auth, new TLS conn."};
    http_client *clients[3] = {&plain, &https, &fresh};
    double *lat[3], *handshake = malloc(sizeof(double) * (size_t)scrapes);
    unsigned conns[3];
    for (int k = 0; k < 3; k++) {
        lat[k] = malloc(sizeof(double) * (size_t)scrapes);
        if (lat[k] == NULL || handshake == NULL)
            return 1;
    }
    failed = 0;
    for (int i = 0; i < WARMUP; i++)
        for (int k = 0; k < 3; k++)
            scrape(clients[k]);
    for (int k = 0; k < 3; k++)
        conns[k] = clients[k]->connections;
    for (int i = 0; i < scrapes; i++) {
        for (int k = 0; k < 3; k++)
            lat[k][i] = scrape(clients[k]);
        handshake[i] = fresh.connect_s;
    }
    printf("scrape latency, %d scrapes each (after %d unmeasured), one of each in turn:\n", scrapes,
           WARMUP);
    printf("  %-32s %10s %10s %10s %12s\n", "case", "median ms", "p99 ms", "max ms", "new conns");
    double median[3];
    for (int k = 0; k < 3; k++) {
        median[k] = quantile(lat[k], scrapes, 0.5);
        printf("  %-32s %10.2f %10.2f %10.2f %12u\n", CASES[k], median[k] * 1e3,
               quantile(lat[k], scrapes, 0.99) * 1e3, lat[k][scrapes - 1] * 1e3,
               clients[k]->connections - conns[k]);
    }
    printf("  HTTPS + auth over HTTP (medians): keep-alive +%.2f ms (%.2fx), new connection "
           "+%.2f ms (%.2fx)\n",
           (median[1] - median[0]) * 1e3, median[1] / median[0], (median[2] - median[0]) * 1e3,
           median[2] / median[0]);
    printf("  (c)'s TCP connect and TLS handshake alone: median %.2f ms, p99 %.2f ms\n",
           quantile(handshake, scrapes, 0.5) * 1e3, quantile(handshake, scrapes, 0.99) * 1e3);
    printf("  failed: %u\n\n", failed);
    fflush(stdout);
    for (int k = 0; k < 3; k++)
        free(lat[k]);
    free(handshake);

    /* the credentials cache: per round, CACHE_SCRAPES cached, then CACHE_SCRAPES as a new user */
    double warm_total[MAX_ROUNDS], warm_first[MAX_ROUNDS], warm_rest[MAX_ROUNDS];
    double cold_total[MAX_ROUNDS], cold_first[MAX_ROUNDS], cold_rest[MAX_ROUNDS];
    failed = 0;
    for (int r = 0; r < rounds; r++) {
        char user[32];
        snprintf(user, sizeof user, "cold%d", r + 1);
        set_basic_auth(&cold, user, PASSWORD);
        /* both connections open before: neither pays a handshake in the figures */
        scrape(&https);
        if (cold.fd < 0 && http_connect(&cold) != 0)
            failed++;
        for (int half = 0; half < 2; half++) { /* odd rounds: the new user first */
            int is_cold = half ^ (r & 1);
            http_client *c = is_cold ? &cold : &https;
            double t0 = now_s(), first = scrape(c);
            for (int i = 1; i < CACHE_SCRAPES; i++)
                scrape(c);
            double total = now_s() - t0;
            (is_cold ? cold_first : warm_first)[r] = first;
            (is_cold ? cold_total : warm_total)[r] = total;
            (is_cold ? cold_rest : warm_rest)[r] = total - first;
        }
    }
    printf("%d scrapes over one keep-alive HTTPS connection, medians of %d rounds (each round "
           "a new user):\n",
           CACHE_SCRAPES, rounds);
    printf("  %-36s %10s %16s %16s\n", "credentials", "total ms", "first scrape ms", "other 99 ms");
    double rest_diff[MAX_ROUNDS]; /* paired in each round, before the sorts below */
    for (int r = 0; r < rounds; r++)
        rest_diff[r] = cold_rest[r] - warm_rest[r];
    double dr = quantile(rest_diff, rounds, 0.5);
    double wt = quantile(warm_total, rounds, 0.5), ct = quantile(cold_total, rounds, 0.5);
    double wf = quantile(warm_first, rounds, 0.5), cf = quantile(cold_first, rounds, 0.5);
    double wr = quantile(warm_rest, rounds, 0.5), cr = quantile(cold_rest, rounds, 0.5);
    printf("  %-36s %10.1f %16.2f %16.1f\n", "verified before (cached)", wt * 1e3, wf * 1e3,
           wr * 1e3);
    printf("  %-36s %10.1f %16.2f %16.1f\n", "new user: first scrape runs bcrypt", ct * 1e3,
           cf * 1e3, cr * 1e3);
    printf("  bcrypt's share: first scrape +%.1f ms (one bcrypt run here: %.1f ms); the other 99 "
           "differ by %+.1f ms\n"
           "  (median of the per-round differences; after its first scrape the new user is "
           "cached too)\n",
           (cf - wf) * 1e3, bcrypt_s * 1e3, dr * 1e3);
    printf("  failed: %u\n", failed);

    http_free(&plain);
    http_free(&https);
    http_free(&fresh);
    http_free(&cold);
    server_stop(&servers[0]);
    server_stop(&servers[1]);
    gnutls_certificate_free_credentials(cred);
    remove_tmpdir();
    return 0;
}
