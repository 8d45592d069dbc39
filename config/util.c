/* util.c - small validators shared by the loader and its callers: Prometheus metric and label
 * names, and durations.
 */
#include <stdint.h>
#include <string.h>

#include "config.h"

static int is_alpha_(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

/* 1 when s matches [a-zA-Z_:][a-zA-Z0-9_:]*. Cannot fail (NULL is invalid). */
int cfg_valid_metric_name(const char *s) {
    if (!s || !*s)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (!(is_alpha_(*p) || *p == ':' || (p != (const unsigned char *)s && is_digit(*p))))
            return 0;
    }
    return 1;
}

/* 1 when s matches [a-zA-Z_][a-zA-Z0-9_]*. Reserved names (`__` prefix) are valid here; the
 * loader rejects them separately with its own message. Cannot fail (NULL is invalid). */
int cfg_valid_label_name(const char *s) {
    if (!s || !*s)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (!(is_alpha_(*p) || (p != (const unsigned char *)s && is_digit(*p))))
            return 0;
    }
    return 1;
}

/* Nanoseconds per unit. Prometheus units (ms s m h d w y, no fractions there) plus Go's ns, us,
 * µs and decimal fractions, so that statsd_exporter's time.Duration values parse too. */
static int unit_ns(const char *s, size_t *ulen, uint64_t *ns) {
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1ULL},
        {"us", 1000ULL},
        {"\xc2\xb5s", 1000ULL}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000ULL}, /* U+03BC greek mu */
        {"ms", 1000000ULL},
        {"s", 1000000000ULL},
        {"m", 60ULL * 1000000000ULL},
        {"h", 3600ULL * 1000000000ULL},
        {"d", 86400ULL * 1000000000ULL},
        {"w", 7ULL * 86400ULL * 1000000000ULL},
        {"y", 365ULL * 86400ULL * 1000000000ULL},
    };
    /* Longest match first: "ms" must win over "m". */
    size_t best = 0;
    uint64_t best_ns = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t n = strlen(units[i].name);
        if (n > best && strncmp(s, units[i].name, n) == 0) {
            best = n;
            best_ns = units[i].ns;
        }
    }
    if (!best)
        return -1;
    *ulen = best;
    *ns = best_ns;
    return 0;
}

/* Parse "30s", "1h30m", "500ms", "1.5h", "0s", "0", "1d", "1w". Returns 0 and sets *ns, or -1 when
 * s is empty, signed, lacks a unit (except the bare "0"), has an unknown unit, or overflows. */
int cfg_parse_duration(const char *s, uint64_t *ns) {
    if (!s || !*s)
        return -1;
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    uint64_t total = 0;
    const char *p = s;
    while (*p) {
        uint64_t whole = 0;
        int digits = 0;
        while (is_digit((unsigned char)*p)) {
            if (whole > (UINT64_MAX - 9) / 10)
                return -1;
            whole = whole * 10 + (uint64_t)(*p - '0');
            p++;
            digits++;
        }
        /* Fraction: up to 18 digits kept, the rest must still be digits. */
        uint64_t frac = 0, scale = 1;
        if (*p == '.') {
            p++;
            while (is_digit((unsigned char)*p)) {
                if (scale < 1000000000000000000ULL) {
                    frac = frac * 10 + (uint64_t)(*p - '0');
                    scale *= 10;
                }
                p++;
                digits++;
            }
        }
        if (!digits)
            return -1;
        size_t ulen;
        uint64_t per;
        if (unit_ns(p, &ulen, &per) != 0)
            return -1;
        p += ulen;
        if (whole && per > UINT64_MAX / whole)
            return -1;
        uint64_t v = whole * per;
        /* frac/scale * per without overflow: per <= 3.2e16 and frac < scale <= 1e18. */
        long double f = (long double)frac / (long double)scale * (long double)per;
        if ((long double)(UINT64_MAX - v) < f)
            return -1;
        v += (uint64_t)f;
        if (UINT64_MAX - total < v)
            return -1;
        total += v;
    }
    *ns = total;
    return 0;
}
