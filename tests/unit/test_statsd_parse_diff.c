/* test_statsd_parse_diff.c - differential test of the StatsD line parser: millions of random
 * and hostile lines (built from StatsD fragments, and raw bytes) through both the current
 * exp_statsd_parse_line and the frozen reference copy (statsd_parse_ref.c), with random tag
 * style flags and random, sometimes tiny, output capacities. Every line must give the same
 * event count, events, labels and counters. A line the parser calls replayable is also sent
 * again with another value in its value's place (as the ingest's line cache does): whenever
 * exp_statsd_replay takes that value, the reference parser must give the very event and
 * counts of the replay. ABACUS_DIFF_LINES and ABACUS_DIFF_SEED in the environment change how
 * many lines and which. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statsd/parse.h"

size_t ref_statsd_parse_line(const exp_statsd_flags *flags, const char *line, size_t len,
                             const exp_statsd_out *out, exp_statsd_stats *stats);

#define MAXLINE 600
#define MAXEV (MAXLINE / 2 + 1)
#define MAXTAGS 8

/* One parser's output storage and counters. */
typedef struct {
    exp_statsd_event ev[MAXEV];
    exp_statsd_label lb[MAXTAGS];
    char scratch[MAXLINE + MAXTAGS + 1];
    exp_statsd_stats st;
} side;

static side cur, ref;

/* xorshift64*: reproducible from the seed on every libc. Cannot fail. */
static uint64_t rng;
static uint64_t next(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * UINT64_C(2685821657736338717);
}

/* A number below n. Cannot fail. */
static size_t below(size_t n) {
    return (size_t)(next() % n);
}

/* Pieces StatsD lines are made of, weighted towards the bytes the parser splits on. */
static const char *const fragments[] = {
    ":",        "|",         "|#",          "#",         ",",       "=",     "[",
    "]",        "@",         "|@",          "|c",        "|g",      "|ms",   "|h",
    "|d",       "|s",        "|x",          "c:",        "|c:",     "|T",    "|T123",
    "|T1e3",    "|@0.5",     "|@0",         "|@2",       "|@-1",    "|@NaN", "|@x",
    "|@1e-300", "|card:low", "|e:it-false", "|x:4",      "|ab:",    "|#a:b", "|#a:b,c:d",
    "#a:b",     ",a=b",      "[a=b]",       "[x=1,y=2]", "]",       "name",  "a.b.c",
    "_",        "9key",      "k-ey",        "k--y",      "1",       "-1",    "+2",
    "0.5",      "1e3",       "0x10",        "1_000",     "Inf",     "NaN",   ".",
    "e",        " ",         "\xc3\xa9",    "\r",        "tag:",    ":val",  "#,",
    ",,",       "||",        "::",          "a",         "|#k:v:w", "|c:id", "|#\xc3\xa9:1",
};

/* A random line into buf, at most MAXLINE bytes: fragment soup, raw bytes, or a
 * well-formed-ish line with random damage. Returns its length. Cannot fail. */
static size_t make_line(char *buf) {
    size_t n = 0, style = below(4);
    if (style == 0) { /* raw bytes from a small alphabet */
        static const char alpha[] = ":|#,=[]@cgmshdT01.+-e \xc3\xa9\xff";
        size_t len = below(40);
        for (size_t i = 0; i < len; i++)
            buf[n++] = alpha[below(sizeof alpha - 1)];
        return n;
    }
    size_t parts = 1 + below(style == 3 ? 60 : 14);
    if (style >= 2) { /* starts like a real line */
        static const char *const heads[] = {"m:1|c",     "m:1|g",       "m:1|ms",
                                            "m:1:2:3|h", "m:1|c:2|g",   "m,a=b:1|c",
                                            "m#a=b:1|c", "m[a=b]x:1|d", "m:+1|g"};
        const char *h = heads[below(sizeof heads / sizeof heads[0])];
        size_t hl = strlen(h);
        memcpy(buf, h, hl);
        n = hl;
    }
    for (size_t i = 0; i < parts; i++) {
        if (below(60) == 0) { /* rarely, since the line is then refused whole: invalid UTF-8 */
            static const char bad[] = "\xff\x80\xe2";
            if (n < MAXLINE)
                buf[n++] = bad[below(3)];
            continue;
        }
        if (below(60) == 0) { /* a NUL byte, which a string fragment cannot hold */
            if (n < MAXLINE)
                buf[n++] = '\0';
            continue;
        }
        const char *f = fragments[below(sizeof fragments / sizeof fragments[0])];
        size_t fl = strlen(f);
        if (n + fl > MAXLINE)
            break;
        memcpy(buf + n, f, fl);
        n += fl;
    }
    return n;
}

/* Output storage with random capacities, sometimes too small on purpose. Cannot fail. */
static exp_statsd_out out_for(side *s, size_t evcap, size_t lbcap, size_t sccap) {
    memset(s->ev, 0xA5, sizeof s->ev);
    memset(s->lb, 0xA5, sizeof s->lb);
    return (exp_statsd_out){s->ev, evcap, s->lb, lbcap, s->scratch, sccap};
}

/* 1 when the two strings hold the same bytes. Cannot fail. */
static bool same_str(exp_statsd_str a, exp_statsd_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Prints the line in C escapes to stderr for a failure report. Cannot fail. */
static void show(const char *line, size_t n) {
    fputc('"', stderr);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\')
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fputs("\"\n", stderr);
}

/* A well-formed line into buf: a head and up to three of the fields that follow a type, so
 * that many lines are replayable. Returns its length. Cannot fail. */
static size_t make_clean_line(char *buf) {
    static const char *const heads[] = {
        "m:1|c",     "m:1|g",     "m:1|ms",      "m:1|h",     "m:1|d", "m:+1|g",
        "m,a=b:1|c", "m#a=b:1|c", "m[a=b]x:1|d", "m.x-y:3|c", "m:1|s", "m:1|x",
    };
    static const char *const fields[] = {
        "|#a:b",  "|#a:b,c:d", "|@0.5",        "|@0.1",     "|@2",       "|@x",
        "|c:id",  "|T123",     "|Tx",          "|card:low", "|#9k-ey:v", "|#a:b,a:c",
        "|@0.25", "|@1e-300",  "|#\xc3\xa9:1", "|#k:v:w",   "|",         "|#a",
    };
    const char *h = heads[below(sizeof heads / sizeof heads[0])];
    size_t n = strlen(h);
    memcpy(buf, h, n);
    for (size_t i = below(4); i > 0; i--) {
        const char *f = fields[below(sizeof fields / sizeof fields[0])];
        memcpy(buf + n, f, strlen(f));
        n += strlen(f);
    }
    return n;
}

/* The value of line s[0..n) as the ingest's line cache sees it: between the first ':' and the
 * first '|' after it. false when there is no such value. Cannot fail. */
static bool value_span(const char *s, size_t n, size_t *at, size_t *len) {
    const char *c = memchr(s, ':', n);
    const char *b = c ? memchr(c + 1, '|', n - (size_t)(c + 1 - s)) : NULL;
    if (!b)
        return false;
    *at = (size_t)(c + 1 - s);
    *len = (size_t)(b - c - 1);
    return true;
}

/* Values put in the place of a replayable line's value, the hostile ones included. */
static const char *const values[] = {"1",        "-1",
                                     "+2",       "0",
                                     "-0",       "2.5",
                                     "1e3",      "NaN",
                                     "Inf",      "-Inf",
                                     "+Inf",     "x",
                                     "",         "0x1p-2",
                                     "1_000",    "1:2",
                                     "1|c",      "1#",
                                     "\xc3\xa9", "1e400",
                                     "-1e-400",  "9007199254740993",
                                     "-5e-324",  "+0",
                                     ".5",       "5.",
                                     "0x",       "1e",
                                     " 1"};

/* Line s[0..n) (event a[0], shape sh, parsed with flags fl and out's capacities) again with
 * another value: when exp_statsd_replay takes it, the reference must agree. Cannot fail. */
static void check_replay(const char *s, size_t n, const exp_statsd_shape *sh,
                         const exp_statsd_flags *fl, size_t evcap, size_t lbcap, size_t sccap) {
    size_t at = 0, vn = 0;
    assert_true(value_span(s, n, &at, &vn)); /* a parsed sample has one */
    static char line2[MAXLINE + 64];
    const char *v = values[below(sizeof values / sizeof values[0])];
    size_t nv = strlen(v), n2 = 0;
    memcpy(line2, s, at);
    memcpy(line2 + at, v, nv);
    memcpy(line2 + at + nv, s + at + vn, n - at - vn);
    n2 = n - vn + nv;
    size_t at2 = 0, vn2 = 0;
    /* the cache finds the entry only when the bytes around the value are the same */
    if (!value_span(line2, n2, &at2, &vn2) || at2 != at || n2 - vn2 != n - vn)
        return;
    exp_statsd_event ev = cur.ev[0];
    if (!exp_statsd_replay(sh, line2 + at2, vn2, &ev))
        return;
    exp_statsd_stats want = {0}, got = {0};
    exp_statsd_replay_count(sh, &got);
    exp_statsd_out orf = out_for(&ref, evcap, lbcap, sccap);
    size_t b = ref_statsd_parse_line(fl, line2, n2, &orf, &want);
    const exp_statsd_event *y = &ref.ev[0];
    bool ok = b == 1 && memcmp(&got, &want, sizeof got) == 0 && same_str(ev.name, y->name) &&
              ev.kind == y->kind && ev.from_ms == y->from_ms &&
              memcmp(&ev.value, &y->value, sizeof ev.value) == 0 && ev.repeat == y->repeat &&
              ev.nlabels == y->nlabels;
    if (!ok) {
        fprintf(stderr, "replay differs (%zu events): ", b);
        show(line2, n2);
        fail();
    }
}

static void test_same_as_reference(void **state) {
    (void)state;
    const char *e = getenv("ABACUS_DIFF_LINES");
    const char *sd = getenv("ABACUS_DIFF_SEED");
    size_t lines = e ? strtoul(e, NULL, 10) : 1000000;
    rng = sd ? strtoull(sd, NULL, 10) : UINT64_C(0x9E3779B97F4A7C15);
    if (rng == 0)
        rng = 1;
    static char line[MAXLINE];
    memset(&cur.st, 0, sizeof cur.st);
    memset(&ref.st, 0, sizeof ref.st);
    size_t events = 0, replayable = 0;
    for (size_t i = 0; i < lines; i++) {
        size_t n = i % 4 == 3 ? make_clean_line(line) : make_line(line);
        exp_statsd_flags fl = {next() & 1, next() & 1, next() & 1, next() & 1};
        bool all = below(4) != 0;
        size_t evcap = below(3) ? MAXEV : below(4);
        size_t lbcap = below(3) ? MAXTAGS : below(3);
        size_t sccap = below(3) ? sizeof cur.scratch : below(6);
        exp_statsd_out oc = out_for(&cur, evcap, lbcap, sccap);
        exp_statsd_out orf = out_for(&ref, evcap, lbcap, sccap);
        exp_statsd_shape sh;
        size_t a = exp_statsd_parse_line_shape(all ? NULL : &fl, line, n, &oc, &cur.st, &sh);
        size_t b = ref_statsd_parse_line(all ? NULL : &fl, line, n, &orf, &ref.st);
        bool ok = a == b && memcmp(&cur.st, &ref.st, sizeof cur.st) == 0;
        for (size_t k = 0; ok && k < a; k++) {
            const exp_statsd_event *x = &cur.ev[k], *y = &ref.ev[k];
            ok = same_str(x->name, y->name) && x->kind == y->kind && x->from_ms == y->from_ms &&
                 memcmp(&x->value, &y->value, sizeof x->value) == 0 && x->repeat == y->repeat &&
                 x->nlabels == y->nlabels;
            for (size_t j = 0; ok && j < x->nlabels; j++)
                ok = same_str(x->labels[j].name, y->labels[j].name) &&
                     same_str(x->labels[j].value, y->labels[j].value);
        }
        if (!ok) {
            fprintf(stderr, "line %zu differs (events %zu vs %zu), flags %s: ", i, a, b,
                    all ? "default" : "random");
            show(line, n);
            fail();
        }
        events += a;
        if (sh.replayable) {
            replayable++;
            check_replay(line, n, &sh, all ? NULL : &fl, evcap, lbcap, sccap);
        }
    }
    /* what the lines reached, so a generator that stops reaching a path is noticed */
    printf("%zu replayable lines\n", replayable);
    printf("%zu lines, %zu events, %llu samples, %llu tagged, %llu tag errors, %llu unknown\n",
           lines, events, (unsigned long long)cur.st.samples, (unsigned long long)cur.st.tags,
           (unsigned long long)cur.st.tag_errors, (unsigned long long)cur.st.unknown_fields);
    for (int r = 0; r < EXP_STATSD_ERR_COUNT; r++)
        printf("  %s %llu\n", exp_statsd_reason_name((exp_statsd_reason)r),
               (unsigned long long)cur.st.errors[r]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
