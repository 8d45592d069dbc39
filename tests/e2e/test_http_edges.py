"""test_http_edges.py - the HTTP server against hostile clients: slow header senders (a request
deadline, eviction at the connection cap), request targets and framing that cannot be taken
at face value (400, counted), and self-metrics present from the very first scrape.
Runs the real binary (env ABACUS_BIN); every client listens or connects on 127.0.0.x only."""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, sample_value, wait_until  # noqa: E402

from prometheus_client import parser as text_parser  # noqa: E402

ATTACKER_ADDRS = ["127.0.0.%d" % i for i in range(2, 12)]  # 10 source addresses


def count(a, name, labels):
    """A counter's value in a fresh scrape, 0 when the series is absent."""
    fams, _, _ = a.scrape()
    return sample_value(fams, name, labels) or 0


def is_open(s):
    """True while the peer has not closed s (nothing to read yet, or data pending)."""
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


class SlowHeaders(unittest.TestCase):
    def test_request_deadline_closes_a_trickling_client(self):
        # The idle timeout is far away and the client is never idle: only the request deadline
        # can close this connection.
        cfg = "server:\n  request_timeout: 1s\n  connection_timeout: 120s\n"
        with Abacus(config=cfg) as a:
            s = socket.create_connection((a.host, a.port), timeout=30)
            stop = threading.Event()

            def trickle():
                try:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    while not stop.wait(0.2):
                        s.sendall(b"a")
                except OSError:
                    pass  # closed by the server

            t = threading.Thread(target=trickle, daemon=True)
            t.start()
            try:
                # EOF (or a reset) well before the 30 s client timeout; a timeout fails the test
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                self.assertEqual(data, b"", "the server answered instead of closing")
            finally:
                stop.set()
                t.join(5)
                s.close()
            wait_until(lambda: count(a, "abacus_http_connections_closed_total",
                                     {"reason": "request_timeout"}) == 1,
                       "the closed connection counted as request_timeout")
            # a complete request on a fresh connection is not affected
            self.assertEqual(a.get("/-/healthy").status, 200)

    def test_slow_senders_do_not_lock_out_a_scrape(self):
        # 600 connections from 10 addresses, each trickling a header: more than the 512
        # connection slots. The request deadline (120 s) is far beyond the scrape's client
        # timeout (15 s), so only the connection cap's eviction can let the scrape in.
        cfg = "server:\n  request_timeout: 120s\n  connection_timeout: 120s\n"
        with Abacus(config=cfg) as a:
            base_fds = harness.open_fds(a.proc.pid)
            socks = []
            stop = threading.Event()
            try:
                for i in range(600):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.bind((ATTACKER_ADDRS[i % len(ATTACKER_ADDRS)], 0))
                    s.settimeout(10)
                    s.connect((a.host, a.port))
                    try:
                        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    except OSError:
                        pass  # already evicted by a later connection
                    socks.append(s)
                # abacus holds (about) its 512 slots: the attack is in place
                wait_until(lambda: harness.open_fds(a.proc.pid) >= base_fds + 500,
                           "abacus holding the slow connections")

                def trickle():
                    while not stop.wait(1.0):
                        for s in socks:
                            try:
                                s.send(b"a", socket.MSG_DONTWAIT)
                            except OSError:
                                pass

                t = threading.Thread(target=trickle, daemon=True)
                t.start()
                r = harness.http_request("127.0.0.1", a.port, "GET", "/metrics", timeout=15)
                self.assertEqual(r.status, 200)
                fams = harness.parse_text(r.text)
                self.assertGreaterEqual(sample_value(fams, "abacus_http_connections_closed_total",
                                                     {"reason": "evicted"}), 1)
                self.assertLessEqual(sample_value(fams, "abacus_http_connections"), 512)
                # the slow connections were not simply timed out: most are still open
                still_open = sum(1 for s in socks if is_open(s))
                self.assertGreaterEqual(still_open, 500)
                stop.set()
                t.join(5)
            finally:
                stop.set()
                for s in socks:
                    s.close()


class RequestTargets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = Abacus()
        try:
            cls.a.start()
        except BaseException:
            cls.a.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.a.stop()
        finally:
            cls.a.cleanup()

    def raw(self, data):
        """Send raw request bytes; return the status line's code (the server closes after)."""
        with socket.create_connection((self.a.host, self.a.port), timeout=20) as s:
            s.sendall(data)
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            self.assertTrue(buf.startswith(b"HTTP/1.1 "), buf[:100])
            return int(buf[9:12])

    def test_bad_targets_and_framing_are_400_and_counted(self):
        before_other = count(self.a, "abacus_http_requests_total",
                             {"handler": "other", "code": "400"})
        before_healthy = count(self.a, "abacus_http_requests_total",
                               {"handler": "/-/healthy", "code": "400"})
        for target in (b"/metrics%00", b"/metrics\x00junk", b"/metrics?x=1\x00junk"):
            self.assertEqual(self.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n"), 400,
                             target)
        self.assertEqual(self.raw(b"POST /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                  b"Content-Length: 5\r\n\r\nabcde"), 400)
        self.assertEqual(self.raw(b"POST /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400)
        wait_until(lambda: count(self.a, "abacus_http_requests_total",
                                 {"handler": "other", "code": "400"}) == before_other + 3,
                   "the three bad targets counted under handler=other")
        wait_until(lambda: count(self.a, "abacus_http_requests_total",
                                 {"handler": "/-/healthy", "code": "400"}) == before_healthy + 2,
                   "the two ambiguous bodies counted")

    def test_ordinary_targets_still_served(self):
        # %00 only matters in the path; percent-escapes elsewhere are fine
        self.assertEqual(self.raw(b"GET /metrics?x=%00 HTTP/1.1\r\nHost: x\r\n"
                                  b"Connection: close\r\n\r\n"), 200)
        self.assertEqual(self.raw(b"GET /-/%68ealthy HTTP/1.1\r\nHost: x\r\n"
                                  b"Connection: close\r\n\r\n"), 200)
        self.assertEqual(self.raw(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                  b"Connection: close\r\n\r\n"), 200)


def labelless(text, prefixes=("abacus_", "process_")):
    """Names of the families in a text scrape whose samples carry no label (le and quantile
    aside), among the given prefixes."""
    out = set()
    for fam in text_parser.text_string_to_metric_families(text):
        if not fam.name.startswith(prefixes) or not fam.samples:
            continue
        if all(set(s.labels) <= {"le", "quantile"} for s in fam.samples):
            out.add(fam.name)
    return out


class FirstScrape(unittest.TestCase):
    def test_every_labelless_self_metric_from_the_first_scrape(self):
        with Abacus(statsd=True) as a:
            _, first, _ = a.scrape()
            # activity that makes lazily created metrics appear: scrapes, requests, StatsD
            a.get("/-/healthy")
            a.send_udp("edge.udp_total:1|c")
            a.send_tcp("edge.tcp_total:1|c\n")
            wait_until(lambda: "edge_tcp_total" in a.scrape()[1], "the StatsD lines ingested")
            _, later, _ = a.scrape()
            self.assertIn("abacus_scrape_duration_seconds", labelless(first))
            missing = labelless(later) - labelless(first)
            self.assertEqual(missing, set(), "label-less self-metrics missing from the first "
                                             "scrape")


if __name__ == "__main__":
    unittest.main(verbosity=2)
