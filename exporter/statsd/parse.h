/* statsd/parse.h - internal: the StatsD line parser and line splitters of the ingest listeners.
 *
 * Semantics follow prometheus/statsd_exporter (pkg/line, pkg/listener) so that clients and
 * their quirks behave the same: `name:value|type[|@rate][|#tags][|c:container][|T<ts>]`,
 * several samples per line (`a:1|c:2|g`), DogStatsD extended aggregation (`a:1:2:3|ms`),
 * tag styles DogStatsD (`|#k:v`), InfluxDB (`name,k=v`), Librato (`name#k=v`) and SignalFx
 * (`name[k=v]rest`). Differences from statsd_exporter, all deliberate:
 *   - a negative counter increment (after the sample rate) is refused here with
 *     illegal_negative_counter; statsd_exporter refuses it later, after mapping;
 *   - sets are refused as unsupported_set (statsd_exporter counts them as illegal_event);
 *   - a name that is empty once its tags are removed (`[a=b]:1|c`) is refused as empty_name;
 *   - `]` before `[` in a name is a tag error and the name stays as sent (statsd_exporter
 *     panics on it);
 *   - bounded storage: too_many_tags, too_many_samples, out_of_space (see exp_statsd_out);
 *   - an observer's 1/rate repetitions are one event with `repeat` set, not `repeat` copies;
 *   - a counter's or observer's `@rate` outside (0, 1] (NaN, Inf, negative, above 1) or one so
 *     small that 1/rate observations overflow a count refuses the sample as
 *     invalid_sample_rate (statsd_exporter divides a counter by it, and makes int(1/rate)
 *     observations: none at all for most such rates, without counting anything);
 *   - a `|field` abacus does not know (`|card:low`, future DogStatsD extensions) is skipped
 *     and counted in unknown_fields, and the sample kept (statsd_exporter drops the sample as
 *     invalid_sample_factor, or malformed_container_id for fields starting with 'c');
 *   - an unparsable `|T` timestamp is counted as malformed_timestamp, the sample kept.
 *
 * No allocation: events, labels and escaped label names go to caller-provided storage; names
 * and values point into the line. The parser keeps no state; it may run on any number of
 * threads at once, each with its own exp_statsd_out.
 */
#ifndef ABACUS_STATSD_PARSE_H
#define ABACUS_STATSD_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXP_STATSD_MAX_LINE_DEFAULT 65536 /* bytes; longer TCP lines are dropped */
#define EXP_STATSD_MAX_TAGS_DEFAULT 64    /* labels per line */

/* A byte range; not NUL-terminated, may contain NUL bytes. */
typedef struct {
    const char *ptr;
    size_t len;
} exp_statsd_str;

/* Why a line, sample or tag set was refused. Every reason drops what it names: the line or
 * the sample, except invalid_sample_factor (an unparsable `@rate`: the sample is kept with
 * rate 1, as in statsd_exporter) and malformed_timestamp (an unparsable `|T`: only the
 * timestamp, which abacus ignores anyway, is dropped; statsd_exporter does not look at it).
 * Names (exp_statsd_reason_name) are statsd_exporter's where it has one. */
typedef enum {
    EXP_STATSD_ERR_MALFORMED_LINE = 0,       /* no ':', nothing before it, or invalid UTF-8 */
    EXP_STATSD_ERR_MIXED_TAGGING_STYLES,     /* name tags together with `|#` tags */
    EXP_STATSD_ERR_NOT_ENOUGH_PARTS,         /* no '|' after the first ':' */
    EXP_STATSD_ERR_INVALID_EXTENDED_AGG,     /* `a:1:2|c`: several values need ms, h or d */
    EXP_STATSD_ERR_EMPTY_NAME,               /* name empty once its tags are removed */
    EXP_STATSD_ERR_MALFORMED_COMPONENT,      /* fewer than 2 or more than 8 '|' parts, or empty */
    EXP_STATSD_ERR_MALFORMED_VALUE,          /* not a Go ParseFloat number, or out of range */
    EXP_STATSD_ERR_INVALID_SAMPLE_FACTOR,    /* unparsable `@rate` (the sample is kept) */
    EXP_STATSD_ERR_MALFORMED_CONTAINER_ID,   /* `|c` or `|c:` without an id */
    EXP_STATSD_ERR_MALFORMED_TIMESTAMP,      /* `|T` not followed by an int64 (sample kept) */
    EXP_STATSD_ERR_ILLEGAL_EVENT,            /* unknown type */
    EXP_STATSD_ERR_UNSUPPORTED_SET,          /* type `s` */
    EXP_STATSD_ERR_ILLEGAL_NEGATIVE_COUNTER, /* counter increment < 0 */
    EXP_STATSD_ERR_TOO_MANY_TAGS,            /* more distinct labels than out->labels_cap */
    EXP_STATSD_ERR_TOO_MANY_SAMPLES,         /* more events than out->events_cap */
    EXP_STATSD_ERR_OUT_OF_SPACE,             /* out->scratch too small */
    EXP_STATSD_ERR_LINE_TOO_LONG,            /* stream splitter: line over max_line */
    EXP_STATSD_ERR_INVALID_SAMPLE_RATE,      /* counter or observer `@rate` not in (0, 1], or
                                                so small that 1/rate observations overflow */
    EXP_STATSD_ERR_COUNT
} exp_statsd_reason;

/* snake_case name of a reason for a `reason` label ("malformed_line", ...); "unknown" for a
 * value out of range. Cannot fail. */
const char *exp_statsd_reason_name(exp_statsd_reason r);

/* Tag styles to parse; a disabled style stays part of the name (DogStatsD: ignored). */
typedef struct {
    bool dogstatsd, influxdb, librato, signalfx;
} exp_statsd_flags;

/* All four styles on (statsd_exporter's defaults). Cannot fail. */
exp_statsd_flags exp_statsd_flags_default(void);

typedef enum {
    EXP_STATSD_COUNTER = 0, /* add value (>= 0 or NaN) */
    EXP_STATSD_GAUGE,       /* set to value */
    EXP_STATSD_GAUGE_DELTA, /* add value (the value was sent with a leading '+' or '-') */
    EXP_STATSD_OBSERVER     /* observe value `repeat` times (types ms, h, d) */
} exp_statsd_kind;

typedef struct {
    exp_statsd_str name;  /* a valid label name, e.g. "_09digits" for tag `09digits` */
    exp_statsd_str value; /* as sent, non-empty, valid UTF-8 */
} exp_statsd_label;

typedef struct {
    exp_statsd_str name; /* as sent, without tags; not escaped; non-empty */
    exp_statsd_kind kind;
    bool from_ms;                   /* type ms: value already converted to seconds */
    double value;                   /* counters: already divided by the sample rate */
    uint64_t repeat;                /* observers: int(1/rate) >= 1; otherwise 1 */
    const exp_statsd_label *labels; /* the line's labels, shared by all its events */
    size_t nlabels;
} exp_statsd_event;

/* Caller storage for one line. Sizes that can never run out for a line of len bytes:
 * events_cap >= EXP_STATSD_EVENTS_FOR(len), scratch_cap >= EXP_STATSD_SCRATCH_FOR(len, labels_cap).
 * Smaller is allowed: what does not fit is refused with too_many_samples / out_of_space. */
typedef struct {
    exp_statsd_event *events;
    size_t events_cap;
    exp_statsd_label *labels;
    size_t labels_cap; /* at most this many distinct labels per line (too_many_tags) */
    char *scratch;     /* escaped label names, SignalFx names joined around their tags */
    size_t scratch_cap;
} exp_statsd_out;

#define EXP_STATSD_EVENTS_FOR(len) ((len) / 2 + 1)
#define EXP_STATSD_SCRATCH_FOR(len, labels_cap) ((len) + (labels_cap) + 1)

/* Counters the parser adds to (never resets), statsd_exporter's telemetry in one struct. */
typedef struct {
    uint64_t samples;        /* samples seen in lines that got past the line checks */
    uint64_t tags;           /* samples accepted with at least one label */
    uint64_t tag_errors;     /* tags skipped as malformed (empty, no separator, empty key/value) */
    uint64_t unknown_fields; /* `|field` parts abacus does not know (`|card:low`), skipped */
    uint64_t errors[EXP_STATSD_ERR_COUNT];
} exp_statsd_stats;

/* Parse one line (without its '\n') into out->events. flags NULL = all styles on; out and
 * stats are required. Returns the number of events written; it never fails otherwise: refused
 * lines, samples and tags are counted in *stats (an empty line counts nothing). Names and
 * labels point into line or out->scratch: valid while both are, until the next call with out. */
size_t exp_statsd_parse_line(const exp_statsd_flags *flags, const char *line, size_t len,
                             const exp_statsd_out *out, exp_statsd_stats *stats);

/* How the one sample of a line turns its value into its event, so that a caller who
 * remembers a line can take the same line with another value without parsing it again
 * (exp_statsd_replay). The value is the bytes between the line's first ':' and the first '|'
 * after it. */
typedef struct {
    bool replayable; /* one sample, one event, at most one rate */
    bool tagged;     /* the sample had labels (counted in tags) */
    uint8_t type;    /* what the type makes of the value (parse.c) */
    bool ms;         /* type ms: the value is converted to seconds */
    uint8_t nrates;  /* 0 or 1 when replayable */
    double rate;
    uint64_t repeat; /* observers: int(1/rate) */
    /* what else parsing the line counted: malformed tags, unknown fields, unparsable rates
     * and timestamps (the sample kept) */
    unsigned tag_errors, unknown, bad_rates, bad_timestamps;
    bool counted_more; /* one of them is not 0 */
} exp_statsd_shape;

/* exp_statsd_parse_line, also filling *shape (not NULL): whether the line is replayable, and
 * if so its sample's shape. Cannot fail. */
size_t exp_statsd_parse_line_shape(const exp_statsd_flags *flags, const char *line, size_t len,
                                   const exp_statsd_out *out, exp_statsd_stats *stats,
                                   exp_statsd_shape *shape);

/* The event of a line of replayable shape sh whose value is now val[0..vn) (every other byte
 * the same as in the line parsed): its kind, value, from_ms and repeat into *ev (its name and
 * labels untouched). true when parsing the line would give that event; false when it would
 * not (the value is not a number, or makes a counter go down): parse the line then. Counts
 * nothing (exp_statsd_replay_count does). Cannot fail. */
bool exp_statsd_replay(const exp_statsd_shape *sh, const char *val, size_t vn,
                       exp_statsd_event *ev);

/* Count a replayed line's sample in stats as parsing it would. Cannot fail. */
void exp_statsd_replay_count(const exp_statsd_shape *sh, exp_statsd_stats *stats);

/* ---- splitting ---------------------------------------------------------------------------- */

/* Lines of one datagram (UDP, unixgram), as statsd_exporter splits them: every piece between
 * '\n' is a line, kept as is ('\r' included); "a\n" is "a" then "", and an empty packet is
 * one empty line. */
typedef struct {
    const char *p, *end;
    bool done;
} exp_statsd_packet;

/* Start iterating buf[0..len). Cannot fail. */
void exp_statsd_packet_init(exp_statsd_packet *it, const char *buf, size_t len);
/* Next line into *line; false when there are no more. Cannot fail. */
bool exp_statsd_packet_next(exp_statsd_packet *it, exp_statsd_str *line);

/* Lines of a byte stream (TCP). A line ends at '\n'; a '\r' just before it is removed (as
 * Go's bufio.ReadLine does). A line whose bytes before '\n' exceed max_line is dropped and
 * reported once as TOO_LONG; the stream resynchronises after its '\n'. */
typedef struct {
    size_t max_line;
    size_t scanned; /* bytes after *pos already searched for '\n' */
    bool discarding;
} exp_statsd_stream;

typedef enum {
    EXP_STATSD_STREAM_NEED_MORE = 0, /* no complete line: keep buf[*pos..len), read more */
    EXP_STATSD_STREAM_LINE,          /* *line is the next line */
    EXP_STATSD_STREAM_TOO_LONG       /* a line over max_line was dropped: count line_too_long */
} exp_statsd_stream_status;

/* max_line 0 = EXP_STATSD_MAX_LINE_DEFAULT. Cannot fail. */
void exp_statsd_stream_init(exp_statsd_stream *s, size_t max_line);

/* Next event from buf[*pos..len); advances *pos past what it consumed. Call until NEED_MORE,
 * then keep the unconsumed tail (e.g. move it to the front and set *pos = 0), append newly
 * read bytes after it and call again. The buffer must hold at least max_line + 1 bytes, or a
 * line of exactly max_line bytes can never be completed. Cannot fail. */
exp_statsd_stream_status exp_statsd_stream_next(exp_statsd_stream *s, const char *buf, size_t len,
                                                size_t *pos, exp_statsd_str *line);

/* At end of stream: the unterminated tail buf[*pos..len), if any, as a last LINE (kept as is,
 * like bufio.ReadLine at EOF); NEED_MORE when there is none or it was being discarded.
 * Consumes everything and resets *s. Cannot fail. */
exp_statsd_stream_status exp_statsd_stream_finish(exp_statsd_stream *s, const char *buf, size_t len,
                                                  size_t *pos, exp_statsd_str *line);

#endif
