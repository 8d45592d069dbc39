/* negotiate.h - which exposition format and encoding a scrape gets, from its Accept and
 * Accept-Encoding headers (exporter/http/negotiate.c). Pure functions: any thread. */
#ifndef ABACUS_EXPORTER_HTTP_NEGOTIATE_H
#define ABACUS_EXPORTER_HTTP_NEGOTIATE_H

typedef enum { EXP_FMT_TEXT = 0, EXP_FMT_OPENMETRICS } exp_format;

/* Pick the format from an Accept header (NULL = text). OpenMetrics when the header names
 * application/openmetrics-text (version 1.0.0 or none) with a q-value at least that of any
 * text/plain entry; text otherwise. Cannot fail. */
exp_format exp_negotiate(const char *accept);
/* The Content-Type for a format, e.g. "text/plain; version=0.0.4; charset=utf-8". */
const char *exp_content_type(exp_format fmt);
/* 1 when an Accept-Encoding header allows gzip (q > 0). */
int exp_accepts_gzip(const char *accept_encoding);

#endif
