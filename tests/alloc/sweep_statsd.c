/* sweep_statsd.c - allocation-failure sweep of the StatsD path as main() wires it (start
 * below; tests/support/statsd_fixture.h for the temporary file and teardown): flags, the
 * configuration snapshot and state, self-metrics, the listener (no sockets: every listener
 * is disabled) and a socketless ingest context fed datagrams of every type and tag style,
 * mapped and unmapped, with conflicts, limits and bad lines; a reload to a changed
 * configuration; more datagrams; a text scrape.
 *
 * Ingest cannot fail by contract (an event it cannot store is dropped and counted), so the
 * output is not compared between runs: each run must only end cleanly (sweep.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/statsd_fixture.h"
#include "http/expfmt.h"
#include "sweep.h"

static const char config_v1[] =
    "server:\n"
    "  listen_address: \"127.0.0.1:0\"\n"
    "statsd:\n"
    "  listen_udp: \"\"\n"
    "  listen_tcp: \"\"\n"
    "  listen_unixgram: \"\"\n"
    "  cache_size: 4\n"
    "  max_series: 200\n"
    "defaults:\n"
    "  max_series: 20\n"
    "  observer_type: histogram\n"
    "  histogram_options: {buckets: [0.01, 0.1, 1]}\n"
    "metrics:\n"
    "  - name: jobs_processed_total\n"
    "    type: counter\n"
    "    help: Jobs.\n"
    "    labels: [queue, outcome]\n"
    "  - name: queue_depth\n"
    "    type: gauge\n"
    "mappings:\n"
    "  - match: \"jobs.*.*\"\n"
    "    name: jobs_processed_total\n"
    "    labels: {queue: \"$1\", outcome: \"$2\"}\n"
    "  - match: \"queue.depth\"\n"
    "    name: queue_depth\n"
    "  - match: \"test.timing.*.*\"\n"
    "    observer_type: summary\n"
    "    name: my_timer\n"
    "    labels: {provider: \"$1\", outcome: \"$2\"}\n"
    "    summary_options: {quantiles: [{quantile: 0.99, error: 0.001}], buf_cap: 4}\n"
    "  - match: \"(.*)\\\\.(.*)--(.*)\\\\.status\\\\.(.*)\\\\.count\"\n"
    "    match_type: regex\n"
    "    name: request_total\n"
    "    labels: {service: \"$1\", code: \"$4\"}\n"
    "  - match: \"scaled.*\"\n"
    "    name: \"scaled_${1}\"\n"
    "    scale: 0.001\n"
    "  - match: \"cache.*.hits\"\n"
    "    name: cache_hits_total\n"
    "    labels: {cache: \"$1\"}\n"
    "    honor_labels: true\n"
    "  - match: \"debug.*\"\n"
    "    action: drop\n";

static const char config_v2[] = "statsd:\n"
                                "  listen_udp: \"\"\n"
                                "  listen_tcp: \"\"\n"
                                "  listen_unixgram: \"\"\n"
                                "metrics:\n"
                                "  - name: jobs_processed_total\n"
                                "    type: counter\n"
                                "    help: Jobs, now with a new help.\n"
                                "    labels: [queue, outcome]\n"
                                "mappings:\n"
                                "  - match: \"jobs.*.*\"\n"
                                "    name: jobs_processed_total\n"
                                "    labels: {queue: \"$1\", outcome: \"$2\"}\n";

static const char *const datagrams[] = {
    "jobs.emails.ok:1|c\njobs.emails.failed:2|c|@0.5\njobs.sms.ok:3|c",
    "queue.depth:+5|g\nqueue.depth:-2|g\nqueue.depth:42|g",
    "test.timing.aws.ok:320|ms|@0.5\ntest.timing.gcp.failed:12|ms",
    "test.timing.aws.ok:1|ms\ntest.timing.aws.ok:2|ms\ntest.timing.aws.ok:3|ms\n"
    "test.timing.aws.ok:4|ms\ntest.timing.aws.ok:5|ms", /* past buf_cap */
    "web.api--prod.status.200.count:1|c\nweb.api--prod.status.503.count:1|c",
    "scaled.upload:1500|h\nscaled.upload:1:2:3|h",
    "page.views:1|c|#env:prod,host:web-1\npage.views:1|c|#env:dev,host:web-2",
    "cpu.load,host=web-1,region=eu:0.5|g\ncpu.load#host=web-2,region=us:0.7|g",
    "cpu.[host=web-3,region=ap]load:0.9|g",
    "cache.users.hits:10|c|#cache:sessions\ncache.users.hits:1|c",
    "foo.dist:0.25|d|#env:prod,region:eu\nfoo.hist:0.5|h",
    "debug.anything:1|c\nusers.unique:alice|s",
    "no_colon\n:1|c\nx:\nx:1\nx:1|zz\nx:NaN|c\nx:-1|c\nx:1|c|@abc",
    "jobs.emails.ok:1|g",                          /* a type conflict with the declared counter */
    "page.views:1|c|#env:prod,host:web-1,extra:x", /* a label set conflict */
    "caf\xc3\xa9.visits:1|c|#city:M\xc3\xbcnchen",
    "many.series:1|c|#i:1\nmany.series:1|c|#i:2\nmany.series:1|c|#i:3\nmany.series:1|c|#i:4\n"
    "many.series:1|c|#i:5\nmany.series:1|c|#i:6\nmany.series:1|c|#i:7\nmany.series:1|c|#i:8\n"
    "many.series:1|c|#i:9\nmany.series:1|c|#i:10\nmany.series:1|c|#i:11\nmany.series:1|c|#i:12\n"
    "many.series:1|c|#i:13\nmany.series:1|c|#i:14\nmany.series:1|c|#i:15\nmany.series:1|c|#i:16\n"
    "many.series:1|c|#i:17\nmany.series:1|c|#i:18\nmany.series:1|c|#i:19\nmany.series:1|c|#i:20\n"
    "many.series:1|c|#i:21\nmany.series:1|c|#i:22", /* past the family's max_series */
};

static int scrape(reg_registry *r, sweep_text *out) {
    exp_scrape *s = exp_scrape_begin(r, EXP_FMT_TEXT, 0);
    if (!s)
        return -1;
    char chunk[1024];
    long n;
    while ((n = exp_scrape_read(s, chunk, sizeof chunk)) > 0)
        if (sweep_text_add(out, chunk, (size_t)n) < 0) {
            n = -1;
            break;
        }
    exp_scrape_end(s);
    return n == 0 ? 0 : -1;
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    return fclose(f) != 0 ? -1 : rc;
}

/* Start what main() starts, in its order and with its error handling (the fixture's
 * statsd_fixture_start keeps the snapshot when the registry or self-metrics fail; main()
 * releases it): 0, or -1 with fx ready for statsd_fixture_stop. */
static int start(statsd_fixture *fx) {
    char err[256];
    snprintf(fx->args[0], sizeof fx->args[0], "abacus");
    snprintf(fx->args[1], sizeof fx->args[1], "--config.file=%s", fx->path);
    fx->argv[0] = fx->args[0];
    fx->argv[1] = fx->args[1];
    if (exp_flags_parse(&fx->flags, 2, fx->argv, stderr) != 0)
        return -1;
    cfg_errors errs = {0};
    exp_config *c = exp_config_load(&fx->flags, &errs);
    cfg_errors_print(&errs, stderr);
    cfg_errors_free(&errs);
    if (!c)
        return -1;
    reg_options opt = {.max_series = c->cfg->statsd.max_series, .start_reaper = 1};
    fx->reg = reg_create(&opt);
    fx->self = fx->reg ? exp_self_create(fx->reg, err, sizeof err) : NULL;
    if (fx->self)
        fx->st = exp_state_create(fx->reg, &fx->flags, fx->self, c, err, sizeof err);
    else
        exp_config_release(c);
    fx->L = fx->st ? exp_statsd_listener_start(fx->reg, fx->st, err, sizeof err) : NULL;
    fx->t = fx->L ? reg_thread_attach(fx->reg) : NULL;
    return fx->t ? 0 : -1;
}

static int scenario(sweep_text *out) {
    statsd_fixture fx;
    exp_ingest *in = NULL;
    cfg_errors errs = {0};
    int ok = -1;
    /* The fixture makes /tmp/<prefix>-XXXXXX: inside the driver's directory when there is one. */
    const char *dir = getenv("ABACUS_SWEEP_DIR");
    char prefix[40]; /* the fixture adds "/tmp/" and "-XXXXXX" within 64 bytes */
    int inside = dir && !strncmp(dir, "/tmp/", 5);
    snprintf(prefix, sizeof prefix, "%s/run", inside ? dir + 5 : "abacus-sweep");
    if (statsd_fixture_prepare(&fx, prefix, config_v1) != 0) {
        sweep_failed_line = __LINE__; /* nothing is left behind */
        return -1;
    }
    if (start(&fx) != 0)
        SWEEP_FAIL();
    if (!(in = exp_ingest_create(fx.L, EXP_STATSD_LISTENER_UDP)))
        SWEEP_FAIL();
    for (size_t i = 0; i < sizeof datagrams / sizeof datagrams[0]; i++)
        exp_ingest_datagram(in, datagrams[i], strlen(datagrams[i]));
    exp_ingest_fold(in);
    if (scrape(fx.reg, out) < 0)
        SWEEP_FAIL();

    /* Reload: fewer metrics and rules; then the same datagrams against the new rules. */
    if (write_file(fx.path, config_v2) != 0)
        SWEEP_FAIL();
    if (exp_state_reload(fx.st, &errs) != 0)
        SWEEP_FAIL();
    for (size_t i = 0; i < sizeof datagrams / sizeof datagrams[0]; i++)
        exp_ingest_datagram(in, datagrams[i], strlen(datagrams[i]));
    exp_ingest_fold(in);
    if (scrape(fx.reg, out) < 0)
        SWEEP_FAIL();
    ok = 0;
done:
    cfg_errors_free(&errs);
    exp_ingest_free(in);
    statsd_fixture_stop(&fx);
    return ok;
}

int main(int argc, char **argv) {
    return sweep_main(argc, argv, scenario, 0);
}
