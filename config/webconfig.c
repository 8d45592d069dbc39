/* webconfig.c - the web config file (--web.config.file): the Prometheus exporter toolkit's
 * format (tls_server_config, http_server_config, basic_auth_users), loaded and checked into an
 * immutable cfg_web with the toolkit's rules and every problem reported with its position.
 *
 * What the toolkit refuses, this refuses: unknown and duplicate keys (Go's UnmarshalStrict),
 * TLS settings without both cert_file and key_file, unknown client_auth_type, TLS version,
 * cipher or curve names, a client_ca_file without a client_auth_type, unreadable files, header
 * names and values outside its list, passwords that are not bcrypt hashes. It also refuses what
 * abacus cannot honour (inline certificates, rate_limit, min_version above max_version, a
 * bcrypt variant libcrypt does not verify). Certificates and keys are only checked to be
 * readable and to hold a PEM block of the right kind: parsing them (and checking that they
 * form a pair) is the TLS side's job, which needs GnuTLS; this module does not.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "walk.h"
#include "yaml_tree.h"

/* One load in progress. */
typedef struct {
    cfg_yaml_report report;
    cfg_web *web;
    const char *dir; /* the file's directory, for relative paths; NULL: the current one */
    size_t dirlen;
} web_loader;

/* ---- names --------------------------------------------------------------------------------- */

/* Go's tls.CipherSuites() (Go 1.19, as Debian's Prometheus 2.42 is built): the names the
 * toolkit accepts. The TLS 1.3 ones are accepted and, as in Go, not configurable. */
static const char *const cipher_names[] = {"TLS_RSA_WITH_AES_128_CBC_SHA",
                                           "TLS_RSA_WITH_AES_256_CBC_SHA",
                                           "TLS_RSA_WITH_AES_128_GCM_SHA256",
                                           "TLS_RSA_WITH_AES_256_GCM_SHA384",
                                           "TLS_AES_128_GCM_SHA256",
                                           "TLS_AES_256_GCM_SHA384",
                                           "TLS_CHACHA20_POLY1305_SHA256",
                                           "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
                                           "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
                                           "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
                                           "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
                                           "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                                           "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                                           "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                           "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                                           "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                                           "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                                           NULL};
static const char *const curve_names[] = {"CurveP256", "CurveP384", "CurveP521", "X25519", NULL};
/* In cfg_client_auth order; "RequireClientCert" is the toolkit's old name of RequireAny. */
static const char *const auth_names[] = {"NoClientCert",
                                         "RequestClientCert",
                                         "RequireAnyClientCert",
                                         "VerifyClientCertIfGiven",
                                         "RequireAndVerifyClientCert",
                                         NULL};
static const char *const version_names[] = {"TLS10", "TLS11", "TLS12", "TLS13", NULL};

/* The toolkit's extraHTTPHeaders: the names that may be set, and the values allowed for those
 * whose values are an enumeration (NULL: any value). */
static const struct {
    const char *name;
    const char *values[3];
    const char *want;
} header_rules[] = {
    {"Strict-Transport-Security", {NULL}, NULL},
    {"X-Content-Type-Options", {"nosniff", NULL}, "\"nosniff\""},
    {"X-Frame-Options", {"deny", "sameorigin", NULL}, "\"deny\" or \"sameorigin\""},
    {"X-XSS-Protection", {NULL}, NULL},
    {"Content-Security-Policy", {NULL}, NULL},
};

/* Index of n's text in the NULL-terminated names, or -1. Cannot fail. */
static int name_index(const cfg_node *n, const char *const *names) {
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == n->len && !memcmp(names[i], n->s, n->len))
            return i;
    return -1;
}

/* ---- string lists ------------------------------------------------------------------------- */

/* Appends s (taken) to the array *v of *n strings. 0, or -1 when out of memory (reported; s is
 * freed). */
static int push_string(web_loader *l, char ***v, size_t *n, char *s) {
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) {
        free(s);
        cfg_yaml_oom(&l->report);
        return -1;
    }
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

/* A sequence of names, each one of `names` (a list of accepted names for messages: `want`;
 * `what` names one in "unknown <what>"). Kept as written in *v. Cannot fail (reported). */
static void read_name_list(web_loader *l, cfg_node *n, const char *path, const char *const *names,
                           const char *what, const char *want, char ***v, size_t *nv) {
    cfg_node **it;
    size_t cnt;
    if (cfg_read_sequence(&l->report, n, path, &it, &cnt) <= 0)
        return;
    for (size_t i = 0; i < cnt && cfg_yaml_visit(&l->report); i++) {
        char p[CFG_PATH_LEN];
        char *s = NULL;
        if (cfg_read_string(&l->report, it[i], cfg_path_index(p, path, i), &s) <= 0)
            continue;
        if (names && name_index(it[i], names) < 0) {
            cfg_quoted b;
            cfg_yaml_error(&l->report, it[i], p, "unknown %s %s (want %s)", what,
                           cfg_quote_str(&b, s), want);
            free(s);
            continue;
        }
        push_string(l, v, nv, s);
    }
}

/* ---- files ---------------------------------------------------------------------------------- */

/* *path made relative to the file's directory (the toolkit's JoinDir: absolute and empty
 * paths stay). 0, or -1 when out of memory (reported). */
static int resolve_path(web_loader *l, char **path) {
    if (!l->dir || !**path || **path == '/')
        return 0;
    size_t n = strlen(*path);
    char *r = malloc(l->dirlen + 1 + n + 1);
    if (!r) {
        cfg_yaml_oom(&l->report);
        return -1;
    }
    memcpy(r, l->dir, l->dirlen);
    r[l->dirlen] = '/';
    memcpy(r + l->dirlen + 1, *path, n + 1);
    free(*path);
    *path = r;
    return 0;
}

/* Checks the file named by field i of f (see cfg_check_file). Cannot fail (reported). */
static void check_file(web_loader *l, cfg_fields *f, int i, const char *path, const char *label,
                       int suffix, const char *kind) {
    char p[CFG_PATH_LEN];
    cfg_check_file(&l->report, f->val[i], cfg_field_path(p, f, i), path, label, suffix, kind);
}

/* ---- tls_server_config -------------------------------------------------------------------- */

enum {
    TL_CERT_FILE,
    TL_KEY_FILE,
    TL_CLIENT_AUTH,
    TL_CLIENT_CA,
    TL_SANS,
    TL_MIN,
    TL_MAX,
    TL_CIPHERS,
    TL_CURVES,
    TL_PREFER,
    TL_CERT, /* newer toolkits' inline forms: refused */
    TL_KEY,
    TL_CLIENT_CA_TEXT,
    TL_N
};
static const char *const tl_keys[TL_N] = {"cert_file",
                                          "key_file",
                                          "client_auth_type",
                                          "client_ca_file",
                                          "client_allowed_sans",
                                          "min_version",
                                          "max_version",
                                          "cipher_suites",
                                          "curve_preferences",
                                          "prefer_server_cipher_suites",
                                          "cert",
                                          "key",
                                          "client_ca"};

/* min_version / max_version: 1 with *out set, 0 absent, -1 reported. */
static int read_version(web_loader *l, cfg_fields *f, int i, unsigned *out) {
    char p[CFG_PATH_LEN];
    char *s = NULL;
    int r = cfg_field_string(f, i, &s);
    if (r > 0) {
        int k = name_index(f->val[i], version_names);
        if (k < 0) {
            cfg_quoted b;
            cfg_yaml_error(&l->report, f->val[i], cfg_field_path(p, f, i),
                           "unknown TLS version %s (want TLS10, TLS11, TLS12 or TLS13)",
                           cfg_quote_str(&b, s));
            r = -1;
        } else {
            *out = CFG_TLS10 + (unsigned)k;
        }
    }
    free(s);
    return r;
}

/* client_auth_type: the five names (and the old RequireClientCert); "" is NoClientCert.
 * Returns 1 when given non-empty, 0 when absent or empty, -1 reported. */
static int read_client_auth(web_loader *l, cfg_fields *f, cfg_client_auth *out) {
    char p[CFG_PATH_LEN];
    char *s = NULL;
    int r = cfg_field_string(f, TL_CLIENT_AUTH, &s);
    if (r > 0 && !*s) {
        r = 0;
    } else if (r > 0) {
        int k = name_index(f->val[TL_CLIENT_AUTH], auth_names);
        if (k < 0 && !strcmp(s, "RequireClientCert"))
            k = CFG_CLIENT_AUTH_REQUIRE_ANY;
        if (k < 0) {
            cfg_quoted b;
            cfg_yaml_error(&l->report, f->val[TL_CLIENT_AUTH], cfg_field_path(p, f, TL_CLIENT_AUTH),
                           "unknown client_auth_type %s (want NoClientCert, RequestClientCert, "
                           "RequireAnyClientCert, VerifyClientCertIfGiven or "
                           "RequireAndVerifyClientCert)",
                           cfg_quote_str(&b, s));
            r = -1;
        } else {
            *out = (cfg_client_auth)k;
        }
    }
    free(s);
    return r;
}

/* A file key: read, "" treated as absent (as the toolkit does), resolved. 1 set, 0 absent,
 * -1 reported. */
static int read_file_key(web_loader *l, cfg_fields *f, int i, char **out) {
    int r = cfg_field_string(f, i, out);
    if (r > 0 && !**out) {
        free(*out);
        *out = NULL;
        return 0;
    }
    if (r > 0 && resolve_path(l, out) != 0)
        return -1;
    return r;
}

/* The keys of newer toolkits abacus does not take: each given one is an error. Cannot fail. */
static void refuse_inline(web_loader *l, cfg_fields *f) {
    static const struct {
        int key;
        const char *instead;
    } inl[] = {{TL_CERT, "cert_file"}, {TL_KEY, "key_file"}, {TL_CLIENT_CA_TEXT, "client_ca_file"}};
    for (size_t i = 0; i < sizeof inl / sizeof inl[0]; i++) {
        if (f->val[inl[i].key])
            cfg_yaml_error(&l->report, f->key[inl[i].key], f->path,
                           "key \"%s\" (inline PEM) is not supported by abacus; use %s",
                           tl_keys[inl[i].key], inl[i].instead);
    }
}

/* `tls_server_config`; every problem reported. Cannot fail. */
static void load_tls(web_loader *l, cfg_node *n) {
    cfg_web *w = l->web;
    cfg_fields f;
    char p[CFG_PATH_LEN];
    if (cfg_read_fields(&l->report, n, "tls_server_config", tl_keys, TL_N, &f) <= 0)
        return;
    refuse_inline(l, &f);
    int cert = read_file_key(l, &f, TL_CERT_FILE, &w->cert_file);
    int key = read_file_key(l, &f, TL_KEY_FILE, &w->key_file);
    int ca = read_file_key(l, &f, TL_CLIENT_CA, &w->client_ca_file);
    int auth = read_client_auth(l, &f, &w->client_auth);
    /* The toolkit turns TLS on when any of these four is given; then both files are needed. */
    if (cert || key || ca || auth) {
        if (!cert)
            cfg_yaml_error(&l->report, n, "tls_server_config", "missing cert_file");
        if (!key)
            cfg_yaml_error(&l->report, n, "tls_server_config", "missing key_file");
        w->tls = cert > 0 && key > 0;
    }
    if (cert > 0)
        check_file(l, &f, TL_CERT_FILE, w->cert_file, "CERTIFICATE", 0, "certificate");
    if (key > 0)
        check_file(l, &f, TL_KEY_FILE, w->key_file, "PRIVATE KEY", 1, "private key");
    if (ca > 0) {
        check_file(l, &f, TL_CLIENT_CA, w->client_ca_file, NULL, 0, NULL);
        if (auth >= 0 && w->client_auth == CFG_CLIENT_AUTH_NONE)
            cfg_yaml_error(&l->report, f.val[TL_CLIENT_CA], cfg_field_path(p, &f, TL_CLIENT_CA),
                           "client_ca_file given without a client_auth_type (the toolkit: "
                           "client CA's have been configured without a Client Auth Policy)");
    }
    read_name_list(l, f.val[TL_SANS], cfg_field_path(p, &f, TL_SANS), NULL, NULL, NULL,
                   &w->allowed_sans, &w->nallowed_sans);
    int min = read_version(l, &f, TL_MIN, &w->min_version);
    int max = read_version(l, &f, TL_MAX, &w->max_version);
    if (min >= 0 && max > 0 && w->min_version > w->max_version)
        cfg_yaml_error(&l->report, f.val[TL_MAX], cfg_field_path(p, &f, TL_MAX),
                       "max_version %s is below min_version %s: no TLS version left",
                       version_names[w->max_version - CFG_TLS10],
                       version_names[w->min_version - CFG_TLS10]);
    read_name_list(l, f.val[TL_CIPHERS], cfg_field_path(p, &f, TL_CIPHERS), cipher_names, "cipher",
                   "a name of Go's tls.CipherSuites()", &w->cipher_suites, &w->ncipher_suites);
    read_name_list(l, f.val[TL_CURVES], cfg_field_path(p, &f, TL_CURVES), curve_names, "curve",
                   "CurveP256, CurveP384, CurveP521 or X25519", &w->curves, &w->ncurves);
    cfg_field_bool(&f, TL_PREFER, &w->prefer_server_cipher_suites);
}

/* ---- basic_auth_users and http_server_config.headers: maps of strings ---------------------- */

/* A map of string -> string being read: names and values, the node of each name. */
typedef struct {
    web_loader *l;
    const char *path;
    char ***names, ***values;
    size_t *n;
    void (*check)(web_loader *l, const cfg_node *k, const cfg_node *v, const char *path,
                  const char *value);
} string_map;

/* The pair callback of read_string_map: one name and its value, unless the name was given
 * before. Cannot fail (reported). */
static void string_map_pair(void *arg, cfg_node *k, cfg_node *v, int merged) {
    string_map *m = arg;
    web_loader *l = m->l;
    char p[CFG_PATH_LEN];
    cfg_quoted b;
    for (size_t i = 0; i < *m->n; i++) {
        if (strlen((*m->names)[i]) == k->len && !memcmp((*m->names)[i], k->s, k->len)) {
            if (!merged)
                cfg_yaml_error(&l->report, k, m->path, "duplicate key %s",
                               cfg_quote(&b, k->s, k->len));
            return;
        }
    }
    char *name = NULL, *value = NULL;
    if (cfg_read_string(&l->report, k, m->path, &name) <= 0) {
        if (!name && cfg_yaml_is_null(k))
            cfg_yaml_error(&l->report, k, m->path, "null key");
        return;
    }
    cfg_path_key(p, m->path, name);
    int r = cfg_read_string(&l->report, v, p, &value);
    if (r == 0 && !(value = cfg_copy_text(&l->report, "", 0)))
        r = -1;
    if (r < 0) {
        free(name);
        return;
    }
    m->check(l, k, v, p, value);
    char **nn = realloc(*m->names, (*m->n + 1) * sizeof *nn);
    if (nn)
        *m->names = nn;
    char **nv = nn ? realloc(*m->values, (*m->n + 1) * sizeof *nv) : NULL;
    if (!nv) {
        cfg_yaml_oom(&l->report);
        free(name);
        free(value);
        return;
    }
    *m->values = nv;
    nn[*m->n] = name;
    nv[(*m->n)++] = value;
}

/* Reads mapping n into parallel arrays, each pair checked by check. Cannot fail (reported). */
static void read_string_map(web_loader *l, cfg_node *n, const char *path, char ***names,
                            char ***values, size_t *count,
                            void (*check)(web_loader *, const cfg_node *, const cfg_node *,
                                          const char *, const char *)) {
    cfg_quoted b;
    if (cfg_yaml_is_null(n))
        return;
    if (n->kind != CFG_NODE_MAP) {
        cfg_yaml_error(&l->report, n, path, "expected a mapping, got %s", cfg_yaml_describe(n, &b));
        return;
    }
    string_map m = {l, path, names, values, count, check};
    cfg_yaml_walk_map(&l->report, n, path, string_map_pair, &m);
}

/* 1 when s is a bcrypt hash libcrypt verifies: $2a$, $2b$ or $2y$, a two-digit cost 04-31,
 * '$', 22 characters of salt and 31 of hash in bcrypt's base64. Cannot fail. */
static int bcrypt_hash(const char *s) {
    static const char b64[] = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if (strlen(s) != 60 || s[0] != '$' || s[1] != '2' || !strchr("aby", s[2]) || s[3] != '$' ||
        s[6] != '$')
        return 0;
    if (s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9')
        return 0;
    int cost = (s[4] - '0') * 10 + (s[5] - '0');
    return cost >= 4 && cost <= 31 && strspn(s + 7, b64) == 53;
}

/* A basic_auth_users pair: the value must be a bcrypt hash. Cannot fail (reported). */
static void check_user(web_loader *l, const cfg_node *k, const cfg_node *v, const char *path,
                       const char *hash) {
    (void)k;
    if (!bcrypt_hash(hash))
        cfg_yaml_error(&l->report, v, path,
                       "not a bcrypt hash (want $2a$, $2b$ or $2y$, a cost 04-31 and 53 "
                       "characters of salt and hash, 60 in all)");
}

/* A headers pair: a name of the toolkit's list, a value it allows, no control character.
 * Cannot fail (reported). */
static void check_header(web_loader *l, const cfg_node *k, const cfg_node *v, const char *path,
                         const char *value) {
    cfg_quoted b, b2;
    for (size_t i = 0; i < sizeof header_rules / sizeof header_rules[0]; i++) {
        if (strlen(header_rules[i].name) != k->len || memcmp(header_rules[i].name, k->s, k->len))
            continue;
        const char *const *ok = header_rules[i].values;
        int good = !ok[0];
        for (size_t j = 0; ok[j]; j++)
            good |= !strcmp(ok[j], value);
        if (!good)
            cfg_yaml_error(&l->report, v, path, "invalid value %s for %s (want %s)",
                           cfg_quote_str(&b, value), header_rules[i].name, header_rules[i].want);
        for (const char *c = value; good && *c; c++) {
            if ((unsigned char)*c < 0x20 && *c != '\t') {
                cfg_yaml_error(&l->report, v, path, "header value contains a control character");
                break;
            }
        }
        return;
    }
    cfg_yaml_error(&l->report, k, path,
                   "HTTP header %s can not be configured (want one of "
                   "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
                   "X-XSS-Protection, Content-Security-Policy)",
                   cfg_quote(&b2, k->s, k->len));
}

/* `http_server_config`: headers, and http2 (either value: abacus speaks HTTP/1.1 only, which a
 * client offered HTTP/2 by ALPN falls back to, so http2: true changes nothing a scrape needs).
 * Cannot fail (reported). */
static void load_http(web_loader *l, cfg_node *n) {
    enum { HT_HTTP2, HT_HEADERS, HT_N };
    static const char *const ht_keys[HT_N] = {"http2", "headers"};
    cfg_fields f;
    char p[CFG_PATH_LEN];
    int http2;
    if (cfg_read_fields(&l->report, n, "http_server_config", ht_keys, HT_N, &f) <= 0)
        return;
    cfg_field_bool(&f, HT_HTTP2, &http2);
    read_string_map(l, f.val[HT_HEADERS], cfg_field_path(p, &f, HT_HEADERS), &l->web->header_names,
                    &l->web->header_values, &l->web->nheaders, check_header);
}

/* The top-level mapping. Cannot fail (reported). */
static void load_root(web_loader *l, cfg_node *root) {
    enum { WB_TLS, WB_HTTP, WB_USERS, WB_RATE, WB_N };
    static const char *const wb_keys[WB_N] = {"tls_server_config", "http_server_config",
                                              "basic_auth_users", "rate_limit"};
    cfg_fields f;
    if (cfg_read_fields(&l->report, root, "", wb_keys, WB_N, &f) <= 0)
        return;
    load_tls(l, f.val[WB_TLS]);
    load_http(l, f.val[WB_HTTP]);
    read_string_map(l, f.val[WB_USERS], "basic_auth_users", &l->web->users, &l->web->hashes,
                    &l->web->nusers, check_user);
    if (f.val[WB_RATE])
        cfg_yaml_error(&l->report, f.key[WB_RATE], "",
                       "key \"rate_limit\" is not supported by abacus");
}

/* ---- public ------------------------------------------------------------------------------- */

/* Frees every string array of n items. Cannot fail. */
static void free_strings(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Cannot fail; NULL is ignored. */
void cfg_web_free(cfg_web *w) {
    if (!w)
        return;
    free(w->path);
    free(w->cert_file);
    free(w->key_file);
    free(w->client_ca_file);
    free_strings(w->allowed_sans, w->nallowed_sans);
    free_strings(w->cipher_suites, w->ncipher_suites);
    free_strings(w->curves, w->ncurves);
    free_strings(w->users, w->nusers);
    free_strings(w->hashes, w->nusers);
    free_strings(w->header_names, w->nheaders);
    free_strings(w->header_values, w->nheaders);
    free(w);
}

/* NULL with every problem appended to errs (see config.h). */
cfg_web *cfg_web_load(const char *path, cfg_errors *errs) {
    cfg_errors local = {0};
    web_loader l = {
        .report = {.file = path, .errs = errs ? errs : &local, .visits = CFG_YAML_MAX_VISITS}};
    cfg_yaml_report *r = &l.report;
    size_t start = r->errs->count;
    char *buf = NULL;
    size_t len;
    cfg_web *w = NULL;
    if (cfg_read_file(path, r->errs, &buf, &len) != 0)
        goto out;
    w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        cfg_errors_add_at(r->errs, path, 0, 0, "out of memory");
        goto out;
    }
    w->min_version = CFG_TLS12;
    w->prefer_server_cipher_suites = 1;
    l.web = w;
    const char *slash = strrchr(path, '/');
    if (slash) {
        l.dir = path;
        l.dirlen = slash == path ? 0 : (size_t)(slash - path);
    }
    cfg_yaml_tree t = {0};
    cfg_node *root;
    if (cfg_yaml_parse(r, buf, len, &t, &root) == 0) {
        if (root && root->kind != CFG_NODE_MAP && !root->null) {
            cfg_quoted b;
            cfg_yaml_error(r, root, "", "expected a mapping at the top level, got %s",
                           cfg_yaml_describe(root, &b));
        } else {
            load_root(&l, root);
        }
    }
    cfg_yaml_tree_free(&t);
    cfg_sort_errors(r->errs, start);
out:
    free(buf);
    cfg_errors_free(&local);
    if (!w || r->nerr || r->oom || r->errs->count > start) {
        cfg_web_free(w);
        return NULL;
    }
    return w;
}
