/* wire.c - remote write's bytes: a WriteRequest built with protobuf-c from queued samples and
 * compressed with snappy's block format, as the remote write 1.0 specification requires.
 *
 * One TimeSeries per sample, in queue order, as Prometheus's own sender does: a receiver
 * appends them in order, so samples of one series stay in order without grouping. The message
 * structs point at the series' strings; nothing is copied before packing.
 */
#include <math.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "remote.pb-c.h"
#include "remote/internal.h"

/* Cannot fail. */
double rw_stale_nan(void) {
    uint64_t bits = RW_STALE_NAN_BITS;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Cannot fail. */
int rw_is_stale_nan(double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == RW_STALE_NAN_BITS;
}

/* Grow *p to hold n elements of size bytes. 0, or -1 when out of memory (*p unchanged). */
static int reserve(void **p, size_t *cap, size_t n, size_t size) {
    if (n <= *cap)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < n)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

/* The scratch arrays for n samples carrying nlabels labels in all. 0, or -1 (out of memory). */
static int reserve_scratch(rw_encoder *e, size_t n, size_t nlabels) {
    size_t ts_cap = e->ts_cap, labels_cap = e->labels_cap;
    /* ts: the TimeSeries, samples: the Samples, ptrs: one pointer per TimeSeries, Sample and
     * Label; labels: the Labels. Each array is grown with the same capacity rule. */
    size_t samples_cap = ts_cap, ptrs_cap = ts_cap + ts_cap + labels_cap;
    if (reserve(&e->ts, &ts_cap, n, sizeof(Prometheus__TimeSeries)) ||
        reserve(&e->samples, &samples_cap, n, sizeof(Prometheus__Sample)) ||
        reserve(&e->labels, &labels_cap, nlabels, sizeof(Prometheus__Label)))
        return -1;
    size_t want = 2 * ts_cap + labels_cap;
    if (reserve(&e->ptrs, &ptrs_cap, want, sizeof(void *)))
        return -1;
    e->ts_cap = ts_cap;
    e->labels_cap = labels_cap;
    return 0;
}

/* Returns the compressed length, or -1 when out of memory. */
long rw_encode(rw_encoder *e, const rw_sample *s, size_t n, const char **out, size_t *raw_len) {
    size_t nlabels = 0;
    for (size_t i = 0; i < n; i++)
        nlabels += s[i].series->nlabels;
    if (reserve_scratch(e, n ? n : 1, nlabels ? nlabels : 1))
        return -1;
    Prometheus__TimeSeries *ts = e->ts;
    Prometheus__Sample *sm = e->samples;
    Prometheus__Label *lb = e->labels;
    void **ptrs = e->ptrs;
    Prometheus__TimeSeries **tsp = (Prometheus__TimeSeries **)ptrs;
    Prometheus__Sample **smp = (Prometheus__Sample **)(ptrs + e->ts_cap);
    Prometheus__Label **lbp = (Prometheus__Label **)(ptrs + 2 * e->ts_cap);
    size_t li = 0;
    for (size_t i = 0; i < n; i++) {
        const rw_series *x = s[i].series;
        prometheus__time_series__init(&ts[i]);
        prometheus__sample__init(&sm[i]);
        sm[i].value = s[i].value;
        sm[i].timestamp = s[i].timestamp_ms;
        smp[i] = &sm[i];
        ts[i].n_samples = 1;
        ts[i].samples = &smp[i];
        ts[i].n_labels = x->nlabels;
        ts[i].labels = &lbp[li];
        for (size_t j = 0; j < x->nlabels; j++, li++) {
            prometheus__label__init(&lb[li]);
            /* protobuf-c's string fields are not const; packing only reads them. */
            lb[li].name = (char *)x->names[j];
            lb[li].value = (char *)x->values[j];
            lbp[li] = &lb[li];
        }
        tsp[i] = &ts[i];
    }
    Prometheus__WriteRequest req;
    prometheus__write_request__init(&req);
    req.n_timeseries = n;
    req.timeseries = tsp;
    size_t raw = prometheus__write_request__get_packed_size(&req);
    if (reserve((void **)&e->raw, &e->raw_cap, raw ? raw : 1, 1))
        return -1;
    prometheus__write_request__pack(&req, (uint8_t *)e->raw);
    size_t clen = snappy_max_compressed_length(raw);
    if (reserve((void **)&e->compressed, &e->compressed_cap, clen, 1))
        return -1;
    if (snappy_compress(e->raw, raw, e->compressed, &clen) != SNAPPY_OK)
        return -1;
    if (raw_len)
        *raw_len = raw;
    *out = e->compressed;
    return (long)clen;
}

/* Cannot fail. */
void rw_encoder_free(rw_encoder *e) {
    free(e->raw);
    free(e->compressed);
    free(e->ts);
    free(e->labels);
    free(e->samples);
    free(e->ptrs);
    memset(e, 0, sizeof *e);
}
