/* client.c - remote write's HTTP client: one libcurl easy handle per receiver (its connection
 * is reused between requests), the protocol's headers, basic or Authorization auth with
 * secrets read from their files at each request (so a rotated secret is picked up), TLS, and
 * the classification of answers into sent, retry and rejected.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/internal.h"

#define MAX_SECRET 4096    /* bytes of a password or credentials file */
#define MAX_ERROR_BODY 256 /* bytes of a refusal's body kept for the log */

struct rw_client {
    CURL *h;
    char body[MAX_ERROR_BODY]; /* the start of the last answer's body */
    size_t body_len;
};

/* NULL when out of memory. */
rw_client *rw_client_create(void) {
    rw_client *c = calloc(1, sizeof *c);
    if (c && !(c->h = curl_easy_init())) {
        free(c);
        c = NULL;
    }
    return c;
}

/* Cannot fail; NULL is ignored. */
void rw_client_free(rw_client *c) {
    if (!c)
        return;
    curl_easy_cleanup(c->h);
    free(c);
}

/* Keeps the start of an answer's body (for the log); drops the rest. Cannot fail. */
static size_t on_body(char *p, size_t size, size_t n, void *arg) {
    rw_client *c = arg;
    size_t len = size * n, room = sizeof c->body - 1 - c->body_len;
    size_t take = len < room ? len : room;
    memcpy(c->body + c->body_len, p, take);
    c->body_len += take;
    c->body[c->body_len] = '\0';
    return len;
}

/* The first line of file into out[cap] (a trailing newline dropped, as Prometheus trims
 * whitespace). 0, or -1 with the reason in why. */
static int read_secret(const char *file, char *out, size_t cap, char *why, size_t whylen) {
    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(why, whylen, "reading %s: %s", file, strerror(errno));
        return -1;
    }
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    return 0;
}

/* The request headers. NULL when out of memory. */
static struct curl_slist *headers(const cfg_remote_write *w, const char *authz) {
    // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): the version is meant to be appended
    static const char user_agent[] = "User-Agent: abacus/" ABACUS_VERSION;
    static const char *const fixed[] = {
        "Content-Encoding: snappy",
        "Content-Type: application/x-protobuf",
        "X-Prometheus-Remote-Write-Version: 0.1.0",
        user_agent,
        "Expect:", /* no 100-continue round trip */
    };
    struct curl_slist *l = NULL, *t;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        if (!(t = curl_slist_append(l, fixed[i])))
            goto oom;
        l = t;
    }
    for (size_t i = 0; i < w->nheaders + (authz ? 1 : 0); i++) {
        char line[8192];
        if (i < w->nheaders)
            snprintf(line, sizeof line, "%s: %s", w->header_names[i], w->header_values[i]);
        else
            snprintf(line, sizeof line, "Authorization: %s", authz);
        if (!(t = curl_slist_append(l, line)))
            goto oom;
        l = t;
    }
    return l;
oom:
    curl_slist_free_all(l);
    return NULL;
}

/* The Authorization value of w into out, or "" without one. 0, or -1 with why. */
static int authorization(const cfg_remote_write *w, char *out, size_t cap, char *why,
                         size_t whylen) {
    char secret[MAX_SECRET] = "";
    out[0] = '\0';
    if (!w->auth_type)
        return 0;
    if (w->auth_credentials_file &&
        read_secret(w->auth_credentials_file, secret, sizeof secret, why, whylen) != 0)
        return -1;
    snprintf(out, cap, "%s %s", w->auth_type,
             w->auth_credentials_file ? secret : (w->auth_credentials ? w->auth_credentials : ""));
    return 0;
}

/* The TLS and auth options of w on the handle. 0, or -1 with why. */
static int set_security(rw_client *c, const cfg_remote_write *w, char *why, size_t whylen) {
    CURL *h = c->h;
    curl_easy_setopt(h, CURLOPT_CAINFO, w->ca_file);
    curl_easy_setopt(h, CURLOPT_SSLCERT, w->cert_file);
    curl_easy_setopt(h, CURLOPT_SSLKEY, w->key_file);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, w->insecure_skip_verify ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, w->insecure_skip_verify ? 0L : 2L);
    curl_easy_setopt(h, CURLOPT_USERNAME, w->basic_username);
    curl_easy_setopt(h, CURLOPT_PASSWORD, (const char *)NULL);
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, w->basic_username ? CURLAUTH_BASIC : CURLAUTH_NONE);
    if (!w->basic_username)
        return 0;
    char secret[MAX_SECRET] = "";
    if (w->basic_password_file &&
        read_secret(w->basic_password_file, secret, sizeof secret, why, whylen) != 0)
        return -1;
    curl_easy_setopt(h, CURLOPT_PASSWORD,
                     w->basic_password_file ? secret
                                            : (w->basic_password ? w->basic_password : ""));
    return 0;
}

/* server_name: connect to the url's host but speak TLS (SNI and verification) for server_name,
 * by naming server_name in the url and mapping it to the real host. The url to use goes to
 * *url (malloc'd) and the mapping to *connect_to. 0, or -1 when out of memory. */
static int server_name_route(const cfg_remote_write *w, char **url,
                             struct curl_slist **connect_to) {
    *url = NULL;
    *connect_to = NULL;
    if (!w->server_name)
        return 0;
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *line = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, w->url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_HOST, w->server_name, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        asprintf(&line, "%s:%s:%s:%s", w->server_name, port, host, port) >= 0) {
        *connect_to = curl_slist_append(NULL, line);
        rc = *connect_to ? 0 : -1;
    }
    free(line);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* The outcome of a finished transfer. Cannot fail. */
static rw_outcome classify(rw_client *c, const cfg_remote_write *w, CURLcode cc, long code,
                           unsigned *status, char *why, size_t whylen) {
    *status = (unsigned)code;
    if (cc != CURLE_OK) {
        snprintf(why, whylen, "%s", curl_easy_strerror(cc));
        return RW_RETRY;
    }
    if (code >= 200 && code < 300)
        return RW_SENT;
    snprintf(why, whylen, "HTTP %ld: %.*s", code, (int)strcspn(c->body, "\r\n"), c->body);
    if (code >= 500 || (code == 429 && w->retry_on_http_429))
        return RW_RETRY;
    return RW_REJECTED;
}

/* Returns the outcome. */
rw_outcome rw_client_send(rw_client *c, const cfg_remote_write *w, const char *body, size_t len,
                          unsigned *status, char *why, size_t whylen) {
    CURL *h = c->h;
    char authz[MAX_SECRET + 64];
    char *routed = NULL;
    struct curl_slist *hdrs = NULL, *connect_to = NULL;
    *status = 0;
    if (authorization(w, authz, sizeof authz, why, whylen) != 0 ||
        set_security(c, w, why, whylen) != 0)
        return RW_RETRY; /* the file may come back; the queue holds meanwhile */
    if (server_name_route(w, &routed, &connect_to) != 0 ||
        !(hdrs = headers(w, authz[0] ? authz : NULL))) {
        snprintf(why, whylen, "out of memory");
        free(routed);
        curl_slist_free_all(connect_to);
        return RW_RETRY;
    }
    c->body_len = 0;
    c->body[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, routed ? routed : w->url);
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(w->remote_timeout_ns / 1000000));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for name lookups */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    /* The handle keeps pointers to these: clear them before they are freed. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, (struct curl_slist *)NULL);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(connect_to);
    free(routed);
    return classify(c, w, cc, code, status, why, whylen);
}
