/* test_mapper.c - unit tests of the StatsD mapping rules (config/mapper.c): glob and regex
 * rules with captures, drop, match_metric_type, precedence, glob_disable_ordering, escaping of
 * unmapped names, the per-thread cache (hits, misses, LRU eviction, mapper changes), hostile
 * names and rules that do not compile. Configs are built by hand, not loaded from YAML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* ---- building configs ----------------------------------------------------------------------- */

typedef struct {
    const char *match;
    cfg_match_type type;
    cfg_metric_kind mmt;
    cfg_action action;
    const char *name;
    const char *labels; /* "k=v;k2=v2", NULL: none */
} rule_spec;

#define GLOB(m, n, l)                                                                              \
    { m, CFG_MATCH_GLOB, CFG_MMT_ANY, CFG_ACTION_MAP, n, l }
#define REGEX(m, n, l)                                                                             \
    { m, CFG_MATCH_REGEX, CFG_MMT_ANY, CFG_ACTION_MAP, n, l }
#define NRULES(a) (sizeof(a) / sizeof((a)[0]))

static char *xstrdup(const char *s) {
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static void parse_labels(cfg_mapping *mp, const char *spec) {
    if (!spec)
        return;
    char *copy = xstrdup(spec);
    size_t n = 1;
    for (const char *p = spec; *p; p++)
        n += *p == ';';
    mp->labels = calloc(n, sizeof(cfg_label));
    assert_non_null(mp->labels);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = '\0';
        mp->labels[mp->nlabels].name = xstrdup(tok);
        mp->labels[mp->nlabels].value = xstrdup(eq + 1);
        mp->nlabels++;
    }
    free(copy);
}

static cfg_config *mk_config(const rule_spec *rs, size_t n, int disable_ordering) {
    cfg_config *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->path = xstrdup("test.yml");
    c->defaults.match_type = CFG_MATCH_GLOB;
    c->defaults.glob_disable_ordering = disable_ordering;
    c->nmappings = n;
    c->mappings = calloc(n ? n : 1, sizeof(cfg_mapping));
    assert_non_null(c->mappings);
    for (size_t i = 0; i < n; i++) {
        cfg_mapping *mp = &c->mappings[i];
        mp->match = rs[i].match ? xstrdup(rs[i].match) : NULL;
        mp->match_type = rs[i].type;
        mp->match_metric_type = rs[i].mmt;
        mp->action = rs[i].action;
        mp->name = rs[i].name ? xstrdup(rs[i].name) : NULL;
        mp->scale = 1;
        mp->line = (unsigned)(10 + i);
        mp->column = 3;
        parse_labels(mp, rs[i].labels);
    }
    return c;
}

static void free_config(cfg_config *c) {
    for (size_t i = 0; i < c->nmappings; i++) {
        cfg_mapping *mp = &c->mappings[i];
        for (size_t l = 0; l < mp->nlabels; l++) {
            free(mp->labels[l].name);
            free(mp->labels[l].value);
        }
        free(mp->labels);
        free(mp->match);
        free(mp->name);
    }
    free(c->mappings);
    free(c->path);
    free(c);
}

static cfg_mapper *mk_mapper(const cfg_config *c) {
    cfg_errors errs = {0};
    cfg_mapper *m = cfg_mapper_create(c, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "unexpected error: %s\n", errs.items[i].message);
    assert_int_equal(errs.count, 0);
    assert_non_null(m);
    return m;
}

/* ---- running tables ---------------------------------------------------------------------------
 */

typedef struct {
    const char *in;
    size_t len; /* 0: strlen(in) */
    cfg_metric_kind kind;
    int drop, mapped;
    const char *name;   /* NULL: do not check (drop) */
    const char *labels; /* "k=v;..." in rule order; NULL: none */
} map_case;

#define C_(in, mapped, name, labels)                                                               \
    { in, 0, CFG_MMT_COUNTER, 0, mapped, name, labels }

static void check_labels(const cfg_map_result *r, const char *want, const char *in) {
    char got[4096] = "";
    size_t o = 0;
    for (size_t i = 0; i < r->nlabels; i++)
        o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s=%s", i ? ";" : "", r->label_names[i],
                              r->label_values[i]);
    if (strcmp(got, want ? want : "") != 0) {
        fprintf(stderr, "%s: labels %s, want %s\n", in, got, want ? want : "");
        fail();
    }
}

static void run_cases(const cfg_mapper *m, const map_case *cs, size_t n) {
    /* Each table runs twice through one cache (misses then hits) and once uncached. */
    cfg_mapper_cache *cache = cfg_mapper_cache_create(64);
    cfg_mapper_cache *nocache = cfg_mapper_cache_create(0);
    assert_non_null(cache);
    assert_non_null(nocache);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < n; i++) {
            const map_case *t = &cs[i];
            size_t len = t->len ? t->len : strlen(t->in);
            cfg_map_result r;
            memset(&r, 0x5a, sizeof(r));
            assert_int_equal(
                cfg_mapper_map(m, round == 2 ? nocache : cache, t->in, len, t->kind, &r), 0);
            if (r.drop != t->drop || r.mapped != t->mapped) {
                fprintf(stderr, "%s: drop %d mapped %d, want %d %d\n", t->in, r.drop, r.mapped,
                        t->drop, t->mapped);
                fail();
            }
            assert_true(t->mapped ? r.rule != NULL : r.rule == NULL);
            if (t->name && strcmp(r.name, t->name) != 0) {
                fprintf(stderr, "%s: name %s, want %s\n", t->in, r.name, t->name);
                fail();
            }
            if (!t->drop)
                check_labels(&r, t->labels, t->in);
        }
    }
    uint64_t hits, misses;
    cfg_mapper_cache_stats(cache, &hits, &misses);
    assert_int_equal(hits + misses, 2 * n);
    cfg_mapper_cache_free(cache);
    cfg_mapper_cache_free(nocache);
}

static void run_table(const rule_spec *rs, size_t nr, int disable_ordering, const map_case *cs,
                      size_t nc) {
    cfg_config *c = mk_config(rs, nr, disable_ordering);
    cfg_mapper *m = mk_mapper(c);
    run_cases(m, cs, nc);
    cfg_mapper_free(m);
    free_config(c);
}

/* ---- globs ----------------------------------------------------------------------------------- */

static void test_glob_captures(void **state) {
    (void)state;
    static const rule_spec rs[] = {
        GLOB("test.dispatcher.*.*.*", "dispatcher_events_total",
             "processor=$1;action=$2;outcome=$3;job=test_dispatcher"),
        GLOB("*.signup.*.*", "signup_events_total", "provider=$2;outcome=$3;job=${1}_server"),
        GLOB("test1.*.*", "$1", NULL),
        GLOB("test2.*.*", "${1}_$2", NULL),
        GLOB("whole.*", "whole", "orig=$0;first=${1}"),
        GLOB("refs.*", "refs", "a=$1_foo;b=$1$2;c=${1}${1};d=${1}_foo;e=$2;f=cost$;g=${01}"),
        GLOB("a.*.b", "ab", "mid=[$1]"),
        GLOB("dash-ed.x-y.*", "dashed", "v=$1"),
        /* statsd_exporter accepts runs of dashes and a trailing dash in a glob part */
        GLOB("foo--bar.*", "double_dash", "v=$1"),
        GLOB("trail-.x---y.*", "trailing_dash", "v=$1"),
        GLOB("single", "single_total", NULL),
        GLOB("num.1st.*", "num", "v=$1"),
    };
    static const map_case cs[] = {
        C_("test.dispatcher.FooProcessor.send.success", 1, "dispatcher_events_total",
           "processor=FooProcessor;action=send;outcome=success;job=test_dispatcher"),
        C_("foo_product.signup.facebook.failure", 1, "signup_events_total",
           "provider=facebook;outcome=failure;job=foo_product_server"),
        C_("test.web-server.foo.bar", 0, "test_web_server_foo_bar", NULL),
        C_("test1.total_requests.count", 1, "total_requests", NULL),
        C_("test2.total_requests.count", 1, "total_requests_count", NULL),
        /* the mapped name is escaped, as statsd_exporter's exporter does */
        C_("test1.foo-bar.x", 1, "foo_bar", NULL),
        C_("test1.9lives.x", 1, "_9lives", NULL),
        C_("whole.x-y", 1, "whole", "orig=whole.x-y;first=x-y"),
        /* statsd_exporter's glob formatter: $ then [A-Za-z0-9_$]+ must be a number */
        C_("refs.q", 1, "refs", "a=;b=;c=qq;d=q_foo;e=;f=cost$;g=q"),
        C_("a..b", 1, "ab", "mid=[]"),
        C_("a.*.b", 1, "ab", "mid=[*]"),
        C_("dash-ed.x-y.z", 1, "dashed", "v=z"),
        C_("foo--bar.baz", 1, "double_dash", "v=baz"),
        C_("foo-bar.baz", 0, "foo_bar_baz", NULL), /* the dashes are literal */
        C_("foo---bar.baz", 0, "foo_bar_baz", NULL),
        C_("trail-.x---y.1", 1, "trailing_dash", "v=1"),
        C_("single", 1, "single_total", NULL),
        C_("single.more", 0, "single_more", NULL),
        C_("num.1st.2", 1, "num", "v=2"),
        C_("test.dispatcher.a.b", 0, "test_dispatcher_a_b", NULL), /* one part short */
        C_("test.dispatcher.a.b.c.d", 0, "test_dispatcher_a_b_c_d", NULL),
        C_("Test.dispatcher.a.b.c", 0, "Test_dispatcher_a_b_c", NULL), /* case matters */
        /* an empty capture gives an empty name: the caller counts and drops it */
        C_("test1..x", 1, "", NULL),
    };
    run_table(rs, NRULES(rs), 0, cs, NRULES(cs));
}

static void test_glob_star_only(void **state) {
    (void)state;
    static const rule_spec rs[] = {
        GLOB("*", "one_$1", NULL),
        GLOB("*.*", "two", "a=$1;b=$2"),
    };
    static const map_case cs[] = {
        C_("", 1, "one_", NULL),        C_("x", 1, "one_x", NULL),     C_(".", 1, "two", "a=;b="),
        C_("p.q", 1, "two", "a=p;b=q"), C_("p.q.r", 0, "p_q_r", NULL),
    };
    run_table(rs, NRULES(rs), 0, cs, NRULES(cs));
}

/* ---- regex ----------------------------------------------------------------------------------- */

static void test_regex(void **state) {
    (void)state;
    static const rule_spec rs[] = {
        REGEX("test3\\.(\\w+)\\.(\\w+)", "${2}_$1", NULL),
        REGEX("^full\\.(.+)$", "full",
              "whole=$0;first=${1};lit=$$1;named1x=$1x;brace=${1}x;open=${1;bare=$;dash=$-"),
        REGEX("(?P<host>[a-z]+)\\.named", "named", "host=$host;host2=${host};nope=$other"),
        REGEX("mid", "middle", "m=$0;none=$1"),
        REGEX("\\.end$", "ended", NULL),
        REGEX("^opt(x)?(y)$", "opt", "x=$1;y=$2;far=$9"),
        REGEX("^(?i)CASE\\.(.*)", "case", "v=$1"),
        REGEX("^utf\\.(.)$", "utf", "c=$1"),
        REGEX("^(.*)\\.(.*)$", "split", "l=$1;r=$2"),
    };
    static const map_case cs[] = {
        C_("test3.total_requests.count", 1, "count_total_requests", NULL),
        C_("full.a.b", 1, "full",
           "whole=full.a.b;first=a.b;lit=$1;named1x=;brace=a.bx;open=${1;bare=$;dash=$-"),
        C_("web.named", 1, "named", "host=web;host2=web;nope="),
        /* not anchored: the match may lie anywhere */
        C_("xx.mid.yy", 1, "middle", "m=mid;none="),
        /* $ matches only at the very end, as in Go (not before a final newline) */
        C_("a.end", 1, "ended", NULL),
        C_("optx", 0, "optx", NULL),
        C_("opty", 1, "opt", "x=;y=y;far="),
        C_("optxy", 1, "opt", "x=x;y=y;far="),
        C_("case.Q", 1, "case", "v=Q"),
        C_("utf.\xc3\xa9", 1, "utf", "c=\xc3\xa9"),
        C_("left.right", 1, "split", "l=left;r=right"),
        C_("nodots", 0, "nodots", NULL),
    };
    run_table(rs, NRULES(rs), 0, cs, NRULES(cs));

    /* "a.end\n": no match for "\.end$"; the next rule "^(.*)\.(.*)$" needs no '\n' either */
    cfg_config *c = mk_config(rs, NRULES(rs), 0);
    cfg_mapper *m = mk_mapper(c);
    cfg_mapper_cache *cache = cfg_mapper_cache_create(4);
    cfg_map_result r;
    assert_int_equal(cfg_mapper_map(m, cache, "zz.end\n", 7, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 0);
    assert_string_equal(r.name, "zz_end_");
    cfg_mapper_cache_free(cache);
    cfg_mapper_free(m);
    free_config(c);
}

/* ---- drop, kinds, precedence --------------------------------------------------------------- */

static void test_drop(void **state) {
    (void)state;
    static const rule_spec rs[] = {
        GLOB("test.timing.*.*.*", "my_timer", "provider=$2;outcome=$3;job=${1}_server"),
        {"noisy.*", CFG_MATCH_GLOB, CFG_MMT_ANY, CFG_ACTION_DROP, NULL, NULL},
        {".", CFG_MATCH_REGEX, CFG_MMT_ANY, CFG_ACTION_DROP, "dropped", NULL},
    };
    static const map_case cs[] = {
        C_("test.timing.a.b.c", 1, "my_timer", "provider=b;outcome=c;job=a_server"),
        {"noisy.x", 0, CFG_MMT_GAUGE, 1, 1, NULL, NULL},
        {"anything", 0, CFG_MMT_COUNTER, 1, 1, NULL, NULL},
        {"", 0, CFG_MMT_COUNTER, 0, 0, "", NULL}, /* "." needs one character */
    };
    run_table(rs, NRULES(rs), 0, cs, NRULES(cs));
}

static void test_match_metric_type(void **state) {
    (void)state;
    static const rule_spec rs[] = {
        {"typed.*", CFG_MATCH_GLOB, CFG_MMT_COUNTER, CFG_ACTION_MAP, "c_${1}", NULL},
        {"typed.*", CFG_MATCH_GLOB, CFG_MMT_GAUGE, CFG_ACTION_MAP, "g_${1}", NULL},
        GLOB("typed.*", "any_${1}", NULL),
        {"typed.*", CFG_MATCH_GLOB, CFG_MMT_OBSERVER, CFG_ACTION_MAP, "never", NULL},
        {"^rx\\.(.*)", CFG_MATCH_REGEX, CFG_MMT_OBSERVER, CFG_ACTION_MAP, "obs_$1", NULL},
        REGEX("^rx\\.(.*)", "rany_$1", NULL),
        {"only.gauge", CFG_MATCH_GLOB, CFG_MMT_GAUGE, CFG_ACTION_MAP, "og", NULL},
    };
    static const map_case cs[] = {
        {"typed.a", 0, CFG_MMT_COUNTER, 0, 1, "c_a", NULL},
        {"typed.a", 0, CFG_MMT_GAUGE, 0, 1, "g_a", NULL},
        {"typed.a", 0, CFG_MMT_OBSERVER, 0, 1, "any_a", NULL},
        {"typed.a", 0, CFG_MMT_ANY, 0, 1, "any_a", NULL}, /* untyped event: untyped rules */
        {"rx.b", 0, CFG_MMT_OBSERVER, 0, 1, "obs_b", NULL},
        {"rx.b", 0, CFG_MMT_COUNTER, 0, 1, "rany_b", NULL},
        {"only.gauge", 0, CFG_MMT_GAUGE, 0, 1, "og", NULL},
        {"only.gauge", 0, CFG_MMT_COUNTER, 0, 0, "only_gauge", NULL},
        {"only.gauge", 0, (cfg_metric_kind)99, 0, 0, "only_gauge", NULL},
    };
    run_table(rs, NRULES(rs), 0, cs, NRULES(cs));
}

static void test_precedence(void **state) {
    (void)state;
    static const rule_spec rs[] = {
        /* a regex listed first still loses to a glob (statsd_exporter issue #349) */
        REGEX("^([^.]+)\\.([^.]+)$", "rx_$2", "job=$1"),
        GLOB("*.*", "glob_${2}", "job=$1"),
        /* among globs the first in file order wins, however specific later ones are */
        GLOB("order.*.*", "testa", "label=${1}_foo"),
        GLOB("order.*.bbb", "testb", "label=${1}_foo"),
        GLOB("a.*.*", "star", NULL),
        GLOB("a.b.c", "lit", NULL),
        /* a shorter glob after a longer one with the same prefix still matches */
        GLOB("p.q.r.s", "long", NULL),
        GLOB("p.q.r", "short", NULL),
        GLOB("dup.x.*", "first", NULL),
        GLOB("dup.x.*", "second", NULL),
        GLOB("dup.*.y", "third", NULL),
        /* regexes: first match in file order */
        REGEX("^r\\.", "r_first", NULL),
        REGEX("^r\\.x", "r_second", NULL),
    };
    static const map_case cs[] = {
        C_("job.fetch", 1, "glob_fetch", "job=job"),
        C_("order.good.bbb", 1, "testa", "label=good_foo"),
        C_("a.b.c", 1, "star", NULL),
        C_("p.q.r", 1, "short", NULL),
        C_("p.q.r.s", 1, "long", NULL),
        C_("dup.x.y", 1, "first", NULL),
        C_("dup.z.y", 1, "third", NULL),
        C_("r.x.y", 1, "r_first", NULL),
    };
    run_table(rs, NRULES(rs), 0, cs, NRULES(cs));
}

static void test_glob_disable_ordering(void **state) {
    (void)state;
    static const rule_spec rs[] = {
        /* statsd_exporter's own cases */
        GLOB("noorder.*.*", "testa", "label=${1}_foo"),
        GLOB("noorder.*.bbb", "testb", "label=${1}_foo"),
        GLOB("noorder.ccc.bbb", "testc", "label=ccc_foo"),
        GLOB("backtrack.*.bbb", "testb2", "label=${1}_foo"),
        GLOB("backtrack.justatest.aaa", "testa2", "label=${1}_foo"),
        /* full backtracking: "a.b.c" matches "a.*.c" after the literal "b" branch fails */
        GLOB("a.*.c", "r1", NULL),
        GLOB("*.*.c", "r2", NULL),
        GLOB("a.b.d", "r3", NULL),
        /* leftmost literal wins over a later one */
        GLOB("m.*.z", "star_first", NULL),
        GLOB("*.y.z", "star_second", NULL),
    };
    static const map_case cs[] = {
        C_("noorder.good.bbb", 1, "testb", "label=good_foo"),
        C_("noorder.ccc.bbb", 1, "testc", "label=ccc_foo"),
        C_("noorder.ccc.x", 1, "testa", "label=ccc_foo"),
        C_("backtrack.good.bbb", 1, "testb2", "label=good_foo"),
        C_("backtrack.justatest.bbb", 1, "testb2", "label=justatest_foo"),
        C_("backtrack.justatest.aaa", 1, "testa2", "label=_foo"),
        C_("a.b.c", 1, "r1", NULL),
        C_("q.b.c", 1, "r2", NULL),
        C_("a.b.d", 1, "r3", NULL),
        C_("m.y.z", 1, "star_first", NULL),
    };
    run_table(rs, NRULES(rs), 1, cs, NRULES(cs));

    /* The same rules in file order: the first matching rule wins instead. */
    static const map_case ordered[] = {
        C_("noorder.good.bbb", 1, "testa", "label=good_foo"),
        C_("noorder.ccc.bbb", 1, "testa", "label=ccc_foo"),
        C_("backtrack.justatest.aaa", 1, "testa2", "label=_foo"),
        C_("a.b.c", 1, "r1", NULL),
        C_("m.y.z", 1, "star_first", NULL),
    };
    run_table(rs, NRULES(rs), 0, ordered, NRULES(ordered));
}

/* ---- escaping -------------------------------------------------------------------------------- */

static void test_escape(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
    } t[] = {
        /* statsd_exporter's escape_test.go */
        {"clean", "clean"},
        {"0starts_with_digit", "_0starts_with_digit"},
        {"with_underscore", "with_underscore"},
        {"with--doubledash", "with_doubledash"},
        {"with---multiple-dashes", "with_multiple_dashes"},
        {"with.dot", "with_dot"},
        {"with\xf0\x9f\x98\xb1"
         "emoji",
         "with_emoji"},
        {"with.*.multiple", "with___multiple"},
        {"test.web-server.foo.bar", "test_web_server_foo_bar"},
        {"", ""},
        /* more */
        {"a:b", "a_b"},
        {"9", "_9"},
        {"-", "_"},
        {"--a", "_a"},
        {"a-.-b", "a___b"},
        {"\xc3\xa9t\xc3\xa9", "_t_"},
        {"\xff", "_"},
        {"a\xe2\x82", "a__"},         /* truncated sequence: one '_' per byte */
        {"\xed\xa0\x80", "___"},      /* a surrogate is invalid UTF-8 */
        {"\xc0\xaf", "__"},           /* overlong */
        {"\xf4\x90\x80\x80", "____"}, /* above U+10FFFF */
        {"\xf4\x8f\xbf\xbf", "_"},    /* U+10FFFF */
        {"x y\tz", "x_y_z"},
    };
    char buf[64];
    for (size_t i = 0; i < NRULES(t); i++) {
        long n = cfg_escape_metric_name(t[i].in, strlen(t[i].in), buf, sizeof(buf));
        if (n < 0 || strcmp(buf, t[i].out) != 0) {
            fprintf(stderr, "escape(%s) = %s, want %s\n", t[i].in, n < 0 ? "-1" : buf, t[i].out);
            fail();
        }
        assert_int_equal(n, (long)strlen(t[i].out));
    }
    /* NUL bytes are characters like any other */
    assert_int_equal(cfg_escape_metric_name("a\0b", 3, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "a_b");
    /* capacity: exact fit, one short, none */
    assert_int_equal(cfg_escape_metric_name("9ab", 3, buf, 5), 4);
    assert_string_equal(buf, "_9ab");
    assert_int_equal(cfg_escape_metric_name("9ab", 3, buf, 4), -1);
    assert_int_equal(cfg_escape_metric_name("9ab", 3, buf, 0), -1);
    assert_int_equal(cfg_escape_metric_name("ab", 2, NULL, 10), -1);
    assert_int_equal(cfg_escape_metric_name(NULL, 5, buf, 1), 0);
    assert_string_equal(buf, "");
}

static void test_unmapped(void **state) {
    (void)state;
    static const map_case cs[] = {
        C_("with.dot", 0, "with_dot", NULL),
        C_("0lead", 0, "_0lead", NULL),
        C_("", 0, "", NULL),
    };
    /* no rules at all, and no mapper at all */
    run_table(NULL, 0, 0, cs, NRULES(cs));
    run_cases(NULL, cs, NRULES(cs));
}

/* ---- the cache ------------------------------------------------------------------------------- */

static void expect_stats(const cfg_mapper_cache *c, uint64_t hits, uint64_t misses) {
    uint64_t h, m;
    cfg_mapper_cache_stats(c, &h, &m);
    assert_int_equal(h, hits);
    assert_int_equal(m, misses);
}

static const char *map_name(const cfg_mapper *m, cfg_mapper_cache *c, const char *in,
                            cfg_metric_kind kind) {
    cfg_map_result r;
    assert_int_equal(cfg_mapper_map(m, c, in, strlen(in), kind, &r), 0);
    return r.name;
}

static void test_cache_lru(void **state) {
    (void)state;
    static const rule_spec rs[] = {GLOB("k.*", "k_${1}", "v=$1")};
    cfg_config *cf = mk_config(rs, 1, 0);
    cfg_mapper *m = mk_mapper(cf);
    cfg_mapper_cache *c = cfg_mapper_cache_create(2);
    assert_non_null(c);
    expect_stats(c, 0, 0);
    assert_string_equal(map_name(m, c, "k.a", CFG_MMT_COUNTER), "k_a");
    assert_string_equal(map_name(m, c, "k.b", CFG_MMT_COUNTER), "k_b");
    expect_stats(c, 0, 2);
    assert_string_equal(map_name(m, c, "k.a", CFG_MMT_COUNTER), "k_a"); /* a most recent */
    expect_stats(c, 1, 2);
    assert_string_equal(map_name(m, c, "k.c", CFG_MMT_COUNTER), "k_c"); /* evicts b */
    expect_stats(c, 1, 3);
    assert_string_equal(map_name(m, c, "k.a", CFG_MMT_COUNTER), "k_a");
    expect_stats(c, 2, 3);
    assert_string_equal(map_name(m, c, "k.c", CFG_MMT_COUNTER), "k_c");
    expect_stats(c, 3, 3);
    assert_string_equal(map_name(m, c, "k.b", CFG_MMT_COUNTER), "k_b"); /* evicts a */
    expect_stats(c, 3, 4);
    assert_string_equal(map_name(m, c, "k.a", CFG_MMT_COUNTER), "k_a");
    expect_stats(c, 3, 5);
    /* the kind is part of the key */
    assert_string_equal(map_name(m, c, "k.a", CFG_MMT_GAUGE), "k_a");
    expect_stats(c, 3, 6);
    /* a hit returns the same labels */
    cfg_map_result r;
    assert_int_equal(cfg_mapper_map(m, c, "k.a", 3, CFG_MMT_GAUGE, &r), 0);
    expect_stats(c, 4, 6);
    assert_int_equal(r.nlabels, 1);
    assert_string_equal(r.label_names[0], "v");
    assert_string_equal(r.label_values[0], "a");
    assert_ptr_equal(r.rule, &cf->mappings[0]);
    cfg_mapper_cache_free(c);

    /* Many distinct names through a small cache: every result stays right. */
    c = cfg_mapper_cache_create(7);
    char in[32], want[32];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 100; i++) {
            int k = (i * 37 + round) % 23;
            snprintf(in, sizeof(in), "k.n%d", k);
            snprintf(want, sizeof(want), "k_n%d", k);
            assert_string_equal(map_name(m, c, in, CFG_MMT_COUNTER), want);
        }
    uint64_t h, mi;
    cfg_mapper_cache_stats(c, &h, &mi);
    assert_int_equal(h + mi, 300);
    assert_true(mi >= 23);
    /* After all that eviction, a working set of 7 names must be found again: one pass to
     * load it, then only hits. */
    for (int pass = 0; pass < 3; pass++)
        for (int k = 0; k < 7; k++) {
            snprintf(in, sizeof(in), "k.w%d", k);
            snprintf(want, sizeof(want), "k_w%d", k);
            assert_string_equal(map_name(m, c, in, CFG_MMT_COUNTER), want);
        }
    expect_stats(c, h + 14, mi + 7);
    cfg_mapper_cache_free(c);

    /* A disabled cache only misses. */
    c = cfg_mapper_cache_create(0);
    assert_string_equal(map_name(m, c, "k.a", CFG_MMT_COUNTER), "k_a");
    assert_string_equal(map_name(m, c, "k.a", CFG_MMT_COUNTER), "k_a");
    expect_stats(c, 0, 2);
    cfg_mapper_cache_stats(c, NULL, NULL);
    cfg_mapper_cache_free(c);
    cfg_mapper_cache_free(NULL);
    cfg_mapper_free(m);
    free_config(cf);
}

static void test_cache_mapper_change(void **state) {
    (void)state;
    static const rule_spec r1[] = {GLOB("x.*", "one_${1}", NULL)};
    static const rule_spec r2[] = {GLOB("x.*", "two_${1}", NULL),
                                   REGEX("^y(.*)", "why", "rest=$1")};
    cfg_config *c1 = mk_config(r1, 1, 0), *c2 = mk_config(r2, 2, 0);
    cfg_mapper_cache *c = cfg_mapper_cache_create(16);
    for (int i = 0; i < 20; i++) {
        /* Free and recreate: the allocator often hands back the same address. */
        cfg_mapper *m = mk_mapper(i % 2 ? c2 : c1);
        assert_string_equal(map_name(m, c, "x.a", CFG_MMT_COUNTER), i % 2 ? "two_a" : "one_a");
        assert_string_equal(map_name(m, c, "x.a", CFG_MMT_COUNTER), i % 2 ? "two_a" : "one_a");
        assert_string_equal(map_name(m, c, "yes", CFG_MMT_COUNTER), i % 2 ? "why" : "yes");
        cfg_mapper_free(m);
    }
    expect_stats(c, 20, 40);
    /* Two live mappers alternating on one cache. */
    cfg_mapper *a = mk_mapper(c1), *b = mk_mapper(c2);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(map_name(a, c, "x.q", CFG_MMT_COUNTER), "one_q");
        assert_string_equal(map_name(b, c, "x.q", CFG_MMT_COUNTER), "two_q");
        assert_string_equal(map_name(NULL, c, "x.q", CFG_MMT_COUNTER), "x_q");
    }
    cfg_mapper_free(a);
    cfg_mapper_free(b);
    cfg_mapper_cache_free(c);
    free_config(c1);
    free_config(c2);
}

/* ---- hostile input --------------------------------------------------------------------------- */

static void test_hostile_names(void **state) {
    (void)state;
    static const rule_spec rs[] = {
        GLOB("h.*.z", "h", "v=$1"),
        GLOB("h.*.*.*", "h3", "a=$1;c=$3"),
        REGEX("^big\\.(.*)\\.(.*)$", "big", "l=$1;r=$2"),
        REGEX("^(a+)+$", "evil", NULL),
        REGEX("^bin(.)", "bin", "c=$1"),
    };
    cfg_config *cf = mk_config(rs, NRULES(rs), 0);
    cfg_mapper *m = mk_mapper(cf);
    cfg_mapper_cache *c = cfg_mapper_cache_create(8);
    cfg_map_result r;

    /* a name part that is literally "*" is captured like any other */
    assert_int_equal(cfg_mapper_map(m, c, "h.*.z", 5, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 1);
    assert_string_equal(r.label_values[0], "*");
    assert_int_equal(cfg_mapper_map(m, c, "h.*.*.*", 7, CFG_MMT_COUNTER, &r), 0);
    assert_string_equal(r.name, "h3");
    assert_string_equal(r.label_values[0], "*");

    /* empty and all-dots names */
    assert_int_equal(cfg_mapper_map(m, c, "", 0, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 0);
    assert_string_equal(r.name, "");
    assert_int_equal(cfg_mapper_map(m, c, NULL, 0, CFG_MMT_COUNTER, &r), 0);
    assert_string_equal(r.name, "");
    assert_int_equal(cfg_mapper_map(m, c, "h..z", 4, CFG_MMT_COUNTER, &r), 0);
    assert_string_equal(r.label_values[0], "");
    assert_int_equal(cfg_mapper_map(m, c, "......", 6, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 0);
    assert_string_equal(r.name, "______");

    /* binary bytes, NUL included */
    assert_int_equal(cfg_mapper_map(m, c, "h.a\0b.z", 7, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 1);
    assert_memory_equal(r.label_values[0], "a\0b", 4);
    assert_int_equal(cfg_mapper_map(m, c, "\x01\xff\x80.\n", 5, CFG_MMT_GAUGE, &r), 0);
    assert_int_equal(r.mapped, 0);
    assert_string_equal(r.name, "_____");
    /* invalid UTF-8 cannot be matched by '.'; valid text after it still can */
    assert_int_equal(cfg_mapper_map(m, c, "bin\xff", 4, CFG_MMT_GAUGE, &r), 0);
    assert_int_equal(r.mapped, 0);
    assert_string_equal(r.name, "bin_");
    assert_int_equal(cfg_mapper_map(m, c, "bin\xc3\xa9", 5, CFG_MMT_GAUGE, &r), 0);
    assert_int_equal(r.mapped, 1);
    assert_string_equal(r.label_values[0], "\xc3\xa9");

    /* 64 KiB names: plain, all dots, and through a regex with captures */
    size_t big = 64 * 1024;
    char *s = malloc(big + 1);
    assert_non_null(s);
    memset(s, 'a', big);
    s[big] = '\0';
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cfg_mapper_map(m, c, s, big, CFG_MMT_COUNTER, &r), 0);
        assert_string_equal(r.name, "evil");
    }
    /* "^(a+)+$" on "aaa...ab" is catastrophic for a backtracking engine: the match limit ends
     * it, and the rule counts as not matching */
    s[big - 1] = 'b';
    assert_int_equal(cfg_mapper_map(m, c, s, big, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 0);
    assert_int_equal(strlen(r.name), big);
    s[40] = '\0';
    s[39] = 'b';
    assert_int_equal(cfg_mapper_map(m, c, s, 40, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 0);
    s[39] = s[40] = 'a';
    memset(s, '.', big);
    assert_int_equal(cfg_mapper_map(m, c, s, big, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 0);
    assert_int_equal(strlen(r.name), big);
    for (size_t i = 0; i < big; i++)
        s[i] = i % 2 ? '.' : 'x';
    assert_int_equal(cfg_mapper_map(m, c, s, big, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 0);
    memcpy(s, "big.", 4);
    memset(s + 4, 'q', big - 4);
    s[big / 2] = '.';
    assert_int_equal(cfg_mapper_map(m, c, s, big, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 1);
    assert_string_equal(r.name, "big");
    assert_int_equal(strlen(r.label_values[0]), big / 2 - 4);
    assert_int_equal(strlen(r.label_values[1]), big - big / 2 - 1);
    /* an all-"*"-and-dots name against the globs */
    for (size_t i = 0; i < big; i++)
        s[i] = i % 2 ? '.' : '*';
    assert_int_equal(cfg_mapper_map(m, c, s, big - 1, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 0);
    free(s);

    /* a glob with many parts, and names around it */
    char *g = malloc(4001);
    assert_non_null(g);
    for (int i = 0; i < 2000; i++) {
        g[2 * i] = i % 2 ? '*' : 'p';
        g[2 * i + 1] = '.';
    }
    g[3999] = '\0';
    rule_spec deep[] = {GLOB(g, "deep", "last=$1000")};
    cfg_config *cd = mk_config(deep, 1, 0);
    cfg_mapper *md = mk_mapper(cd);
    for (int i = 0; i < 2000; i++)
        g[2 * i] = i % 2 ? 'v' : 'p';
    assert_int_equal(cfg_mapper_map(md, c, g, 3999, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 1);
    assert_string_equal(r.label_values[0], "v");
    g[3996] = 'x'; /* the last literal part differs */
    assert_int_equal(cfg_mapper_map(md, c, g, 3999, CFG_MMT_COUNTER, &r), 0);
    assert_int_equal(r.mapped, 0);
    cfg_mapper_free(md);
    free_config(cd);
    free(g);

    cfg_mapper_cache_free(c);
    cfg_mapper_free(m);
    free_config(cf);
}

/* ---- rules that do not compile ------------------------------------------------------------ */

static void test_compile_errors(void **state) {
    (void)state;
    static const rule_spec bad[] = {
        REGEX("(", "a", NULL),
        GLOB("foo*bar.x", "b", NULL),
        GLOB("a..b", "c", NULL),
        GLOB("", "d", NULL),
        GLOB("1abc.x", "e", NULL),
        GLOB("a.-b", "f", NULL), /* a part starts with a word character */
        GLOB("-a.c", "g", NULL),
        GLOB("a.b-*", "h", NULL),
        GLOB("a.b.", "i", NULL),
        GLOB("a.**", "j", NULL),
        GLOB("a.b", NULL, NULL), /* map without a name */
        {NULL, CFG_MATCH_GLOB, CFG_MMT_ANY, CFG_ACTION_MAP, "k", NULL},
        REGEX("x{2,1}", "l", NULL),
        REGEX("\xff", "m", NULL), /* not UTF-8 */
        GLOB("fine.*", "ok", NULL),
    };
    cfg_config *c = mk_config(bad, NRULES(bad), 0);
    cfg_errors errs = {0};
    assert_null(cfg_mapper_create(c, &errs));
    assert_int_equal(errs.count, NRULES(bad) - 1);
    for (size_t i = 0; i < errs.count; i++) {
        assert_string_equal(errs.items[i].file, "test.yml");
        assert_int_equal(errs.items[i].line, 10 + i);
        assert_int_equal(errs.items[i].column, 3);
        assert_non_null(errs.items[i].message);
    }
    assert_non_null(strstr(errs.items[0].message, "invalid regex"));
    assert_non_null(strstr(errs.items[0].message, "parenthesis"));
    assert_non_null(strstr(errs.items[1].message, "invalid match"));
    cfg_errors_free(&errs);
    free_config(c);

    /* these are valid globs; a NULL errs is allowed */
    static const rule_spec good[] = {
        GLOB("a.1b", "a", NULL),
        GLOB("a-b.c_d-e", "b", NULL),
        GLOB("*", "c", NULL),
        GLOB("_x.*.9", "d", NULL),
        GLOB("A.B-C.*", "e", NULL),
        GLOB("a--b.c", "g", NULL), /* statsd_exporter's [a-zA-Z0-9_-]* after the first */
        GLOB("a-.c", "h", NULL),
        GLOB("x.9--.*", "i", NULL),
        {"drop.*", CFG_MATCH_GLOB, CFG_MMT_ANY, CFG_ACTION_DROP, NULL, NULL},
        {"re", CFG_MATCH_DEFAULT, CFG_MMT_ANY, CFG_ACTION_MAP, "f", NULL},
    };
    c = mk_config(good, NRULES(good), 0);
    cfg_mapper *m = cfg_mapper_create(c, NULL);
    assert_non_null(m);
    cfg_mapper_free(m);
    free_config(c);
    cfg_mapper_free(NULL);
    assert_null(cfg_mapper_create(NULL, &errs));
    assert_int_equal(errs.count, 1);
    cfg_errors_free(&errs);
}

/* ---- threads --------------------------------------------------------------------------------- */

typedef struct {
    const cfg_mapper *m;
    int id, failures;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    cfg_mapper_cache *c = cfg_mapper_cache_create(16);
    char in[64], want[64];
    for (int i = 0; i < 20000 && c; i++) {
        int k = (i * 7 + a->id) % 50;
        snprintf(in, sizeof(in), "svc.s%d.req", k);
        snprintf(want, sizeof(want), "svc_s%d", k);
        cfg_map_result r;
        if (cfg_mapper_map(a->m, c, in, strlen(in), CFG_MMT_COUNTER, &r) != 0 ||
            strcmp(r.name, "req_total") != 0 || r.nlabels != 1 ||
            strcmp(r.label_values[0], want + 4) != 0)
            a->failures++;
    }
    if (!c)
        a->failures++;
    cfg_mapper_cache_free(c);
    return NULL;
}

static void test_threads_share_mapper(void **state) {
    (void)state;
    static const rule_spec rs[] = {GLOB("svc.*.req", "req_total", "svc=$1")};
    cfg_config *cf = mk_config(rs, 1, 0);
    cfg_mapper *m = mk_mapper(cf);
    pthread_t t[4];
    worker_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (worker_arg){m, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].failures, 0);
    }
    cfg_mapper_free(m);
    free_config(cf);
}

/* ---- more edges: templates, UTF-8, precedence below a node, scratch, the cache ------------- */

/* Go's decoder: a valid sequence is one rune (one '_'), each byte of an invalid one is a rune. */
static void test_escape_utf8_edges(void **state) {
    (void)state;
    static const struct {
        const char *in, *out;
    } t[] = {
        {"a\xc3", "a_"},              /* 2-byte lead at the end */
        {"a\xc3Z", "a_Z"},            /* 2-byte lead, no continuation */
        {"\xe2\x82\xac", "_"},        /* U+20AC */
        {"\xe2Z\x82", "_Z_"},         /* 3-byte, bad second byte */
        {"\xe2\x82Z", "__Z"},         /* 3-byte, bad third byte */
        {"\xe0\x80\x80", "___"},      /* overlong 3-byte */
        {"\xe0\xa0\x80", "_"},        /* U+0800, the first 3-byte */
        {"\xed\x9f\xbf", "_"},        /* U+D7FF, the last before the surrogates */
        {"\xf0\x9f\x98", "___"},      /* 4-byte, truncated */
        {"\xf0Z\x98\x80", "_Z__"},    /* 4-byte, bad second byte */
        {"\xf0\x9fZ\x80", "__Z_"},    /* bad third byte */
        {"\xf0\x9f\x98Z", "___Z"},    /* bad fourth byte */
        {"\xf0\x80\x80\x80", "____"}, /* overlong 4-byte */
        {"\xf0\x90\x80\x80", "_"},    /* U+10000, the first 4-byte */
        {"\xf5\x80\x80\x80", "____"}, /* no such lead byte */
    };
    char buf[64];
    for (size_t i = 0; i < NRULES(t); i++) {
        long n = cfg_escape_metric_name(t[i].in, strlen(t[i].in), buf, sizeof(buf));
        if (n < 0 || strcmp(buf, t[i].out) != 0) {
            fprintf(stderr, "escape(case %zu) = %s, want %s\n", i, n < 0 ? "-1" : buf, t[i].out);
            fail();
        }
    }
}

/* Template references at their edges: glob (statsd_exporter's formatter) and regex (Go's
 * Regexp.Expand). */
static void test_template_edges(void **state) {
    (void)state;
    static char longref[300];
    static char regex_labels[512];
    memset(longref, 'n', 260);
    longref[260] = 0;
    snprintf(regex_labels, sizeof regex_labels,
             "big=$123456789;huge=$1234567890;zero=$0;lead0=$01;dotbrace=${1.;named=${sub};gone=$7;"
             "long=$%s",
             longref);
    const rule_spec rs[] = {
        GLOB("g.*", "glob_$1", "far=x$9.y;mixed=${1a}z;bare=$;open=${;whole=$0"),
        REGEX("^r\\.(?<sub>[a-z]+)$", "regex", regex_labels),
    };
    static const map_case cs[] = {
        C_("g.q", 1, "glob_q", "far=x.y;mixed=z;bare=$;open=${;whole=g.q"),
        C_("r.abc", 1, "regex", "big=;huge=;zero=r.abc;lead0=;dotbrace=${1.;named=abc;gone=;long="),
    };
    run_table(rs, NRULES(rs), 0, cs, NRULES(cs));
}

/* A rule whose match_type is unset takes the defaults' (the loader always sets it; a
 * hand-built config may not). A NULL label value is the empty string. */
static void test_default_match_type(void **state) {
    (void)state;
    static const rule_spec rs[] = {
        {"^x(\\d+)$", CFG_MATCH_DEFAULT, CFG_MMT_ANY, CFG_ACTION_MAP, "x_$1", "v=$1;n=z"},
    };
    cfg_config *c = mk_config(rs, 1, 0);
    c->defaults.match_type = CFG_MATCH_REGEX;
    free(c->mappings[0].labels[1].value);
    c->mappings[0].labels[1].value = NULL;
    cfg_mapper *m = mk_mapper(c);
    static const map_case cs[] = {C_("x12", 1, "x_12", "v=12;n="), C_("x.y", 0, "x_y", NULL)};
    run_cases(m, cs, NRULES(cs));
    cfg_mapper_free(m);
    /* As a glob, the same pattern does not compile. */
    c->defaults.match_type = CFG_MATCH_GLOB;
    cfg_errors e = {0};
    assert_null(cfg_mapper_create(c, &e));
    assert_int_equal(e.count, 1);
    assert_non_null(strstr(e.items[0].message, "invalid match \"^x(\\d+)$\""));
    cfg_errors_free(&e);
    /* Without an error list the result alone says it failed. */
    assert_null(cfg_mapper_create(c, NULL));
    free_config(c);
}

/* Ordered globs: the smallest rule index wins even when a subtree below "*" holds a smaller
 * one; a node whose rules do not apply to the kind yields nothing. */
static void test_precedence_below_nodes(void **state) {
    (void)state;
    static const rule_spec rs[] = {
        GLOB("a.*.c", "r0", NULL),
        GLOB("a.b", "r1", NULL),
        GLOB("a.*", "r2", NULL),
        {"k.b.c", CFG_MATCH_GLOB, CFG_MMT_COUNTER, CFG_ACTION_MAP, "k_counter", NULL},
        {"k.b", CFG_MATCH_GLOB, CFG_MMT_GAUGE, CFG_ACTION_MAP, "k_gauge", NULL},
    };
    static const map_case cs[] = {
        C_("a.b", 1, "r1", NULL),
        C_("a.x", 1, "r2", NULL),
        C_("a.b.c", 1, "r0", NULL),
        C_("k.b.c", 1, "k_counter", NULL),
        C_("k.b", 0, "k_b", NULL), /* only a gauge rule there */
        {"k.b", 0, CFG_MMT_GAUGE, 0, 1, "k_gauge", NULL},
    };
    run_table(rs, NRULES(rs), 0, cs, NRULES(cs));
    /* Unordered: the same answers for these names (a literal part is tried before "*"). */
    run_table(rs, NRULES(rs), 1, cs, NRULES(cs));
}

/* The cache: NULL arguments, one entry (its head is its tail), a result too big to keep, and
 * match data grown for a mapper with more groups. */
static void test_cache_edges(void **state) {
    (void)state;
    uint64_t h = 7, mi = 7;
    cfg_mapper_cache_stats(NULL, &h, &mi);
    assert_int_equal(h, 0);
    assert_int_equal(mi, 0);

    static const rule_spec rs[] = {GLOB("k.*", "k_${1}", NULL)};
    cfg_config *cf = mk_config(rs, 1, 0);
    cfg_mapper *m = mk_mapper(cf);
    cfg_mapper_cache *c = cfg_mapper_cache_create(1);
    assert_non_null(c);
    cfg_map_result r;
    assert_int_equal(cfg_mapper_map(m, NULL, "k.a", 3, CFG_MMT_COUNTER, &r), -1);
    assert_int_equal(cfg_mapper_map(m, c, "k.a", 3, CFG_MMT_COUNTER, NULL), -1);
    expect_stats(c, 0, 0);
    assert_string_equal(map_name(m, c, "k.a", CFG_MMT_COUNTER), "k_a");
    assert_string_equal(map_name(m, c, "k.a", CFG_MMT_COUNTER), "k_a");
    expect_stats(c, 1, 1);
    assert_string_equal(map_name(m, c, "k.b", CFG_MMT_COUNTER), "k_b"); /* evicts k.a */
    assert_string_equal(map_name(m, c, "k.a", CFG_MMT_COUNTER), "k_a"); /* evicts k.b */
    assert_string_equal(map_name(m, c, "k.a", CFG_MMT_COUNTER), "k_a");
    expect_stats(c, 2, 3);
    cfg_mapper_cache_free(c);
    cfg_mapper_free(m);
    free_config(cf);

    /* A 20000-byte label value: mapped right every time, never cached. */
    static char big[20010];
    memcpy(big, "v=", 2);
    memset(big + 2, 'x', 20000);
    big[20002] = 0;
    const rule_spec rb[] = {GLOB("b.*", "big", big)};
    cf = mk_config(rb, 1, 0);
    m = mk_mapper(cf);
    c = cfg_mapper_cache_create(8);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cfg_mapper_map(m, c, "b.q", 3, CFG_MMT_COUNTER, &r), 0);
        assert_string_equal(r.name, "big");
        assert_int_equal(r.nlabels, 1);
        assert_int_equal(strlen(r.label_values[0]), 20000);
    }
    expect_stats(c, 0, 2);
    cfg_mapper_free(m);
    free_config(cf);

    /* One group, then three, through the same cache. */
    static const rule_spec r1[] = {REGEX("^(a)$", "one", "x=$1")};
    static const rule_spec r3[] = {REGEX("^(b)(c)(d)$", "three", "x=$1;z=$3")};
    cfg_config *c1 = mk_config(r1, 1, 0), *c3 = mk_config(r3, 1, 0);
    cfg_mapper *m1 = mk_mapper(c1), *m3 = mk_mapper(c3);
    assert_int_equal(cfg_mapper_map(m1, c, "a", 1, CFG_MMT_COUNTER, &r), 0);
    assert_string_equal(r.label_values[0], "a");
    assert_int_equal(cfg_mapper_map(m3, c, "bcd", 3, CFG_MMT_COUNTER, &r), 0);
    assert_string_equal(r.name, "three");
    assert_string_equal(r.label_values[0], "b");
    assert_string_equal(r.label_values[1], "d");
    cfg_mapper_free(m1);
    cfg_mapper_free(m3);
    free_config(c1);
    free_config(c3);
    cfg_mapper_cache_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob_captures),
        cmocka_unit_test(test_glob_star_only),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_match_metric_type),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_glob_disable_ordering),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_unmapped),
        cmocka_unit_test(test_cache_lru),
        cmocka_unit_test(test_cache_mapper_change),
        cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_threads_share_mapper),
        cmocka_unit_test(test_escape_utf8_edges),
        cmocka_unit_test(test_template_edges),
        cmocka_unit_test(test_default_match_type),
        cmocka_unit_test(test_precedence_below_nodes),
        cmocka_unit_test(test_cache_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
