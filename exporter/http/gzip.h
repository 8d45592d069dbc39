/* gzip.h - internal (exporter/http/): the gzip encoder of a scrape, a streaming deflate into
 * one gzip member that takes input and gives output in whatever pieces the caller has.
 *
 * It is ISA-L's igzip at level 1: on scrape text it is several times faster than zlib's
 * level 1 and compresses a little better (README, Benchmarks). One encoder per scrape; one
 * thread at a time.
 */
#ifndef ABACUS_EXPORTER_HTTP_GZIP_H
#define ABACUS_EXPORTER_HTTP_GZIP_H

#include <stddef.h>

typedef struct exp_gzip exp_gzip;

/* A new encoder with its whole state in one block (about 170 KB). NULL when out of memory. */
exp_gzip *exp_gzip_new(void);

/* Compress from in[0..in_len) into out[0..out_len). last: no input follows in[0..in_len), so
 * the member is finished (deflate end, CRC-32 and length trailer) once all of it is in.
 * Sets *in_used and *out_made; input not used must be offered again, unchanged, on the next
 * call. 0 on success; -1 on an encoder error, or when a call that could make progress (input
 * or the end to write, room for output) made none, so a caller's loop cannot spin. */
int exp_gzip_run(exp_gzip *z, const char *in, size_t in_len, int last, char *out, size_t out_len,
                 size_t *in_used, size_t *out_made);

/* 1 once the whole member, trailer included, has been handed out; 0 before. Cannot fail. */
int exp_gzip_finished(const exp_gzip *z);

/* Frees the encoder (NULL is allowed). Cannot fail. */
void exp_gzip_free(exp_gzip *z);

#endif
