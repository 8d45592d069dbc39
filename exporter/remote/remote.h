/* remote.h - Prometheus remote write ("agent mode"): the registry sent to the receivers of the
 * configuration's `remote_write:` section, each every `interval`, as the series a scrape shows.
 *
 * A supervisor thread follows the configuration (it notices a reload by the state's
 * generation: a reload never waits for it), collects the registry when a receiver is due and
 * puts the samples into that receiver's bounded queue; one sender thread per receiver drains
 * its queue in order, retrying what may succeed later. Nothing here ever blocks a scrape, an
 * ingest listener or a reload: a stalled receiver fills its own queue, and what does not fit
 * is dropped and counted (abacus_remote_write_*).
 */
#ifndef ABACUS_EXPORTER_REMOTE_H
#define ABACUS_EXPORTER_REMOTE_H

#include <stdint.h>

#include "registry.h"
#include "selfmetrics.h"
#include "state.h"

/* How long stopping waits for queued samples to be delivered: at shutdown, and for a receiver
 * a reload removed. What is left then is dropped and counted. */
#define EXP_REMOTE_FLUSH_DEADLINE_NS (5ull * 1000000000ull)

typedef struct exp_remote exp_remote;

/* Start remote write for registry r following st's configuration (also when it has no
 * receivers: a reload may add some). self may be NULL; when given, process_* and the other
 * derived self-metrics are refreshed before each collection, as before a scrape. NULL with a
 * reason in err (out of memory, a thread or a self-metric family that cannot be made). */
exp_remote *exp_remote_start(reg_registry *r, exp_state *st, exp_self *self, char *err,
                             size_t errlen);
/* Stop collecting; every receiver sends what it has queued until deadline_ns from now, then
 * drops the rest (counted). Joins every thread and frees rm; NULL is a no-op. Cannot fail. */
void exp_remote_stop(exp_remote *rm, uint64_t deadline_ns);

#endif
