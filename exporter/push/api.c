/* api.c - the Pushgateway's JSON API: GET /api/v1/metrics (each group: its grouping labels,
 * last_push_successful, and its families by name, each with the time of the push that wrote
 * it, its type, help and series) and GET /api/v1/status. Numbers are strings as Go's %v
 * prints them; times are RFC 3339 in UTC with the fraction Go's RFC3339Nano keeps.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/expfmt.h"
#include "push/internal.h"

static void json_byte(FILE *out, unsigned char c);

/* s[0..n) as a JSON string, quotes included. Cannot fail (a stream error shows at fclose). */
static void json_string(FILE *out, const char *s, size_t n) {
    fputc('"', out);
    for (size_t i = 0; i < n; i++)
        json_byte(out, (unsigned char)s[i]);
    fputc('"', out);
}

static void json_cstring(FILE *out, const char *s) {
    json_string(out, s, strlen(s));
}

static void json_number(FILE *out, double v) {
    char num[32];
    size_t n = exp_format_go_float(v, num);
    json_string(out, num, n);
}

/* Wall-clock seconds as Go's RFC3339Nano in UTC: 2026-11-29T16:28:00.230526Z (trailing zeros
 * of the fraction dropped, none at all when whole). Cannot fail. */
static void json_time(FILE *out, double t) {
    time_t sec = (time_t)floor(t);
    long us = (long)llround((t - (double)sec) * 1e6);
    if (us >= 1000000) {
        sec++;
        us -= 1000000;
    }
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (us > 0) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, ".%06ld", us);
        while (buf[n - 1] == '0')
            n--;
    }
    buf[n++] = 'Z';
    json_string(out, buf, n);
}

/* One byte of a JSON string's contents, escaped. Cannot fail (stream errors show at fclose). */
static void json_byte(FILE *out, unsigned char c) {
    if (c == '"' || c == '\\')
        fprintf(out, "\\%c", c);
    else if (c == '\n')
        fputs("\\n", out);
    else if (c == '\t')
        fputs("\\t", out);
    else if (c == '\r')
        fputs("\\r", out);
    else if (c < 0x20)
        fprintf(out, "\\u%04x", c);
    else
        fputc(c, out);
}

/* Label text `a="x",b="y"` (text-format escapes) as a JSON object of unescaped values, each
 * value unescaped and escaped again byte by byte (no buffer: nothing to run out of). */
static void json_labels(FILE *out, const char *text, size_t len) {
    fputc('{', out);
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && text[i] != '=')
            i++;
        if (start > 0)
            fputc(',', out);
        json_string(out, text + start, i - start);
        fputs(":\"", out);
        for (i += 2; i < len && text[i] != '"'; i++) { /* after =" */
            if (text[i] == '\\' && i + 1 < len) {
                i++;
                json_byte(out, (unsigned char)(text[i] == 'n' ? '\n' : text[i]));
            } else {
                json_byte(out, (unsigned char)text[i]);
            }
        }
        fputc('"', out);
        i += 2; /* ", */
    }
    fputc('}', out);
}

static const char *type_upper(reg_type t) {
    static const char *const names[] = {"COUNTER", "GAUGE", "HISTOGRAM", "SUMMARY", "UNTYPED"};
    return (unsigned)t < 5 ? names[t] : "UNTYPED";
}

/* One series' values: "value", or buckets/quantiles with count and sum. */
static void json_values(FILE *out, reg_type type, const reg_push_series *x) {
    if (type != REG_HISTOGRAM && type != REG_SUMMARY) {
        fputs(",\"value\":", out);
        json_number(out, x->vals[0]);
        return;
    }
    fputs(type == REG_HISTOGRAM ? ",\"buckets\":{" : ",\"quantiles\":{", out);
    for (uint32_t k = 2; k + 1 < x->nvals; k += 2) {
        if (k > 2)
            fputc(',', out);
        char num[32];
        size_t n = exp_format_go_float(x->vals[k], num);
        json_string(out, num, n);
        fputc(':', out);
        json_number(out, x->vals[k + 1]);
    }
    fputs("},\"count\":", out);
    json_number(out, x->vals[1]);
    fputs(",\"sum\":", out);
    json_number(out, x->vals[0]);
}

/* "name":{"time_stamp":...,"type":...,"help":...,"metrics":[...]} for one pushed family. */
static void json_family(FILE *out, const reg_push_family *f) {
    json_cstring(out, f->name);
    fputs(":{\"time_stamp\":", out);
    json_time(out, f->time);
    fprintf(out, ",\"type\":\"%s\"", type_upper(f->type));
    if (f->help && *f->help) {
        fputs(",\"help\":", out);
        json_cstring(out, f->help);
    }
    fputs(",\"metrics\":[", out);
    for (size_t i = 0; i < f->nseries; i++) {
        const reg_push_series *x = &f->series[i];
        fputs(i ? ",{\"labels\":" : "{\"labels\":", out);
        json_labels(out, x->labels, x->labels_len);
        json_values(out, f->type, x);
        fputc('}', out);
    }
    fputs("]}", out);
}

/* A group's push-time gauge, in the shape of a family: its labels are the key's with
 * instance (exp_push_meta_labels). */
static void json_meta(FILE *out, const reg_group *g, const char *name, const char *help, double v) {
    size_t kl;
    const char *key = reg_group_key(g, &kl);
    char *labels = malloc(kl + EXP_PUSH_META_EXTRA);
    /* Out of memory: the key's labels alone, still valid JSON. */
    size_t n = labels ? exp_push_meta_labels(key, kl, labels) : kl;
    reg_push_series x = {labels ? labels : key, (uint32_t)n, 1, &v};
    reg_push_family f = {name, help, REG_GAUGE, reg_group_push_time(g), 1, &x};
    json_family(out, &f);
    free(labels);
}

static void json_group(FILE *out, const reg_group *g) {
    size_t kl;
    const char *key = reg_group_key(g, &kl);
    fputs("{\"labels\":", out);
    json_labels(out, key, kl);
    fprintf(out, ",\"last_push_successful\":%s",
            reg_group_failure_time(g) <= reg_group_push_time(g) ? "true" : "false");
    const reg_push_family *f = reg_group_families(g);
    for (size_t i = 0; i < reg_group_family_count(g); i++) {
        fputc(',', out);
        json_family(out, &f[i]);
    }
    fputc(',', out);
    json_meta(out, g, REG_PUSH_TIME_NAME,
              "Last Unix time when changing this group in the Pushgateway succeeded.",
              reg_group_push_time(g));
    fputc(',', out);
    json_meta(out, g, REG_PUSH_FAILURE_TIME_NAME,
              "Last Unix time when changing this group in the Pushgateway failed.",
              reg_group_failure_time(g));
    fputc('}', out);
}

/* Close the memory stream writing to *text: its text, or NULL (freed) when it failed.
 * *text is read only after fclose, which sets it. */
static char *finish(FILE *out, char **text) {
    int bad = ferror(out);
    if (fclose(out) != 0 || bad) {
        free(*text);
        return NULL;
    }
    return *text;
}

char *exp_push_api_metrics(reg_registry *r, size_t *len, unsigned *status) {
    reg_thread *t = reg_thread_attach(r);
    if (t == NULL)
        return NULL;
    reg_group **groups = NULL;
    size_t cap = 0;
    reg_begin(t);
    long n = reg_group_snapshot(t, &groups, &cap);
    reg_end(t);
    reg_thread_detach(t);
    char *text = NULL;
    FILE *out = n >= 0 ? open_memstream(&text, len) : NULL;
    if (out) {
        fputs("{\"status\":\"success\",\"data\":[", out);
        for (long i = 0; i < n; i++) {
            if (i)
                fputc(',', out);
            json_group(out, groups[i]);
        }
        fputs("]}", out);
        text = finish(out, &text);
    }
    if (n > 0)
        reg_group_release_all(r, groups, (size_t)n);
    free(groups);
    *status = 200;
    return text;
}

char *exp_push_api_status(double start_time, const char *const *flags, size_t nflags,
                          const char *version, const char *revision, size_t *len,
                          unsigned *status) {
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    if (out == NULL)
        return NULL;
    fputs("{\"status\":\"success\",\"data\":{\"build_information\":{\"branch\":\"\","
          "\"buildDate\":\"\",\"buildUser\":\"\",\"goVersion\":\"\",\"revision\":",
          out);
    json_cstring(out, revision);
    fputs(",\"version\":", out);
    json_cstring(out, version);
    fputs("},\"flags\":{", out);
    for (size_t i = 0; i < nflags; i++) {
        if (i)
            fputc(',', out);
        json_cstring(out, flags[2 * i]);
        fputc(':', out);
        json_cstring(out, flags[2 * i + 1]);
    }
    fputs("},\"start_time\":", out);
    json_time(out, start_time);
    fputs("}}", out);
    *status = 200;
    return finish(out, &text);
}
