/* net.h - listen sockets for every listener (HTTP, StatsD): binding an address of the one
 * grammar the configuration checks, and naming a bound socket. */
#ifndef ABACUS_EXPORTER_NET_H
#define ABACUS_EXPORTER_NET_H

#include <stddef.h>

/* Sockets of the given type (SOCK_STREAM ones listen with a backlog; SOCK_DGRAM ones are only
 * bound) on a listen address in the grammar of cfg_parse_address. ":port" binds IPv6
 * dual-stack, or IPv4 only when the kernel has no IPv6 (a taken port is an error, never a
 * reason to fall back). exp_listen_n binds n sockets on one port with SO_REUSEPORT (port 0:
 * the first picks a free port, the others share it) and fills fds; exp_listen binds one and
 * returns it. Sockets are close-on-exec. Return 0 / the fd, or -1 with a reason in err and
 * nothing left open. */
int exp_listen_n(const char *addr, int socktype, size_t n, int *fds, char *err, size_t errlen);
int exp_listen(const char *addr, int socktype, char *err, size_t errlen);
/* The local address of a socket as "host:port" ("[v6]:port"). Returns buf; "?" on failure. */
const char *exp_sock_name(int fd, char *buf, size_t cap);

#endif
