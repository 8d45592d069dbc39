/* util.c - small parsers and validators of config values, shared by the loader, the mapper
 * and the exporter's flags: durations, listen addresses, statsd_exporter globs. (Metric and
 * label name rules are the registry's: reg_valid_metric_name and friends.)
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "internal.h"

static int is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
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

/* ---- listen addresses ---------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int addr_fail(char *err, size_t errlen,
                                                           const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The port after the last ':': 1 to 5 digits, at most 65535. 0, or -1 with a reason. */
static int parse_port(const char *p, unsigned *port, char *err, size_t errlen) {
    size_t n = strlen(p);
    if (n == 0)
        return addr_fail(err, errlen, "missing port");
    if (n > 5 || strspn(p, "0123456789") != n)
        return addr_fail(err, errlen, "invalid port \"%.16s\"", p);
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned long)(p[i] - '0');
    if (v > 65535)
        return addr_fail(err, errlen, "port %lu out of range", v);
    *port = (unsigned)v;
    return 0;
}

/* A host name or IPv4 address: no ':' (IPv6 needs brackets), no space or control character,
 * none of "[]/" (they would be read as another form or a path). 0, or -1 with a reason. */
static int check_plain_host(const char *h, size_t n, char *err, size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (ch == ':')
            return addr_fail(err, errlen, "IPv6 addresses need brackets: [addr]:port");
        if (ch <= ' ' || ch == 0x7f)
            return addr_fail(err, errlen, "host contains a space or control character");
        if (ch == '[' || ch == ']' || ch == '/')
            return addr_fail(err, errlen, "invalid character '%c' in host", ch);
    }
    return 0;
}

/* host:port, :port or [v6]:port. Returns 0 with the host (without brackets; "" for all
 * interfaces) copied to host when host is non-NULL, and *port; or -1 with a reason in err
 * (when err is non-NULL), host and *port then unspecified. */
int cfg_parse_address(const char *addr, char *host, size_t hostcap, unsigned *port, char *err,
                      size_t errlen) {
    unsigned p = 0;
    if (!addr || !*addr)
        return addr_fail(err, errlen, "empty address");
    const char *h = addr, *colon;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close)
            return addr_fail(err, errlen, "missing ']'");
        if (close[1] != ':')
            return addr_fail(err, errlen, "missing port after ']'");
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (hlen == 0)
            return addr_fail(err, errlen, "empty IPv6 address");
        /* Hex digits, ':' and '.' (an embedded IPv4), '%' with a numeric zone. */
        if (strspn(h, "0123456789abcdefABCDEF:.%") < hlen)
            return addr_fail(err, errlen, "invalid IPv6 address \"%.*s\"",
                             (int)(hlen > 64 ? 64 : hlen), h);
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return addr_fail(err, errlen, "missing port (want host:port or :port)");
        hlen = (size_t)(colon - addr);
        if (check_plain_host(addr, hlen, err, errlen) != 0)
            return -1;
    }
    if (parse_port(colon + 1, &p, err, errlen) != 0)
        return -1;
    if (host) {
        if (hlen >= hostcap)
            return addr_fail(err, errlen, "host too long");
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    if (port)
        *port = p;
    return 0;
}

/* ---- globs --------------------------------------------------------------------------------- */

static int is_word(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

/* 1 or 0; cannot fail. */
int cfg_valid_glob(const char *s, size_t len) {
    size_t i = 0;
    int first = 1;
    for (;;) {
        if (i < len && s[i] == '*') {
            i++;
        } else {
            if (i >= len || !is_word(s[i]) || (first && s[i] >= '0' && s[i] <= '9'))
                return 0;
            i++;
            while (i < len && (is_word(s[i]) || s[i] == '-'))
                i++;
        }
        if (i == len)
            return 1;
        if (s[i] != '.')
            return 0;
        i++;
        first = 0;
    }
}

int cfg_setting_changed(const char *a, const char *b) {
    return strcmp(a ? a : "", b ? b : "") != 0;
}
