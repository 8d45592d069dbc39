/* test_config_values.c - the loader's value readers and schema checks key by key: numbers
 * (YAML 1.2 floats, `_` separators, .inf/.nan, overflow), whole numbers, booleans, durations,
 * enums, strings, label maps, YAML tags and nulls, merge keys at their limits, the server,
 * statsd and push bounds, units, name templates, rules against declared metrics, the error order,
 * and the entry points' NULL arguments and file sizes. Every case checks the loaded value or the
 * exact error with its position. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/config_expect.h"
#include "config.h"

#define SEC 1000000000ULL

/* ---- numbers ------------------------------------------------------------------------------ */

/* The scale of mappings[0] in a one-rule file. */
static double scale_of(const char *value) {
    char buf[512];
    snprintf(buf, sizeof buf, "mappings: [{match: a.b, name: x, scale: %s}]\n", value);
    cfg_config *c = load_ok(buf);
    assert_true(c->mappings[0].has_scale);
    double v = c->mappings[0].scale;
    cfg_free(c);
    return v;
}

static void test_numbers(void **state) {
    (void)state;
    assert_true(scale_of("1_000.5") == 1000.5);
    assert_true(scale_of("+2") == 2);
    assert_true(scale_of("1e3") == 1000);
    assert_true(scale_of("2E-3") == 0.002);
    assert_true(scale_of("1e+2") == 100);
    assert_true(scale_of(".5") == 0.5);
    assert_true(scale_of("-0.25") == -0.25);
    /* An underflow is a number (0); only an overflow is refused. */
    assert_true(scale_of("1e-400") == 0);
    /* A key given as null is "not set". */
    cfg_config *c = load_ok("mappings: [{match: a.b, name: x, scale: ~}]\n");
    assert_false(c->mappings[0].has_scale);
    assert_true(c->mappings[0].scale == 1);
    cfg_free(c);

    /* 130 digits: longer than any number, refused without reading past the buffer. */
    char big[256];
    memset(big, '1', 130);
    big[130] = 0;
    char yaml[512];
    snprintf(yaml, sizeof yaml, "mappings:\n  - {match: a.b, name: x, scale: %s}\n", big);
    expect_errors(yaml, "2:34: mappings[0].scale: expected a number, got "
                        "\"11111111111111111111111111111111111111111111111111111111111...\"\n");

    expect_errors("mappings:\n"
                  "  - match: a.b\n"
                  "    name: x\n"
                  "    scale: 1e\n"
                  "  - {match: a.c, name: y, scale: 1e+}\n"
                  "  - {match: a.d, name: z, scale: 1e999}\n"
                  "  - {match: a.e, name: w, scale: \"1\"}\n"
                  "  - {match: a.f, name: v, scale: [1]}\n"
                  "  - {match: a.g, name: u, scale: -.nan}\n"
                  "  - {match: a.h, name: t, scale: -.Inf}\n"
                  "  - {match: a.i, name: s, scale: .INF}\n"
                  "  - {match: a.j, name: r, scale: .NAN}\n"
                  "  - {match: a.k, name: q, scale: .NaN}\n"
                  "  - {match: a.l, name: p, scale: .e1}\n"
                  "  - {match: a.m, name: o, scale: 0x10}\n"
                  "  - {match: a.n, name: n, scale: 1ea}\n"
                  "  - {match: a.o, name: m, scale: 1e5x}\n",
                  "4:12: mappings[0].scale: expected a number, got \"1e\"\n"
                  "5:34: mappings[1].scale: expected a number, got \"1e+\"\n"
                  "6:34: mappings[2].scale: expected a number, got \"1e999\"\n"
                  "7:34: mappings[3].scale: expected a number, got \"1\"\n"
                  "8:34: mappings[4].scale: expected a number, got a sequence\n"
                  "9:34: mappings[5].scale: expected a number, got \"-.nan\"\n"
                  "10:34: mappings[6].scale: must be finite, got -inf\n"
                  "11:34: mappings[7].scale: must be finite, got inf\n"
                  "12:34: mappings[8].scale: must be finite, got nan\n"
                  "13:34: mappings[9].scale: must be finite, got nan\n"
                  "14:34: mappings[10].scale: expected a number, got \".e1\"\n"
                  "15:34: mappings[11].scale: expected a number, got \"0x10\"\n"
                  "16:34: mappings[12].scale: expected a number, got \"1ea\"\n"
                  "17:34: mappings[13].scale: expected a number, got \"1e5x\"\n");
}

static void test_whole_numbers(void **state) {
    (void)state;
    cfg_config *c = load_ok("server:\n"
                            "  max_connections: ~\n"
                            "  max_connections_per_ip: -0\n"
                            "  max_concurrent_scrapes: +8\n"
                            "statsd:\n"
                            "  max_tcp_connections: 2_000\n"
                            "  max_series: 18446744073709551615\n");
    assert_int_equal(c->server.max_connections, 512); /* null: the default stays */
    assert_int_equal(c->server.max_connections_per_ip, 0);
    assert_int_equal(c->server.max_concurrent_scrapes, 8);
    assert_int_equal(c->statsd.max_tcp_connections, 2000);
    assert_true(c->statsd.max_series == SIZE_MAX);
    cfg_free(c);

    expect_errors("server:\n"
                  "  max_connections: [1]\n"
                  "  max_connections_per_ip: \"5\"\n"
                  "  max_request_bytes: 0\n"
                  "  max_concurrent_scrapes: 0\n"
                  "statsd:\n"
                  "  readers: +\n"
                  "  read_buffer: -x\n"
                  "  cache_size: _\n"
                  "  max_tcp_connections: 0\n"
                  "  max_series: 18446744073709551616\n"
                  "metrics:\n"
                  "  - {name: a, type: gauge, max_series: 1.0}\n",
                  "2:20: server.max_connections: expected a whole number, got a sequence\n"
                  "3:27: server.max_connections_per_ip: expected a whole number, got \"5\"\n"
                  "4:22: server.max_request_bytes: must be at least 1\n"
                  "5:27: server.max_concurrent_scrapes: must be at least 1\n"
                  "7:12: statsd.readers: expected a whole number, got \"+\"\n"
                  "8:16: statsd.read_buffer: expected a whole number, got \"-x\"\n"
                  "9:15: statsd.cache_size: expected a whole number, got \"_\"\n"
                  "10:24: statsd.max_tcp_connections: must be at least 1\n"
                  "11:15: statsd.max_series: \"18446744073709551616\" is out of range (max "
                  "18446744073709551615)\n"
                  "13:40: metrics[0].max_series: expected a whole number, got \"1.0\"\n");

    expect_errors("server: {max_concurrent_scrapes: 1025}\n",
                  "1:34: server.max_concurrent_scrapes: \"1025\" is out of range (max 1024)\n");

    /* push byte limits: 1 B to 1 TiB; null keeps the default */
    c = load_ok("push: {max_body_bytes: 1, max_buffered_bytes: 1099511627776}\n");
    assert_int_equal(c->push.max_body_bytes, 1);
    assert_true(c->push.max_buffered_bytes == (size_t)1 << 40);
    cfg_free(c);
    c = load_ok("push: {max_body_bytes: ~, max_buffered_bytes: +2_048}\n");
    assert_int_equal(c->push.max_body_bytes, 16u << 20);
    assert_int_equal(c->push.max_buffered_bytes, 2048);
    cfg_free(c);
    expect_errors("push:\n"
                  "  max_body_bytes: \"5\"\n"
                  "  max_buffered_bytes: 0\n",
                  "2:19: push.max_body_bytes: expected a whole number, got \"5\"\n"
                  "3:23: push.max_buffered_bytes: must be at least 1\n");
}

static void test_booleans_and_enums(void **state) {
    (void)state;
    cfg_config *c = load_ok("defaults:\n"
                            "  observer_type: ~\n"
                            "  match_type: ~\n"
                            "  glob_disable_ordering: Y\n"
                            "statsd:\n"
                            "  parse_dogstatsd_tags: ~\n"
                            "  parse_influxdb_tags: N\n"
                            "mappings:\n"
                            "  - {match: a.b, name: x, honor_labels: yes, match_metric_type: ~}\n");
    assert_int_equal(c->defaults.observer_type, CFG_OBS_SUMMARY);
    assert_int_equal(c->defaults.match_type, CFG_MATCH_GLOB);
    assert_int_equal(c->defaults.glob_disable_ordering, 1);
    assert_int_equal(c->statsd.dogstatsd_tags, 1);
    assert_int_equal(c->statsd.influxdb_tags, 0);
    assert_int_equal(c->mappings[0].honor_labels, 1);
    assert_int_equal(c->mappings[0].match_metric_type, CFG_MMT_ANY);
    cfg_free(c);
    c = load_ok("push: {enabled: Off}\n");
    assert_false(c->push.enabled);
    cfg_free(c);
    c = load_ok("push: {enabled: ~}\n");
    assert_true(c->push.enabled);
    cfg_free(c);

    expect_errors("defaults:\n"
                  "  glob_disable_ordering: \"true\"\n"
                  "  match_type: [glob]\n"
                  "  timer_type: {a: b}\n"
                  "statsd:\n"
                  "  parse_librato_tags: [true]\n"
                  "  parse_signalfx_tags: 1\n",
                  "2:26: defaults.glob_disable_ordering: expected true or false, got \"true\"\n"
                  "3:15: defaults.match_type: invalid value a sequence (want glob or regex)\n"
                  "4:15: defaults.timer_type: invalid value a mapping (want histogram or "
                  "summary)\n"
                  "6:23: statsd.parse_librato_tags: expected true or false, got a sequence\n"
                  "7:24: statsd.parse_signalfx_tags: expected true or false, got \"1\"\n");
    expect_errors("push: {enabled: 1}\n",
                  "1:17: push.enabled: expected true or false, got \"1\"\n");
}

static void test_durations(void **state) {
    (void)state;
    cfg_config *c = load_ok("defaults: {ttl: 10s}\n"
                            "statsd: {tcp_idle_timeout: 0}\n"
                            "server: {write_timeout: 1.5m, scrape_queue_timeout: 0s}\n"
                            "push: {group_ttl: 1w}\n"
                            "metrics:\n"
                            "  - {name: a, type: gauge, ttl: ~}\n"
                            "  - {name: b, type: gauge, ttl: 0}\n");
    assert_int_equal(c->statsd.tcp_idle_timeout_ns, 0);
    assert_int_equal(c->server.write_timeout_ns, 90 * SEC);
    assert_int_equal(c->server.scrape_queue_timeout_ns, 0);
    assert_int_equal(c->push.group_ttl_ns, 7 * 86400 * SEC);
    /* null: not set, the default applies; an explicit 0 is set. */
    assert_false(c->metrics[0].has_ttl);
    assert_int_equal(c->metrics[0].ttl_ns, 10 * SEC);
    assert_true(c->metrics[1].has_ttl);
    assert_int_equal(c->metrics[1].ttl_ns, 0);
    cfg_free(c);

    expect_errors("server:\n"
                  "  request_timeout: \"\"\n"
                  "  write_timeout: -x\n"
                  "  scrape_queue_timeout: \"1s\\0\"\n"
                  "  connection_timeout: {a: 1}\n",
                  "2:20: server.request_timeout: invalid duration \"\" (e.g. 30s, 5m, 1h30m, "
                  "500ms)\n"
                  "3:18: server.write_timeout: invalid duration \"-x\" (e.g. 30s, 5m, 1h30m, "
                  "500ms)\n"
                  "4:25: server.scrape_queue_timeout: invalid duration \"1s\\x00\" (e.g. 30s, 5m, "
                  "1h30m, 500ms)\n"
                  "5:23: server.connection_timeout: expected a duration, got a mapping\n");
    expect_errors("push:\n"
                  "  group_ttl: -1s\n",
                  "2:14: push.group_ttl: negative duration \"-1s\"\n");
}

/* ---- strings, YAML tags and nulls, keys ---------------------------------------------------- */

static void test_tags_and_nulls(void **state) {
    (void)state;
    /* Every null spelling of YAML 1.2's core schema, and the explicit !!null tag. */
    cfg_config *c = load_ok("server:\n"
                            "  listen_address: Null\n"
                            "  telemetry_path: NULL\n"
                            "  max_connections: null\n"
                            "  max_request_bytes: !!null 5\n"
                            "statsd: {listen_udp: ~}\n");
    assert_string_equal(c->server.listen_address, ":9102");
    assert_string_equal(c->server.telemetry_path, "/metrics");
    assert_int_equal(c->server.max_connections, 512);
    assert_int_equal(c->server.max_request_bytes, 4u << 20);
    assert_string_equal(c->statsd.listen_udp, ":9125");
    cfg_free(c);

    /* !!str and the non-specific "!" tag make a plain scalar a string: not a number, and a
     * quoted "null" is the text null. */
    c = load_ok("metrics:\n"
                "  - name: !!str null\n"
                "    type: ! gauge\n"
                "    help: !!str 12\n");
    assert_string_equal(c->metrics[0].name, "null");
    assert_int_equal(c->metrics[0].type, REG_GAUGE);
    assert_string_equal(c->metrics[0].help, "12");
    cfg_free(c);
    expect_errors("server:\n"
                  "  max_connections: !!str 5\n"
                  "  max_request_bytes: ! 5\n"
                  "mappings: [{match: a.b, name: x, scale: !!str 2}]\n",
                  "2:20: server.max_connections: expected a whole number, got \"5\"\n"
                  "3:22: server.max_request_bytes: expected a whole number, got \"5\"\n"
                  "4:41: mappings[0].scale: expected a number, got \"2\"\n");
}

static void test_keys(void **state) {
    (void)state;
    /* Keys that are not strings; "<x" is no merge key; quoting in messages: quotes,
     * backslashes and control bytes escaped, long text cut at about 60 bytes. */
    expect_errors(
        "server: {[a]: 1, ? {b: 1} : 2, <x: 3, \"q\\\"b\\\\t\\t\": 4}\n"
        "statsd:\n"
        "  a_very_long_key_name_that_goes_on_and_on_and_on_and_on_and_on_and_on: 1\n"
        "  \"k\\x7f\": 1\n"
        "  k123456789012345678901234567890123456789012345678901234567\xc3\xa9\xc3\xa9: 1\n",
        "1:10: server: mapping keys must be strings, got a sequence\n"
        "1:20: server: mapping keys must be strings, got a mapping\n"
        "1:32: server: unknown key \"<x\"\n"
        "1:39: server: unknown key \"q\\\"b\\\\t\\x09\"\n"
        "3:3: statsd: unknown key "
        "\"a_very_long_key_name_that_goes_on_and_on_and_on_and_on_and_...\"\n"
        "4:3: statsd: unknown key \"k\\x7f\"\n"
        /* 58 bytes, then the whole of the character that crosses 60 bytes */
        "5:3: statsd: unknown key "
        "\"k123456789012345678901234567890123456789012345678901234567\xc3\xa9...\"\n");
}

static void test_strings(void **state) {
    (void)state;
    char sock[160];
    memset(sock, 's', 108);
    sock[0] = '/';
    sock[108] = 0;
    char yaml[512];
    /* 107 bytes fit in sun_path with its NUL, 108 do not. */
    snprintf(yaml, sizeof yaml, "statsd: {listen_unixgram: %.107s}\n", sock);
    cfg_config *c = load_ok(yaml);
    assert_int_equal(strlen(c->statsd.listen_unixgram), 107);
    cfg_free(c);
    snprintf(yaml, sizeof yaml, "statsd: {listen_unixgram: %s}\n", sock);
    expect_errors(yaml, "1:27: statsd.listen_unixgram: socket path too long (max 107 bytes)\n");

    expect_errors("server:\n"
                  "  listen_address: nohost\n"
                  "  telemetry_path: metrics\n"
                  "statsd:\n"
                  "  listen_udp: [a]\n"
                  "  listen_tcp: \"[::1]9125\"\n",
                  "2:19: server.listen_address: invalid address \"nohost\" (want host:port or "
                  ":port)\n"
                  "3:19: server.telemetry_path: invalid path \"metrics\" (want /something, not "
                  "\"/\" nor under \"/-/\")\n"
                  "5:15: statsd.listen_udp: expected a string, got a sequence\n"
                  "6:15: statsd.listen_tcp: invalid address \"[::1]9125\" (want host:port, :port, "
                  "or \"\" to disable)\n");
    const char *paths[] = {"/", "\"/a b\"", "/a?x", "\"/a#b\"", "\"/a\\tb\""};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        cfg_errors e = {0};
        snprintf(yaml, sizeof yaml, "server: {telemetry_path: %s}\n", paths[i]);
        assert_null(load(yaml, &e));
        assert_int_equal(e.count, 1);
        assert_int_equal(e.items[0].column, 26);
        assert_non_null(strstr(e.items[0].message, "server.telemetry_path: invalid path"));
        cfg_errors_free(&e);
    }
    c = load_ok("server: {telemetry_path: /a/b-c, listen_address: \"[::]:0\"}\n");
    assert_string_equal(c->server.telemetry_path, "/a/b-c");
    assert_string_equal(c->server.listen_address, "[::]:0");
    cfg_free(c);
}

/* ---- merge keys --------------------------------------------------------------------------- */

static void test_merges(void **state) {
    (void)state;
    /* An explicit label beats a merged one of the same name (silently); a merged label adds. */
    cfg_config *c = load_ok("mappings:\n"
                            "  - match: a.*\n"
                            "    name: a\n"
                            "    labels: {<<: {k: merged, m: only_merged}, k: explicit}\n");
    assert_int_equal(c->mappings[0].nlabels, 2);
    assert_string_equal(c->mappings[0].labels[0].name, "k");
    assert_string_equal(c->mappings[0].labels[0].value, "explicit");
    assert_string_equal(c->mappings[0].labels[1].name, "m");
    assert_string_equal(c->mappings[0].labels[1].value, "only_merged");
    cfg_free(c);

    /* A merge sequence holding a scalar, and an explicit duplicate label. */
    expect_errors("mappings:\n"
                  "  - match: a.*\n"
                  "    name: a\n"
                  "    labels: {<<: [{k: v}, 5], j: 1, j: 2}\n",
                  "4:27: mappings[0].labels: a merge (<<) takes mappings\n"
                  "4:37: mappings[0].labels: duplicate key \"j\"\n");

    /* Merges nested 8 deep are fine; 9 are not. Anchor l<k> merges l<k-1>. */
    char buf[4096];
    size_t o = (size_t)sprintf(buf, "mappings:\n  - {match: r.a0, name: r, labels: &l0 {k0: v}}\n");
    for (int k = 1; k <= 9; k++)
        o += (size_t)sprintf(buf + o,
                             "  - {match: r.a%d, name: r, labels: &l%d {<<: *l%d, k%d: v}}\n", k, k,
                             k - 1, k);
    cfg_errors e = {0};
    assert_null(cfg_load_string("t.yml", buf, o, &e));
    assert_int_equal(e.count, 1);
    assert_string_equal(e.items[0].message,
                        "mappings[9].labels: merges (<<) nested deeper than 8 levels");
    /* At the merge key of l1, the ninth map down from rule 9's labels. */
    assert_int_equal(e.items[0].line, 3);
    assert_int_equal(e.items[0].column, 41);
    cfg_errors_free(&e);
    /* Rule 8 (eight levels) got every label before rule 9 failed: load without rule 9. */
    char *cut = strstr(buf, "  - {match: r.a9");
    assert_non_null(cut);
    *cut = 0;
    c = load_ok(buf);
    assert_int_equal(c->mappings[8].nlabels, 9);
    cfg_free(c);
}

/* ---- label maps and label lists ----------------------------------------------------------- */

static void test_label_maps(void **state) {
    (void)state;
    /* 33 and 34 labels: one "too many" error at the 33rd. */
    char buf[4096];
    size_t o = (size_t)sprintf(buf, "mappings:\n  - match: a.*\n    name: a\n    labels:\n");
    for (int i = 0; i < 34; i++)
        o += (size_t)sprintf(buf + o, "      l%d: v\n", i);
    expect_errors(buf, "37:7: mappings[0].labels: too many labels (max 32)\n");

    /* A null value is the empty string. */
    cfg_config *c = load_ok("mappings: [{match: a.*, name: a, labels: {e: ~, f: \"\"}}]\n");
    assert_string_equal(c->mappings[0].labels[0].value, "");
    assert_string_equal(c->mappings[0].labels[1].value, "");
    cfg_free(c);

    /* The path of a label value names the label, cut at 40 bytes. */
    expect_errors("mappings:\n"
                  "  - match: a.*\n"
                  "    name: a\n"
                  "    labels:\n"
                  "      l234567890123456789012345678901234567890xyz: [v]\n"
                  "  - match: b.*\n"
                  "    name: b\n"
                  "    labels: [a]\n"
                  "metrics:\n"
                  "  - {name: m, type: gauge, const_labels: 5}\n",
                  "5:52: mappings[0].labels.l234567890123456789012345678901234567890: expected a "
                  "string, got a sequence\n"
                  "8:13: mappings[1].labels: expected a mapping, got a sequence\n"
                  "10:42: metrics[0].const_labels: expected a mapping, got \"5\"\n");

    /* Label names: too long, null in a list, labels and const labels over the limit. */
    char name[1100];
    memset(name, 'n', 1025);
    name[1025] = 0;
    char *yaml = malloc(8192);
    assert_non_null(yaml);
    o = (size_t)sprintf(yaml,
                        "metrics:\n"
                        "  - {name: a, type: gauge, labels: [%s]}\n"
                        "  - {name: b, type: gauge, labels: [x, ~]}\n"
                        "  - name: c\n"
                        "    type: gauge\n"
                        "    labels: [",
                        name);
    for (int i = 0; i < 20; i++)
        o += (size_t)sprintf(yaml + o, "%sl%d", i ? ", " : "", i);
    o += (size_t)sprintf(yaml + o, "]\n    const_labels: {");
    for (int i = 0; i < 13; i++)
        o += (size_t)sprintf(yaml + o, "%sc%d: v", i ? ", " : "", i);
    o += (size_t)sprintf(yaml + o, "}\n");
    expect_errors(yaml, "2:37: metrics[0].labels[0]: label name too long: 1025 bytes (max 1024)\n"
                        "3:40: metrics[1].labels[1]: expected a label name, got null\n"
                        "7:19: metrics[2].const_labels: too many labels and const_labels (max "
                        "32)\n");
    /* 19 + 13 = 32 is fine. */
    char *cut = strstr(yaml, ", l19]");
    assert_non_null(cut);
    memmove(cut, cut + 5, strlen(cut + 5) + 1);
    cut = strstr(yaml, "  - {name: a");
    memmove(cut, strstr(yaml, "  - name: c"), strlen(strstr(yaml, "  - name: c")) + 1);
    c = load_ok(yaml);
    assert_int_equal(c->metrics[0].nlabels, 19);
    assert_int_equal(c->metrics[0].nconst, 13);
    cfg_free(c);
    free(yaml);

    /* 257 buckets are too many; 256 are fine. */
    char *b = malloc(8192);
    assert_non_null(b);
    o = (size_t)sprintf(b, "defaults:\n  histogram_options:\n    buckets: [");
    for (int i = 0; i < 257; i++)
        o += (size_t)sprintf(b + o, "%s%d", i ? ", " : "", i);
    o += (size_t)sprintf(b + o, "]\n");
    expect_errors(b, "3:14: defaults.histogram_options.buckets: too many buckets: 257 (max 256)\n");
    cut = strstr(b, ", 256]");
    memmove(cut, cut + 5, strlen(cut + 5) + 1);
    c = load_ok(b);
    assert_int_equal(c->defaults.histogram.nbuckets, 256);
    assert_true(c->defaults.histogram.buckets[255] == 255);
    cfg_free(c);
    free(b);
}

/* ---- observer options ---------------------------------------------------------------------- */

static void test_observer_options(void **state) {
    (void)state;
    /* Empty lists in defaults inherit statsd_exporter's defaults; in a declared summary,
     * `quantiles: []` means count and sum only. A metric's own summary settings stay. */
    cfg_config *c = load_ok("defaults:\n"
                            "  histogram_options: {buckets: [], native_histogram_bucket_factor: "
                            "1.1, native_histogram_max_buckets: 160}\n"
                            "  summary_options: {quantiles: [], max_age: 1m, age_buckets: 4}\n"
                            "metrics:\n"
                            "  - name: s\n"
                            "    type: summary\n"
                            "    summary_options: {quantiles: [], age_buckets: 3, buf_cap: 100, "
                            "max_age: 2m}\n"
                            "  - name: t\n"
                            "    type: summary\n"
                            "  - name: h\n"
                            "    type: histogram\n"
                            "    histogram_options: {buckets: [1_0, 20]}\n");
    assert_int_equal(c->defaults.histogram.nbuckets, 11);
    assert_int_equal(c->defaults.summary.nobjectives, 3);
    assert_int_equal(c->defaults.summary.age_buckets, 4);
    assert_int_equal(c->defaults.summary.max_age_ns, 60 * SEC);
    const cfg_metric *s = &c->metrics[0], *t = &c->metrics[1], *h = &c->metrics[2];
    assert_true(s->summary.has_objectives);
    assert_int_equal(s->summary.nobjectives, 0);
    assert_int_equal(s->summary.age_buckets, 3);
    assert_int_equal(s->summary.buf_cap, 100);
    assert_int_equal(s->summary.max_age_ns, 120 * SEC);
    assert_int_equal(t->summary.nobjectives, 3);
    assert_int_equal(t->summary.age_buckets, 4);
    assert_int_equal(t->summary.max_age_ns, 60 * SEC);
    assert_int_equal(h->histogram.nbuckets, 2);
    assert_true(h->histogram.buckets[0] == 10);
    cfg_free(c);

    expect_errors("defaults:\n"
                  "  histogram_options:\n"
                  "    buckets: [~, 1, ~, 2]\n"
                  "    native_histogram_bucket_factor: -1\n"
                  "    native_histogram_max_buckets: -1\n"
                  "  summary_options:\n"
                  "    quantiles:\n"
                  "      - {quantile: ~, error: 0.1}\n"
                  "      - {quantile: 0.5, error: 0.1}\n"
                  "      - {error: 0.1}\n"
                  "      - ~\n"
                  "mappings:\n"
                  "  - match: a.b\n"
                  "    name: x\n"
                  "    histogram_options: {native_histogram_bucket_factor: .inf}\n",
                  "3:15: defaults.histogram_options.buckets[0]: expected a number, got null\n"
                  "3:21: defaults.histogram_options.buckets[2]: expected a number, got null\n"
                  "4:37: defaults.histogram_options.native_histogram_bucket_factor: must be a "
                  "finite number >= 0, got -1\n"
                  "5:35: defaults.histogram_options.native_histogram_max_buckets: must not be "
                  "negative, got \"-1\"\n"
                  "8:20: defaults.summary_options.quantiles[0].quantile: expected a number, got "
                  "null\n"
                  "10:9: defaults.summary_options.quantiles[2]: missing required key "
                  "\"quantile\"\n"
                  "11:9: defaults.summary_options.quantiles[3]: expected a mapping, got null\n"
                  "15:57: mappings[0].histogram_options.native_histogram_bucket_factor: must be a "
                  "finite number >= 0, got inf\n");
}

/* statsd_exporter's deprecated keys: each used only when its modern counterpart is absent. */
static void test_deprecated_keys(void **state) {
    (void)state;
    cfg_config *c = load_ok("defaults:\n"
                            "  timer_type: histogram\n"
                            "  buckets: [1, 2]\n"
                            "  quantiles: [{quantile: 0.5, error: 0.05}]\n"
                            "mappings:\n"
                            "  - {match: a.b, name: a}\n"
                            "  - {match: a.c, name: c, timer_type: summary, quantiles: "
                            "[{quantile: 0.9, error: 0.01}]}\n"
                            "  - {match: a.d, name: d, buckets: [5]}\n");
    assert_int_equal(c->defaults.observer_type, CFG_OBS_HISTOGRAM);
    assert_int_equal(c->defaults.histogram.nbuckets, 2);
    assert_int_equal(c->defaults.summary.nobjectives, 1);
    assert_int_equal(c->mappings[0].observer_type, CFG_OBS_HISTOGRAM);
    assert_int_equal(c->mappings[0].histogram.nbuckets, 2);
    assert_int_equal(c->mappings[1].observer_type, CFG_OBS_SUMMARY);
    assert_int_equal(c->mappings[1].summary.nobjectives, 1);
    assert_true(c->mappings[1].summary.objectives[0].quantile == 0.9);
    assert_int_equal(c->mappings[2].histogram.nbuckets, 1);
    assert_true(c->mappings[2].histogram.buckets[0] == 5);
    cfg_free(c);

    /* In defaults, observer_type beats timer_type and the option blocks beat the
     * deprecated lists (statsd_exporter's precedence; not an error there). */
    c = load_ok("defaults:\n"
                "  observer_type: summary\n"
                "  timer_type: histogram\n"
                "  histogram_options: {buckets: [7]}\n"
                "  buckets: [1, 2]\n"
                "  summary_options: {quantiles: [{quantile: 0.25, error: 0.1}]}\n"
                "  quantiles: [{quantile: 0.5, error: 0.05}]\n");
    assert_int_equal(c->defaults.observer_type, CFG_OBS_SUMMARY);
    assert_int_equal(c->defaults.histogram.nbuckets, 1);
    assert_true(c->defaults.histogram.buckets[0] == 7);
    assert_int_equal(c->defaults.summary.nobjectives, 1);
    assert_true(c->defaults.summary.objectives[0].quantile == 0.25);
    cfg_free(c);

    /* A rule's observer_type beats its timer_type. */
    c = load_ok(
        "mappings: [{match: a.b, name: x, observer_type: histogram, timer_type: summary}]\n");
    assert_int_equal(c->mappings[0].observer_type, CFG_OBS_HISTOGRAM);
    cfg_free(c);
}

/* ---- units, names ------------------------------------------------------------------------- */

static void test_units(void **state) {
    (void)state;
    cfg_config *c = load_ok("metrics:\n"
                            "  - {name: io_seconds_total, type: counter, unit: seconds}\n"
                            "  - {name: mem_Bytes9, type: gauge, unit: Bytes9}\n"
                            "  - {name: a_total, type: gauge, unit: total}\n"
                            "  - {name: a_s, type: counter, unit: s}\n"
                            "  - {name: disk_seconds, type: counter, unit: seconds}\n");
    assert_string_equal(c->metrics[0].unit, "seconds");
    assert_string_equal(c->metrics[1].unit, "Bytes9");
    cfg_free(c);
    expect_errors(
        "metrics:\n"
        "  - {name: s, type: gauge, unit: seconds}\n"
        "  - {name: xseconds, type: gauge, unit: seconds}\n"
        "  - {name: a_total, type: counter, unit: total}\n"
        "  - {name: b, type: gauge, unit: \"a-b\"}\n"
        "  - {name: d, type: gauge, unit: \"\"}\n"
        "  - {name: x_total, type: counter, unit: x}\n"
        "  - {name: io_bytes, type: gauge, unit: bites}\n"
        "  - {name: t_s, type: gauge, unit: \"s~\"}\n",
        "2:34: metrics[0].unit: metric name \"s\" must end with \"_seconds\" to have "
        "unit \"seconds\"\n"
        "3:41: metrics[1].unit: metric name \"xseconds\" must end with \"_seconds\" to "
        "have unit \"seconds\"\n"
        "4:42: metrics[2].unit: metric name \"a_total\" must end with \"_total\" to have "
        "unit \"total\"\n"
        "5:34: metrics[3].unit: invalid unit \"a-b\"\n"
        "6:34: metrics[4].unit: invalid unit \"\"\n"
        "7:42: metrics[5].unit: metric name \"x_total\" must end with \"_x\" to have unit "
        "\"x\"\n"
        "8:41: metrics[6].unit: metric name \"io_bytes\" must end with \"_bites\" to have "
        "unit \"bites\"\n"
        "9:36: metrics[7].unit: invalid unit \"s~\"\n");
}

static void test_name_templates(void **state) {
    (void)state;
    cfg_config *c = load_ok("mappings:\n"
                            "  - {match: a.*.*, name: \"ns:a_$1_${2}x\"}\n"
                            "  - {match: b.*, name: \"$1\"}\n"
                            "  - {match: f.*, name: \"a_$1b\"}\n"
                            "  - {match: c.*, action: drop, name: \"\"}\n"
                            "  - {match: d.*, action: drop, name: ~}\n"
                            "  - {match: e.*, action: drop, name: kept}\n");
    assert_string_equal(c->mappings[0].name, "ns:a_$1_${2}x");
    assert_string_equal(c->mappings[2].name, "a_$1b");
    assert_null(c->mappings[3].name);
    assert_null(c->mappings[4].name);
    assert_string_equal(c->mappings[5].name, "kept");
    cfg_free(c);

    char yaml[2048];
    char longname[1100];
    memset(longname, 'n', 1025);
    longname[1025] = 0;
    snprintf(yaml, sizeof yaml,
             "mappings:\n"
             "  - {match: a.*, name: \"a$\"}\n"
             "  - {match: a.*, name: \"${1\"}\n"
             "  - {match: a.*, name: \"${}\"}\n"
             "  - {match: a.*, name: \"${1x}\"}\n"
             "  - {match: a.*, name: 1abc}\n"
             "  - {match: a.*, name: \"a.b\"}\n"
             "  - {match: a.*, name: ~}\n"
             "  - {match: a.*, name: %s}\n"
             "  - {match: a.*, action: drop, name: \"b c\"}\n",
             longname);
    const char *tail = " (letters, digits, \"_\", \":\" and $1 or ${1} captures; not starting "
                       "with a digit)\n";
    char want[4096];
    snprintf(want, sizeof want,
             "2:24: mappings[0].name: invalid metric name \"a$\"%s"
             "3:24: mappings[1].name: invalid metric name \"${1\"%s"
             "4:24: mappings[2].name: invalid metric name \"${}\"%s"
             "5:24: mappings[3].name: invalid metric name \"${1x}\"%s"
             "6:24: mappings[4].name: invalid metric name \"1abc\"%s"
             "7:24: mappings[5].name: invalid metric name \"a.b\"%s"
             "8:24: mappings[6].name: must not be empty\n"
             "9:24: mappings[7].name: name too long: 1025 bytes (max 1024)\n"
             "10:38: mappings[8].name: invalid metric name \"b c\"%s",
             tail, tail, tail, tail, tail, tail, tail);
    expect_errors(yaml, want);
}

/* ---- items that are not mappings ----------------------------------------------------------- */

static void test_list_items(void **state) {
    (void)state;
    cfg_config *c = load_ok("metrics: []\nmappings: []\n");
    assert_int_equal(c->nmetrics, 0);
    assert_int_equal(c->nmappings, 0);
    cfg_free(c);
    expect_errors("metrics:\n"
                  "  - 5\n"
                  "  - ~\n"
                  "mappings:\n"
                  "  - [a]\n"
                  "  - ~\n",
                  "2:5: metrics[0]: expected a mapping, got \"5\"\n"
                  "3:5: metrics[1]: expected a mapping, got null\n"
                  "5:5: mappings[0]: expected a mapping, got a sequence\n"
                  "6:5: mappings[1]: expected a mapping, got null\n");
    /* A metric with an invalid type still has its options read (and checked). */
    expect_errors("metrics:\n"
                  "  - name: m\n"
                  "    type: timer\n"
                  "    histogram_options: {buckets: [x]}\n"
                  "    summary_options: {age_buckets: -1}\n",
                  "3:11: metrics[0].type: invalid value \"timer\" (want counter, gauge, histogram "
                  "or summary)\n"
                  "4:35: metrics[0].histogram_options.buckets[0]: expected a number, got \"x\"\n"
                  "5:36: metrics[0].summary_options.age_buckets: must not be negative, got "
                  "\"-1\"\n");
}

/* ---- rules against declared metrics and against each other --------------------------------- */

static void test_rules_vs_metrics(void **state) {
    (void)state;
    /* Kinds and observer types that fit. */
    cfg_config *c = load_ok("metrics:\n"
                            "  - {name: c_total, type: counter}\n"
                            "  - {name: g, type: gauge}\n"
                            "  - {name: h, type: histogram}\n"
                            "  - {name: s, type: summary}\n"
                            "mappings:\n"
                            "  - {match: c.*, name: c_total, match_metric_type: counter}\n"
                            "  - {match: g.*, name: g, match_metric_type: gauge}\n"
                            "  - {match: h.*, name: h, match_metric_type: observer, "
                            "observer_type: histogram}\n"
                            "  - {match: s.*, name: s, match_metric_type: observer, timer_type: "
                            "summary}\n"
                            "  - {match: x.*, name: x, match_metric_type: counter}\n"
                            "  - {match: y.*, name: x, match_metric_type: counter}\n"
                            "  - {match: z.*, action: drop, name: x, match_metric_type: gauge}\n"
                            "  - {match: w.*, name: x_$1, match_metric_type: gauge}\n"
                            "  - {match: v.*, name: c_total, observer_type: histogram}\n");
    assert_int_equal(c->nmappings, 9);
    cfg_free(c);

    expect_errors("metrics:\n"
                  "  - {name: c_total, type: counter, labels: [a]}\n"
                  "  - {name: h, type: histogram}\n"
                  "  - {name: s, type: summary}\n"
                  "  - {name: bad, type: timer, labels: [q]}\n"
                  "mappings:\n"
                  "  - {match: a.*, name: c_total, match_metric_type: observer, labels: ~}\n"
                  "  - {match: b.*, name: h, observer_type: summary}\n"
                  "  - {match: c.*, name: s, match_metric_type: counter, observer_type: "
                  "histogram}\n"
                  "  - {match: d.*, name: bad, match_metric_type: gauge}\n"
                  "  - {match: e.*, name: o, match_metric_type: observer, observer_type: "
                  "histogram}\n"
                  "  - {match: f.*, name: o, match_metric_type: gauge}\n",
                  "5:23: metrics[3].type: invalid value \"timer\" (want counter, gauge, histogram "
                  "or summary)\n"
                  "7:5: mappings[0].labels: missing label \"a\" of metric \"c_total\"\n"
                  "7:52: mappings[0].match_metric_type: observer events cannot update counter "
                  "metric \"c_total\" (declared by metrics[0] at 2:12)\n"
                  "8:42: mappings[1].observer_type: summary conflicts with histogram metric \"h\" "
                  "(declared by metrics[1] at 3:12)\n"
                  "9:46: mappings[2].match_metric_type: counter events cannot update summary "
                  "metric \"s\" (declared by metrics[2] at 4:12)\n"
                  "9:70: mappings[2].observer_type: histogram conflicts with summary metric \"s\" "
                  "(declared by metrics[2] at 4:12)\n"
                  "10:5: mappings[3].labels: missing label \"q\" of metric \"bad\"\n"
                  "12:24: mappings[5].name: conflicting types for \"o\": gauge here, histogram by "
                  "mappings[4] at 11:24\n");

    /* Labels reserved by the type an observer rule makes. */
    expect_errors("mappings:\n"
                  "  - {match: a.*, name: a, match_metric_type: observer, observer_type: "
                  "summary, labels: {quantile: x, le: y}}\n"
                  "  - {match: b.*, name: b, match_metric_type: observer, observer_type: "
                  "histogram, labels: {quantile: x, le: y}}\n"
                  "  - {match: c.*, name: c, labels: {quantile: x, le: y}}\n",
                  "2:89: mappings[0].labels: label name \"quantile\" is reserved for summaries\n"
                  "3:104: mappings[1].labels: label name \"le\" is reserved for histograms\n");
}

/* ---- error order, entry points ------------------------------------------------------------ */

/* Errors are sorted by position; those without one (the expansion budget) go last. */
static void test_error_order(void **state) {
    (void)state;
    size_t cap = 8u << 20;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t o = (size_t)sprintf(big, "metrics:\n"
                                    "  - {name: m, type: counter}\n"
                                    "  - {name: m, type: counter}\n"
                                    "mappings:\n  - &r {match: a.b, name: r, labels: {");
    for (int i = 0; i < 32; i++)
        o += (size_t)sprintf(big + o, "%sl%d: x", i ? ", " : "", i);
    o += (size_t)sprintf(big + o, "}}\n");
    for (int i = 0; i < 100000; i++)
        o += (size_t)sprintf(big + o, "  - *r\n");
    cfg_errors e = {0};
    assert_null(cfg_load_string("t.yml", big, o, &e));
    assert_int_equal(e.count, 2);
    assert_string_equal(e.items[0].message,
                        "metrics[1].name: duplicate metric \"m\" (first declared by metrics[0] at "
                        "2:12)");
    assert_int_equal(e.items[0].line, 3);
    assert_string_equal(e.items[1].message,
                        "document too large: more than 1000000 nodes with aliases expanded");
    assert_int_equal(e.items[1].line, 0);
    cfg_errors_free(&e);
    free(big);
}

static void test_entry_points(void **state) {
    (void)state;
    /* No name: errors say "<config>" and the config has no path. */
    cfg_errors e = {0};
    assert_null(cfg_load_string(NULL, "bogus: 1\n", 9, &e));
    assert_int_equal(e.count, 1);
    assert_string_equal(e.items[0].file, "<config>");
    assert_string_equal(e.items[0].message, "unknown key \"bogus\"");
    cfg_errors_free(&e);
    cfg_config *c = cfg_load_string(NULL, "server: {max_connections: 3}\n", 29, &e);
    assert_non_null(c);
    assert_null(c->path);
    assert_int_equal(c->server.max_connections, 3);
    cfg_free(c);
    /* No error list: the result alone says it failed. */
    assert_null(cfg_load_string("t.yml", "bogus: 1\n", 9, NULL));
    /* No text: the built-in defaults. */
    c = cfg_load_string("t.yml", NULL, 0, &e);
    assert_non_null(c);
    assert_int_equal(e.count, 0);
    assert_string_equal(c->server.listen_address, ":9102");
    assert_int_equal(c->nmappings, 0);
    cfg_free(c);
    assert_null(cfg_load("/nonexistent/abacus.yml", NULL));
    cfg_free(NULL);
}

/* A file read in several chunks, and one over the size limit. */
static void test_file_sizes(void **state) {
    (void)state;
    char path[] = "/tmp/abacus-test-values-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    /* About 300 KB: read in growing chunks. */
    fputs("metrics:\n", f);
    for (int i = 0; i < 6000; i++)
        fprintf(f, "  - {name: metric_number_%05d, type: gauge}  # padding padding\n", i);
    fclose(f);
    cfg_errors e = {0};
    cfg_config *c = cfg_load(path, &e);
    assert_non_null(c);
    assert_int_equal(c->nmetrics, 6000);
    assert_string_equal(c->metrics[5999].name, "metric_number_05999");
    cfg_free(c);

    /* One byte over 16 MiB. */
    f = fopen(path, "w");
    assert_non_null(f);
    char *chunk = malloc(1 << 20);
    assert_non_null(chunk);
    memset(chunk, '#', 1 << 20);
    for (int i = 0; i < 16; i++)
        assert_int_equal(fwrite(chunk, 1, 1 << 20, f), 1 << 20);
    fputc('\n', f);
    fclose(f);
    free(chunk);
    assert_null(cfg_load(path, &e));
    assert_int_equal(e.count, 1);
    assert_string_equal(e.items[0].file, path);
    assert_int_equal(e.items[0].line, 0);
    assert_string_equal(e.items[0].message, "file too large (max 16777216 bytes)");
    cfg_errors_free(&e);

    /* 40 MiB: reading stops once past the limit, same error. */
    assert_int_equal(truncate(path, 40 << 20), 0);
    assert_null(cfg_load(path, &e));
    assert_int_equal(e.count, 1);
    assert_string_equal(e.items[0].message, "file too large (max 16777216 bytes)");
    cfg_errors_free(&e);
    unlink(path);
}

/* Input that is not UTF-8 up to its end: the reader's error without a byte value. */
static void test_truncated_utf8(void **state) {
    (void)state;
    expect_errors("server: {telemetry_path: /a\xc3", "1:28: invalid input: incomplete UTF-8 octet "
                                                     "sequence\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_whole_numbers),
        cmocka_unit_test(test_booleans_and_enums),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_tags_and_nulls),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_merges),
        cmocka_unit_test(test_label_maps),
        cmocka_unit_test(test_observer_options),
        cmocka_unit_test(test_deprecated_keys),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_name_templates),
        cmocka_unit_test(test_list_items),
        cmocka_unit_test(test_rules_vs_metrics),
        cmocka_unit_test(test_error_order),
        cmocka_unit_test(test_entry_points),
        cmocka_unit_test(test_file_sizes),
        cmocka_unit_test(test_truncated_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
