/* expfmt.h - internal: the exposition formats (Prometheus text 0.0.4, OpenMetrics 1.0 text).
 *
 * A scrape streams the registry family by family into caller-sized chunks, optionally
 * gzip-compressed, so a scrape of a million series never holds the whole output in memory.
 * A scrape owns its own registry reader handle and holds one read-side section from
 * exp_scrape_begin to exp_scrape_end: it sees each family as one consistent snapshot (no
 * label set twice, cumulative histogram buckets) and never blocks updates.
 * One exp_scrape may be used by one thread at a time; any number may run concurrently.
 */
#ifndef ABACUS_EXPFMT_H
#define ABACUS_EXPFMT_H

#include <stddef.h>

#include "http/negotiate.h"
#include "registry.h"

typedef struct exp_scrape exp_scrape;

/* Start a scrape of r. NULL on allocation failure. */
exp_scrape *exp_scrape_begin(reg_registry *r, exp_format fmt, int gzip);
/* Write up to max bytes of output into buf. Returns the number written (> 0), 0 at the end,
 * -1 on error (allocation, the gzip encoder). */
long exp_scrape_read(exp_scrape *s, char *buf, size_t max);
/* Ends the section and frees everything; safe at any point of the scrape. */
void exp_scrape_end(exp_scrape *s);

/* Helpers shared with other output (landing page, tests). */
/* Shortest text that parses back to exactly v ("+Inf", "-Inf", "NaN" for the specials;
 * integers without exponent up to 1e15). Returns the length; buf needs 32 bytes. */
size_t exp_format_double(double v, char *buf);
/* v as Go prints a float64 with %v, strconv.FormatFloat(v, 'g', -1, 64): the shortest
 * digits, exponent form below 1e-4 and from 1e6 (1.795969680230527e+09), +Inf, -Inf, NaN.
 * Returns the length; buf needs 32 bytes. */
size_t exp_format_go_float(double v, char *buf);

#endif
