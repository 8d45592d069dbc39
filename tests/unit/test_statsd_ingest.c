/* test_statsd_ingest.c - the StatsD ingest path (exporter/statsd/) against a real registry and
 * configuration: event -> metric semantics of statsd_exporter (types, mapping, labels, help,
 * honor_labels, scale, drop), conflicts (type, label set, _sum/_count/_bucket collisions,
 * families StatsD does not own), series limits, declared metrics, TTL expiry, reloads, the
 * self-metrics, hostile datagrams, real UDP/TCP/Unix datagram sockets, and exact totals from
 * many threads creating label values at once. Conditions are awaited with a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../support/statsd_fixture.h"
#include "flags.h"
#include "selfmetrics.h"
#include "state.h"
#include "statsd/internal.h"
#include "statsd/statsd.h"

/* ---- environment ------------------------------------------------------------------------- */

/* The shared listener fixture (tests/support/statsd_fixture.h), as this file's environment. */
typedef statsd_fixture env;

static void write_file(const char *path, const char *text) {
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
}

/* Start a registry, state and listeners for yaml. udp/tcp/unixgram: listen addresses ("" off;
 * ux is a socket name in the environment's directory). */
static env *env_start(const char *yaml, const char *udp, const char *tcp, const char *ux) {
    env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    assert_int_equal(statsd_fixture_prepare(e, "abacus-statsd", yaml), 0);
    char fudp[256], ftcp[256], fux[256];
    snprintf(fudp, sizeof fudp, "--statsd.listen-udp=%s", udp);
    snprintf(ftcp, sizeof ftcp, "--statsd.listen-tcp=%s", tcp);
    if (ux && *ux)
        snprintf(fux, sizeof fux, "--statsd.listen-unixgram=%s/%s", e->dir, ux);
    else
        snprintf(fux, sizeof fux, "--statsd.listen-unixgram=");
    const char *flags[] = {fudp, ftcp, fux, NULL};
    char err[256] = "";
    if (statsd_fixture_start(e, flags, 20 * 1000000ULL, err, sizeof err) != 0)
        fail_msg("start: %s", err);
    return e;
}

static void env_stop(env *e) {
    statsd_fixture_stop(e);
    free(e);
}

/* The series of family with rendered labels (`a="x",b="y"`, "" for none), as of now. Returns
 * 1 and fills what is asked, 0 when absent. */
static int series(env *e, const char *family, const char *labels, double *value, uint64_t *count,
                  double *sum) {
    reg_begin(e->t);
    reg_family *f = reg_family_find(e->t, family);
    reg_series *sr = statsd_fixture_series(e, f, labels);
    if (sr) {
        const reg_family_def *d = reg_family_definition(f);
        if (value)
            *value = reg_series_value(sr);
        if (d->type == REG_HISTOGRAM && (count || sum)) {
            uint64_t cum[REG_MAX_BUCKETS + 1];
            double s;
            reg_series_histogram(sr, f, cum, &s);
            if (count)
                *count = cum[d->nbuckets];
            if (sum)
                *sum = s;
        } else if (d->type == REG_SUMMARY && (count || sum)) {
            double q[REG_MAX_QUANTILES];
            uint64_t c;
            double s;
            reg_series_summary(sr, f, q, &c, &s);
            if (count)
                *count = c;
            if (sum)
                *sum = s;
        }
    }
    reg_end(e->t);
    return sr != NULL;
}

static double val(env *e, const char *family, const char *labels) {
    double v = NAN;
    if (!series(e, family, labels, &v, NULL, NULL))
        return NAN;
    if (getenv("DEBUG_VAL"))
        fprintf(stderr, "%s{%s} = %g\n", family, labels, v);
    return v;
}

static reg_family_def def_of(env *e, const char *family, int *found) {
    reg_family_def d = {0};
    reg_begin(e->t);
    reg_family *f = reg_family_find(e->t, family);
    *found = f != NULL;
    if (f)
        d = *reg_family_definition(f); /* strings stay valid: the family is never removed here */
    reg_end(e->t);
    return d;
}

static size_t nseries(env *e, const char *family) {
    return statsd_fixture_nseries(e, family);
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Poll until value(family, labels) == want (NAN: until absent); fail after 20 s. */
static void await_value(env *e, const char *family, const char *labels, double want) {
    for (int i = 0; i < 20000; i++) {
        double v;
        int have = series(e, family, labels, &v, NULL, NULL);
        if (isnan(want) ? !have : (have && v == want))
            return;
        sleep_ms(1);
    }
    double v = val(e, family, labels);
    fail_msg("%s{%s}: want %g, have %g", family, labels, want, v);
}

static void feed(exp_ingest *in, const char *text) {
    exp_ingest_datagram(in, text, strlen(text));
}

#define NO_LISTENERS "", ""

/* ---- event semantics --------------------------------------------------------------------- */

static void test_types(void **state) {
    (void)state;
    env *e = env_start("defaults:\n  ttl: 0s\n  observer_type: histogram\n", NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    assert_non_null(in);
    feed(in, "foo:1|c\nfoo:2|c\nfoo:3|c|@0.5");
    assert_true(val(e, "foo", "") == 9);
    int found;
    reg_family_def d = def_of(e, "foo", &found);
    assert_true(found);
    assert_int_equal(d.type, REG_COUNTER);
    assert_string_equal(d.help, "Metric autogenerated by abacus.");

    feed(in, "g:5|g\ng:+2|g\ng:-1|g");
    assert_true(val(e, "g", "") == 6);
    feed(in, "g:3|g");
    assert_true(val(e, "g", "") == 3);

    /* Timers: milliseconds become seconds; histogram with the default buckets. */
    feed(in, "t:100|ms\nt:300|ms|@0.5");
    uint64_t count = 0;
    double sum = 0;
    assert_true(series(e, "t", "", NULL, &count, &sum));
    assert_int_equal(count, 3); /* 1 + 1/0.5 */
    assert_true(fabs(sum - 0.7) < 1e-9);
    d = def_of(e, "t", &found);
    assert_int_equal(d.type, REG_HISTOGRAM);
    assert_int_equal(d.nbuckets, 11);

    /* Histograms and distributions are not converted; several samples per line. */
    feed(in, "h:2|h\nd:1:2:3|d\nmulti:1|c:2|c");
    assert_true(series(e, "h", "", NULL, &count, &sum) && count == 1 && sum == 2);
    assert_true(series(e, "d", "", NULL, &count, &sum) && count == 3 && sum == 6);
    assert_true(val(e, "multi", "") == 3);

    /* Unmapped names are escaped as statsd_exporter does. */
    feed(in, "my.dotted-name:1|c\n0digits:1|c");
    assert_true(val(e, "my_dotted_name", "") == 1);
    assert_true(val(e, "_0digits", "") == 1);

    exp_ingest_free(in);
    assert_true(val(e, "abacus_statsd_events_total", "type=\"counter\"") == 7);
    assert_true(val(e, "abacus_statsd_events_total", "type=\"gauge\"") == 4);
    assert_true(val(e, "abacus_statsd_events_total", "type=\"observer\"") == 6);
    assert_true(val(e, "abacus_statsd_lines_total", "listener=\"udp\"") == 14);
    assert_true(val(e, "abacus_statsd_packets_total", "listener=\"udp\"") == 6);
    assert_true(val(e, "abacus_statsd_events_unmapped_total", "") == 17);
    env_stop(e);
}

static const char *mapping_yaml = "mappings:\n"
                                  "  - match: \"app.*.requests\"\n"
                                  "    name: app_requests_total\n"
                                  "    labels: {service: \"$1\", source: mapping}\n"
                                  "  - match: \"honor.*\"\n"
                                  "    name: honored\n"
                                  "    honor_labels: true\n"
                                  "    labels: {env: \"$1\"}\n"
                                  "  - match: \"scaled.*\"\n"
                                  "    name: scaled_seconds\n"
                                  "    scale: 0.001\n"
                                  "    help: Scaled things.\n"
                                  "  - match: \"noisy.*\"\n"
                                  "    action: drop\n"
                                  "  - match: \"lat.*\"\n"
                                  "    name: latency_seconds\n"
                                  "    observer_type: summary\n"
                                  "    labels: {op: \"$1\"}\n"
                                  "  - match: \"empty.*\"\n"
                                  "    name: \"${1}\"\n"
                                  "  - match: 'rx_([a-z]+)_(\\d+)'\n"
                                  "    match_type: regex\n"
                                  "    name: \"rx_$1\"\n"
                                  "    labels: {num: \"$2\"}\n";

static void test_mapping_and_tags(void **state) {
    (void)state;
    env *e = env_start(mapping_yaml, NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    assert_non_null(in);

    /* Rule labels plus tags; the rule wins over a tag of the same name. */
    feed(in, "app.api.requests:1|c|#region:eu,source:tag\n"
             "app.api.requests,region=eu:2|c\n"
             "app.api.requests#region=eu:4|c\n"
             "app.api[region=eu].requests:8|c");
    assert_true(val(e, "app_requests_total", "region=\"eu\",service=\"api\",source=\"mapping\"") ==
                15);
    int found;
    reg_family_def d = def_of(e, "app_requests_total", &found);
    assert_int_equal(d.nlabels, 3); /* sorted: region, service, source */
    assert_string_equal(d.labels[0], "region");
    assert_string_equal(d.labels[2], "source");

    /* honor_labels: the tag keeps its value. */
    feed(in, "honor.prod:1|c|#env:staging\nhonor.prod:1|c");
    assert_true(val(e, "honored", "env=\"staging\"") == 1);
    assert_true(val(e, "honored", "env=\"prod\"") == 1);

    /* scale and help. */
    feed(in, "scaled.x:2500|g");
    assert_true(fabs(val(e, "scaled_seconds", "") - 2.5) < 1e-12);
    d = def_of(e, "scaled_seconds", &found);
    assert_string_equal(d.help, "Scaled things.");

    /* drop action, summary observer type, regex captures. */
    feed(in, "noisy.thing:1|c\nlat.get:10|ms\nlat.get:30|ms\nrx_abc_42:1|c");
    assert_false(found = series(e, "noisy_thing", "", NULL, NULL, NULL));
    uint64_t count;
    double sum;
    assert_true(series(e, "latency_seconds", "op=\"get\"", NULL, &count, &sum));
    assert_int_equal(count, 2);
    assert_true(fabs(sum - 0.04) < 1e-12);
    d = def_of(e, "latency_seconds", &found);
    assert_int_equal(d.type, REG_SUMMARY);
    assert_int_equal(d.nobjectives, 3);
    assert_true(val(e, "rx_abc", "num=\"42\"") == 1);

    /* A mapped name that expands to nothing is refused. */
    feed(in, "empty.:1|c");

    /* Tag order does not matter; escaped tag keys. */
    feed(in, "tagged:1|c|#b:2,a:1\ntagged:1|c|#a:1,b:2\nkeys:1|c|#0x:1,a-b:2");
    assert_true(val(e, "tagged", "a=\"1\",b=\"2\"") == 2);
    assert_true(val(e, "keys", "_0x=\"1\",a_b=\"2\"") == 1);

    exp_ingest_free(in);
    assert_true(val(e, "abacus_statsd_events_actions_total", "action=\"drop\"") == 1);
    assert_true(val(e, "abacus_statsd_events_actions_total", "action=\"map\"") ==
                10); /* not empty.: as statsd_exporter */
    assert_true(val(e, "abacus_statsd_events_dropped_total", "reason=\"empty_metric_name\"") == 1);
    assert_true(val(e, "abacus_statsd_tags_total", "") >= 6);
    env_stop(e);
}

static void test_conflicts(void **state) {
    (void)state;
    env *e = env_start("defaults:\n  observer_type: histogram\nmappings: []\n", NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    assert_non_null(in);
    feed(in, "x:1|c\nx:1|g\nx:1|ms");                        /* type conflicts */
    feed(in, "y:1|c|#a:1\ny:1|c|#b:1\ny:1|c");               /* label set conflicts */
    feed(in, "h:1|ms\nh_count:1|c\nh_bucket:1|g");           /* a histogram's sample names */
    feed(in, "s_sum:1|g\ns:1|ms");                           /* ... in the other direction */
    feed(in, "abacus_build_info:1|g\nprocess_open_fds:1|g"); /* not StatsD's */
    feed(in, "le_h:1|ms|#le:1");                             /* reserved label */
    assert_true(val(e, "x", "") == 1);
    assert_true(val(e, "y", "a=\"1\"") == 1);
    assert_int_equal(nseries(e, "y"), 1);
    int found;
    def_of(e, "h_count", &found);
    assert_false(found);
    def_of(e, "h_bucket", &found);
    assert_false(found);
    def_of(e, "s", &found);
    assert_false(found);
    def_of(e, "le_h", &found);
    assert_false(found);
    /* Conflicts are remembered per thread; they stay refused. */
    feed(in, "x:1|g\nh_count:1|c");
    exp_ingest_free(in);
    assert_true(val(e, "abacus_statsd_events_dropped_total", "reason=\"conflict\"") == 11);
    assert_true(val(e, "abacus_statsd_events_dropped_total", "reason=\"invalid_labels\"") == 1);
    env_stop(e);
}

static void test_declared(void **state) {
    (void)state;
    env *e = env_start("metrics:\n"
                       "  - name: jobs_total\n"
                       "    help: Jobs.\n"
                       "    type: counter\n"
                       "    labels: [queue, outcome]\n"
                       "    const_labels: {team: payments}\n"
                       "  - name: job_seconds\n"
                       "    help: Job time.\n"
                       "    type: summary\n"
                       "    labels: [queue]\n"
                       "mappings:\n"
                       "  - match: \"jobs.*.*\"\n"
                       "    name: jobs_total\n"
                       "    labels: {outcome: \"$2\", queue: \"$1\"}\n"
                       "  - match: \"jobtime.*\"\n"
                       "    name: job_seconds\n"
                       "    labels: {queue: \"$1\"}\n",
                       NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    assert_non_null(in);
    feed(in, "jobs.mail.ok:3|c\njobs.mail.failed:1|c\njobtime.mail:250|ms\njobs.mail.ok:1|g");
    /* Values land in the declared label order (queue, outcome). */
    assert_true(val(e, "jobs_total", "queue=\"mail\",outcome=\"ok\"") == 3);
    assert_true(val(e, "jobs_total", "queue=\"mail\",outcome=\"failed\"") == 1);
    uint64_t count;
    double sum;
    assert_true(series(e, "job_seconds", "queue=\"mail\"", NULL, &count, &sum));
    assert_int_equal(count, 1);
    /* A tag makes the label set differ from the declaration. */
    feed(in, "jobs.mail.ok:1|c|#host:a");
    assert_true(val(e, "jobs_total", "queue=\"mail\",outcome=\"ok\"") == 3);
    exp_ingest_free(in);
    assert_true(val(e, "abacus_statsd_events_dropped_total", "reason=\"conflict\"") == 2);
    env_stop(e);
}

static void test_limits(void **state) {
    (void)state;
    env *e = env_start("defaults:\n  max_series: 3\n", NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    assert_non_null(in);
    char line[64];
    for (int i = 0; i < 10; i++) {
        snprintf(line, sizeof line, "lim:1|c|#id:%d", i);
        feed(in, line);
    }
    assert_int_equal(nseries(e, "lim"), 3);
    feed(in, "lim:1|c|#id:0");
    assert_true(val(e, "lim", "id=\"0\"") == 2);
    exp_ingest_free(in);
    assert_true(val(e, "abacus_statsd_events_dropped_total", "reason=\"series_limit\"") == 7);
    reg_begin(e->t);
    assert_int_equal(reg_family_refused(reg_family_find(e->t, "lim")), 7);
    reg_end(e->t);
    env_stop(e);

    /* The global limit (statsd.max_series) across families. */
    e = env_start("statsd:\n  max_series: 90\n", "127.0.0.1:0", "", NULL);
    in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    size_t before = reg_series_total(e->reg);
    assert_true(before < 90);
    for (int i = 0; i < 100; i++) {
        snprintf(line, sizeof line, "glob%d:1|c", i);
        feed(in, line);
    }
    assert_true(reg_series_total(e->reg) <= 90);
    exp_ingest_free(in);
    assert_true(val(e, "abacus_statsd_events_dropped_total", "reason=\"series_limit\"") > 0);
    env_stop(e);
}

/* The count of reason r in family (events_dropped or sample_errors). */
static double reason_count(env *e, const char *family, const char *r) {
    char l[128];
    snprintf(l, sizeof l, "reason=\"%s\"", r);
    return val(e, family, l);
}

#define DROPPED "abacus_statsd_events_dropped_total"
#define SAMPLE_ERRORS "abacus_statsd_sample_errors_total"

typedef struct {
    const char *line;
    const char *family; /* DROPPED or SAMPLE_ERRORS */
    const char *reason;
} hostile_value;

/* Values that would stay +Inf or NaN for good, and sample rates that are not probabilities:
 * each refused before it reaches the registry, with exactly its own reason, and the metric
 * it aimed at unchanged. */
static void test_non_finite_values(void **state) {
    (void)state;
    env *e = env_start("defaults:\n  observer_type: histogram\n"
                       "mappings:\n"
                       "  - match: \"big.*\"\n    name: big_total\n    scale: 1e300\n"
                       "  - match: \"sum.*\"\n    name: sum_seconds\n"
                       "    observer_type: summary\n",
                       NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    assert_non_null(in);
    /* Every target exists with a finite value first. */
    feed(in, "c_total:1|c\ng:5|g\nh:1|h\nt:1000|ms\nsum.x:2|h\nbig.x:1|c");
    exp_ingest_fold(in);
    static const hostile_value cases[] = {
        {"c_total:Inf|c", DROPPED, "invalid_value"},
        {"c_total:+Inf|c", DROPPED, "invalid_value"},
        {"c_total:infinity|c", DROPPED, "invalid_value"},
        {"c_total:NaN|c", DROPPED, "invalid_value"},
        {"c_total:1e300|c|@1e-10", DROPPED, "invalid_value"}, /* 1e310 */
        {"big.x:1e10|c", DROPPED, "invalid_value"},           /* scale overflows */
        {"c_total:-Inf|c", SAMPLE_ERRORS, "illegal_negative_counter"},
        {"c_total:1|c|@2", SAMPLE_ERRORS, "invalid_sample_rate"},
        {"c_total:1|c|@-1", SAMPLE_ERRORS, "invalid_sample_rate"},
        {"c_total:1|c|@NaN", SAMPLE_ERRORS, "invalid_sample_rate"},
        {"c_total:1|c|@Inf", SAMPLE_ERRORS, "invalid_sample_rate"},
        {"h:NaN|h", DROPPED, "invalid_value"},
        {"h:Inf|h", DROPPED, "invalid_value"},
        {"h:-Inf|d", DROPPED, "invalid_value"},
        {"t:NaN|ms", DROPPED, "invalid_value"},
        {"t:inf|ms", DROPPED, "invalid_value"},
        {"h:1e300|h|@1e-10", DROPPED, "invalid_value"}, /* the sum would grow by 1e310 */
        {"sum.x:NaN|h", DROPPED, "invalid_value"},
        {"sum.x:-Inf|ms", DROPPED, "invalid_value"},
        {"t:1|ms|@2", SAMPLE_ERRORS, "invalid_sample_rate"},
        {"t:1|ms|@-1", SAMPLE_ERRORS, "invalid_sample_rate"},
        {"t:1|ms|@NaN", SAMPLE_ERRORS, "invalid_sample_rate"},
        {"t:1|ms|@Inf", SAMPLE_ERRORS, "invalid_sample_rate"},
        {"t:1|ms|@1e-300", SAMPLE_ERRORS, "invalid_sample_rate"},
        {"h:1|h|@1.5", SAMPLE_ERRORS, "invalid_sample_rate"},
        {"g:+Inf|g", DROPPED, "invalid_value"},
        {"g:-Inf|g", DROPPED, "invalid_value"},
        {"g:+NaN|g", SAMPLE_ERRORS, "malformed_value"}, /* Go: NaN takes no sign */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double before = reason_count(e, cases[i].family, cases[i].reason);
        double dropped = 0, errors = 0;
        static const char *const dr[] = {"invalid_value", "illegal_negative_counter",
                                         "series_limit", "conflict", "invalid_labels"};
        for (size_t k = 0; k < sizeof dr / sizeof dr[0]; k++)
            dropped += reason_count(e, DROPPED, dr[k]);
        static const char *const se[] = {"invalid_sample_rate", "illegal_negative_counter",
                                         "malformed_value", "invalid_sample_factor"};
        for (size_t k = 0; k < sizeof se / sizeof se[0]; k++)
            errors += reason_count(e, SAMPLE_ERRORS, se[k]);
        feed(in, cases[i].line);
        exp_ingest_fold(in);
        if (reason_count(e, cases[i].family, cases[i].reason) != before + 1)
            fail_msg("'%s': %s{reason=\"%s\"} did not move by 1", cases[i].line, cases[i].family,
                     cases[i].reason);
        double dropped2 = 0, errors2 = 0;
        for (size_t k = 0; k < sizeof dr / sizeof dr[0]; k++)
            dropped2 += reason_count(e, DROPPED, dr[k]);
        for (size_t k = 0; k < sizeof se / sizeof se[0]; k++)
            errors2 += reason_count(e, SAMPLE_ERRORS, se[k]);
        if (dropped2 + errors2 != dropped + errors + 1)
            fail_msg("'%s': another reason moved too", cases[i].line);
    }
    /* Nothing reached a metric. */
    assert_true(val(e, "c_total", "") == 1);
    assert_true(val(e, "big_total", "") == 1e300);
    assert_true(val(e, "g", "") == 5);
    uint64_t count;
    double sum;
    assert_true(series(e, "h", "", NULL, &count, &sum) && count == 1 && sum == 1);
    assert_true(series(e, "t", "", NULL, &count, &sum) && count == 1 && sum == 1);
    assert_true(series(e, "sum_seconds", "", NULL, &count, &sum) && count == 1 && sum == 2);
    /* A gauge may be set to NaN or Inf (Prometheus allows it): the next value replaces it. */
    feed(in, "g:NaN|g");
    assert_true(isnan(val(e, "g", "")));
    feed(in, "g:Inf|g");
    assert_true(val(e, "g", "") == INFINITY);
    feed(in, "g:3|g\ng:+1|g");
    assert_true(val(e, "g", "") == 4);
    /* Finite values with valid rates still apply. */
    feed(in, "c_total:1|c|@0.5\nt:500|ms|@0.5\nh:1e300|h|@0.5");
    assert_true(val(e, "c_total", "") == 3);
    assert_true(series(e, "t", "", NULL, &count, &sum) && count == 3 && sum == 2);
    assert_true(series(e, "h", "", NULL, &count, &sum) && count == 3 && sum == 1 + 2e300);
    exp_ingest_free(in);
    env_stop(e);
}

/* DogStatsD extension fields abacus does not know are skipped and counted; a broken
 * timestamp only loses itself. */
static void test_unknown_fields(void **state) {
    (void)state;
    env *e = env_start("mappings: []\n", NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    assert_non_null(in);
    feed(in, "hs_total:1|c|#env:prod|card:low\nhc_total:2|c|#env:prod|c:abc|card:high\n"
             "plain_total:1|c|card:low\nts_total:1|c|T\nts_total:1|c|Tnope\n"
             "future:1|g|zz:new|q");
    exp_ingest_free(in);
    assert_true(val(e, "hs_total", "env=\"prod\"") == 1);
    assert_true(val(e, "hc_total", "container_id=\"abc\",env=\"prod\"") == 2);
    assert_true(val(e, "plain_total", "") == 1);
    assert_true(val(e, "ts_total", "") == 2);
    assert_true(val(e, "future", "") == 1);
    assert_true(val(e, "abacus_statsd_unknown_fields_total", "") == 5);
    assert_true(reason_count(e, SAMPLE_ERRORS, "malformed_timestamp") == 2);
    assert_true(reason_count(e, SAMPLE_ERRORS, "malformed_container_id") == 0);
    assert_true(reason_count(e, SAMPLE_ERRORS, "invalid_sample_factor") == 0);
    assert_true(reason_count(e, SAMPLE_ERRORS, "malformed_component") == 0);
    env_stop(e);
}

static void test_ttl(void **state) {
    (void)state;
    env *e = env_start("mappings:\n"
                       "  - match: \"short.*\"\n"
                       "    name: short_lived\n"
                       "    ttl: 100ms\n"
                       "    labels: {id: \"$1\"}\n",
                       NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    feed(in, "short.a:1|c\nshort.b:1|c");
    assert_int_equal(nseries(e, "short_lived"), 2);
    await_value(e, "short_lived", "id=\"a\"", NAN); /* expired */
    assert_int_equal(nseries(e, "short_lived"), 0);
    feed(in, "short.a:5|c"); /* comes back from zero */
    assert_true(val(e, "short_lived", "id=\"a\"") == 5);
    exp_ingest_free(in);
    env_stop(e);
}

static void test_reload(void **state) {
    (void)state;
    env *e = env_start("mappings:\n  - match: \"r.*\"\n    name: before\n    labels: {k: \"$1\"}\n",
                       NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    feed(in, "r.x:1|c");
    assert_true(val(e, "before", "k=\"x\"") == 1);
    write_file(e->path,
               "metrics:\n"
               "  - name: before\n"
               "    help: Now declared, as a gauge.\n"
               "    type: gauge\n"
               "    labels: [k]\n"
               "mappings:\n  - match: \"r.*\"\n    name: after\n    labels: {k: \"$1\"}\n");
    cfg_errors errs = {0};
    assert_int_equal(exp_state_reload(e->st, &errs), 0);
    cfg_errors_free(&errs);
    feed(in, "r.x:2|c\nbefore:7|g|#k:z");
    assert_true(val(e, "after", "k=\"x\"") == 2);
    assert_true(val(e, "before", "k=\"z\"") == 7); /* the declaration replaced the old family */
    exp_ingest_free(in);
    env_stop(e);
}

/* More names than both per-thread caches hold (random eviction), then a family removed while
 * cached (REG_EGONE: resolved and created again). */
static void test_cache_eviction(void **state) {
    (void)state;
    env *e = env_start("statsd:\n  cache_size: 10\n"
                       "mappings:\n  - match: \"ev.*.*\"\n    name: \"ev_$1\"\n"
                       "    labels: {k: \"$2\"}\n",
                       NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    char line[128];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(line, sizeof line, "ev.f%d.v%d:1|c\nev.shared.v%d:1|c|#t:%d", i, i % 7, i % 50,
                     i % 3);
            feed(in, line);
        }
    }
    for (int i = 0; i < 5000; i += 97) {
        char fam[32], lab[32];
        snprintf(fam, sizeof fam, "ev_f%d", i);
        snprintf(lab, sizeof lab, "k=\"v%d\"", i % 7);
        assert_true(val(e, fam, lab) == 3);
    }
    assert_true(val(e, "ev_shared", "k=\"v0\",t=\"0\"") == 3 * 34); /* i % 150 == 0 */
    assert_int_equal(nseries(e, "ev_shared"), 150);
    feed(in, "ev.f1.v1:1|c");
    assert_true(val(e, "ev_f1", "k=\"v1\"") == 4);
    assert_int_equal(reg_family_remove(e->reg, "ev_f1"), REG_OK);
    feed(in, "ev.f1.v1:1|c");
    assert_true(val(e, "ev_f1", "k=\"v1\"") == 1);
    exp_ingest_free(in);
    assert_true(val(e, "abacus_statsd_mapping_cache_misses_total", "") > 0);
    assert_true(val(e, "abacus_statsd_mapping_cache_hits_total", "") > 0);
    env_stop(e);
}

/* The series cache (level 0): tags whose bytes run together the same way stay different
 * series; a key too long to be cached still lands; a remembered series removed meanwhile (delete,
 * family removal) is looked up again and the update lands; a value refused for a cached series is
 * counted as for any other. */
static void test_series_cache(void **state) {
    (void)state;
    env *e = env_start("mappings:\n  - match: \"sc.*\"\n    name: \"sc_$1\"\n", NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    for (int i = 0; i < 3; i++)
        feed(in, "sc.a:1|c|#x:ab,y:c\nsc.a:1|c|#x:a,y:bc\nsc.a:1|c|#x:,y:abc,x:a\n");
    assert_true(val(e, "sc_a", "x=\"ab\",y=\"c\"") == 3);
    assert_true(val(e, "sc_a", "x=\"a\",y=\"bc\"") == 3);
    assert_true(val(e, "sc_a", "x=\"a\",y=\"abc\"") == 3); /* `x:` has no value: a tag error */
    /* A key too long for the series cache: such lines take the longer path every time. */
    char longv[1501], line[1600], want[1600];
    memset(longv, 'v', 1500);
    longv[1500] = '\0';
    snprintf(line, sizeof line, "sc.a:1|c|#x:a,y:%s", longv);
    for (int i = 0; i < 3; i++)
        feed(in, line);
    snprintf(want, sizeof want, "x=\"a\",y=\"%s\"", longv);
    assert_true(val(e, "sc_a", want) == 3);
    /* Tags in another order: another cache key, the same series. */
    feed(in, "sc.a:1|c|#y:bc,x:a");
    assert_true(val(e, "sc_a", "x=\"a\",y=\"bc\"") == 4);

    /* The series deleted under the cache: the next line re-creates it from zero. */
    reg_begin(e->t);
    reg_family *f = reg_family_find(e->t, "sc_a");
    assert_int_equal(reg_family_hold(f), REG_OK);
    reg_end(e->t);
    const char *vals[] = {"ab", "c"};
    assert_int_equal(reg_series_delete(e->reg, f, vals), REG_OK);
    reg_family_release(e->reg, f);
    reg_reap(e->reg); /* and its memory reclaimed */
    feed(in, "sc.a:5|c|#x:ab,y:c");
    assert_true(val(e, "sc_a", "x=\"ab\",y=\"c\"") == 5);
    assert_true(val(e, "sc_a", "x=\"a\",y=\"bc\"") == 4); /* its neighbours lost nothing */

    /* The family removed under the cache: created again, the update lands. */
    assert_int_equal(reg_family_remove(e->reg, "sc_a"), REG_OK);
    reg_reap(e->reg);
    feed(in, "sc.a:2|c|#x:a,y:bc");
    assert_true(val(e, "sc_a", "x=\"a\",y=\"bc\"") == 2);

    /* A cached counter refuses to go down, counted; gauges set and move through one entry. */
    exp_ingest_fold(in);
    double neg = reason_count(e, SAMPLE_ERRORS, "illegal_negative_counter");
    feed(in, "sc.a:-1|c|#x:a,y:bc\nsc.g:5|g\nsc.g:+2|g\nsc.g:-10|g\nsc.g:1|g\nsc.g:-1|g");
    exp_ingest_fold(in);
    assert_true(reason_count(e, SAMPLE_ERRORS, "illegal_negative_counter") == neg + 1);
    assert_true(val(e, "sc_a", "x=\"a\",y=\"bc\"") == 2);
    assert_true(val(e, "sc_g", "") == 0);
    exp_ingest_free(in);
    env_stop(e);
}

/* The blob bytes entries of t hold, summed from the entries themselves. */
static size_t table_bytes(const ktab *t) {
    size_t sum = 0;
    for (size_t i = 0; i < t->n; i++)
        sum += ((const kent *)(const void *)(t->ents + i * t->esize))->bsize;
    return sum;
}

/* Names as long as a line cannot make a reader's caches hold much: each cache keeps at most its
 * byte budget (and one entry beyond it), and every line is still counted. */
static void test_cache_bytes(void **state) {
    (void)state;
    env *e =
        env_start("mappings:\n  - match: \"nomatch.*\"\n    name: \"x\"\n", NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_TCP);
    enum { NAMES = 40, NAME_LEN = 30000 };
    char *line = malloc(NAME_LEN + 64);
    assert_non_null(line);
    for (int i = 0; i < NAMES; i++) {
        memset(line, 'a', NAME_LEN);
        int n = snprintf(line + NAME_LEN, 64, "%04d:1|c|#t:%d", i, i);
        assert_true(n > 0);
        feed(in, line);
        const ktab *levels[] = {&in->lc, &in->sc, &in->ec, &in->fc};
        for (size_t j = 0; j < 4; j++) {
            assert_true(table_bytes(levels[j]) == levels[j]->bytes);
            assert_true(levels[j]->bytes <= levels[j]->max_bytes + NAME_LEN + 64);
        }
    }
    /* More than the event cache's budget went through it, so it evicted. Each line was counted
     * (names that long are refused) and short names are cached and land as before. */
    assert_true((size_t)NAMES * NAME_LEN > in->ec.max_bytes);
    feed(in, "short.name:1|c\nshort.name:2|c");
    exp_ingest_fold(in);
    assert_true(reason_count(e, DROPPED, "invalid_labels") == NAMES);
    assert_true(val(e, "short_name", "") == 3);
    free(line);
    exp_ingest_free(in);
    env_stop(e);
}

/* The line cache: lines that differ only in their value, fed to one context (its line cache
 * warm after the first) and each to a fresh context (every line parsed), in two registries,
 * give the same counts and the same series, hostile values included. */
static void test_line_cache(void **state) {
    (void)state;
    static const char *const yaml = "mappings:\n"
                                    "  - match: \"lc.s\"\n    name: lc_scaled\n    scale: 0.5\n"
                                    "  - match: \"lc.h\"\n    name: lc_hist\n"
                                    "    observer_type: histogram\n"
                                    "  - match: \"lc.*\"\n    name: \"lc_$1\"\n";
    static const char *const forms[] = {
        "lc.c:%s|c|#a:b",    "lc.r:%s|c|@0.5|#a:b", "lc.g:%s|g",          "lc.t:%s|ms|@0.25",
        "lc.h:%s|h|#x:y",    "lc.s:%s|c",           "lc.k:%s|c|#k:v:w",   "lc.u:%s|c|card:low",
        "lc.e:%s|c|#a:,b:c", "lc.m:%s|ms",          "lc.x:%s|g|#a:b|c:id"};
    static const char *const values[] = {"1", "2",   "+3",   "-1",    "NaN", "Inf", "-Inf", "x",
                                         "",  "1:2", "0x10", "1e400", "0.5", "-0",  "+0",   "1e-3"};
    env *a = env_start(yaml, NO_LISTENERS, NULL), *b = env_start(yaml, NO_LISTENERS, NULL);
    exp_ingest *warm = exp_ingest_create(a->L, EXP_STATSD_LISTENER_UDP);
    ingest_counts fresh = {0};
    char line[128];
    for (int round = 0; round < 3; round++)
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++)
            for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
                snprintf(line, sizeof line, forms[f], values[v]);
                feed(warm, line);
                exp_ingest *cold = exp_ingest_create(b->L, EXP_STATSD_LISTENER_UDP);
                feed(cold, line);
                const ingest_counts *c = &cold->cur;
                fresh.lines += c->lines;
                fresh.unmapped += c->unmapped;
                for (int i = 0; i < EV_COUNT; i++)
                    fresh.events[i] += c->events[i];
                for (int i = 0; i < DR_COUNT; i++)
                    fresh.dropped[i] += c->dropped[i];
                for (int i = 0; i < 2; i++)
                    fresh.actions[i] += c->actions[i];
                fresh.ps.samples += c->ps.samples;
                fresh.ps.tags += c->ps.tags;
                fresh.ps.tag_errors += c->ps.tag_errors;
                fresh.ps.unknown_fields += c->ps.unknown_fields;
                for (int i = 0; i < EXP_STATSD_ERR_COUNT; i++)
                    fresh.ps.errors[i] += c->ps.errors[i];
                exp_ingest_free(cold);
            }
    const ingest_counts *w = &warm->cur;
    assert_true(w->cache_hits + warm->ec_hits > 0);
    assert_int_equal(w->lines, fresh.lines);
    assert_int_equal(w->unmapped, fresh.unmapped);
    assert_memory_equal(w->events, fresh.events, sizeof w->events);
    assert_memory_equal(w->dropped, fresh.dropped, sizeof w->dropped);
    assert_memory_equal(w->actions, fresh.actions, sizeof w->actions);
    assert_memory_equal(&w->ps, &fresh.ps, sizeof w->ps);
    static const char *const series_of[][2] = {
        {"lc_c", "a=\"b\""},   {"lc_r", "a=\"b\""},
        {"lc_g", ""},          {"lc_scaled", ""},
        {"lc_k", "k=\"v:w\""}, {"lc_u", ""},
        {"lc_e", "b=\"c\""},   {"lc_x", "a=\"b\",container_id=\"id\""}};
    for (size_t i = 0; i < sizeof series_of / sizeof series_of[0]; i++) {
        double va = val(a, series_of[i][0], series_of[i][1]);
        double vb = val(b, series_of[i][0], series_of[i][1]);
        assert_false(isnan(va) && !isnan(vb));
        assert_true(memcmp(&va, &vb, sizeof va) == 0);
    }
    static const char *const observed[] = {"lc_t", "lc_hist", "lc_m"};
    for (size_t i = 0; i < sizeof observed / sizeof observed[0]; i++) {
        uint64_t ca = 0, cb = 0;
        double sa = 0, sb = 0;
        const char *l = strcmp(observed[i], "lc_hist") == 0 ? "x=\"y\"" : "";
        assert_true(series(a, observed[i], l, NULL, &ca, &sa));
        assert_true(series(b, observed[i], l, NULL, &cb, &sb));
        assert_int_equal(ca, cb);
        assert_true(sa == sb);
    }
    exp_ingest_free(warm);
    env_stop(a);
    env_stop(b);
}

/* ---- hostile input ------------------------------------------------------------------------- */

static void test_hostile(void **state) {
    (void)state;
    env *e = env_start("mappings:\n  - match: \"h.*.*\"\n    name: \"h_$1\"\n    labels: {b: "
                       "\"$2\"}\n",
                       NO_LISTENERS, NULL);
    exp_ingest *in = exp_ingest_create(e->L, EXP_STATSD_LISTENER_UDP);
    static const char *const bad[] = {
        "",
        "\n\n\n",
        ":",
        "::::|||",
        "a:|c",
        "a:1|",
        "a:1|x",
        "a:1|s",
        "a:-1|c",
        "a:nan|c",
        "a:1|c|@x",
        "a:1|c|#",
        "a:1|c|#,,,:",
        "a,b=c:1|c|#d:e",
        "a[:1|c",
        "]a[b=c:1|c",
        "\xff\xfe:1|c",
        "a\0b:1|c",
        "h..:1|c",
        "h.\xc3\xa9.\xe2\x82\xac:1|c",
        "a:1e999|g",
        "a:0x1p3|g",
        "a:1|ms|@0",
        "a:1|ms|@-1",
        "x:1|c|#__name__:y",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        exp_ingest_datagram(in, bad[i], i == 17 ? 7 : strlen(bad[i]));
    /* A maximal datagram of tags, and random bytes. */
    static char big[65536];
    size_t n = (size_t)snprintf(big, sizeof big, "big:1|c|#");
    for (int i = 0; n + 16 < sizeof big; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "k%d:v%d,", i, i);
    exp_ingest_datagram(in, big, n);
    unsigned seed = 12345;
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(rand_r(&seed) % 512);
        for (size_t i = 0; i < len; i++) {
            static const char alphabet[] = "ab.:|#@,=[]-+c g ms h d\n\\\"\xc3\xa9\x80";
            big[i] = (rand_r(&seed) & 3) ? alphabet[rand_r(&seed) % (sizeof alphabet - 1)]
                                         : (char)rand_r(&seed);
        }
        exp_ingest_datagram(in, big, len);
    }
    exp_ingest_free(in);
    assert_true(val(e, "abacus_statsd_sample_errors_total", "reason=\"malformed_line\"") > 0);
    assert_true(val(e, "abacus_statsd_sample_errors_total", "reason=\"unsupported_set\"") >= 1);
    /* The registry stays consistent: every family still collects. */
    reg_begin(e->t);
    reg_family *f = reg_family_find(e->t, "a");
    assert_non_null(f);
    reg_end(e->t);
    env_stop(e);
}

/* ---- sockets ------------------------------------------------------------------------------- */

static void addr_port(const char *addr, char *host, size_t hcap, int *port) {
    const char *c = strrchr(addr, ':');
    assert_non_null(c);
    size_t hl = (size_t)(c - addr);
    if (addr[0] == '[') {
        addr++;
        hl -= 2;
    }
    snprintf(host, hcap, "%.*s", (int)hl, addr);
    *port = atoi(c + 1);
}

static int connect_to(const char *addr, int type) {
    char host[64];
    int port;
    addr_port(addr, host, sizeof host, &port);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
    int fd = socket(AF_INET, type, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(k > 0);
        s += k;
        n -= (size_t)k;
    }
}

static void test_sockets(void **state) {
    (void)state;
    env *e = env_start("statsd:\n  readers: 2\n  read_buffer: 1048576\n", "127.0.0.1:0",
                       "127.0.0.1:0", "statsd.sock");
    const char *ua = exp_statsd_listener_address(e->L, EXP_STATSD_LISTENER_UDP);
    const char *ta = exp_statsd_listener_address(e->L, EXP_STATSD_LISTENER_TCP);
    const char *xa = exp_statsd_listener_address(e->L, EXP_STATSD_LISTENER_UNIXGRAM);
    assert_non_null(ua);
    assert_non_null(ta);
    assert_non_null(xa);

    /* UDP from several source ports (SO_REUSEPORT spreads flows over the readers). */
    for (int s = 0; s < 8; s++) {
        int fd = connect_to(ua, SOCK_DGRAM);
        for (int i = 0; i < 10; i++)
            send_all(fd, "udp_c:1|c\nudp_c:1|c", 19);
        close(fd);
    }
    await_value(e, "udp_c", "", 160);

    /* TCP: a line split across writes, \r\n, a line that is too long, an unterminated tail. */
    int fd = connect_to(ta, SOCK_STREAM);
    send_all(fd, "tcp_c:1|c\ntcp_", 14);
    await_value(e, "tcp_c", "", 1);
    send_all(fd, "c:2|c\r\n", 7);
    await_value(e, "tcp_c", "", 3);
    char *longline = malloc(70000);
    assert_non_null(longline);
    memset(longline, 'a', 70000);
    send_all(fd, longline, 70000);
    free(longline);
    send_all(fd, ":1|c\ntcp_c:4|c\ntcp_c:8|c", 24);
    close(fd); /* EOF completes the last line */
    await_value(e, "tcp_c", "", 15);
    await_value(e, "abacus_statsd_sample_errors_total", "reason=\"line_too_long\"", 1);
    await_value(e, "abacus_statsd_tcp_connections_total", "", 1);

    /* Unix datagram. */
    int ux = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    snprintf(su.sun_path, sizeof su.sun_path, "%s", xa);
    assert_int_equal(connect(ux, (struct sockaddr *)&su, sizeof su), 0);
    send_all(ux, "ux_g:42|g\nux_c:1|c|#k:v", 23);
    close(ux);
    await_value(e, "ux_g", "", 42);
    await_value(e, "ux_c", "k=\"v\"", 1);

    await_value(e, "abacus_statsd_packets_total", "listener=\"udp\"", 80);
    await_value(e, "abacus_statsd_lines_total", "listener=\"udp\"", 160);
    await_value(e, "abacus_statsd_packets_total", "listener=\"unixgram\"", 1);
    await_value(e, "abacus_statsd_bytes_total", "listener=\"tcp\"", 14 + 7 + 70000 + 24);
    env_stop(e); /* also removes the socket file */
    assert_int_not_equal(access(xa, F_OK), 0);
}

/* ---- many threads at once --------------------------------------------------------------- */

#define THREADS 8
#define PER_THREAD 20000

typedef struct {
    env *e;
    int id;
} tctx;

static void *hammer(void *arg) {
    tctx *c = arg;
    exp_ingest *in = exp_ingest_create(c->e->L, EXP_STATSD_LISTENER_UDP);
    assert_non_null(in);
    char buf[1024];
    for (int i = 0; i < PER_THREAD; i += 10) {
        size_t n = 0;
        for (int k = i; k < i + 10; k++)
            n += (size_t)snprintf(buf + n, sizeof buf - n,
                                  "hot:1|c\nfresh:1|c|#t:%d,i:%d\nshared:1|c|#i:%d\n", c->id, k,
                                  k % 100);
        exp_ingest_datagram(in, buf, n - 1);
    }
    exp_ingest_free(in);
    return NULL;
}

static void test_threads_exact(void **state) {
    (void)state;
    env *e = env_start("defaults:\n  max_series: 1000000\n", NO_LISTENERS, NULL);
    pthread_t th[THREADS];
    tctx c[THREADS];
    for (int i = 0; i < THREADS; i++) {
        c[i] = (tctx){e, i};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &c[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_true(val(e, "hot", "") == THREADS * PER_THREAD);
    assert_int_equal(nseries(e, "fresh"), THREADS * PER_THREAD);
    assert_int_equal(nseries(e, "shared"), 100);
    for (int k = 0; k < 100; k++) {
        char l[32];
        snprintf(l, sizeof l, "i=\"%d\"", k);
        assert_true(val(e, "shared", l) == THREADS * PER_THREAD / 100);
    }
    assert_true(val(e, "abacus_statsd_events_total", "type=\"counter\"") ==
                3.0 * THREADS * PER_THREAD);
    env_stop(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),          cmocka_unit_test(test_mapping_and_tags),
        cmocka_unit_test(test_conflicts),      cmocka_unit_test(test_declared),
        cmocka_unit_test(test_limits),         cmocka_unit_test(test_non_finite_values),
        cmocka_unit_test(test_unknown_fields), cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_reload),         cmocka_unit_test(test_cache_eviction),
        cmocka_unit_test(test_series_cache),   cmocka_unit_test(test_cache_bytes),
        cmocka_unit_test(test_line_cache),     cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_sockets),        cmocka_unit_test(test_threads_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
