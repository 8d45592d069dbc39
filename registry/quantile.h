/* quantile.h - internal: a targeted-quantile stream over sliding age buckets (summaries).
 *
 * The algorithm client_golang uses for Summary: Cormode-Korn-Muthukrishnan-Srivastava
 * "targeted quantiles" streams, one per age bucket; observations go to every bucket's
 * stream, queries read the oldest live bucket, and buckets rotate every max_age/age_buckets.
 * Not thread-safe: the registry serialises calls with the series' summary lock.
 */
#ifndef ABACUS_REGISTRY_QUANTILE_H
#define ABACUS_REGISTRY_QUANTILE_H

#include "registry.h"

typedef struct reg_qstream reg_qstream;

/* NULL on allocation failure. objectives are copied. max_age_ns 0 = 10 min, age_buckets 0 = 5,
 * buf_cap 0 = 500. */
reg_qstream *reg_qstream_create(const reg_objective *objectives, size_t n, uint64_t max_age_ns,
                                unsigned age_buckets, unsigned buf_cap, uint64_t now_ns);
void reg_qstream_destroy(reg_qstream *q);
/* Record v at time now_ns (monotonic). Cannot fail (allocation failure drops the sample from
 * the quantile estimate only). */
void reg_qstream_observe(reg_qstream *q, double v, uint64_t now_ns);
/* Estimates for each objective, in the order given at creation; NaN when the window is empty. */
void reg_qstream_query(reg_qstream *q, uint64_t now_ns, double *out);

/* Snapshots (registry/snapshot.c). wall_offset_ns is wall-clock minus monotonic time, in
 * ns, at the write or the load: the window's position is saved in wall-clock time.
 * Encode: the whole state, exactly (no rotation, no merge). Cannot fail. */
void reg_qstream_encode(const reg_qstream *q, reg_snapshot *w, int64_t wall_offset_ns);
/* Decode a state written for a family defined by d; out NULL checks only. A window whose
 * head expired meanwhile slides as it would have. Returns 0, or -1 when malformed (r->bad
 * set) or out of memory (r->bad clear). */
int reg_qstream_decode(reg_snapshot_reader *r, const reg_family_def *d, int64_t wall_offset_ns,
                       uint64_t now_ns, reg_qstream **out);

#endif
