/* net.h - listen sockets for every listener (HTTP, StatsD): binding an address of the one
 * grammar the configuration checks, and naming a bound socket. */
#ifndef ABACUS_EXPORTER_NET_H
#define ABACUS_EXPORTER_NET_H

#include <stddef.h>

/* Split a listen address: "host:port", ":port" (all interfaces), "[v6addr]:port". host gets
 * "" for all interfaces. Returns 0, or -1 with a reason in err. */
int exp_split_address(const char *addr, char *host, size_t hostcap, unsigned *port, char *err,
                      size_t errlen);
/* A bound socket of the given type (SOCK_STREAM listens with a backlog; SOCK_DGRAM is only
 * bound) for a listen address. ":port" binds IPv6 dual-stack, or IPv4 when IPv6 is
 * unavailable. Returns the fd (close-on-exec), or -1 with a reason in err. */
int exp_listen(const char *addr, int socktype, char *err, size_t errlen);
/* The local address of a socket as "host:port" ("[v6]:port"). Returns buf; "?" on failure. */
const char *exp_sock_name(int fd, char *buf, size_t cap);

#endif
