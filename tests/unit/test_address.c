/* test_address.c - the one listen-address grammar (cfg_parse_address): every form, valid and
 * invalid, in one table, each with its host and port or its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

typedef struct {
    const char *addr;
    const char *host; /* expected host; NULL: the address is invalid */
    unsigned port;
    const char *why; /* invalid: a substring of the reason */
} address_case;

static const address_case cases[] = {
    /* host:port */
    {"127.0.0.1:9102", "127.0.0.1", 9102, NULL},
    {"localhost:80", "localhost", 80, NULL},
    {"my-host.example.org:65535", "my-host.example.org", 65535, NULL},
    {"h\xc3\xa9:1", "h\xc3\xa9", 1, NULL}, /* UTF-8 bytes are no control characters */
    /* :port (all interfaces), port 0 (any free port) */
    {":9125", "", 9125, NULL},
    {":0", "", 0, NULL},
    {":00080", "", 80, NULL},
    /* [v6]:port */
    {"[::1]:8125", "::1", 8125, NULL},
    {"[::]:9102", "::", 9102, NULL},
    {"[fe80::1%2]:80", "fe80::1%2", 80, NULL},
    {"[::ffff:10.0.0.1]:1", "::ffff:10.0.0.1", 1, NULL},
    {"[2001:DB8::A]:443", "2001:DB8::A", 443, NULL},
    /* empty, no port */
    {"", NULL, 0, "empty address"},
    {"localhost", NULL, 0, "missing port"},
    {"localhost:", NULL, 0, "missing port"},
    {":", NULL, 0, "missing port"},
    {"[::1]", NULL, 0, "missing port after ']'"},
    {"[::1]:", NULL, 0, "missing port"},
    /* bad ports */
    {":99999", NULL, 0, "out of range"},
    {":65536", NULL, 0, "out of range"},
    {":123456", NULL, 0, "invalid port"},
    {":-1", NULL, 0, "invalid port"},
    {":+80", NULL, 0, "invalid port"},
    {":8o", NULL, 0, "invalid port"},
    {": 80", NULL, 0, "invalid port"},
    {":80 ", NULL, 0, "invalid port"},
    /* bad hosts */
    {"::1:80", NULL, 0, "need brackets"},
    {"a:b:80", NULL, 0, "need brackets"},
    {"local host:80", NULL, 0, "space or control"},
    {"host\t:80", NULL, 0, "space or control"},
    {"host\n:80", NULL, 0, "space or control"},
    {"ho\x7fst:80", NULL, 0, "space or control"},
    {"a/b:80", NULL, 0, "invalid character '/'"},
    {"a]:80", NULL, 0, "invalid character ']'"},
    {"a[b:80", NULL, 0, "invalid character '['"},
    /* bad bracketed hosts */
    {"[]:80", NULL, 0, "empty IPv6 address"},
    {"[::1:80", NULL, 0, "missing ']'"},
    {"[::1]x:80", NULL, 0, "missing port after ']'"},
    {"[::1]]:80", NULL, 0, "missing port after ']'"},
    {"[fe80::1%eth0]:80", NULL, 0, "invalid IPv6 address"},
    {"[host]:80", NULL, 0, "invalid IPv6 address"},
    {"[::1 ]:80", NULL, 0, "invalid IPv6 address"},
};

/* The reason of an invalid bracketed host quotes at most 64 bytes of it; a zero-sized reason
 * buffer is left alone. */
static void test_address_reason_bounds(void **state) {
    (void)state;
    char addr[128], err[256];
    memset(addr, 0, sizeof addr);
    addr[0] = '[';
    memset(addr + 1, 'g', 70);
    strcat(addr, "]:80");
    assert_int_equal(cfg_parse_address(addr, NULL, 0, NULL, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "invalid IPv6 address \"%.64s\"", addr + 1);
    assert_string_equal(err, want);
    strcpy(err, "untouched");
    assert_int_equal(cfg_parse_address("nohost", NULL, 0, NULL, err, 0), -1);
    assert_string_equal(err, "untouched");
    /* A short buffer gets the reason cut, NUL-terminated. */
    assert_int_equal(cfg_parse_address("nohost", NULL, 0, NULL, err, 8), -1);
    assert_string_equal(err, "missing");
}

static void test_address_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const address_case *c = &cases[i];
        char host[64] = "untouched", err[128] = "";
        unsigned port = 12345;
        print_message("%s\n", c->addr);
        int rc = cfg_parse_address(c->addr, host, sizeof host, &port, err, sizeof err);
        if (c->host) {
            assert_int_equal(rc, 0);
            assert_string_equal(host, c->host);
            assert_int_equal(port, c->port);
            /* Validation alone (the loader's use) agrees. */
            assert_int_equal(cfg_parse_address(c->addr, NULL, 0, NULL, NULL, 0), 0);
        } else {
            assert_int_equal(rc, -1);
            if (!strstr(err, c->why))
                fail_msg("%s: reason \"%s\" lacks \"%s\"", c->addr, err, c->why);
            assert_int_equal(cfg_parse_address(c->addr, NULL, 0, NULL, NULL, 0), -1);
        }
    }
}

/* A host longer than the caller's buffer is refused rather than cut; NULL is no address. */
static void test_address_host_capacity(void **state) {
    (void)state;
    char host[5], err[64];
    unsigned port;
    assert_int_equal(cfg_parse_address("abcd:1", host, sizeof host, &port, err, sizeof err), 0);
    assert_string_equal(host, "abcd");
    assert_int_equal(cfg_parse_address("abcde:1", host, sizeof host, &port, err, sizeof err), -1);
    assert_non_null(strstr(err, "host too long"));
    assert_int_equal(cfg_parse_address(NULL, host, sizeof host, &port, err, sizeof err), -1);
    assert_non_null(strstr(err, "empty address"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_table),
        cmocka_unit_test(test_address_host_capacity),
        cmocka_unit_test(test_address_reason_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
