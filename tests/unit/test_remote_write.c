/* test_remote_write.c - remote write's parts without a network: the encoder (a round trip
 * through snappy and protobuf-c's unpacking), the relabeler (replace, keep, drop and Go's
 * template expansion), the queue (its bound, what it refuses, order, references), the backoff,
 * the collection (the series a scrape shows, for every metric type) and the series set (labels
 * as sent, staleness markers, strictly increasing collection times). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <snappy-c.h>

#include "exporter/remote/internal.h"
#include "remote.pb-c.h"

/* A series from "name=value" pairs, sorted as given. */
static rw_series *series(size_t n, const char *const *kv) {
    const char *names[8], *values[8];
    for (size_t i = 0; i < n; i++) {
        names[i] = kv[2 * i];
        values[i] = kv[2 * i + 1];
    }
    rw_series *s = rw_series_make(n, names, values);
    assert_non_null(s);
    return s;
}

/* ---- encoder ---------------------------------------------------------------------------- */

static void encode_round_trip(void **state) {
    (void)state;
    const char *a[] = {"__name__", "up", "instance", "h:1", "job", "abacus"};
    const char *b[] = {"__name__", "x_bucket", "le", "+Inf"};
    rw_series *sa = series(3, a), *sb = series(2, b);
    rw_sample in[] = {{sa, 1.5, 1000}, {sb, 7, 1000}, {sa, rw_stale_nan(), 2000}};
    rw_encoder e = {0};
    const char *out;
    size_t raw_len;
    for (int round = 0; round < 2; round++) { /* the second reuses the scratch */
        long n = rw_encode(&e, in, 3, &out, &raw_len);
        assert_true(n > 0);
        size_t ulen;
        assert_int_equal(snappy_uncompressed_length(out, (size_t)n, &ulen), SNAPPY_OK);
        assert_int_equal(ulen, raw_len);
        char *raw = malloc(ulen);
        assert_int_equal(snappy_uncompress(out, (size_t)n, raw, &ulen), SNAPPY_OK);
        Prometheus__WriteRequest *req =
            prometheus__write_request__unpack(NULL, ulen, (const uint8_t *)raw);
        assert_non_null(req);
        assert_int_equal(req->n_timeseries, 3);
        for (size_t i = 0; i < 3; i++) {
            const Prometheus__TimeSeries *ts = req->timeseries[i];
            assert_int_equal(ts->n_labels, in[i].series->nlabels);
            for (size_t j = 0; j < ts->n_labels; j++) {
                assert_string_equal(ts->labels[j]->name, in[i].series->names[j]);
                assert_string_equal(ts->labels[j]->value, in[i].series->values[j]);
            }
            assert_int_equal(ts->n_samples, 1);
            assert_int_equal(ts->samples[0]->timestamp, in[i].timestamp_ms);
            assert_memory_equal(&ts->samples[0]->value, &in[i].value, sizeof(double));
        }
        assert_true(rw_is_stale_nan(req->timeseries[2]->samples[0]->value));
        assert_false(rw_is_stale_nan(NAN));
        prometheus__write_request__free_unpacked(req, NULL);
        free(raw);
    }
    rw_encoder_free(&e);
    rw_series_unref(sa);
    rw_series_unref(sb);
}

/* ---- relabeling ----------------------------------------------------------------------------- */

static rw_labels labels(size_t n, const char *const *kv) {
    rw_labels l = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rw_labels_set(&l, kv[2 * i], kv[2 * i + 1]), 0);
    return l;
}

static rw_relabeler *relabeler(const cfg_relabel *r, size_t n) {
    char err[128];
    rw_relabeler *x = rw_relabeler_create(r, n, err, sizeof err);
    assert_non_null(x);
    return x;
}

static void relabel_rules(void **state) {
    (void)state;
    char *src_name[] = {"__name__"}, *src_ab[] = {"a", "b"};
    cfg_relabel rules[] = {
        {.action = CFG_RELABEL_DROP,
         .nsource_labels = 1,
         .source_labels = src_name,
         .separator = ";",
         .regex = "go_.*"},
        {.action = CFG_RELABEL_REPLACE,
         .nsource_labels = 2,
         .source_labels = src_ab,
         .separator = "-",
         .regex = "(\\w+)-(?<second>\\w+)",
         .target_label = "joined",
         .replacement = "${1}+$second$$"},
        {.action = CFG_RELABEL_REPLACE,
         .nsource_labels = 1,
         .source_labels = src_name,
         .separator = ";",
         .regex = "(drop)_me",
         .target_label = "a",
         .replacement = ""},
    };
    rw_relabeler *r = relabeler(rules, 3);
    const char *go[] = {"__name__", "go_goroutines"};
    rw_labels l = labels(1, go);
    assert_int_equal(rw_relabel(r, &l), 0); /* dropped */

    const char *kv[] = {"__name__", "up", "a", "x", "b", "y"};
    l = labels(3, kv);
    assert_int_equal(rw_relabel(r, &l), 1);
    assert_string_equal(rw_labels_get(&l, "joined"), "x+y$");

    const char *kv2[] = {"__name__", "drop_me", "a", "x"};
    l = labels(2, kv2);
    assert_int_equal(rw_relabel(r, &l), 1);
    assert_null(rw_labels_get(&l, "a"));      /* an empty replacement removes the label */
    assert_null(rw_labels_get(&l, "joined")); /* "x-" does not match: no change */
    rw_relabeler_free(r);

    cfg_relabel keep[] = {{.action = CFG_RELABEL_KEEP,
                           .nsource_labels = 1,
                           .source_labels = src_name,
                           .separator = ";",
                           .regex = "up|x"}};
    r = relabeler(keep, 1);
    l = labels(3, kv);
    assert_int_equal(rw_relabel(r, &l), 1);
    l = labels(1, go);
    assert_int_equal(rw_relabel(r, &l), 0);
    /* Anchored: "upx" is not "up". */
    const char *upx[] = {"__name__", "upx"};
    l = labels(1, upx);
    assert_int_equal(rw_relabel(r, &l), 0);
    rw_relabeler_free(r);
}

static void labels_sorted(void **state) {
    (void)state;
    const char *kv[] = {"job", "j", "__name__", "m", "instance", "i", "a", "1"};
    rw_labels l = labels(4, kv);
    rw_labels_sort(&l);
    const char *want[] = {"__name__", "a", "instance", "job"};
    assert_int_equal(l.n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(l.names[i], want[i]);
}

/* ---- queue and backoff ------------------------------------------------------------------------
 */

static void queue_bounded_in_order(void **state) {
    (void)state;
    const char *kv[] = {"__name__", "m"};
    rw_series *s = series(1, kv);
    rw_queue q;
    assert_int_equal(rw_queue_init(&q, 3), 0);
    rw_sample in[5];
    for (int i = 0; i < 5; i++)
        in[i] = (rw_sample){rw_series_ref(s), i, i};
    pthread_mutex_lock(&q.mu);
    assert_int_equal(rw_queue_push_locked(&q, in, 5, 0), 2); /* two refused */
    assert_int_equal(atomic_load(&s->refs), 4);              /* 1 + 3 queued */
    rw_sample out[5];
    assert_int_equal(rw_queue_peek_locked(&q, out, 2), 2);
    assert_true(out[0].value == 0 && out[1].value == 1);
    rw_queue_pop_locked(&q, 2, 0);
    rw_sample more[3] = {
        {rw_series_ref(s), 10, 10}, {rw_series_ref(s), 11, 11}, {rw_series_ref(s), 12, 12}};
    assert_int_equal(rw_queue_push_locked(&q, more, 3, 0), 1); /* wraps around the ring */
    assert_int_equal(rw_queue_peek_locked(&q, out, 5), 3);
    assert_true(out[0].value == 2 && out[1].value == 10 && out[2].value == 11);
    pthread_mutex_unlock(&q.mu);
    rw_queue_destroy(&q);
    assert_int_equal(atomic_load(&s->refs), 1);
    rw_series_unref(s);
}

static void queue_grows_in_order(void **state) {
    (void)state;
    const char *kv[] = {"__name__", "m"};
    rw_series *s = series(1, kv);
    rw_queue q;
    assert_int_equal(rw_queue_init(&q, 100000), 0);
    pthread_mutex_lock(&q.mu);
    for (int round = 0; round < 3; round++) {
        rw_sample in[1500];
        for (int i = 0; i < 1500; i++)
            in[i] = (rw_sample){rw_series_ref(s), round * 1500 + i, 0};
        assert_int_equal(rw_queue_push_locked(&q, in, 1500, 0), 0);
        rw_queue_pop_locked(&q, 700, 0); /* head moves, so later growth unwraps the ring */
    }
    rw_sample out[3000];
    size_t n = rw_queue_peek_locked(&q, out, 3000);
    assert_int_equal(n, 4500 - 2100);
    for (size_t i = 0; i < n; i++)
        assert_true(out[i].value == (double)(2100 + i));
    pthread_mutex_unlock(&q.mu);
    rw_queue_destroy(&q);
    rw_series_unref(s);
}

static void backoff_doubles_with_jitter(void **state) {
    (void)state;
    const uint64_t ms = 1000000;
    assert_int_equal(rw_backoff_ns(30 * ms, 5000 * ms, 0, 0), 30 * ms);
    assert_int_equal(rw_backoff_ns(30 * ms, 5000 * ms, 3, 0), 240 * ms);
    assert_int_equal(rw_backoff_ns(30 * ms, 5000 * ms, 60, 0), 5000 * ms); /* clamped */
    for (uint64_t rnd = 1; rnd < 1000000; rnd = rnd * 7 + 3) {
        uint64_t d = rw_backoff_ns(30 * ms, 5000 * ms, 2, rnd);
        assert_true(d >= 60 * ms && d <= 120 * ms);
    }
}

/* ---- collection -------------------------------------------------------------------------------
 */

/* The point named name with label `label`=value (NULL: any), or NULL. */
static const rw_point *find(const rw_collection *c, const char *name, const char *label,
                            const char *value) {
    for (size_t i = 0; i < c->n; i++) {
        const rw_point *p = &c->points[i];
        if (strcmp(p->values[0], name))
            continue;
        if (!label)
            return p;
        for (size_t j = 1; j < p->nlabels; j++)
            if (!strcmp(p->names[j], label) && !strcmp(p->values[j], value))
                return p;
    }
    return NULL;
}

static void collect_every_type(void **state) {
    (void)state;
    reg_options o = {0};
    reg_registry *r = reg_create(&o);
    reg_thread *t = reg_thread_attach(r);
    const char *lq[] = {"q"};
    const double buckets[] = {0.5, 1};
    const reg_objective obj[] = {{0.5, 0.05}};
    reg_family_def defs[] = {
        {.name = "jobs_total", .type = REG_COUNTER, .nlabels = 1, .labels = lq},
        {.name = "temp", .type = REG_GAUGE},
        {.name = "lat_seconds", .type = REG_HISTOGRAM, .nbuckets = 2, .buckets = buckets},
        {.name = "size_bytes", .type = REG_SUMMARY, .nobjectives = 1, .objectives = obj},
    };
    reg_family *f[4];
    reg_begin(t);
    for (int i = 0; i < 4; i++)
        assert_int_equal(reg_family_add(t, &defs[i], &f[i]), REG_OK);
    const char *a[] = {"a\"b"};
    assert_int_equal(reg_counter_add(t, f[0], a, 3), REG_OK);
    assert_int_equal(reg_gauge_set(t, f[1], NULL, -2.25), REG_OK);
    assert_int_equal(reg_observe(t, f[2], NULL, 0.7), REG_OK);
    assert_int_equal(reg_observe(t, f[3], NULL, 4), REG_OK);
    reg_end(t);
    rw_collection c;
    char err[128];
    assert_int_equal(rw_collect(exp_scrape_begin(r, EXP_FMT_TEXT, 0), &c, err, sizeof err), 0);
    const rw_point *p = find(&c, "jobs_total", "q", "a\"b"); /* unescaped */
    assert_non_null(p);
    assert_true(p->value == 3 && p->timestamp_ms == -1);
    assert_true(find(&c, "temp", NULL, NULL)->value == -2.25);
    assert_true(find(&c, "lat_seconds_bucket", "le", "0.5")->value == 0);
    assert_true(find(&c, "lat_seconds_bucket", "le", "1")->value == 1);
    assert_true(find(&c, "lat_seconds_bucket", "le", "+Inf")->value == 1);
    assert_true(find(&c, "lat_seconds_sum", NULL, NULL)->value == 0.7);
    assert_true(find(&c, "lat_seconds_count", NULL, NULL)->value == 1);
    assert_true(find(&c, "size_bytes", "quantile", "0.5")->value == 4);
    assert_true(find(&c, "size_bytes_sum", NULL, NULL)->value == 4);
    assert_true(find(&c, "size_bytes_count", NULL, NULL)->value == 1);
    assert_int_equal(c.n, 1 + 1 + 5 + 3);
    rw_collection_free(&c);
    reg_thread_detach(t);
    reg_destroy(r);
}

/* ---- series across collections -----------------------------------------------------------------
 */

/* A collection of points named by names[i] with one label site=x. */
static rw_collection points(size_t n, const char *const *names) {
    static const char *pn[8][2], *pv[8][2];
    rw_collection c = {.points = calloc(n, sizeof(rw_point)), .n = n};
    assert_non_null(c.points);
    for (size_t i = 0; i < n; i++) {
        pn[i][0] = "__name__";
        pv[i][0] = names[i];
        pn[i][1] = "site";
        pv[i][1] = "x";
        c.points[i] = (rw_point){2, pn[i], pv[i], (double)i, -1};
    }
    return c;
}

static void release_batch(rw_series_set *set, size_t n) {
    for (size_t i = 0; i < n; i++)
        rw_series_unref(set->batch[i].series);
}

static void series_set_staleness_and_time(void **state) {
    (void)state;
    rw_series_set set;
    assert_int_equal(rw_series_set_init(&set), 0);
    const cfg_label ext[] = {{"cluster", "c1"}, {"site", "ignored"}};
    rw_rules rules = {.external = ext, .nexternal = 2, .instance = "h:1"};
    const char *both[] = {"a", "b"}, *one[] = {"b"};
    rw_collection c = points(2, both);
    size_t lost = 0, n = rw_series_set_feed(&set, &c, &rules, 1000, &lost);
    assert_int_equal(n, 2);
    assert_int_equal(lost, 0);
    const rw_series *a = set.batch[0].series;
    /* Sorted; the point's own site wins over the external label; job and instance added. */
    const char *want[][2] = {{"__name__", "a"},
                             {"cluster", "c1"},
                             {"instance", "h:1"},
                             {"job", "abacus"},
                             {"site", "x"}};
    assert_int_equal(a->nlabels, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(a->names[i], want[i][0]);
        assert_string_equal(a->values[i], want[i][1]);
    }
    assert_int_equal(set.batch[0].timestamp_ms, 1000);
    release_batch(&set, n);
    free(c.points);

    /* "a" is gone: a staleness marker for it at the new collection's time, which is moved
     * after the previous one (the same wall-clock millisecond here). */
    c = points(1, one);
    n = rw_series_set_feed(&set, &c, &rules, 1000, &lost);
    assert_int_equal(n, 2);
    assert_string_equal(set.batch[0].series->values[0], "b");
    assert_int_equal(set.batch[0].timestamp_ms, 1001);
    assert_string_equal(set.batch[1].series->values[0], "a");
    assert_true(rw_is_stale_nan(set.batch[1].value));
    assert_int_equal(set.batch[1].timestamp_ms, 1001);
    release_batch(&set, n);
    /* Marked once: the next collection has no marker for it. */
    n = rw_series_set_feed(&set, &c, &rules, 5000, &lost);
    assert_int_equal(n, 1);
    release_batch(&set, n);
    free(c.points);
    rw_series_set_free(&set);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_round_trip),    cmocka_unit_test(relabel_rules),
        cmocka_unit_test(labels_sorted),        cmocka_unit_test(queue_bounded_in_order),
        cmocka_unit_test(queue_grows_in_order), cmocka_unit_test(backoff_doubles_with_jitter),
        cmocka_unit_test(collect_every_type),   cmocka_unit_test(series_set_staleness_and_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
