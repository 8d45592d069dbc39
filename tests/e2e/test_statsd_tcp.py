"""test_statsd_tcp.py - end-to-end tests of the StatsD TCP listener's bounds: the real binary and
real sockets, checked through /metrics, /proc and the clients' own sockets.

- Idle timeout (statsd.tcp_idle_timeout): many idle connections, some holding a partial line,
  are closed once idle for the configured time and counted; their descriptors go back; a
  connection that keeps sending stays open.
- Connection cap (--statsd.max-tcp-connections): over the cap a new client is closed at once
  and counted as refused{reason="limit"}; the open ones keep working; once some close, new
  clients get in again.
- Memory: connections each holding a 60 KB partial line raise RSS; after they close, RSS
  comes back to within 16 MiB of before (not checked under sanitizers, whose allocators keep
  memory on purpose).
Conditions are awaited by polling with a deadline, never by fixed sleeps.
"""

import os
import re
import resource
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Abacus, proc_status_kib, run, sanitizer,  # noqa: E402
                     wait_until)


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def closed_by_peer(s, timeout=20.0):
    """True when the peer closed s (EOF or reset) within timeout seconds, False if data came."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def conns_on_port(pid, port):
    """Established TCP connections process pid holds open on its local port: its socket
    descriptors matched against the kernel's socket table by inode."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    n = 0
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                next(f)
                for line in f:
                    col = line.split()
                    local_port = int(col[1].rsplit(":", 1)[1], 16)
                    if local_port == port and col[3] == "01" and col[9] in inodes:
                        n += 1
        except FileNotFoundError:
            pass
    return n


class TcpAbacus(Abacus):
    """Abacus with only a TCP StatsD listener on an ephemeral loopback port."""

    def __init__(self, config=None, args=()):
        super().__init__(config=config, args=args)
        self.args = [x for x in self.args if not x.startswith("--statsd.listen-")]
        self.args += ["--statsd.listen-udp=", "--statsd.listen-tcp=127.0.0.1:0"]
        self.want_statsd = True
        self.tcp_addr = None

    def start(self, wait_ready=True):
        super().start(wait_ready=wait_ready)
        m = re.search(r'statsd listener started"? listener=tcp address=(\S+):(\d+)',
                      self.log_text())
        assert m, self.log_text()
        self.tcp_addr = (m.group(1).strip("[]"), int(m.group(2)))
        return self

    def connect(self):
        return socket.create_connection(self.tcp_addr, timeout=20)

    def metric(self, name, labels=None):
        return self.value(name, labels) or 0

    def await_metric(self, name, labels, want, what=None, timeout=20):
        return wait_until(lambda: self.metric(name, labels) == want,
                          what or "%s%s == %r" % (name, labels or "", want), timeout=timeout)


IDLE = {"reason": "idle_timeout"}
LIMIT = {"reason": "limit"}


class StatsdTcpTest(unittest.TestCase):

    def test_idle_timeout_closes_idle_connections(self):
        n = 200
        raise_fd_limit(4 * n)
        # The YAML key; a connection that sends every 250 ms stays well inside 3 s.
        with TcpAbacus(config="statsd:\n  tcp_idle_timeout: 3s\n") as a:
            port = a.tcp_addr[1]
            conns = [a.connect() for _ in range(n)]
            for c in conns[:20]:
                c.sendall(b"idle_partial_total:1|c\nidle_partial_tot")  # a line, then a tail
            a.await_metric("abacus_statsd_tcp_connections_total", None, n)
            # Held, or already closed as idle: the 3 s count from each accept, and a loaded
            # machine can spend them before this check. The count is read before the sockets,
            # so a close in between makes the sum short (and the wait go on), never long.
            def held_or_closed_idle():
                closed = a.metric("abacus_statsd_tcp_connections_closed_total", IDLE) or 0
                return conns_on_port(a.proc.pid, port) + closed == n
            wait_until(held_or_closed_idle, "abacus to hold the idle connections")
            active = a.connect()
            deadline = time.monotonic() + 3 * 3  # three idle timeouts of activity
            sent = 0
            while time.monotonic() < deadline:
                active.sendall(b"active_total:1|c\n")
                sent += 1
                time.sleep(0.25)  # pacing the client, not an assertion
            # Every idle connection was closed by abacus, and counted.
            a.await_metric("abacus_statsd_tcp_connections_closed_total", IDLE, n,
                           timeout=30)
            for c in conns:
                self.assertTrue(closed_by_peer(c), "an idle connection stayed open")
                c.close()
            wait_until(lambda: conns_on_port(a.proc.pid, port) == 1,
                       "the descriptors of the closed connections to be released")
            # The partial lines were dropped with their connections: only the whole lines
            # counted.
            self.assertEqual(a.metric("idle_partial_total"), 20)
            # The active connection is still open and still delivering.
            active.sendall(b"active_total:1|c\n")
            a.await_metric("active_total", None, sent + 1)
            self.assertEqual(a.metric("abacus_statsd_tcp_connections_closed_total", IDLE), n)
            active.close()

    def test_idle_timeout_zero_means_never_and_flag_wins(self):
        # The flag overrides the file; 0 disables the timeout.
        with TcpAbacus(config="statsd:\n  tcp_idle_timeout: 1s\n",
                       args=["--statsd.tcp-idle-timeout=0"]) as a:
            c = a.connect()
            a.await_metric("abacus_statsd_tcp_connections_total", None, 1)
            # Poll for a while: an idle close would show as EOF on c or in the counter.
            c.settimeout(0.1)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                try:
                    self.assertNotEqual(c.recv(1), b"", "closed although the timeout is off")
                except socket.timeout:
                    pass
            self.assertEqual(a.metric("abacus_statsd_tcp_connections_closed_total", IDLE), 0)
            c.sendall(b"still_open_total:1|c\n")
            a.await_metric("still_open_total", None, 1)
            c.close()

    def test_connection_cap_refuses_and_counts(self):
        cap, extra = 20, 10
        raise_fd_limit(200)
        with TcpAbacus(args=["--statsd.max-tcp-connections=%d" % cap]) as a:
            conns = [a.connect() for _ in range(cap)]
            for c in conns:
                c.sendall(b"cap_open_total:1|c\n")
            a.await_metric("cap_open_total", None, cap)
            # Over the cap: closed at once, counted, nothing they send is read.
            over = [a.connect() for _ in range(extra)]
            for c in over:
                self.assertTrue(closed_by_peer(c), "a connection over the cap stayed open")
                c.close()
            a.await_metric("abacus_statsd_tcp_connections_refused_total", LIMIT, extra)
            self.assertEqual(a.metric("abacus_statsd_tcp_connections_total"), cap)
            # The open ones keep working.
            for c in conns:
                c.sendall(b"cap_open_total:1|c\n")
            a.await_metric("cap_open_total", None, 2 * cap)
            # Once some close, newcomers get in again.
            for c in conns[:5]:
                c.close()
            conns = conns[5:]

            def newcomer_counted():
                c = a.connect()
                try:
                    c.sendall(b"cap_new_total:1|c\n")
                finally:
                    c.close()
                return a.metric("cap_new_total") >= 1
            wait_until(newcomer_counted, "a new client to be accepted after closes")
            for c in conns:
                c.close()
            self.assertIn("statsd tcp connection refused", a.log_text())

    def test_settings_are_checked(self):
        rc, _, err = run(["--statsd.tcp-idle-timeout=soon", "--check-config"])
        self.assertEqual(rc, 2)
        self.assertIn("--statsd.tcp-idle-timeout", err)
        rc, out, err = run(["--statsd.max-tcp-connections=0", "--check-config"])
        self.assertNotEqual(rc, 0)
        self.assertIn("--statsd.max-tcp-connections", out + err)
        with TcpAbacus() as a:
            a.write_config("statsd:\n  tcp_idle_timeout: forever\n  max_tcp_connections: 0\n")
            rc, out, err = run(["--config.file=" + a.config_path, "--check-config"])
            self.assertNotEqual(rc, 0)
            self.assertIn("statsd.tcp_idle_timeout", out + err)
            self.assertIn("statsd.max_tcp_connections", out + err)
        rc, out, _ = run(["--help"])
        self.assertEqual(rc, 0)
        self.assertIn("--statsd.tcp-idle-timeout=5m", out)
        self.assertIn("--statsd.max-tcp-connections=1024", out)

    def test_rss_returns_after_partial_lines_close(self):
        n, size = 1000, 60000
        raise_fd_limit(3 * n)
        with TcpAbacus() as a:
            pid = a.proc.pid
            a.scrape()
            base = proc_status_kib(pid, "VmRSS")
            conns = []
            tail = b"p" * size  # no newline: each connection holds a 60 KB partial line
            for _ in range(n):
                c = a.connect()
                c.sendall(tail)
                conns.append(c)
            a.await_metric("abacus_statsd_bytes_total", {"listener": "tcp"}, n * size,
                           timeout=60)
            held = proc_status_kib(pid, "VmRSS")
            for c in conns:
                c.close()
            # At the end of each stream its tail is one last (malformed) line.
            a.await_metric("abacus_statsd_lines_total", {"listener": "tcp"}, n, timeout=60)
            a.await_metric("abacus_statsd_sample_errors_total", {"reason": "malformed_line"}, n)
            if sanitizer():
                return  # the sanitizer's allocator keeps freed memory in quarantine
            print("RSS before %d KiB, holding %d partial lines %d KiB" % (base, n, held))
            self.assertGreater(held - base, n * size // 1024 // 2,
                               "the partial lines were not held: the test proves nothing")
            after = wait_until(lambda: (lambda r: r if r <= base + 16 * 1024 else None)(
                proc_status_kib(pid, "VmRSS")), "RSS back within 16 MiB of before", timeout=30)
            print("RSS after the connections closed %d KiB" % after)


if __name__ == "__main__":
    unittest.main(verbosity=2)
