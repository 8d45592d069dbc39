/* gostrconv.h - Go's strconv.ParseFloat(s, 64), strconv.ParseInt(s, 10, 64) and
 * utf8.ValidString, exactly, on (pointer, length) ranges: the number and text rules of the Go
 * programs abacus stands in for (statsd_exporter, the Pushgateway). Pure functions: no state,
 * no allocation, callable from any thread. */
#ifndef ABACUS_GOSTRCONV_H
#define ABACUS_GOSTRCONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a parse returned, as Go's *NumError tells: ok, ErrSyntax, ErrRange. */
enum { EXP_GO_OK = 0, EXP_GO_SYNTAX, EXP_GO_RANGE };

/* strconv.ParseFloat(s[0..n), 64): decimal and hex floats with Go's literal syntax
 * (underscores between digits, a hex mantissa needs a 'p' exponent), "inf"/"infinity" with an
 * optional sign and "nan" without one, any case. Correctly rounded; an underflow is 0 and no
 * error. Returns EXP_GO_OK; EXP_GO_RANGE on overflow (*out ±Inf); EXP_GO_SYNTAX (*out 0). */
int exp_go_parse_float(const char *s, size_t n, double *out);

/* strconv.ParseInt(s[0..n), 10, 64). Returns EXP_GO_OK with *out set; EXP_GO_SYNTAX or
 * EXP_GO_RANGE with *out 0. */
int exp_go_parse_int64(const char *s, size_t n, int64_t *out);

/* utf8.ValidString: no overlong forms, no surrogates, nothing above U+10FFFF. Cannot fail. */
bool exp_go_utf8_valid(const unsigned char *s, size_t n);

#endif
