/* test_config_remote.c - the remote_write section: every key with its default and its value,
 * the comparisons a reload uses, and every refusal with its exact position and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/config_expect.h"
#include "config.h"

#define S 1000000000ull
#define MS 1000000ull

static void defaults(void **state) {
    (void)state;
    cfg_config *c = load_ok("remote_write: [{url: \"http://mimir:9009/api/v1/push\"}]\n");
    assert_int_equal(c->nremote_write, 1);
    const cfg_remote_write *w = &c->remote_write[0];
    assert_string_equal(w->url, "http://mimir:9009/api/v1/push");
    assert_null(w->name);
    assert_int_equal(w->remote_timeout_ns, 30 * S);
    assert_int_equal(w->interval_ns, 15 * S);
    assert_int_equal(w->capacity, 500000);
    assert_int_equal(w->max_samples_per_send, 2000);
    assert_int_equal(w->batch_send_deadline_ns, 5 * S);
    assert_int_equal(w->min_backoff_ns, 30 * MS);
    assert_int_equal(w->max_backoff_ns, 5 * S);
    assert_int_equal(w->retry_on_http_429, 0);
    assert_int_equal(w->nrelabel + w->nexternal + w->nheaders, 0);
    assert_null(w->auth_type);
    cfg_free(c);
}

static void every_key(void **state) {
    (void)state;
    char pw[] = "/tmp/abacus-rw-pw-XXXXXX";
    int fd = mkstemp(pw);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "secret\n", 7), 7);
    close(fd);
    char yaml[2048];
    snprintf(
        yaml, sizeof yaml,
        "remote_write:\n"
        "  - name: mimir\n"
        "    url: https://mimir/api/v1/push\n"
        "    remote_timeout: 10s\n"
        "    interval: 30s\n"
        "    headers: {X-Scope-OrgID: team-a}\n"
        "    basic_auth: {username: u, password_file: %s}\n"
        "    tls_config: {server_name: mimir.local, insecure_skip_verify: true}\n"
        "    write_relabel_configs:\n"
        "      - {source_labels: [__name__], regex: 'go_.*', action: drop}\n"
        "      - {source_labels: [a, b], separator: '-', regex: '(.*)', target_label: c,\n"
        "         replacement: 'x$1'}\n"
        "    queue_config: {capacity: 100, max_samples_per_send: 10, batch_send_deadline: 1s,\n"
        "                   min_backoff: 10ms, max_backoff: 1s, retry_on_http_429: true}\n"
        "    external_labels: {cluster: eu1}\n"
        "  - url: http://thanos/api/v1/receive\n"
        "    authorization: {credentials: tok}\n",
        pw);
    cfg_config *c = load_ok(yaml);
    unlink(pw);
    assert_int_equal(c->nremote_write, 2);
    const cfg_remote_write *w = &c->remote_write[0];
    assert_string_equal(w->name, "mimir");
    assert_int_equal(w->remote_timeout_ns, 10 * S);
    assert_int_equal(w->interval_ns, 30 * S);
    assert_int_equal(w->nheaders, 1);
    assert_string_equal(w->header_names[0], "X-Scope-OrgID");
    assert_string_equal(w->header_values[0], "team-a");
    assert_string_equal(w->basic_username, "u");
    assert_string_equal(w->basic_password_file, pw);
    assert_string_equal(w->server_name, "mimir.local");
    assert_int_equal(w->insecure_skip_verify, 1);
    assert_int_equal(w->nrelabel, 2);
    assert_int_equal(w->relabel[0].action, CFG_RELABEL_DROP);
    assert_string_equal(w->relabel[0].separator, ";");
    assert_int_equal(w->relabel[1].action, CFG_RELABEL_REPLACE);
    assert_int_equal(w->relabel[1].nsource_labels, 2);
    assert_string_equal(w->relabel[1].separator, "-");
    assert_string_equal(w->relabel[1].target_label, "c");
    assert_string_equal(w->relabel[1].replacement, "x$1");
    assert_int_equal(w->relabel[1].line, 11);
    assert_int_equal(w->capacity, 100);
    assert_int_equal(w->max_samples_per_send, 10);
    assert_int_equal(w->batch_send_deadline_ns, 1 * S);
    assert_int_equal(w->min_backoff_ns, 10 * MS);
    assert_int_equal(w->max_backoff_ns, 1 * S);
    assert_int_equal(w->retry_on_http_429, 1);
    assert_int_equal(w->nexternal, 1);
    assert_string_equal(w->external_labels[0].name, "cluster");
    const cfg_remote_write *v = &c->remote_write[1];
    assert_string_equal(v->auth_type, "Bearer");
    assert_string_equal(v->auth_credentials, "tok");
    cfg_free(c);
}

static void refusals(void **state) {
    (void)state;
    expect_errors(
        "remote_write:\n"
        "  - url: ftp://x\n"
        "  - name: a\n"
        "  - url: http://a\n"
        "    interval: 0s\n"
        "    remote_timeout: 5\n"
        "    queue_config: {capacity: 0, min_backoff: 2s, max_backoff: 1s, shards: 3}\n"
        "    write_relabel_configs:\n"
        "      - {action: labelmap, regex: x}\n"
        "      - {action: replace, regex: '('}\n"
        "      - {action: keep, target_label: x}\n"
        "    external_labels: {__x: y, 1a: b}\n"
        "    headers: {Content-Type: x, 'bad name': y}\n"
        "    basic_auth: {username: u, password: p, password_file: /nonexistent}\n"
        "    authorization: {type: Basic}\n"
        "    tls_config: {cert_file: /nonexistent}\n"
        "  - url: http://a\n",
        "2:10: remote_write[0].url: invalid url \"ftp://x\" (want http://host[:port]/path or "
        "https://...)\n"
        "3:5: remote_write[1]: missing required key \"url\"\n"
        "5:15: remote_write[2].interval: must be greater than 0\n"
        "6:21: remote_write[2].remote_timeout: invalid duration \"5\": missing unit (e.g. 30s)\n"
        "7:30: remote_write[2].queue_config.capacity: must be at least 1\n"
        "7:63: remote_write[2].queue_config: max_backoff must not be less than min_backoff\n"
        "7:67: remote_write[2].queue_config: unknown key \"shards\"\n"
        "9:18: remote_write[2].write_relabel_configs[0].action: unsupported action \"labelmap\" "
        "(abacus supports replace, keep, drop)\n"
        "10:9: remote_write[2].write_relabel_configs[1]: action replace needs a target_label\n"
        "10:34: remote_write[2].write_relabel_configs[1].regex: invalid regex: missing closing "
        "parenthesis\n"
        "11:24: remote_write[2].write_relabel_configs[2]: target_label is only for action replace\n"
        "12:23: remote_write[2].external_labels: label name \"__x\" is reserved\n"
        "12:31: remote_write[2].external_labels: invalid label name \"1a\"\n"
        "13:15: remote_write[2].headers: header \"Content-Type\" is set by abacus itself\n"
        "13:32: remote_write[2].headers: invalid header name \"bad name\"\n"
        "14:44: remote_write[2].basic_auth: at most one of password and password_file\n"
        "14:59: remote_write[2].basic_auth.password_file: cannot read \"/nonexistent\": No such "
        "file or directory\n"
        "15:5: remote_write[2]: at most one of basic_auth and authorization\n"
        "15:27: remote_write[2].authorization.type: authorization type \"Basic\" is not allowed: "
        "use basic_auth\n"
        "16:17: remote_write[2].tls_config: cert_file and key_file must be given together\n"
        "16:29: remote_write[2].tls_config.cert_file: cannot read \"/nonexistent\": No such file "
        "or directory\n"
        "17:5: remote_write[3]: the same receiver as remote_write[2] (give each a distinct "
        "name)\n");
}

static void same_receiver_and_equal(void **state) {
    (void)state;
    cfg_config *a = load_ok("remote_write: [{url: 'http://a'}, {name: n, url: 'http://b'}]\n");
    cfg_config *b = load_ok("remote_write: [{url: 'http://a', interval: 1s},"
                            " {name: n, url: 'http://c'}]\n");
    assert_true(cfg_remote_write_same_receiver(&a->remote_write[0], &b->remote_write[0]));
    assert_false(cfg_remote_write_equal(&a->remote_write[0], &b->remote_write[0]));
    assert_true(cfg_remote_write_same_receiver(&a->remote_write[1], &b->remote_write[1]));
    assert_false(cfg_remote_write_same_receiver(&a->remote_write[0], &b->remote_write[1]));
    assert_true(cfg_remote_write_equal(&a->remote_write[0], &a->remote_write[0]));
    cfg_free(a);
    cfg_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(every_key),
        cmocka_unit_test(refusals),
        cmocka_unit_test(same_receiver_and_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
