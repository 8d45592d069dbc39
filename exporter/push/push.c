/* push.c - one push request, from path and body to the registry and an answer
 * (exp_push_handle), with the Pushgateway's status codes: 200 for an applied PUT or POST,
 * 202 for DELETE (whether or not the group existed), 400 with a message for a bad path or
 * body or a conflict, 405 for other methods. A refused push of a valid grouping key still
 * records its time as the group's push_failure_time_seconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "config.h"
#include "push/internal.h"

/* Limits the parser holds a body to, besides its size. */
static const exp_text_limits parse_limits = {REG_MAX_LABELS, 0, 0};

static void answer(exp_push_answer *ans, unsigned status, const char *refused, const char *msg) {
    ans->status = status;
    ans->refused = refused;
    snprintf(ans->message, sizeof ans->message, "%s%s", msg, msg[0] ? "\n" : "");
}

/* Inflate a gzip (or zlib) body into a new buffer of at most max bytes. 0 with *out and
 * *outlen; -1 not gzip or corrupt; -3 larger than max once decoded; -2 out of memory. */
static int gunzip(const char *in, size_t inlen, size_t max, char **out, size_t *outlen) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
        return -2;
    size_t cap = inlen * 4 + 1024 < max + 1 ? inlen * 4 + 1024 : max + 1;
    char *buf = malloc(cap);
    int rc = buf ? 0 : -2;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)inlen;
    size_t n = 0;
    while (rc == 0) {
        if (n == cap) {
            if (cap > max) {
                rc = -3;
                break;
            }
            size_t nc = cap * 2 < max + 1 ? cap * 2 : max + 1;
            char *grown = realloc(buf, nc);
            if (grown == NULL) {
                rc = -2;
                break;
            }
            buf = grown;
            cap = nc;
        }
        zs.next_out = (Bytef *)buf + n;
        zs.avail_out = (uInt)(cap - n);
        int z = inflate(&zs, Z_NO_FLUSH);
        n = cap - zs.avail_out;
        if (z == Z_STREAM_END)
            break;
        if (z != Z_OK && !(z == Z_BUF_ERROR && zs.avail_out == 0))
            rc = -1;
    }
    inflateEnd(&zs);
    if (rc == 0 && n > max)
        rc = -3;
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

/* The registry's push mode for a method, or -1 when the method is not a push. */
static int push_mode(const char *method, int aggregate) {
    if (!strcmp(method, "POST"))
        return aggregate ? REG_PUSH_ADD : REG_PUSH_REPLACE_FAMILIES;
    if (!strcmp(method, "PUT") && !aggregate)
        return REG_PUSH_REPLACE_ALL;
    return -1;
}

/* Record a refused push as the group's failure time. Cannot fail (out of memory: not
 * recorded). */
static void record_failure(reg_registry *r, const push_key *key, double now, uint64_t ttl_ns) {
    reg_push p = {.key = key->text,
                  .key_len = key->text_len,
                  .nkey_names = key->n,
                  .key_names = key->names,
                  .mode = REG_PUSH_FAILED,
                  .time = now,
                  .ttl_ns = ttl_ns}; /* a group it creates expires like any other */
    reg_thread *t = reg_thread_attach(r);
    if (t == NULL)
        return;
    reg_begin(t);
    reg_group_push(t, &p, NULL, 0);
    reg_end(t);
    reg_thread_detach(t);
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define INCONSISTENT "pushed metrics are invalid or inconsistent with existing metrics: "

/* The body in the text or the protobuf format, gzip decoded when so encoded, parsed. 0 with
 * *parsed; else the answer is filled: a body that cannot be read changes nothing, as with
 * the Pushgateway, not even the failure time; one that decodes but the Pushgateway's
 * consistency check would refuse records it. */
static int read_body(reg_registry *r, const exp_push_request *rq, const push_key *key,
                     exp_text_result *parsed, exp_push_answer *ans) {
    const char *body = rq->body;
    size_t len = rq->len;
    char *decoded = NULL;
    if (rq->encoding && strcasecmp(rq->encoding, "identity") != 0) {
        int rc =
            strcasecmp(rq->encoding, "gzip") ? -1 : gunzip(body, len, rq->max_body, &decoded, &len);
        if (rc == -2)
            answer(ans, 500, "out_of_memory", "out of memory");
        else if (rc == -3)
            answer(ans, 413, "too_large", "request body too large once decoded");
        else if (rc != 0)
            answer(ans, 400, "invalid_body", "unexpected EOF: the body is not valid gzip");
        if (rc != 0)
            return -1;
        body = decoded;
    }
    char why[768];
    int proto = exp_proto_content_type(rq->content_type);
    int rc = proto < 0   ? -2
             : proto > 0 ? exp_proto_parse(body, len, &parse_limits, parsed, why, sizeof why)
                         : exp_text_parse(body, len, &parse_limits, parsed, why, sizeof why);
    free(decoded);
    if (rc == -2) {
        answer(ans, 500, "out_of_memory", "out of memory");
    } else if (rc == -3) {
        record_failure(r, key, wall_now(), rq->default_ttl_ns);
        char msg[900];
        snprintf(msg, sizeof msg, INCONSISTENT "%s", why);
        answer(ans, 400, "invalid_body", msg);
    } else if (rc != 0) {
        answer(ans, 400, "invalid_body", why);
    }
    return rc == 0 ? 0 : -1;
}

/* Apply a parsed body to the group of key. Fills ans; a refusal records the group's failure
 * time. */
static void apply_body(reg_registry *r, const exp_text_result *parsed, const push_key *key,
                       reg_push_mode mode, uint64_t ttl_ns, exp_push_answer *ans) {
    double now = wall_now();
    char why[768];
    push_families fams = {0};
    int rc = push_families_build(parsed, key, &fams, why, sizeof why);
    if (rc == -2) {
        answer(ans, 500, "out_of_memory", "out of memory");
        return;
    }
    char msg[900];
    if (rc != 0) {
        record_failure(r, key, now, ttl_ns);
        snprintf(msg, sizeof msg, INCONSISTENT "%s", why);
        {
            answer(ans, 400, "invalid_body", msg);
            return;
        }
    }
    reg_push p = {.key = key->text,
                  .key_len = key->text_len,
                  .nkey_names = key->n,
                  .key_names = key->names,
                  .mode = mode,
                  .nfamilies = fams.n,
                  .families = fams.families,
                  .time = now,
                  .ttl_ns = ttl_ns};
    reg_thread *t = reg_thread_attach(r);
    int reg_rc = REG_ENOMEM;
    if (t) {
        reg_begin(t);
        reg_rc = reg_group_push(t, &p, why, sizeof why);
        reg_end(t);
        reg_thread_detach(t);
    }
    push_families_free(&fams);
    if (reg_rc == REG_OK) {
        answer(ans, 200, NULL, "");
        return;
    }
    if (reg_rc == REG_ENOMEM) {
        answer(ans, 500, "out_of_memory", "out of memory");
        return;
    }
    record_failure(r, key, now, ttl_ns);
    snprintf(msg, sizeof msg, INCONSISTENT "%s", why);
    answer(ans, 400,
           reg_rc == REG_ELIMIT      ? "series_limit"
           : reg_rc == REG_ECONFLICT ? "conflict"
                                     : "invalid_body",
           msg);
}

int exp_push_is_path(const char *path) {
    static const char *const prefixes[] = {EXP_PUSH_AGGREGATE_PREFIX, EXP_PUSH_PREFIX};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(path, prefixes[i], n) != 0)
            continue;
        const char *rest = path + n;
        if (!strncmp(rest, "job/", 4) || !strncmp(rest, "job@base64/", 11))
            return 1;
    }
    return 0;
}

void exp_push_handle(reg_registry *r, const exp_push_request *rq, exp_push_answer *ans) {
    int aggregate =
        !strncmp(rq->path, EXP_PUSH_AGGREGATE_PREFIX, strlen(EXP_PUSH_AGGREGATE_PREFIX));
    const char *rest = rq->path + strlen(aggregate ? EXP_PUSH_AGGREGATE_PREFIX : EXP_PUSH_PREFIX);
    const char *allow = aggregate ? "OPTIONS, POST" : "DELETE, OPTIONS, POST, PUT";
    int del = !strcmp(rq->method, "DELETE") && !aggregate;
    int mode = push_mode(rq->method, aggregate);
    ans->allow = NULL;
    if (!strcmp(rq->method, "OPTIONS")) {
        answer(ans, 200, NULL, "");
        ans->allow = allow;
        return;
    }
    if (!del && mode < 0) {
        answer(ans, 405, "method", "Method Not Allowed");
        ans->allow = allow;
        return;
    }
    push_key key;
    char why[512];
    int rc = push_key_parse(rest, &key, why, sizeof why);
    if (rc == -2) {
        answer(ans, 500, "out_of_memory", "out of memory");
        return;
    }
    if (rc == -3) {
        answer(ans, 404, "invalid_path", "404 page not found");
        return;
    }
    if (rc != 0) {
        answer(ans, 400, "invalid_path", why);
        return;
    }
    uint64_t ttl_ns = rq->default_ttl_ns;
    if (del) {
        reg_group_delete(r, key.text, key.text_len);
        answer(ans, 202, NULL, "");
    } else if (rq->ttl && cfg_parse_duration(rq->ttl, &ttl_ns) != 0) {
        snprintf(why, sizeof why, "invalid ttl \"%.100s\": a duration such as 30s, 5m or 1h",
                 rq->ttl);
        answer(ans, 400, "invalid_ttl", why);
    } else {
        exp_text_result parsed;
        if (read_body(r, rq, &key, &parsed, ans) == 0) {
            apply_body(r, &parsed, &key, (reg_push_mode)mode, ttl_ns, ans);
            exp_text_free(&parsed);
        }
    }
    push_key_free(&key);
}
