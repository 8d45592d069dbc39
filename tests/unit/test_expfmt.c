/* test_expfmt.c - unit tests of the exposition formats (exporter/expfmt.c): exact text and
 * OpenMetrics output for every metric type, escaping of hostile help and label values,
 * special numbers, streaming in tiny chunks, gzip round trips, a 100,000-series family,
 * histogram invariants under concurrent updates, lines larger than the internal buffer,
 * Accept / Accept-Encoding negotiation, and validation by promtool and the Python
 * OpenMetrics parser when they are installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "http/expfmt.h"
#include "registry.h"

/* ---- helpers ----------------------------------------------------------------------------- */

typedef struct {
    reg_registry *r;
    reg_thread *t;
} fixture;

static fixture fx_new(void) {
    reg_options o = {0};
    o.start_reaper = 0;
    fixture fx;
    fx.r = reg_create(&o);
    assert_non_null(fx.r);
    fx.t = reg_thread_attach(fx.r);
    assert_non_null(fx.t);
    return fx;
}

static void fx_free(fixture *fx) {
    reg_thread_detach(fx->t);
    reg_destroy(fx->r);
}

/* Add a family; must be inside a section of fx->t. */
static reg_family *fam(fixture *fx, const reg_family_def *d) {
    reg_family *f = NULL;
    int rc = reg_family_add(fx->t, d, &f);
    if (rc != REG_OK)
        fail_msg("reg_family_add(%s): %s", d->name, reg_strerror(rc));
    return f;
}

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const void *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n + 1)
            nc *= 2;
        b->p = realloc(b->p, nc);
        assert_non_null(b->p);
        b->cap = nc;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static char *gunzip(const char *in, size_t n, size_t *outlen) {
    z_stream zs = {0};
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    sbuf out = {0};
    sb_add(&out, "", 0);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    char tmp[65536];
    int rc;
    do {
        zs.next_out = (Bytef *)tmp;
        zs.avail_out = sizeof tmp;
        rc = inflate(&zs, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END)
            fail_msg("inflate: %d (%s)", rc, zs.msg ? zs.msg : "");
        sb_add(&out, tmp, sizeof tmp - zs.avail_out);
    } while (rc != Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0); /* nothing after the gzip trailer */
    inflateEnd(&zs);
    *outlen = out.n;
    return out.p;
}

/* One full scrape read with `chunk`-byte reads; inflated when gzip. NUL-terminated. */
static char *scrape(reg_registry *r, exp_format fmt, int gzip, size_t chunk, size_t *len) {
    exp_scrape *s = exp_scrape_begin(r, fmt, gzip);
    assert_non_null(s);
    char *buf = malloc(chunk);
    assert_non_null(buf);
    sbuf out = {0};
    sb_add(&out, "", 0);
    long n;
    while ((n = exp_scrape_read(s, buf, chunk)) > 0) {
        assert_true((size_t)n <= chunk);
        sb_add(&out, buf, (size_t)n);
    }
    assert_int_equal(n, 0);
    assert_int_equal(exp_scrape_read(s, buf, chunk), 0); /* stays at the end */
    exp_scrape_end(s);
    free(buf);
    if (gzip) {
        size_t pl;
        char *plain = gunzip(out.p, out.n, &pl);
        free(out.p);
        out.p = plain;
        out.n = pl;
    }
    if (len)
        *len = out.n;
    return out.p;
}

static char *scrape_text(reg_registry *r, exp_format fmt) {
    return scrape(r, fmt, 0, 65536, NULL);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Canonical form for comparison: OpenMetrics _created values replaced by "C", and the
 * sample lines of counter/gauge/untyped/unknown families sorted (series order within a
 * family is the registry's hash order). Histogram and summary lines keep their order. */
static char *canon(const char *in) {
    char *copy = strdup(in);
    assert_non_null(copy);
    size_t nl = 0, cap = 1024;
    char **lines = malloc(cap * sizeof(char *));
    assert_non_null(lines);
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (nl == cap) {
            cap *= 2;
            lines = realloc(lines, cap * sizeof(char *));
            assert_non_null(lines);
        }
        lines[nl++] = l;
    }
    sbuf out = {0};
    sb_add(&out, "", 0);
    int sortable = 0;
    size_t run = 0; /* start of the current run of sample lines */
    for (size_t i = 0; i <= nl; i++) {
        if (i == nl || lines[i][0] == '#') {
            if (sortable && i > run)
                qsort(lines + run, i - run, sizeof(char *), cmp_str);
            for (size_t k = run; k < i; k++) {
                char *l = lines[k];
                char *sp = strrchr(l, ' ');
                size_t namelen = strcspn(l, "{ ");
                if (sp && namelen >= 8 && strncmp(l + namelen - 8, "_created", 8) == 0) {
                    sb_add(&out, l, (size_t)(sp - l));
                    sb_add(&out, " C\n", 3);
                } else {
                    sb_add(&out, l, strlen(l));
                    sb_add(&out, "\n", 1);
                }
            }
            if (i == nl)
                break;
            sb_add(&out, lines[i], strlen(lines[i]));
            sb_add(&out, "\n", 1);
            if (strncmp(lines[i], "# TYPE ", 7) == 0) {
                const char *ty = strrchr(lines[i], ' ') + 1;
                sortable = strcmp(ty, "histogram") != 0 && strcmp(ty, "summary") != 0;
            }
            run = i + 1;
        }
    }
    free(lines);
    free(copy);
    return out.p;
}

static void assert_canon_equal(const char *got, const char *want) {
    char *g = canon(got), *w = canon(want);
    if (strcmp(g, w) != 0)
        fail_msg("output differs.\n--- got:\n%s\n--- want:\n%s", g, w);
    free(g);
    free(w);
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Write text to a temp file and run cmd with it on stdin. Returns the exit status. */
static int run_with_stdin(const char *cmd, const char *text, size_t len) {
    char path[] = "/tmp/test_expfmt_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    char *full = NULL;
    assert_true(asprintf(&full, "%s < %s", cmd, path) > 0);
    int st = system(full);
    free(full);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* ---- numbers ----------------------------------------------------------------------------- */

static void test_format_double_table(void **state) {
    (void)state;
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0.0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-1, "-1"},
        {42, "42"},
        {-123456, "-123456"},
        {123456789012345, "123456789012345"},
        {999999999999999, "999999999999999"},
        {1e15, "1e+15"},
        {0.1, "0.1"},
        {0.005, "0.005"},
        {1.5, "1.5"},
        {-2.25, "-2.25"},
        {1e-300, "1e-300"},
        {1.0 / 3, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {5e-324, "4.94065645841247e-324"},
        {1.7e308, "1.7e+308"},
        {9007199254740993.0, "9007199254740992"},
        {0.001, "0.001"},
        {0.0001, "0.0001"},
        {0.00012, "0.00012"},
        {1e-05, "1e-05"},
        {-3.5, "-3.5"},
        {12.25, "12.25"},
        {123456.789, "123456.789"},
        {99999999999999.9, "99999999999999.9"},
        {999999999999999.9, "999999999999999.9"},
        {1e15 + 0.5, "1000000000000000.5"},
        {0.1 + 0.7, "0.7999999999999999"},
        {1234567890.123456, "1234567890.123456"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = exp_format_double(cases[i].v, buf);
        assert_int_equal(n, strlen(buf));
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("exp_format_double(%.17g) = %s, want %s", cases[i].v, buf, cases[i].want);
    }
    assert_int_equal(exp_format_double(NAN, buf), 3);
    assert_string_equal(buf, "NaN");
    exp_format_double(-NAN, buf);
    assert_string_equal(buf, "NaN");
    exp_format_double(INFINITY, buf);
    assert_string_equal(buf, "+Inf");
    exp_format_double(-INFINITY, buf);
    assert_string_equal(buf, "-Inf");
}

/* Whole numbers at every digit count's edges print as %lld does: the digit count comes from
 * the bit length, so 10^k - 1, 10^k and 10^k + 1 (and the powers of two) are where it could
 * be off by one. */
static void test_format_double_integers(void **state) {
    (void)state;
    char buf[32], want[32];
    long long p10 = 1;
    for (int k = 0; k <= 15; k++, p10 *= 10) {
        const long long near[] = {p10 - 1, p10, p10 + 1, (long long)1 << (3 * k + 4) >> 4};
        for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
            for (int sign = 1; sign >= -1; sign -= 2) {
                long long x = sign * near[i];
                if (x >= 1000000000000000LL || x <= -1000000000000000LL)
                    continue; /* 1e15 and beyond: exponent form (the table) */
                size_t n = exp_format_double((double)x, buf);
                snprintf(want, sizeof want, "%lld", x);
                assert_int_equal(n, strlen(want));
                assert_string_equal(buf, want);
            }
        }
    }
}

/* Decimals with few digits come out as written. */
static void test_format_double_short_decimals(void **state) {
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char buf[32], src[48];
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t m = (x >> 20) % 1000000000000ull;
        int d = 1 + (int)(x % 12);
        if (m % 10 == 0)
            m++;
        snprintf(src, sizeof src, "%s%llue-%d", x & 1 ? "-" : "", (unsigned long long)m, d);
        double v = strtod(src, NULL);
        if (fabs(v) < 1e-4 || v == (double)(int64_t)v)
            continue;
        exp_format_double(v, buf);
        if (strtod(buf, NULL) != v)
            fail_msg("%s printed as %s", src, buf);
        /* as short as the digits it was made from */
        size_t sig = 0;
        for (const char *p = buf; *p && *p != 'e'; p++)
            sig += *p >= '0' && *p <= '9';
        char md[24];
        size_t ml = (size_t)snprintf(md, sizeof md, "%llu", (unsigned long long)m);
        size_t lead = 0; /* leading zeros such as in 0.00123 */
        for (const char *p = buf + (buf[0] == '-'); *p == '0' || *p == '.'; p++)
            lead += *p == '0';
        if (sig - lead > ml)
            fail_msg("%s printed as %s: longer than needed", src, buf);
    }
}

static void test_format_double_roundtrip(void **state) {
    (void)state;
    uint64_t x = 0x243f6a8885a308d3ull;
    char buf[32];
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        if (i % 3 == 0) {
            memcpy(&v, &x, sizeof v); /* any bit pattern, incl. subnormals */
        } else if (i % 3 == 1) {
            v = (double)(int64_t)(x >> 12) / (double)(1 + (x & 0xfff)); /* ratios */
        } else {
            v = (double)(int64_t)(x >> (x & 63)); /* integers of every size */
        }
        if (isnan(v) || isinf(v))
            continue;
        size_t n = exp_format_double(v, buf);
        assert_true(n > 0 && n < 32);
        if (strtod(buf, NULL) != v)
            fail_msg("%a printed as %s", v, buf);
        assert_null(strchr(buf, ' '));
    }
}

/* Histogram le values follow Go's FormatFloat(v, 'g', -1, 64); OpenMetrics adds ".0". */
static void test_le_formatting(void **state) {
    (void)state;
    fixture fx = fx_new();
    static const double b[] = {-2.5, -1, 0,      1e-05,  0.0001, 0.005,   0.25,  1,
                               2.5,  10, 100000, 999999, 1e6,    1234567, 1.5e6, 1e21};
    static const char *text_le[] = {
        "-2.5", "-1",     "0",      "1e-05", "0.0001",       "0.005",   "0.25",  "1",   "2.5",
        "10",   "100000", "999999", "1e+06", "1.234567e+06", "1.5e+06", "1e+21", "+Inf"};
    static const char *om_le[] = {
        "-2.5", "-1.0",     "0.0",      "1e-05", "0.0001",       "0.005",   "0.25",  "1.0", "2.5",
        "10.0", "100000.0", "999999.0", "1e+06", "1.234567e+06", "1.5e+06", "1e+21", "+Inf"};
    reg_family_def d = {.name = "le_check",
                        .help = "le formatting.",
                        .type = REG_HISTOGRAM,
                        .nbuckets = sizeof b / sizeof b[0],
                        .buckets = b};
    static const reg_objective obj[] = {{0.5, 0.05}, {0.75, 0.01}, {0.999, 0.0001}};
    reg_family_def q = {.name = "q_check",
                        .help = "quantile formatting.",
                        .type = REG_SUMMARY,
                        .nobjectives = 3,
                        .objectives = obj};
    reg_begin(fx.t);
    assert_int_equal(reg_observe(fx.t, fam(&fx, &d), NULL, 3), REG_OK);
    assert_int_equal(reg_observe(fx.t, fam(&fx, &q), NULL, 3), REG_OK);
    reg_end(fx.t);
    for (int om = 0; om < 2; om++) {
        char *out = scrape_text(fx.r, om ? EXP_FMT_OPENMETRICS : EXP_FMT_TEXT);
        const char *p = out;
        for (size_t i = 0; i <= sizeof b / sizeof b[0]; i++) {
            char want[64];
            snprintf(want, sizeof want, "le_check_bucket{le=\"%s\"} ", om ? om_le[i] : text_le[i]);
            const char *hit = strstr(p, want);
            if (hit == NULL)
                fail_msg("missing (in order) %s in:\n%s", want, out);
            p = hit + 1;
        }
        assert_non_null(strstr(out, "q_check{quantile=\"0.5\"} "));
        assert_non_null(strstr(out, "q_check{quantile=\"0.75\"} "));
        assert_non_null(strstr(out, "q_check{quantile=\"0.999\"} "));
        free(out);
    }
    fx_free(&fx);
}

/* ---- exact output ------------------------------------------------------------------------ */

/* The families of the exact-output and validator tests. lint_clean leaves out what promtool's
 * linter rightly complains about (a counter without _total, an untyped family without help),
 * though both are valid exposition. */
static void build_rich(fixture *fx, int lint_clean) {
    static const char *path_l[] = {"path"};
    static const char *cn[] = {"team"};
    static const char *cv[] = {"pay\"ments\\x\nd"};
    static const char *case_l[] = {"case"};
    static const char *op_l[] = {"op"};
    static const char *zn[] = {"zone"};
    static const char *zv[] = {"eu"};
    static const double lat_b[] = {0.005, 0.25, 1, 2.5, 1e6};
    static const reg_objective obj[] = {{0.5, 0.05}, {0.9, 0.01}, {0.99, 0.001}};

    reg_family_def req = {.name = "esc_requests_total",
                          .help = "Requests \"quoted\", back\\slash and\nnewline; UTF-8: "
                                  "temp\xc3\xa9rature \xe2\x9c\x93",
                          .type = REG_COUNTER,
                          .nlabels = 1,
                          .labels = path_l,
                          .nconst = 1,
                          .const_names = cn,
                          .const_values = cv};
    reg_family_def gauges = {.name = "gauge_values",
                             .help = "Special values.",
                             .type = REG_GAUGE,
                             .nlabels = 1,
                             .labels = case_l};
    reg_family_def lat = {.name = "lat_seconds",
                          .help = "Latency.",
                          .unit = "seconds",
                          .type = REG_HISTOGRAM,
                          .nlabels = 1,
                          .labels = op_l,
                          .nconst = 1,
                          .const_names = zn,
                          .const_values = zv,
                          .nbuckets = 5,
                          .buckets = lat_b};
    reg_family_def legacy = {.name = "legacy_value", .type = REG_UNTYPED};
    reg_family_def plain = {.name = "plain_counter", .help = "No suffix.", .type = REG_COUNTER};
    reg_family_def rpc = {.name = "rpc_size_bytes",
                          .help = "Sizes.",
                          .unit = "bytes",
                          .type = REG_SUMMARY,
                          .nobjectives = 3,
                          .objectives = obj};
    reg_family_def empty = {.name = "empty_gauge", .help = "Never set.", .type = REG_GAUGE};
    reg_family_def dur = {.name = "job_duration_seconds",
                          .help = "Unit does not match the name.",
                          .unit = "milliseconds",
                          .type = REG_GAUGE};

    reg_begin(fx->t);
    reg_family *f = fam(fx, &req);
    const char *pv[] = {"/a\"b\\c\n\xc3\xbc\xf0\x9f\x98\x80"};
    assert_int_equal(reg_counter_add(fx->t, f, pv, 3), REG_OK);
    assert_int_equal(reg_counter_add(fx->t, f, pv, 0.5), REG_OK);

    f = fam(fx, &gauges);
    static const struct {
        const char *c;
        double v;
    } gv[] = {{"nan", NAN},     {"pinf", INFINITY}, {"minf", -INFINITY}, {"negzero", -0.0},
              {"tiny", 1e-300}, {"huge", DBL_MAX},  {"int", -42},        {"big", 123456789012345.0},
              {"frac", 0.1},    {"e15", 1e15}};
    for (size_t i = 0; i < sizeof gv / sizeof gv[0]; i++) {
        const char *v[] = {gv[i].c};
        assert_int_equal(reg_gauge_set(fx->t, f, v, gv[i].v), REG_OK);
    }

    f = fam(fx, &lat);
    const char *rd[] = {"read"};
    static const double obs[] = {0.00390625, 0.125, 0.5, 2, 4e6};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(reg_observe(fx->t, f, rd, obs[i]), REG_OK);

    f = fam(fx, &rpc);
    for (int i = 0; i < 3; i++)
        assert_int_equal(reg_observe(fx->t, f, NULL, 2), REG_OK);

    fam(fx, &empty);
    assert_int_equal(reg_gauge_set(fx->t, fam(fx, &dur), NULL, 1.5), REG_OK);
    if (!lint_clean) {
        assert_int_equal(reg_gauge_set(fx->t, fam(fx, &legacy), NULL, 7.25), REG_OK);
        assert_int_equal(reg_counter_add(fx->t, fam(fx, &plain), NULL, 7), REG_OK);
    }
    reg_end(fx->t);
}

static const char want_text[] =
    "# HELP esc_requests_total Requests \"quoted\", back\\\\slash and\\nnewline; UTF-8: "
    "temp\xc3\xa9rature \xe2\x9c\x93\n"
    "# TYPE esc_requests_total counter\n"
    "esc_requests_total{team=\"pay\\\"ments\\\\x\\nd\",path=\"/"
    "a\\\"b\\\\c\\n\xc3\xbc\xf0\x9f\x98\x80\"}"
    " 3.5\n"
    "# HELP gauge_values Special values.\n"
    "# TYPE gauge_values gauge\n"
    "gauge_values{case=\"big\"} 123456789012345\n"
    "gauge_values{case=\"e15\"} 1e+15\n"
    "gauge_values{case=\"frac\"} 0.1\n"
    "gauge_values{case=\"huge\"} 1.7976931348623157e+308\n"
    "gauge_values{case=\"int\"} -42\n"
    "gauge_values{case=\"minf\"} -Inf\n"
    "gauge_values{case=\"nan\"} NaN\n"
    "gauge_values{case=\"negzero\"} 0\n"
    "gauge_values{case=\"pinf\"} +Inf\n"
    "gauge_values{case=\"tiny\"} 1e-300\n"
    "# HELP job_duration_seconds Unit does not match the name.\n"
    "# TYPE job_duration_seconds gauge\n"
    "job_duration_seconds 1.5\n"
    "# HELP lat_seconds Latency.\n"
    "# TYPE lat_seconds histogram\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"0.005\"} 1\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"0.25\"} 2\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"1\"} 3\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"2.5\"} 4\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"1e+06\"} 4\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"+Inf\"} 5\n"
    "lat_seconds_sum{zone=\"eu\",op=\"read\"} 4000002.62890625\n"
    "lat_seconds_count{zone=\"eu\",op=\"read\"} 5\n"
    "# TYPE legacy_value untyped\n"
    "legacy_value 7.25\n"
    "# HELP plain_counter No suffix.\n"
    "# TYPE plain_counter counter\n"
    "plain_counter 7\n"
    "# HELP rpc_size_bytes Sizes.\n"
    "# TYPE rpc_size_bytes summary\n"
    "rpc_size_bytes{quantile=\"0.5\"} 2\n"
    "rpc_size_bytes{quantile=\"0.9\"} 2\n"
    "rpc_size_bytes{quantile=\"0.99\"} 2\n"
    "rpc_size_bytes_sum 6\n"
    "rpc_size_bytes_count 3\n";

static const char want_om[] =
    "# HELP esc_requests Requests \\\"quoted\\\", back\\\\slash and\\nnewline; UTF-8: "
    "temp\xc3\xa9rature \xe2\x9c\x93\n"
    "# TYPE esc_requests counter\n"
    "esc_requests_total{team=\"pay\\\"ments\\\\x\\nd\",path=\"/"
    "a\\\"b\\\\c\\n\xc3\xbc\xf0\x9f\x98\x80\"}"
    " 3.5\n"
    "esc_requests_created{team=\"pay\\\"ments\\\\x\\nd\",path=\"/"
    "a\\\"b\\\\c\\n\xc3\xbc\xf0\x9f\x98\x80\"}"
    " C\n"
    "# HELP gauge_values Special values.\n"
    "# TYPE gauge_values gauge\n"
    "gauge_values{case=\"big\"} 123456789012345.0\n"
    "gauge_values{case=\"e15\"} 1e+15\n"
    "gauge_values{case=\"frac\"} 0.1\n"
    "gauge_values{case=\"huge\"} 1.7976931348623157e+308\n"
    "gauge_values{case=\"int\"} -42.0\n"
    "gauge_values{case=\"minf\"} -Inf\n"
    "gauge_values{case=\"nan\"} NaN\n"
    "gauge_values{case=\"negzero\"} 0.0\n"
    "gauge_values{case=\"pinf\"} +Inf\n"
    "gauge_values{case=\"tiny\"} 1e-300\n"
    "# HELP job_duration_seconds Unit does not match the name.\n"
    "# TYPE job_duration_seconds gauge\n"
    "job_duration_seconds 1.5\n"
    "# HELP lat_seconds Latency.\n"
    "# TYPE lat_seconds histogram\n"
    "# UNIT lat_seconds seconds\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"0.005\"} 1\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"0.25\"} 2\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"1.0\"} 3\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"2.5\"} 4\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"1e+06\"} 4\n"
    "lat_seconds_bucket{zone=\"eu\",op=\"read\",le=\"+Inf\"} 5\n"
    "lat_seconds_sum{zone=\"eu\",op=\"read\"} 4000002.62890625\n"
    "lat_seconds_count{zone=\"eu\",op=\"read\"} 5\n"
    "lat_seconds_created{zone=\"eu\",op=\"read\"} C\n"
    "# TYPE legacy_value unknown\n"
    "legacy_value 7.25\n"
    "# HELP plain_counter No suffix.\n"
    "# TYPE plain_counter unknown\n"
    "plain_counter 7.0\n"
    "# HELP rpc_size_bytes Sizes.\n"
    "# TYPE rpc_size_bytes summary\n"
    "# UNIT rpc_size_bytes bytes\n"
    "rpc_size_bytes{quantile=\"0.5\"} 2.0\n"
    "rpc_size_bytes{quantile=\"0.9\"} 2.0\n"
    "rpc_size_bytes{quantile=\"0.99\"} 2.0\n"
    "rpc_size_bytes_sum 6.0\n"
    "rpc_size_bytes_count 3\n"
    "rpc_size_bytes_created C\n"
    "# EOF\n";

static void test_exact_text(void **state) {
    (void)state;
    fixture fx = fx_new();
    build_rich(&fx, 0);
    char *out = scrape_text(fx.r, EXP_FMT_TEXT);
    assert_canon_equal(out, want_text);
    free(out);
    fx_free(&fx);
}

static void test_exact_openmetrics(void **state) {
    (void)state;
    fixture fx = fx_new();
    double t0 = (double)time(NULL) - 1;
    build_rich(&fx, 0);
    double t1 = (double)time(NULL) + 1;
    char *out = scrape_text(fx.r, EXP_FMT_OPENMETRICS);
    assert_canon_equal(out, want_om);
    /* _created is the series' creation time in seconds. */
    for (const char *p = strstr(out, "_created"); p; p = strstr(p + 1, "_created")) {
        const char *sp = strchr(p, '\n');
        while (sp > p && sp[-1] != ' ')
            sp--;
        double c = strtod(sp, NULL);
        assert_true(c >= t0 && c <= t1);
    }
    free(out);
    fx_free(&fx);
}

static void test_empty_registry(void **state) {
    (void)state;
    fixture fx = fx_new();
    reg_family_def d = {.name = "nothing_yet", .help = "No series.", .type = REG_COUNTER};
    reg_begin(fx.t);
    fam(&fx, &d);
    reg_end(fx.t);
    size_t n;
    char *out = scrape(fx.r, EXP_FMT_TEXT, 0, 100, &n);
    assert_int_equal(n, 0);
    free(out);
    out = scrape(fx.r, EXP_FMT_OPENMETRICS, 0, 100, &n);
    assert_string_equal(out, "# EOF\n");
    free(out);
    for (int om = 0; om < 2; om++) { /* an empty gzip stream is still a valid stream */
        out = scrape(fx.r, om ? EXP_FMT_OPENMETRICS : EXP_FMT_TEXT, 1, 3, &n);
        assert_string_equal(out, om ? "# EOF\n" : "");
        free(out);
    }
    fx_free(&fx);
}

/* A counter x and a counter x_total are both "x" in OpenMetrics: one is kept. */
static void test_openmetrics_counter_clash(void **state) {
    (void)state;
    fixture fx = fx_new();
    reg_family_def a = {.name = "jobs", .help = "A.", .type = REG_COUNTER};
    reg_family_def b = {.name = "jobs_total", .help = "B.", .type = REG_COUNTER};
    reg_family_def c = {.name = "jobs_a", .help = "C.", .type = REG_GAUGE};
    reg_begin(fx.t);
    assert_int_equal(reg_counter_add(fx.t, fam(&fx, &a), NULL, 1), REG_OK);
    assert_int_equal(reg_counter_add(fx.t, fam(&fx, &b), NULL, 2), REG_OK);
    assert_int_equal(reg_gauge_set(fx.t, fam(&fx, &c), NULL, 3), REG_OK);
    reg_end(fx.t);
    char *out = scrape_text(fx.r, EXP_FMT_OPENMETRICS);
    assert_canon_equal(out, "# HELP jobs A.\n# TYPE jobs unknown\njobs 1.0\n"
                            "# HELP jobs_a C.\n# TYPE jobs_a gauge\njobs_a 3.0\n# EOF\n");
    free(out);
    out = scrape_text(fx.r, EXP_FMT_TEXT);
    assert_canon_equal(out, "# HELP jobs A.\n# TYPE jobs counter\njobs 1\n"
                            "# HELP jobs_a C.\n# TYPE jobs_a gauge\njobs_a 3\n"
                            "# HELP jobs_total B.\n# TYPE jobs_total counter\njobs_total 2\n");
    free(out);
    fx_free(&fx);
}

/* OpenMetrics forbids a negative _sum and any _sum with negative buckets. */
static void test_openmetrics_negative_sums(void **state) {
    (void)state;
    fixture fx = fx_new();
    static const double nb[] = {-1, 0, 1};
    static const double pb[] = {1, 2};
    static const reg_objective obj[] = {{0.5, 0.05}};
    reg_family_def hn = {
        .name = "hneg", .help = "h.", .type = REG_HISTOGRAM, .nbuckets = 3, .buckets = nb};
    reg_family_def hp = {
        .name = "hpos", .help = "h.", .type = REG_HISTOGRAM, .nbuckets = 2, .buckets = pb};
    reg_family_def sn = {
        .name = "sneg", .help = "s.", .type = REG_SUMMARY, .nobjectives = 1, .objectives = obj};
    reg_begin(fx.t);
    assert_int_equal(reg_observe(fx.t, fam(&fx, &hn), NULL, 0.5), REG_OK);
    assert_int_equal(reg_observe(fx.t, fam(&fx, &hp), NULL, -3), REG_OK);
    assert_int_equal(reg_observe(fx.t, fam(&fx, &sn), NULL, -3), REG_OK);
    reg_end(fx.t);
    char *out = scrape_text(fx.r, EXP_FMT_OPENMETRICS);
    assert_canon_equal(out, "# HELP hneg h.\n# TYPE hneg histogram\n"
                            "hneg_bucket{le=\"-1.0\"} 0\n"
                            "hneg_bucket{le=\"0.0\"} 0\n"
                            "hneg_bucket{le=\"1.0\"} 1\n"
                            "hneg_bucket{le=\"+Inf\"} 1\n"
                            "hneg_created C\n"
                            "# HELP hpos h.\n# TYPE hpos histogram\n"
                            "hpos_bucket{le=\"1.0\"} 1\n"
                            "hpos_bucket{le=\"2.0\"} 1\n"
                            "hpos_bucket{le=\"+Inf\"} 1\n"
                            "hpos_created C\n"
                            "# HELP sneg s.\n# TYPE sneg summary\n"
                            "sneg_count 1\n"
                            "sneg_created C\n"
                            "# EOF\n");
    free(out);
    out = scrape_text(fx.r, EXP_FMT_TEXT); /* the text format shows everything */
    assert_non_null(strstr(out, "hneg_sum 0.5\nhneg_count 1\n"));
    assert_non_null(strstr(out, "hpos_sum -3\nhpos_count 1\n"));
    assert_non_null(strstr(out, "sneg{quantile=\"0.5\"} -3\nsneg_sum -3\nsneg_count 1\n"));
    free(out);
    fx_free(&fx);
}

/* A summary with no observation in its window reports NaN quantiles. */
static void test_summary_empty_window(void **state) {
    (void)state;
    fixture fx = fx_new();
    static const reg_objective obj[] = {{0.5, 0.05}};
    reg_family_def s = {.name = "idle_summary",
                        .help = "s.",
                        .type = REG_SUMMARY,
                        .nobjectives = 1,
                        .objectives = obj};
    reg_family_def s0 = {.name = "plain_summary", .help = "s.", .type = REG_SUMMARY};
    reg_begin(fx.t);
    assert_int_equal(reg_touch(fx.t, fam(&fx, &s), NULL), REG_OK);
    assert_int_equal(reg_observe(fx.t, fam(&fx, &s0), NULL, 4), REG_OK);
    reg_end(fx.t);
    char *out = scrape_text(fx.r, EXP_FMT_TEXT);
    assert_string_equal(out, "# HELP idle_summary s.\n# TYPE idle_summary summary\n"
                             "idle_summary{quantile=\"0.5\"} NaN\n"
                             "idle_summary_sum 0\nidle_summary_count 0\n"
                             "# HELP plain_summary s.\n# TYPE plain_summary summary\n"
                             "plain_summary_sum 4\nplain_summary_count 1\n");
    free(out);
    fx_free(&fx);
}

/* ---- streaming --------------------------------------------------------------------------- */

static void test_tiny_reads_identical(void **state) {
    (void)state;
    fixture fx = fx_new();
    build_rich(&fx, 0);
    for (int om = 0; om < 2; om++) {
        exp_format fmt = om ? EXP_FMT_OPENMETRICS : EXP_FMT_TEXT;
        size_t n0;
        char *ref = scrape(fx.r, fmt, 0, 1 << 20, &n0);
        static const size_t chunks[] = {1, 2, 3, 7, 64, 4095};
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            size_t n;
            char *got = scrape(fx.r, fmt, 0, chunks[c], &n);
            assert_int_equal(n, n0);
            assert_memory_equal(got, ref, n0);
            free(got);
            got = scrape(fx.r, fmt, 1, chunks[c], &n);
            assert_int_equal(n, n0);
            assert_memory_equal(got, ref, n0);
            free(got);
        }
        free(ref);
    }
    fx_free(&fx);
}

static void test_bad_arguments(void **state) {
    (void)state;
    fixture fx = fx_new();
    build_rich(&fx, 1);
    char buf[16];
    assert_int_equal(exp_scrape_read(NULL, buf, sizeof buf), -1);
    exp_scrape_end(NULL);
    exp_scrape *s = exp_scrape_begin(fx.r, EXP_FMT_TEXT, 0);
    assert_non_null(s);
    assert_int_equal(exp_scrape_read(s, NULL, sizeof buf), -1);
    assert_int_equal(exp_scrape_read(s, buf, 0), -1);
    assert_true(exp_scrape_read(s, buf, sizeof buf) > 0);
    exp_scrape_end(s); /* mid-scrape */
    s = exp_scrape_begin(fx.r, EXP_FMT_OPENMETRICS, 1);
    assert_non_null(s);
    assert_true(exp_scrape_read(s, buf, 5) > 0);
    exp_scrape_end(s);
    /* Scrapes may overlap. */
    exp_scrape *a = exp_scrape_begin(fx.r, EXP_FMT_TEXT, 0);
    exp_scrape *b = exp_scrape_begin(fx.r, EXP_FMT_OPENMETRICS, 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(exp_scrape_read(a, buf, 3) > 0);
    assert_true(exp_scrape_read(b, buf, 3) > 0);
    exp_scrape_end(a);
    exp_scrape_end(b);
    fx_free(&fx);
}

#define BIG_N 100000

static void test_big_family_streamed(void **state) {
    (void)state;
    fixture fx = fx_new();
    static const char *ln[] = {"id", "shard"};
    static const char *cn[] = {"env"};
    static const char *cv[] = {"prod"};
    reg_family_def d = {.name = "big_ops_total",
                        .help = "Many series.",
                        .type = REG_COUNTER,
                        .nlabels = 2,
                        .labels = ln,
                        .nconst = 1,
                        .const_names = cn,
                        .const_values = cv};
    reg_begin(fx.t);
    reg_family *f = fam(&fx, &d);
    for (int i = 0; i < BIG_N; i++) {
        char id[16], sh[8];
        snprintf(id, sizeof id, "%d", i);
        snprintf(sh, sizeof sh, "s%d", i % 16);
        const char *v[] = {id, sh};
        assert_int_equal(reg_counter_add(fx.t, f, v, (double)(i % 1000) + (i % 2 ? 0.5 : 0)),
                         REG_OK);
    }
    reg_end(fx.t);

    size_t n;
    char *out = scrape(fx.r, EXP_FMT_TEXT, 0, 1000, &n);
    assert_int_equal(count_lines(out), BIG_N + 2);
    const char *hdr = "# HELP big_ops_total Many series.\n# TYPE big_ops_total counter\n";
    assert_memory_equal(out, hdr, strlen(hdr));
    unsigned char *seen = calloc(BIG_N, 1);
    assert_non_null(seen);
    char *save = NULL;
    char *l = strtok_r(out + strlen(hdr), "\n", &save);
    for (size_t k = 0; k < BIG_N; k++, l = strtok_r(NULL, "\n", &save)) {
        assert_non_null(l);
        int id, sh;
        char val[32];
        if (sscanf(l, "big_ops_total{env=\"prod\",id=\"%d\",shard=\"s%d\"} %31s", &id, &sh, val) !=
            3)
            fail_msg("bad line %s", l);
        assert_true(id >= 0 && id < BIG_N && !seen[id]);
        seen[id] = 1;
        assert_int_equal(sh, id % 16);
        assert_true(strtod(val, NULL) == (double)(id % 1000) + (id % 2 ? 0.5 : 0));
    }
    assert_null(l);
    free(seen);

    size_t zn;
    char *z = scrape(fx.r, EXP_FMT_TEXT, 1, 777, &zn);
    char *again = scrape(fx.r, EXP_FMT_TEXT, 0, 65536, &n); /* strtok_r consumed `out` */
    assert_int_equal(zn, n);
    assert_memory_equal(z, again, n);
    free(z);
    free(again);
    free(out);

    out = scrape(fx.r, EXP_FMT_OPENMETRICS, 1, 4096, &n);
    assert_int_equal(count_lines(out), 2 * BIG_N + 3);
    assert_string_equal(out + n - 6, "# EOF\n");
    free(out);
    fx_free(&fx);
}

/* Lines longer than the internal buffer (a huge constant label), and one series whose
 * bucket lines add up to megabytes (rendering resumes in the middle of a series). */
static void test_huge_lines(void **state) {
    (void)state;
    fixture fx = fx_new();
    size_t big = 300000;
    char *cvv = malloc(big + 1);
    assert_non_null(cvv);
    for (size_t i = 0; i < big; i++)
        cvv[i] = "ab\"\\\n"[i % 5];
    cvv[big] = '\0';
    static const char *cn[] = {"blob"};
    const char *cv[] = {cvv};
    static const char *ln[] = {"k"};
    reg_family_def g = {.name = "wide_gauge",
                        .help = "Huge constant label.",
                        .type = REG_GAUGE,
                        .nlabels = 1,
                        .labels = ln,
                        .nconst = 1,
                        .const_names = cn,
                        .const_values = cv};
    double b[REG_MAX_BUCKETS];
    for (int i = 0; i < REG_MAX_BUCKETS; i++)
        b[i] = (i + 1) * 0.5;
    reg_family_def h = {.name = "wide_hist",
                        .help = "Long labels, many buckets.",
                        .type = REG_HISTOGRAM,
                        .nlabels = 1,
                        .labels = ln,
                        .nbuckets = REG_MAX_BUCKETS,
                        .buckets = b};
    char *lv = malloc(15001);
    assert_non_null(lv);
    memset(lv, 'x', 15000);
    lv[15000] = '\0';
    reg_begin(fx.t);
    reg_family *fg = fam(&fx, &g), *fh = fam(&fx, &h);
    for (int i = 0; i < 3; i++) {
        char k[8];
        snprintf(k, sizeof k, "%d", i);
        const char *v[] = {k};
        assert_int_equal(reg_gauge_set(fx.t, fg, v, i), REG_OK);
    }
    const char *v[] = {lv};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(reg_observe(fx.t, fh, v, (i % 300) * 0.5), REG_OK);
    reg_end(fx.t);

    for (int om = 0; om < 2; om++) {
        exp_format fmt = om ? EXP_FMT_OPENMETRICS : EXP_FMT_TEXT;
        size_t n, n2;
        char *out = scrape(fx.r, fmt, 0, 65536, &n);
        char *out2 = scrape(fx.r, fmt, 1, 1000, &n2);
        assert_int_equal(n, n2);
        assert_memory_equal(out, out2, n);
        free(out2);
        /* 3 gauge lines each holding the escaped blob; 257 buckets + sum + count (+created). */
        size_t want_lines = 2 + 3 + 2 + REG_MAX_BUCKETS + 1 + 2 + (om ? 2 : 0);
        assert_int_equal(count_lines(out), want_lines);
        assert_true(n > 3 * big + (REG_MAX_BUCKETS + 1) * 15000);
        uint64_t prev = 0;
        size_t nb = 0;
        for (const char *p = strstr(out, "wide_hist_bucket{"); p;
             p = strstr(p + 1, "wide_hist_bucket{")) {
            const char *sp = strchr(p, '\n');
            while (sp[-1] != ' ')
                sp--;
            uint64_t c = strtoull(sp, NULL, 10);
            assert_true(c >= prev);
            prev = c;
            nb++;
        }
        assert_int_equal(nb, REG_MAX_BUCKETS + 1);
        assert_int_equal(prev, 1000);
        free(out);
    }
    free(lv);
    free(cvv);
    fx_free(&fx);
}

/* ---- histogram invariants under concurrent updates --------------------------------------- */

typedef struct {
    reg_registry *r;
    reg_family *f; /* held */
    atomic_int stop;
    atomic_long done;
} hammer_arg;

static void *hammer(void *p) {
    hammer_arg *a = p;
    reg_thread *t = reg_thread_attach(a->r);
    assert_non_null(t);
    static const char *keys[] = {"a", "b", "c"};
    uint64_t x = 88172645463325252ull;
    while (!atomic_load(&a->stop)) {
        reg_begin(t);
        for (int i = 0; i < 100; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            const char *v[] = {keys[x % 3]};
            if (reg_observe(t, a->f, v, (double)(x % 2000) / 100) == REG_OK)
                atomic_fetch_add(&a->done, 1);
        }
        reg_end(t);
    }
    reg_thread_detach(t);
    return NULL;
}

/* Checks every series of histogram `name` in text output: le ascending, counts cumulative,
 * _count equal to the +Inf bucket. Returns the total count. */
static uint64_t check_histogram_text(const char *out, const char *name) {
    char pat[128];
    snprintf(pat, sizeof pat, "%s_bucket{", name);
    uint64_t total = 0;
    const char *p = strstr(out, pat);
    while (p) {
        const char *lbl = p + strlen(pat);
        const char *le = strstr(lbl, "le=\"");
        assert_non_null(le);
        size_t klen = (size_t)(le - lbl);
        double prev_le = -INFINITY;
        uint64_t prev = 0, inf = 0;
        for (;;) {
            const char *lev = strstr(p, "le=\"") + 4;
            double b = strncmp(lev, "+Inf", 4) == 0 ? INFINITY : strtod(lev, NULL);
            assert_true(b > prev_le);
            prev_le = b;
            uint64_t c = strtoull(strchr(lev, ' ') + 1, NULL, 10);
            assert_true(c >= prev);
            prev = c;
            const char *nl = strchr(p, '\n') + 1;
            if (isinf(b)) {
                inf = c;
                p = nl;
                break;
            }
            p = nl;
            assert_int_equal(strncmp(p, pat, strlen(pat)), 0);
            assert_int_equal(strncmp(p + strlen(pat), lbl, klen), 0);
        }
        /* _sum then _count with the same labels */
        char cnt[128];
        snprintf(cnt, sizeof cnt, "%s_sum", name);
        assert_int_equal(strncmp(p, cnt, strlen(cnt)), 0);
        p = strchr(p, '\n') + 1;
        snprintf(cnt, sizeof cnt, "%s_count", name);
        assert_int_equal(strncmp(p, cnt, strlen(cnt)), 0);
        uint64_t c = strtoull(strchr(p, ' ') + 1, NULL, 10);
        assert_int_equal(c, inf);
        total += c;
        p = strstr(p, pat);
    }
    return total;
}

static void test_histogram_invariants_concurrent(void **state) {
    (void)state;
    fixture fx = fx_new();
    static const double b[] = {0.1, 0.5, 1, 2.5, 5, 10};
    static const char *ln[] = {"k"};
    reg_family_def d = {.name = "h_seconds",
                        .help = "Hammered.",
                        .type = REG_HISTOGRAM,
                        .nlabels = 1,
                        .labels = ln,
                        .nbuckets = 6,
                        .buckets = b};
    hammer_arg a = {.r = fx.r};
    reg_begin(fx.t);
    a.f = fam(&fx, &d);
    assert_int_equal(reg_family_hold(a.f), REG_OK);
    reg_end(fx.t);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &a), 0);
    uint64_t last = 0;
    for (int i = 0; i < 200; i++) {
        char *out = scrape(fx.r, EXP_FMT_TEXT, 0, 333, NULL);
        uint64_t total = check_histogram_text(out, "h_seconds");
        assert_true(total >= last); /* each scrape sees at least what the previous one saw */
        last = total;
        free(out);
    }
    atomic_store(&a.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    char *out = scrape(fx.r, EXP_FMT_TEXT, 0, 4096, NULL);
    assert_int_equal(check_histogram_text(out, "h_seconds"), (uint64_t)atomic_load(&a.done));
    free(out);
    reg_family_release(fx.r, a.f);
    fx_free(&fx);
}

/* ---- negotiation ------------------------------------------------------------------------- */

static void test_negotiate_table(void **state) {
    (void)state;
    static const struct {
        const char *accept;
        exp_format want;
    } cases[] = {
        {NULL, EXP_FMT_TEXT},
        {"", EXP_FMT_TEXT},
        {"text/plain", EXP_FMT_TEXT},
        {"text/plain;version=0.0.4", EXP_FMT_TEXT},
        {"application/openmetrics-text", EXP_FMT_OPENMETRICS},
        {"application/openmetrics-text; version=1.0.0; charset=utf-8", EXP_FMT_OPENMETRICS},
        {"application/openmetrics-text;version=0.0.1", EXP_FMT_OPENMETRICS},
        {"application/openmetrics-text;version=2.0.0", EXP_FMT_TEXT},
        {"application/openmetrics-text;version=1.0.0000000000000000000000", EXP_FMT_TEXT},
        /* Prometheus 2.x */
        {"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
         "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
         EXP_FMT_OPENMETRICS},
        /* Prometheus 3.x */
        {"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/"
         "openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;"
         "q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
         EXP_FMT_OPENMETRICS},
        /* Prometheus configured to prefer text */
        {"text/plain;version=0.0.4;q=1,application/openmetrics-text;version=1.0.0;q=0.5",
         EXP_FMT_TEXT},
        {"text/plain;q=0.5,application/openmetrics-text;q=0.5", EXP_FMT_OPENMETRICS},
        {"text/plain;q=0, application/openmetrics-text;q=0.1", EXP_FMT_OPENMETRICS},
        {"application/openmetrics-text;q=0", EXP_FMT_TEXT},
        {"application/openmetrics-text;q=0.000", EXP_FMT_TEXT},
        {"application/openmetrics-text;q=0.001", EXP_FMT_OPENMETRICS},
        {"application/openmetrics-text;q=abc", EXP_FMT_TEXT},
        {"application/openmetrics-text;q=1.5", EXP_FMT_TEXT},
        {"application/openmetrics-text;q=-1", EXP_FMT_TEXT},
        {"application/openmetrics-text;q=0.12345", EXP_FMT_TEXT},
        {"application/openmetrics-text;q=", EXP_FMT_TEXT},
        {"application/openmetrics-text;q", EXP_FMT_TEXT},
        {"APPLICATION/OpenMetrics-Text ; VERSION=1.0.0", EXP_FMT_OPENMETRICS},
        {"application/openmetrics-text;version=\"1.0.0\"", EXP_FMT_OPENMETRICS},
        {"application/openmetrics-text;foo=\"a,b;q=0\";q=0.9, text/plain;q=0.8",
         EXP_FMT_OPENMETRICS},
        {"application/openmetrics-text;foo=\"unterminated", EXP_FMT_OPENMETRICS},
        {"application/openmetrics-text;foo=\"x\\\"y\"junk;q=0.2,text/plain;q=0.3", EXP_FMT_TEXT},
        {"*/*", EXP_FMT_TEXT},
        {"application/*", EXP_FMT_TEXT},
        {",,,;;;", EXP_FMT_TEXT},
        {";q=1", EXP_FMT_TEXT},
        {"application/openmetrics-textx", EXP_FMT_TEXT},
        {"application/openmetrics-tex", EXP_FMT_TEXT},
        {"  application/openmetrics-text  ,", EXP_FMT_OPENMETRICS},
        {"text/html, application/xhtml+xml, */*;q=0.8", EXP_FMT_TEXT},
        {"application/openmetrics-text;=;=;;==", EXP_FMT_OPENMETRICS},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        exp_format got = exp_negotiate(cases[i].accept);
        if (got != cases[i].want)
            fail_msg("exp_negotiate(%s) = %d, want %d", cases[i].accept ? cases[i].accept : "NULL",
                     got, cases[i].want);
    }
    /* Hostile: very long headers, binary junk. */
    size_t n = 1 << 20;
    char *h = malloc(n + 64);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++)
        h[i] = ";,=\"\\ a/q\t"[i % 11];
    h[n] = '\0';
    assert_int_equal(exp_negotiate(h), EXP_FMT_TEXT);
    assert_int_equal(exp_accepts_gzip(h), 0);
    memset(h, 'a', n);
    strcpy(h + n, ",application/openmetrics-text");
    assert_int_equal(exp_negotiate(h), EXP_FMT_OPENMETRICS);
    for (size_t i = 0; i < n; i++)
        h[i] = (char)(1 + (i * 131) % 255);
    h[n] = '\0';
    exp_negotiate(h);
    exp_accepts_gzip(h);
    free(h);

    assert_string_equal(exp_content_type(EXP_FMT_TEXT), "text/plain; version=0.0.4; charset=utf-8");
    assert_string_equal(exp_content_type(EXP_FMT_OPENMETRICS),
                        "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

static void test_accepts_gzip_table(void **state) {
    (void)state;
    static const struct {
        const char *h;
        int want;
    } cases[] = {
        {NULL, 0},
        {"", 0},
        {"gzip", 1},
        {"GZIP", 1},
        {"x-gzip", 1},
        {"gzip, deflate, br", 1},
        {"deflate, gzip;q=1.0, *;q=0.5", 1},
        {"gzip;q=0", 0},
        {"gzip;q=0.0, *", 0},
        {"*", 1},
        {"*;q=0", 0},
        {"identity", 0},
        {"deflate", 0},
        {"gzipx", 0},
        {"br;q=1, gzip;q=0.001", 1},
        {"gzip;q=", 0},
        {"gzip;q=2", 0},
        {"gzip ; q=0.5", 1},
        {" , gzip ,", 1},
        {"gzip;q=0, gzip;q=1", 1},
        {"*;q=0.1, gzip;q=0", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = exp_accepts_gzip(cases[i].h);
        if (got != cases[i].want)
            fail_msg("exp_accepts_gzip(%s) = %d, want %d", cases[i].h ? cases[i].h : "NULL", got,
                     cases[i].want);
    }
}

/* ---- external validators ----------------------------------------------------------------- */

static void test_promtool_accepts(void **state) {
    (void)state;
    if (access("/usr/bin/promtool", X_OK) != 0) {
        /* A missing validator fails (cmocka counts skip() as a pass): CI installs it. */
        fail_msg("promtool is required (/usr/bin/promtool) but is not installed");
    }
    fixture fx = fx_new();
    build_rich(&fx, 1);
    size_t n;
    char *out = scrape(fx.r, EXP_FMT_TEXT, 0, 4096, &n);
    int rc = run_with_stdin("/usr/bin/promtool check metrics", out, n);
    if (rc != 0)
        fail_msg("promtool check metrics exited %d on:\n%s", rc, out);
    free(out);
    fx_free(&fx);
}

static const char *python_with_client(void) {
    static const char *cands[] = {"python3", "/usr/bin/python3"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "%s -c 'import prometheus_client' >/dev/null 2>&1", cands[i]);
        int st = system(cmd);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            return cands[i];
    }
    return NULL;
}

static void test_python_openmetrics_parser_accepts(void **state) {
    (void)state;
    const char *py = python_with_client();
    if (py == NULL) {
        /* As above: fail, never skip. */
        fail_msg("python3 with prometheus_client is required but was not found");
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "%s -c 'import sys; from prometheus_client.openmetrics.parser import "
             "text_string_to_metric_families as p; list(p(sys.stdin.read()))'",
             py);
    for (int lint = 0; lint < 2; lint++) {
        fixture fx = fx_new();
        build_rich(&fx, lint);
        static const double nb[] = {-1, 0, 1};
        reg_family_def hn = {
            .name = "hneg", .help = "h.", .type = REG_HISTOGRAM, .nbuckets = 3, .buckets = nb};
        static const reg_objective obj[] = {{0.5, 0.05}};
        reg_family_def sn = {
            .name = "sneg", .help = "s.", .type = REG_SUMMARY, .nobjectives = 1, .objectives = obj};
        reg_family_def jt = {.name = "jobs_total", .help = "B.", .type = REG_COUNTER};
        reg_family_def jj = {.name = "jobs", .help = "A.", .type = REG_COUNTER};
        reg_begin(fx.t);
        assert_int_equal(reg_observe(fx.t, fam(&fx, &hn), NULL, -5), REG_OK);
        assert_int_equal(reg_observe(fx.t, fam(&fx, &sn), NULL, -5), REG_OK);
        assert_int_equal(reg_counter_add(fx.t, fam(&fx, &jt), NULL, 1), REG_OK);
        assert_int_equal(reg_counter_add(fx.t, fam(&fx, &jj), NULL, 1), REG_OK);
        reg_end(fx.t);
        size_t n;
        char *out = scrape(fx.r, EXP_FMT_OPENMETRICS, 0, 4096, &n);
        int rc = run_with_stdin(cmd, out, n);
        if (rc != 0)
            fail_msg("OpenMetrics parser exited %d on:\n%s", rc, out);
        free(out);
        fx_free(&fx);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_double_table),
        cmocka_unit_test(test_format_double_integers),
        cmocka_unit_test(test_format_double_short_decimals),
        cmocka_unit_test(test_format_double_roundtrip),
        cmocka_unit_test(test_le_formatting),
        cmocka_unit_test(test_exact_text),
        cmocka_unit_test(test_exact_openmetrics),
        cmocka_unit_test(test_empty_registry),
        cmocka_unit_test(test_openmetrics_counter_clash),
        cmocka_unit_test(test_openmetrics_negative_sums),
        cmocka_unit_test(test_summary_empty_window),
        cmocka_unit_test(test_tiny_reads_identical),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_big_family_streamed),
        cmocka_unit_test(test_huge_lines),
        cmocka_unit_test(test_histogram_invariants_concurrent),
        cmocka_unit_test(test_negotiate_table),
        cmocka_unit_test(test_accepts_gzip_table),
        cmocka_unit_test(test_promtool_accepts),
        cmocka_unit_test(test_python_openmetrics_parser_accepts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
