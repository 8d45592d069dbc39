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
#include <crypt.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "peer.h"
#include "http_client.h"

#define SERIES 10000
#define WARMUP 10
#define CACHE_SCRAPES 100
#define MAX_ROUNDS 50
#define PASSWORD "bench-password"

/* ---- the servers: real processes ------------------------------------------------------- */

typedef struct {
    const char *name;
    pid_t pid; /* also its process group */
} server;

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
    peer_kill_all();
    remove_tmpdir();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Start argv[0] and wait until it is ready through probe (peer_start). 0, or -1. */
static int server_start(server *s, const char *name, char *const argv[], http_client *probe) {
    *s = (server){.name = name};
    return peer_start(&s->pid, name, argv, 0, probe);
}

/* Stop it (peer_stop). Cannot fail. */
static void server_stop(server *s) {
    peer_stop(&s->pid, s->name);
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

/* The p-quantile by nearest rank of v[0..n) (sorts v). */
static double quantile(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int rank = (int)(p * n + 0.999999);
    return v[rank < 1 ? 0 : rank > n ? n - 1 : rank - 1];
}

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    char abacus[4200];
    if (peer_build_abacus(abacus, sizeof abacus) != 0)
        return 1;
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
    print_machine();
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
    char *plain_argv[PEER_ARGV_MAX], *https_argv[PEER_ARGV_MAX];
    const char *https_extra[] = {webcfg, NULL};
    peer_abacus_argv(plain_argv, bin, listen[0], NULL);
    peer_abacus_argv(https_argv, bin, listen[1], https_extra);
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
    char *body = peer_gauge_body(SERIES, 0, &len);
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
