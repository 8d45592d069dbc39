/* negotiate.c - HTTP content negotiation for scrapes: the exposition format from Accept (with
 * q-values and OpenMetrics versions) and gzip from Accept-Encoding, as client_golang's promhttp
 * decides them.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/negotiate.h"

/* One element of a comma-separated header list: its token and parameters. */
typedef struct {
    const char *tok;
    size_t toklen;
    double q;    /* 1 when absent; -1 when malformed (the element is ignored) */
    int has_ver; /* a version parameter was present */
    char ver[16];
} hdr_elem;

static int is_ows(char c) {
    return c == ' ' || c == '\t';
}

/* RFC 9110 qvalue: 0[.ddd] or 1[.000]. Returns -1 when malformed. */
static double parse_q(const char *v, size_t n) {
    if (n == 0 || n > 5 || (v[0] != '0' && v[0] != '1'))
        return -1;
    double q = v[0] - '0', scale = 0.1;
    if (n > 1) {
        if (v[1] != '.')
            return -1;
        for (size_t i = 2; i < n; i++) {
            if (v[i] < '0' || v[i] > '9')
                return -1;
            q += (v[i] - '0') * scale;
            scale /= 10;
        }
    }
    return q > 1 ? -1 : q;
}

/* The end of [s, e) without trailing optional white space. Cannot fail. */
static const char *trim_end(const char *s, const char *e) {
    while (e > s && is_ows(e[-1]))
        e--;
    return e;
}

/* A parameter's value at *pp (after '='): a quoted-string (which may hold ',' and ';') or a
 * token, copied into val[cap] (NUL-terminated, cut when longer: *too_long set). Leaves *pp at
 * the next ';' or ',' (or end). Returns the copied length. */
static size_t read_value(const char **pp, const char *end, char *val, size_t cap, int *too_long) {
    const char *p = *pp;
    size_t vl = 0;
    while (p < end && is_ows(*p))
        p++;
    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\' && p + 1 < end)
                p++;
            if (vl < cap - 1)
                val[vl++] = *p;
            else
                *too_long = 1;
        }
        if (p < end)
            p++;
    } else {
        const char *vs = p;
        while (p < end && *p != ';' && *p != ',')
            p++;
        vl = (size_t)(trim_end(vs, p) - vs);
        if (vl > cap - 1) {
            vl = cap - 1;
            *too_long = 1;
        }
        memcpy(val, vs, vl);
    }
    while (p < end && *p != ';' && *p != ',') /* junk after a quoted value */
        p++;
    val[vl] = '\0';
    *pp = p;
    return vl;
}

/* Record the parameters abacus reads (q, version) of one element. Cannot fail. */
static void apply_param(hdr_elem *el, const char *k, size_t kl, const char *val, size_t vl,
                        int too_long) {
    if (kl == 1 && (*k == 'q' || *k == 'Q')) {
        el->q = too_long ? -1 : parse_q(val, vl);
    } else if (kl == 7 && strncasecmp(k, "version", 7) == 0) {
        el->has_ver = 1;
        if (too_long)
            memcpy(el->ver, "?", 2);
        else
            memcpy(el->ver, val, vl + 1);
    }
}

/* Parse the element starting at *pp (up to end or an unquoted ','), leave *pp after it.
 * Returns 0 for an empty element. */
static int next_elem(const char **pp, const char *end, hdr_elem *el) {
    const char *p = *pp;
    while (p < end && (is_ows(*p) || *p == ','))
        p++;
    if (p >= end) {
        *pp = p;
        return 0;
    }
    el->tok = p;
    while (p < end && *p != ';' && *p != ',')
        p++;
    el->toklen = (size_t)(trim_end(el->tok, p) - el->tok);
    el->q = 1;
    el->has_ver = 0;
    el->ver[0] = '\0';
    while (p < end && *p == ';') {
        for (p++; p < end && is_ows(*p); p++)
            ;
        const char *k = p;
        while (p < end && *p != '=' && *p != ';' && *p != ',')
            p++;
        size_t kl = (size_t)(trim_end(k, p) - k);
        char val[16] = "";
        size_t vl = 0;
        int too_long = 0;
        if (p < end && *p == '=') {
            p++;
            vl = read_value(&p, end, val, sizeof val, &too_long);
        }
        apply_param(el, k, kl, val, vl, too_long);
    }
    *pp = p;
    return 1;
}

static int tok_is(const hdr_elem *el, const char *s) {
    size_t n = strlen(s);
    return el->toklen == n && strncasecmp(el->tok, s, n) == 0;
}

exp_format exp_negotiate(const char *accept) {
    if (accept == NULL)
        return EXP_FMT_TEXT;
    const char *p = accept, *end = accept + strlen(accept);
    double best_om = 0, best_text = 0;
    hdr_elem el;
    while (next_elem(&p, end, &el)) {
        if (el.q < 0)
            continue;
        if (tok_is(&el, "application/openmetrics-text")) {
            /* 0.0.1 is the pre-1.0 name of the same format; Prometheus still asks for it. */
            if (!el.has_ver || strcmp(el.ver, "1.0.0") == 0 || strcmp(el.ver, "0.0.1") == 0) {
                if (el.q > best_om)
                    best_om = el.q;
            }
        } else if (tok_is(&el, "text/plain")) {
            if (el.q > best_text)
                best_text = el.q;
        }
    }
    return best_om > 0 && best_om >= best_text ? EXP_FMT_OPENMETRICS : EXP_FMT_TEXT;
}

const char *exp_content_type(exp_format fmt) {
    return fmt == EXP_FMT_OPENMETRICS ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                      : "text/plain; version=0.0.4; charset=utf-8";
}

int exp_accepts_gzip(const char *accept_encoding) {
    if (accept_encoding == NULL)
        return 0;
    const char *p = accept_encoding, *end = p + strlen(p);
    double gz = -1, star = -1; /* -1: not mentioned */
    hdr_elem el;
    while (next_elem(&p, end, &el)) {
        if (el.q < 0)
            continue;
        if (tok_is(&el, "gzip") || tok_is(&el, "x-gzip")) {
            if (el.q > gz)
                gz = el.q;
        } else if (tok_is(&el, "*")) {
            if (el.q > star)
                star = el.q;
        }
    }
    return gz >= 0 ? gz > 0 : star > 0;
}
