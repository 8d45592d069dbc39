/* push/textparse.h - the Prometheus text exposition format (0.0.4) parser for pushed bodies.
 *
 * It accepts and refuses what the Pushgateway 1.5.1 accepts and refuses: the rules are those of
 * prometheus/common v0.37.0's expfmt.TextParser, and its error messages are reproduced ("text
 * format parsing error in line N: ..."). So, as there:
 *   - every line ends with '\n', the last one too ("unexpected end of input stream"); only
 *     blanks may follow the last newline; '\r' is an ordinary byte (so CRLF bodies fail);
 *   - blanks are ' ' and '\t'; `#` lines other than `# HELP name text` / `# TYPE name type`
 *     (the keyword written exactly, `#HELP` works too) are ignored;
 *   - a family's HELP and TYPE come in any order, once each, TYPE before its first sample;
 *     `name_sum`, `name_count` (and `name_bucket`) samples and HELP/TYPE lines belong to
 *     family `name` when that is a summary (histogram) and no family is called by the full
 *     name; a `le` (`quantile`) label is a bound (quantile), not a label, on any sample of a
 *     histogram (summary); without it the sample is counted as a metric but adds no bucket;
 *   - counter, gauge and untyped samples are one metric each, even with equal labels; the
 *     samples of a histogram or summary with equal labels (in any order, anywhere in the body)
 *     are one metric, with the labels of its first sample;
 *   - numbers are Go's strconv.ParseFloat without 'p', 'P' or '_' (so no hex floats, no digit
 *     separators; `NaN`, `Inf`, `+inf`, `-Infinity` are fine; out of range like 1e400 is an
 *     error, an underflow is 0); timestamps are strconv.ParseInt (int64 milliseconds);
 *   - label values must be valid UTF-8; HELP text is not checked (as in Go).
 * Differences from Go, all deliberate:
 *   - a NUL byte anywhere is an error when the parser reaches it (the strings handed out are
 *     NUL-terminated); Go accepts it in label values, HELP and comments;
 *   - `# TYPE x gauge_histogram` is refused ("unsupported metric type"): Go accepts the word
 *     and then drops every sample value of the family without a word;
 *   - counts (bucket counts, _count) are kept as written; Go truncates them to uint64;
 *   - names longer than REG_MAX_NAME, and what exp_text_limits bounds, are errors;
 *   - in messages, %q quoting treats the runes above U+0377 as printable except a few format
 *     and private-use ranges (Go uses the full Unicode tables); a message longer than the
 *     caller's buffer is cut.
 * Pure: no shared state; any number of threads may parse at once.
 */
#ifndef ABACUS_PUSH_TEXTPARSE_H
#define ABACUS_PUSH_TEXTPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"

typedef struct {
    const char *name, *value; /* NUL-terminated; value unescaped, valid UTF-8 */
} exp_text_label;

/* One metric (a series): a counter/gauge/untyped sample, or the samples of one histogram or
 * summary series. */
typedef struct {
    size_t nlabels;
    exp_text_label *labels; /* as written, without le (histogram) / quantile (summary) */
    double value;           /* counter, gauge, untyped */
    size_t nbuckets;
    double *bounds, *counts; /* histogram, in the order written (duplicates kept) */
    size_t nquantiles;
    double *quantiles, *qvalues; /* summary, in the order written (duplicates kept) */
    double sum, count;           /* histogram, summary: the last _sum / _count written */
    int has_sum, has_count;
    int has_timestamp;    /* any sample of this metric carried a timestamp */
    int64_t timestamp_ms; /* the last one */
    unsigned line;        /* 1-based line of its first sample */
} exp_text_metric;

typedef struct {
    const char *name;
    const char *help; /* NULL when no HELP line (or an empty one); unescaped */
    reg_type type;    /* REG_UNTYPED without TYPE */
    size_t nmetrics;  /* >= 1: families without samples are left out, as in Go */
    exp_text_metric *metrics;
} exp_text_family;

typedef struct {
    exp_text_family *families; /* in order of first appearance (sample, HELP or TYPE line) */
    size_t nfamilies;
    void *arena; /* private: everything above lives in it */
} exp_text_result;

/* 0 = no limit. max_labels: labels kept per sample (le/quantile of a histogram/summary not
 * counted); max_families: families with samples; max_metrics: metrics in all families. */
typedef struct {
    size_t max_labels;
    size_t max_families;
    size_t max_metrics;
} exp_text_limits;

/* Parse buf[0..len) (need not be NUL-terminated; a NUL byte inside is an error). lim may be
 * NULL (no limits); err may be NULL or errlen 0 (no message). Returns 0 and fills *out; -1
 * with the message in err ("text format parsing error in line N: ...") and *out empty; -2
 * when out of memory (err "out of memory", *out empty). Memory used is proportional to len. */
int exp_text_parse(const char *buf, size_t len, const exp_text_limits *lim, exp_text_result *out,
                   char *err, size_t errlen);

/* Frees what a parse filled in and zeroes *r. Cannot fail; a zeroed result or NULL is fine. */
void exp_text_free(exp_text_result *r);

#endif
