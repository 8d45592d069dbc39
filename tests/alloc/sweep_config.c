/* sweep_config.c - allocation-failure sweep of the path a config and a scrape take: a config
 * with every feature (anchors and merge keys, all metric types, const labels, buckets,
 * objectives, TTLs, glob and regex rules with captures, drop rules, remote_write entries)
 * through cfg_load_string, cfg_mapper_create and cfg_apply into a registry; StatsD names
 * mapped (cache included) and their families and series created and updated; a reload to a
 * changed config (replace, remove, add); a series deleted; scrapes in text, OpenMetrics and
 * gzip.
 *
 * The driver (sweep.c) fails allocation N = 1, 2, ... in a child each; here a run that reports
 * success although an allocation failed must end with the same scrape as the counting run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "http/expfmt.h"
#include "registry.h"
#include "sweep.h"

/* ---- the scenario ------------------------------------------------------------------------- */

static const char config_v1[] =
    "server:\n"
    "  listen_address: \"127.0.0.1:0\"\n"
    "  telemetry_path: /metrics\n"
    "statsd:\n"
    "  listen_udp: \"\"\n"
    "  listen_tcp: \"\"\n"
    "  cache_size: 16\n"
    "defaults:\n"
    "  ttl: 0s\n"
    "  max_series: 100\n"
    "  observer_type: histogram\n"
    "  histogram_options: &hopts\n"
    "    buckets: [0.005, 0.01, 0.1, 1, 10]\n"
    "  summary_options:\n"
    "    quantiles: [{quantile: 0.5, error: 0.05}, {quantile: 0.99, error: 0.001}]\n"
    "    max_age: 10m\n"
    "    age_buckets: 3\n"
    "    buf_cap: 50\n"
    "metrics:\n"
    "  - &counter\n"
    "    name: plain_total\n"
    "    type: counter\n"
    "    help: \"shared help with \\\"quotes\\\" and a \\\\ backslash\"\n"
    "  - <<: *counter\n"
    "    name: jobs_processed_total\n"
    "    labels: [queue, outcome]\n"
    "    const_labels: {team: payments, region: eu}\n"
    "    ttl: 10m\n"
    "    max_series: 50\n"
    "  - name: job_duration_seconds\n"
    "    help: Time to process one job.\n"
    "    type: histogram\n"
    "    unit: seconds\n"
    "    labels: [queue]\n"
    "    histogram_options: {buckets: [0.1, 0.5, 1, 5]}\n"
    "  - name: payment_amount_euros\n"
    "    help: Amounts paid.\n"
    "    type: summary\n"
    "    labels: [currency]\n"
    "    summary_options:\n"
    "      quantiles: [{quantile: 0.5, error: 0.05}, {quantile: 0.9, error: 0.01}]\n"
    "      max_age: 5m\n"
    "  - name: workers_busy\n"
    "    help: Workers currently busy.\n"
    "    type: gauge\n"
    "  - name: doomed_total\n"
    "    type: counter\n"
    "    labels: [x]\n"
    "mappings:\n"
    "  - match: \"jobs.*.*\"\n"
    "    name: jobs_processed_total\n"
    "    labels: {queue: \"$1\", outcome: \"$2\"}\n"
    "  - match: \"job.*.duration\"\n"
    "    match_metric_type: observer\n"
    "    name: job_duration_seconds\n"
    "    labels: {queue: \"$1\"}\n"
    "  - match: \"^http\\\\.(\\\\w+)\\\\.(\\\\d{3})$\"\n"
    "    match_type: regex\n"
    "    name: \"http_${1}_responses_total\"\n"
    "    labels: {code: \"$2\"}\n"
    "    help: HTTP responses by code.\n"
    "    ttl: 1h\n"
    "  - match: \"billing.*.latency\"\n"
    "    observer_type: summary\n"
    "    name: billing_latency_seconds\n"
    "    labels: {op: \"$1\"}\n"
    "    summary_options: {quantiles: [{quantile: 0.9, error: 0.01}], max_age: 1m}\n"
    "  - match: \"hist.*.size\"\n"
    "    observer_type: histogram\n"
    "    histogram_options: *hopts\n"
    "    name: \"size_${1}_bytes\"\n"
    "    scale: 0.001\n"
    "  - match: \"cache.*.hits\"\n"
    "    name: cache_hits_total\n"
    "    labels: {cache: \"$1\"}\n"
    "    honor_labels: true\n"
    "  - match: \"debug.*\"\n"
    "    action: drop\n"
    "remote_write:\n"
    "  - name: mimir\n"
    "    url: https://mimir:9009/api/v1/push\n"
    "    headers: {X-Scope-OrgID: team-a}\n"
    "    basic_auth: {username: u, password: p}\n"
    "    tls_config: {server_name: mimir.local}\n"
    "    write_relabel_configs:\n"
    "      - {source_labels: [__name__, job], regex: 'go_.*;.*', action: drop}\n"
    "      - {source_labels: [a], target_label: b, replacement: 'x${1}'}\n"
    "    queue_config: {capacity: 1000, retry_on_http_429: true}\n"
    "    external_labels: {cluster: eu1}\n"
    "  - url: http://thanos/api/v1/receive\n"
    "    authorization: {credentials: tok}\n";

/* The reload: one metric changed (labels), one removed, one added, the rest unchanged. */
static const char config_v2[] =
    "metrics:\n"
    "  - name: jobs_processed_total\n"
    "    type: counter\n"
    "    help: \"shared help with \\\"quotes\\\" and a \\\\ backslash\"\n"
    "    labels: [queue, outcome]\n"
    "    const_labels: {team: payments, region: eu}\n"
    "    ttl: 10m\n"
    "    max_series: 50\n"
    "  - name: plain_total\n"
    "    type: counter\n"
    "    help: now different\n"
    "    labels: [shard]\n"
    "  - name: workers_busy\n"
    "    help: Workers currently busy.\n"
    "    type: gauge\n"
    "  - name: brand_new_info\n"
    "    type: gauge\n"
    "    const_labels: {version: \"1.2.3\"}\n"
    "mappings:\n"
    "  - match: \"jobs.*.*\"\n"
    "    name: jobs_processed_total\n"
    "    labels: {queue: \"$1\", outcome: \"$2\"}\n"
    "  - match: \"(.*)\\\\.regex$\"\n"
    "    match_type: regex\n"
    "    name: \"re_${1}\"\n";

/* Renders a whole scrape into out (when not NULL). 0, or -1 on a failure. */
static int scrape(reg_registry *r, exp_format fmt, int gzip, sweep_text *out) {
    exp_scrape *s = exp_scrape_begin(r, fmt, gzip);
    if (!s)
        return -1;
    char chunk[700]; /* small: every family crosses chunk boundaries */
    long n;
    while ((n = exp_scrape_read(s, chunk, sizeof chunk)) > 0) {
        if (out && sweep_text_add(out, chunk, (size_t)n) < 0) {
            n = -1;
            break;
        }
    }
    exp_scrape_end(s);
    return n == 0 ? 0 : -1;
}

static cfg_config *load(const char *yaml, size_t len) {
    cfg_errors errs = {0};
    cfg_config *c = cfg_load_string("sweep.yml", yaml, len, &errs);
    cfg_errors_print(&errs, stderr); /* out of memory, normally; shown with a failed run */
    cfg_errors_free(&errs);
    return c;
}

/* One StatsD name through the mapper to an update, as the ingest path does it: the declared
 * family or one created from the result. 0, or -1 on a failure. */
static int ingest(reg_thread *t, const cfg_mapper *m, cfg_mapper_cache *cache, const char *name,
                  cfg_metric_kind kind, double v) {
    cfg_map_result res;
    if (cfg_mapper_map(m, cache, name, strlen(name), kind, &res) < 0)
        return -1;
    if (res.drop)
        return 0;
    reg_type type = kind == CFG_MMT_GAUGE ? REG_GAUGE : REG_COUNTER;
    static const double buckets[] = {0.01, 0.1, 1};
    static const reg_objective obj[] = {{0.5, 0.05}};
    reg_family_def def = {.name = res.name,
                          .help = res.rule && res.rule->help ? res.rule->help : NULL,
                          .nlabels = res.nlabels,
                          .labels = res.label_names};
    if (kind == CFG_MMT_OBSERVER) {
        int summary = res.rule && res.rule->observer_type == CFG_OBS_SUMMARY;
        type = summary ? REG_SUMMARY : REG_HISTOGRAM;
        const cfg_histogram_options *h = res.rule ? &res.rule->histogram : NULL;
        def.nbuckets = h && h->nbuckets ? h->nbuckets : 3;
        def.buckets = h && h->nbuckets ? h->buckets : buckets;
        def.nobjectives = summary ? 1 : 0;
        def.objectives = summary ? obj : NULL;
    }
    def.type = type;
    int rc;
    reg_begin(t);
    reg_family *f = reg_family_find(t, res.name);
    if (!f && (rc = reg_family_add(t, &def, &f)) != REG_OK) {
        reg_end(t);
        return rc == REG_ENOMEM ? -1 : 0; /* a conflict is not what this sweep is about */
    }
    const reg_family_def *d = reg_family_definition(f);
    if (d->nlabels != res.nlabels) {
        reg_end(t);
        return 0;
    }
    switch (d->type) {
    case REG_COUNTER:
        rc = reg_counter_add(t, f, res.label_values, v);
        break;
    case REG_GAUGE:
        rc = reg_gauge_set(t, f, res.label_values, v);
        break;
    default:
        rc = reg_observe_n(t, f, res.label_values, v, 2);
        break;
    }
    reg_end(t);
    return rc == REG_ENOMEM ? -1 : 0;
}

typedef struct {
    const char *name;
    cfg_metric_kind kind;
    double v;
} event;

static const event events[] = {
    {"jobs.default.ok", CFG_MMT_COUNTER, 1},
    {"jobs.default.failed", CFG_MMT_COUNTER, 2},
    {"jobs.critical.ok", CFG_MMT_COUNTER, 3},
    {"jobs.default.ok", CFG_MMT_COUNTER, 1}, /* cache hit */
    {"job.default.duration", CFG_MMT_OBSERVER, 0.3},
    {"job.critical.duration", CFG_MMT_OBSERVER, 7},
    {"http.get.200", CFG_MMT_COUNTER, 5},
    {"http.post.503", CFG_MMT_COUNTER, 1},
    {"billing.charge.latency", CFG_MMT_OBSERVER, 0.02},
    {"billing.refund.latency", CFG_MMT_OBSERVER, 0.04},
    {"hist.upload.size", CFG_MMT_OBSERVER, 1500},
    {"cache.users.hits", CFG_MMT_COUNTER, 10},
    {"debug.anything", CFG_MMT_COUNTER, 1},
    {"unmapped.name-with.dashes", CFG_MMT_GAUGE, 42},
    {"7starts.with.digit", CFG_MMT_COUNTER, 1},
};

/* Direct updates of the declared families. */
static int update_declared(reg_thread *t) {
    static const char *const q[] = {"default"};
    static const char *const cur[] = {"EUR"};
    static const char *const none[] = {NULL};
    static const char *const x[][1] = {{"a"}, {"b\"quoted\\"}, {"c\nnewline"}};
    int rc = REG_OK;
    reg_begin(t);
    reg_family *f;
    if ((f = reg_family_find(t, "job_duration_seconds")))
        for (int i = 0; i < 5 && rc == REG_OK; i++)
            rc = reg_observe(t, f, q, 0.2 * i);
    if (rc == REG_OK && (f = reg_family_find(t, "payment_amount_euros")))
        for (int i = 0; i < 60 && rc == REG_OK; i++) /* past buf_cap: the buffer is merged */
            rc = reg_observe(t, f, cur, (double)(i * 7 % 23));
    if (rc == REG_OK && (f = reg_family_find(t, "workers_busy")))
        rc = reg_gauge_add(t, f, none, 3);
    if (rc == REG_OK && (f = reg_family_find(t, "doomed_total")))
        for (int i = 0; i < 3 && rc == REG_OK; i++)
            rc = reg_counter_add(t, f, x[i], 1);
    reg_end(t);
    return rc == REG_OK ? 0 : -1;
}

/* 0 when every step succeeded, -1 when one reported a failure (after cleaning up). The
 * text scrape taken after the reload is appended to out. */
static int scenario(sweep_text *out) {
    int ok = -1;
    reg_registry *r = NULL;
    reg_thread *t = NULL;
    cfg_mapper *m = NULL, *m2 = NULL;
    cfg_mapper_cache *cache = NULL;
    cfg_config *c1 = NULL, *c2 = NULL;
    cfg_errors errs = {0};

    if (!(c1 = load(config_v1, sizeof config_v1 - 1)))
        SWEEP_FAIL();
    if (!(m = cfg_mapper_create(c1, &errs)))
        SWEEP_FAIL();
    reg_options o = {.max_series = 1000, .start_reaper = 0};
    if (!(r = reg_create(&o)) || !(t = reg_thread_attach(r)))
        SWEEP_FAIL();
    if (cfg_apply(r, NULL, c1) != REG_OK)
        SWEEP_FAIL();
    if (!(cache = cfg_mapper_cache_create(4))) /* small: entries are evicted */
        SWEEP_FAIL();
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        if (ingest(t, m, cache, events[i].name, events[i].kind, events[i].v) < 0)
            SWEEP_FAIL();
    if (update_declared(t) < 0)
        SWEEP_FAIL();
    if (scrape(r, EXP_FMT_TEXT, 0, NULL) < 0 || scrape(r, EXP_FMT_OPENMETRICS, 1, NULL) < 0)
        SWEEP_FAIL();

    /* Reload: new config, new mapper (the cache notices), apply against the old one. */
    if (!(c2 = load(config_v2, sizeof config_v2 - 1)))
        SWEEP_FAIL();
    if (!(m2 = cfg_mapper_create(c2, &errs)))
        SWEEP_FAIL();
    if (cfg_apply(r, c1, c2) != REG_OK)
        SWEEP_FAIL();
    if (ingest(t, m2, cache, "jobs.default.ok", CFG_MMT_COUNTER, 1) < 0 ||
        ingest(t, m2, cache, "some.thing.regex", CFG_MMT_COUNTER, 1) < 0)
        SWEEP_FAIL();
    static const char *const sh[] = {"3"};
    reg_begin(t);
    reg_family *f = reg_family_find(t, "plain_total");
    int rc = f ? reg_counter_add(t, f, sh, 2) : REG_OK;
    reg_end(t);
    if (rc != REG_OK)
        SWEEP_FAIL();
    static const char *const gone[] = {"default", "failed"};
    reg_begin(t);
    f = reg_family_find(t, "jobs_processed_total");
    if (f && reg_family_hold(f) != REG_OK)
        f = NULL;
    reg_end(t);
    if (f) {
        rc = reg_series_delete(r, f, gone);
        reg_family_release(r, f);
        if (rc != REG_OK && rc != REG_ENOTFOUND)
            SWEEP_FAIL();
    }
    if (reg_family_remove(r, "unmapped_name_with_dashes") == REG_ENOMEM)
        SWEEP_FAIL();
    if (scrape(r, EXP_FMT_OPENMETRICS, 0, NULL) < 0 || scrape(r, EXP_FMT_TEXT, 0, out) < 0)
        SWEEP_FAIL();
    ok = 0;
done:
    cfg_errors_free(&errs);
    cfg_mapper_cache_free(cache);
    cfg_mapper_free(m2);
    cfg_mapper_free(m);
    if (t)
        reg_thread_detach(t);
    if (r)
        reg_destroy(r);
    cfg_free(c2);
    cfg_free(c1);
    return ok;
}

int main(int argc, char **argv) {
    return sweep_main(argc, argv, scenario, 1);
}
