/* test_net.c - unit tests of the listen sockets (exporter/net.c): exp_listen for every address
 * form on loopback with port 0 ("127.0.0.1:0", "[::1]:0" when the kernel has IPv6, ":0" all
 * interfaces dual-stack, "localhost:0"), stream and datagram, each socket checked for what it
 * is (family, type, listening or not, close-on-exec, dual-stack) and used once (a connection
 * or a datagram over loopback); errors (port in use, bad host, bad port) with their reason
 * and no descriptor leaked; exp_sock_name for IPv4, IPv6 and sockets it cannot name;
 * exp_listen_n groups of SO_REUSEPORT sockets on one port (sharing what is sent to it).
 *
 * One table of cases. The address grammar itself is config's (cfg_parse_address, its own
 * table test); here only binding and naming. Every socket is closed by the case that made it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../support/fds.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static int have_ipv6(void) {
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int count_fds(void) {
    return open_fds_now() - 1; /* not the directory's own descriptor */
}

static int sock_int_opt(int fd, int level, int opt) {
    int v = -1;
    socklen_t len = sizeof v;
    assert_int_equal(getsockopt(fd, level, opt, &v, &len), 0);
    return v;
}

/* The bound family and port of fd. */
static int bound(int fd, unsigned *port) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    if (ss.ss_family == AF_INET)
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    else
        *port = 0;
    return ss.ss_family;
}

/* The loopback address of family fam (AF_INET or AF_INET6) with port, into ss. Returns its
 * length. */
static socklen_t loopback_addr(int fam, unsigned port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    if (fam == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return sizeof *a;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    a->sin6_addr = in6addr_loopback;
    return sizeof *a;
}

/* Reach the socket fd (bound to port) from a loopback address of family fam: for a stream,
 * connect and accept; for a datagram, send one and receive it. Asserts it works. */
static void use_over_loopback(int fd, int socktype, int fam, unsigned port) {
    struct sockaddr_storage ss;
    socklen_t len = loopback_addr(fam, port, &ss);
    int c = socket(fam, socktype | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    if (socktype == SOCK_STREAM) {
        if (connect(c, (struct sockaddr *)&ss, len) != 0)
            fail_msg("connect over %s to port %u: %s", fam == AF_INET ? "IPv4" : "IPv6", port,
                     strerror(errno));
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 10000), 1);
        int a = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(a >= 0);
        assert_int_equal(write(c, "x", 1), 1);
        char b;
        assert_int_equal(read(a, &b, 1), 1);
        assert_int_equal(b, 'x');
        close(a);
    } else {
        if (sendto(c, "ping", 4, 0, (struct sockaddr *)&ss, len) != 4)
            fail_msg("sendto over %s to port %u: %s", fam == AF_INET ? "IPv4" : "IPv6", port,
                     strerror(errno));
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 10000), 1);
        char b[8];
        assert_int_equal(recv(fd, b, sizeof b, 0), 4);
        assert_memory_equal(b, "ping", 4);
    }
    close(c);
}

/* A socket of fam/socktype bound to loopback port 0 (the "someone else has the port" side of
 * the port-in-use cases). Returns the fd; *port gets the port. */
static int occupy(int fam, int socktype, unsigned *port) {
    int fd = socket(fam, socktype | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int rc;
    if (fam == AF_INET) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    } else {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        rc = bind(fd, (struct sockaddr *)&a, sizeof a);
    }
    assert_int_equal(rc, 0);
    if (socktype == SOCK_STREAM)
        assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(bound(fd, port), fam);
    return fd;
}

/* ---- the table --------------------------------------------------------------------------- */

enum { V4, V6, ANY, LOCALHOST };
enum { OCC_NONE, OCC_V4, OCC_V6 }; /* port-in-use cases: what to occupy first */

typedef struct {
    const char *addr; /* "%u" is replaced by the occupied port */
    int socktype;
    int needs_v6;
    int ok;
    int kind;           /* ok: which address the socket must be bound to */
    int occupy;         /* error: bind this first and use its port */
    const char *reason; /* error: fragment of err */
} net_case;

static const net_case cases[] = {
    /* every form, both types */
    {"127.0.0.1:0", SOCK_STREAM, 0, 1, V4, OCC_NONE, NULL},
    {"127.0.0.1:0", SOCK_DGRAM, 0, 1, V4, OCC_NONE, NULL},
    {"[::1]:0", SOCK_STREAM, 1, 1, V6, OCC_NONE, NULL},
    {"[::1]:0", SOCK_DGRAM, 1, 1, V6, OCC_NONE, NULL},
    {":0", SOCK_STREAM, 0, 1, ANY, OCC_NONE, NULL},
    {":0", SOCK_DGRAM, 0, 1, ANY, OCC_NONE, NULL},
    {"localhost:0", SOCK_STREAM, 0, 1, LOCALHOST, OCC_NONE, NULL},
    {"localhost:0", SOCK_DGRAM, 0, 1, LOCALHOST, OCC_NONE, NULL},
    /* port in use */
    {"127.0.0.1:%u", SOCK_STREAM, 0, 0, 0, OCC_V4, "in use"},
    {"127.0.0.1:%u", SOCK_DGRAM, 0, 0, 0, OCC_V4, "in use"},
    {"[::1]:%u", SOCK_STREAM, 1, 0, 0, OCC_V6, "in use"},
    {"[::1]:%u", SOCK_DGRAM, 1, 0, 0, OCC_V6, "in use"},
    {":%u", SOCK_STREAM, 0, 0, 0, OCC_V4, "in use"}, /* dual-stack :port covers 127.0.0.1 */
    {":%u", SOCK_DGRAM, 0, 0, 0, OCC_V4, "in use"},
    /* taken on IPv6 only: an error, never a silent IPv4-only socket (this fell back to
     * 0.0.0.0 until f8480ee) */
    {":%u", SOCK_STREAM, 1, 0, 0, OCC_V6, "in use"},
    {":%u", SOCK_DGRAM, 1, 0, 0, OCC_V6, "in use"},
    /* bad host: not an address of this machine (TEST-NET-1), a name that does not resolve */
    {"192.0.2.1:0", SOCK_STREAM, 0, 0, 0, OCC_NONE, "bind"},
    {"192.0.2.1:0", SOCK_DGRAM, 0, 0, 0, OCC_NONE, "bind"},
    {"no-such-host.invalid:0", SOCK_STREAM, 0, 0, 0, OCC_NONE, "no-such-host.invalid"},
    {"no-such-host.invalid:0", SOCK_DGRAM, 0, 0, 0, OCC_NONE, "no-such-host.invalid"},
    /* bad port */
    {"127.0.0.1:65536", SOCK_STREAM, 0, 0, 0, OCC_NONE, "65536"},
    {"127.0.0.1:-1", SOCK_STREAM, 0, 0, 0, OCC_NONE, "port"},
    {"127.0.0.1:http", SOCK_DGRAM, 0, 0, 0, OCC_NONE, "port"},
    {"127.0.0.1:", SOCK_STREAM, 0, 0, 0, OCC_NONE, "port"},
    {"127.0.0.1", SOCK_STREAM, 0, 0, 0, OCC_NONE, "port"},
    {"", SOCK_STREAM, 0, 0, 0, OCC_NONE, "empty"},
};

/* Checks a socket exp_listen returned for the case c. */
static void check_bound(const net_case *c, int fd, int v6) {
    /* what it is */
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(sock_int_opt(fd, SOL_SOCKET, SO_TYPE), c->socktype);
    assert_int_equal(sock_int_opt(fd, SOL_SOCKET, SO_ACCEPTCONN), c->socktype == SOCK_STREAM);
    unsigned port;
    int fam = bound(fd, &port);
    assert_true(port > 0); /* port 0 picked a free one */

    char name[64], want[64];
    exp_sock_name(fd, name, sizeof name);
    switch (c->kind) {
    case V4:
        assert_int_equal(fam, AF_INET);
        snprintf(want, sizeof want, "127.0.0.1:%u", port);
        assert_string_equal(name, want);
        use_over_loopback(fd, c->socktype, AF_INET, port);
        break;
    case V6:
        assert_int_equal(fam, AF_INET6);
        snprintf(want, sizeof want, "[::1]:%u", port);
        assert_string_equal(name, want);
        use_over_loopback(fd, c->socktype, AF_INET6, port);
        break;
    case ANY:
        /* all interfaces: IPv6 dual-stack where the kernel has IPv6, else IPv4 */
        if (v6) {
            assert_int_equal(fam, AF_INET6);
            assert_int_equal(sock_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 0);
            snprintf(want, sizeof want, "[::]:%u", port);
            assert_string_equal(name, want);
            use_over_loopback(fd, c->socktype, AF_INET6, port);
        } else {
            assert_int_equal(fam, AF_INET);
            snprintf(want, sizeof want, "0.0.0.0:%u", port);
            assert_string_equal(name, want);
        }
        use_over_loopback(fd, c->socktype, AF_INET, port); /* dual-stack: IPv4 reaches it */
        break;
    case LOCALHOST: {
        /* whatever localhost resolves to first: a loopback address */
        char v4[32], v6n[32];
        snprintf(v4, sizeof v4, "127.0.0.1:%u", port);
        snprintf(v6n, sizeof v6n, "[::1]:%u", port);
        if (strcmp(name, v4) != 0 && strcmp(name, v6n) != 0)
            fail_msg("localhost:0 bound to %s", name);
        use_over_loopback(fd, c->socktype, fam, port);
        break;
    }
    }
}

static void test_listen_table(void **state) {
    (void)state;
    int v6 = have_ipv6();
    if (!v6)
        print_message("no IPv6 on this kernel: [::1] cases skipped, :0 checked as IPv4\n");
    int fds_before = count_fds();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const net_case *c = &cases[i];
        if (c->needs_v6 && !v6)
            continue;
        const char *type = c->socktype == SOCK_STREAM ? "stream" : "dgram";
        char addr[64];
        int occ = -1;
        if (c->occupy != OCC_NONE) {
            unsigned port;
            occ = occupy(c->occupy == OCC_V4 ? AF_INET : AF_INET6, c->socktype, &port);
            snprintf(addr, sizeof addr, c->addr, port);
        } else {
            snprintf(addr, sizeof addr, "%s", c->addr);
        }
        char err[256] = "";
        int fds = count_fds();
        int fd = exp_listen(addr, c->socktype, err, sizeof err);
        if (c->ok) {
            if (fd < 0)
                fail_msg("case %zu: exp_listen(\"%s\", %s) failed: %s", i, addr, type, err);
            assert_int_equal(count_fds(), fds + 1);
            check_bound(c, fd, v6);
            close(fd);
        } else {
            if (fd >= 0)
                fail_msg("case %zu: exp_listen(\"%s\", %s) succeeded, want an error", i, addr,
                         type);
            assert_int_equal(fd, -1);
            if (!err[0] || !strstr(err, c->reason))
                fail_msg("case %zu: exp_listen(\"%s\", %s): reason \"%s\" lacks \"%s\"", i, addr,
                         type, err, c->reason);
            assert_null(memchr(err, '\n', strlen(err))); /* one line, for a log field */
            assert_int_equal(count_fds(), fds);          /* nothing leaked on failure */
        }
        if (occ >= 0)
            close(occ);
    }
    assert_int_equal(count_fds(), fds_before);
}

/* Two sockets on ":0" get different ports; a stream and a datagram socket may share one. */
static void test_listen_port_zero_picks_distinct_ports(void **state) {
    (void)state;
    char err[256];
    int a = exp_listen("127.0.0.1:0", SOCK_STREAM, err, sizeof err);
    int b = exp_listen("127.0.0.1:0", SOCK_STREAM, err, sizeof err);
    assert_true(a >= 0 && b >= 0);
    unsigned pa, pb;
    bound(a, &pa);
    bound(b, &pb);
    assert_int_not_equal(pa, pb);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", pa);
    int u = exp_listen(addr, SOCK_DGRAM, err, sizeof err);
    if (u < 0)
        fail_msg("UDP on the TCP port %u: %s", pa, err);
    close(u);
    close(a);
    close(b);
}

/* A stream port is free again as soon as its listener closes (SO_REUSEADDR: a restart does
 * not wait for TIME_WAIT). */
static void test_listen_rebind_after_close(void **state) {
    (void)state;
    char err[256];
    int a = exp_listen("127.0.0.1:0", SOCK_STREAM, err, sizeof err);
    assert_true(a >= 0);
    unsigned port;
    bound(a, &port);
    use_over_loopback(a, SOCK_STREAM, AF_INET, port); /* leaves a closed connection behind */
    close(a);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    int b = exp_listen(addr, SOCK_STREAM, err, sizeof err);
    if (b < 0)
        fail_msg("rebinding %s after close: %s", addr, err);
    close(b);
}

/* exp_sock_name: IPv4 and IPv6 as host:port and [v6]:port, "?" for what it cannot name, and
 * never more than cap bytes. */
static void test_sock_name(void **state) {
    (void)state;
    char buf[64], want[64];
    unsigned port;
    int fd = occupy(AF_INET, SOCK_STREAM, &port);
    assert_ptr_equal(exp_sock_name(fd, buf, sizeof buf), buf);
    snprintf(want, sizeof want, "127.0.0.1:%u", port);
    assert_string_equal(buf, want);
    /* truncated to cap, still terminated */
    char small[6];
    memset(small, 'z', sizeof small);
    exp_sock_name(fd, small, sizeof small);
    assert_string_equal(small, "127.0");
    close(fd);

    if (have_ipv6()) {
        fd = occupy(AF_INET6, SOCK_DGRAM, &port);
        exp_sock_name(fd, buf, sizeof buf);
        snprintf(want, sizeof want, "[::1]:%u", port);
        assert_string_equal(buf, want);
        close(fd);
        /* an IPv4-mapped peer name is still an IPv6 socket name */
        int c = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c >= 0);
        struct sockaddr_in6 a = {.sin6_family = AF_INET6};
        inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.sin6_addr);
        int zero = 0;
        setsockopt(c, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        if (bind(c, (struct sockaddr *)&a, sizeof a) == 0) {
            bound(c, &port);
            exp_sock_name(c, buf, sizeof buf);
            snprintf(want, sizeof want, "[::ffff:127.0.0.1]:%u", port);
            assert_string_equal(buf, want);
        }
        close(c);
    }

    /* not nameable: a pipe, a closed descriptor, a Unix socket */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_string_equal(exp_sock_name(p[0], buf, sizeof buf), "?");
    close(p[0]);
    close(p[1]);
    assert_string_equal(exp_sock_name(p[0], buf, sizeof buf), "?");
    assert_string_equal(exp_sock_name(-1, buf, sizeof buf), "?");
    int u = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(u >= 0);
    assert_string_equal(exp_sock_name(u, buf, sizeof buf), "?");
    close(u);
}

/* ---- exp_listen_n: n SO_REUSEPORT sockets on one port ------------------------------------- */

/* n sockets from exp_listen_n(addr): distinct, one port, SO_REUSEPORT, all of the same kind
 * as exp_listen's; together they take what is sent to the port. */
static void check_group(const char *addr, int socktype, size_t n, int want_fam) {
    int fds[8];
    char err[256] = "";
    int before = count_fds();
    if (exp_listen_n(addr, socktype, n, fds, err, sizeof err) != 0)
        fail_msg("exp_listen_n(\"%s\", %zu): %s", addr, n, err);
    assert_int_equal(count_fds(), before + (int)n);
    unsigned port0 = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned port;
        assert_int_equal(bound(fds[k], &port), want_fam);
        if (k == 0)
            port0 = port;
        assert_int_equal(port, port0);
        assert_true(port > 0);
        assert_int_equal(sock_int_opt(fds[k], SOL_SOCKET, SO_REUSEPORT), 1);
        assert_int_equal(sock_int_opt(fds[k], SOL_SOCKET, SO_TYPE), socktype);
        assert_int_equal(sock_int_opt(fds[k], SOL_SOCKET, SO_ACCEPTCONN), socktype == SOCK_STREAM);
        assert_true(fcntl(fds[k], F_GETFD) & FD_CLOEXEC);
        for (size_t j = 0; j < k; j++)
            assert_int_not_equal(fds[j], fds[k]);
    }
    /* 32 clients from their own ports: each lands on one of the group */
    int fam = want_fam == AF_INET6 && strncmp(addr, "[::1]", 5) != 0 ? AF_INET : want_fam;
    struct sockaddr_storage ss;
    socklen_t len = loopback_addr(fam, port0, &ss);
    int clients[32];
    for (int c = 0; c < 32; c++) {
        int cl = socket(fam, socktype | SOCK_CLOEXEC, 0);
        assert_true(cl >= 0);
        if (socktype == SOCK_STREAM)
            assert_int_equal(connect(cl, (struct sockaddr *)&ss, len), 0);
        else
            assert_int_equal(sendto(cl, "x", 1, 0, (struct sockaddr *)&ss, len), 1);
        clients[c] = cl;
    }
    int got = 0;
    while (got < 32) {
        struct pollfd p[8];
        for (size_t k = 0; k < n; k++)
            p[k] = (struct pollfd){.fd = fds[k], .events = POLLIN};
        if (poll(p, (nfds_t)n, 10000) < 1)
            fail_msg("%s: %d of 32 clients arrived", addr, got);
        for (size_t k = 0; k < n; k++) {
            if (!(p[k].revents & POLLIN))
                continue;
            if (socktype == SOCK_STREAM) {
                int a = accept4(fds[k], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (a >= 0) {
                    got++;
                    close(a);
                }
            } else {
                char b;
                if (recv(fds[k], &b, 1, MSG_DONTWAIT) == 1)
                    got++;
            }
        }
    }
    for (int c = 0; c < 32; c++)
        close(clients[c]);
    assert_int_equal(got, 32);
    for (size_t k = 0; k < n; k++)
        close(fds[k]);
    assert_int_equal(count_fds(), before);
}

static void test_listen_n_group(void **state) {
    (void)state;
    int v6 = have_ipv6();
    check_group("127.0.0.1:0", SOCK_DGRAM, 3, AF_INET);
    check_group("127.0.0.1:0", SOCK_STREAM, 2, AF_INET);
    check_group(":0", SOCK_DGRAM, 4, v6 ? AF_INET6 : AF_INET);
    check_group(":0", SOCK_STREAM, 2, v6 ? AF_INET6 : AF_INET);
    if (v6) {
        check_group("[::1]:0", SOCK_DGRAM, 2, AF_INET6);
        check_group("[::1]:0", SOCK_STREAM, 3, AF_INET6);
    }
    /* n = 1 is exp_listen: no SO_REUSEPORT, so nobody can join it */
    int fd;
    char err[256];
    assert_int_equal(exp_listen_n("127.0.0.1:0", SOCK_DGRAM, 1, &fd, err, sizeof err), 0);
    assert_int_equal(sock_int_opt(fd, SOL_SOCKET, SO_REUSEPORT), 0);
    close(fd);
}

static void test_listen_n_errors(void **state) {
    (void)state;
    int fds[4] = {-1, -1, -1, -1};
    char err[256] = "";
    int before = count_fds();
    assert_int_equal(exp_listen_n("127.0.0.1:0", SOCK_DGRAM, 0, fds, err, sizeof err), -1);
    assert_int_equal(exp_listen_n("127.0.0.1:x", SOCK_DGRAM, 2, fds, err, sizeof err), -1);
    assert_non_null(strstr(err, "port"));
    /* the port taken by a plain socket: an error, nothing left open */
    unsigned port;
    int occ = occupy(AF_INET, SOCK_DGRAM, &port);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    err[0] = '\0';
    assert_int_equal(exp_listen_n(addr, SOCK_DGRAM, 3, fds, err, sizeof err), -1);
    assert_non_null(strstr(err, "in use"));
    close(occ);
    assert_int_equal(count_fds(), before);
}

/* A second group of SO_REUSEPORT sockets must not join a port another group holds: a second
 * abacus (same user, same network namespace: two sidecars of one pod, or an old process still
 * running) with --statsd.readers=2 on the same UDP port would start without error and the
 * kernel would split the StatsD datagrams between the two processes. Found by this test:
 * exp_listen_n("127.0.0.1:P", SOCK_DGRAM, 2, ...) twice on one P both returned 0. */
static void test_listen_n_refuses_a_foreign_group(void **state) {
    (void)state;
    int a[2], b[2];
    char err[256] = "", name[64];
    assert_int_equal(exp_listen_n("127.0.0.1:0", SOCK_DGRAM, 2, a, err, sizeof err), 0);
    exp_sock_name(a[0], name, sizeof name);
    int rc = exp_listen_n(name, SOCK_DGRAM, 2, b, err, sizeof err);
    if (rc == 0) {
        close(b[0]);
        close(b[1]);
    }
    close(a[0]);
    close(a[1]);
    if (rc == 0)
        fail_msg("BUG: a second exp_listen_n group bound %s, which another group holds; want "
                 "an \"in use\" error",
                 name);
    assert_non_null(strstr(err, "in use"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_table),
        cmocka_unit_test(test_listen_port_zero_picks_distinct_ports),
        cmocka_unit_test(test_listen_rebind_after_close),
        cmocka_unit_test(test_sock_name),
        cmocka_unit_test(test_listen_n_group),
        cmocka_unit_test(test_listen_n_errors),
        cmocka_unit_test(test_listen_n_refuses_a_foreign_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
