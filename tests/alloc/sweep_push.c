/* sweep_push.c - allocation-failure sweep of the push path without HTTP: exp_push_handle on a
 * registry for a PUT of a text body (gauges, counters, a histogram, a summary) to a grouping
 * key with @base64 values, a POST, an aggregating POST (/metrics/aggregate/...), a gzip body,
 * a delimited protobuf body, a refused body (timestamps: its failure time recorded), a POST
 * after it and a DELETE; the JSON API (exp_push_api_metrics); scrapes in text and OpenMetrics
 * with groups present; reg_group_snapshot and reg_group_release_all; a snapshot written and
 * loaded into a second registry (reg_snapshot_write, reg_snapshot_load); reg_group_wipe.
 *
 * Each step must succeed or fail cleanly (a 500 answer, NULL, -1, REG_ENOMEM) and leave the
 * registry consistent, which the scenario checks after every step (check_registry): the
 * series total is the sum of the groups' series and the group total their number, and a
 * step that failed left every group as it was (a fingerprint of all groups' families, series
 * and values, times left out). A violation prints "sweep: INCONSISTENT" and aborts the run.
 * A run that reports success although an allocation failed must end with the output of the
 * counting run (sweep.h): the groups' fingerprint after each step, the JSON API's body and
 * the text scrape, push times left out (they are wall-clock; a refused push records its
 * failure time only when it has the memory, by contract).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "http/expfmt.h"
#include "push/push.h"
#include "registry.h"
#include "sweep.h"

/* ---- the bodies ---------------------------------------------------------------------------- */

/* The grouping key job="batch/nightly", instance="web-1", dir="/var/lib/app": job and dir in
 * URL-safe base64, padded and not. */
#define KEY_A "job@base64/YmF0Y2gvbmlnaHRseQ==/instance/web-1/dir@base64/L3Zhci9saWIvYXBw"
#define KEY_A_UNPADDED "job@base64/YmF0Y2gvbmlnaHRseQ/instance/web-1/dir@base64/L3Zhci9saWIvYXBw"
/* job="gz", shard="" (an empty value in base64). */
#define KEY_B "job/gz/shard@base64/="
/* job="proto", instance="p-1". */
#define KEY_C "job/proto/instance/p-1"

static const char put_body[] = "# HELP queue_depth Jobs waiting.\n"
                               "# TYPE queue_depth gauge\n"
                               "queue_depth{queue=\"default\"} 12\n"
                               "queue_depth{queue=\"critical\"} 3\n"
                               "# HELP jobs_done_total Jobs done.\n"
                               "# TYPE jobs_done_total counter\n"
                               "jobs_done_total{outcome=\"ok\"} 100\n"
                               "jobs_done_total{outcome=\"failed\"} 7\n"
                               "# TYPE job_seconds histogram\n"
                               "job_seconds_bucket{le=\"0.1\"} 2\n"
                               "job_seconds_bucket{le=\"1\"} 5\n"
                               "job_seconds_bucket{le=\"+Inf\"} 6\n"
                               "job_seconds_sum 4.5\n"
                               "job_seconds_count 6\n"
                               "# HELP payload_bytes Payload sizes.\n"
                               "# TYPE payload_bytes summary\n"
                               "payload_bytes{quantile=\"0.5\"} 120\n"
                               "payload_bytes{quantile=\"0.99\"} 900\n"
                               "payload_bytes_sum 5000\n"
                               "payload_bytes_count 30\n"
                               "last_run_ok 1\n";

/* POST: queue_depth replaced, one family added, the others kept. */
static const char post_body[] = "# TYPE queue_depth gauge\n"
                                "queue_depth{queue=\"default\"} 0\n"
                                "# TYPE temperature_celsius gauge\n"
                                "temperature_celsius{room=\"caf\xc3\xa9\"} -3.5\n";

/* Aggregating POST: counters and the histogram add, the gauge replaces. */
static const char aggregate_body[] = "# TYPE jobs_done_total counter\n"
                                     "jobs_done_total{outcome=\"ok\"} 5\n"
                                     "jobs_done_total{outcome=\"retried\"} 1\n"
                                     "# TYPE job_seconds histogram\n"
                                     "job_seconds_bucket{le=\"0.1\"} 1\n"
                                     "job_seconds_bucket{le=\"1\"} 1\n"
                                     "job_seconds_bucket{le=\"+Inf\"} 2\n"
                                     "job_seconds_sum 9\n"
                                     "job_seconds_count 2\n"
                                     "# TYPE last_run_ok gauge\n"
                                     "last_run_ok 0\n";

static const char gzip_text[] = "# HELP rows_written_total Rows written.\n"
                                "# TYPE rows_written_total counter\n"
                                "rows_written_total{table=\"a\\\"b\"} 10\n"
                                "rows_written_total{table=\"line\\nbreak\"} 20\n";

/* Refused: pushed metrics must not have timestamps. */
static const char refused_body[] = "# TYPE queue_depth gauge\n"
                                   "queue_depth{queue=\"default\"} 1 1700000000000\n";

static const char after_refused_body[] = "# TYPE queue_depth gauge\n"
                                         "queue_depth{queue=\"default\"} 2\n";

/* Built in main(), before the driver forks: the scenario's allocations are its own. */
static unsigned char gzip_body[1024];
static size_t gzip_len;
static unsigned char proto_body[1024];
static size_t proto_len;

#define PROTO_TYPE                                                                                 \
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "                   \
    "encoding=delimited"

typedef struct {
    unsigned char b[512];
    size_t n;
} pb;

static void pb_raw(pb *m, const void *s, size_t n) {
    if (m->n + n > sizeof m->b)
        abort(); /* the bodies below are small */
    memcpy(m->b + m->n, s, n);
    m->n += n;
}

static void pb_varint(pb *m, uint64_t v) {
    do {
        unsigned char c = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v)
            c |= 0x80;
        pb_raw(m, &c, 1);
    } while (v);
}

static void pb_tag(pb *m, unsigned num, unsigned wire) {
    pb_varint(m, (uint64_t)num << 3 | wire);
}

static void pb_double(pb *m, unsigned num, double d) {
    uint64_t v;
    memcpy(&v, &d, 8);
    pb_tag(m, num, 1);
    for (int i = 0; i < 8; i++) {
        unsigned char c = (unsigned char)(v >> (8 * i));
        pb_raw(m, &c, 1);
    }
}

static void pb_bytes(pb *m, unsigned num, const void *s, size_t n) {
    pb_tag(m, num, 2);
    pb_varint(m, n);
    pb_raw(m, s, n);
}

static void pb_str(pb *m, unsigned num, const char *s) {
    pb_bytes(m, num, s, strlen(s));
}

static void pb_msg(pb *m, unsigned num, const pb *sub) {
    pb_bytes(m, num, sub->b, sub->n);
}

/* Metric{label{name, value}, <kind>{value}} with kind 2 (Gauge) or 3 (Counter). */
static void pb_metric(pb *fam, unsigned kind, const char *lname, const char *lvalue, double v) {
    pb metric = {0}, label = {0}, value = {0};
    pb_str(&label, 1, lname);
    pb_str(&label, 2, lvalue);
    pb_msg(&metric, 1, &label);
    pb_double(&value, 1, v);
    pb_msg(&metric, kind, &value);
    pb_msg(fam, 4, &metric);
}

/* Two length-prefixed MetricFamily messages: a counter of two series and a histogram. */
static void build_proto(void) {
    pb body = {0}, fam = {0};
    pb_str(&fam, 1, "proto_requests_total");
    pb_str(&fam, 2, "Requests, pushed as protobuf.");
    pb_tag(&fam, 3, 0);
    pb_varint(&fam, 0); /* COUNTER */
    pb_metric(&fam, 3, "code", "200", 41);
    pb_metric(&fam, 3, "code", "500", 1);
    pb_varint(&body, fam.n);
    pb_raw(&body, fam.b, fam.n);

    pb hist = {0}, metric = {0};
    memset(&fam, 0, sizeof fam);
    pb_str(&fam, 1, "proto_latency_seconds");
    pb_tag(&fam, 3, 0);
    pb_varint(&fam, 4); /* HISTOGRAM */
    pb_tag(&hist, 1, 0);
    pb_varint(&hist, 3); /* sample_count */
    pb_double(&hist, 2, 0.75);
    static const double bounds[] = {0.1, 0.5};
    static const uint64_t counts[] = {1, 2};
    for (int i = 0; i < 2; i++) {
        pb bucket = {0};
        pb_tag(&bucket, 1, 0);
        pb_varint(&bucket, counts[i]);
        pb_double(&bucket, 2, bounds[i]);
        pb_msg(&hist, 3, &bucket);
    }
    pb_msg(&metric, 7, &hist);
    pb_msg(&fam, 4, &metric);
    pb_varint(&body, fam.n);
    pb_raw(&body, fam.b, fam.n);
    memcpy(proto_body, body.b, body.n);
    proto_len = body.n;
}

/* gzip_text, gzip-wrapped. */
static int build_gzip(void) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    zs.next_in = (Bytef *)gzip_text;
    zs.avail_in = (uInt)(sizeof gzip_text - 1);
    zs.next_out = gzip_body;
    zs.avail_out = (uInt)sizeof gzip_body;
    int z = deflate(&zs, Z_FINISH);
    gzip_len = sizeof gzip_body - zs.avail_out;
    deflateEnd(&zs);
    return z == Z_STREAM_END ? 0 : -1;
}

/* ---- consistency --------------------------------------------------------------------------- */

/* A consistency check that failed: the registry is wrong after a step; the run aborts. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("sweep: INCONSISTENT at line %d: ", __LINE__);                                  \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            fflush(stdout);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* What check_registry found. */
typedef struct {
    size_t groups, series;
    uint64_t hash; /* every group's key, families, series and values; times left out */
} groups_state;

/* The snapshot buffer of the checks, made once at the start: with room for every group,
 * reg_group_snapshot does not allocate, so checking does not move the allocation count. */
#define CHECK_CAP 16

static uint64_t mix(uint64_t h, const void *p, size_t n) {
    return reg_hash_bytes(p, n, h ^ 0x9e3779b97f4a7c15u);
}

/* Read every group of r: the fingerprint, and the series total and group total checked
 * against it. Cannot fail (no allocation). */
static groups_state check_registry(reg_thread *t, reg_registry *r, reg_group **buf) {
    groups_state st = {0, 0, 1};
    size_t cap = CHECK_CAP;
    reg_group **g = buf;
    reg_begin(t);
    long n = reg_group_snapshot(t, &g, &cap);
    reg_end(t);
    CHECK(n >= 0 && g == buf, "reg_group_snapshot failed or grew the buffer (%ld)", n);
    for (long i = 0; i < n; i++) {
        size_t kl;
        const char *key = reg_group_key(g[i], &kl);
        st.hash = mix(st.hash, key, kl + 1);
        const reg_push_family *f = reg_group_families(g[i]);
        size_t nf = reg_group_family_count(g[i]);
        for (size_t k = 0; k < nf; k++) {
            int type = (int)f[k].type;
            st.hash = mix(st.hash, f[k].name, strlen(f[k].name) + 1);
            st.hash = mix(st.hash, f[k].help ? f[k].help : "\1", f[k].help ? strlen(f[k].help) : 1);
            st.hash = mix(st.hash, &type, sizeof type);
            CHECK(k == 0 || strcmp(f[k - 1].name, f[k].name) < 0, "families not sorted");
            for (size_t j = 0; j < f[k].nseries; j++) {
                const reg_push_series *s = &f[k].series[j];
                CHECK(strlen(s->labels) == s->labels_len, "series label length");
                st.hash = mix(st.hash, s->labels, s->labels_len + 1);
                st.hash = mix(st.hash, s->vals, s->nvals * sizeof *s->vals);
            }
            st.series += f[k].nseries;
        }
    }
    st.groups = (size_t)n;
    st.series += 2 * (size_t)n; /* each group's push-time gauges count too */
    reg_group_release_all(r, g, (size_t)n);
    CHECK(reg_series_total(r) == st.series, "reg_series_total %zu, the groups hold %zu series",
          reg_series_total(r), st.series);
    CHECK(reg_group_total(r) == st.groups, "reg_group_total %zu, %zu groups found",
          reg_group_total(r), st.groups);
    return st;
}

/* The failure time of the group whose key text is key; -1 when there is none. */
static double failure_time(reg_thread *t, reg_registry *r, reg_group **buf, const char *key) {
    size_t cap = CHECK_CAP;
    reg_group **g = buf;
    double ft = -1;
    reg_begin(t);
    long n = reg_group_snapshot(t, &g, &cap);
    reg_end(t);
    CHECK(n >= 0 && g == buf, "reg_group_snapshot failed or grew the buffer (%ld)", n);
    for (long i = 0; i < n; i++)
        if (!strcmp(reg_group_key(g[i], NULL), key))
            ft = reg_group_failure_time(g[i]);
    reg_group_release_all(r, g, (size_t)n);
    return ft;
}

/* ---- the steps ----------------------------------------------------------------------------- */

typedef struct {
    reg_registry *r;
    reg_thread *t;
    reg_group **buf; /* CHECK_CAP entries */
    sweep_text *out;
} ctx;

/* Append the groups' state after a step to the output. 0, or -1 out of memory. */
static int note(ctx *c, const char *step, const groups_state *st) {
    char line[160];
    int n = snprintf(line, sizeof line, "%s: groups=%zu series=%zu hash=%016llx\n", step,
                     st->groups, st->series, (unsigned long long)st->hash);
    return sweep_text_add(c->out, line, (size_t)n);
}

/* One request through exp_push_handle. 0 when it was answered want (its state noted in the
 * output); -1 when it was answered 500 (out of memory), having changed nothing. Any other
 * answer is a wrong result. */
static int push(ctx *c, const char *step, const char *method, const char *path,
                const char *content_type, const char *encoding, const void *body, size_t len,
                unsigned want) {
    groups_state before = check_registry(c->t, c->r, c->buf);
    exp_push_request rq = {.method = method,
                           .path = path,
                           .encoding = encoding,
                           .content_type = content_type,
                           .body = body,
                           .len = len,
                           .max_body = 1 << 20};
    exp_push_answer ans;
    memset(&ans, 0, sizeof ans);
    exp_push_handle(c->r, &rq, &ans);
    groups_state after = check_registry(c->t, c->r, c->buf);
    if (ans.status == 500) {
        CHECK(ans.refused && !strcmp(ans.refused, "out_of_memory"), "%s: 500 refused as %s", step,
              ans.refused ? ans.refused : "(none)");
        CHECK(after.hash == before.hash && after.series == before.series &&
                  after.groups == before.groups,
              "%s: answered 500 but the groups changed", step);
        return -1;
    }
    CHECK(ans.status == want, "%s: answered %u (%s), not %u: %s", step, ans.status,
          ans.refused ? ans.refused : "-", want, ans.message);
    if (want >= 400)
        CHECK(after.hash == before.hash && after.series == before.series &&
                  after.groups == before.groups,
              "%s: refused but the groups changed", step);
    return note(c, step, &after);
}

/* Renders a whole scrape; into out when not NULL, without the lines of the push-time gauges
 * (wall-clock values). 0, or -1 on a failure. */
static int scrape(reg_registry *r, exp_format fmt, sweep_text *out) {
    sweep_text all = {0};
    exp_scrape *s = exp_scrape_begin(r, fmt, 0);
    if (!s)
        return -1;
    char chunk[700]; /* small: families cross chunk boundaries */
    long n;
    while ((n = exp_scrape_read(s, chunk, sizeof chunk)) > 0)
        if (out && sweep_text_add(&all, chunk, (size_t)n) < 0) {
            n = -1;
            break;
        }
    exp_scrape_end(s);
    for (char *l = all.buf; n == 0 && l && *l;) {
        char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) + 1 : strlen(l);
        int timed = strstr(l, REG_PUSH_TIME_NAME) && strstr(l, REG_PUSH_TIME_NAME) < l + len;
        char *ft = strstr(l, REG_PUSH_FAILURE_TIME_NAME);
        timed = timed || (ft && ft < l + len);
        if (!timed && sweep_text_add(out, l, len) < 0)
            n = -1;
        l += len;
    }
    free(all.buf);
    return n == 0 ? 0 : -1;
}

/* Cut the times out of the JSON API's body, in place: every "time_stamp" member, and the two
 * push-time families (their values are the times). */
static void scrub_json(char *j) {
    static const char *const cut[] = {",\"" REG_PUSH_TIME_NAME "\":{",
                                      ",\"" REG_PUSH_FAILURE_TIME_NAME "\":{"};
    for (size_t i = 0; i < 2; i++)
        for (char *p; (p = strstr(j, cut[i]));) {
            char *e = strstr(p, "]}");
            if (!e)
                return;
            memmove(p, e + 2, strlen(e + 2) + 1);
        }
    for (char *p; (p = strstr(j, "\"time_stamp\":\""));) {
        char *e = strchr(p + 14, '"');
        if (!e)
            return;
        e++;
        if (*e == ',')
            e++;
        memmove(p, e, strlen(e) + 1);
    }
}

typedef struct {
    unsigned char *p;
    size_t len, cap;
} membuf;

static int mem_sink(void *arg, const void *buf, size_t len) {
    membuf *m = arg;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + len)
            cap *= 2;
        unsigned char *p = realloc(m->p, cap);
        if (!p)
            return -1;
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->len, buf, len);
    m->len += len;
    return 0;
}

/* 0 when every step succeeded, -1 when one reported a failure (after cleaning up). */
static int scenario(sweep_text *out) {
    int ok = -1;
    reg_registry *r = NULL, *r2 = NULL;
    reg_thread *t = NULL, *t2 = NULL;
    reg_group **buf = NULL, **snap = NULL;
    size_t snap_cap = 0;
    long nsnap = 0;
    char *json = NULL;
    membuf saved = {0};
    char err[256];

    reg_options o = {.max_series = 1000, .start_reaper = 0};
    if (!(r = reg_create(&o)) || !(t = reg_thread_attach(r)))
        SWEEP_FAIL();
    if (!(buf = calloc(CHECK_CAP, sizeof *buf)))
        SWEEP_FAIL();
    ctx c = {r, t, buf, out};

    if (push(&c, "put", "PUT", "/metrics/" KEY_A, NULL, NULL, put_body, sizeof put_body - 1, 200))
        SWEEP_FAIL();
    if (push(&c, "post", "POST", "/metrics/" KEY_A, "text/plain; version=0.0.4", NULL, post_body,
             sizeof post_body - 1, 200))
        SWEEP_FAIL();
    if (push(&c, "aggregate", "POST", "/metrics/aggregate/" KEY_A_UNPADDED, NULL, NULL,
             aggregate_body, sizeof aggregate_body - 1, 200))
        SWEEP_FAIL();
    if (push(&c, "gzip", "PUT", "/metrics/" KEY_B, NULL, "gzip", gzip_body, gzip_len, 200))
        SWEEP_FAIL();
    if (push(&c, "protobuf", "PUT", "/metrics/" KEY_C, PROTO_TYPE, NULL, proto_body, proto_len,
             200))
        SWEEP_FAIL();

    /* Refused: 400, the group as it was, its failure time recorded when there was memory. */
    static const char key_a[] = "dir=\"/var/lib/app\",instance=\"web-1\",job=\"batch/nightly\"";
    double ft_before = failure_time(t, r, buf, key_a);
    CHECK(ft_before == 0, "group A: failure time %f before any refusal", ft_before);
    if (push(&c, "refused", "PUT", "/metrics/" KEY_A, NULL, NULL, refused_body,
             sizeof refused_body - 1, 400))
        SWEEP_FAIL();
    double ft_after = failure_time(t, r, buf, key_a);
    CHECK(ft_after == 0 || ft_after > 1e9, "group A: failure time %f after a refusal", ft_after);
    if (push(&c, "post after refusal", "POST", "/metrics/" KEY_A, NULL, NULL, after_refused_body,
             sizeof after_refused_body - 1, 200))
        SWEEP_FAIL();
    CHECK(failure_time(t, r, buf, key_a) == ft_after, "a successful push changed the failure time");
    if (push(&c, "delete", "DELETE", "/metrics/" KEY_B, NULL, NULL, "", 0, 202))
        SWEEP_FAIL();

    /* The JSON API. */
    size_t len = 0;
    unsigned status = 0;
    if (!(json = exp_push_api_metrics(r, &len, &status)))
        SWEEP_FAIL();
    CHECK(status == 200 && len == strlen(json) && !strncmp(json, "{\"status\":\"success\"", 19),
          "exp_push_api_metrics: %u, %zu bytes: %.200s", status, len, json);
    scrub_json(json);
    if (sweep_text_add(out, json, strlen(json)) < 0 || sweep_text_add(out, "\n", 1) < 0)
        SWEEP_FAIL();
    groups_state now = check_registry(t, r, buf);

    /* Scrapes with groups present. */
    if (scrape(r, EXP_FMT_OPENMETRICS, NULL) < 0 || scrape(r, EXP_FMT_TEXT, out) < 0)
        SWEEP_FAIL();

    /* reg_group_snapshot growing its own buffer, then released. */
    reg_begin(t);
    nsnap = reg_group_snapshot(t, &snap, &snap_cap);
    reg_end(t);
    if (nsnap < 0)
        SWEEP_FAIL();
    CHECK((size_t)nsnap == now.groups, "reg_group_snapshot: %ld groups, not %zu", nsnap,
          now.groups);
    reg_group_release_all(r, snap, (size_t)nsnap);
    nsnap = 0;
    CHECK(check_registry(t, r, buf).hash == now.hash, "the groups changed after a snapshot");

    /* A snapshot written and loaded into a second registry: the same groups. */
    reg_snapshot_stats st;
    if (reg_snapshot_write(t, mem_sink, &saved, &st, err, sizeof err) != 0)
        SWEEP_FAIL();
    CHECK(st.groups == now.groups, "reg_snapshot_write: %zu groups, not %zu", st.groups,
          now.groups);
    if (!(r2 = reg_create(&o)) || !(t2 = reg_thread_attach(r2)))
        SWEEP_FAIL();
    reg_snapshot_report rep;
    int rc = reg_snapshot_load(t2, saved.p, saved.len, &rep, err, sizeof err);
    groups_state loaded = check_registry(t2, r2, buf);
    if (rc == REG_ENOMEM)
        SWEEP_FAIL();
    CHECK(rc == REG_OK, "reg_snapshot_load: %d (%s)", rc, err);
    CHECK(rep.groups == now.groups && rep.groups_refused == 0,
          "reg_snapshot_load: %zu groups restored, %zu refused (%s), of %zu", rep.groups,
          rep.groups_refused, rep.refused_groups, now.groups);
    CHECK(loaded.hash == now.hash && loaded.series == now.series,
          "the loaded groups differ from the saved ones");
    if (note(&c, "snapshot loaded", &loaded) < 0)
        SWEEP_FAIL();

    /* Wipe. */
    CHECK(reg_group_wipe(r) == now.groups, "reg_group_wipe removed another count");
    groups_state wiped = check_registry(t, r, buf);
    CHECK(wiped.groups == 0 && wiped.series == 0, "groups left after reg_group_wipe");
    if (note(&c, "wipe", &wiped) < 0)
        SWEEP_FAIL();
    ok = 0;
done:
    if (nsnap > 0)
        reg_group_release_all(r, snap, (size_t)nsnap);
    free(snap);
    free(saved.p);
    free(json);
    if (t2)
        reg_thread_detach(t2);
    if (r2)
        reg_destroy(r2);
    free(buf);
    if (t)
        reg_thread_detach(t);
    if (r)
        reg_destroy(r);
    return ok;
}

int main(int argc, char **argv) {
    build_proto();
    if (build_gzip() != 0) {
        fprintf(stderr, "sweep_push: could not gzip the body\n");
        return 2;
    }
    return sweep_main(argc, argv, scenario, 1);
}
