/* test_flags.c - unit tests of the command line (exporter/flags.c): every flag of README's
 * flags table in both spellings (`--name=value`, `--name value`), `--no-` booleans, counts and
 * durations, usage errors (exit code 2 with a message on the stream given), --help/-h and
 * --version, the --help text naming every flag, which configuration file a load reads
 * (exp_flags_config_path, in a temporary working directory), and flags over the file's values
 * (exp_config_load). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flags.h"
#include "log.h"
#include "state.h"

/* ---- helpers ----------------------------------------------------------------------------- */

#define MAX_ARGS 16

/* The result of one exp_flags_parse: its return code and what it wrote to err. */
typedef struct {
    exp_flags f;
    int rc;
    char *err; /* malloc'd, NUL-terminated */
    size_t errlen;
} parsed;

/* Parse argv[0..] (NULL-terminated, without the program name) with err captured in memory. */
static parsed parse_v(const char *const *args) {
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "abacus";
    for (; *args; args++) {
        assert_true(argc <= MAX_ARGS);
        argv[argc++] = (char *)*args;
    }
    argv[argc] = NULL;
    parsed p;
    memset(&p, 0, sizeof p);
    FILE *err = open_memstream(&p.err, &p.errlen);
    assert_non_null(err);
    p.rc = exp_flags_parse(&p.f, argc, argv, err);
    assert_int_equal(fclose(err), 0);
    /* Whatever the flags did to the process-wide log settings, the next case starts clean. */
    exp_log_set_level("info");
    exp_log_set_format("logfmt");
    return p;
}

#define PARSE(...) parse_v((const char *const[]){__VA_ARGS__, NULL})

static void parsed_free(parsed *p) {
    free(p->err);
    p->err = NULL;
}

/* A successful parse writes nothing to err. */
static void expect_ok(const parsed *p) {
    if (p->rc != 0)
        fail_msg("expected success, got %d with \"%s\"", p->rc, p->err);
    assert_int_equal(p->errlen, 0);
}

/* A usage error: exit code 2, one line on err with the prefix, each of the given fragments
 * and the hint. */
static void expect_usage_error(const parsed *p, const char *frag1, const char *frag2) {
    if (p->rc != 2)
        fail_msg("expected usage error 2, got %d (err \"%s\")", p->rc, p->err);
    assert_non_null(p->err);
    if (strncmp(p->err, "abacus: error: ", 15) != 0)
        fail_msg("usage error without the prefix: \"%s\"", p->err);
    if (frag1 && !strstr(p->err, frag1))
        fail_msg("usage error \"%s\" does not mention \"%s\"", p->err, frag1);
    if (frag2 && !strstr(p->err, frag2))
        fail_msg("usage error \"%s\" does not mention \"%s\"", p->err, frag2);
    if (!strstr(p->err, "try --help"))
        fail_msg("usage error without the hint: \"%s\"", p->err);
    assert_true(p->errlen > 0 && p->err[p->errlen - 1] == '\n');
    assert_null(memchr(p->err, '\n', p->errlen - 1)); /* exactly one line */
}

#define FIELD(f, off, type) (*(type *)((char *)(f) + (off)))

/* ---- the flags table (README "Flags") ------------------------------------------------------ */

typedef struct {
    const char *name; /* without the leading -- */
    size_t off;
    const char *value; /* a valid value */
} str_flag;

static const str_flag str_flags[] = {
    {"config.file", offsetof(exp_flags, config_file), "/etc/abacus/abacus.yml"},
    {"web.listen-address", offsetof(exp_flags, listen_address), "127.0.0.1:0"},
    {"web.telemetry-path", offsetof(exp_flags, telemetry_path), "/custom"},
    {"web.request-timeout", offsetof(exp_flags, request_timeout), "1m30s"},
    {"web.write-timeout", offsetof(exp_flags, write_timeout), "500ms"},
    {"web.config.file", offsetof(exp_flags, web_config_file), "web.yml"},
    {"health-check", offsetof(exp_flags, health_check), "127.0.0.1:9102"},
    {"statsd.listen-udp", offsetof(exp_flags, statsd_listen_udp), "[::1]:9125"},
    {"statsd.listen-tcp", offsetof(exp_flags, statsd_listen_tcp), ":9125"},
    {"statsd.listen-unixgram", offsetof(exp_flags, statsd_listen_unixgram), "/run/abacus.sock"},
    {"statsd.mapping-config", offsetof(exp_flags, mapping_config), "mapping.yml"},
    {"statsd.tcp-idle-timeout", offsetof(exp_flags, statsd_tcp_idle_timeout), "0"},
    {"push.group-ttl", offsetof(exp_flags, push_group_ttl), "1h"},
    {"persistence.file", offsetof(exp_flags, persistence_file), "/var/lib/abacus/snapshot"},
    {"persistence.interval", offsetof(exp_flags, persistence_interval), "30s"},
    {"log.level", offsetof(exp_flags, log_level), "debug"},
    {"log.format", offsetof(exp_flags, log_format), "json"},
};

typedef struct {
    const char *name;
    size_t off;
} int_flag;

static const int_flag int_flags[] = {
    {"web.max-connections", offsetof(exp_flags, max_connections)},
    {"web.max-concurrent-scrapes", offsetof(exp_flags, max_concurrent_scrapes)},
    {"statsd.read-buffer", offsetof(exp_flags, statsd_read_buffer)},
    {"statsd.cache-size", offsetof(exp_flags, statsd_cache_size)},
    {"statsd.readers", offsetof(exp_flags, statsd_readers)},
    {"statsd.max-tcp-connections", offsetof(exp_flags, statsd_max_tcp_connections)},
    {"push.max-body-bytes", offsetof(exp_flags, push_max_body_bytes)},
    {"push.max-buffered-bytes", offsetof(exp_flags, push_max_buffered_bytes)},
};

typedef struct {
    const char *name;
    size_t off;
    int unset; /* the field's value when the flag is not given */
} bool_flag;

static const bool_flag bool_flags[] = {
    {"check-config", offsetof(exp_flags, check_config), 0},
    {"web.enable-lifecycle", offsetof(exp_flags, enable_lifecycle), 0},
    {"web.enable-admin-api", offsetof(exp_flags, enable_admin_api), 0},
    {"push.enabled", offsetof(exp_flags, push_enabled), EXP_UNSET},
    {"statsd.parse-dogstatsd-tags", offsetof(exp_flags, statsd_dogstatsd_tags), EXP_UNSET},
    {"statsd.parse-influxdb-tags", offsetof(exp_flags, statsd_influxdb_tags), EXP_UNSET},
    {"statsd.parse-librato-tags", offsetof(exp_flags, statsd_librato_tags), EXP_UNSET},
    {"statsd.parse-signalfx-tags", offsetof(exp_flags, statsd_signalfx_tags), EXP_UNSET},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- tests ------------------------------------------------------------------------------- */

/* No arguments: every override unset, every switch off. */
static void test_defaults(void **state) {
    (void)state;
    parsed p = PARSE("--");
    expect_ok(&p);
    for (size_t i = 0; i < N(str_flags); i++)
        assert_null(FIELD(&p.f, str_flags[i].off, const char *));
    for (size_t i = 0; i < N(int_flags); i++)
        assert_int_equal(FIELD(&p.f, int_flags[i].off, long long), EXP_UNSET);
    for (size_t i = 0; i < N(bool_flags); i++)
        assert_int_equal(FIELD(&p.f, bool_flags[i].off, int), bool_flags[i].unset);
    assert_int_equal(p.f.show_help, 0);
    assert_int_equal(p.f.show_version, 0);
    parsed_free(&p);

    char *argv[] = {"abacus", NULL};
    exp_flags f;
    memset(&f, 0x5a, sizeof f); /* parse must not depend on the caller clearing f */
    assert_int_equal(exp_flags_parse(&f, 1, argv, stderr), 0);
    assert_null(f.config_file);
    assert_int_equal(f.max_connections, EXP_UNSET);
    assert_int_equal(f.enable_lifecycle, 0);
    assert_int_equal(f.enable_admin_api, 0);
    assert_int_equal(f.push_enabled, EXP_UNSET);
}

/* Every string flag, as --name=value and --name value, lands in its own field only. */
static void test_string_flags_both_spellings(void **state) {
    (void)state;
    for (size_t i = 0; i < N(str_flags); i++) {
        const str_flag *d = &str_flags[i];
        char eq[256];
        snprintf(eq, sizeof eq, "--%s=%s", d->name, d->value);
        char sep[128];
        snprintf(sep, sizeof sep, "--%s", d->name);
        for (int form = 0; form < 2; form++) {
            parsed p = form == 0 ? PARSE(eq) : PARSE(sep, d->value);
            expect_ok(&p);
            const char *got = FIELD(&p.f, d->off, const char *);
            if (!got || strcmp(got, d->value) != 0)
                fail_msg("%s (form %d): got \"%s\", want \"%s\"", d->name, form,
                         got ? got : "(null)", d->value);
            /* no other string field was touched */
            for (size_t k = 0; k < N(str_flags); k++)
                if (k != i)
                    assert_null(FIELD(&p.f, str_flags[k].off, const char *));
            parsed_free(&p);
        }
    }
}

/* An empty value is a value: "" disables a StatsD listener. */
static void test_string_flag_empty_value(void **state) {
    (void)state;
    parsed p = PARSE("--statsd.listen-udp=", "--statsd.listen-tcp", "");
    expect_ok(&p);
    assert_string_equal(p.f.statsd_listen_udp, "");
    assert_string_equal(p.f.statsd_listen_tcp, "");
    parsed_free(&p);
}

/* A value that contains '=' keeps it: only the first '=' separates name and value. */
static void test_value_with_equals_sign(void **state) {
    (void)state;
    parsed p = PARSE("--config.file=a=b.yml");
    expect_ok(&p);
    assert_string_equal(p.f.config_file, "a=b.yml");
    parsed_free(&p);
}

/* Every count flag, both spellings; 0 and large values are counts. */
static void test_count_flags(void **state) {
    (void)state;
    static const struct {
        const char *text;
        long long want;
    } ok[] = {{"0", 0}, {"7", 7}, {"512", 512}, {"9223372036854775807", 9223372036854775807LL}};
    for (size_t i = 0; i < N(int_flags); i++) {
        for (size_t v = 0; v < N(ok); v++) {
            char eq[128], name[96];
            snprintf(eq, sizeof eq, "--%s=%s", int_flags[i].name, ok[v].text);
            snprintf(name, sizeof name, "--%s", int_flags[i].name);
            for (int form = 0; form < 2; form++) {
                parsed p = form == 0 ? PARSE(eq) : PARSE(name, ok[v].text);
                expect_ok(&p);
                assert_int_equal(FIELD(&p.f, int_flags[i].off, long long), ok[v].want);
                for (size_t k = 0; k < N(int_flags); k++)
                    if (k != i)
                        assert_int_equal(FIELD(&p.f, int_flags[k].off, long long), EXP_UNSET);
                parsed_free(&p);
            }
        }
    }
}

/* Malformed counts: exit 2 naming the flag and the value, for both spellings. */
static void test_count_flags_malformed(void **state) {
    (void)state;
    static const char *const bad[] = {"",
                                      "-1",
                                      "+5",
                                      "abc",
                                      "5x",
                                      "1.5",
                                      "0x10",
                                      "1e3",
                                      "9223372036854775808",
                                      "99999999999999999999",
                                      "--"};
    for (size_t i = 0; i < N(int_flags); i++) {
        for (size_t v = 0; v < N(bad); v++) {
            char eq[128], name[96];
            snprintf(eq, sizeof eq, "--%s=%s", int_flags[i].name, bad[v]);
            snprintf(name, sizeof name, "--%s", int_flags[i].name);
            for (int form = 0; form < 2; form++) {
                parsed p = form == 0 ? PARSE(eq) : PARSE(name, bad[v]);
                char quoted[64];
                snprintf(quoted, sizeof quoted, "\"%s\"", bad[v]);
                expect_usage_error(&p, name, quoted);
                assert_non_null(strstr(p.err, "want a count"));
                parsed_free(&p);
            }
        }
    }
}

/* A count with leading white space is malformed like "+5" (README: "a malformed value is a
 * usage error (exit code 2)"). Found by this test: parse_count checked only the first byte for
 * a sign and strtoll skips white space, so `--web.max-connections=' 5'` meant 5 (fixed in
 * f8480ee). */
static void test_count_with_leading_space_is_refused(void **state) {
    (void)state;
    static const char *const bad[] = {" 5", "\t5", " +5", "\n7"};
    for (size_t v = 0; v < N(bad); v++) {
        parsed p = PARSE("--web.max-connections", bad[v]);
        if (p.rc != 2)
            fail_msg("--web.max-connections \"%s\" accepted as %lld (want exit code 2)", bad[v],
                     p.f.max_connections);
        parsed_free(&p);
    }
}

/* Booleans: --name, --name=true|false|1|0, --no-name; last one wins. */
static void test_bool_flags(void **state) {
    (void)state;
    static const struct {
        const char *suffix; /* appended to --name, or NULL for --no-name */
        int want;
    } forms[] = {{"", 1}, {"=true", 1}, {"=1", 1}, {"=false", 0}, {"=0", 0}, {NULL, 0}};
    for (size_t i = 0; i < N(bool_flags); i++) {
        for (size_t k = 0; k < N(forms); k++) {
            char a[128];
            if (forms[k].suffix)
                snprintf(a, sizeof a, "--%s%s", bool_flags[i].name, forms[k].suffix);
            else
                snprintf(a, sizeof a, "--no-%s", bool_flags[i].name);
            parsed p = PARSE(a);
            expect_ok(&p);
            if (FIELD(&p.f, bool_flags[i].off, int) != forms[k].want)
                fail_msg("%s: got %d, want %d", a, FIELD(&p.f, bool_flags[i].off, int),
                         forms[k].want);
            for (size_t o = 0; o < N(bool_flags); o++)
                if (o != i)
                    assert_int_equal(FIELD(&p.f, bool_flags[o].off, int), bool_flags[o].unset);
            parsed_free(&p);
        }
        char on[128], off[128];
        snprintf(on, sizeof on, "--%s", bool_flags[i].name);
        snprintf(off, sizeof off, "--no-%s", bool_flags[i].name);
        parsed p = PARSE(on, off);
        expect_ok(&p);
        assert_int_equal(FIELD(&p.f, bool_flags[i].off, int), 0);
        parsed_free(&p);
        p = PARSE(off, on);
        expect_ok(&p);
        assert_int_equal(FIELD(&p.f, bool_flags[i].off, int), 1);
        parsed_free(&p);
    }
}

/* A boolean never takes the next argument as its value: `--web.enable-lifecycle false` is
 * the switch plus a stray positional argument. */
static void test_bool_does_not_take_next_argument(void **state) {
    (void)state;
    parsed p = PARSE("--web.enable-lifecycle", "false");
    expect_usage_error(&p, "unexpected argument false", NULL);
    parsed_free(&p);
}

/* Malformed booleans and --no- on a flag that is not a boolean. */
static void test_bool_malformed(void **state) {
    (void)state;
    for (size_t i = 0; i < N(bool_flags); i++) {
        static const char *const bad[] = {"=yes", "=TRUE", "=", "=2", "=on"};
        for (size_t v = 0; v < N(bad); v++) {
            char a[128];
            snprintf(a, sizeof a, "--%s%s", bool_flags[i].name, bad[v]);
            parsed p = PARSE(a);
            expect_usage_error(&p, "invalid value for flag", a);
            parsed_free(&p);
        }
        char a[128];
        snprintf(a, sizeof a, "--no-%s=true", bool_flags[i].name);
        parsed p = PARSE(a);
        expect_usage_error(&p, "invalid value for flag", a);
        parsed_free(&p);
    }
    /* --no- only exists for booleans */
    static const char *const notbool[] = {"--no-config.file", "--no-web.max-connections",
                                          "--no-log.level",   "--no-help",
                                          "--no-version",     "--no-"};
    for (size_t v = 0; v < N(notbool); v++) {
        parsed p = PARSE(notbool[v]);
        expect_usage_error(&p, "unknown flag", notbool[v]);
        parsed_free(&p);
    }
}

/* Durations: valid ones pass through as text (state.c converts them); malformed ones are a
 * usage error naming the flag. */
static void test_duration_flags(void **state) {
    (void)state;
    static const char *const names[] = {"web.request-timeout", "web.write-timeout",
                                        "statsd.tcp-idle-timeout", "push.group-ttl",
                                        "persistence.interval"};
    static const char *const good[] = {"0", "0s", "10s", "1m30s", "500ms", "1h", "2d", "1w"};
    static const char *const bad[] = {"", "10", "-1s", "abc", "1x", "s", "1.5.5s", " 1s"};
    for (size_t i = 0; i < N(names); i++) {
        char name[64];
        snprintf(name, sizeof name, "--%s", names[i]);
        for (size_t v = 0; v < N(good); v++) {
            parsed p = PARSE(name, good[v]);
            expect_ok(&p);
            parsed_free(&p);
        }
        for (size_t v = 0; v < N(bad); v++) {
            char eq[128];
            snprintf(eq, sizeof eq, "--%s=%s", names[i], bad[v]);
            for (int form = 0; form < 2; form++) {
                parsed p = form == 0 ? PARSE(eq) : PARSE(name, bad[v]);
                expect_usage_error(&p, name, "want a duration");
                parsed_free(&p);
            }
        }
    }
}

/* --log.level and --log.format: valid names take effect, others are usage errors. */
static void test_log_flags(void **state) {
    (void)state;
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < N(levels); i++) {
        char a[64];
        snprintf(a, sizeof a, "--log.level=%s", levels[i]);
        char *argv[] = {"abacus", a, NULL};
        exp_flags f;
        assert_int_equal(exp_flags_parse(&f, 2, argv, stderr), 0);
        for (int lvl = EXP_LOG_DEBUG; lvl <= EXP_LOG_ERROR; lvl++)
            assert_int_equal(exp_log_enabled((exp_log_level)lvl), lvl >= (int)i);
    }
    exp_log_set_level("info");
    for (int k = 0; k < 2; k++) {
        parsed p = PARSE("--log.format", k ? "json" : "logfmt");
        expect_ok(&p);
        parsed_free(&p);
    }
    static const char *const bad_level[] = {"DEBUG", "warning", "", "trace"};
    for (size_t v = 0; v < N(bad_level); v++) {
        parsed p = PARSE("--log.level", bad_level[v]);
        expect_usage_error(&p, "--log.level", "debug, info, warn, error");
        parsed_free(&p);
    }
    static const char *const bad_format[] = {"JSON", "text", ""};
    for (size_t v = 0; v < N(bad_format); v++) {
        parsed p = PARSE("--log.format", bad_format[v]);
        expect_usage_error(&p, "--log.format", "logfmt, json");
        parsed_free(&p);
    }
    /* an invalid level leaves the level as it was */
    exp_log_set_level("warn");
    char *argv[] = {"abacus", "--log.level=bogus", NULL};
    exp_flags f;
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    assert_int_equal(exp_flags_parse(&f, 2, argv, devnull), 2);
    fclose(devnull);
    assert_int_equal(exp_log_enabled(EXP_LOG_INFO), 0);
    assert_int_equal(exp_log_enabled(EXP_LOG_WARN), 1);
    exp_log_set_level("info");
}

/* The last occurrence of a flag wins; flags combine. */
static void test_repeated_and_combined(void **state) {
    (void)state;
    parsed p = PARSE("--web.listen-address=:1", "--web.listen-address", "127.0.0.1:2",
                     "--web.max-connections=3", "--web.enable-lifecycle", "--statsd.readers", "4",
                     "--no-statsd.parse-signalfx-tags", "--config.file", "x.yml");
    expect_ok(&p);
    assert_string_equal(p.f.listen_address, "127.0.0.1:2");
    assert_int_equal(p.f.max_connections, 3);
    assert_int_equal(p.f.enable_lifecycle, 1);
    assert_int_equal(p.f.statsd_readers, 4);
    assert_int_equal(p.f.statsd_signalfx_tags, 0);
    assert_int_equal(p.f.statsd_dogstatsd_tags, EXP_UNSET);
    assert_string_equal(p.f.config_file, "x.yml");
    parsed_free(&p);
}

/* Unknown flags, stray arguments, missing values. */
static void test_usage_errors(void **state) {
    (void)state;
    static const struct {
        const char *arg;
        const char *frag;
    } cases[] = {
        {"--bogus", "unknown flag --bogus"},
        {"--bogus=1", "unknown flag --bogus=1"},
        {"--web.listen", "unknown flag --web.listen"},     /* a prefix is not a flag */
        {"--web.listen-address-x=1", "unknown flag"},      /* nor a longer name */
        {"--WEB.LISTEN-ADDRESS=:1", "unknown flag"},       /* case matters */
        {"-web.listen-address=:1", "unexpected argument"}, /* one dash */
        {"-v", "unexpected argument -v"},
        {"config.yml", "unexpected argument config.yml"},
        {"---web.enable-lifecycle", "unknown flag"},
        {"--=x", "unknown flag"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        parsed p = PARSE(cases[i].arg);
        expect_usage_error(&p, cases[i].frag, NULL);
        parsed_free(&p);
    }
    /* a value flag at the end without its value */
    for (size_t i = 0; i < N(str_flags); i++) {
        char a[96];
        snprintf(a, sizeof a, "--%s", str_flags[i].name);
        parsed p = PARSE(a);
        expect_usage_error(&p, a, "requires a value");
        parsed_free(&p);
    }
    for (size_t i = 0; i < N(int_flags); i++) {
        char a[96];
        snprintf(a, sizeof a, "--%s", int_flags[i].name);
        parsed p = PARSE(a);
        expect_usage_error(&p, a, "requires a value");
        parsed_free(&p);
    }
    /* an error stops at the first bad argument, whatever follows */
    parsed p = PARSE("--bogus", "--help");
    expect_usage_error(&p, "unknown flag --bogus", NULL);
    parsed_free(&p);
    /* after "--" nothing may follow */
    p = PARSE("--", "extra");
    expect_usage_error(&p, "unexpected argument extra", NULL);
    parsed_free(&p);
}

/* "--" ends the flags but not their checks. Found by this test: "--" returned 0 before the
 * checks after the loop (fixed in f8480ee), so
 *   abacus --web.request-timeout=bogus --   exited 0 and state.c's apply_flags silently dropped
 *                                           the flag (the file's value was used);
 *   abacus --log.level=debug --             exited 0 with the level left at info. */
static void test_double_dash_keeps_value_checks(void **state) {
    (void)state;
    parsed p = PARSE("--web.request-timeout=bogus", "--");
    if (p.rc != 2)
        fail_msg("--web.request-timeout=bogus followed by -- parsed with %d (want 2)", p.rc);
    parsed_free(&p);

    char *argv[] = {"abacus", "--log.level=debug", "--", NULL};
    exp_flags f;
    assert_int_equal(exp_flags_parse(&f, 3, argv, stderr), 0);
    int debug = exp_log_enabled(EXP_LOG_DEBUG);
    exp_log_set_level("info");
    if (!debug)
        fail_msg("--log.level=debug followed by -- did not set the level");
}

/* --help, -h and --version set their switch and take no value. */
static void test_help_and_version(void **state) {
    (void)state;
    parsed p = PARSE("--help");
    expect_ok(&p);
    assert_int_equal(p.f.show_help, 1);
    assert_int_equal(p.f.show_version, 0);
    parsed_free(&p);
    p = PARSE("-h");
    expect_ok(&p);
    assert_int_equal(p.f.show_help, 1);
    parsed_free(&p);
    p = PARSE("--version");
    expect_ok(&p);
    assert_int_equal(p.f.show_version, 1);
    assert_int_equal(p.f.show_help, 0);
    parsed_free(&p);
    p = PARSE("--web.listen-address=:1", "--version", "-h");
    expect_ok(&p);
    assert_int_equal(p.f.show_version, 1);
    assert_int_equal(p.f.show_help, 1);
    parsed_free(&p);
    static const char *const bad[] = {"--help=1", "--version=true", "--help=", "--version=0"};
    for (size_t i = 0; i < N(bad); i++) {
        p = PARSE(bad[i]);
        expect_usage_error(&p, "invalid value for flag", bad[i]);
        parsed_free(&p);
    }
}

/* The --help text names every flag of the table (with its =VALUE when it takes one), -h,
 * --no- for the tag switches, and nothing unknown breaks the layout. */
static void test_usage_text_lists_every_flag(void **state) {
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    exp_flags_usage(out);
    assert_int_equal(fclose(out), 0);
    assert_non_null(strstr(text, "usage: abacus"));
    char want[128];
    for (size_t i = 0; i < N(str_flags); i++) {
        snprintf(want, sizeof want, "--%s=", str_flags[i].name);
        if (!strstr(text, want))
            fail_msg("--help does not show %s", want);
    }
    for (size_t i = 0; i < N(int_flags); i++) {
        snprintf(want, sizeof want, "--%s=", int_flags[i].name);
        if (!strstr(text, want))
            fail_msg("--help does not show %s", want);
    }
    for (size_t i = 0; i < N(bool_flags); i++) {
        snprintf(want, sizeof want, "--%s ", bool_flags[i].name);
        if (!strstr(text, want))
            fail_msg("--help does not show %s", want);
    }
    assert_non_null(strstr(text, "-h, --help"));
    assert_non_null(strstr(text, "--version"));
    assert_non_null(strstr(text, "file:line:column: path: message"));
    /* one line per flag after the header, each indented */
    size_t lines = 0;
    for (const char *q = strstr(text, "Flags:\n") + 7; *q; q = strchr(q, '\n') + 1) {
        assert_memory_equal(q, "  --", 3);
        lines++;
    }
    assert_int_equal(lines, N(str_flags) + N(int_flags) + N(bool_flags) + 2);
    free(text);
}

/* exp_flags_config_path: the flag wins; otherwise ./abacus.yml when it exists; else NULL. */
static void test_config_path(void **state) {
    (void)state;
    char old[PATH_MAX];
    assert_non_null(getcwd(old, sizeof old));
    char dir[] = "/tmp/abacus-test-flags-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0);

    parsed p = PARSE("--");
    expect_ok(&p);
    assert_null(exp_flags_config_path(&p.f)); /* no file: built-in defaults */

    int fd = open(EXP_DEFAULT_CONFIG_FILE, O_CREAT | O_WRONLY | O_EXCL, 0644);
    assert_true(fd >= 0);
    close(fd);
    const char *path = exp_flags_config_path(&p.f);
    assert_non_null(path);
    assert_string_equal(path, "abacus.yml");
    parsed_free(&p);

    /* the flag wins over ./abacus.yml, and is returned even when it names a missing file
     * (a start-up error later, never a silent switch to defaults) */
    p = PARSE("--config.file", "missing.yml");
    expect_ok(&p);
    assert_string_equal(exp_flags_config_path(&p.f), "missing.yml");
    parsed_free(&p);

    /* a dangling ./abacus.yml symlink counts as absent */
    assert_int_equal(unlink(EXP_DEFAULT_CONFIG_FILE), 0);
    assert_int_equal(symlink("nowhere.yml", EXP_DEFAULT_CONFIG_FILE), 0);
    p = PARSE("--");
    assert_null(exp_flags_config_path(&p.f));
    parsed_free(&p);
    assert_int_equal(unlink(EXP_DEFAULT_CONFIG_FILE), 0);

    assert_int_equal(chdir(old), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- flags over the file (state.c) --------------------------------------------------------- */

/* exp_config_load with the flags args (NULL-terminated) after --config.file=path: the snapshot,
 * or NULL with the errors in *e. */
static exp_config *load_with_flags(const char *path, const char *const *args, cfg_errors *e) {
    char cf[PATH_MAX + 16];
    snprintf(cf, sizeof cf, "--config.file=%s", path);
    const char *all[MAX_ARGS + 1] = {cf};
    size_t n = 1;
    for (; *args; args++) {
        assert_true(n < MAX_ARGS);
        all[n++] = *args;
    }
    all[n] = NULL;
    parsed p = parse_v(all);
    expect_ok(&p);
    exp_config *c = exp_config_load(&p.f, e);
    parsed_free(&p);
    return c;
}

#define LOAD_WITH(path, e, ...) load_with_flags(path, (const char *const[]){__VA_ARGS__, NULL}, e)

/* The push: settings of the file stay without flags, and each --push.* flag replaces its key;
 * a byte flag out of the file's bounds (1 B to 1 TiB) is an error naming the flag. */
static void test_push_flags_override_the_file(void **state) {
    (void)state;
    char path[] = "/tmp/abacus-test-flags-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *yaml =
        "push: {group_ttl: 1h, max_body_bytes: 1000, max_buffered_bytes: 5000, enabled: false}\n";
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    cfg_errors e = {0};

    exp_config *c = LOAD_WITH(path, &e, "--");
    assert_non_null(c);
    assert_int_equal(c->cfg->push.group_ttl_ns, 3600ULL * 1000000000ULL);
    assert_int_equal(c->cfg->push.max_body_bytes, 1000);
    assert_int_equal(c->cfg->push.max_buffered_bytes, 5000);
    assert_false(c->cfg->push.enabled);
    exp_config_release(c);

    c = LOAD_WITH(path, &e, "--push.group-ttl=0", "--push.max-body-bytes=1",
                  "--push.max-buffered-bytes", "1099511627776", "--push.enabled");
    assert_non_null(c);
    assert_int_equal(c->cfg->push.group_ttl_ns, 0);
    assert_int_equal(c->cfg->push.max_body_bytes, 1);
    assert_true(c->cfg->push.max_buffered_bytes == (size_t)1 << 40);
    assert_true(c->cfg->push.enabled);
    exp_config_release(c);
    assert_int_equal(e.count, 0);

    static const char *const bad[] = {"--push.max-body-bytes=0", "--push.max-buffered-bytes=0",
                                      "--push.max-body-bytes=1099511627777",
                                      "--push.max-buffered-bytes=1099511627777"};
    for (size_t i = 0; i < N(bad); i++) {
        assert_null(LOAD_WITH(path, &e, bad[i]));
        assert_int_equal(e.count, 1);
        size_t flag_len = (size_t)(strchr(bad[i], '=') - bad[i]);
        if (strlen(e.items[0].file) != flag_len || strncmp(e.items[0].file, bad[i], flag_len))
            fail_msg("%s: the error names \"%s\"", bad[i], e.items[0].file);
        assert_string_equal(e.items[0].message, "must be between 1 and 1099511627776");
        cfg_errors_free(&e);
    }
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_string_flags_both_spellings),
        cmocka_unit_test(test_string_flag_empty_value),
        cmocka_unit_test(test_value_with_equals_sign),
        cmocka_unit_test(test_count_flags),
        cmocka_unit_test(test_count_flags_malformed),
        cmocka_unit_test(test_bool_flags),
        cmocka_unit_test(test_bool_does_not_take_next_argument),
        cmocka_unit_test(test_bool_malformed),
        cmocka_unit_test(test_duration_flags),
        cmocka_unit_test(test_log_flags),
        cmocka_unit_test(test_repeated_and_combined),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_usage_text_lists_every_flag),
        cmocka_unit_test(test_config_path),
        cmocka_unit_test(test_count_with_leading_space_is_refused),
        cmocka_unit_test(test_double_dash_keeps_value_checks),
        cmocka_unit_test(test_push_flags_override_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
