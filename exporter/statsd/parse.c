/* statsd/parse.c - the StatsD line parser and the datagram/stream line splitters.
 *
 * Written to match prometheus/statsd_exporter's pkg/line behaviour (see parse.h for
 * the few deliberate differences), including Go's strconv number syntax (gostrconv.h), since
 * clients rely on whatever statsd_exporter accepts. Everything works on (pointer, length) ranges of
 * the caller's buffer; nothing is allocated. A line is read once up front into a line_index
 * (its ':' and '|' positions, whether it is ASCII), which the later steps use instead of
 * searching the line again.
 */
#include "statsd/parse.h"

#include "gostrconv.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[EXP_STATSD_ERR_COUNT] = {
    [EXP_STATSD_ERR_MALFORMED_LINE] = "malformed_line",
    [EXP_STATSD_ERR_MIXED_TAGGING_STYLES] = "mixed_tagging_styles",
    [EXP_STATSD_ERR_NOT_ENOUGH_PARTS] = "not_enough_parts_after_colon",
    [EXP_STATSD_ERR_INVALID_EXTENDED_AGG] = "invalid_extended_aggregate_type",
    [EXP_STATSD_ERR_EMPTY_NAME] = "empty_name",
    [EXP_STATSD_ERR_MALFORMED_COMPONENT] = "malformed_component",
    [EXP_STATSD_ERR_MALFORMED_VALUE] = "malformed_value",
    [EXP_STATSD_ERR_INVALID_SAMPLE_FACTOR] = "invalid_sample_factor",
    [EXP_STATSD_ERR_MALFORMED_CONTAINER_ID] = "malformed_container_id",
    [EXP_STATSD_ERR_MALFORMED_TIMESTAMP] = "malformed_timestamp",
    [EXP_STATSD_ERR_ILLEGAL_EVENT] = "illegal_event",
    [EXP_STATSD_ERR_UNSUPPORTED_SET] = "unsupported_set",
    [EXP_STATSD_ERR_ILLEGAL_NEGATIVE_COUNTER] = "illegal_negative_counter",
    [EXP_STATSD_ERR_TOO_MANY_TAGS] = "too_many_tags",
    [EXP_STATSD_ERR_TOO_MANY_SAMPLES] = "too_many_samples",
    [EXP_STATSD_ERR_OUT_OF_SPACE] = "out_of_space",
    [EXP_STATSD_ERR_LINE_TOO_LONG] = "line_too_long",
    [EXP_STATSD_ERR_INVALID_SAMPLE_RATE] = "invalid_sample_rate",
};

/* The label value of reason r, "unknown" out of range (parse.h). Cannot fail. */
const char *exp_statsd_reason_name(exp_statsd_reason r) {
    if ((unsigned)r >= EXP_STATSD_ERR_COUNT)
        return "unknown";
    return reason_names[r];
}

/* Every tag style on (parse.h). Cannot fail. */
exp_statsd_flags exp_statsd_flags_default(void) {
    return (exp_statsd_flags){
        .dogstatsd = true, .influxdb = true, .librato = true, .signalfx = true};
}

/* A decimal digit (ASCII). Cannot fail. */
static bool is_digit(int c) {
    return c >= '0' && c <= '9';
}

/* ---- the line index -------------------------------------------------------------------------- */

/* How many '|' after the first ':' the index records; lines with more (rare: a sample has at
 * most 8 components) are searched with memchr beyond the last one recorded. */
#define INDEX_BARS 16

/* What the parser splits a line on, found in one pass over it (index_line). */
typedef struct {
    const char *colon;            /* the first ':', or NULL */
    const char *colon2;           /* the first ':' after it, or NULL */
    const char *bars[INDEX_BARS]; /* the first INDEX_BARS '|' after the first ':' */
    size_t nbars;
    bool all_bars; /* bars holds every '|' after the first ':' */
    bool ascii;    /* no byte >= 0x80, so valid UTF-8 without checking */
    bool dog;      /* a `|#` (DogStatsD tags) after the first ':' */
} line_index;

/* One 0x80 bit in every byte of x that is zero, and none elsewhere (no borrow between bytes,
 * unlike the shorter (x - 0x01..) & ~x form). Cannot fail. */
static uint64_t zero_bytes(uint64_t x) {
    const uint64_t low7 = UINT64_C(0x7F7F7F7F7F7F7F7F);
    return ~(((x & low7) + low7) | x | low7);
}

/* The 8 bytes at p as a word with the first byte in the lowest bits. Cannot fail. */
static uint64_t load_word(const char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* Records the ':' and '|' of w, the line's bytes from s[i] on (fewer than 8 when the top
 * bytes are zero), lowest address first. Cannot fail. */
static void index_word(line_index *ix, const char *s, size_t n, size_t i, uint64_t w) {
    const uint64_t colons = UINT64_C(0x0101010101010101) * ':';
    const uint64_t bars = UINT64_C(0x0101010101010101) * '|';
    for (uint64_t m = zero_bytes(w ^ colons) | zero_bytes(w ^ bars); m; m &= m - 1) {
        size_t j = i + (size_t)__builtin_ctzll(m) / 8;
        if (s[j] == ':') {
            if (!ix->colon)
                ix->colon = s + j;
            else if (!ix->colon2)
                ix->colon2 = s + j;
        } else if (ix->colon) { /* a '|' in the name is part of the name */
            if (ix->nbars < INDEX_BARS)
                ix->bars[ix->nbars++] = s + j;
            else
                ix->all_bars = false;
            if (j + 1 < n && s[j + 1] == '#')
                ix->dog = true;
        }
    }
}

/* The index of line s[0..n). Eight bytes at a time: most words hold no ':' or '|', and those
 * that do are visited only at those bytes. Cannot fail. */
static void index_line(line_index *ix, const char *s, size_t n) {
    ix->colon = ix->colon2 = NULL;
    ix->nbars = 0;
    ix->all_bars = true;
    ix->dog = false;
    uint64_t high = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = load_word(s + i);
        high |= w;
        index_word(ix, s, n, i, w);
    }
    if (i < n) {
        /* The rest, padded with NUL bytes (which match neither byte): the line's last 8 bytes
         * shifted down past those already seen, or a line shorter than 8 copied. */
        uint64_t w = 0;
        if (n >= 8) {
            w = load_word(s + n - 8) >> (8 * (8 - (n - i)));
        } else {
            memcpy(&w, s, n);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            w = __builtin_bswap64(w);
#endif
        }
        high |= w;
        index_word(ix, s, n, i, w);
    }
    ix->ascii = (high & UINT64_C(0x8080808080808080)) == 0;
}

/* The first '|' in [from, end), both after the line's first ':'; NULL when there is none.
 * inline: called several times per sample, and GCC left it a call (~9 ns per line more).
 * Cannot fail. */
static inline const char *bar_in(const line_index *ix, const char *from, const char *end) {
    for (size_t i = 0; i < ix->nbars; i++)
        if (ix->bars[i] >= from)
            return ix->bars[i] < end ? ix->bars[i] : NULL;
    if (ix->all_bars || from >= end)
        return NULL;
    return memchr(from, '|', (size_t)(end - from)); /* past the last '|' recorded */
}

/* ---- the line parser ------------------------------------------------------------------------ */

typedef struct {
    const line_index *ix;
    const exp_statsd_flags *fl;
    const exp_statsd_out *out;
    exp_statsd_stats *st;
    exp_statsd_str name;
    size_t nlabels;
    size_t used; /* scratch bytes in use */
    size_t nev;
    size_t nsamples;
    unsigned name_tag_errors; /* malformed tags in the name */
    exp_statsd_shape *shape;  /* the last event's shape, or NULL */
} parser;

/* What the one-pass scans of names, tag lists and tag keys look for, one table lookup a byte:
 * the bytes that split names and tag lists, and those that may stay in an escaped tag key. */
enum { BC_KEY = 1, BC_LBRACKET = 2, BC_RBRACKET = 4, BC_HASH = 8, BC_COMMA = 16 };
#define BC_RANGE(a, b) [a... b] = BC_KEY
static const uint8_t byte_class[256] = {
    BC_RANGE('a', 'z'),  BC_RANGE('A', 'Z'),  BC_RANGE('0', '9'), ['_'] = BC_KEY,
    ['['] = BC_LBRACKET, [']'] = BC_RBRACKET, ['#'] = BC_HASH,    [','] = BC_COMMA};
#undef BC_RANGE

/* 1 when c may stay in an escaped tag key ([A-Za-z0-9_]). Cannot fail. */
static bool label_char(unsigned char c) {
    return byte_class[c] & BC_KEY;
}

/* Length of the UTF-8 sequence starting with c (the line was validated). Cannot fail. */
static size_t utf8_seq_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* statsd_exporter's EscapeMetricName for tag keys: a leading digit gets a '_' prefix, every
 * other character (UTF-8 rune) outside [A-Za-z0-9_] becomes '_', and a run of '-' becomes a
 * single '_'. Unchanged keys are not copied. Returns 0, or EXP_STATSD_ERR_OUT_OF_SPACE. */
static int escape_key(parser *p, const char *k, size_t n, exp_statsd_str *res) {
    bool need = is_digit(k[0]);
    for (size_t i = 0; !need && i < n; i++)
        need = !label_char((unsigned char)k[i]);
    if (!need) {
        *res = (exp_statsd_str){k, n};
        return 0;
    }
    if (p->out->scratch_cap - p->used < n + 1)
        return EXP_STATSD_ERR_OUT_OF_SPACE;
    char *start = p->out->scratch + p->used, *o = start;
    if (is_digit(k[0]))
        *o++ = '_';
    bool prev_dash = false;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)k[i];
        if (label_char(c)) {
            *o++ = (char)c;
            prev_dash = false;
            i++;
            continue;
        }
        if (c == '-' && prev_dash) {
            i++;
            continue;
        }
        *o++ = '_';
        prev_dash = c == '-';
        i += utf8_seq_len(c);
    }
    *res = (exp_statsd_str){start, (size_t)(o - start)};
    p->used += (size_t)(o - start);
    return 0;
}

/* Set label key=value; a key already present gets the new value (the last one wins, as with
 * statsd_exporter's map). Returns 0, EXP_STATSD_ERR_TOO_MANY_TAGS or ..._OUT_OF_SPACE. */
static int set_label(parser *p, const char *k, size_t kn, bool escape, const char *v, size_t vn) {
    size_t mark = p->used;
    exp_statsd_str name = {k, kn};
    if (escape) {
        int r = escape_key(p, k, kn, &name);
        if (r)
            return r;
    }
    for (size_t i = 0; i < p->nlabels; i++) {
        exp_statsd_label *l = &p->out->labels[i];
        if (l->name.len == name.len && memcmp(l->name.ptr, name.ptr, name.len) == 0) {
            l->value = (exp_statsd_str){v, vn};
            p->used = mark;
            return 0;
        }
    }
    if (p->nlabels >= p->out->labels_cap) {
        p->used = mark;
        return EXP_STATSD_ERR_TOO_MANY_TAGS;
    }
    p->out->labels[p->nlabels++] = (exp_statsd_label){name, {v, vn}};
    return 0;
}

/* One `key<sep>value` tag t[0..n) whose first sep is at s (NULL: none); clean: its key is
 * known to need no escaping. Malformed tags are skipped and counted in *terr. Returns 0, or
 * set_label's error (too_many_tags, out_of_space). */
static int parse_tag(parser *p, const char *t, size_t n, const char *s, bool clean,
                     unsigned *terr) {
    if (!s) {
        (*terr)++;
        return 0;
    }
    size_t kn = (size_t)(s - t), vn = n - kn - 1;
    if (kn == 0 || vn == 0) {
        (*terr)++;
        return 0;
    }
    return set_label(p, t, kn, !clean || is_digit(t[0]), s + 1, vn);
}

/* A ','-separated tag list; an empty piece is a tag error except after a final ','.
 * trim_hash drops one leading '#' per tag (DogStatsD clients that prefix every tag). One pass:
 * each tag's key is read up to its first sep (noting whether it needs escaping), its value up
 * to the next ','. Returns 0, or the first error of parse_tag. */
static int parse_tag_list(parser *p, const char *s, size_t n, char sep, bool trim_hash,
                          unsigned *terr) {
    size_t start = 0;
    while (start < n) {
        const char *t = s + start;
        if (trim_hash && s[start] == '#') /* never sep: sep is ':' or '=' */
            t++;
        const char *sp = NULL;
        unsigned clean = BC_KEY;
        size_t stop = (size_t)(t - s);
        for (; stop < n; stop++) {
            unsigned char c = (unsigned char)s[stop];
            if (c == (unsigned char)sep || c == ',')
                break;
            clean &= byte_class[c];
        }
        if (stop < n && s[stop] == sep) {
            sp = s + stop;
            while (stop < n && s[stop] != ',')
                stop++;
        }
        int r = parse_tag(p, t, (size_t)(s + stop - t), sp, clean != 0, terr);
        if (r)
            return r;
        if (stop == n)
            break;
        start = stop + 1;
    }
    return 0;
}

/* The name before the first ':' with its SignalFx, Librato or InfluxDB tags taken out.
 * Returns 0 or a line-level reason. */
static int parse_name(parser *p, const char *name, size_t n) {
    unsigned terr = 0;
    int r = 0;
    p->name = (exp_statsd_str){name, n};
    /* One pass for the first '[' and ']' (SignalFx) and the first byte that starts Librato
     * ('#') or InfluxDB (',') tags, each looked for only when its style is on. */
    unsigned want = (p->fl->signalfx ? BC_LBRACKET | BC_RBRACKET : 0) |
                    (p->fl->librato ? BC_HASH : 0) | (p->fl->influxdb ? BC_COMMA : 0);
    const char *lb = NULL, *rb = NULL, *tag = NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned c = byte_class[(unsigned char)name[i]] & want;
        if (!c)
            continue;
        if (c == BC_LBRACKET && !lb)
            lb = name + i;
        else if (c == BC_RBRACKET && !rb)
            rb = name + i;
        else if ((c & (BC_HASH | BC_COMMA)) && !tag)
            tag = name + i;
    }
    if (lb && rb && lb < rb) {
        r = parse_tag_list(p, lb + 1, (size_t)(rb - lb - 1), '=', false, &terr);
        size_t a = (size_t)(lb - name), b = n - (size_t)(rb - name) - 1;
        if (r) {
            /* refused below */
        } else if (b == 0) {
            p->name.len = a;
        } else if (a == 0) {
            p->name = (exp_statsd_str){rb + 1, b};
        } else if (p->out->scratch_cap - p->used < a + b) {
            r = EXP_STATSD_ERR_OUT_OF_SPACE;
        } else {
            char *o = p->out->scratch + p->used;
            memcpy(o, name, a);
            memcpy(o + a, rb + 1, b);
            p->used += a + b;
            p->name = (exp_statsd_str){o, a + b};
        }
    } else if (lb || rb) { /* one bracket, or "]...[": not SignalFx tags, name as sent */
        terr++;
    } else if (tag) {
        size_t i = (size_t)(tag - name);
        r = parse_tag_list(p, tag + 1, n - i - 1, '=', false, &terr);
        p->name.len = i;
    }
    p->st->tag_errors += terr;
    p->name_tag_errors = terr;
    return r;
}

/* What the parts after the type (`|@rate`, `|#tags`, `|c:id`, `|T<ts>`, unknown fields) do to
 * a sample. */
typedef struct {
    int fatal;               /* reason dropping the sample, or -1 */
    unsigned bad_rates;      /* unparsable rates, counted but kept as rate 1 */
    bool rate_out_of_range;  /* a rate that is a number outside (0, 1]: NaN, Inf, < 0, > 1 */
    unsigned bad_timestamps; /* unparsable `|T`, counted; the sample is kept */
    unsigned unknown;        /* fields abacus does not know, skipped */
    unsigned tag_errors;
    unsigned nrates;
    double rates[8]; /* every `@` rate in order (0 and unparsable already made 1) */
} parts_outcome;

/* The parts after a sample's type (`|@rate`, `|#tags`, `|c:id`, `|T<ts>`, unknown fields)
 * into *o: the first fatal reason (o->fatal, -1 for none) and what was skipped. Cannot fail. */
static void parse_parts(parser *p, const char *s, size_t n, parts_outcome *o) {
    o->fatal = -1;
    o->bad_rates = o->bad_timestamps = o->unknown = o->tag_errors = o->nrates = 0;
    o->rate_out_of_range = false;
    /* statsd_exporter refuses any empty part before looking at the others */
    for (const char *q = s;;) {
        const char *bar = bar_in(p->ix, q, s + n);
        if ((bar ? bar : s + n) == q) {
            o->fatal = EXP_STATSD_ERR_MALFORMED_COMPONENT;
            return;
        }
        if (!bar)
            break;
        q = bar + 1;
    }
    size_t start = 0;
    while (start < n) {
        const char *bar = bar_in(p->ix, s + start, s + n);
        size_t stop = bar ? (size_t)(bar - s) : n;
        const char *c = s + start;
        size_t cn = stop - start;
        int r = 0;
        switch (c[0]) {
        case '@': {
            double f = 0;
            int pr = exp_go_parse_float(c + 1, cn - 1, &f);
            if (pr == EXP_GO_SYNTAX) {
                o->bad_rates++; /* statsd_exporter keeps such a sample at rate 1 */
                f = 1;
            } else if (f == 0) {
                f = 1; /* statsd_exporter: rate 0 means unsampled */
            }
            /* A rate is a probability. Anything else (NaN, ±Inf, also Go's out-of-range ±Inf,
             * negative, above 1) would silently scale a counter or drop an observation. */
            if (!(f > 0 && f <= 1))
                o->rate_out_of_range = true;
            if (o->nrates < sizeof o->rates / sizeof o->rates[0])
                o->rates[o->nrates++] = f;
            break;
        }
        case '#':
            if (p->fl->dogstatsd)
                r = parse_tag_list(p, c + 1, cn - 1, ':', true, &o->tag_errors);
            break;
        case 'c':
            /* `c:<id>` is the container ID; `c` or `c:` alone is a broken one. Any other field
             * starting with 'c' (`card:low` from hot-shots) is an extension we do not know. */
            if (cn > 2 && c[1] == ':')
                r = set_label(p, "container_id", 12, false, c + 2, cn - 2);
            else if (cn == 1 || c[1] == ':')
                r = EXP_STATSD_ERR_MALFORMED_CONTAINER_ID;
            else
                o->unknown++;
            break;
        case 'T': { /* DogStatsD timestamp: checked, then ignored (a bad one only loses itself) */
            int64_t ts;
            if (exp_go_parse_int64(c + 1, cn - 1, &ts) != EXP_GO_OK)
                o->bad_timestamps++;
            break;
        }
        default:
            /* DogStatsD keeps adding fields; dropping samples for them loses a client's
             * metrics wholesale, so they are skipped and counted instead. */
            o->unknown++;
            break;
        }
        if (r) {
            o->fatal = r;
            return;
        }
        if (!bar)
            break;
        start = stop + 1;
    }
}

/* The part of a sample after its value: "type[|parts...]". */
typedef struct {
    size_t ncomp; /* '|'-separated components including the value */
    exp_statsd_str type;
    const char *parts; /* after the type's '|', or NULL */
    size_t parts_len;
    bool done; /* outcome computed (shared by all values of an extended-aggregation line) */
    parts_outcome oc;
} sample_suffix;

/* The suffix `|type|parts` (s[0..n)) of a sample, its parts not parsed yet. Cannot fail. */
static void suffix_init(const parser *p, sample_suffix *x, const char *s, size_t n) {
    x->ncomp = 2;
    x->done = false;
    x->parts = NULL;
    x->parts_len = 0;
    const char *bar = bar_in(p->ix, s, s + n);
    x->type = (exp_statsd_str){s, bar ? (size_t)(bar - s) : n};
    if (bar) {
        x->parts = bar + 1;
        x->parts_len = n - (size_t)(bar - s) - 1;
        for (const char *q = bar; q; q = bar_in(p->ix, q + 1, s + n))
            x->ncomp++;
    }
}

/* 1 when the type field t is exactly lit. Cannot fail. */
static bool type_is(exp_statsd_str t, const char *lit) {
    size_t n = strlen(lit);
    return t.len == n && memcmp(t.ptr, lit, n) == 0;
}

/* int(1/rate) the way Go computes it on amd64: NaN and values outside int64 give a negative
 * count, i.e. no observation at all. Cannot fail. */
static uint64_t observe_count(double rate) {
    double r = 1.0 / rate;
    if (!(r >= 1.0) || r >= 9223372036854775808.0)
        return 0;
    return (uint64_t)r;
}

/* One event (its kind, value, from_ms, repeat) for the current name; counted as
 * too_many_samples when the storage is full. Returns whether it was stored. Cannot fail. */
static bool emit(parser *p, const exp_statsd_event *ev) {
    if (p->nev >= p->out->events_cap) {
        p->st->errors[EXP_STATSD_ERR_TOO_MANY_SAMPLES]++;
        return false;
    }
    /* field by field: the caller's ev has no name or labels yet */
    exp_statsd_event *e = &p->out->events[p->nev++];
    e->name = p->name;
    e->kind = ev->kind;
    e->from_ms = ev->from_ms;
    e->value = ev->value;
    e->repeat = ev->repeat;
    return true;
}

/* What a sample's type makes of its value (exp_statsd_shape.type). */
enum { VT_COUNTER, VT_GAUGE, VT_OBSERVER };

/* 1 when a value was sent with a sign: a gauge's is then a change. Cannot fail. */
static bool value_relative(const char *val, size_t vn) {
    return vn > 0 && (val[0] == '+' || val[0] == '-');
}

/* The shape of a sample of type t with the given rates (bad_rate: one is out of range) into
 * *sh. Returns -1, or the reason the type or its rates refuse the sample. Cannot fail. */
static int sample_shape(exp_statsd_str t, bool bad_rate, const double *rates, unsigned nrates,
                        exp_statsd_shape *sh) {
    sh->repeat = 1;
    sh->ms = false;
    if (type_is(t, "c")) {
        if (bad_rate)
            return EXP_STATSD_ERR_INVALID_SAMPLE_RATE;
        sh->type = VT_COUNTER;
    } else if (type_is(t, "g")) {
        sh->type = VT_GAUGE; /* a gauge ignores its rate, as in statsd_exporter */
    } else if (type_is(t, "ms") || type_is(t, "h") || type_is(t, "d")) {
        sh->repeat = nrates ? observe_count(rates[nrates - 1]) : 1;
        if (bad_rate || sh->repeat == 0) /* repeat 0: 1/rate does not fit a count */
            return EXP_STATSD_ERR_INVALID_SAMPLE_RATE;
        sh->type = VT_OBSERVER;
        sh->ms = t.len == 2;
    } else {
        return type_is(t, "s") ? EXP_STATSD_ERR_UNSUPPORTED_SET : EXP_STATSD_ERR_ILLEGAL_EVENT;
    }
    sh->nrates = (uint8_t)(nrates < 2 ? nrates : 2);
    sh->rate = nrates ? rates[0] : 1;
    return -1;
}

/* The event of value v (relative: sent with a sign) for a sample of shape sh and its rates
 * into *ev. Returns -1, or the reason the value refuses the sample (a counter going down).
 * The one rule for parsing and replaying. Cannot fail. */
static int sample_event(const exp_statsd_shape *sh, const double *rates, unsigned nrates,
                        bool relative, double v, exp_statsd_event *ev) {
    exp_statsd_kind kind = EXP_STATSD_OBSERVER;
    if (sh->type == VT_COUNTER) {
        for (unsigned i = 0; i < nrates; i++)
            v /= rates[i];
        if (v < 0)
            return EXP_STATSD_ERR_ILLEGAL_NEGATIVE_COUNTER;
        kind = EXP_STATSD_COUNTER;
    } else if (sh->type == VT_GAUGE) {
        /* The value is applied as sent; with a sign it is a change. */
        kind = relative ? EXP_STATSD_GAUGE_DELTA : EXP_STATSD_GAUGE;
    } else if (sh->ms) {
        v /= 1000;
    }
    ev->kind = kind;
    ev->from_ms = sh->ms;
    ev->value = v;
    ev->repeat = sh->repeat;
    return -1;
}

/* What parsing a sample with suffix x counted besides the sample, into sh: what a replay
 * counts again (exp_statsd_replay_count). Cannot fail. */
static void shape_counts(const parser *p, const sample_suffix *x, exp_statsd_shape *sh) {
    sh->tagged = p->nlabels > 0;
    sh->tag_errors = p->name_tag_errors;
    sh->bad_rates = sh->bad_timestamps = sh->unknown = 0;
    if (x->parts) {
        sh->tag_errors += x->oc.tag_errors;
        sh->bad_rates = x->oc.bad_rates;
        sh->bad_timestamps = x->oc.bad_timestamps;
        sh->unknown = x->oc.unknown;
    }
    sh->counted_more = sh->tag_errors || sh->unknown || sh->bad_rates || sh->bad_timestamps;
}

/* One sample: value val[0..vn) with suffix x (NULL: the sample had no '|'): checks it as
 * statsd_exporter does and emits its event, or counts why not. Cannot fail. */
static void do_sample(parser *p, const char *val, size_t vn, sample_suffix *x) {
    exp_statsd_stats *st = p->st;
    st->samples++;
    p->nsamples++;
    if (!x || x->ncomp > 8) {
        st->errors[EXP_STATSD_ERR_MALFORMED_COMPONENT]++;
        return;
    }
    bool relative = value_relative(val, vn);
    double v;
    if (exp_go_parse_float(val, vn, &v) != EXP_GO_OK) {
        st->errors[EXP_STATSD_ERR_MALFORMED_VALUE]++;
        return;
    }
    const double *rates = NULL;
    unsigned nrates = 0;
    bool bad_rate = false;
    if (x->parts) {
        if (!x->done) {
            parse_parts(p, x->parts, x->parts_len, &x->oc);
            x->done = true;
        }
        const parts_outcome *oc = &x->oc;
        st->tag_errors += oc->tag_errors;
        st->errors[EXP_STATSD_ERR_INVALID_SAMPLE_FACTOR] += oc->bad_rates;
        if (oc->fatal >= 0) {
            st->errors[oc->fatal]++;
            return;
        }
        st->errors[EXP_STATSD_ERR_MALFORMED_TIMESTAMP] += oc->bad_timestamps;
        st->unknown_fields += oc->unknown;
        rates = oc->rates;
        nrates = oc->nrates;
        bad_rate = oc->rate_out_of_range;
    }
    if (p->nlabels > 0)
        st->tags++;
    /* Written in place: only a line of one sample is replayable, so the last one's will do. */
    // cppcheck-suppress uninitvar ; sample_shape writes what sample_event reads
    exp_statsd_shape local, *sh = p->shape ? p->shape : &local;
    exp_statsd_event ev; /* sample_event sets what emit reads */
    int r = sample_shape(x->type, bad_rate, rates, nrates, sh);
    if (r < 0)
        r = sample_event(sh, rates, nrates, relative, v, &ev);
    if (r >= 0) {
        st->errors[r]++;
        return;
    }
    if (emit(p, &ev) && p->shape)
        shape_counts(p, x, sh);
}

/* A sample "value|type|parts" on its own (not extended aggregation). Cannot fail. */
static void do_plain_sample(parser *p, const char *s, size_t n) {
    const char *bar = bar_in(p->ix, s, s + n);
    if (!bar) {
        do_sample(p, s, n, NULL);
        return;
    }
    /* Not zeroed (its outcome is ~150 bytes, per sample): suffix_init sets what do_sample
     * reads before the parts are parsed, and parse_parts the outcome. */
    sample_suffix x;
    suffix_init(p, &x, bar + 1, n - (size_t)(bar - s) - 1);
    do_sample(p, s, (size_t)(bar - s), &x);
}

/* 1 when c may be in the key of a DogStatsD extension field. Cannot fail. */
static bool ext_key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' || c == '-';
}

/* A DogStatsD extension field `|key:value` (`|card:low`, `|e:it-false`): such a line is one
 * sample, as with `|#` tags. Without this, statsd_exporter's splitting of `a:1|c:2|c` into
 * samples would cut `a:1|c|card:low` at its ':' and refuse the rest. What can also be a
 * sample boundary stays one, as in statsd_exporter: a type before the ':' (`|c:` is a
 * container ID or a counter followed by a sample), or a one-letter key before a number
 * (`|x:4`, an unknown type followed by a sample). */
static bool has_extension_field(const line_index *ix, const char *s, size_t n) {
    for (const char *q = bar_in(ix, s, s + n); q; q = bar_in(ix, q + 1, s + n)) {
        const char *k = q + 1, *e = k;
        while (e < s + n && ext_key_char(*e))
            e++;
        if (e == k || e == s + n || *e != ':' || is_digit(*k))
            continue;
        exp_statsd_str key = {k, (size_t)(e - k)};
        if (type_is(key, "c") || type_is(key, "g") || type_is(key, "ms") || type_is(key, "h") ||
            type_is(key, "d") || type_is(key, "s"))
            continue;
        char v = e + 1 < s + n ? e[1] : '\0';
        if (key.len >= 2 || !(is_digit(v) || v == '+' || v == '-' || v == '.'))
            return true;
    }
    return false;
}

/* One line into events (parse.h): returns how many; 0 when refused (counted in stats). Cannot
 * fail. */
size_t exp_statsd_parse_line(const exp_statsd_flags *flags, const char *line, size_t len,
                             const exp_statsd_out *out, exp_statsd_stats *stats) {
    return exp_statsd_parse_line_shape(flags, line, len, out, stats, NULL);
}

/* exp_statsd_parse_line, with the shape of the line's last event (parse.h). Cannot fail. */
size_t exp_statsd_parse_line_shape(const exp_statsd_flags *flags, const char *line, size_t len,
                                   const exp_statsd_out *out, exp_statsd_stats *stats,
                                   exp_statsd_shape *shape) {
    exp_statsd_flags defaults = exp_statsd_flags_default();
    line_index ix;
    parser p = {
        .ix = &ix, .fl = flags ? flags : &defaults, .out = out, .st = stats, .shape = shape};
    if (shape)
        shape->replayable = false;
    if (len == 0)
        return 0;
    index_line(&ix, line, len);
    const char *end = line + len;
    const char *colon = ix.colon;
    if (!colon || colon == line ||
        (!ix.ascii && !exp_go_utf8_valid((const unsigned char *)line, len))) {
        stats->errors[EXP_STATSD_ERR_MALFORMED_LINE]++;
        return 0;
    }
    int r = parse_name(&p, line, (size_t)(colon - line));
    if (r) {
        stats->errors[r]++;
        return 0;
    }
    const char *rest = colon + 1;
    size_t rn = (size_t)(end - rest);
    bool dog = ix.dog;
    if (dog && p.nlabels > 0) {
        stats->errors[EXP_STATSD_ERR_MIXED_TAGGING_STYLES]++;
        return 0;
    }
    const char *bar = bar_in(&ix, rest, end);
    if (!bar) {
        stats->errors[EXP_STATSD_ERR_NOT_ENOUGH_PARTS]++;
        return 0;
    }
    /* several values before the first '|': DogStatsD extended aggregation */
    bool ext = ix.colon2 && ix.colon2 < bar;
    sample_suffix x; /* set by suffix_init, used only for extended aggregation */
    if (ext) {
        suffix_init(&p, &x, bar + 1, (size_t)(end - bar - 1));
        if (!type_is(x.type, "ms") && !type_is(x.type, "h") && !type_is(x.type, "d")) {
            stats->errors[EXP_STATSD_ERR_INVALID_EXTENDED_AGG]++;
            return 0;
        }
    }
    if (p.name.len == 0) {
        stats->errors[EXP_STATSD_ERR_EMPTY_NAME]++;
        return 0;
    }

    if (ext) {
        const char *v = rest;
        /* the index has the first ':' of rest; the rare further ones are searched for */
        for (const char *c = ix.colon2;; c = memchr(v, ':', (size_t)(bar - v))) {
            const char *ve = c ? c : bar;
            do_sample(&p, v, (size_t)(ve - v), &x);
            if (!c)
                break;
            v = c + 1;
        }
    } else if (dog || has_extension_field(&ix, rest, rn)) {
        do_plain_sample(&p, rest, rn); /* ':' may appear in tag and field values */
    } else {
        const char *s = rest;
        for (const char *c = ix.colon2;; c = memchr(s, ':', (size_t)(end - s))) {
            const char *se = c ? c : end;
            do_plain_sample(&p, s, (size_t)(se - s));
            if (!c)
                break;
            s = c + 1;
        }
    }
    for (size_t i = 0; i < p.nev; i++) {
        out->events[i].labels = out->labels;
        out->events[i].nlabels = p.nlabels;
    }
    if (shape)
        shape->replayable = p.nev == 1 && p.nsamples == 1 && shape->nrates < 2;
    return p.nev;
}

/* The event of a replayable line with another value (parse.h). Cannot fail. */
bool exp_statsd_replay(const exp_statsd_shape *sh, const char *val, size_t vn,
                       exp_statsd_event *ev) {
    double v;
    if (!sh->replayable || exp_go_parse_float(val, vn, &v) != EXP_GO_OK)
        return false;
    return sample_event(sh, &sh->rate, sh->nrates, value_relative(val, vn), v, ev) < 0;
}

/* What parsing a replayed line counts (parse.h). Cannot fail. */
void exp_statsd_replay_count(const exp_statsd_shape *sh, exp_statsd_stats *stats) {
    stats->samples++;
    stats->tags += sh->tagged;
    if (!sh->counted_more)
        return;
    stats->tag_errors += sh->tag_errors;
    stats->unknown_fields += sh->unknown;
    stats->errors[EXP_STATSD_ERR_INVALID_SAMPLE_FACTOR] += sh->bad_rates;
    stats->errors[EXP_STATSD_ERR_MALFORMED_TIMESTAMP] += sh->bad_timestamps;
}

/* ---- splitters ---------------------------------------------------------------------------- */

/* A datagram's line iterator (parse.h). Cannot fail. */
void exp_statsd_packet_init(exp_statsd_packet *it, const char *buf, size_t len) {
    it->p = buf;
    it->end = buf + len;
    it->done = false;
}

/* The next line of a datagram (parse.h); false at its end. Cannot fail. */
bool exp_statsd_packet_next(exp_statsd_packet *it, exp_statsd_str *line) {
    if (it->done)
        return false;
    size_t left = (size_t)(it->end - it->p);
    const char *nl = left ? memchr(it->p, '\n', left) : NULL;
    if (!nl) {
        *line = (exp_statsd_str){it->p, left};
        it->done = true;
        return true;
    }
    *line = (exp_statsd_str){it->p, (size_t)(nl - it->p)};
    it->p = nl + 1;
    return true;
}

/* A stream splitter (parse.h). Cannot fail. */
void exp_statsd_stream_init(exp_statsd_stream *s, size_t max_line) {
    s->max_line = max_line ? max_line : EXP_STATSD_MAX_LINE_DEFAULT;
    s->scanned = 0;
    s->discarding = false;
}

/* The next complete line of a stream buffer (parse.h). Cannot fail: a line over max_line is
 * reported as too long and discarded. */
exp_statsd_stream_status exp_statsd_stream_next(exp_statsd_stream *s, const char *buf, size_t len,
                                                size_t *pos, exp_statsd_str *line) {
    for (;;) {
        if (*pos > len)
            *pos = len;
        size_t avail = len - *pos;
        const char *start = buf + *pos;
        if (s->scanned > avail)
            s->scanned = 0;
        const char *nl =
            avail > s->scanned ? memchr(start + s->scanned, '\n', avail - s->scanned) : NULL;
        if (s->discarding) {
            s->scanned = 0;
            if (!nl) {
                *pos = len;
                return EXP_STATSD_STREAM_NEED_MORE;
            }
            *pos += (size_t)(nl - start) + 1;
            s->discarding = false;
            continue;
        }
        if (!nl) {
            if (avail > s->max_line) {
                s->discarding = true;
                s->scanned = 0;
                *pos = len;
                return EXP_STATSD_STREAM_TOO_LONG;
            }
            s->scanned = avail;
            return EXP_STATSD_STREAM_NEED_MORE;
        }
        size_t n = (size_t)(nl - start);
        *pos += n + 1;
        s->scanned = 0;
        if (n > s->max_line)
            return EXP_STATSD_STREAM_TOO_LONG;
        if (n > 0 && start[n - 1] == '\r')
            n--;
        *line = (exp_statsd_str){start, n};
        return EXP_STATSD_STREAM_LINE;
    }
}

/* The unterminated last line at the end of a stream (parse.h). Cannot fail. */
exp_statsd_stream_status exp_statsd_stream_finish(exp_statsd_stream *s, const char *buf, size_t len,
                                                  size_t *pos, exp_statsd_str *line) {
    bool discarding = s->discarding;
    size_t max_line = s->max_line;
    exp_statsd_stream_init(s, max_line);
    if (*pos > len)
        *pos = len;
    size_t avail = len - *pos;
    const char *start = buf + *pos;
    *pos = len;
    if (discarding || avail == 0)
        return EXP_STATSD_STREAM_NEED_MORE;
    if (avail > max_line)
        return EXP_STATSD_STREAM_TOO_LONG;
    *line = (exp_statsd_str){start, avail};
    return EXP_STATSD_STREAM_LINE;
}
