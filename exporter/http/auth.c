/* auth.c - HTTP basic auth as the Prometheus exporter toolkit does it (basic_auth_users of the
 * web config file): the Authorization header read like Go's Request.BasicAuth, bcrypt through
 * the system's libcrypt, outcomes cached under a hash of user, stored hash and password (so a
 * scrape every few seconds costs no bcrypt run), and a bound on concurrent bcrypt runs (so
 * failed attempts cannot take every core).
 */
#include <crypt.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http/internal.h"

/* The toolkit keeps 100 outcomes. */
#define AUTH_CACHE_SLOTS 100
/* How long a request waits for a bcrypt slot before it gets 503 (the toolkit waits on one
 * mutex without a limit; a bounded wait keeps a flood of wrong passwords from holding the
 * server's worker threads for ever). */
#define AUTH_WAIT_MS 2000

/* An unknown user is checked against this hash (cost 10, of a password nobody knows), so it
 * takes as long as a known one: the answer's timing does not tell which user names exist. */
static const char dummy_hash[] = "$2b$10$FVsh.pUlIbuGKUaAmVG72.gNhPMLPdrnvffX0TxHl.a9FIIf25LOG";

typedef struct {
    unsigned char key[32]; /* SHA-256 of user, stored hash and password */
    int used, ok;
} cache_slot;

struct exp_auth {
    /* Guards the cache and its counters. Taken by any worker thread, briefly, never while
     * running bcrypt. */
    pthread_mutex_t cache_mu;
    cache_slot slots[AUTH_CACHE_SLOTS];
    unsigned next; /* the slot the next new outcome replaces (round robin) */
    uint64_t hits, misses;
    /* The bcrypt bound: verifying counts runs in progress, at most max_verifying. Any worker
     * thread waits on slot_cv for a free run. */
    pthread_mutex_t slot_mu;
    pthread_cond_t slot_cv;
    unsigned verifying, max_verifying;
    unsigned wait_ms;
};

/* Cannot fail. */
int exp_auth_equal(const void *a, size_t alen, const void *b, size_t blen) {
    const unsigned char *x = a, *y = b;
    /* Every byte of the longer side is read whatever the contents, so the time depends on
     * the lengths only; a shorter side is read as zeros past its end. */
    size_t n = alen > blen ? alen : blen;
    unsigned diff = (unsigned)(alen != blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char cx = i < alen ? x[i] : 0, cy = i < blen ? y[i] : 0;
        diff |= (unsigned)(cx ^ cy);
    }
    return diff == 0;
}

/* The value of one base64 character (standard alphabet), or -1. Cannot fail. */
static int b64_value(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Decode standard base64 with padding, as Go's base64.StdEncoding does: CR and LF are skipped,
 * the length must be a multiple of 4, '=' only at the end. Returns the decoded length, or -1
 * when malformed. out has room for strlen(in) bytes. */
static long b64_decode(const char *in, unsigned char *out) {
    unsigned quad[4];
    size_t nq = 0, n = 0;
    int pad = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (*p == '\r' || *p == '\n')
            continue;
        if (pad && *p != '=')
            return -1; /* data after padding */
        int v;
        if (*p == '=') {
            if (nq < 2)
                return -1;
            pad++;
            v = 0;
        } else if ((v = b64_value(*p)) < 0) {
            return -1;
        }
        quad[nq++] = (unsigned)v;
        if (nq == 4) {
            unsigned w = quad[0] << 18 | quad[1] << 12 | quad[2] << 6 | quad[3];
            out[n++] = (unsigned char)(w >> 16);
            if (pad < 2)
                out[n++] = (unsigned char)(w >> 8);
            if (pad < 1)
                out[n++] = (unsigned char)w;
            nq = 0;
            if (pad)
                pad = 3; /* no more quads may follow */
        }
    }
    return nq == 0 ? (long)n : -1;
}

/* Returns 0 with the parts set, -1 when the header is not Basic credentials, -2 when out of
 * memory. */
int exp_auth_parse_basic(const char *header, exp_auth_creds *out) {
    static const char prefix[] = "Basic ";
    memset(out, 0, sizeof *out);
    if (!header || strncasecmp(header, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *b64 = header + sizeof prefix - 1;
    unsigned char *buf = malloc(strlen(b64) + 1);
    if (!buf)
        return -2;
    long n = b64_decode(b64, buf);
    unsigned char *colon = n > 0 ? memchr(buf, ':', (size_t)n) : NULL;
    if (!colon) {
        free(buf);
        return -1;
    }
    out->buf = buf;
    out->user = (const char *)buf;
    out->user_len = (size_t)(colon - buf);
    out->pass = (const char *)colon + 1;
    out->pass_len = (size_t)n - out->user_len - 1;
    return 0;
}

/* Cannot fail. */
void exp_auth_creds_free(exp_auth_creds *c) {
    free(c->buf);
    memset(c, 0, sizeof *c);
}

/* Cannot fail. */
const char *exp_auth_reason(exp_auth_result r) {
    switch (r) {
    case AUTH_OK:
        return "ok";
    case AUTH_MISSING:
        return "missing";
    case AUTH_MALFORMED:
        return "malformed";
    case AUTH_UNKNOWN_USER:
        return "unknown_user";
    case AUTH_WRONG_PASSWORD:
        return "wrong_password";
    case AUTH_BUSY:
        return "busy";
    default:
        return "error";
    }
}

/* NULL on allocation failure. */
exp_auth *exp_auth_create(unsigned max_verifying, unsigned wait_ms) {
    exp_auth *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    if (!max_verifying) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        /* Half the cores: 1 on the 2-core machines abacus usually shares with its pod. */
        max_verifying = cpus > 2 ? (unsigned)(cpus / 2) : 1;
    }
    a->max_verifying = max_verifying;
    a->wait_ms = wait_ms ? wait_ms : AUTH_WAIT_MS;
    pthread_mutex_init(&a->cache_mu, NULL);
    pthread_mutex_init(&a->slot_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->slot_cv, &ca);
    pthread_condattr_destroy(&ca);
    return a;
}

/* Cannot fail. */
void exp_auth_destroy(exp_auth *a) {
    if (!a)
        return;
    pthread_mutex_destroy(&a->cache_mu);
    pthread_mutex_destroy(&a->slot_mu);
    pthread_cond_destroy(&a->slot_cv);
    free(a);
}

/* Cannot fail. */
void exp_auth_cache_stats(exp_auth *a, uint64_t *hits, uint64_t *misses) {
    pthread_mutex_lock(&a->cache_mu);
    *hits = a->hits;
    *misses = a->misses;
    pthread_mutex_unlock(&a->cache_mu);
}

/* The cache key: SHA-256 over each part with its length in front (no two different triples
 * give the same input). -1 when GnuTLS cannot hash. */
static int cache_key(const exp_auth_creds *c, const char *hash, unsigned char key[32]) {
    gnutls_hash_hd_t hd;
    if (gnutls_hash_init(&hd, GNUTLS_DIG_SHA256) < 0)
        return -1;
    const void *parts[3] = {c->user, hash, c->pass};
    size_t lens[3] = {c->user_len, strlen(hash), c->pass_len};
    for (int i = 0; i < 3; i++) {
        uint64_t n = lens[i];
        gnutls_hash(hd, &n, sizeof n);
        gnutls_hash(hd, parts[i], lens[i]);
    }
    gnutls_hash_deinit(hd, key);
    return 0;
}

/* 1 and *ok when the key is cached, else 0. Cannot fail. */
static int cache_get(exp_auth *a, const unsigned char key[32], int *ok) {
    int found = 0;
    pthread_mutex_lock(&a->cache_mu);
    for (unsigned i = 0; i < AUTH_CACHE_SLOTS; i++) {
        /* Every slot is compared whole: which one matched does not show in the time. */
        int same = a->slots[i].used && exp_auth_equal(a->slots[i].key, 32, key, 32);
        if (same) {
            found = 1;
            *ok = a->slots[i].ok;
        }
    }
    if (found)
        a->hits++;
    else
        a->misses++;
    pthread_mutex_unlock(&a->cache_mu);
    return found;
}

/* Cannot fail. */
static void cache_put(exp_auth *a, const unsigned char key[32], int ok) {
    pthread_mutex_lock(&a->cache_mu);
    cache_slot *s = &a->slots[a->next];
    a->next = (a->next + 1) % AUTH_CACHE_SLOTS;
    memcpy(s->key, key, 32);
    s->used = 1;
    s->ok = ok;
    pthread_mutex_unlock(&a->cache_mu);
}

/* Take a bcrypt run, waiting up to wait_ms for one. 0, or -1 when none became free. */
static int slot_take(exp_auth *a) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += a->wait_ms / 1000u;
    until.tv_nsec += (long)(a->wait_ms % 1000u) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    pthread_mutex_lock(&a->slot_mu);
    while (a->verifying >= a->max_verifying && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&a->slot_cv, &a->slot_mu, &until);
    int got = a->verifying < a->max_verifying;
    if (got)
        a->verifying++;
    pthread_mutex_unlock(&a->slot_mu);
    return got ? 0 : -1;
}

/* Cannot fail. */
static void slot_give(exp_auth *a) {
    pthread_mutex_lock(&a->slot_mu);
    a->verifying--;
    pthread_cond_signal(&a->slot_cv);
    pthread_mutex_unlock(&a->slot_mu);
}

/* 1 when pass matches the bcrypt hash, 0 when not (or libcrypt cannot run it). */
static int bcrypt_matches(const char *pass, size_t pass_len, const char *hash) {
    struct crypt_data *cd = calloc(1, sizeof *cd); /* ~32 KiB: not on a worker's stack */
    char *phrase = malloc(pass_len + 1);
    int ok = 0;
    if (cd && phrase) {
        memcpy(phrase, pass, pass_len);
        phrase[pass_len] = '\0';
        const char *out = crypt_rn(phrase, hash, cd, (int)sizeof *cd);
        /* A password holding a NUL byte is cut short by crypt: it never matches. */
        ok = out && exp_auth_equal(out, strlen(out), hash, strlen(hash)) &&
             !memchr(pass, '\0', pass_len);
        explicit_bzero(phrase, pass_len);
    }
    free(phrase);
    free(cd);
    return ok;
}

/* The stored hash of a user, or NULL. Every name is compared whole. Cannot fail. */
static const char *find_user(const cfg_web *w, const exp_auth_creds *c) {
    const char *hash = NULL;
    for (size_t i = 0; i < w->nusers; i++)
        if (exp_auth_equal(w->users[i], strlen(w->users[i]), c->user, c->user_len))
            hash = w->hashes[i];
    return hash;
}

/* The outcome for one request's Authorization header (NULL when absent). AUTH_BUSY when no
 * bcrypt run became free in time, AUTH_NOMEM when out of memory. Any thread. */
exp_auth_result exp_auth_check(exp_auth *a, const cfg_web *w, const char *authorization) {
    if (!authorization)
        return AUTH_MISSING;
    exp_auth_creds c;
    int rc = exp_auth_parse_basic(authorization, &c);
    if (rc == -2)
        return AUTH_NOMEM;
    if (rc < 0)
        return AUTH_MALFORMED;
    const char *hash = find_user(w, &c);
    int known = hash != NULL;
    if (!known)
        hash = dummy_hash;
    unsigned char key[32];
    int ok = 0;
    exp_auth_result res;
    if (cache_key(&c, hash, key) < 0) {
        res = AUTH_NOMEM;
    } else if (cache_get(a, key, &ok)) {
        res = ok ? AUTH_OK : known ? AUTH_WRONG_PASSWORD : AUTH_UNKNOWN_USER;
    } else if (slot_take(a) < 0) {
        res = AUTH_BUSY;
    } else {
        ok = bcrypt_matches(c.pass, c.pass_len, hash) && known;
        slot_give(a);
        cache_put(a, key, ok);
        res = ok ? AUTH_OK : known ? AUTH_WRONG_PASSWORD : AUTH_UNKNOWN_USER;
    }
    explicit_bzero(c.buf, c.user_len + 1 + c.pass_len);
    exp_auth_creds_free(&c);
    return res;
}
