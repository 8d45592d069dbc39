/* gostrconv.c - Go's strconv number syntax and utf8.ValidString, for the input parsers that
 * must accept exactly what the Go programs they replace accept (statsd_exporter for StatsD
 * lines, the Pushgateway's text-format parser for pushed bodies). One copy, shared. */
#include "gostrconv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Go's utf8.ValidString: no overlong forms, no surrogates, nothing above U+10FFFF. Cannot
 * fail. */
bool exp_go_utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        /* ASCII runs are the common case: skip them eight bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return false;
        i += need + 1;
    }
    return true;
}

/* Character classes of Go's number syntax (ASCII only). Cannot fail. */
static int lower(int c) {
    return c | 0x20;
}

static bool is_digit(int c) {
    return c >= '0' && c <= '9';
}

static bool is_hex_letter(int c) {
    return lower(c) >= 'a' && lower(c) <= 'f';
}

/* Go's underscoreOK: '_' only between digits, or between a base prefix and a digit. Cannot
 * fail. */
static bool underscore_ok(const char *s, size_t n) {
    char saw = '^';
    size_t i = 0;
    bool hex = false;
    if (n >= 1 && (s[0] == '-' || s[0] == '+')) {
        s++;
        n--;
    }
    if (n >= 2 && s[0] == '0' && (lower(s[1]) == 'b' || lower(s[1]) == 'o' || lower(s[1]) == 'x')) {
        i = 2;
        saw = '0';
        hex = lower(s[1]) == 'x';
    }
    for (; i < n; i++) {
        if (is_digit(s[i]) || (hex && is_hex_letter(s[i]))) {
            saw = '0';
            continue;
        }
        if (s[i] == '_') {
            if (saw != '0')
                return false;
            saw = '_';
            continue;
        }
        if (saw == '_')
            return false;
        saw = '!';
    }
    return saw != '_';
}

/* Matches "inf"/"infinity" (any case) after an optional sign, or "nan" without one, as Go's
 * special() does. Returns the bytes matched (0 = none). */
static size_t go_special(const char *s, size_t n, double *out) {
    static const char inf[] = "infinity";
    size_t j = 0;
    bool neg = false;
    if (n == 0)
        return 0;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        j = 1;
    } else if (lower(s[0]) == 'n') {
        if (n >= 3 && lower(s[1]) == 'a' && lower(s[2]) == 'n') {
            *out = NAN;
            return 3;
        }
        return 0;
    } else if (lower(s[0]) != 'i') {
        return 0;
    }
    size_t k = 0;
    while (k < 8 && j + k < n && lower(s[j + k]) == inf[k])
        k++;
    if (k > 3 && k < 8)
        k = 3;
    if (k != 3 && k != 8)
        return 0;
    *out = neg ? -INFINITY : INFINITY;
    return j + k;
}

/* Significant digits kept before the rest is folded into one sticky digit: more than the 767
 * a double ever needs for correct rounding, so the result is Go's correctly rounded one. */
#define DEC_KEEP 800
#define HEX_KEEP 20

/* The common case, exactly: [+-]digits[.digits] with at most 15 digits in all. The digits
 * form an integer below 2^53 and 10^k (k <= 22) is exact, so one correctly rounded division
 * gives the correctly rounded value (Clinger's fast path). Returns false when not applicable. */
static bool fast_decimal(const char *s, size_t n, double *out) {
    static const double pow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    size_t i = 0;
    bool neg = false;
    if (n && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    uint64_t m = 0;
    int digits = 0, frac = -1;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (++digits > 15)
                return false;
            m = m * 10 + (uint64_t)(c - '0');
            if (frac >= 0)
                frac++;
        } else if (c == '.' && frac < 0) {
            frac = 0;
        } else {
            return false; /* exponent, underscore, hex, specials: the full parser */
        }
    }
    if (digits == 0)
        return false;
    double v = (double)m;
    if (frac > 0)
        v /= pow10[frac];
    *out = neg ? -v : v;
    return true;
}

/* A float literal being read by exp_go_parse_float: its significant digits, kept in canonical
 * form in buf after the sign and base prefix (from digits_at on). */
typedef struct {
    char *buf;
    size_t cap, digits_at, kept;
    bool neg, hex, underscores, sawdigits, trunc;
    long nd, dp; /* significant digits seen; digits before the point (negative: zeros after) */
} go_float;

/* The sign and "0x" prefix of s (n > 0): recorded in f and written to f->buf. Returns the
 * index after them. Cannot fail. */
static size_t float_prefix(go_float *f, const char *s, size_t n) {
    size_t i = 0, nb = 0;
    if (s[0] == '+' || s[0] == '-') {
        f->neg = s[0] == '-';
        i = 1;
    }
    if (i + 2 < n && s[i] == '0' && lower(s[i + 1]) == 'x') {
        f->hex = true;
        i += 2;
    }
    if (f->neg)
        f->buf[nb++] = '-';
    if (f->hex) {
        f->buf[nb++] = '0';
        f->buf[nb++] = 'x';
    }
    f->digits_at = nb;
    return i;
}

/* The mantissa of s from i: digits (leading zeros only move the point), at most one '.', and
 * underscores (checked later). The first DEC_KEEP (HEX_KEEP) significant digits are kept; a
 * later nonzero one sets trunc. Returns the index after the mantissa. Cannot fail: f->sawdigits
 * says whether it had digits. */
static size_t scan_mantissa(go_float *f, const char *s, size_t n, size_t i) {
    size_t keep = f->hex ? HEX_KEEP : DEC_KEEP;
    bool sawdot = false;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '_') {
            f->underscores = true;
            continue;
        }
        if (c == '.') {
            if (sawdot)
                break;
            sawdot = true;
            f->dp = f->nd;
            continue;
        }
        if (!is_digit(c) && !(f->hex && is_hex_letter(c)))
            break;
        f->sawdigits = true;
        if (c == '0' && f->nd == 0) { /* leading zero */
            f->dp--;
            continue;
        }
        f->nd++;
        if (f->kept < keep)
            f->buf[f->digits_at + f->kept++] = c;
        else if (c != '0')
            f->trunc = true;
    }
    if (!sawdot)
        f->dp = f->nd;
    return i;
}

/* The exponent at s[*ip], if any ('e', or 'p' for hex, where it is required): its signed
 * value into *exp (accumulation stops past 10000, as Go's does, for equal results) and *ip
 * past it. 0, or -1 on a syntax error. */
static int scan_exponent(go_float *f, const char *s, size_t n, size_t *ip, long *exp) {
    size_t i = *ip;
    long e = 0, esign = 1;
    *exp = 0;
    if (i >= n || lower(s[i]) != (f->hex ? 'p' : 'e'))
        return f->hex ? -1 : 0;
    i++;
    if (i >= n)
        return -1;
    if (s[i] == '+') {
        i++;
    } else if (s[i] == '-') {
        esign = -1;
        i++;
    }
    if (i >= n || !is_digit(s[i]))
        return -1;
    for (; i < n && (is_digit(s[i]) || s[i] == '_'); i++) {
        if (s[i] == '_') {
            f->underscores = true;
            continue;
        }
        if (e < 10000)
            e = e * 10 + (s[i] - '0');
    }
    *ip = i;
    *exp = esign * e;
    return 0;
}

/* The value of a scanned literal with exponent exp, through strtod. EXP_GO_OK, or EXP_GO_RANGE when
 * it overflows (*out ±Inf). */
static int float_value(go_float *f, long exp, double *out) {
    if (f->kept == 0) {
        *out = f->neg ? -0.0 : 0.0;
        return EXP_GO_OK;
    }
    if (f->trunc)
        f->buf[f->digits_at + f->kept++] = '1';
    size_t nb = f->digits_at + f->kept;
    /* value = DIGITS * base^(dp - kept) * (hex ? 2 : 10)^exp */
    long x = f->hex ? 4 * (f->dp - (long)f->kept) + exp : f->dp - (long)f->kept + exp;
    snprintf(f->buf + nb, f->cap - nb, "%c%ld", f->hex ? 'p' : 'e', x);
    double v = strtod(f->buf, NULL);
    *out = v;
    return isinf(v) ? EXP_GO_RANGE : EXP_GO_OK;
}

/* strconv.ParseFloat(s, 64): decimal and hex floats with Go's literal syntax (underscores
 * between digits, hex needs a 'p' exponent), "inf"/"infinity"/"nan". On EXP_GO_RANGE *out is
 * ±Inf, on EXP_GO_SYNTAX 0, as Go returns them. The digits are rewritten in a canonical form
 * ("DIGITSeEXP" / "0xDIGITSpEXP", no '.') for strtod, which rounds correctly and does not
 * depend on the locale for such input. Returns EXP_GO_OK, EXP_GO_SYNTAX or EXP_GO_RANGE. */
int exp_go_parse_float(const char *s, size_t n, double *out) {
    if (fast_decimal(s, n, out))
        return EXP_GO_OK;
    *out = 0;
    size_t sp = go_special(s, n, out);
    if (sp) {
        if (sp == n)
            return EXP_GO_OK;
        *out = 0;
        return EXP_GO_SYNTAX;
    }
    if (n == 0)
        return EXP_GO_SYNTAX;
    char buf[DEC_KEEP + 40];
    go_float f = {.buf = buf, .cap = sizeof buf};
    size_t i = scan_mantissa(&f, s, n, float_prefix(&f, s, n));
    long exp;
    if (!f.sawdigits || scan_exponent(&f, s, n, &i, &exp) != 0)
        return EXP_GO_SYNTAX;
    if ((f.underscores && !underscore_ok(s, i)) || i != n)
        return EXP_GO_SYNTAX;
    return float_value(&f, exp, out);
}

/* strconv.ParseInt(s, 10, 64): an optional sign and decimal digits, nothing else (no
 * underscores: those need base 0). Returns EXP_GO_OK with the value in *out; EXP_GO_SYNTAX, or
 * EXP_GO_RANGE outside int64, with *out 0. */
int exp_go_parse_int64(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    bool neg = false;
    *out = 0;
    if (n == 0)
        return EXP_GO_SYNTAX;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return EXP_GO_SYNTAX;
    uint64_t limit = neg ? UINT64_C(9223372036854775808) : UINT64_C(9223372036854775807);
    uint64_t acc = 0;
    for (; i < n; i++) {
        if (!is_digit(s[i]))
            return EXP_GO_SYNTAX;
        unsigned d = (unsigned)(s[i] - '0');
        if (acc > (limit - d) / 10)
            return EXP_GO_RANGE;
        acc = acc * 10 + d;
    }
    *out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
    return EXP_GO_OK;
}
