/* fuzz_statsd.c - libFuzzer target: the StatsD line parser and both line splitters
 * (exporter/statsd/parse.h).
 *
 * Input: byte 0 selects the tag styles and how small the caller storage is, byte 1 the
 * splitter's max_line and chunk sizes; the rest is the data. Besides the sanitizers, every
 * promise of statsd/parse.h is checked (an abort is a finding):
 *   - datagram splitter: the lines joined with '\n' give back the packet exactly;
 *   - stream splitter: fed in chunks through a buffer of max_line + 1 bytes (as the TCP
 *     listener does), it yields exactly the lines and TOO_LONG reports a simple model of the
 *     documented rules predicts from the whole input;
 *   - parser: events within events_cap, names non-empty, label names valid, values
 *     non-empty and valid UTF-8, repeat >= 1, counters >= 0 or NaN, names and label values
 *     inside the line or the scratch buffer; the same line parsed twice gives the same events;
 *   - a plain decimal gauge value is bit for bit what strtod makes of it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statsd/parse.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_statsd: check failed at line %d: %s\n", __LINE__, #cond);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int inside(const char *p, size_t n, const char *base, size_t cap) {
    return p >= base && n <= cap && (size_t)(p - base) <= cap - n;
}

static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            c = (c << 6) | (s[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int valid_label_name(const char *s, size_t n) {
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

/* Parse one line with storage sized by mode; check the results. */
static void parse_checked(const exp_statsd_flags *fl, const char *line, size_t len, unsigned mode) {
    size_t ecap = EXP_STATSD_EVENTS_FOR(len), lcap = EXP_STATSD_MAX_TAGS_DEFAULT;
    size_t scap = EXP_STATSD_SCRATCH_FOR(len, lcap);
    if (mode & 1) { /* deliberately small storage: too_many_samples / out_of_space paths */
        ecap = 1 + (mode >> 1) % 4;
        lcap = (mode >> 3) % 5;
        scap = (mode >> 5) % 8 * 3;
    }
    exp_statsd_event *ev = malloc(ecap * sizeof *ev);
    exp_statsd_label *lab = malloc((lcap ? lcap : 1) * sizeof *lab);
    char *scratch = malloc(scap ? scap : 1);
    CHECK(ev && lab && scratch);
    exp_statsd_out out = {ev, ecap, lab, lcap, scratch, scap};
    exp_statsd_stats st = {0};
    size_t n = exp_statsd_parse_line(fl, line, len, &out, &st);
    CHECK(n <= ecap);
    CHECK(st.tags <= st.samples);
    for (size_t i = 0; i < n; i++) {
        const exp_statsd_event *e = &ev[i];
        CHECK(e->name.len > 0);
        CHECK(inside(e->name.ptr, e->name.len, line, len) ||
              inside(e->name.ptr, e->name.len, scratch, scap));
        CHECK(e->kind >= EXP_STATSD_COUNTER && e->kind <= EXP_STATSD_OBSERVER);
        CHECK(e->repeat >= 1);
        if (e->kind != EXP_STATSD_OBSERVER)
            CHECK(e->repeat == 1);
        if (e->kind == EXP_STATSD_COUNTER)
            CHECK(isnan(e->value) || e->value >= 0);
        CHECK(e->nlabels <= lcap);
        CHECK(e->nlabels == 0 || e->labels == lab);
        for (size_t j = 0; j < e->nlabels; j++) {
            const exp_statsd_label *l = &e->labels[j];
            /* Names may also be constants ("container_id" for `|c:`); ASan checks the reads. */
            CHECK(inside(l->value.ptr, l->value.len, line, len) ||
                  inside(l->value.ptr, l->value.len, scratch, scap));
            CHECK(valid_label_name(l->name.ptr, l->name.len));
            CHECK(l->value.len > 0);
            CHECK(valid_utf8((const unsigned char *)l->value.ptr, l->value.len));
            for (size_t k = 0; k < j; k++) /* distinct labels */
                CHECK(l->name.len != e->labels[k].name.len ||
                      memcmp(l->name.ptr, e->labels[k].name.ptr, l->name.len) != 0);
        }
    }
    /* Stateless: the same line again gives the same events. */
    exp_statsd_event *ev2 = malloc(ecap * sizeof *ev2);
    exp_statsd_label *lab2 = malloc((lcap ? lcap : 1) * sizeof *lab2);
    char *scratch2 = malloc(scap ? scap : 1);
    CHECK(ev2 && lab2 && scratch2);
    exp_statsd_out out2 = {ev2, ecap, lab2, lcap, scratch2, scap};
    exp_statsd_stats st2 = {0};
    size_t n2 = exp_statsd_parse_line(fl, line, len, &out2, &st2);
    CHECK(n2 == n);
    CHECK(memcmp(&st, &st2, sizeof st) == 0);
    for (size_t i = 0; i < n; i++) {
        CHECK(ev[i].name.len == ev2[i].name.len);
        CHECK(memcmp(ev[i].name.ptr, ev2[i].name.ptr, ev[i].name.len) == 0);
        CHECK(ev[i].kind == ev2[i].kind && ev[i].repeat == ev2[i].repeat);
        CHECK(memcmp(&ev[i].value, &ev2[i].value, sizeof(double)) == 0);
        CHECK(ev[i].nlabels == ev2[i].nlabels);
    }
    free(ev2);
    free(lab2);
    free(scratch2);
    free(ev);
    free(lab);
    free(scratch);
}

/* The datagram splitter gives back the packet when its lines are joined with '\n'. */
static void check_packet(const char *buf, size_t len) {
    exp_statsd_packet it;
    exp_statsd_packet_init(&it, buf, len);
    exp_statsd_str line;
    size_t off = 0, nlines = 0;
    while (exp_statsd_packet_next(&it, &line)) {
        if (nlines > 0) {
            CHECK(off < len && buf[off] == '\n');
            off++;
        }
        CHECK(line.len <= len - off);
        CHECK(line.ptr == buf + off);
        CHECK(memchr(line.ptr, '\n', line.len) == NULL);
        off += line.len;
        nlines++;
        CHECK(nlines <= len + 1);
    }
    CHECK(off == len);
    CHECK(nlines >= 1); /* an empty packet is one empty line */
}

/* What the stream splitter must produce, from the rules in statsd/parse.h. */
typedef struct {
    int too_long; /* 1: a TOO_LONG report instead of a line */
    const char *ptr;
    size_t len;
} sline;

static size_t model_stream(const char *buf, size_t len, size_t max_line, sline *out) {
    size_t n = 0, start = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        size_t l = i - start;
        if (l > max_line)
            out[n++] = (sline){1, NULL, 0};
        else
            out[n++] = (sline){0, buf + start, l > 0 && buf[i - 1] == '\r' ? l - 1 : l};
        start = i + 1;
    }
    if (start < len) {
        size_t l = len - start;
        out[n++] = l > max_line ? (sline){1, NULL, 0} : (sline){0, buf + start, l};
    }
    return n;
}

static void check_stream(const char *data, size_t len, unsigned sel) {
    static const size_t max_lines[] = {1, 2, 3, 5, 8, 16, 64, 1024};
    size_t max_line = max_lines[sel & 7];
    sline *want = malloc((len + 1) * sizeof *want);
    CHECK(want);
    size_t nwant = model_stream(data, len, max_line, want);

    /* Feed it as the TCP listener does: a buffer of at most max_line + 1 bytes, reads of
     * varying size, the unconsumed tail moved to the front. */
    size_t cap = max_line + 1;
    char *buf = malloc(cap);
    CHECK(buf);
    exp_statsd_stream s;
    exp_statsd_stream_init(&s, max_line);
    size_t blen = 0, fed = 0, got = 0;
    unsigned chunk = (sel >> 3) | 1;
    exp_statsd_str line;
    for (;;) {
        size_t room = cap - blen;
        size_t k = len - fed < room ? len - fed : room;
        if (k > chunk)
            k = chunk;
        if (k == 0 && fed == len)
            break;
        CHECK(k > 0); /* a full buffer is always consumed or discarded */
        memcpy(buf + blen, data + fed, k);
        blen += k;
        fed += k;
        chunk = chunk * 7 % 13 + 1;
        size_t pos = 0;
        for (;;) {
            exp_statsd_stream_status st = exp_statsd_stream_next(&s, buf, blen, &pos, &line);
            CHECK(pos <= blen);
            if (st == EXP_STATSD_STREAM_NEED_MORE)
                break;
            CHECK(got < nwant);
            if (st == EXP_STATSD_STREAM_TOO_LONG) {
                CHECK(want[got].too_long);
            } else {
                CHECK(st == EXP_STATSD_STREAM_LINE);
                CHECK(!want[got].too_long);
                CHECK(line.len == want[got].len);
                CHECK(memcmp(line.ptr, want[got].ptr, line.len) == 0);
            }
            got++;
        }
        memmove(buf, buf + pos, blen - pos);
        blen -= pos;
    }
    size_t pos = 0;
    exp_statsd_stream_status st = exp_statsd_stream_finish(&s, buf, blen, &pos, &line);
    CHECK(pos == blen);
    if (st == EXP_STATSD_STREAM_LINE) {
        CHECK(got < nwant && !want[got].too_long);
        CHECK(line.len == want[got].len && memcmp(line.ptr, want[got].ptr, line.len) == 0);
        got++;
    } else if (st == EXP_STATSD_STREAM_TOO_LONG) {
        CHECK(got < nwant && want[got].too_long);
        got++;
    }
    CHECK(got == nwant);
    free(buf);
    free(want);
}

/* "x:<v>|g" with v a plain decimal: the gauge value is exactly strtod(v). */
static void check_decimal(const char *v, size_t n) {
    if (n == 0 || n > 40)
        return;
    size_t i = 0, digits = 0;
    while (i < n && v[i] >= '0' && v[i] <= '9')
        i++, digits++;
    if (i < n && v[i] == '.') {
        i++;
        while (i < n && v[i] >= '0' && v[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return;
    if (i < n && (v[i] == 'e' || v[i] == 'E')) {
        size_t e = ++i;
        if (i < n && (v[i] == '+' || v[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && v[i] >= '0' && v[i] <= '9')
            i++;
        if (i == d || e == n)
            return;
    }
    if (i != n)
        return;
    char line[64], num[48];
    memcpy(num, v, n);
    num[n] = 0;
    int len = snprintf(line, sizeof line, "x:%s|g", num);
    exp_statsd_event ev[2];
    exp_statsd_label lab[1];
    char scratch[128];
    exp_statsd_out out = {ev, 2, lab, 1, scratch, sizeof scratch};
    exp_statsd_stats st = {0};
    size_t k = exp_statsd_parse_line(NULL, line, (size_t)len, &out, &st);
    double want = strtod(num, NULL);
    if (!isfinite(want)) { /* out of range: refused as malformed_value */
        CHECK(k == 0);
        return;
    }
    CHECK(k == 1 && ev[0].kind == EXP_STATSD_GAUGE);
    if (memcmp(&ev[0].value, &want, sizeof want) != 0) {
        fprintf(stderr, "fuzz_statsd: %s parsed as %.17g, strtod gives %.17g\n", num, ev[0].value,
                want);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    unsigned mode = data[0], sel = data[1];
    const char *buf = (const char *)data + 2;
    size_t len = size - 2;
    exp_statsd_flags fl = {mode & 0x10 ? 0 : 1, mode & 0x20 ? 0 : 1, mode & 0x40 ? 0 : 1,
                           mode & 0x80 ? 0 : 1};
    for (int r = -1; r <= EXP_STATSD_ERR_COUNT; r++)
        CHECK(exp_statsd_reason_name((exp_statsd_reason)r) != NULL);

    check_packet(buf, len);
    check_stream(buf, len, sel);

    /* Every line of the packet, with heap copies so ASan sees reads past the end. */
    exp_statsd_packet it;
    exp_statsd_packet_init(&it, buf, len);
    exp_statsd_str line;
    while (exp_statsd_packet_next(&it, &line)) {
        char *copy = malloc(line.len ? line.len : 1);
        CHECK(copy);
        memcpy(copy, line.ptr, line.len);
        parse_checked((mode & 0x0f) == 0x0f ? NULL : &fl, copy, line.len, mode);
        free(copy);
    }
    check_decimal(buf, len);
    return 0;
}
