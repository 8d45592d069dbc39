/* push/textparse.c - the Prometheus text format (0.0.4) parser for pushed bodies: the rules of
 * the Go parser the Pushgateway uses, written anew (textparse.h lists them and where this one
 * differs).
 *
 * The input is read one byte at a time, like Go's, with the last byte read in `cur`: many of
 * Go's answers (which error, on which line, whether a missing final newline matters) follow
 * from exactly when a byte is read, so the steps below read in the same order. Names and
 * values come from the registry's name rules (registry.h) and Go's number rules
 * (gostrconv.h). Everything the result holds lives in one arena, freed at once; memory is
 * proportional to the input. No recursion.
 */
#include "push/textparse.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gostrconv.h"
#include "push/arena.h"

/* ---- scratch buffers (malloc, reused from sample to sample) ---------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

/* Room for `more` bytes after b->n. 0, or -1 when out of memory. */
static int sb_room(sbuf *b, size_t more) {
    if (b->p && b->cap - b->n >= more)
        return 0; /* (a buffer always exists after a call: ranges into it are never NULL + 0) */
    if (more > SIZE_MAX / 4 - b->n)
        return -1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n < more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* ---- error messages ------------------------------------------------------------------------- */

/* The caller's buffer, written with truncation; always NUL-terminated when cap > 0. */
typedef struct {
    char *p;
    size_t cap, n;
} msg;

/* Appends s[0..n), cut at the buffer's end. Cannot fail. */
static void msg_bytes(msg *m, const char *s, size_t n) {
    if (m->cap == 0)
        return;
    size_t room = m->cap - 1 - m->n;
    if (n > room)
        n = room;
    memcpy(m->p + m->n, s, n);
    m->n += n;
    m->p[m->n] = 0;
}

/* Appends printf-style text. Cannot fail. */
static void msg_fmt(msg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_fmt(msg *m, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0)
        msg_bytes(m, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* Appends rune r as UTF-8 (r valid, below U+110000). Cannot fail. */
static void msg_rune(msg *m, uint32_t r) {
    char u[4];
    size_t k;
    if (r < 0x80) {
        u[0] = (char)r;
        k = 1;
    } else if (r < 0x800) {
        u[0] = (char)(0xC0 | (r >> 6));
        u[1] = (char)(0x80 | (r & 0x3F));
        k = 2;
    } else if (r < 0x10000) {
        u[0] = (char)(0xE0 | (r >> 12));
        u[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        u[2] = (char)(0x80 | (r & 0x3F));
        k = 3;
    } else {
        u[0] = (char)(0xF0 | (r >> 18));
        u[1] = (char)(0x80 | ((r >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((r >> 6) & 0x3F));
        u[3] = (char)(0x80 | (r & 0x3F));
        k = 4;
    }
    msg_bytes(m, u, k);
}

/* Go's strconv.IsPrint: exact up to U+0377; above, everything but some format (Cf),
 * separator (Zl, Zp, Zs) and private-use ranges counts as printable. Cannot fail. */
static bool go_printable(uint32_t r) {
    if (r < 0x7F)
        return r >= 0x20;
    if (r <= 0xA0 || r == 0xAD)
        return false;
    if (r < 0x378)
        return true;
    if ((r >= 0x2000 && r <= 0x200F) || (r >= 0x2028 && r <= 0x202F) ||
        (r >= 0x205F && r <= 0x206F) || r == 0x3000 || r == 0xFEFF || r == 0x1680)
        return false;
    if ((r >= 0xE000 && r <= 0xF8FF) || (r >= 0xFFF9 && r <= 0xFFFB) || r >= 0xF0000)
        return false;
    return true;
}

/* Appends rune r the way Go's %q writes it inside quote q ('"' or '\''). Cannot fail. */
static void msg_escaped_rune(msg *m, uint32_t r, char q) {
    static const char named[] = "\a\b\f\n\r\t\v";
    static const char letters[] = "abfnrtv";
    if (r == (uint32_t)q || r == '\\') {
        char e[2] = {'\\', (char)r};
        msg_bytes(m, e, 2);
    } else if (go_printable(r)) {
        msg_rune(m, r);
    } else if (r != 0 && r < 0x80 && strchr(named, (int)r)) {
        char e[2] = {'\\', letters[strchr(named, (int)r) - named]};
        msg_bytes(m, e, 2);
    } else if (r < 0x20 || r == 0x7F) {
        msg_fmt(m, "\\x%02x", (unsigned)r);
    } else if (r < 0x10000) {
        msg_fmt(m, "\\u%04x", (unsigned)r);
    } else {
        msg_fmt(m, "\\U%08x", (unsigned)r);
    }
}

/* Length of the valid UTF-8 sequence at s[0..n) and its rune, or 0 when s does not start
 * with one. Cannot fail. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *r) {
    size_t k = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
    if (k > n || !exp_go_utf8_valid(s, k))
        return 0;
    static const unsigned char lead[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t v = s[0] & lead[k];
    for (size_t i = 1; i < k; i++)
        v = (v << 6) | (s[i] & 0x3F);
    *r = v;
    return k;
}

/* Appends s[0..n) as Go's %q of a string: quoted, invalid UTF-8 bytes as \xHH. Cannot fail. */
static void msg_quote(msg *m, const char *s, size_t n) {
    msg_bytes(m, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n && m->n + 1 < m->cap;) {
        uint32_t r;
        size_t k = utf8_decode(u + i, n - i, &r);
        if (k == 0) {
            msg_fmt(m, "\\x%02x", u[i]);
            i++;
            continue;
        }
        msg_escaped_rune(m, r, '"');
        i += k;
    }
    msg_bytes(m, "\"", 1);
}

/* Appends byte c as Go's %q of a byte (a quoted rune, U+0000..U+00FF). Cannot fail. */
static void msg_quote_byte(msg *m, int c) {
    msg_bytes(m, "'", 1);
    msg_escaped_rune(m, (uint32_t)(unsigned char)c, '\'');
    msg_bytes(m, "'", 1);
}

/* ---- the parser state ----------------------------------------------------------------------- */

/* A family being built. */
typedef struct {
    const char *name; /* in the arena */
    size_t namelen;
    const char *help; /* NULL until a HELP line */
    reg_type type;
    bool typed; /* TYPE line or first sample seen (Go's Type != nil) */
    exp_text_metric *metrics;
    size_t nmetrics;
    size_t index; /* position in parser.fams */
} family;

/* A label of the sample being read: the name points into the input, the value into vals. */
typedef struct {
    const char *name;
    size_t namelen, val, vallen;
} slabel;

/* Byte classes of names, taken from the registry's rules once per parse. */
enum { C_MSTART = 1, C_MCONT = 2, C_LSTART = 4, C_LCONT = 8 };

typedef struct {
    const char *buf;
    size_t len, next; /* next: index of the next byte to read */
    int cur;          /* the last byte read; -1 at the end of the input */
    unsigned line;
    size_t max_labels, max_families, max_metrics;
    int status; /* 0, -1 (parse error), -2 (out of memory) */
    msg err;
    push_arena_block *arena;
    family **fams; /* arena array, in order of creation */
    size_t nfams, nonempty, nmetrics;
    reg_strmap *byname; /* family name -> family */
    reg_strmap *series; /* histogram/summary label set -> size_t * (metric index) */
    unsigned char cls[256];
    /* the current sample */
    family *fam;
    bool is_count, is_sum; /* a name_count / name_sum sample of a summary or histogram */
    double special;        /* its le / quantile, NaN when none */
    slabel *labels;        /* malloc, labcap */
    size_t nlabels, labcap;
    sbuf vals;            /* label values of the sample */
    sbuf tok;             /* the unescaped token being read */
    sbuf key;             /* label set key of a histogram/summary sample */
    const slabel **order; /* the labels sorted by name (key building), labcap */
    uint32_t *dup;        /* open-addressing set of label indexes + 1, dupcap slots */
    size_t dupcap;
} parser;

/* Starts the error message "text format parsing error in line N: " and marks the parse
 * failed; the caller appends the rest. Returns the message to append to. */
static msg *fail(parser *p) {
    p->status = -1;
    p->err.n = 0;
    if (p->err.cap)
        p->err.p[0] = 0;
    msg_fmt(&p->err, "text format parsing error in line %u: ", p->line);
    return &p->err;
}

/* Records what was expected and the byte found instead, quoted as Go quotes a rune. Always
 * returns -1. */
static int fail_found(parser *p, const char *expected) {
    msg *m = fail(p);
    msg_bytes(m, expected, strlen(expected));
    msg_quote_byte(m, p->cur);
    return -1;
}

/* Records a whole error message. Always returns -1, for `return fail_with(...)`. */
static int fail_with(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_with(parser *p, const char *fmt, ...) {
    msg *m = fail(p);
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0)
        msg_bytes(m, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
    return -1;
}

/* Records running out of memory. Always returns -1. */
static int oom(parser *p) {
    p->status = -2;
    p->err.n = 0;
    msg_bytes(&p->err, "out of memory", 13);
    return -1;
}

/* ---- reading bytes, as Go's parser does ------------------------------------------------------ */

/* A blank as Go's parser sees it: space or tab, nothing else. Cannot fail. */
static bool blank(int c) {
    return c == ' ' || c == '\t';
}

/* Reads the next byte into cur. 0; -1 at the end of the input (cur -1, no error recorded) or
 * on a NUL byte (error recorded). */
static int advance(parser *p) {
    if (p->next >= p->len) {
        p->cur = -1;
        return -1;
    }
    p->cur = (unsigned char)p->buf[p->next++];
    if (p->cur == 0)
        return fail_with(p, "invalid NUL byte");
    return 0;
}

/* Where the input ends in the middle of a line, or a NUL byte was read: Go's error for the
 * former, unless an error is recorded already. Always returns -1. */
static int ended(parser *p) {
    if (p->status == 0)
        fail_with(p, "unexpected end of input stream");
    return -1;
}

/* advance(), with the end of the input an error. 0 or -1. */
static int next(parser *p) {
    return advance(p) < 0 ? ended(p) : 0;
}

/* Reads bytes until one that is not a blank. 0, or -1 at the end of the input (no error
 * recorded: the caller decides) or on a NUL (error recorded). */
static int skip_blanks_raw(parser *p) {
    do {
        if (advance(p) < 0)
            return -1;
    } while (blank(p->cur));
    return 0;
}

/* skip_blanks_raw with the end of the input an error. 0 or -1. */
static int skip_blanks(parser *p) {
    return skip_blanks_raw(p) < 0 ? ended(p) : 0;
}

/* skip_blanks only when cur is a blank. 0 or -1. */
static int skip_blanks_if_blank(parser *p) {
    return blank(p->cur) ? skip_blanks(p) : 0;
}

/* The token from cur up to a blank or newline, as a range of the input; cur is that blank or
 * newline. 0 or -1 (the input ended first). */
static int token_until_space(parser *p, const char **s, size_t *n) {
    size_t start = p->next - 1;
    while (!blank(p->cur) && p->cur != '\n')
        if (next(p) < 0)
            return -1;
    *s = p->buf + start;
    *n = p->next - 1 - start;
    return 0;
}

/* A name from cur: empty when cur cannot start one; else the bytes of class `cont` that
 * follow. As a range of the input; cur is the byte after it. 0 or -1 (the input ended). */
static int token_name(parser *p, unsigned char start, unsigned char cont, const char **s,
                      size_t *n) {
    size_t from = p->next - 1;
    *s = p->buf + from;
    *n = 0;
    if (p->cur < 0 || !(p->cls[p->cur] & start))
        return 0;
    do {
        if (next(p) < 0)
            return -1;
    } while (p->cls[p->cur] & cont);
    *n = p->next - 1 - from;
    return 0;
}

/* Appends byte c to the token. 0 or -1 (out of memory). */
static int tok_put(parser *p, char c) {
    if (sb_room(&p->tok, 1) < 0)
        return oom(p);
    p->tok.p[p->tok.n++] = c;
    return 0;
}

/* An invalid escape: Go's message writes the byte as a rune, raw. Always returns -1. */
static int bad_escape(parser *p) {
    msg *m = fail(p);
    msg_bytes(m, "invalid escape sequence '\\", 26);
    msg_rune(m, (uint32_t)p->cur);
    msg_bytes(m, "'", 1);
    return -1;
}

/* The rest of the line from cur into tok, cur left on the newline. With escapes, `\\` and
 * `\n` are unescaped and any other escape is an error; without, every backslash is dropped
 * (as Go's parser does). 0 or -1. */
static int token_until_newline(parser *p, bool escapes) {
    bool escaped = false;
    p->tok.n = 0;
    for (;;) {
        if (escapes && escaped) {
            if (p->cur != '\\' && p->cur != 'n')
                return bad_escape(p);
            if (tok_put(p, p->cur == 'n' ? '\n' : '\\') < 0)
                return -1;
            escaped = false;
        } else if (p->cur == '\n') {
            return 0;
        } else if (p->cur == '\\') {
            escaped = true;
        } else if (tok_put(p, (char)p->cur) < 0) {
            return -1;
        }
        if (next(p) < 0)
            return -1;
    }
}

/* A quoted label value, cur on its opening quote: unescaped into tok (`\"`, `\\`, `\n`), cur
 * left on the closing quote. 0 or -1. */
static int token_label_value(parser *p) {
    bool escaped = false;
    p->tok.n = 0;
    for (;;) {
        if (next(p) < 0)
            return -1;
        char c = (char)p->cur;
        if (escaped) {
            if (c != '"' && c != '\\' && c != 'n')
                return bad_escape(p);
            if (tok_put(p, c == 'n' ? '\n' : c) < 0)
                return -1;
            escaped = false;
        } else if (c == '"') {
            return 0;
        } else if (c == '\n') {
            msg *m = fail(p);
            msg_bytes(m, "label value ", 12);
            msg_quote(m, p->tok.p, p->tok.n);
            msg_bytes(m, " contains unescaped new-line", 28);
            return -1;
        } else if (c == '\\') {
            escaped = true;
        } else if (tok_put(p, c) < 0) {
            return -1;
        }
    }
}

/* Go's parseFloat in the text parser: strconv.ParseFloat, refusing 'p', 'P' and '_'. 1 with
 * *v set, or 0. */
static bool text_float(const char *s, size_t n, double *v) {
    for (size_t i = 0; i < n; i++)
        if (s[i] == 'p' || s[i] == 'P' || s[i] == '_')
            return false;
    return exp_go_parse_float(s, n, v) == EXP_GO_OK;
}

/* ---- families ------------------------------------------------------------------------------- */

/* The family called name[0..n), or NULL. Cannot fail. */
static family *family_get(parser *p, const char *name, size_t n) {
    return reg_strmap_get(p->byname, name, n);
}

/* name[0..n) without suffix when it ends with it and is longer, else 0. Cannot fail. */
static size_t strip(const char *name, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n > k && memcmp(name + n - k, suffix, k) == 0 ? n - k : 0;
}

/* The typed family of type t called base[0..n), when n > 0. Cannot fail. */
static family *typed_base(parser *p, const char *base, size_t n, reg_type t) {
    family *f = n ? family_get(p, base, n) : NULL;
    return f && f->typed && f->type == t ? f : NULL;
}

/* The family a name on a sample or HELP/TYPE line belongs to, as Go's setOrCreateCurrentMF
 * decides: the family of that name; else, for name_count / name_sum, a summary called name;
 * for name_count / name_sum / name_bucket, a histogram called name; else a new family. Sets
 * p->fam, is_count and is_sum. 0, or -1 when out of memory. */
static int family_for(parser *p, const char *name, size_t n) {
    p->is_count = p->is_sum = false;
    family *f = family_get(p, name, n);
    if (!f) {
        size_t c = strip(name, n, "_count"), s = strip(name, n, "_sum");
        size_t b = strip(name, n, "_bucket");
        if ((f = typed_base(p, name, c ? c : s, REG_SUMMARY)) != NULL ||
            (f = typed_base(p, name,
                            c   ? c
                            : s ? s
                                : b,
                            REG_HISTOGRAM)) != NULL) {
            p->is_count = c != 0;
            p->is_sum = s != 0;
        }
    }
    if (!f) {
        f = push_arena_alloc(&p->arena, sizeof *f);
        family **v = push_arena_vec_room(&p->arena, p->fams, p->nfams, sizeof *v);
        char *copy = push_arena_str(&p->arena, name, n);
        if (!f || !v || !copy)
            return oom(p);
        *f = (family){.name = copy, .namelen = n, .type = REG_UNTYPED, .index = p->nfams};
        if (reg_strmap_put(p->byname, copy, n, f) != REG_OK)
            return oom(p);
        p->fams = v;
        p->fams[p->nfams++] = f;
    }
    p->fam = f;
    return 0;
}

/* ---- comment lines -------------------------------------------------------------------------- */

/* The type word of a TYPE line, as Go looks it up (strings.ToUpper, so ASCII in any case, and
 * the two runes whose upper case is ASCII: U+017F is S, U+0131 is I). 1 with *t set, or 0. */
static int type_word(const char *s, size_t n, reg_type *t, bool *gauge_histogram) {
    static const struct {
        const char *w;
        reg_type t;
    } words[] = {{"COUNTER", REG_COUNTER},
                 {"GAUGE", REG_GAUGE},
                 {"SUMMARY", REG_SUMMARY},
                 {"UNTYPED", REG_UNTYPED},
                 {"HISTOGRAM", REG_HISTOGRAM}};
    char up[16];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (k == sizeof up - 1)
            return 0;
        if (c >= 'a' && c <= 'z') {
            up[k++] = (char)(c - 32);
        } else if (c < 0x80) {
            up[k++] = (char)c;
        } else if (i + 1 < n && c == 0xC5 && (unsigned char)s[i + 1] == 0xBF) {
            up[k++] = 'S';
            i++;
        } else if (i + 1 < n && c == 0xC4 && (unsigned char)s[i + 1] == 0xB1) {
            up[k++] = 'I';
            i++;
        } else {
            return 0;
        }
    }
    up[k] = 0;
    *gauge_histogram = strcmp(up, "GAUGE_HISTOGRAM") == 0;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcmp(up, words[i].w) == 0) {
            *t = words[i].t;
            return 1;
        }
    }
    return 0;
}

/* The text of a HELP line, cur on its first byte. 0 or -1. */
static int read_help(parser *p) {
    family *f = p->fam;
    if (f->help) {
        msg *m = fail(p);
        msg_bytes(m, "second HELP line for metric name ", 33);
        msg_quote(m, f->name, f->namelen);
        return -1;
    }
    if (token_until_newline(p, true) < 0)
        return -1;
    f->help = push_arena_str(&p->arena, p->tok.p, p->tok.n);
    return f->help ? 0 : oom(p);
}

/* The type of a TYPE line, cur on its first byte. 0 or -1. */
static int read_type(parser *p) {
    family *f = p->fam;
    if (f->typed) {
        msg *m = fail(p);
        msg_bytes(m, "second TYPE line for metric name ", 33);
        msg_quote(m, f->name, f->namelen);
        msg_bytes(m, ", or TYPE reported after samples", 32);
        return -1;
    }
    if (token_until_newline(p, false) < 0)
        return -1;
    bool gh = false;
    reg_type t;
    if (!type_word(p->tok.p, p->tok.n, &t, &gh)) {
        msg *m = fail(p);
        msg_bytes(m, gh ? "unsupported metric type " : "unknown metric type ", gh ? 24 : 20);
        msg_quote(m, p->tok.p, p->tok.n);
        return -1;
    }
    f->type = t;
    f->typed = true;
    return 0;
}

/* A line starting with '#', cur on it. HELP and TYPE lines are read; any other comment, and a
 * HELP or TYPE line that ends before its name or text, is skipped. Go's startComment. 0 or
 * -1. */
static int comment_line(parser *p) {
    const char *kw, *name;
    size_t kn, nn;
    if (skip_blanks(p) < 0)
        return -1;
    if (p->cur == '\n')
        return 0;
    if (token_until_space(p, &kw, &kn) < 0)
        return -1;
    if (p->cur == '\n')
        return 0;
    bool help = kn == 4 && memcmp(kw, "HELP", 4) == 0;
    if (!help && !(kn == 4 && memcmp(kw, "TYPE", 4) == 0)) {
        while (p->cur != '\n')
            if (next(p) < 0)
                return -1;
        return 0;
    }
    if (skip_blanks(p) < 0 || token_name(p, C_MSTART, C_MCONT, &name, &nn) < 0)
        return -1;
    if (p->cur == '\n')
        return 0;
    if (!blank(p->cur))
        return fail_with(p, "invalid metric name in comment");
    if (!reg_valid_metric_name(name, nn))
        return fail_with(p, "metric name longer than %d bytes", REG_MAX_NAME);
    if (family_for(p, name, nn) < 0 || skip_blanks(p) < 0)
        return -1;
    if (p->cur == '\n')
        return 0;
    return help ? read_help(p) : read_type(p);
}

/* ---- sample lines --------------------------------------------------------------------------- */

/* Whether label name[0..n) is a bound or quantile of the current family (le of a histogram,
 * quantile of a summary): not a label then. Cannot fail. */
static bool special_label(const parser *p, const char *name, size_t n) {
    if (p->fam->type == REG_HISTOGRAM)
        return n == 2 && memcmp(name, "le", 2) == 0;
    if (p->fam->type == REG_SUMMARY)
        return n == 8 && memcmp(name, "quantile", 8) == 0;
    return false;
}

/* Adds label name[0..n) (value to come) to the sample, checking the max_labels limit. 0 or
 * -1. */
static int add_label(parser *p, const char *name, size_t n) {
    if (p->max_labels && p->nlabels >= p->max_labels) {
        msg *m = fail(p);
        msg_fmt(m, "too many labels (max_labels %zu) for metric ", p->max_labels);
        msg_quote(m, p->fam->name, p->fam->namelen);
        return -1;
    }
    if (p->nlabels == p->labcap) {
        size_t cap = p->labcap ? 2 * p->labcap : 16;
        slabel *l = realloc(p->labels, cap * sizeof *l);
        if (!l)
            return oom(p);
        p->labels = l;
        const slabel **o = realloc(p->order, cap * sizeof *o);
        if (!o)
            return oom(p);
        p->order = o;
        p->labcap = cap;
    }
    p->labels[p->nlabels++] = (slabel){.name = name, .namelen = n};
    return 0;
}

/* Whether two labels of a sample have the same name. Cannot fail. */
static bool same_name(const slabel *a, const slabel *b) {
    return a->namelen == b->namelen && memcmp(a->name, b->name, a->namelen) == 0;
}

/* Labels per sample compared pairwise for duplicates; beyond, a hash set. */
#define DIRECT_LABELS 8

/* Puts label i into the duplicate set, which has room. 1 when a label of the same name is
 * in it already, else 0. Cannot fail. */
static int dup_put(parser *p, size_t i) {
    const slabel *l = &p->labels[i];
    size_t mask = p->dupcap - 1;
    size_t h = (size_t)reg_hash_bytes(l->name, l->namelen, 0x7465787470617273u) & mask;
    while (p->dup[h]) {
        if (same_name(&p->labels[p->dup[h] - 1], l))
            return 1;
        h = (h + 1) & mask;
    }
    p->dup[h] = (uint32_t)(i + 1);
    return 0;
}

/* Puts label i (the sample's ninth or later) into the duplicate set. The set is filled anew
 * with labels 0..i-1 (distinct) on the sample's first use (it still holds the previous
 * sample's) and when it needs room (twice the labels so far). 1 when a label of the same name
 * is in it already, 0 when not, -1 when out of memory. */
static int dup_insert(parser *p, size_t i) {
    if (i == DIRECT_LABELS || p->nlabels * 2 > p->dupcap) {
        size_t cap = p->dupcap ? p->dupcap : 64;
        while (cap < p->nlabels * 2)
            cap *= 2;
        if (cap != p->dupcap) {
            uint32_t *d = realloc(p->dup, cap * sizeof *d);
            if (!d)
                return oom(p);
            p->dup = d;
            p->dupcap = cap;
        }
        memset(p->dup, 0, cap * sizeof *p->dup);
        for (size_t j = 0; j < i; j++)
            dup_put(p, j);
    }
    return dup_put(p, i);
}

/* Whether the newest label's name is already in the sample: Go's duplicate check. A few
 * labels are compared directly; more go through a hash set. 0, or -1 (error recorded). */
static int check_duplicate(parser *p) {
    size_t i = p->nlabels - 1;
    int dup = 0;
    if (p->nlabels <= DIRECT_LABELS) {
        for (size_t j = 0; j < i && !dup; j++)
            dup = same_name(&p->labels[j], &p->labels[i]);
    } else if ((dup = dup_insert(p, i)) < 0) {
        return -1;
    }
    if (dup) {
        msg *m = fail(p);
        msg_bytes(m, "duplicate label names for metric ", 33);
        msg_quote(m, p->fam->name, p->fam->namelen);
        return -1;
    }
    return 0;
}

/* The value just read into tok, for the label of the sample being read (`special`: its le or
 * quantile). 0 or -1. */
static int label_value(parser *p, bool special) {
    if (!exp_go_utf8_valid((const unsigned char *)p->tok.p, p->tok.n)) {
        msg *m = fail(p);
        msg_bytes(m, "invalid label value ", 20);
        msg_quote(m, p->tok.p, p->tok.n);
        return -1;
    }
    if (special) {
        if (!text_float(p->tok.p, p->tok.n, &p->special)) {
            msg *m = fail(p);
            msg_fmt(m, "expected float as value for '%s' label, got ",
                    p->fam->type == REG_HISTOGRAM ? "le" : "quantile");
            msg_quote(m, p->tok.p, p->tok.n);
            return -1;
        }
        return 0;
    }
    slabel *l = &p->labels[p->nlabels - 1];
    if (sb_room(&p->vals, p->tok.n) < 0)
        return oom(p);
    l->val = p->vals.n;
    l->vallen = p->tok.n;
    if (p->tok.n)
        memcpy(p->vals.p + p->vals.n, p->tok.p, p->tok.n);
    p->vals.n += p->tok.n;
    return 0;
}

/* One `name="value"` of a label set, cur on the byte before its name. 1 when the set goes
 * on, 0 when it ended ('}' read, cur on the first byte after the blanks that follow), -1 on
 * error. Go's startLabelName and startLabelValue. */
static int one_label(parser *p) {
    const char *name;
    size_t n;
    if (skip_blanks(p) < 0)
        return -1;
    if (p->cur == '}')
        return skip_blanks(p) < 0 ? -1 : 0;
    if (token_name(p, C_LSTART, C_LCONT, &name, &n) < 0)
        return -1;
    if (n == 0) {
        msg *m = fail(p);
        msg_bytes(m, "invalid label name for metric ", 30);
        msg_quote(m, p->fam->name, p->fam->namelen);
        return -1;
    }
    if (!reg_valid_label_name(name, n))
        return fail_with(p, "label name longer than %d bytes", REG_MAX_NAME);
    if (n == 8 && memcmp(name, "__name__", 8) == 0)
        return fail_with(p, "label name \"__name__\" is reserved");
    bool special = special_label(p, name, n);
    if (!special && add_label(p, name, n) < 0)
        return -1;
    if (skip_blanks_if_blank(p) < 0)
        return -1;
    if (p->cur != '=')
        return fail_found(p, "expected '=' after label name, found ");
    if (!special && check_duplicate(p) < 0)
        return -1;
    if (skip_blanks(p) < 0)
        return -1;
    if (p->cur != '"')
        return fail_found(p, "expected '\"' at start of label value, found ");
    if (token_label_value(p) < 0 || label_value(p, special) < 0)
        return -1;
    if (skip_blanks(p) < 0)
        return -1;
    if (p->cur == ',')
        return 1;
    if (p->cur == '}')
        return skip_blanks(p) < 0 ? -1 : 0;
    msg *m = fail(p);
    msg_bytes(m, "unexpected end of label value ", 30);
    msg_quote(m, p->tok.p, p->tok.n);
    return -1;
}

/* qsort order of label pointers by name (names in one sample are distinct). */
static int by_name(const void *a, const void *b) {
    const slabel *x = *(const slabel *const *)a, *y = *(const slabel *const *)b;
    size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->namelen > y->namelen) - (x->namelen < y->namelen);
}

/* The key of the sample's label set in p->key: its family's index, then each label by name
 * order as name NUL value NUL (neither holds a NUL, so keys are equal only for equal sets).
 * 0 or -1. */
static int series_key(parser *p) {
    for (size_t i = 0; i < p->nlabels; i++)
        p->order[i] = &p->labels[i];
    if (p->nlabels > 1)
        qsort((void *)p->order, p->nlabels, sizeof *p->order, by_name);
    p->key.n = 0;
    if (sb_room(&p->key, sizeof p->fam->index) < 0)
        return oom(p);
    memcpy(p->key.p, &p->fam->index, sizeof p->fam->index);
    p->key.n = sizeof p->fam->index;
    for (size_t i = 0; i < p->nlabels; i++) {
        const slabel *l = p->order[i];
        if (sb_room(&p->key, l->namelen + l->vallen + 2) < 0)
            return oom(p);
        memcpy(p->key.p + p->key.n, l->name, l->namelen);
        p->key.n += l->namelen;
        p->key.p[p->key.n++] = 0;
        if (l->vallen)
            memcpy(p->key.p + p->key.n, p->vals.p + l->val, l->vallen);
        p->key.n += l->vallen;
        p->key.p[p->key.n++] = 0;
    }
    return 0;
}

/* A new metric in the current family with the sample's labels, checking max_families and
 * max_metrics. The metric, or NULL (error recorded). */
static exp_text_metric *new_metric(parser *p) {
    family *f = p->fam;
    if (f->nmetrics == 0 && p->max_families && p->nonempty >= p->max_families)
        return fail_with(p, "too many metric families (max_families %zu)", p->max_families), NULL;
    if (p->max_metrics && p->nmetrics >= p->max_metrics)
        return fail_with(p, "too many metrics (max_metrics %zu)", p->max_metrics), NULL;
    exp_text_metric *v = push_arena_vec_room(&p->arena, f->metrics, f->nmetrics, sizeof *v);
    exp_text_label *ls = p->nlabels ? push_arena_alloc(&p->arena, p->nlabels * sizeof *ls) : NULL;
    if (!v || (p->nlabels && !ls))
        return oom(p), NULL;
    for (size_t i = 0; i < p->nlabels; i++) {
        const slabel *l = &p->labels[i];
        ls[i].name = push_arena_str(&p->arena, l->name, l->namelen);
        ls[i].value = push_arena_str(&p->arena, p->vals.p + l->val, l->vallen);
        if (!ls[i].name || !ls[i].value)
            return oom(p), NULL;
    }
    f->metrics = v;
    exp_text_metric *m = &v[f->nmetrics];
    *m = (exp_text_metric){.nlabels = p->nlabels, .labels = ls, .line = p->line};
    p->nonempty += f->nmetrics == 0;
    f->nmetrics++;
    p->nmetrics++;
    return m;
}

/* The metric the sample goes to, as Go's readingValue decides: a new one for a counter,
 * gauge or untyped sample; for a histogram or summary sample, the family's metric with the
 * same label set, created on its first sample. The metric, or NULL (error recorded). */
static exp_text_metric *sample_metric(parser *p) {
    family *f = p->fam;
    if (f->type != REG_HISTOGRAM && f->type != REG_SUMMARY)
        return new_metric(p);
    if (series_key(p) < 0)
        return NULL;
    size_t *at = reg_strmap_get(p->series, p->key.p, p->key.n);
    if (at)
        return &f->metrics[*at];
    at = push_arena_alloc(&p->arena, sizeof *at);
    if (!at)
        return oom(p), NULL;
    *at = f->nmetrics;
    exp_text_metric *m = new_metric(p);
    if (m && reg_strmap_put(p->series, p->key.p, p->key.n, at) != REG_OK)
        return oom(p), NULL;
    return m;
}

/* Appends (a, b) to the arena arrays *av, *bv of n pairs. 0 or -1 (out of memory). */
static int add_pair(parser *p, double **av, double **bv, size_t *n, double a, double b) {
    return push_arena_add_pair(&p->arena, av, bv, n, a, b) == 0 ? 0 : oom(p);
}

/* Records sample value v in metric m by the family's type and the sample's kind. 0 or -1. */
static int store_value(parser *p, exp_text_metric *m, double v) {
    reg_type t = p->fam->type;
    if (t != REG_HISTOGRAM && t != REG_SUMMARY) {
        m->value = v;
    } else if (p->is_count) {
        m->count = v;
        m->has_count = 1;
    } else if (p->is_sum) {
        m->sum = v;
        m->has_sum = 1;
    } else if (!isnan(p->special)) {
        if (t == REG_HISTOGRAM)
            return add_pair(p, &m->bounds, &m->counts, &m->nbuckets, p->special, v);
        return add_pair(p, &m->quantiles, &m->qvalues, &m->nquantiles, p->special, v);
    }
    return 0;
}

/* The timestamp after a value, cur on the blank after the value, and the end of the line.
 * 0 or -1. */
static int read_timestamp(parser *p, exp_text_metric *m) {
    const char *s;
    size_t n;
    int64_t ts;
    if (skip_blanks(p) < 0 || token_until_space(p, &s, &n) < 0)
        return -1;
    if (exp_go_parse_int64(s, n, &ts) != EXP_GO_OK) {
        msg *mm = fail(p);
        msg_bytes(mm, "expected integer as timestamp, got ", 35);
        msg_quote(mm, s, n);
        return -1;
    }
    m->has_timestamp = 1;
    m->timestamp_ms = ts;
    if (token_until_newline(p, false) < 0)
        return -1;
    if (p->tok.n) {
        msg *mm = fail(p);
        msg_bytes(mm, "spurious string after timestamp: ", 33);
        msg_quote(mm, p->tok.p, p->tok.n);
        return -1;
    }
    return 0;
}

/* A sample line, cur on its first byte (not a blank, '#' or newline). Go's readingMetricName,
 * readingLabels, readingValue and startTimestamp. 0 or -1. */
static int sample_line(parser *p) {
    const char *name, *val;
    size_t n, vn;
    double v;
    if (token_name(p, C_MSTART, C_MCONT, &name, &n) < 0)
        return -1;
    if (n == 0)
        return fail_with(p, "invalid metric name");
    if (!reg_valid_metric_name(name, n))
        return fail_with(p, "metric name longer than %d bytes", REG_MAX_NAME);
    if (family_for(p, name, n) < 0)
        return -1;
    if (!p->fam->typed) {
        p->fam->typed = true;
        p->fam->type = REG_UNTYPED;
    }
    if (skip_blanks_if_blank(p) < 0)
        return -1;
    p->nlabels = 0;
    p->vals.n = 0;
    p->special = NAN;
    if (p->cur == '{') {
        int r;
        while ((r = one_label(p)) > 0)
            ;
        if (r < 0)
            return -1;
    }
    exp_text_metric *m = sample_metric(p);
    if (!m || token_until_space(p, &val, &vn) < 0)
        return -1;
    if (!text_float(val, vn, &v)) {
        msg *mm = fail(p);
        msg_bytes(mm, "expected float as value, got ", 29);
        msg_quote(mm, val, vn);
        return -1;
    }
    if (store_value(p, m, v) < 0)
        return -1;
    return p->cur == '\n' ? 0 : read_timestamp(p, m);
}

/* ---- the whole body ------------------------------------------------------------------------- */

/* Byte classes from the registry's name rules: a byte starts a name when it is one, and
 * continues one when "a" followed by it is one. Cannot fail. */
static void classes(parser *p) {
    for (int c = 1; c < 256; c++) {
        char one = (char)c, two[2] = {'a', (char)c};
        p->cls[c] = (unsigned char)((reg_valid_metric_name(&one, 1) ? C_MSTART : 0) |
                                    (reg_valid_metric_name(two, 2) ? C_MCONT : 0) |
                                    (reg_valid_label_name(&one, 1) ? C_LSTART : 0) |
                                    (reg_valid_label_name(two, 2) ? C_LCONT : 0));
    }
}

/* Every line, as Go's startOfLine loop. 0 or -1. */
static int parse_lines(parser *p) {
    for (;;) {
        p->line++;
        if (skip_blanks_raw(p) < 0)
            return p->status ? -1 : 0; /* the end of the input between lines: done */
        int r = 0;
        if (p->cur == '#')
            r = comment_line(p);
        else if (p->cur != '\n')
            r = sample_line(p);
        if (r < 0)
            return -1;
    }
}

/* The result from the families built: those with samples, in order. 0 or -1. */
static int build_result(parser *p, exp_text_result *out) {
    exp_text_family *v = NULL;
    if (p->nonempty) {
        v = push_arena_alloc(&p->arena, p->nonempty * sizeof *v);
        if (!v)
            return oom(p);
    }
    size_t k = 0;
    for (size_t i = 0; i < p->nfams; i++) {
        const family *f = p->fams[i];
        if (f->nmetrics == 0)
            continue;
        assert(v != NULL && k < p->nonempty); /* nonempty counts the families with metrics */
        v[k++] = (exp_text_family){.name = f->name,
                                   .help = f->help,
                                   .type = f->type,
                                   .nmetrics = f->nmetrics,
                                   .metrics = f->metrics};
    }
    out->families = v;
    out->nfamilies = k;
    out->arena = p->arena;
    p->arena = NULL;
    return 0;
}

/* Frees the parser's own memory (not the arena once handed out). Cannot fail. */
static void parser_done(parser *p) {
    push_arena_free(p->arena);
    reg_strmap_free(p->byname);
    reg_strmap_free(p->series);
    free(p->labels);
    free(p->order);
    free(p->dup);
    free(p->vals.p);
    free(p->tok.p);
    free(p->key.p);
}

/* See textparse.h. */
int exp_text_parse(const char *buf, size_t len, const exp_text_limits *lim, exp_text_result *out,
                   char *err, size_t errlen) {
    parser p = {.buf = buf, .len = len, .cur = -1, .err = {err, err ? errlen : 0, 0}};
    memset(out, 0, sizeof *out);
    if (p.err.cap)
        err[0] = 0;
    if (lim) {
        p.max_labels = lim->max_labels;
        p.max_families = lim->max_families;
        p.max_metrics = lim->max_metrics;
    }
    classes(&p);
    p.byname = reg_strmap_create(0);
    p.series = reg_strmap_create(REG_STRMAP_COPY);
    if (!p.byname || !p.series)
        oom(&p);
    else if (parse_lines(&p) == 0)
        build_result(&p, out);
    parser_done(&p);
    if (p.status)
        memset(out, 0, sizeof *out);
    return p.status;
}

/* See textparse.h. */
void exp_text_free(exp_text_result *r) {
    if (!r)
        return;
    push_arena_free(r->arena);
    memset(r, 0, sizeof *r);
}
