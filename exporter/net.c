/* net.c - listen sockets for every listener: the listen-address grammar, binding (IPv6
 * dual-stack for ":port"), and the name of a bound socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

/* Returns 0, or -1 with a reason in err. */
int exp_split_address(const char *addr, char *host, size_t hostcap, unsigned *port, char *err,
                      size_t errlen) {
    const char *colon, *h = addr;
    size_t hlen;
    if (!addr || !*addr) {
        snprintf(err, errlen, "empty address");
        return -1;
    }
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close) {
            snprintf(err, errlen, "missing ']'");
            return -1;
        }
        if (close[1] != ':') {
            snprintf(err, errlen, "missing port after ']'");
            return -1;
        }
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (hlen == 0) {
            snprintf(err, errlen, "empty IPv6 address");
            return -1;
        }
    } else {
        colon = strrchr(addr, ':');
        if (!colon) {
            snprintf(err, errlen, "missing port (want host:port or :port)");
            return -1;
        }
        hlen = (size_t)(colon - addr);
        if (memchr(addr, ':', hlen)) {
            snprintf(err, errlen, "IPv6 addresses need brackets: [addr]:port");
            return -1;
        }
    }
    const char *p = colon + 1;
    if (!*p) {
        snprintf(err, errlen, "missing port");
        return -1;
    }
    unsigned long v = 0;
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9' || q - p >= 5) {
            snprintf(err, errlen, "invalid port \"%s\"", p);
            return -1;
        }
        v = v * 10 + (unsigned long)(*q - '0');
    }
    if (v > 65535) {
        snprintf(err, errlen, "port %lu out of range", v);
        return -1;
    }
    if (hlen >= hostcap) {
        snprintf(err, errlen, "host too long");
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (unsigned)v;
    return 0;
}

static int bind_one(int family, int socktype, const struct sockaddr *sa, socklen_t salen,
                    int dual_stack, char *err, size_t errlen) {
    int fd = socket(family, socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    if (socktype == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof one);
    if (bind(fd, sa, salen) != 0) {
        snprintf(err, errlen, "bind: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (socktype == SOCK_STREAM && listen(fd, 128) != 0) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Returns a bound socket, or -1 with a reason in err. */
int exp_listen(const char *addr, int socktype, char *err, size_t errlen) {
    char host[256];
    unsigned port;
    if (exp_split_address(addr, host, sizeof host, &port, err, errlen) != 0)
        return -1;
    if (!*host) {
        /* All interfaces: IPv6 dual-stack, or IPv4 where the kernel has no IPv6. */
        struct sockaddr_in6 a6 = {
            .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = in6addr_any};
        int fd = bind_one(AF_INET6, socktype, (struct sockaddr *)&a6, sizeof a6, 1, err, errlen);
        if (fd >= 0)
            return fd;
        struct sockaddr_in a4 = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_ANY)};
        return bind_one(AF_INET, socktype, (struct sockaddr *)&a4, sizeof a4, 0, err, errlen);
    }
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
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = bind_one(ai->ai_family, socktype, ai->ai_addr, ai->ai_addrlen, 0, err, errlen);
    freeaddrinfo(res);
    return fd;
}

/* Returns buf; "?" when the socket has no readable name. */
const char *exp_sock_name(int fd, char *buf, size_t cap) {
    struct sockaddr_storage ss;
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
