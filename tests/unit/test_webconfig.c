/* test_webconfig.c - the web config file loader (cfg_web_load): every key of the exporter
 * toolkit's format and its value, paths resolved against the file's directory, and every
 * error with its exact position and message. Files are written to a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../support/config_expect.h"
#include "config.h"

static char dir[64];

/* A real bcrypt hash (cost 4) and the PEM framing the loader looks for. */
#define HASH "$2b$04$MZ1bOGbwpUBiHVgB8ZSaWeyS/OfPcWPWwzr9AvEUodPeU3mD17s1y"
#define CERT "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define KEY "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n"

/* Writes text to dir/name; returns the path (static buffer). */
static const char *put(const char *name, const char *text) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/abacus-webconfig-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    put("cert.pem", CERT);
    put("key.pem", KEY);
    put("ca.pem", CERT);
    put("garbage.pem", "not pem at all\n");
    char sub[96];
    snprintf(sub, sizeof sub, "%s/adir", dir);
    return mkdir(sub, 0700);
}

static int teardown(void **state) {
    (void)state;
    const char *names[] = {"cert.pem", "key.pem", "ca.pem", "garbage.pem", "web.yml"};
    char p[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/adir", dir);
    rmdir(p);
    rmdir(dir);
    return 0;
}

/* Loads yaml as dir/web.yml; must succeed. */
static cfg_web *web_ok(const char *yaml) {
    cfg_errors e = {0};
    cfg_web *w = cfg_web_load(put("web.yml", yaml), &e);
    if (!w) {
        char *s = render(&e);
        print_error("unexpected errors:\n%s", s);
        free(s);
    }
    assert_non_null(w);
    assert_int_equal(e.count, 0);
    cfg_errors_free(&e);
    return w;
}

/* Loading yaml as dir/web.yml fails with exactly want ("line:col: message\n" each). */
static void web_errors(const char *yaml, const char *want) {
    cfg_errors e = {0};
    const char *path = put("web.yml", yaml);
    cfg_web *w = cfg_web_load(path, &e);
    assert_null(w);
    char *got = render(&e);
    for (size_t i = 0; i < e.count; i++)
        assert_string_equal(e.items[i].file, path);
    if (strcmp(got, want) != 0)
        print_error("got:\n%s", got);
    assert_string_equal(got, want);
    free(got);
    cfg_errors_free(&e);
}

/* dir/name in a static buffer. */
static const char *in_dir(const char *name) {
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* ---- valid files ------------------------------------------------------------------------ */

static void test_every_key(void **state) {
    (void)state;
    cfg_web *w = web_ok("tls_server_config:\n"
                        "  cert_file: cert.pem\n"
                        "  key_file: key.pem\n"
                        "  client_auth_type: RequireAndVerifyClientCert\n"
                        "  client_ca_file: ca.pem\n"
                        "  client_allowed_sans: [client.example, 10.0.0.1]\n"
                        "  min_version: TLS11\n"
                        "  max_version: TLS13\n"
                        "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,\n"
                        "                  TLS_AES_128_GCM_SHA256]\n"
                        "  curve_preferences: [X25519, CurveP256]\n"
                        "  prefer_server_cipher_suites: false\n"
                        "http_server_config:\n"
                        "  http2: false\n"
                        "  headers:\n"
                        "    Strict-Transport-Security: max-age=31536000\n"
                        "    X-Content-Type-Options: nosniff\n"
                        "    X-Frame-Options: sameorigin\n"
                        "    X-XSS-Protection: '1; mode=block'\n"
                        "    Content-Security-Policy: default-src 'self'\n"
                        "basic_auth_users:\n"
                        "  alice: " HASH "\n"
                        "  bob: '$2a$04$MZ1bOGbwpUBiHVgB8ZSaWeyS/OfPcWPWwzr9AvEUodPeU3mD17s1y'\n");
    assert_string_equal(w->path, in_dir("web.yml"));
    assert_int_equal(w->tls, 1);
    assert_string_equal(w->cert_file, in_dir("cert.pem"));
    assert_string_equal(w->key_file, in_dir("key.pem"));
    assert_string_equal(w->client_ca_file, in_dir("ca.pem"));
    assert_int_equal(w->client_auth, CFG_CLIENT_AUTH_REQUIRE_AND_VERIFY);
    assert_int_equal(w->nallowed_sans, 2);
    assert_string_equal(w->allowed_sans[1], "10.0.0.1");
    assert_int_equal(w->min_version, CFG_TLS11);
    assert_int_equal(w->max_version, CFG_TLS13);
    assert_int_equal(w->ncipher_suites, 2);
    assert_string_equal(w->cipher_suites[0], "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
    assert_int_equal(w->ncurves, 2);
    assert_string_equal(w->curves[0], "X25519");
    assert_int_equal(w->prefer_server_cipher_suites, 0);
    assert_int_equal(w->nusers, 2);
    assert_string_equal(w->users[0], "alice");
    assert_string_equal(w->hashes[0], HASH);
    assert_string_equal(w->users[1], "bob");
    assert_int_equal(w->nheaders, 5);
    assert_string_equal(w->header_names[2], "X-Frame-Options");
    assert_string_equal(w->header_values[4], "default-src 'self'");
    cfg_web_free(w);
}

static void test_defaults(void **state) {
    (void)state;
    const char *empty[] = {"", "# nothing\n", "tls_server_config:\nbasic_auth_users: {}\n",
                           "http_server_config: {http2: true}\n"};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        cfg_web *w = web_ok(empty[i]);
        assert_int_equal(w->tls, 0);
        assert_null(w->cert_file);
        assert_int_equal(w->client_auth, CFG_CLIENT_AUTH_NONE);
        assert_int_equal(w->min_version, CFG_TLS12);
        assert_int_equal(w->max_version, 0);
        assert_int_equal(w->prefer_server_cipher_suites, 1);
        assert_int_equal(w->nusers + w->nheaders + w->ncipher_suites + w->ncurves, 0);
        cfg_web_free(w);
    }
}

static void test_names(void **state) {
    (void)state;
    /* Each client_auth_type, and the toolkit's old name RequireClientCert. */
    const char *auth[] = {"NoClientCert",
                          "RequestClientCert",
                          "RequireAnyClientCert",
                          "VerifyClientCertIfGiven",
                          "RequireAndVerifyClientCert",
                          "RequireClientCert"};
    const cfg_client_auth want[] = {CFG_CLIENT_AUTH_NONE,
                                    CFG_CLIENT_AUTH_REQUEST,
                                    CFG_CLIENT_AUTH_REQUIRE_ANY,
                                    CFG_CLIENT_AUTH_VERIFY_IF_GIVEN,
                                    CFG_CLIENT_AUTH_REQUIRE_AND_VERIFY,
                                    CFG_CLIENT_AUTH_REQUIRE_ANY};
    for (size_t i = 0; i < sizeof auth / sizeof auth[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml,
                 "tls_server_config: {cert_file: cert.pem, key_file: key.pem, "
                 "client_auth_type: %s}\n",
                 auth[i]);
        cfg_web *w = web_ok(yaml);
        assert_int_equal(w->client_auth, want[i]);
        assert_int_equal(w->tls, 1);
        cfg_web_free(w);
    }
    /* Every version, curve and one cipher of each kind; absolute paths stay as they are. */
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "tls_server_config:\n"
             "  cert_file: %s/cert.pem\n"
             "  key_file: key.pem\n"
             "  min_version: TLS10\n"
             "  max_version: TLS12\n"
             "  curve_preferences: [CurveP256, CurveP384, CurveP521, X25519]\n"
             "  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA, TLS_CHACHA20_POLY1305_SHA256,\n"
             "    TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]\n"
             "  prefer_server_cipher_suites: yes\n",
             dir);
    cfg_web *w = web_ok(yaml);
    assert_string_equal(w->cert_file, in_dir("cert.pem"));
    assert_int_equal(w->min_version, CFG_TLS10);
    assert_int_equal(w->max_version, CFG_TLS12);
    assert_int_equal(w->ncurves, 4);
    assert_int_equal(w->ncipher_suites, 3);
    cfg_web_free(w);
}

/* server.web_config_file in the main config: relative to that file's directory; the flag
 * (applied by the exporter) would replace it. */
static void test_config_key(void **state) {
    (void)state;
    cfg_errors e = {0};
    const char *y = "server: {web_config_file: web.yml}\n";
    cfg_config *c = cfg_load_string("/etc/abacus/abacus.yml", y, strlen(y), &e);
    assert_non_null(c);
    assert_string_equal(c->server.web_config_file, "/etc/abacus/web.yml");
    cfg_free(c);
    y = "server: {web_config_file: /srv/web.yml}\n";
    c = cfg_load_string("conf/abacus.yml", y, strlen(y), &e);
    assert_non_null(c);
    assert_string_equal(c->server.web_config_file, "/srv/web.yml");
    cfg_free(c);
    c = cfg_load_string("abacus.yml", "server: {}\n", 11, &e);
    assert_non_null(c);
    assert_null(c->server.web_config_file);
    cfg_free(c);
    assert_int_equal(e.count, 0);
}

/* ---- errors ------------------------------------------------------------------------------- */

static void test_file_errors(void **state) {
    (void)state;
    cfg_errors e = {0};
    assert_null(cfg_web_load(in_dir("absent.yml"), &e));
    assert_int_equal(e.count, 1);
    assert_int_equal(e.items[0].line, 0);
    assert_string_equal(e.items[0].message, "cannot open: No such file or directory");
    cfg_errors_free(&e);
    web_errors("tls_server_config: [1]\n", "1:20: tls_server_config: expected a mapping, got a "
                                           "sequence\n");
    web_errors("- a\n", "1:1: expected a mapping at the top level, got a sequence\n");
    web_errors("a: [\n",
               "2:1: syntax error: did not find expected node content (while parsing a flow node "
               "at 2:1)\n");
}

static void test_unknown_keys(void **state) {
    (void)state;
    web_errors("tls_config: {}\n"
               "basic_auth_users: {}\n"
               "rate_limit: {burst: 1}\n"
               "http_server_config: {http3: true, http2: maybe}\n",
               "1:1: unknown key \"tls_config\"\n"
               "3:1: key \"rate_limit\" is not supported by abacus\n"
               "4:22: http_server_config: unknown key \"http3\"\n"
               "4:42: http_server_config.http2: expected true or false, got \"maybe\"\n");
    web_errors("tls_server_config:\n"
               "  cert_file: cert.pem\n"
               "  key_file: key.pem\n"
               "  cert: x\n"
               "  key: y\n"
               "  client_ca: z\n"
               "  cert_file: cert.pem\n"
               "  keyfile: key.pem\n",
               "4:3: tls_server_config: key \"cert\" (inline PEM) is not supported by abacus; use "
               "cert_file\n"
               "5:3: tls_server_config: key \"key\" (inline PEM) is not supported by abacus; use "
               "key_file\n"
               "6:3: tls_server_config: key \"client_ca\" (inline PEM) is not supported by abacus; "
               "use client_ca_file\n"
               "7:3: tls_server_config: duplicate key \"cert_file\"\n"
               "8:3: tls_server_config: unknown key \"keyfile\"\n");
}

static void test_cert_and_key(void **state) {
    (void)state;
    web_errors("tls_server_config: {cert_file: cert.pem}\n",
               "1:20: tls_server_config: missing key_file\n");
    web_errors("tls_server_config: {key_file: key.pem, cert_file: ''}\n",
               "1:20: tls_server_config: missing cert_file\n");
    /* Any of the four turns TLS on, as in the toolkit. */
    web_errors("tls_server_config:\n  client_auth_type: RequestClientCert\n",
               "2:3: tls_server_config: missing cert_file\n"
               "2:3: tls_server_config: missing key_file\n");
}

static void test_file_checks(void **state) {
    (void)state;
    char want[1024];
    snprintf(want, sizeof want,
             "2:14: tls_server_config.cert_file: cannot read \"%s/nope.pem\": No such file or "
             "directory\n"
             "3:13: tls_server_config.key_file: cannot read \"%s/adir\": not a regular file\n"
             "5:19: tls_server_config.client_ca_file: cannot read \"%s/missing/ca.pem\": No such "
             "file or directory\n",
             dir, dir, dir);
    web_errors("tls_server_config:\n"
               "  cert_file: nope.pem\n"
               "  key_file: adir\n"
               "  client_auth_type: VerifyClientCertIfGiven\n"
               "  client_ca_file: missing/ca.pem\n",
               want);
    snprintf(want, sizeof want,
             "2:14: tls_server_config.cert_file: \"%s/key.pem\" holds no PEM certificate\n"
             "3:13: tls_server_config.key_file: \"%s/garbage.pem\" holds no PEM private key\n",
             dir, dir);
    web_errors("tls_server_config:\n"
               "  cert_file: key.pem\n"
               "  key_file: garbage.pem\n",
               want);
}

static void test_tls_values(void **state) {
    (void)state;
    web_errors("tls_server_config:\n"
               "  cert_file: cert.pem\n"
               "  key_file: key.pem\n"
               "  client_auth_type: RequireClientCerts\n"
               "  min_version: TLS14\n"
               "  max_version: SSL3\n"
               "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA, {a: b}]\n"
               "  curve_preferences: [P256]\n"
               "  prefer_server_cipher_suites: 1\n"
               "  client_allowed_sans: x\n",
               "4:21: tls_server_config.client_auth_type: unknown client_auth_type "
               "\"RequireClientCerts\" (want NoClientCert, RequestClientCert, "
               "RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)\n"
               "5:16: tls_server_config.min_version: unknown TLS version \"TLS14\" (want TLS10, "
               "TLS11, TLS12 or TLS13)\n"
               "6:16: tls_server_config.max_version: unknown TLS version \"SSL3\" (want TLS10, "
               "TLS11, TLS12 or TLS13)\n"
               "7:19: tls_server_config.cipher_suites[0]: unknown cipher "
               "\"TLS_RSA_WITH_RC4_128_SHA\" (want a name of Go's tls.CipherSuites())\n"
               "7:45: tls_server_config.cipher_suites[1]: expected a string, got a mapping\n"
               "8:23: tls_server_config.curve_preferences[0]: unknown curve \"P256\" (want "
               "CurveP256, CurveP384, CurveP521 or X25519)\n"
               "9:32: tls_server_config.prefer_server_cipher_suites: expected true or false, got "
               "\"1\"\n"
               "10:24: tls_server_config.client_allowed_sans: expected a sequence, got \"x\"\n");
    web_errors("tls_server_config:\n"
               "  cert_file: cert.pem\n"
               "  key_file: key.pem\n"
               "  client_ca_file: ca.pem\n"
               "  min_version: TLS13\n"
               "  max_version: TLS12\n",
               "4:19: tls_server_config.client_ca_file: client_ca_file given without a "
               "client_auth_type (the toolkit: client CA's have been configured without a Client "
               "Auth Policy)\n"
               "6:16: tls_server_config.max_version: max_version TLS12 is below min_version "
               "TLS13: no TLS version left\n");
}

static void test_users(void **state) {
    (void)state;
    web_errors("basic_auth_users:\n"
               "  a: $2x$04$MZ1bOGbwpUBiHVgB8ZSaWeyS/OfPcWPWwzr9AvEUodPeU3mD17s1y\n"
               "  b: $2b$03$MZ1bOGbwpUBiHVgB8ZSaWeyS/OfPcWPWwzr9AvEUodPeU3mD17s1y\n"
               "  c: $2b$32$MZ1bOGbwpUBiHVgB8ZSaWeyS/OfPcWPWwzr9AvEUodPeU3mD17s1y\n"
               "  d: $2b$04$MZ1bOGbwpUBiHVgB8ZSaWeyS/OfPcWPWwzr9AvEUodPeU3mD17s1\n"
               "  e: $2b$04$MZ1bOGbwpUBiHVgB8ZSaWeyS/OfPcWPWwzr9AvEUodPeU3mD17s1!\n"
               "  f: secret\n"
               "  g:\n"
               "  a: " HASH "\n"
               "  [h]: " HASH "\n",
               "2:6: basic_auth_users.a: not a bcrypt hash (want $2a$, $2b$ or $2y$, a cost 04-31 "
               "and 53 characters of salt and hash, 60 in all)\n"
               "3:6: basic_auth_users.b: not a bcrypt hash (want $2a$, $2b$ or $2y$, a cost 04-31 "
               "and 53 characters of salt and hash, 60 in all)\n"
               "4:6: basic_auth_users.c: not a bcrypt hash (want $2a$, $2b$ or $2y$, a cost 04-31 "
               "and 53 characters of salt and hash, 60 in all)\n"
               "5:6: basic_auth_users.d: not a bcrypt hash (want $2a$, $2b$ or $2y$, a cost 04-31 "
               "and 53 characters of salt and hash, 60 in all)\n"
               "6:6: basic_auth_users.e: not a bcrypt hash (want $2a$, $2b$ or $2y$, a cost 04-31 "
               "and 53 characters of salt and hash, 60 in all)\n"
               "7:6: basic_auth_users.f: not a bcrypt hash (want $2a$, $2b$ or $2y$, a cost 04-31 "
               "and 53 characters of salt and hash, 60 in all)\n"
               "8:5: basic_auth_users.g: not a bcrypt hash (want $2a$, $2b$ or $2y$, a cost 04-31 "
               "and 53 characters of salt and hash, 60 in all)\n"
               "9:3: basic_auth_users: duplicate key \"a\"\n"
               "10:3: basic_auth_users: mapping keys must be strings, got a sequence\n");
    web_errors("basic_auth_users: [alice]\n",
               "1:19: basic_auth_users: expected a mapping, got a sequence\n");
}

static void test_headers(void **state) {
    (void)state;
    web_errors(
        "http_server_config:\n"
        "  headers:\n"
        "    x-frame-options: deny\n"
        "    X-Frame-Options: DENY\n"
        "    X-Content-Type-Options: sniff\n"
        "    Server: abacus\n"
        "    Strict-Transport-Security: \"max-age=1\\r\\nSet-Cookie: a=b\"\n",
        "3:5: http_server_config.headers.x-frame-options: HTTP header \"x-frame-options\" can not "
        "be "
        "configured (want one of Strict-Transport-Security, X-Content-Type-Options, "
        "X-Frame-Options, X-XSS-Protection, Content-Security-Policy)\n"
        "4:22: http_server_config.headers.X-Frame-Options: invalid value \"DENY\" for "
        "X-Frame-Options (want \"deny\" or \"sameorigin\")\n"
        "5:29: http_server_config.headers.X-Content-Type-Options: invalid value \"sniff\" "
        "for X-Content-Type-Options (want \"nosniff\")\n"
        "6:5: http_server_config.headers.Server: HTTP header \"Server\" can not be configured "
        "(want one of Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
        "X-XSS-Protection, Content-Security-Policy)\n"
        "7:32: http_server_config.headers.Strict-Transport-Security: header value "
        "contains a control character\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key),    cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_names),        cmocka_unit_test(test_config_key),
        cmocka_unit_test(test_file_errors),  cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_cert_and_key), cmocka_unit_test(test_file_checks),
        cmocka_unit_test(test_tls_values),   cmocka_unit_test(test_users),
        cmocka_unit_test(test_headers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
