"""test_listen_defaults.py - the all-interface listen form of the defaults (`:9102` for HTTP,
`:9125` for StatsD UDP and TCP), with ports the test picks free: `:PORT` binds every
interface, IPv6 dual-stack when the kernel has IPv6 (so both 127.0.0.1 and ::1 reach it),
else IPv4. The process lives only for the test and is stopped by it.

Checked: the logged addresses, the bound sockets in /proc/PID/net (wildcard address, LISTEN
for TCP), HTTP over 127.0.0.1 and ::1, StatsD lines over UDP and TCP from both families,
counted per metric."""

import os
import re
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, wait_until  # noqa: E402


def bound(pid, table, port):
    """(local address hex, state) of process pid's sockets on port in /proc/PID/net/<table>."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    with open("/proc/%d/net/%s" % (pid, table)) as f:
        next(f)
        for row in f:
            col = row.split()
            addr, p = col[1].rsplit(":", 1)
            if int(p, 16) == port and col[9] in inodes:
                out.append((addr, col[3]))
    return out


class AllInterfaces(unittest.TestCase):
    def start(self):
        """abacus on :PORT for HTTP, UDP and TCP (free ports picked here; a port taken again
        before abacus binds it makes it exit 1: try again)."""
        for attempt in range(3):
            web = harness.free_port_all(socket.SOCK_STREAM)
            udp = harness.free_port_all(socket.SOCK_DGRAM)
            tcp = harness.free_port_all(socket.SOCK_STREAM)
            a = Abacus(args=["--web.listen-address=:%d" % web, "--statsd.listen-udp=:%d" % udp,
                             "--statsd.listen-tcp=:%d" % tcp])
            try:
                a.start()
                a.wait_log(r"statsd listener started.*listener=tcp")
                return a, web, udp, tcp
            except AssertionError:
                a.cleanup()
                if attempt == 2 or "in use" not in a.log_text():
                    raise
        raise AssertionError("unreachable")

    def test_all_interface_binds(self):
        v6 = harness.have_ipv6()
        a, web, udp, tcp = self.start()
        try:
            wild = "[::]" if v6 else "0.0.0.0"
            log = a.log_text()
            self.assertRegex(log, r"msg=listening address=%s:%d " % (re.escape(wild), web))
            for kind, port in (("udp", udp), ("tcp", tcp)):
                self.assertRegex(log, r'msg="statsd listener started" listener=%s address=%s:%d '
                                 % (kind, re.escape(wild), port))
            # the sockets are bound to the wildcard address (every interface), not loopback
            fam = "6" if v6 else ""
            zero = "0" * (32 if v6 else 8)
            listening = lambda port: [x for x in bound(a.proc.pid, "tcp" + fam, port)  # noqa
                                      if x[1] == "0A"]  # state LISTEN
            self.assertEqual(listening(web), [(zero, "0A")])
            self.assertEqual(listening(tcp), [(zero, "0A")])
            self.assertEqual([x[0] for x in bound(a.proc.pid, "udp" + fam, udp)], [zero])

            hosts = ["127.0.0.1"] + (["::1"] if v6 else [])
            for host in hosts:
                r = harness.http_request(host, web, "GET", "/-/healthy")
                self.assertEqual((r.status, r.body), (200, b"OK\n"), host)
            # StatsD from each family, over UDP and TCP, each to its own metric
            for host in hosts:
                fam_ = socket.AF_INET6 if ":" in host else socket.AF_INET
                tag = "v6" if fam_ == socket.AF_INET6 else "v4"
                with socket.socket(fam_, socket.SOCK_DGRAM) as s:
                    s.sendto(b"e2e_udp_%s_total:1|c" % tag.encode(), (host, udp))
                with socket.create_connection((host, tcp), timeout=20) as c:
                    c.sendall(b"e2e_tcp_%s_total:2|c\n" % tag.encode())
            a.host = "127.0.0.1"
            for host in hosts:
                tag = "v6" if ":" in host else "v4"
                wait_until(lambda: a.value("e2e_udp_%s_total" % tag) == 1,
                           "the UDP line sent to %s" % host)
                wait_until(lambda: a.value("e2e_tcp_%s_total" % tag) == 2,
                           "the TCP line sent to %s" % host)
            if v6:  # the same page over ::1
                a.host = "::1"
                wait_until(lambda: a.value("e2e_udp_v4_total") == 1, "a scrape over ::1")
            a.stop()
        finally:
            a.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
