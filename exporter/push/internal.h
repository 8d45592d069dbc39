/* internal.h - what the files of the push API share (exporter/push/ only).
 *
 *   push.c       a push request from start to answer: path, body, registry, failure time
 *   path.c       the grouping key from a Pushgateway path (/metrics/job/<job>/<label>/<value>)
 *   body.c       a parsed text-format body into the registry's pushed families
 *   api.c        the JSON API: /api/v1/metrics, /api/v1/status
 *   textparse.c  the Prometheus text format (textparse.h)
 *   protoparse.c the delimited protobuf format (protoparse.h), chosen by Content-Type
 *   arena.c      the arena both parsers build their results in (arena.h)
 */
#ifndef ABACUS_EXPORTER_PUSH_INTERNAL_H
#define ABACUS_EXPORTER_PUSH_INTERNAL_H

#include <stddef.h>

#include "push/protoparse.h"
#include "push/push.h"
#include "push/textparse.h"
#include "registry.h"

#define PUSH_MAX_KEY_LABELS 32 /* labels in a grouping key (job included) */

/* A grouping key: its labels (unescaped, sorted by name, job included) and their rendered
 * text `a="x",job="j"` (the group's identity in the registry). Strings live in buf. */
typedef struct {
    size_t n;
    const char *names[PUSH_MAX_KEY_LABELS];
    const char *values[PUSH_MAX_KEY_LABELS];
    char *text; /* NUL-terminated */
    size_t text_len;
    int empty_instance; /* the path gave instance="": not in the key, yet it overrides the body's */
    char *buf;          /* owns every string above */
} push_key;

/* path.c */
/* Parse the part of a push path after "/metrics/" ("job/<job>{/<label>/<value>}", with
 * "@base64" suffixes) into key. 0; -1 with a message in err (a 400); -2 out of memory; -3
 * not a push path at all (an empty job segment, a "." or ".." segment: a 404). */
int push_key_parse(const char *path, push_key *key, char *err, size_t errlen);
/* Frees what push_key_parse made. Cannot fail; a zeroed key is fine. */
void push_key_free(push_key *key);

/* body.c */
/* The registry's families for a parsed body pushed to key: grouping labels set on every
 * series (overriding the body's), instance="" where absent, labels sorted, histogram and
 * summary values laid out as reg_push_series says. Checks what the Pushgateway refuses
 * (timestamps, label names, UTF-8, histograms without +Inf). 0 with *out filled (free with
 * push_families_free); -1 with a message in err (a 400); -2 out of memory. */
typedef struct {
    reg_push_family *families;
    size_t n;
    void *mem; /* private */
} push_families;
int push_families_build(const exp_text_result *parsed, const push_key *key, push_families *out,
                        char *err, size_t errlen);
void push_families_free(push_families *p);

#endif
