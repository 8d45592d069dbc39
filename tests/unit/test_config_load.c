/* test_config_load.c - the YAML loader: valid files and their resolved values, invalid files
 * with the exact position and message of every error, anchors and merges, statsd_exporter
 * mapping files, and hostile input. */
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

/* ---- valid files ------------------------------------------------------------------------ */

static const char *design_example =
    "server:   {listen_address: \":9102\", telemetry_path: /metrics}\n"
    "statsd:   {listen_udp: \":9125\", listen_tcp: \":9125\", listen_unixgram: \"\"}\n"
    "defaults:\n"
    "  ttl: 0s\n"
    "  max_series: 10000\n"
    "  observer_type: histogram\n"
    "  histogram_options: {buckets: [0.005, 0.01, 0.1, 1, 10]}\n"
    "metrics:\n"
    "  - name: jobs_processed_total\n"
    "    help: Jobs processed, by queue and outcome.\n"
    "    type: counter\n"
    "    labels: [queue, outcome]\n"
    "    const_labels: {team: payments}\n"
    "    ttl: 10m\n"
    "    max_series: 1000\n"
    "  - name: job_duration_seconds\n"
    "    help: Time to process one job.\n"
    "    type: histogram\n"
    "    labels: [queue]\n"
    "    histogram_options: {buckets: [0.1, 0.5, 1, 5]}\n"
    "  - name: queue_depth\n"
    "    type: gauge\n"
    "mappings:\n"
    "  - match: \"jobs.*.*\"\n"
    "    name: jobs_processed_total\n"
    "    labels: {queue: \"$1\", outcome: \"$2\"}\n";

static void test_design_example(void **state) {
    (void)state;
    cfg_config *c = load_ok(design_example);
    assert_string_equal(c->path, "t.yml");
    assert_int_not_equal(c->hash, 0);
    assert_string_equal(c->server.listen_address, ":9102");
    assert_string_equal(c->statsd.listen_unixgram, "");
    assert_int_equal(c->defaults.max_series, 10000);
    assert_int_equal(c->defaults.histogram.nbuckets, 5);
    assert_int_equal(c->nmetrics, 3);

    const cfg_metric *m = &c->metrics[0];
    assert_string_equal(m->name, "jobs_processed_total");
    assert_int_equal(m->type, REG_COUNTER);
    assert_int_equal(m->nlabels, 2);
    assert_string_equal(m->labels[1], "outcome");
    assert_int_equal(m->nconst, 1);
    assert_string_equal(m->const_labels[0].name, "team");
    assert_string_equal(m->const_labels[0].value, "payments");
    assert_true(m->has_ttl);
    assert_int_equal(m->ttl_ns, 600ULL * 1000000000ULL);
    assert_int_equal(m->max_series, 1000);
    assert_int_equal(m->line, 9);
    assert_int_equal(m->column, 5);

    reg_family_def d;
    cfg_metric_family_def(m, &d);
    assert_string_equal(d.name, "jobs_processed_total");
    assert_int_equal(d.nlabels, 2);
    assert_string_equal(d.labels[0], "queue");
    assert_int_equal(d.nconst, 1);
    assert_string_equal(d.const_names[0], "team");
    assert_string_equal(d.const_values[0], "payments");
    assert_int_equal(d.nbuckets, 0);
    assert_int_equal(d.nobjectives, 0);

    m = &c->metrics[1];
    assert_int_equal(m->type, REG_HISTOGRAM);
    assert_int_equal(m->histogram.nbuckets, 4);
    assert_true(m->histogram.buckets[3] == 5);
    cfg_metric_family_def(m, &d);
    assert_int_equal(d.nbuckets, 4);
    assert_int_equal(d.nconst, 0);
    assert_null(d.const_names);

    m = &c->metrics[2]; /* defaults applied */
    assert_false(m->has_ttl);
    assert_int_equal(m->ttl_ns, 0);
    assert_int_equal(m->max_series, 10000);
    assert_null(m->help);

    const cfg_mapping *r = &c->mappings[0];
    assert_int_equal(c->nmappings, 1);
    assert_string_equal(r->match, "jobs.*.*");
    assert_int_equal(r->match_type, CFG_MATCH_GLOB);
    assert_int_equal(r->action, CFG_ACTION_MAP);
    assert_int_equal(r->observer_type, CFG_OBS_HISTOGRAM);
    assert_int_equal(r->nlabels, 2);
    assert_string_equal(r->labels[0].name, "queue");
    assert_string_equal(r->labels[0].value, "$1");
    assert_true(r->scale == 1);
    assert_false(r->has_scale);
    assert_int_equal(r->histogram.nbuckets, 5);
    assert_int_equal(r->summary.nobjectives, 3);
    cfg_free(c);
}

static void test_defaults(void **state) {
    (void)state;
    cfg_config *c = cfg_default();
    assert_non_null(c);
    assert_null(c->path);
    assert_int_equal(c->hash, 0);
    assert_string_equal(c->server.listen_address, ":9102");
    assert_string_equal(c->server.telemetry_path, "/metrics");
    assert_string_equal(c->statsd.listen_udp, ":9125");
    assert_string_equal(c->statsd.listen_tcp, ":9125");
    assert_string_equal(c->statsd.listen_unixgram, "");
    assert_true(c->statsd.dogstatsd_tags && c->statsd.influxdb_tags && c->statsd.librato_tags &&
                c->statsd.signalfx_tags);
    /* push: on, groups never expire, 16 MiB per body, 64 MiB buffered at once */
    assert_int_equal(c->push.group_ttl_ns, 0);
    assert_int_equal(c->push.max_body_bytes, 16u << 20);
    assert_int_equal(c->push.max_buffered_bytes, 64u << 20);
    assert_true(c->push.enabled);
    assert_int_equal(c->defaults.observer_type, CFG_OBS_SUMMARY); /* statsd_exporter's */
    assert_int_equal(c->defaults.match_type, CFG_MATCH_GLOB);
    /* client_golang's DefBuckets and statsd_exporter's objectives */
    assert_int_equal(c->defaults.histogram.nbuckets, 11);
    assert_true(c->defaults.histogram.buckets[0] == 0.005);
    assert_true(c->defaults.histogram.buckets[10] == 10);
    assert_int_equal(c->defaults.summary.nobjectives, 3);
    assert_true(c->defaults.summary.objectives[2].quantile == 0.99);
    assert_true(c->defaults.summary.objectives[2].error == 0.001);
    assert_int_equal(c->nmetrics, 0);
    assert_int_equal(c->nmappings, 0);
    cfg_free(c);

    /* Empty input, comments only, or an empty document: the same defaults. */
    const char *empties[] = {"", "# nothing here\n\n", "---\n", "~\n", "defaults:\nmappings:\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        c = load_ok(empties[i]);
        assert_int_equal(c->defaults.histogram.nbuckets, 11);
        assert_int_equal(c->nmappings, 0);
        cfg_free(c);
    }
}

/* The starter configuration shipped with statsd_exporter (native histogram keys included):
 * it must load unchanged. */
static const char *statsd_exporter_example =
    "# This is a modern starter configuration\n"
    "defaults:\n"
    "  observer_type: histogram\n"
    "  histogram_options:\n"
    "    native_histogram_bucket_factor: 1.1\n"
    "    native_histogram_max_buckets: 160\n"
    "    buckets: [.005, .01, .025, .05, .1, .25, .5, 1, 2.5 ]\n"
    "  summary_options:\n"
    "    quantiles:\n"
    "      - quantile: 0.99\n"
    "        error: 0.001\n"
    "      - quantile: 0.95\n"
    "        error: 0.01\n"
    "      - quantile: 0.9\n"
    "        error: 0.05\n"
    "      - quantile: 0.5\n"
    "        error: 0.005\n"
    "    max_age: 5m\n"
    "    age_buckets: 2\n"
    "    buf_cap: 1000\n"
    "  match_type: glob\n"
    "  glob_disable_ordering: true\n"
    "  ttl: 0\n"
    "mappings:\n"
    "- match: \"test.timing.*.*.*\"\n"
    "  name: \"my_timer\"\n"
    "  help: \"Latency of the application\"\n"
    "  labels:\n"
    "    provider: \"$2\"\n"
    "    outcome: \"$3\"\n"
    "    job: \"${1}_server\"\n"
    "- match: \"consistent_app.timing.*.*.*\"\n"
    "  name: \"my_consistent_timer\"\n"
    "  histogram_options:\n"
    "    native_histogram_bucket_factor: 1.005\n"
    "    buckets: [0.01, 0.011, 0.012, 0.013, 0.014, 0.015, 0.016, 0.017, 0.018, 0.019, 0.02]\n"
    "  labels:\n"
    "    provider: \"$2\"\n"
    "- match: \"other.distribution.*.*.*\"\n"
    "  observer_type: summary\n"
    "  name: \"other_distribution\"\n"
    "  labels:\n"
    "    job: \"${1}_server_other\"\n"
    "- match: (.*)\\.(.*)--(.*)\\.status\\.(.*)\\.count\n"
    "  match_type: regex\n"
    "  name: \"request_total\"\n"
    "  match_metric_type: counter\n"
    "  labels:\n"
    "    hostname: \"$1\"\n"
    "  ttl: 1m30s\n"
    "  honor_labels: true\n"
    "  scale: 0.001\n"
    "- match: \"test.dispatcher.*.*.*\"\n"
    "  name: \"dispatcher_events_total\"\n"
    "  labels: {processor: \"$1\", action: \"$2\", outcome: \"$3\", job: \"test_dispatcher\"}\n"
    "- match: \"*.signup.*.*\"\n"
    "  name: \"signup_events_total\"\n"
    "  labels: {provider: \"$2\", outcome: \"$3\", job: \"${1}_server\"}\n"
    "- match: a.b-c.0d.*\n"
    "  name: \"x_${1}\"\n"
    "- match: .\n"
    "  match_type: regex\n"
    "  action: drop\n"
    "  name: \"dropped\"\n";

static void test_statsd_exporter_file(void **state) {
    (void)state;
    cfg_config *c = load_ok(statsd_exporter_example);
    const cfg_defaults *d = &c->defaults;
    assert_int_equal(d->histogram.nbuckets, 9);
    assert_int_equal(d->summary.nobjectives, 4);
    assert_true(d->summary.objectives[0].quantile == 0.99);
    assert_int_equal(d->summary.max_age_ns, 300ULL * 1000000000ULL);
    assert_int_equal(d->summary.age_buckets, 2);
    assert_int_equal(d->summary.buf_cap, 1000);
    assert_true(d->glob_disable_ordering);
    assert_int_equal(c->nmappings, 8);

    const cfg_mapping *r = c->mappings;
    assert_int_equal(r[0].histogram.nbuckets, 9); /* from defaults */
    assert_string_equal(r[0].help, "Latency of the application");
    assert_int_equal(r[0].nlabels, 3);
    assert_string_equal(r[0].labels[2].name, "job");
    assert_string_equal(r[0].labels[2].value, "${1}_server");
    assert_int_equal(r[1].histogram.nbuckets, 11);
    assert_int_equal(r[2].observer_type, CFG_OBS_SUMMARY);
    assert_int_equal(r[2].summary.nobjectives, 4); /* from defaults */
    assert_int_equal(r[2].summary.age_buckets, 2); /* from defaults */
    assert_int_equal(r[3].match_type, CFG_MATCH_REGEX);
    assert_string_equal(r[3].match, "(.*)\\.(.*)--(.*)\\.status\\.(.*)\\.count");
    assert_int_equal(r[3].match_metric_type, CFG_MMT_COUNTER);
    assert_true(r[3].has_ttl);
    assert_int_equal(r[3].ttl_ns, 90ULL * 1000000000ULL);
    assert_true(r[3].honor_labels);
    assert_true(r[3].has_scale);
    assert_true(r[3].scale == 0.001);
    assert_int_equal(r[7].action, CFG_ACTION_DROP);
    assert_string_equal(r[7].name, "dropped");
    cfg_free(c);
}

/* Older statsd_exporter files: timer_type and top-level buckets / quantiles. */
static void test_statsd_exporter_legacy_keys(void **state) {
    (void)state;
    cfg_config *c = load_ok("defaults:\n"
                            "  timer_type: summary\n"
                            "  buckets: [1, 2, 3]\n"
                            "  quantiles: [{quantile: 0.5, error: 0.1}]\n"
                            "  match_type: regex\n"
                            "mappings:\n"
                            "- match: a\\.(.*)\n"
                            "  name: a\n"
                            "- match: b.*\n"
                            "  match_type: glob\n"
                            "  timer_type: histogram\n"
                            "  buckets: [5, 6]\n"
                            "  name: b\n"
                            "- match: c.*\n"
                            "  match_type: glob\n"
                            "  quantiles: [{quantile: 0.9, error: 0.01}, {quantile: 0.1, "
                            "error: 0.01}]\n"
                            "  name: c\n");
    assert_int_equal(c->defaults.observer_type, CFG_OBS_SUMMARY);
    assert_int_equal(c->defaults.histogram.nbuckets, 3);
    assert_int_equal(c->defaults.summary.nobjectives, 1);
    assert_int_equal(c->defaults.match_type, CFG_MATCH_REGEX);
    const cfg_mapping *r = c->mappings;
    assert_int_equal(r[0].match_type, CFG_MATCH_REGEX);
    assert_int_equal(r[0].observer_type, CFG_OBS_SUMMARY);
    assert_int_equal(r[0].summary.nobjectives, 1);
    assert_int_equal(r[1].observer_type, CFG_OBS_HISTOGRAM);
    assert_int_equal(r[1].histogram.nbuckets, 2);
    assert_true(r[1].histogram.buckets[1] == 6);
    assert_int_equal(r[2].observer_type, CFG_OBS_SUMMARY);
    assert_int_equal(r[2].summary.nobjectives, 2);
    cfg_free(c);

    /* Without any observer type anywhere, timers become summaries (statsd_exporter). */
    c = load_ok("mappings:\n"
                "- match: a.*\n"
                "  name: a\n"
                "  summary_options: {max_age: 1m}\n"
                "- match: b.*\n"
                "  name: b\n");
    assert_int_equal(c->mappings[0].observer_type, CFG_OBS_SUMMARY);
    assert_int_equal(c->mappings[0].summary.max_age_ns, 60ULL * 1000000000ULL);
    assert_int_equal(c->mappings[0].summary.nobjectives, 3);
    assert_int_equal(c->mappings[1].observer_type, CFG_OBS_SUMMARY);
    cfg_free(c);
}

static void test_anchors_and_merges(void **state) {
    (void)state;
    cfg_config *c = load_ok("defaults:\n"
                            "  histogram_options: &hist {buckets: [1, 2, 4]}\n"
                            "metrics:\n"
                            "  - &lat\n"
                            "    name: a_seconds\n"
                            "    type: histogram\n"
                            "    labels: &lbls [queue, host]\n"
                            "    histogram_options: *hist\n"
                            "  - <<: *lat\n"
                            "    name: b_seconds\n"
                            "  - name: c_total\n"
                            "    type: counter\n"
                            "    labels: *lbls\n"
                            "mappings:\n"
                            "  - &rule\n"
                            "    match: a.*.*\n"
                            "    name: a_seconds\n"
                            "    labels: &ql {queue: $1, host: $2}\n"
                            "    ttl: &t 5m\n"
                            "  - <<: [*rule, {help: merged, name: ignored_by_explicit}]\n"
                            "    match: b.*.*\n"
                            "    name: b_seconds\n"
                            "  - {match: c.*.*, name: c_total, labels: *ql, ttl: *t}\n");
    assert_int_equal(c->nmetrics, 3);
    assert_string_equal(c->metrics[1].name, "b_seconds");
    assert_int_equal(c->metrics[1].type, REG_HISTOGRAM);
    assert_int_equal(c->metrics[1].nlabels, 2);
    assert_int_equal(c->metrics[1].histogram.nbuckets, 3);
    assert_int_equal(c->metrics[2].nlabels, 2);
    assert_string_equal(c->metrics[2].labels[1], "host");
    assert_string_equal(c->mappings[1].name, "b_seconds");
    assert_string_equal(c->mappings[1].match, "b.*.*");
    assert_string_equal(c->mappings[1].help, "merged");
    assert_int_equal(c->mappings[1].ttl_ns, 300ULL * 1000000000ULL);
    assert_int_equal(c->mappings[2].nlabels, 2);
    assert_int_equal(c->mappings[2].ttl_ns, 300ULL * 1000000000ULL);
    cfg_free(c);
}

static void test_values(void **state) {
    (void)state;
    cfg_config *c = load_ok("server:\n"
                            "  listen_address: \"127.0.0.1:9102\"\n"
                            "  telemetry_path: /stats/metrics\n"
                            "  max_connections: 1_000\n"
                            "  max_connections_per_ip: 0\n"
                            "  connection_timeout: 1m30s\n"
                            "  max_request_bytes: 1048576\n"
                            "statsd:\n"
                            "  listen_udp: \"[::1]:8125\"\n"
                            "  listen_tcp: \"\"\n"
                            "  listen_unixgram: /run/abacus/statsd.sock\n"
                            "  read_buffer: 8388608\n"
                            "  readers: 4\n"
                            "  parse_dogstatsd_tags: false\n"
                            "  parse_influxdb_tags: no\n"
                            "  parse_librato_tags: On\n"
                            "  parse_signalfx_tags: TRUE\n"
                            "  cache_size: 5000\n"
                            "  max_series: 200000\n"
                            "push:\n"
                            "  group_ttl: 1h30m\n"
                            "  max_body_bytes: 1_048_576\n"
                            "  max_buffered_bytes: 8388608\n"
                            "  enabled: false\n"
                            "metrics:\n"
                            "  - name: build_info\n"
                            "    type: gauge\n"
                            "    const_labels: {version: \"1.2\", commit: 0abc, empty: }\n"
                            "  - name: rpc_latency_seconds\n"
                            "    type: summary\n"
                            "    unit: seconds\n"
                            "    summary_options: {quantiles: []}\n"
                            "  - name: bytes_sent_bytes_total\n"
                            "    type: counter\n"
                            "    unit: bytes\n"
                            "    ttl: 1w\n");
    assert_string_equal(c->server.listen_address, "127.0.0.1:9102");
    assert_int_equal(c->server.max_connections, 1000);
    assert_int_equal(c->server.max_connections_per_ip, 0);
    assert_int_equal(c->server.connection_timeout_ns, 90ULL * 1000000000ULL);
    assert_int_equal(c->server.max_request_bytes, 1048576);
    assert_string_equal(c->statsd.listen_udp, "[::1]:8125");
    assert_string_equal(c->statsd.listen_tcp, "");
    assert_int_equal(c->statsd.readers, 4);
    assert_false(c->statsd.dogstatsd_tags);
    assert_false(c->statsd.influxdb_tags);
    assert_true(c->statsd.librato_tags);
    assert_true(c->statsd.signalfx_tags);
    assert_int_equal(c->statsd.cache_size, 5000);
    assert_int_equal(c->statsd.max_series, 200000);
    assert_int_equal(c->push.group_ttl_ns, 5400ULL * 1000000000ULL);
    assert_int_equal(c->push.max_body_bytes, 1048576);
    assert_int_equal(c->push.max_buffered_bytes, 8388608);
    assert_false(c->push.enabled);
    assert_int_equal(c->metrics[0].nconst, 3);
    assert_string_equal(c->metrics[0].const_labels[1].value, "0abc");
    assert_string_equal(c->metrics[0].const_labels[2].value, "");
    /* A declared summary with `quantiles: []` has none (count and sum only). */
    assert_true(c->metrics[1].summary.has_objectives);
    assert_int_equal(c->metrics[1].summary.nobjectives, 0);
    assert_string_equal(c->metrics[1].unit, "seconds");
    assert_int_equal(c->metrics[2].ttl_ns, 7ULL * 86400ULL * 1000000000ULL);
    cfg_free(c);
}

/* ---- invalid files: every error, exact position and message ------------------------------ */

typedef struct {
    const char *name, *yaml, *errors;
} bad_case;

static const bad_case bad[] = {
    {"unknown and duplicate keys",
     "server:\n"
     "  listen_adress: \":9102\"\n"
     "statsd: {readers: 2, readers: 3}\n"
     "extra: 1\n"
     "mappings:\n"
     "  - match: a.b\n"
     "    name: a\n"
     "    name: b\n"
     "    tll: 5m\n",
     "2:3: server: unknown key \"listen_adress\"\n"
     "3:22: statsd: duplicate key \"readers\"\n"
     "4:1: unknown key \"extra\"\n"
     "8:5: mappings[0]: duplicate key \"name\"\n"
     "9:5: mappings[0]: unknown key \"tll\"\n"},

    {"wrong types",
     "server: [1, 2]\n"
     "statsd:\n"
     "  listen_udp: {a: 1}\n"
     "  readers: many\n"
     "  parse_dogstatsd_tags: maybe\n"
     "  parse_signalfx_tags: \"true\"\n"
     "metrics:\n"
     "  - name: a\n"
     "    type: counter\n"
     "    labels: queue\n"
     "  - name: [b]\n"
     "    type: gauge\n"
     "    help: {x: 1}\n"
     "  -\n"
     "  - just a string\n"
     "mappings: {match: a}\n",
     "1:9: server: expected a mapping, got a sequence\n"
     "3:15: statsd.listen_udp: expected a string, got a mapping\n"
     "4:12: statsd.readers: expected a whole number, got \"many\"\n"
     "5:25: statsd.parse_dogstatsd_tags: expected true or false, got \"maybe\"\n"
     "6:24: statsd.parse_signalfx_tags: expected true or false, got \"true\"\n"
     "10:13: metrics[0].labels: expected a sequence, got \"queue\"\n"
     "11:11: metrics[1].name: expected a string, got a sequence\n"
     "13:11: metrics[1].help: expected a string, got a mapping\n"
     "14:4: metrics[2]: expected a mapping, got null\n"
     "15:5: metrics[3]: expected a mapping, got \"just a string\"\n"
     "16:11: mappings: expected a sequence, got a mapping\n"},

    {"metric names, labels and reserved labels",
     "metrics:\n"
     "  - name: 1x\n"
     "    type: counter\n"
     "    labels: [ok, 1y, __z, ok, \"a-b\"]\n"
     "  - name: lat\n"
     "    type: histogram\n"
     "    labels: [le, quantile]\n"
     "    const_labels: {__a: x, le: y, \"q q\": z}\n"
     "  - name: sum\n"
     "    type: summary\n"
     "    labels: [quantile, le]\n"
     "  - type: gauge\n"
     "  - name: \"\"\n"
     "    type: gauge\n"
     "  - name: g\n"
     "    type: gauge\n"
     "    labels: [a]\n"
     "    const_labels: {a: 1}\n",
     "2:11: metrics[0].name: invalid metric name \"1x\"\n"
     "4:18: metrics[0].labels[1]: invalid label name \"1y\"\n"
     "4:22: metrics[0].labels[2]: label name \"__z\" is reserved (starts with \"__\")\n"
     "4:27: metrics[0].labels[3]: duplicate label name \"ok\"\n"
     "4:31: metrics[0].labels[4]: invalid label name \"a-b\"\n"
     "7:14: metrics[1].labels[0]: label name \"le\" is reserved for histograms\n"
     "8:20: metrics[1].const_labels: label name \"__a\" is reserved (starts with \"__\")\n"
     "8:28: metrics[1].const_labels: label name \"le\" is reserved for histograms\n"
     "8:35: metrics[1].const_labels: invalid label name \"q q\"\n"
     "11:14: metrics[2].labels[0]: label name \"quantile\" is reserved for summaries\n"
     "12:5: metrics[3]: missing required key \"name\"\n"
     "13:11: metrics[4].name: must not be empty\n"
     "18:20: metrics[5].const_labels: \"a\" is also in labels\n"},

    {"types, duplicates and collisions",
     "metrics:\n"
     "  - name: a\n"
     "    type: timer\n"
     "  - name: b\n"
     "  - name: lat\n"
     "    type: histogram\n"
     "  - name: lat\n"
     "    type: histogram\n"
     "  - name: lat_count\n"
     "    type: counter\n"
     "  - name: c\n"
     "    type: counter\n"
     "    histogram_options: {buckets: [1]}\n"
     "    summary_options: {max_age: 1m}\n"
     "  - name: sz_bytes\n"
     "    type: gauge\n"
     "    unit: seconds\n",
     "3:11: metrics[0].type: invalid value \"timer\" (want counter, gauge, histogram or "
     "summary)\n"
     "4:5: metrics[1]: missing required key \"type\"\n"
     "7:11: metrics[3].name: duplicate metric \"lat\" (first declared by metrics[2] at 5:11)\n"
     "9:11: metrics[4].name: metric \"lat_count\" collides with the series of histogram "
     "\"lat\" (declared by metrics[2] at 5:11)\n"
     "13:5: metrics[5]: histogram_options is only valid with type histogram\n"
     "14:5: metrics[5]: summary_options is only valid with type summary\n"
     "17:11: metrics[6].unit: metric name \"sz_bytes\" must end with \"_seconds\" to have unit "
     "\"seconds\"\n"},

    {"buckets and quantiles",
     "defaults:\n"
     "  histogram_options:\n"
     "    buckets: [1, 0.5, 0.5, .inf, x]\n"
     "  summary_options:\n"
     "    quantiles:\n"
     "      - {quantile: 0, error: 0.1}\n"
     "      - {quantile: 0.5, error: 1}\n"
     "      - {quantile: 0.5, error: 0.01}\n"
     "      - {quantile: 0.9}\n"
     "      - {quantile: 1.5, error: -0.1, extra: 1}\n"
     "    age_buckets: 1000\n"
     "metrics:\n"
     "  - name: h\n"
     "    type: histogram\n"
     "    histogram_options: {buckets: 5}\n"
     "  - name: s\n"
     "    type: summary\n"
     "    summary_options: {quantiles: [0.5]}\n",
     "3:18: defaults.histogram_options.buckets[1]: buckets must be increasing: 0.5 after 1\n"
     "3:23: defaults.histogram_options.buckets[2]: duplicate bucket 0.5\n"
     "3:28: defaults.histogram_options.buckets[3]: buckets must be finite (+Inf is implied)\n"
     "3:34: defaults.histogram_options.buckets[4]: expected a number, got \"x\"\n"
     "6:20: defaults.summary_options.quantiles[0].quantile: must be in (0,1), got 0\n"
     "7:32: defaults.summary_options.quantiles[1].error: must be in (0,1), got 1\n"
     "8:20: defaults.summary_options.quantiles[2].quantile: duplicate quantile 0.5\n"
     "9:9: defaults.summary_options.quantiles[3]: missing required key \"error\"\n"
     "10:20: defaults.summary_options.quantiles[4].quantile: must be in (0,1), got 1.5\n"
     "10:32: defaults.summary_options.quantiles[4].error: must be in (0,1), got -0.1\n"
     "10:38: defaults.summary_options.quantiles[4]: unknown key \"extra\"\n"
     "11:18: defaults.summary_options.age_buckets: \"1000\" is out of range (max 100)\n"
     "15:34: metrics[0].histogram_options.buckets: expected a sequence, got \"5\"\n"
     "18:35: metrics[1].summary_options.quantiles[0]: expected a mapping, got \"0.5\"\n"},

    {"durations",
     "defaults:\n"
     "  ttl: -5m\n"
     "server:\n"
     "  connection_timeout: 30\n"
     "metrics:\n"
     "  - {name: a, type: gauge, ttl: 5 minutes}\n"
     "  - {name: b, type: gauge, ttl: 1h30}\n"
     "  - {name: c, type: gauge, ttl: [1s]}\n"
     "  - {name: d, type: gauge, ttl: 99999999999h}\n",
     "2:8: defaults.ttl: negative duration \"-5m\"\n"
     "4:23: server.connection_timeout: invalid duration \"30\": missing unit (e.g. 30s)\n"
     "6:33: metrics[0].ttl: invalid duration \"5 minutes\" (e.g. 30s, 5m, 1h30m, 500ms)\n"
     "7:33: metrics[1].ttl: invalid duration \"1h30\" (e.g. 30s, 5m, 1h30m, 500ms)\n"
     "8:33: metrics[2].ttl: expected a duration, got a sequence\n"
     "9:33: metrics[3].ttl: invalid duration \"99999999999h\" (e.g. 30s, 5m, 1h30m, 500ms)\n"},

    {"mapping rules",
     "mappings:\n"
     "  - name: no_match\n"
     "  - match: a..b\n"
     "    name: x\n"
     "  - match: a.b*\n"
     "    name: x\n"
     "  - match: 1a.b\n"
     "    name: x\n"
     "  - match: \"(unclosed\"\n"
     "    match_type: regex\n"
     "    name: x\n"
     "  - match: a.*\n"
     "  - match: a.*\n"
     "    name: bad-name\n"
     "  - match: a.*\n"
     "    name: \"${x}\"\n"
     "  - match: a.*\n"
     "    action: drop\n"
     "  - match: a.*\n"
     "    action: keep\n"
     "    match_type: fsm\n"
     "    match_metric_type: timer\n"
     "    observer_type: distribution\n"
     "    name: x\n"
     "  - match: a.*\n"
     "    name: x\n"
     "    labels: {__n: a, \"1\": b, ok: [c]}\n"
     "    honor_labels: 1\n"
     "    scale: .nan\n",
     "2:5: mappings[0]: missing required key \"match\"\n"
     "3:12: mappings[1].match: invalid glob \"a..b\" (dot-separated parts, each \"*\" or made "
     "of letters, digits, \"_\" and \"-\")\n"
     "5:12: mappings[2].match: invalid glob \"a.b*\" (dot-separated parts, each \"*\" or made "
     "of letters, digits, \"_\" and \"-\")\n"
     "7:12: mappings[3].match: invalid glob \"1a.b\" (dot-separated parts, each \"*\" or made "
     "of letters, digits, \"_\" and \"-\")\n"
     "9:12: mappings[4].match: invalid regex: missing closing parenthesis (at offset 9)\n"
     "12:5: mappings[5]: missing required key \"name\"\n"
     "14:11: mappings[6].name: invalid metric name \"bad-name\" (letters, digits, \"_\", \":\" "
     "and $1 or ${1} captures; not starting with a digit)\n"
     "16:11: mappings[7].name: invalid metric name \"${x}\" (letters, digits, \"_\", \":\" and "
     "$1 or ${1} captures; not starting with a digit)\n"
     "20:13: mappings[9].action: invalid value \"keep\" (want map or drop)\n"
     "21:17: mappings[9].match_type: invalid value \"fsm\" (want glob or regex)\n"
     "22:24: mappings[9].match_metric_type: invalid value \"timer\" (want counter, gauge or "
     "observer)\n"
     "23:20: mappings[9].observer_type: invalid value \"distribution\" (want histogram or "
     "summary)\n"
     "27:14: mappings[10].labels: label name \"__n\" is reserved (starts with \"__\")\n"
     "27:22: mappings[10].labels: invalid label name \"1\"\n"
     "27:34: mappings[10].labels.ok: expected a string, got a sequence\n"
     "28:19: mappings[10].honor_labels: expected true or false, got \"1\"\n"
     "29:12: mappings[10].scale: must be finite, got nan\n"},

    {"observer options that contradict",
     "mappings:\n"
     "  - match: a.*\n"
     "    name: a\n"
     "    observer_type: histogram\n"
     "    summary_options: {max_age: 1m}\n"
     "  - match: b.*\n"
     "    name: b\n"
     "    timer_type: summary\n"
     "    histogram_options: {buckets: [1]}\n"
     "  - match: c.*\n"
     "    name: c\n"
     "    buckets: [1]\n"
     "    histogram_options: {buckets: [2]}\n"
     "    quantiles: [{quantile: 0.5, error: 0.1}]\n"
     "    summary_options: {quantiles: [{quantile: 0.5, error: 0.1}]}\n",
     "5:5: mappings[0]: summary_options cannot be used with a histogram\n"
     "9:5: mappings[1]: histogram_options cannot be used with a summary\n"
     "12:5: mappings[2]: buckets and histogram_options.buckets cannot both be given\n"
     "14:5: mappings[2]: quantiles and summary_options.quantiles cannot both be given\n"},

    {"rules that feed declared metrics",
     "metrics:\n"
     "  - name: jobs_total\n"
     "    type: counter\n"
     "    labels: [queue, outcome]\n"
     "  - name: lat_seconds\n"
     "    type: histogram\n"
     "mappings:\n"
     "  - match: jobs.*.*\n"
     "    name: jobs_total\n"
     "    labels: {queue: $1, result: $2}\n"
     "  - match: jobs.*\n"
     "    name: jobs_total\n"
     "    match_metric_type: gauge\n"
     "  - match: lat.*\n"
     "    name: lat_seconds\n"
     "    match_metric_type: observer\n"
     "    observer_type: summary\n"
     "  - match: other.*\n"
     "    name: $1_total\n"
     "    labels: {anything: $1}\n",
     "10:13: mappings[0].labels: missing label \"outcome\" of metric \"jobs_total\"\n"
     "10:25: mappings[0].labels: metric \"jobs_total\" has no label \"result\"\n"
     "11:5: mappings[1].labels: missing label \"queue\" of metric \"jobs_total\"\n"
     "11:5: mappings[1].labels: missing label \"outcome\" of metric \"jobs_total\"\n"
     "13:24: mappings[1].match_metric_type: gauge events cannot update counter metric "
     "\"jobs_total\" (declared by metrics[0] at 2:11)\n"
     "17:20: mappings[2].observer_type: summary conflicts with histogram metric "
     "\"lat_seconds\" (declared by metrics[1] at 5:11)\n"},

    {"conflicting types between rules",
     "mappings:\n"
     "  - {match: a.*, name: x, match_metric_type: counter}\n"
     "  - {match: b.*, name: x}\n"
     "  - {match: c.*, name: x, match_metric_type: gauge}\n"
     "  - {match: d.*, name: x, match_metric_type: observer}\n",
     "4:24: mappings[2].name: conflicting types for \"x\": gauge here, counter by mappings[0] "
     "at 2:24\n"
     "5:24: mappings[3].name: conflicting types for \"x\": summary here, counter by "
     "mappings[0] at 2:24\n"},

    {"server and statsd values",
     "server:\n"
     "  listen_address: \"\"\n"
     "  telemetry_path: /-/metrics\n"
     "  max_connections: 0\n"
     "  max_request_bytes: -1\n"
     "  max_connections_per_ip: 1.5\n"
     "statsd:\n"
     "  listen_udp: localhost\n"
     "  listen_tcp: \":99999\"\n"
     "  readers: 99999999999999999999999\n",
     "2:19: server.listen_address: must not be empty\n"
     "3:19: server.telemetry_path: invalid path \"/-/metrics\" (want /something, not \"/\" nor "
     "under \"/-/\")\n"
     "4:20: server.max_connections: must be at least 1\n"
     "5:22: server.max_request_bytes: must not be negative, got \"-1\"\n"
     "6:27: server.max_connections_per_ip: expected a whole number, got \"1.5\"\n"
     "8:15: statsd.listen_udp: invalid address \"localhost\" (want host:port, :port, or \"\" to "
     "disable)\n"
     "9:15: statsd.listen_tcp: invalid address \":99999\" (want host:port, :port, or \"\" to "
     "disable)\n"
     "10:12: statsd.readers: \"99999999999999999999999\" is out of range (max 256)\n"},

    {"push values",
     "push:\n"
     "  group_ttl: 5\n"
     "  max_body_bytes: 0\n"
     "  max_buffered_bytes: 1099511627777\n"
     "  enabled: \"yes\"\n"
     "  max_bodies: 1\n"
     "  group_ttl: 1m\n",
     "2:14: push.group_ttl: invalid duration \"5\": missing unit (e.g. 30s)\n"
     "3:19: push.max_body_bytes: must be at least 1\n"
     "4:23: push.max_buffered_bytes: \"1099511627777\" is out of range (max 1099511627776)\n"
     "5:12: push.enabled: expected true or false, got \"yes\"\n"
     "6:3: push: unknown key \"max_bodies\"\n"
     "7:3: push: duplicate key \"group_ttl\"\n"},

    {"push is not a mapping", "push: [enabled]\n",
     "1:7: push: expected a mapping, got a sequence\n"},

    {"YAML syntax: unclosed flow sequence",
     "metrics: [\n"
     "  {name: a, type: counter\n",
     "3:1: syntax error: did not find expected ',' or '}' (while parsing a flow mapping at "
     "2:3)\n"},

    {"YAML syntax: tab indentation",
     "server:\n"
     "\tlisten_address: \":1\"\n",
     "2:1: syntax error: found character that cannot start any token (while scanning for the "
     "next token at 2:1)\n"},

    {"YAML syntax: bad indentation",
     "server:\n"
     "  listen_address: \":1\"\n"
     " telemetry_path: /m\n",
     "3:2: syntax error: did not find expected key (while parsing a block mapping at 1:1)\n"},

    {"undefined alias", "defaults: {ttl: *nope}\n",
     "1:17: undefined alias \"nope\" (an anchor must be complete before its aliases)\n"},

    {"self-referencing anchor", "defaults: &d {ttl: 1s, x: *d}\n",
     "1:27: undefined alias \"d\" (an anchor must be complete before its aliases)\n"},

    {"two documents", "server: {}\n---\nstatsd: {}\n", "2:1: only one YAML document is allowed\n"},

    {"top level is not a mapping", "- a\n- b\n",
     "1:1: expected a mapping at the top level, got a sequence\n"},

    {"merge of a scalar",
     "defaults:\n"
     "  <<: 5\n",
     "2:7: defaults: a merge (<<) takes a mapping or a sequence of mappings\n"},

    {"invalid UTF-8", "server: {listen_address: \"\xff\"}\n",
     "1:27: invalid input: invalid leading UTF-8 octet (byte 0xff)\n"},

    {"NUL in a string", "metrics: [{name: \"a\\0b\", type: gauge}]\n",
     "1:18: metrics[0].name: string contains a NUL character\n"},
};

static void test_bad_files(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("case: %s\n", bad[i].name);
        expect_errors(bad[i].yaml, bad[i].errors);
    }
}

static void test_missing_file(void **state) {
    (void)state;
    cfg_errors e = {0};
    assert_null(cfg_load("/nonexistent/abacus.yml", &e));
    assert_int_equal(e.count, 1);
    assert_string_equal(e.items[0].file, "/nonexistent/abacus.yml");
    assert_int_equal(e.items[0].line, 0);
    assert_string_equal(e.items[0].message, "cannot open: No such file or directory");
    /* Errors accumulate: the second failure appends. */
    assert_null(cfg_load("/", &e));
    assert_int_equal(e.count, 2);
    assert_string_equal(e.items[1].message, "cannot read: Is a directory");

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cfg_errors_print(&e, f);
    e.items[1].line = 3;
    e.items[1].column = 7;
    cfg_errors_print(&e, f);
    fclose(f);
    assert_string_equal(buf, "/nonexistent/abacus.yml: cannot open: No such file or directory\n"
                             "/: cannot read: Is a directory\n"
                             "/nonexistent/abacus.yml: cannot open: No such file or directory\n"
                             "/:3:7: cannot read: Is a directory\n");
    free(buf);
    cfg_errors_free(&e);
    assert_int_equal(e.count, 0);
}

static void test_load_file(void **state) {
    (void)state;
    char path[] = "/tmp/abacus-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *yaml = design_example;
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    cfg_errors e = {0};
    cfg_config *c = cfg_load(path, &e);
    assert_non_null(c);
    assert_string_equal(c->path, path);
    cfg_config *c2 = load_ok(yaml);
    assert_true(c->hash == c2->hash); /* a hash of the bytes */
    cfg_free(c2);
    c2 = load_ok("# changed\n");
    assert_true(c->hash != c2->hash);
    cfg_free(c2);
    cfg_free(c);

    /* Errors from a file name the file. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "bogus: 1\n", 9), 9);
    close(fd);
    assert_null(cfg_load(path, &e));
    assert_int_equal(e.count, 1);
    assert_string_equal(e.items[0].file, path);
    assert_int_equal(e.items[0].line, 1);
    cfg_errors_free(&e);
    unlink(path);
}

/* The example at the repository root (used by the README's run command) is valid and
 * compiles into mapping rules. */
static void test_example_file(void **state) {
    (void)state;
    char path[4096];
    const char *me = __FILE__, *tail = strstr(me, "tests/unit/test_config_load.c");
    assert_non_null(tail);
    snprintf(path, sizeof path, "%.*sabacus.yml", (int)(tail - me), me);
    cfg_errors e = {0};
    cfg_config *c = cfg_load(path, &e);
    if (!c)
        cfg_errors_print(&e, stderr);
    assert_non_null(c);
    assert_true(c->nmetrics >= 4);
    assert_true(c->nmappings >= 6);
    cfg_mapper *m = cfg_mapper_create(c, &e);
    assert_non_null(m);
    assert_int_equal(e.count, 0);
    cfg_mapper_free(m);
    cfg_free(c);
}

/* ---- hostile input ------------------------------------------------------------------------ */

static void expect_failure(const char *yaml, size_t len, const char *first_message) {
    cfg_errors e = {0};
    assert_null(cfg_load_string("t.yml", yaml, len, &e));
    assert_true(e.count >= 1);
    if (first_message)
        assert_string_equal(e.items[0].message, first_message);
    cfg_errors_free(&e);
}

static void test_hostile_garbage(void **state) {
    (void)state;
    /* Random bytes: an error, never a crash (fixed seeds, many lengths). */
    for (unsigned seed = 1; seed <= 200; seed++) {
        srand(seed);
        size_t len = (size_t)(rand() % 4096);
        char *buf = malloc(len + 1);
        assert_non_null(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(rand() & 0xff);
        cfg_errors e = {0};
        cfg_config *c = cfg_load_string("t.yml", buf, len, &e);
        assert_true(c == NULL || e.count == 0);
        cfg_free(c);
        cfg_errors_free(&e);
        free(buf);
    }
    /* Printable garbage with YAML punctuation. */
    const char alphabet[] = "{}[]:,-?*&!|>'\"%@`# \n\tab01.<";
    for (unsigned seed = 1; seed <= 300; seed++) {
        srand(seed);
        size_t len = (size_t)(rand() % 512);
        char *buf = malloc(len + 1);
        assert_non_null(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = alphabet[rand() % (int)(sizeof alphabet - 1)];
        buf[len] = 0;
        cfg_errors e = {0};
        cfg_config *c = cfg_load_string("t.yml", buf, len, &e);
        /* Exactly one outcome: a config, or errors that each say where (file:line:column). */
        assert_true((c == NULL) == (e.count > 0));
        for (size_t i = 0; i < e.count; i++) {
            assert_non_null(e.items[i].message);
            assert_true(e.items[i].line >= 1 && e.items[i].column >= 1);
        }
        cfg_free(c);
        cfg_errors_free(&e);
        free(buf);
    }
    /* An embedded NUL byte in the input. */
    expect_failure("server: {}\0\n", 12, NULL);
}

static void test_hostile_nesting(void **state) {
    (void)state;
    size_t depth = 200000;
    char *buf = malloc(2 * depth + 16);
    assert_non_null(buf);
    size_t o = (size_t)sprintf(buf, "a: ");
    memset(buf + o, '[', depth);
    o += depth;
    memset(buf + o, ']', depth);
    o += depth;
    expect_failure(buf, o, "nesting deeper than 64 levels");

    /* Block nesting too. */
    o = 0;
    for (int i = 0; i < 100; i++)
        o += (size_t)sprintf(buf + o, "%*sk%d:\n", i, "", i);
    expect_failure(buf, o, "nesting deeper than 64 levels");
    free(buf);
}

static void test_hostile_sizes(void **state) {
    (void)state;
    /* A 4 MB metric name. */
    size_t n = 4u << 20;
    char *buf = malloc(n + 64);
    assert_non_null(buf);
    size_t o = (size_t)sprintf(buf, "metrics:\n  - type: gauge\n    name: ");
    memset(buf + o, 'x', n);
    o += n;
    buf[o++] = '\n';
    cfg_errors e = {0};
    assert_null(cfg_load_string("t.yml", buf, o, &e));
    assert_int_equal(e.count, 1);
    assert_string_equal(e.items[0].message,
                        "metrics[0].name: name too long: 4194304 bytes (max 1024)");
    cfg_errors_free(&e);

    /* A 2 MB help text is fine. */
    o = (size_t)sprintf(buf, "metrics:\n  - type: gauge\n    name: g\n    help: ");
    memset(buf + o, 'h', 2u << 20);
    o += 2u << 20;
    cfg_config *c = cfg_load_string("t.yml", buf, o, &e);
    assert_non_null(c);
    assert_int_equal(strlen(c->metrics[0].help), 2u << 20);
    cfg_free(c);
    free(buf);

    /* Over the size limit. */
    n = (16u << 20) + 1;
    buf = malloc(n);
    assert_non_null(buf);
    memset(buf, '#', n);
    assert_null(cfg_load_string("t.yml", buf, n, &e));
    assert_int_equal(e.count, 1);
    assert_string_equal(e.items[0].message, "file too large: 16777217 bytes (max 16777216)");
    assert_int_equal(e.items[0].line, 0);
    cfg_errors_free(&e);
    free(buf);
}

static void test_hostile_aliases(void **state) {
    (void)state;
    /* "Billion laughs": ten levels of ten aliases each. */
    static char buf[1 << 16];
    size_t o = (size_t)sprintf(buf, "x0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 10; i++) {
        o += (size_t)sprintf(buf + o, "x%d: &a%d [", i, i);
        for (int j = 0; j < 10; j++)
            o += (size_t)sprintf(buf + o, "%s*a%d", j ? ", " : "", i - 1);
        o += (size_t)sprintf(buf + o, "]\n");
    }
    o += (size_t)sprintf(buf + o, "metrics: *a9\n");
    expect_failure(buf, o, "unknown key \"x0\"");

    /* One rule aliased 100000 times: few nodes, but the walk's budget stops the expansion. */
    cfg_errors e = {0};
    char *big = malloc(8u << 20);
    assert_non_null(big);
    o = (size_t)sprintf(big, "metrics: [{name: m, type: counter}]\n"
                             "mappings:\n  - &r {match: a.b, name: r, labels: {");
    for (int i = 0; i < 32; i++)
        o += (size_t)sprintf(big + o, "%sl%d: x", i ? ", " : "", i);
    o += (size_t)sprintf(big + o, "}}\n");
    for (int i = 0; i < 100000; i++)
        o += (size_t)sprintf(big + o, "  - *r\n");
    assert_null(cfg_load_string("t.yml", big, o, &e));
    assert_int_equal(e.count, 1);
    assert_string_equal(e.items[0].message,
                        "document too large: more than 1000000 nodes with aliases expanded");
    cfg_errors_free(&e);

    /* Many distinct nodes: the tree's own limit. */
    o = (size_t)sprintf(big, "mappings: [");
    for (int i = 0; i < 100000; i++)
        o += (size_t)sprintf(big + o, "%s{match: a.b, name: m, labels: [x]}", i ? "," : "");
    big[o++] = ']';
    assert_null(cfg_load_string("t.yml", big, o, &e));
    assert_int_equal(e.count, 1);
    assert_string_equal(e.items[0].message, "document too large: more than 500000 nodes");
    cfg_errors_free(&e);
    free(big);
}

static void test_many_errors_capped(void **state) {
    (void)state;
    size_t cap = 64 * 5000;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t o = 0;
    for (int i = 0; i < 5000; i++)
        o += (size_t)sprintf(buf + o, "unknown_%d: 1\n", i);
    cfg_errors e = {0};
    assert_null(cfg_load_string("t.yml", buf, o, &e));
    assert_int_equal(e.count, 1001);
    assert_string_equal(e.items[0].message, "unknown key \"unknown_0\"");
    assert_int_equal(e.items[999].line, 1000);
    assert_string_equal(e.items[1000].message, "too many errors; stopped after 1000");
    cfg_errors_free(&e);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_design_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_statsd_exporter_file),
        cmocka_unit_test(test_statsd_exporter_legacy_keys),
        cmocka_unit_test(test_anchors_and_merges),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_hostile_garbage),
        cmocka_unit_test(test_hostile_nesting),
        cmocka_unit_test(test_hostile_sizes),
        cmocka_unit_test(test_hostile_aliases),
        cmocka_unit_test(test_many_errors_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
