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

#endif
