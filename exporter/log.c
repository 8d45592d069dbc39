/* log.c - structured logging to stderr (logfmt or JSON), one write(2) per line. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LINE_MAX_BYTES 8192

static _Atomic int g_level = EXP_LOG_INFO;
static _Atomic int g_json = 0;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Returns 0, or -1 for an unknown level name. */
int exp_log_set_level(const char *name) {
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, level_names[i]) == 0) {
            /* seq_cst, relaxed would do: pairs with exp_log_enabled's relaxed load; a
             * setting, no other data depends on it. */
            atomic_store(&g_level, i);
            return 0;
        }
    }
    return -1;
}

/* Returns 0, or -1 for an unknown format name. */
int exp_log_set_format(const char *name) {
    /* seq_cst, relaxed would do: pairs with vlog's relaxed load; a setting, nothing else. */
    if (name && strcmp(name, "logfmt") == 0)
        atomic_store(&g_json, 0);
    else if (name && strcmp(name, "json") == 0)
        atomic_store(&g_json, 1);
    else
        return -1;
    return 0;
}

/* Cannot fail. */
int exp_log_enabled(exp_log_level lvl) {
    /* Relaxed: pairs with exp_log_set_level; a setting, no other data depends on it. */
    return (int)lvl >= atomic_load_explicit(&g_level, memory_order_relaxed);
}

/* A bounded line buffer: appends past the end are dropped, the line stays well-formed enough
 * (it is cut, then terminated by a newline). */
typedef struct {
    char buf[LINE_MAX_BYTES];
    size_t len;
} line;

static void put(line *l, const char *s, size_t n) {
    size_t room = sizeof l->buf - 1 - l->len; /* keep one byte for '\n' */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s) {
    put(l, s, strlen(s));
}

static void putc_(line *l, char c) {
    put(l, &c, 1);
}

/* Escape for a double-quoted logfmt or JSON string. */
static void put_escaped(line *l, const char *s, int json) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            puts_(l, "\\\"");
            break;
        case '\\':
            puts_(l, "\\\\");
            break;
        case '\n':
            puts_(l, "\\n");
            break;
        case '\r':
            puts_(l, "\\r");
            break;
        case '\t':
            puts_(l, "\\t");
            break;
        default:
            if (*p < 0x20 || (*p == 0x7f && json)) {
                char tmp[8];
                snprintf(tmp, sizeof tmp, "\\u%04x", *p);
                puts_(l, tmp);
            } else {
                putc_(l, (char)*p);
            }
        }
    }
}

/* logfmt values are bare unless they are empty or hold a space, '=', '"' or a control byte. */
static int needs_quotes(const char *s) {
    if (!*s)
        return 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f)
            return 1;
    return 0;
}

static void put_pair(line *l, const char *key, const char *val, int json, int first) {
    if (!val)
        val = "";
    if (json) {
        if (!first)
            putc_(l, ',');
        putc_(l, '"');
        put_escaped(l, key, 1);
        puts_(l, "\":\"");
        put_escaped(l, val, 1);
        putc_(l, '"');
        return;
    }
    if (!first)
        putc_(l, ' ');
    puts_(l, key);
    putc_(l, '=');
    if (needs_quotes(val)) {
        putc_(l, '"');
        put_escaped(l, val, 0);
        putc_(l, '"');
    } else {
        puts_(l, val);
    }
}

static void vlog(exp_log_level lvl, const char *msg, const char *extra_key, const char *extra_val,
                 va_list ap) {
    /* Relaxed: pairs with exp_log_set_format; a setting, no other data depends on it. */
    int json = atomic_load_explicit(&g_json, memory_order_relaxed);
    struct timespec now;
    struct tm tm;
    char ts[40];
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000L);

    line l;
    l.len = 0;
    if (json)
        putc_(&l, '{');
    put_pair(&l, "ts", ts, json, 1);
    put_pair(&l, "level", level_names[lvl < 0 || lvl > 3 ? 3 : lvl], json, 0);
    put_pair(&l, "msg", msg, json, 0);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        put_pair(&l, k, v, json, 0);
    }
    if (extra_key)
        put_pair(&l, extra_key, extra_val, json, 0);
    if (json) {
        /* A cut JSON line is useless; keep the closing brace by truncating earlier. */
        if (l.len >= sizeof l.buf - 2)
            l.len = sizeof l.buf - 3;
        putc_(&l, '}');
    }
    l.buf[l.len++] = '\n';
    /* One write per line; a short write to a pipe of < PIPE_BUF bytes does not happen. */
    const char *p = l.buf;
    size_t left = l.len;
    while (left > 0) {
        ssize_t w = write(STDERR_FILENO, p, left);
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
}

/* Cannot fail. */
void exp_log(exp_log_level lvl, const char *msg, ...) {
    if (!exp_log_enabled(lvl))
        return;
    va_list ap;
    va_start(ap, msg);
    vlog(lvl, msg, NULL, NULL, ap);
    va_end(ap);
}

/* Cannot fail. */
void exp_log_limited(exp_log_limit *lim, unsigned burst, exp_log_level lvl, const char *msg, ...) {
    if (!exp_log_enabled(lvl))
        return;
    if (burst == 0)
        burst = 10;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t win = (uint64_t)now.tv_sec / 10 + 1; /* +1: 0 means "never used" */
    /* All seq_cst, relaxed would do: approximate rate counters that guard no other data.
     * The window CAS picks one thread to reset logged (a line racing the reset may count in
     * either window); the fetch_add on logged pairs with that reset. */
    uint64_t cur = atomic_load(&lim->window);
    if (cur != win && atomic_compare_exchange_strong(&lim->window, &cur, win))
        atomic_store(&lim->logged, 0);
    if (atomic_fetch_add(&lim->logged, 1) >= burst) {
        atomic_fetch_add(&lim->suppressed, 1); /* pairs with the exchange below */
        return;
    }
    /* Atomicity, not order: each suppressed line is reported by exactly one written line. */
    uint64_t sup = atomic_exchange(&lim->suppressed, 0);
    char supbuf[24];
    snprintf(supbuf, sizeof supbuf, "%llu", (unsigned long long)sup);
    va_list ap;
    va_start(ap, msg);
    vlog(lvl, msg, sup ? "suppressed" : NULL, supbuf, ap);
    va_end(ap);
}
