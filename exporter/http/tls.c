/* tls.c - HTTPS for the HTTP server, configured by the web config file's tls_server_config as
 * the Prometheus exporter toolkit reads it (Go's crypto/tls semantics), through
 * libmicrohttpd's GnuTLS support:
 *
 *   - the server's certificate comes from MHD_OPTION_HTTPS_CERT_CALLBACK, so a new one can be
 *     swapped in without a restart: the files are checked (inode, size, mtime) at most once a
 *     second on handshakes, and again after every reload; a file that does not load keeps the
 *     old material serving, logged and counted;
 *   - versions, cipher suites and curves become a GnuTLS priority string;
 *   - client certificates per client_auth_type: requested or required when the connection
 *     starts, verified against client_ca_file and client_allowed_sans during the handshake,
 *     which fails as Go's would.
 *
 * Key material is one refcounted generation (tls_keys): the current one is held by exp_tls,
 * and each connection holds the generation it was served from until it closes (the
 * certificates GnuTLS sends and the CA that verifies the client stay alive for it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "http/internal.h"
#include "log.h"

#define TLS_MAX_CHAIN 16
#define TLS_CHECK_EVERY_MS 1000

/* One generation of key material, immutable once built. refs: exp_tls.cur holds one, each
 * connection served from it one more. */
struct tls_keys {
    _Atomic unsigned refs;
    gnutls_pcert_st pcert[TLS_MAX_CHAIN];
    unsigned npcert;
    gnutls_privkey_t key;
    gnutls_x509_trust_list_t ca; /* NULL without client_ca_file */
};

/* What identifies a file's contents without reading them. */
typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int exists;
} file_stamp;

enum { FILE_CERT, FILE_KEY, FILE_CA, NFILES };

struct exp_tls {
    exp_state *st;
    exp_self *self;
    cfg_client_auth client_auth;
    size_t nsans;
    char **sans;
    char *priorities;

    /* Serialises loading: paths, stamps and gen change only under it. Taken by the worker
     * thread that won the once-a-second check (next_check) and by exp_tls_create. */
    pthread_mutex_t load_mu;
    char *paths[NFILES]; /* NULL: not configured */
    file_stamp stamps[NFILES];
    uint64_t gen; /* exp_state_generation the paths come from */
    /* Monotonic ms of the next file check. Any worker thread may CAS it forward; the winner
     * checks. */
    _Atomic uint64_t next_check;

    /* Guards cur. Taken by any worker thread during a handshake (to take a reference) and by
     * the loader (to swap); held only for that. */
    pthread_mutex_t cur_mu;
    struct tls_keys *cur;
};

/* ---- key material ------------------------------------------------------------------------- */

/* Cannot fail. */
static void keys_free(struct tls_keys *k) {
    for (unsigned i = 0; i < k->npcert; i++)
        gnutls_pcert_deinit(&k->pcert[i]);
    if (k->key)
        gnutls_privkey_deinit(k->key);
    if (k->ca)
        gnutls_x509_trust_list_deinit(k->ca, 1);
    free(k);
}

/* Drop a reference; the last one frees. NULL is a no-op. Any thread. Cannot fail. */
void exp_tls_keys_release(struct tls_keys *k) {
    /* acq_rel: the release orders this holder's reads of k before the free; the acquire in
     * the last holder sees every other holder's release. */
    if (k && atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) == 1)
        keys_free(k);
}

/* 0 when the private key belongs to the leaf certificate (Go's tls.X509KeyPair checks the
 * same), -1 when not or it cannot be told. */
static int key_matches(gnutls_pcert_st *leaf, gnutls_privkey_t key) {
    gnutls_pubkey_t pub;
    if (gnutls_pubkey_init(&pub) < 0)
        return -1;
    unsigned char a[64], b[64];
    size_t alen = sizeof a, blen = sizeof b;
    int ok = gnutls_pubkey_import_privkey(pub, key, 0, 0) >= 0 &&
             gnutls_pubkey_get_key_id(pub, 0, a, &alen) >= 0 &&
             gnutls_pubkey_get_key_id(leaf->pubkey, 0, b, &blen) >= 0 &&
             exp_auth_equal(a, alen, b, blen);
    gnutls_pubkey_deinit(pub);
    return ok ? 0 : -1;
}

/* Load the certificate chain, key and CA named by paths. Returns a generation with one
 * reference, or NULL with a reason in err. */
static struct tls_keys *keys_load(char *const paths[NFILES], char *err, size_t errlen) {
    struct tls_keys *k = calloc(1, sizeof *k);
    gnutls_datum_t data[NFILES] = {{0}};
    const char *what = NULL;
    int rc = 0;
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&k->refs, 1);
    for (int i = 0; i < NFILES && !what; i++)
        if (paths[i] && (rc = gnutls_load_file(paths[i], &data[i])) < 0)
            what = paths[i];
    if (!what) {
        k->npcert = TLS_MAX_CHAIN;
        rc = gnutls_pcert_list_import_x509_raw(k->pcert, &k->npcert, &data[FILE_CERT],
                                               GNUTLS_X509_FMT_PEM, 0);
        if (rc < 0 || k->npcert == 0) {
            k->npcert = 0;
            what = paths[FILE_CERT];
        }
    }
    if (!what && ((rc = gnutls_privkey_init(&k->key)) < 0 ||
                  (rc = gnutls_privkey_import_x509_raw(k->key, &data[FILE_KEY], GNUTLS_X509_FMT_PEM,
                                                       NULL, 0)) < 0))
        what = paths[FILE_KEY];
    if (!what && key_matches(&k->pcert[0], k->key) < 0) {
        snprintf(err, errlen, "%s: the private key does not match the certificate %s",
                 paths[FILE_KEY], paths[FILE_CERT]);
        what = "";
    }
    if (!what && paths[FILE_CA] &&
        ((rc = gnutls_x509_trust_list_init(&k->ca, 0)) < 0 ||
         (rc = gnutls_x509_trust_list_add_trust_mem(k->ca, &data[FILE_CA], NULL,
                                                    GNUTLS_X509_FMT_PEM, 0, 0)) <= 0)) {
        what = paths[FILE_CA];
        if (rc == 0)
            rc = GNUTLS_E_NO_CERTIFICATE_FOUND;
    }
    for (int i = 0; i < NFILES; i++)
        gnutls_free(data[i].data);
    if (what) {
        if (*what)
            snprintf(err, errlen, "%s: %s", what, gnutls_strerror(rc));
        keys_free(k);
        return NULL;
    }
    return k;
}

/* ---- rotation ----------------------------------------------------------------------------- */

/* Cannot fail (a file that cannot be stat'ed has exists = 0). */
static file_stamp stamp_of(const char *path) {
    file_stamp s = {0};
    struct stat sb;
    if (path && stat(path, &sb) == 0) {
        s.dev = sb.st_dev;
        s.ino = sb.st_ino;
        s.size = sb.st_size;
        s.mtime = sb.st_mtim;
        s.exists = 1;
    }
    return s;
}

/* Cannot fail. */
static int same_stamp(const file_stamp *a, const file_stamp *b) {
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Take the paths of the current snapshot's web config when a reload happened since they were
 * read. 1 when a reload happened (the files are then read again even if unchanged). Under
 * load_mu. Cannot fail: without a usable web config the old paths stay. */
static int follow_reload(exp_tls *t) {
    if (!t->st)
        return 0;
    uint64_t gen = exp_state_generation(t->st);
    if (gen == t->gen)
        return 0;
    t->gen = gen;
    exp_config *c = exp_state_acquire(t->st);
    const cfg_web *w = c->web;
    if (w && w->tls) {
        const char *want[NFILES] = {w->cert_file, w->key_file, w->client_ca_file};
        for (int i = 0; i < NFILES; i++) {
            if (!cfg_setting_changed(want[i], t->paths[i]))
                continue;
            char *p = want[i] ? strdup(want[i]) : NULL;
            if (want[i] && !p)
                continue; /* out of memory: keep the old path */
            free(t->paths[i]);
            t->paths[i] = p;
        }
    } else {
        exp_log(EXP_LOG_WARN, "the reloaded web config turns TLS off; that needs a restart", NULL);
    }
    exp_config_release(c);
    return 1;
}

/* Read the files again when they changed on disk (or force), and swap the new material in.
 * A file that does not load keeps the old material: logged and counted; it is tried again
 * when a file changes once more. Under load_mu. Cannot fail. */
static void check_files(exp_tls *t, int force) {
    file_stamp now[NFILES];
    int changed = force;
    for (int i = 0; i < NFILES; i++) {
        now[i] = stamp_of(t->paths[i]);
        changed |= !same_stamp(&now[i], &t->stamps[i]);
    }
    if (!changed)
        return;
    memcpy(t->stamps, now, sizeof now);
    char err[512];
    struct tls_keys *k = keys_load(t->paths, err, sizeof err);
    exp_self_tls_reload(t->self, k != NULL);
    if (!k) {
        exp_log(EXP_LOG_ERROR, "cannot reload the TLS certificate; the old one keeps serving",
                "err", err, NULL);
        return;
    }
    pthread_mutex_lock(&t->cur_mu);
    struct tls_keys *old = t->cur;
    t->cur = k;
    pthread_mutex_unlock(&t->cur_mu);
    exp_tls_keys_release(old);
    exp_log(EXP_LOG_INFO, "TLS certificate loaded", "cert_file", t->paths[FILE_CERT], NULL);
}

/* At most once a second: follow a reload, check the files. Any worker thread. Cannot fail. */
static void maybe_check(exp_tls *t) {
    uint64_t now = now_ms();
    /* relaxed: next_check only spaces the checks out; load_mu orders what they touch. */
    uint64_t next = atomic_load_explicit(&t->next_check, memory_order_relaxed);
    if (now < next ||
        !atomic_compare_exchange_strong_explicit(&t->next_check, &next, now + TLS_CHECK_EVERY_MS,
                                                 memory_order_relaxed, memory_order_relaxed))
        return;
    pthread_mutex_lock(&t->load_mu);
    check_files(t, follow_reload(t));
    pthread_mutex_unlock(&t->load_mu);
}

/* The current generation with a reference for the caller. Never NULL once created. */
static struct tls_keys *keys_current(exp_tls *t) {
    pthread_mutex_lock(&t->cur_mu);
    struct tls_keys *k = t->cur;
    /* relaxed: cur_mu orders it against the swap; the release in exp_tls_keys_release. */
    atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&t->cur_mu);
    return k;
}

/* ---- handshake -------------------------------------------------------------------------- */

/* The connection entry of a GnuTLS session MHD created (MHD sets the session's pointer to its
 * connection; the entry is the connection's socket context), or NULL. Cannot fail. */
static conn_ent *entry_of(gnutls_session_t s) {
    struct MHD_Connection *c = gnutls_session_get_ptr(s);
    const union MHD_ConnectionInfo *ci =
        c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    return ci ? ci->socket_context : NULL;
}

/* gnutls_certificate_retrieve_function2 (MHD_OPTION_HTTPS_CERT_CALLBACK): the server's
 * certificate for a handshake. Called by the connection's worker thread. -1 (the handshake
 * fails) for an untracked connection. */
int exp_tls_cert_callback(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int nreqs,
                          const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                          gnutls_pcert_st **pcert, unsigned *pcert_length, gnutls_privkey_t *key) {
    (void)req_ca_dn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    conn_ent *e = entry_of(s);
    if (!e || !e->tls)
        return -1;
    maybe_check(e->tls);
    struct tls_keys *k = keys_current(e->tls);
    /* Only this connection's worker thread touches e->keys. */
    exp_tls_keys_release(e->keys);
    e->keys = k;
    *pcert = k->pcert;
    *pcert_length = k->npcert;
    *key = k->key;
    return 0;
}

/* 1 when one of the leaf's subject alternative names (DNS, e-mail, IP, URI) is allowed, as
 * the toolkit's client_allowed_sans check. Cannot fail. */
static int san_allowed(const exp_tls *t, gnutls_x509_crt_t leaf) {
    for (unsigned seq = 0;; seq++) {
        char buf[1024];
        size_t len = sizeof buf - 1;
        int type = gnutls_x509_crt_get_subject_alt_name(leaf, seq, buf, &len, NULL);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            return 0;
        if (type < 0)
            continue; /* too long or unreadable: no allowed name is that */
        char ip[INET6_ADDRSTRLEN];
        const char *name = buf;
        buf[len] = '\0';
        if (type == GNUTLS_SAN_IPADDRESS) {
            int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
            if (!af || !inet_ntop(af, buf, ip, sizeof ip))
                continue;
            name = ip;
        } else if (type != GNUTLS_SAN_DNSNAME && type != GNUTLS_SAN_RFC822NAME &&
                   type != GNUTLS_SAN_URI) {
            continue;
        }
        for (size_t i = 0; i < t->nsans; i++)
            if (!strcmp(t->sans[i], name))
                return 1;
    }
}

/* 0 when the client's chain verifies against the CA for client authentication. -1 when not,
 * or it cannot be read. */
static int verify_chain(const struct tls_keys *k, const gnutls_datum_t *raw, unsigned n) {
    if (!k->ca)
        return -1;
    gnutls_x509_crt_t crts[TLS_MAX_CHAIN];
    unsigned m = 0;
    int ok = 1;
    for (; m < n && m < TLS_MAX_CHAIN && ok; m++)
        ok = gnutls_x509_crt_init(&crts[m]) >= 0 &&
             gnutls_x509_crt_import(crts[m], &raw[m], GNUTLS_X509_FMT_DER) >= 0;
    unsigned status = 1;
    gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                     .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT};
    if (ok && gnutls_x509_trust_list_verify_crt2(k->ca, crts, m, &purpose, 1, 0, &status, NULL) < 0)
        status = 1;
    for (unsigned i = 0; i < m; i++)
        gnutls_x509_crt_deinit(crts[i]);
    return ok && status == 0 ? 0 : -1;
}

/* gnutls_certificate_verify_function, per session: the client's certificate as Go's
 * crypto/tls and the toolkit judge it. Non-zero fails the handshake. Called by the
 * connection's worker thread. */
static int verify_client(gnutls_session_t s) {
    conn_ent *e = entry_of(s);
    if (!e || !e->tls || !e->keys)
        return -1;
    const exp_tls *t = e->tls;
    unsigned n = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(s, &n);
    if (!raw || n == 0) /* none given: GnuTLS itself refuses it when one is required */
        return t->client_auth == CFG_CLIENT_AUTH_REQUIRE_ANY ||
                       t->client_auth == CFG_CLIENT_AUTH_REQUIRE_AND_VERIFY
                   ? -1
                   : 0;
    if ((t->client_auth == CFG_CLIENT_AUTH_VERIFY_IF_GIVEN ||
         t->client_auth == CFG_CLIENT_AUTH_REQUIRE_AND_VERIFY) &&
        verify_chain(e->keys, raw, n) < 0)
        return -1;
    if (t->nsans) {
        gnutls_x509_crt_t leaf;
        if (gnutls_x509_crt_init(&leaf) < 0)
            return -1;
        int ok =
            gnutls_x509_crt_import(leaf, &raw[0], GNUTLS_X509_FMT_DER) >= 0 && san_allowed(t, leaf);
        gnutls_x509_crt_deinit(leaf);
        if (!ok)
            return -1;
    }
    return 0;
}

/* Cannot fail (a connection without a GnuTLS session is left alone). */
void exp_tls_on_started(exp_tls *t, struct MHD_Connection *c, conn_ent *e) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    e->tls = t;
    if (!ci || !ci->tls_session || t->client_auth == CFG_CLIENT_AUTH_NONE)
        return;
    gnutls_session_t s = ci->tls_session;
    int require = t->client_auth == CFG_CLIENT_AUTH_REQUIRE_ANY ||
                  t->client_auth == CFG_CLIENT_AUTH_REQUIRE_AND_VERIFY;
    gnutls_certificate_server_set_request(s, require ? GNUTLS_CERT_REQUIRE : GNUTLS_CERT_REQUEST);
    gnutls_session_set_verify_function(s, verify_client);
}

/* Cannot fail. */
void exp_tls_on_closed(conn_ent *e) {
    exp_tls_keys_release(e->keys);
    e->keys = NULL;
}

/* ---- priorities --------------------------------------------------------------------------- */

/* Go's TLS 1.0-1.2 cipher suite names as GnuTLS key exchange, cipher and MAC. */
static const struct {
    const char *go, *kx, *cipher, *mac;
} suites[] = {
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "RSA", "3DES-CBC", "SHA1"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "RSA", "AES-128-CBC", "SHA1"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "RSA", "AES-256-CBC", "SHA1"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "RSA", "AES-128-CBC", "SHA256"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "RSA", "AES-128-GCM", "AEAD"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "RSA", "AES-256-GCM", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA", "AES-128-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA", "AES-256-CBC", "SHA1"},
    {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA", "3DES-CBC", "SHA1"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA", "AES-128-CBC", "SHA1"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA", "AES-256-CBC", "SHA1"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA", "AES-128-CBC", "SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA", "AES-128-CBC", "SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA", "AES-128-GCM", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA", "AES-128-GCM", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA", "AES-256-GCM", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA", "AES-256-GCM", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA", "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA", "CHACHA20-POLY1305", "AEAD"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA", "CHACHA20-POLY1305", "AEAD"},
};

/* Go's curve names as GnuTLS groups. */
static const struct {
    const char *go, *group;
} curves[] = {{"CurveP256", "SECP256R1"},
              {"CurveP384", "SECP384R1"},
              {"CurveP521", "SECP521R1"},
              {"X25519", "X25519"}};

/* Append "+<kind><name>" to the priority string unless it is there already. Cannot fail. */
static void add_item(FILE *f, char **buf, const char *kind, const char *name) {
    char item[64];
    snprintf(item, sizeof item, ":+%s%s", kind, name);
    fflush(f);
    size_t n = strlen(item);
    for (const char *p = *buf; p && (p = strstr(p, item)); p += n)
        if (p[n] == ':' || p[n] == '\0')
            return;
    fputs(item, f);
}

/* The GnuTLS priority string of a web config: versions min..max (max 0: TLS 1.3), Go's cipher
 * suites (TLS 1.2 and below; TLS 1.3's are fixed, as in Go) and curves, and the server's
 * preference. NULL with a reason in err: an unknown name, or out of memory. */
char *exp_tls_priorities(const cfg_web *w, char *err, size_t errlen) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    unsigned lo = w->min_version ? w->min_version : CFG_TLS12;
    unsigned hi = w->max_version ? w->max_version : CFG_TLS13;
    fputs("NORMAL", f);
    if (w->prefer_server_cipher_suites)
        fputs(":%SERVER_PRECEDENCE", f);
    fputs(":-VERS-ALL", f);
    for (unsigned v = hi; v >= lo && v >= CFG_TLS10; v--)
        fprintf(f, ":+VERS-TLS1.%u", v - CFG_TLS10);
    const char *bad = NULL;
    if (w->ncipher_suites) {
        fputs(":-CIPHER-ALL:-KX-ALL:-MAC-ALL", f);
        for (size_t i = 0; i < w->ncipher_suites && !bad; i++) {
            size_t j = 0;
            while (j < sizeof suites / sizeof suites[0] &&
                   strcmp(suites[j].go, w->cipher_suites[i]))
                j++;
            if (j == sizeof suites / sizeof suites[0]) {
                if (strncmp(w->cipher_suites[i], "TLS_AES_", 8) &&
                    strncmp(w->cipher_suites[i], "TLS_CHACHA20_", 13))
                    bad = w->cipher_suites[i];
                continue; /* a TLS 1.3 suite: Go ignores it too */
            }
            add_item(f, &buf, "", suites[j].cipher);
            add_item(f, &buf, "", suites[j].kx);
            add_item(f, &buf, "", suites[j].mac);
        }
        if (hi >= CFG_TLS13) { /* TLS 1.3's own suites stay, as in Go */
            add_item(f, &buf, "", "AES-128-GCM");
            add_item(f, &buf, "", "AES-256-GCM");
            add_item(f, &buf, "", "CHACHA20-POLY1305");
            add_item(f, &buf, "", "AEAD");
        }
    }
    if (w->ncurves && !bad) {
        fputs(":-GROUP-ALL", f);
        for (size_t i = 0; i < w->ncurves && !bad; i++) {
            size_t j = 0;
            while (j < sizeof curves / sizeof curves[0] && strcmp(curves[j].go, w->curves[i]))
                j++;
            if (j == sizeof curves / sizeof curves[0])
                bad = w->curves[i];
            else
                add_item(f, &buf, "GROUP-", curves[j].group);
        }
    }
    int ferr = ferror(f);
    fclose(f);
    if (bad || ferr) {
        snprintf(err, errlen, bad ? "unknown cipher suite or curve %s" : "out of memory", bad);
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- start / stop ------------------------------------------------------------------------- */

/* NULL with a reason in err: a file that does not load, a bad priority string, out of
 * memory. */
exp_tls *exp_tls_create(const cfg_web *w, exp_state *st, exp_self *self, char *err, size_t errlen) {
    exp_tls *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->st = st;
    t->self = self;
    t->gen = st ? exp_state_generation(st) : 0;
    t->client_auth = w->client_auth;
    pthread_mutex_init(&t->load_mu, NULL);
    pthread_mutex_init(&t->cur_mu, NULL);
    const char *src[NFILES] = {w->cert_file, w->key_file, w->client_ca_file};
    int nomem = !(t->sans = calloc(w->nallowed_sans + 1, sizeof *t->sans));
    for (int i = 0; i < NFILES && !nomem; i++)
        nomem = src[i] && !(t->paths[i] = strdup(src[i]));
    for (size_t i = 0; i < w->nallowed_sans && !nomem; i++, t->nsans++)
        nomem = !(t->sans[i] = strdup(w->allowed_sans[i]));
    if (nomem) {
        snprintf(err, errlen, "out of memory");
        exp_tls_destroy(t);
        return NULL;
    }
    gnutls_priority_t probe;
    const char *where = NULL;
    if (!(t->priorities = exp_tls_priorities(w, err, errlen)) ||
        gnutls_priority_init(&probe, t->priorities, &where) < 0) {
        if (t->priorities)
            snprintf(err, errlen, "GnuTLS refuses the priority string %s at %s", t->priorities,
                     where ? where : "?");
        exp_tls_destroy(t);
        return NULL;
    }
    gnutls_priority_deinit(probe);
    for (int i = 0; i < NFILES; i++)
        t->stamps[i] = stamp_of(t->paths[i]);
    if (!(t->cur = keys_load(t->paths, err, errlen))) {
        exp_tls_destroy(t);
        return NULL;
    }
    atomic_init(&t->next_check, now_ms() + TLS_CHECK_EVERY_MS);
    return t;
}

/* See http.h. */
int exp_http_check_tls(const exp_config *c, char *err, size_t errlen) {
    if (!c->web || !c->web->tls)
        return 0;
    exp_tls *t = exp_tls_create(c->web, NULL, NULL, err, errlen);
    exp_tls_destroy(t);
    return t ? 0 : -1;
}

/* Cannot fail. */
const char *exp_tls_priority_string(const exp_tls *t) {
    return t->priorities;
}

/* The toolkit's name of a client_auth_type. Cannot fail. */
const char *exp_tls_client_auth_name(cfg_client_auth a) {
    static const char *const names[] = {"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                                        "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"};
    return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "?";
}

/* Cannot fail. After the daemon stopped: no handshake runs any more. */
void exp_tls_destroy(exp_tls *t) {
    if (!t)
        return;
    exp_tls_keys_release(t->cur);
    for (int i = 0; i < NFILES; i++)
        free(t->paths[i]);
    for (size_t i = 0; t->sans && i < t->nsans; i++) /* nsans counts what sans holds */
        free(t->sans[i]);
    free(t->sans);
    free(t->priorities);
    pthread_mutex_destroy(&t->load_mu);
    pthread_mutex_destroy(&t->cur_mu);
    free(t);
}
