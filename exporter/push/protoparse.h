/* push/protoparse.h - the delimited protobuf format of pushed bodies: a sequence of
 * io.prometheus.client.MetricFamily messages (client_model's metrics.proto), each preceded by
 * its length as a varint, as client_golang's push package and the Pushgateway send them.
 *
 * The result is the text parser's (textparse.h: same structs, freed by exp_text_free), and
 * what it holds is what the Pushgateway 1.5.1 shows of the body on its text /metrics page:
 *   - a later family of the same name replaces an earlier one (Go keeps a map by name), in
 *     the earlier one's place; a family without metrics is left out (also when it replaced
 *     one with metrics);
 *   - a metric must carry the message of its family's type (a GAUGE family's metric a Gauge,
 *     and so on; the type defaults to COUNTER), else the push is refused as the Pushgateway's
 *     consistency check refuses it ("... is not a GAUGE"); the other messages are ignored;
 *   - histogram: sample_count, sample_sum and the classic buckets (cumulative_count,
 *     upper_bound); a +Inf bucket holding sample_count is added when none is sent (client_golang
 *     sends none; Go's text writer adds it). The native-histogram fields (schema, zero bucket,
 *     spans, deltas, counts, exemplars) are skipped, as the 1.5.1 text page does not show them.
 *     sample_count_float and cumulative_count_float, when > 0, override the integer counts
 *     (metrics.proto says so; the Pushgateway 1.5.1's text writer predates them and shows the
 *     integer ones: for integer histograms, which client_golang sends, the two agree);
 *   - summary: sample_count, sample_sum, the quantiles in the order sent; has_sum and
 *     has_count are always 1 for histograms and summaries (the text page always shows them);
 *   - help: NULL when absent or empty; timestamp_ms, even 0, sets has_timestamp (the push is
 *     then refused later, as by the Pushgateway); `line` of a metric is the 1-based position of
 *     its MetricFamily message in the body;
 *   - a label's name must be a valid label name and not reserved for the family's type
 *     (reg_reserved_label_name: "__" prefixes, le in a histogram, quantile in a summary or on
 *     any metric carrying a Summary), once per metric; its value valid UTF-8.
 * Decoding follows protobuf's wire format: fields in any order, repeated ones appended, a
 * singular scalar given twice keeps the last, a singular message given twice is merged;
 * unknown fields are skipped by wire type (0 varint, 1 fixed64, 2 length-delimited, 5
 * fixed32). Deliberate differences from Go, all refusals of what is malformed or unusable:
 *   - the Pushgateway stops quietly at a length prefix cut short or followed by no bytes at
 *     all; here a body must end exactly after a whole message;
 *   - wire types 3 and 4 (groups) are refused; a known field with the wrong wire type is
 *     refused (Go keeps it as an unknown field); a varint longer than 10 bytes, or over 64
 *     bits, field number 0 or above 2^29-1, a length prefix longer than 5 bytes (Go's
 *     varint32 limit), a length beyond its message are refused;
 *   - a type other than COUNTER, GAUGE, SUMMARY, UNTYPED, HISTOGRAM is refused ("unsupported
 *     metric type"; Go accepts it and then cannot render the family);
 *   - NUL bytes in names, help and label values are refused (the strings handed out are
 *     NUL-terminated); an invalid metric name is refused here rather than at scrape time;
 *   - what exp_text_limits bounds is an error (max_labels per metric at once; max_families and
 *     max_metrics on the result, after the replacements, at the end of the body).
 * No recursion beyond the fixed nesting of the messages (family, metric, histogram, bucket);
 * memory proportional to the input. Pure: any number of threads may parse at once.
 */
#ifndef ABACUS_PUSH_PROTOPARSE_H
#define ABACUS_PUSH_PROTOPARSE_H

#include <stddef.h>

#include "push/textparse.h"

/* Parse buf[0..len) (any bytes). lim may be NULL (no limits); err may be NULL or errlen 0.
 * Returns 0 and fills *out (free with exp_text_free); -1 with the message in err ("protobuf
 * format parsing error in metric family N at byte B: ...") and *out empty; -3 with a message
 * and *out empty when the body decodes but the Pushgateway's consistency check would refuse
 * it (the push then records its failure time); -2 when out of memory (err "out of memory",
 * *out empty). */
int exp_proto_parse(const char *buf, size_t len, const exp_text_limits *lim, exp_text_result *out,
                    char *err, size_t errlen);

/* 1 when the Content-Type header value selects the delimited protobuf format, decided as the
 * Pushgateway 1.5.1 does with Go's mime.ParseMediaType: the media type (before the first ';',
 * blanks trimmed, case-folded) is application/vnd.google.protobuf, the parameters parse
 * (tokens or quoted strings, names case-folded, RFC 2231 continuations joined, a name given
 * twice with different values is an error) and proto=io.prometheus.client.MetricFamily and
 * encoding=delimited (values exact). 0 otherwise and for NULL; -1 when out of memory. */
int exp_proto_content_type(const char *content_type);

#endif
