/* remote.c - the `remote_write` section: one entry per receiver of Prometheus remote write,
 * with Prometheus's keys where abacus does what they mean, checked like the rest of the file
 * (every problem with its position), and the comparisons a reload uses to keep queues.
 *
 * What is refused: keys Prometheus has but abacus does not honour (they are unknown keys),
 * relabel actions other than replace, keep and drop, both a secret and its file, basic_auth
 * together with authorization, headers that the protocol or the client set themselves.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "internal.h"
#include "walk.h"
#include "yaml_tree.h"

#define SECOND_NS 1000000000ull
#define MS_NS 1000000ull
#define MAX_CAPACITY 100000000u /* samples one queue may hold (2.4 GB): a typo's bound */
#define MAX_PER_SEND 1000000u   /* samples per request: the sender holds a copy of them */

enum {
    RW_NAME,
    RW_URL,
    RW_TIMEOUT,
    RW_HEADERS,
    RW_BASIC,
    RW_AUTHZ,
    RW_TLS,
    RW_RELABEL,
    RW_QUEUE,
    RW_INTERVAL,
    RW_EXTERNAL,
    RW_N
};
static const char *const rw_keys[RW_N] = {
    "name",         "url",           "remote_timeout", "headers",
    "basic_auth",   "authorization", "tls_config",     "write_relabel_configs",
    "queue_config", "interval",      "external_labels"};

enum { QC_CAPACITY, QC_MAXSEND, QC_DEADLINE, QC_MINBACK, QC_MAXBACK, QC_RETRY429, QC_N };
static const char *const qc_keys[QC_N] = {
    "capacity",    "max_samples_per_send", "batch_send_deadline",
    "min_backoff", "max_backoff",          "retry_on_http_429"};

enum { BA_USER, BA_PASSWORD, BA_PASSWORD_FILE, BA_N };
static const char *const ba_keys[BA_N] = {"username", "password", "password_file"};

enum { AZ_TYPE, AZ_CREDENTIALS, AZ_CREDENTIALS_FILE, AZ_N };
static const char *const az_keys[AZ_N] = {"type", "credentials", "credentials_file"};

enum { TC_CA, TC_CERT, TC_KEY, TC_SERVER_NAME, TC_INSECURE, TC_N };
static const char *const tc_keys[TC_N] = {"ca_file", "cert_file", "key_file", "server_name",
                                          "insecure_skip_verify"};

enum { RL_SOURCE, RL_SEPARATOR, RL_REGEX, RL_TARGET, RL_REPLACEMENT, RL_ACTION, RL_N };
static const char *const rl_keys[RL_N] = {"source_labels", "separator",   "regex",
                                          "target_label",  "replacement", "action"};

/* Headers a configuration may not set: the protocol's own, and those the client writes. */
static const char *const reserved_headers[] = {"Authorization",
                                               "Host",
                                               "Content-Encoding",
                                               "Content-Length",
                                               "Content-Type",
                                               "User-Agent",
                                               "Connection",
                                               "Keep-Alive",
                                               "Proxy-Authorization",
                                               "Transfer-Encoding",
                                               "X-Prometheus-Remote-Write-Version",
                                               NULL};

/* One entry's load: the report and the file it resolves paths against. */
typedef struct {
    cfg_yaml_report *r;
    const char *file;
} rw_loader;

/* ---- small reads -------------------------------------------------------------------------- */

/* A string field, "" meaning absent; file keys are resolved against the file. 1 set, 0 absent,
 * -1 reported. */
static int read_text(rw_loader *l, cfg_fields *f, int i, int is_file, char **out) {
    int rc = cfg_field_string(f, i, out);
    if (rc > 0 && !**out) {
        free(*out);
        *out = NULL;
        return 0;
    }
    if (rc > 0 && is_file)
        cfg_resolve_against(l->r, l->file, out);
    return rc;
}

/* A duration field that must be above zero. 1 set, 0 absent, -1 reported. */
static int read_positive_duration(rw_loader *l, cfg_fields *f, int i, uint64_t *out) {
    char p[CFG_PATH_LEN];
    uint64_t v;
    if (!f->val[i])
        return 0;
    int rc = cfg_read_duration(l->r, f->val[i], cfg_field_path(p, f, i), &v);
    if (rc > 0 && v == 0) {
        cfg_yaml_error(l->r, f->val[i], p, "must be greater than 0");
        return -1;
    }
    if (rc > 0)
        *out = v;
    return rc;
}

/* A whole number 1..max. 1 set, 0 absent, -1 reported. */
static int read_count(rw_loader *l, cfg_fields *f, int i, uint64_t max, size_t *out) {
    char p[CFG_PATH_LEN];
    uint64_t v;
    if (!f->val[i])
        return 0;
    int rc = cfg_read_uint(l->r, f->val[i], cfg_field_path(p, f, i), max, &v);
    if (rc > 0 && v == 0) {
        cfg_yaml_error(l->r, f->val[i], p, "must be at least 1");
        return -1;
    }
    if (rc > 0)
        *out = (size_t)v;
    return rc;
}

/* Reports a secret given both inline and as a file. Cannot fail. */
static void refuse_both(rw_loader *l, cfg_fields *f, int inline_key, int file_key) {
    if (f->val[inline_key] && f->val[file_key])
        cfg_yaml_error(l->r, f->key[file_key], f->path, "at most one of %s and %s",
                       f->names[inline_key], f->names[file_key]);
}

/* ---- blocks of an entry -----------------------------------------------------------------------
 */

/* queue_config. Cannot fail (reported). */
static void load_queue(rw_loader *l, cfg_node *n, const char *path, cfg_remote_write *w) {
    cfg_fields f;
    if (cfg_read_fields(l->r, n, path, qc_keys, QC_N, &f) <= 0)
        return;
    read_count(l, &f, QC_CAPACITY, MAX_CAPACITY, &w->capacity);
    read_count(l, &f, QC_MAXSEND, MAX_PER_SEND, &w->max_samples_per_send);
    read_positive_duration(l, &f, QC_DEADLINE, &w->batch_send_deadline_ns);
    read_positive_duration(l, &f, QC_MINBACK, &w->min_backoff_ns);
    read_positive_duration(l, &f, QC_MAXBACK, &w->max_backoff_ns);
    cfg_field_bool(&f, QC_RETRY429, &w->retry_on_http_429);
    if (w->min_backoff_ns > w->max_backoff_ns)
        cfg_yaml_error(l->r, f.val[QC_MAXBACK] ? f.val[QC_MAXBACK] : n, path,
                       "max_backoff must not be less than min_backoff");
}

/* basic_auth and authorization (not both). Cannot fail (reported). */
static void load_auth(rw_loader *l, cfg_fields *e, cfg_remote_write *w) {
    char p[CFG_PATH_LEN], q[CFG_PATH_LEN];
    cfg_fields f;
    if (cfg_read_fields(l->r, e->val[RW_BASIC], cfg_field_path(p, e, RW_BASIC), ba_keys, BA_N, &f) >
        0) {
        read_text(l, &f, BA_USER, 0, &w->basic_username);
        read_text(l, &f, BA_PASSWORD, 0, &w->basic_password);
        if (read_text(l, &f, BA_PASSWORD_FILE, 1, &w->basic_password_file) > 0)
            cfg_check_file(l->r, f.val[BA_PASSWORD_FILE], cfg_field_path(q, &f, BA_PASSWORD_FILE),
                           w->basic_password_file, NULL, 0, NULL);
        refuse_both(l, &f, BA_PASSWORD, BA_PASSWORD_FILE);
    }
    if (cfg_read_fields(l->r, e->val[RW_AUTHZ], cfg_field_path(p, e, RW_AUTHZ), az_keys, AZ_N, &f) >
        0) {
        if (read_text(l, &f, AZ_TYPE, 0, &w->auth_type) > 0 && !strcasecmp(w->auth_type, "Basic"))
            cfg_yaml_error(l->r, f.val[AZ_TYPE], cfg_field_path(q, &f, AZ_TYPE),
                           "authorization type \"Basic\" is not allowed: use basic_auth");
        read_text(l, &f, AZ_CREDENTIALS, 0, &w->auth_credentials);
        if (read_text(l, &f, AZ_CREDENTIALS_FILE, 1, &w->auth_credentials_file) > 0)
            cfg_check_file(l->r, f.val[AZ_CREDENTIALS_FILE], p, w->auth_credentials_file, NULL, 0,
                           NULL);
        refuse_both(l, &f, AZ_CREDENTIALS, AZ_CREDENTIALS_FILE);
        if (!w->auth_type)
            w->auth_type = cfg_copy_text(l->r, "Bearer", 6);
    }
    if (e->val[RW_BASIC] && e->val[RW_AUTHZ] && !cfg_yaml_is_null(e->val[RW_BASIC]) &&
        !cfg_yaml_is_null(e->val[RW_AUTHZ]))
        cfg_yaml_error(l->r, e->key[RW_AUTHZ], e->path,
                       "at most one of basic_auth and authorization");
}

/* tls_config: the files must be readable PEM; a certificate needs its key. Cannot fail. */
static void load_tls(rw_loader *l, cfg_node *n, const char *path, cfg_remote_write *w) {
    char p[CFG_PATH_LEN];
    cfg_fields f;
    if (cfg_read_fields(l->r, n, path, tc_keys, TC_N, &f) <= 0)
        return;
    if (read_text(l, &f, TC_CA, 1, &w->ca_file) > 0)
        cfg_check_file(l->r, f.val[TC_CA], cfg_field_path(p, &f, TC_CA), w->ca_file, "CERTIFICATE",
                       0, "certificate");
    if (read_text(l, &f, TC_CERT, 1, &w->cert_file) > 0)
        cfg_check_file(l->r, f.val[TC_CERT], cfg_field_path(p, &f, TC_CERT), w->cert_file,
                       "CERTIFICATE", 0, "certificate");
    if (read_text(l, &f, TC_KEY, 1, &w->key_file) > 0)
        cfg_check_file(l->r, f.val[TC_KEY], cfg_field_path(p, &f, TC_KEY), w->key_file,
                       "PRIVATE KEY", 1, "private key");
    if (!w->cert_file != !w->key_file)
        cfg_yaml_error(l->r, n, path, "cert_file and key_file must be given together");
    read_text(l, &f, TC_SERVER_NAME, 0, &w->server_name);
    cfg_field_bool(&f, TC_INSECURE, &w->insecure_skip_verify);
}

/* headers: names must be tokens and not ones the client sets itself. Cannot fail. */
static void load_headers(rw_loader *l, cfg_node *n, const char *path, cfg_remote_write *w) {
    cfg_label_map m;
    cfg_quoted b;
    if (cfg_read_label_map(l->r, n, path, &m) <= 0)
        return;
    w->header_names = calloc(m.n ? m.n : 1, sizeof *w->header_names);
    w->header_values = calloc(m.n ? m.n : 1, sizeof *w->header_values);
    if (!w->header_names || !w->header_values) {
        cfg_yaml_oom(l->r);
        cfg_free_labels(m.items, m.n);
        free(m.keys);
        return;
    }
    for (size_t i = 0; i < m.n; i++) {
        const char *name = m.items[i].name;
        int bad = !*name || strspn(name, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(name);
        for (size_t j = 0; !bad && reserved_headers[j]; j++)
            if (!strcasecmp(name, reserved_headers[j]))
                cfg_yaml_error(l->r, m.keys[i], path, "header %s is set by abacus itself",
                               cfg_quote_str(&b, name));
        if (bad)
            cfg_yaml_error(l->r, m.keys[i], path, "invalid header name %s",
                           cfg_quote_str(&b, name));
        if (strpbrk(m.items[i].value, "\r\n"))
            cfg_yaml_error(l->r, m.keys[i], path, "header %s: a value has no line breaks",
                           cfg_quote_str(&b, name));
        w->header_names[i] = m.items[i].name;
        w->header_values[i] = m.items[i].value;
    }
    w->nheaders = m.n;
    free(m.items);
    free(m.keys);
}

/* external_labels: valid, unreserved label names. Cannot fail. */
static void load_external(rw_loader *l, cfg_node *n, const char *path, cfg_remote_write *w) {
    cfg_label_map m;
    cfg_quoted b;
    if (cfg_read_label_map(l->r, n, path, &m) <= 0)
        return;
    for (size_t i = 0; i < m.n; i++) {
        const char *name = m.items[i].name;
        if (!reg_valid_label_name(name, strlen(name)))
            cfg_yaml_error(l->r, m.keys[i], path, "invalid label name %s", cfg_quote_str(&b, name));
        else if (reg_reserved_label_name(REG_UNTYPED, name, strlen(name)))
            cfg_yaml_error(l->r, m.keys[i], path, "label name %s is reserved",
                           cfg_quote_str(&b, name));
    }
    w->external_labels = m.items;
    w->nexternal = m.n;
    free(m.keys);
}

/* ---- write_relabel_configs ------------------------------------------------------------------- */

static const char *const action_names[] = {"replace", "keep", "drop", NULL};
static const char *const refused_actions[] = {"hashmod",   "labelmap",  "labeldrop",
                                              "labelkeep", "lowercase", "uppercase",
                                              "keepequal", "dropequal", NULL};

/* The action of a rule: 1 set, 0 absent (replace), -1 reported. */
static int read_action(rw_loader *l, cfg_fields *f, cfg_relabel *rl) {
    char p[CFG_PATH_LEN];
    cfg_quoted b;
    char *s = NULL;
    int rc = cfg_field_string(f, RL_ACTION, &s);
    if (rc <= 0)
        return rc;
    cfg_field_path(p, f, RL_ACTION);
    for (int i = 0; action_names[i]; i++) {
        if (!strcmp(s, action_names[i])) {
            rl->action = (cfg_relabel_action)i;
            free(s);
            return 1;
        }
    }
    int known = 0;
    for (int i = 0; refused_actions[i]; i++)
        known |= !strcasecmp(s, refused_actions[i]);
    cfg_yaml_error(l->r, f->val[RL_ACTION], p, "%s action %s (abacus supports replace, keep, drop)",
                   known ? "unsupported" : "unknown", cfg_quote_str(&b, s));
    free(s);
    return -1;
}

/* Compiles the regex anchored, as the relabeler will. Cannot fail (reported). */
static void check_regex(rw_loader *l, cfg_node *n, const char *path, const char *re) {
    int code;
    PCRE2_SIZE off;
    size_t len = strlen(re);
    char *anchored = malloc(len + 8);
    if (!anchored) {
        cfg_yaml_oom(l->r);
        return;
    }
    snprintf(anchored, len + 8, "^(?:%s)$", re);
    pcre2_code *c =
        pcre2_compile((PCRE2_SPTR)anchored, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off, NULL);
    free(anchored);
    if (c) {
        pcre2_code_free(c);
        return;
    }
    PCRE2_UCHAR msg[160];
    pcre2_get_error_message(code, msg, sizeof msg);
    cfg_yaml_error(l->r, n, path, "invalid regex: %s", (const char *)msg);
}

/* source_labels: a list of label names. Cannot fail (reported). */
static void load_source_labels(rw_loader *l, cfg_fields *f, cfg_relabel *rl) {
    char p[CFG_PATH_LEN];
    cfg_node **items;
    size_t cnt;
    cfg_quoted b;
    if (cfg_read_sequence(l->r, f->val[RL_SOURCE], cfg_field_path(p, f, RL_SOURCE), &items, &cnt) <=
            0 ||
        !cnt)
        return;
    if (!(rl->source_labels = calloc(cnt, sizeof *rl->source_labels))) {
        cfg_yaml_oom(l->r);
        return;
    }
    for (size_t i = 0; i < cnt; i++) {
        char q[CFG_PATH_LEN];
        char *s = NULL;
        if (cfg_read_string(l->r, items[i], cfg_path_index(q, p, i), &s) <= 0)
            continue;
        if (!reg_valid_label_name(s, strlen(s)))
            cfg_yaml_error(l->r, items[i], q, "invalid label name %s", cfg_quote_str(&b, s));
        rl->source_labels[rl->nsource_labels++] = s;
    }
}

/* One rule. Cannot fail (reported). */
static void load_relabel(rw_loader *l, cfg_node *n, const char *path, cfg_relabel *rl) {
    cfg_fields f;
    cfg_quoted b;
    rl->line = n->line;
    rl->column = n->col;
    int rc = cfg_read_fields(l->r, n, path, rl_keys, RL_N, &f);
    if (rc == 0)
        cfg_yaml_error(l->r, n, path, "expected a mapping, got null");
    if (rc <= 0)
        return;
    int action_ok = read_action(l, &f, rl) >= 0;
    load_source_labels(l, &f, rl);
    if (cfg_field_string(&f, RL_SEPARATOR, &rl->separator) <= 0 && !rl->separator)
        rl->separator = cfg_copy_text(l->r, ";", 1);
    if (cfg_field_string(&f, RL_REGEX, &rl->regex) > 0) {
        char p[CFG_PATH_LEN];
        check_regex(l, f.val[RL_REGEX], cfg_field_path(p, &f, RL_REGEX), rl->regex);
    } else if (!rl->regex) {
        rl->regex = cfg_copy_text(l->r, "(.*)", 4);
    }
    if (cfg_field_string(&f, RL_REPLACEMENT, &rl->replacement) <= 0 && !rl->replacement)
        rl->replacement = cfg_copy_text(l->r, "$1", 2);
    cfg_field_string(&f, RL_TARGET, &rl->target_label);
    char p[CFG_PATH_LEN];
    if (!action_ok)
        return; /* what the rule needs depends on the action */
    if (rl->action == CFG_RELABEL_REPLACE && (!rl->target_label || !*rl->target_label))
        cfg_yaml_error(l->r, n, path, "action replace needs a target_label");
    else if (rl->action == CFG_RELABEL_REPLACE && !strchr(rl->target_label, '$') &&
             !reg_valid_label_name(rl->target_label, strlen(rl->target_label)))
        cfg_yaml_error(l->r, f.val[RL_TARGET], cfg_field_path(p, &f, RL_TARGET),
                       "invalid label name %s", cfg_quote_str(&b, rl->target_label));
    else if (rl->action != CFG_RELABEL_REPLACE && f.val[RL_TARGET])
        cfg_yaml_error(l->r, f.key[RL_TARGET], path, "target_label is only for action replace");
}

/* write_relabel_configs. Cannot fail (reported). */
static void load_relabels(rw_loader *l, cfg_node *n, const char *path, cfg_remote_write *w) {
    cfg_node **items;
    size_t cnt;
    if (cfg_read_sequence(l->r, n, path, &items, &cnt) <= 0 || !cnt)
        return;
    if (!(w->relabel = calloc(cnt, sizeof *w->relabel))) {
        cfg_yaml_oom(l->r);
        return;
    }
    for (size_t i = 0; i < cnt && cfg_yaml_visit(l->r); i++) {
        char p[CFG_PATH_LEN];
        w->nrelabel = i + 1;
        load_relabel(l, items[i], cfg_path_index(p, path, i), &w->relabel[i]);
    }
}

/* ---- entries ------------------------------------------------------------------------------- */

/* The defaults of an entry (Prometheus's, except capacity: one queue per receiver here, sized
 * for a 100k-series registry and a few intervals of outage). Cannot fail. */
static void set_defaults(cfg_remote_write *w) {
    w->remote_timeout_ns = 30 * SECOND_NS;
    w->interval_ns = 15 * SECOND_NS;
    w->capacity = 500000;
    w->max_samples_per_send = 2000;
    w->batch_send_deadline_ns = 5 * SECOND_NS;
    w->min_backoff_ns = 30 * MS_NS;
    w->max_backoff_ns = 5 * SECOND_NS;
}

/* url: required, http:// or https:// and a host. Cannot fail (reported). */
static void load_url(rw_loader *l, cfg_fields *f, cfg_node *n, cfg_remote_write *w) {
    char p[CFG_PATH_LEN];
    cfg_quoted b;
    if (!f->val[RW_URL]) {
        cfg_yaml_error(l->r, n, f->path, "missing required key \"url\"");
        return;
    }
    if (cfg_field_string(f, RW_URL, &w->url) <= 0)
        return;
    const char *host = !strncmp(w->url, "http://", 7)    ? w->url + 7
                       : !strncmp(w->url, "https://", 8) ? w->url + 8
                                                         : NULL;
    if (!host || !*host || *host == '/' || strpbrk(w->url, " \t\r\n"))
        cfg_yaml_error(l->r, f->val[RW_URL], cfg_field_path(p, f, RW_URL),
                       "invalid url %s (want http://host[:port]/path or https://...)",
                       cfg_quote_str(&b, w->url));
}

/* One entry. Cannot fail (reported). */
static void load_entry(rw_loader *l, cfg_node *n, const char *path, cfg_remote_write *w) {
    char p[CFG_PATH_LEN];
    cfg_fields f;
    set_defaults(w);
    w->line = n->line;
    w->column = n->col;
    int rc = cfg_read_fields(l->r, n, path, rw_keys, RW_N, &f);
    if (rc == 0)
        cfg_yaml_error(l->r, n, path, "expected a mapping, got null");
    if (rc <= 0)
        return;
    read_text(l, &f, RW_NAME, 0, &w->name);
    load_url(l, &f, n, w);
    read_positive_duration(l, &f, RW_TIMEOUT, &w->remote_timeout_ns);
    read_positive_duration(l, &f, RW_INTERVAL, &w->interval_ns);
    load_headers(l, f.val[RW_HEADERS], cfg_field_path(p, &f, RW_HEADERS), w);
    load_auth(l, &f, w);
    load_tls(l, f.val[RW_TLS], cfg_field_path(p, &f, RW_TLS), w);
    load_relabels(l, f.val[RW_RELABEL], cfg_field_path(p, &f, RW_RELABEL), w);
    load_queue(l, f.val[RW_QUEUE], cfg_field_path(p, &f, RW_QUEUE), w);
    load_external(l, f.val[RW_EXTERNAL], cfg_field_path(p, &f, RW_EXTERNAL), w);
}

/* Two entries that would be one receiver. Cannot fail (reported). */
static void check_duplicates(rw_loader *l, cfg_config *c, cfg_node **items) {
    for (size_t i = 0; i < c->nremote_write; i++) {
        for (size_t j = 0; j < i; j++) {
            const cfg_remote_write *a = &c->remote_write[j], *b = &c->remote_write[i];
            if (!a->url || !b->url || !cfg_remote_write_same_receiver(a, b))
                continue;
            char p[CFG_PATH_LEN];
            cfg_yaml_error(l->r, items[i], cfg_path_index(p, "remote_write", i),
                           "the same receiver as remote_write[%zu] (give each a distinct name)", j);
            break;
        }
    }
}

/* Cannot fail (every problem reported). */
void cfg_load_remote_write(cfg_yaml_report *r, cfg_config *c, cfg_node *n) {
    rw_loader l = {r, c->path};
    cfg_node **items;
    size_t cnt;
    if (cfg_read_sequence(r, n, "remote_write", &items, &cnt) <= 0 || !cnt)
        return;
    if (!(c->remote_write = calloc(cnt, sizeof *c->remote_write))) {
        cfg_yaml_oom(r);
        return;
    }
    for (size_t i = 0; i < cnt && cfg_yaml_visit(r); i++) {
        char p[CFG_PATH_LEN];
        c->nremote_write = i + 1;
        load_entry(&l, items[i], cfg_path_index(p, "remote_write", i), &c->remote_write[i]);
    }
    check_duplicates(&l, c, items);
}

/* ---- comparing and freeing ------------------------------------------------------------------- */

/* 1 when both are NULL or equal. Cannot fail. */
static int same_text(const char *a, const char *b) {
    return a == b || (a && b && !strcmp(a, b));
}

/* Cannot fail. */
int cfg_remote_write_same_receiver(const cfg_remote_write *a, const cfg_remote_write *b) {
    if (a->name || b->name)
        return same_text(a->name, b->name);
    return same_text(a->url, b->url);
}

/* 1 when the n strings of a and b are equal. Cannot fail. */
static int same_texts(char *const *a, char *const *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!same_text(a[i], b[i]))
            return 0;
    return 1;
}

/* 1 when two rules are equal. Cannot fail. */
static int same_relabel(const cfg_relabel *a, const cfg_relabel *b) {
    return a->action == b->action && a->nsource_labels == b->nsource_labels &&
           same_texts(a->source_labels, b->source_labels, a->nsource_labels) &&
           same_text(a->separator, b->separator) && same_text(a->regex, b->regex) &&
           same_text(a->target_label, b->target_label) && same_text(a->replacement, b->replacement);
}

/* Cannot fail. */
int cfg_remote_write_equal(const cfg_remote_write *a, const cfg_remote_write *b) {
    if (!same_text(a->name, b->name) || !same_text(a->url, b->url) ||
        a->remote_timeout_ns != b->remote_timeout_ns || a->interval_ns != b->interval_ns ||
        a->nheaders != b->nheaders || !same_texts(a->header_names, b->header_names, a->nheaders) ||
        !same_texts(a->header_values, b->header_values, a->nheaders) ||
        !same_text(a->basic_username, b->basic_username) ||
        !same_text(a->basic_password, b->basic_password) ||
        !same_text(a->basic_password_file, b->basic_password_file) ||
        !same_text(a->auth_type, b->auth_type) ||
        !same_text(a->auth_credentials, b->auth_credentials) ||
        !same_text(a->auth_credentials_file, b->auth_credentials_file) ||
        !same_text(a->ca_file, b->ca_file) || !same_text(a->cert_file, b->cert_file) ||
        !same_text(a->key_file, b->key_file) || !same_text(a->server_name, b->server_name) ||
        a->insecure_skip_verify != b->insecure_skip_verify || a->nrelabel != b->nrelabel ||
        a->nexternal != b->nexternal || a->capacity != b->capacity ||
        a->max_samples_per_send != b->max_samples_per_send ||
        a->batch_send_deadline_ns != b->batch_send_deadline_ns ||
        a->min_backoff_ns != b->min_backoff_ns || a->max_backoff_ns != b->max_backoff_ns ||
        a->retry_on_http_429 != b->retry_on_http_429)
        return 0;
    for (size_t i = 0; i < a->nrelabel; i++)
        if (!same_relabel(&a->relabel[i], &b->relabel[i]))
            return 0;
    for (size_t i = 0; i < a->nexternal; i++)
        if (!same_text(a->external_labels[i].name, b->external_labels[i].name) ||
            !same_text(a->external_labels[i].value, b->external_labels[i].value))
            return 0;
    return 1;
}

/* Frees n strings and the array. Cannot fail; NULL is ignored. */
static void free_texts(char **v, size_t n) {
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* Cannot fail. */
void cfg_remote_write_free(cfg_config *c) {
    for (size_t i = 0; i < c->nremote_write; i++) {
        cfg_remote_write *w = &c->remote_write[i];
        free(w->name);
        free(w->url);
        free_texts(w->header_names, w->nheaders);
        free_texts(w->header_values, w->nheaders);
        free(w->basic_username);
        free(w->basic_password);
        free(w->basic_password_file);
        free(w->auth_type);
        free(w->auth_credentials);
        free(w->auth_credentials_file);
        free(w->ca_file);
        free(w->cert_file);
        free(w->key_file);
        free(w->server_name);
        for (size_t j = 0; j < w->nrelabel; j++) {
            cfg_relabel *rl = &w->relabel[j];
            free_texts(rl->source_labels, rl->nsource_labels);
            free(rl->separator);
            free(rl->regex);
            free(rl->target_label);
            free(rl->replacement);
        }
        free(w->relabel);
        cfg_free_labels(w->external_labels, w->nexternal);
    }
    free(c->remote_write);
    c->remote_write = NULL;
    c->nremote_write = 0;
}
