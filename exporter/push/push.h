/* push.h - the Pushgateway-compatible push API (exporter/push/): PUT, POST and DELETE on
 * /metrics/job/<job>{/<label>/<value>}, the aggregating POST on /metrics/aggregate/job/...,
 * and the JSON API (/api/v1/metrics, /api/v1/status, /api/v1/admin/wipe). Pushed groups live
 * in the registry (reg_group_*); this module turns requests into them and answers as the
 * Pushgateway does. Independent of the HTTP server: the server hands over a complete request.
 * Any number of requests may be handled concurrently.
 */
#ifndef ABACUS_EXPORTER_PUSH_H
#define ABACUS_EXPORTER_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"

/* The push path prefixes, after which the grouping key follows. */
#define EXP_PUSH_PREFIX "/metrics/"
#define EXP_PUSH_AGGREGATE_PREFIX "/metrics/aggregate/"

/* 1 when path is a push path: /metrics/job/..., /metrics/job@base64/..., and the same after
 * /metrics/aggregate/. Cannot fail. */
int exp_push_is_path(const char *path);

typedef struct {
    const char *method;   /* PUT, POST, DELETE (others: 405) */
    const char *path;     /* decoded, starting with EXP_PUSH_PREFIX */
    const char *ttl;      /* the ttl query parameter (a duration), or NULL */
    const char *encoding; /* Content-Encoding, or NULL */
    /* Content-Type, or NULL: exp_proto_content_type picks the body parser */
    const char *content_type;
    const char *body;
    size_t len;
    uint64_t default_ttl_ns; /* push.group_ttl */
    size_t max_body;         /* largest body after decoding */
} exp_push_request;

/* What to answer. message is plain text (empty for a success without body). refused names
 * why a push was refused, for abacus_push_refused_total (NULL when it was not). */
typedef struct {
    unsigned status;
    const char *refused;
    const char *allow; /* an Allow header to send, or NULL */
    char message[1024];
} exp_push_answer;

/* Handle one push request on registry r. Cannot fail: out of memory is a 500 answer. Not
 * inside a registry section. */
void exp_push_handle(reg_registry *r, const exp_push_request *rq, exp_push_answer *ans);

/* The labels of a group's push_time_seconds and push_failure_time_seconds: its key's label
 * text with instance="" put in its sorted place when the key has no instance (as every
 * pushed series has one). out has room for key_len + EXP_PUSH_META_EXTRA bytes; returns the
 * length written (and a NUL after it). Cannot fail. */
#define EXP_PUSH_META_EXTRA 16
size_t exp_push_meta_labels(const char *key, size_t key_len, char *out);

/* The JSON API. Each returns a malloc'ed body (its length in *len) and sets *status, or NULL
 * when out of memory. start_time: process start (wall-clock seconds); flags: nflags pairs
 * of name and value (flags[2i], flags[2i+1]). Not inside a registry section. */
char *exp_push_api_metrics(reg_registry *r, size_t *len, unsigned *status);
char *exp_push_api_status(double start_time, const char *const *flags, size_t nflags,
                          const char *version, const char *revision, size_t *len, unsigned *status);

#endif
