/* net.c - listen sockets for every listener (HTTP, StatsD UDP and TCP): binding an address
 * of the configuration's one grammar (cfg_parse_address), IPv6 dual-stack for ":port", several
 * SO_REUSEPORT sockets on one port, and the name of a bound socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "net.h"

/* One socket of socktype bound to sa (SOCK_STREAM: listening). dual_stack: an IPv6 socket
 * that takes IPv4 too; reuseport: SO_REUSEPORT, for several sockets on one port. Returns the
 * fd, or -1 with a reason in err and errno kept from the failing call. */
static int bind_one(const struct sockaddr *sa, socklen_t salen, int socktype, int dual_stack,
                    int reuseport, char *err, size_t errlen) {
    int fd = socket(sa->sa_family, socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    const char *step = NULL;
    if (socktype == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        step = "SO_REUSEPORT";
    if (!step && sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof one);
    if (!step && bind(fd, sa, salen) != 0)
        step = "bind";
    if (!step && socktype == SOCK_STREAM && listen(fd, 128) != 0)
        step = "listen";
    if (step) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", step, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Set the port of an IPv4 or IPv6 address. Cannot fail. */
static void set_port(struct sockaddr_storage *ss, uint16_t port_be) {
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = port_be;
    else if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = port_be;
}

/* n sockets on one address: the first picks the port (when it is 0), the others share it.
 * 0 with fds filled, or -1 with a reason in err and errno of the failure (nothing open). */
static int bind_n(struct sockaddr_storage *sa, socklen_t salen, int socktype, int dual, size_t n,
                  int *fds, char *err, size_t errlen) {
    uint16_t port_be = sa->ss_family == AF_INET6 ? ((struct sockaddr_in6 *)sa)->sin6_port
                                                 : ((struct sockaddr_in *)sa)->sin_port;
    if (n > 1 && port_be != 0) {
        /* SO_REUSEPORT would also join a group another process of this user holds on the
         * port, and the kernel would split the traffic between both: probe without it. */
        int probe = bind_one((struct sockaddr *)sa, salen, socktype, dual, 0, err, errlen);
        if (probe < 0)
            return -1;
        close(probe);
    }
    for (size_t k = 0; k < n; k++) {
        fds[k] = bind_one((struct sockaddr *)sa, salen, socktype, dual, n > 1, err, errlen);
        if (fds[k] < 0) {
            int e = errno;
            while (k > 0)
                close(fds[--k]);
            errno = e;
            return -1;
        }
        struct sockaddr_storage got;
        memset(&got, 0, sizeof got); /* all of it: the port is read through a cast */
        socklen_t gl = sizeof got;
        if (k == 0 && getsockname(fds[0], (struct sockaddr *)&got, &gl) == 0)
            set_port(sa, got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                   : ((struct sockaddr_in *)&got)->sin_port);
    }
    return 0;
}

/* All interfaces: IPv6 dual-stack, or IPv4 only where the kernel has no IPv6. A taken port
 * is an error, not a reason to fall back: that would silently serve IPv4 only. */
static int bind_any(unsigned port, int socktype, size_t n, int *fds, char *err, size_t errlen) {
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    a6->sin6_addr = in6addr_any;
    if (bind_n(&ss, sizeof *a6, socktype, 1, n, fds, err, errlen) == 0)
        return 0;
    if (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL)
        return -1;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    a4->sin_addr.s_addr = htonl(INADDR_ANY);
    return bind_n(&ss, sizeof *a4, socktype, 0, n, fds, err, errlen);
}

/* Returns 0 with n bound sockets in fds, or -1 with a reason in err (nothing left open). */
int exp_listen_n(const char *addr, int socktype, size_t n, int *fds, char *err, size_t errlen) {
    char host[256];
    unsigned port;
    if (n == 0 || cfg_parse_address(addr, host, sizeof host, &port, err, errlen) != 0)
        return -1;
    if (!*host)
        return bind_any(port, socktype, n, fds, err, errlen);
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = socktype, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "resolving \"%s\": %s", host, gai_strerror(rc));
        return -1;
    }
    int ok = -1, tried = 0;
    for (struct addrinfo *ai = res; ai && ok != 0; ai = ai->ai_next) {
        struct sockaddr_storage ss;
        if (ai->ai_addrlen > sizeof ss)
            continue;
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        ok = bind_n(&ss, ai->ai_addrlen, socktype, 0, n, fds, err, errlen);
        tried = 1;
    }
    freeaddrinfo(res);
    if (!tried)
        snprintf(err, errlen, "no usable address");
    return ok;
}

/* Returns a bound socket, or -1 with a reason in err. */
int exp_listen(const char *addr, int socktype, char *err, size_t errlen) {
    int fd;
    return exp_listen_n(addr, socktype, 1, &fd, err, errlen) == 0 ? fd : -1;
}

/* Returns buf; "?" when the socket has no readable name. */
const char *exp_sock_name(int fd, char *buf, size_t cap) {
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof ss;
    char ip[INET6_ADDRSTRLEN];
    snprintf(buf, cap, "?");
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return buf;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(buf, cap, "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(buf, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
    return buf;
}
