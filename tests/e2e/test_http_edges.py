"""test_http_edges.py - the HTTP server against hostile clients: slow header senders (a request
deadline, eviction at the connection cap), a client that never reads its scrape (a write
deadline that frees the scrape slot), request targets and framing that cannot be taken
at face value (400, counted), and self-metrics present from the very first scrape.
Runs the real binary (env ABACUS_BIN); every client listens or connects on 127.0.0.x only."""

import os
import re
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


STUCK_SERIES = 30000   # with 100-byte label values: ~4 MB of output, more than the kernel's
PAD = "x" * 100        # socket buffers hold, so a client that reads nothing stalls the response


def scrape_line_value(a, name, labels_text):
    """The value of one sample (name{labels_text}) in a raw GET of /metrics, or None when the
    sample is absent or the scrape was not a 200 (a large scrape is not parsed whole)."""
    r = harness.http_request(a.host, a.port, "GET", "/metrics", timeout=60)
    if r.status != 200:
        return None
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels_text)), r.text, re.M)
    return float(m.group(1)) if m else None


class SlowReaders(unittest.TestCase):
    def test_write_timeout_cuts_a_stuck_scrape_and_frees_its_slot(self):
        # One scrape slot; the idle timeout (120 s) and the queue wait (60 s) are far away, so
        # only write_timeout can take the slot back from a client that reads nothing.
        cfg = ("server:\n  max_concurrent_scrapes: 1\n  write_timeout: 2s\n"
               "  connection_timeout: 120s\n  scrape_queue_timeout: 60s\n"
               "mappings:\n  - match: \"stuck.*\"\n    name: stuck_total\n"
               "    labels: {id: \"$1\"}\n")
        with Abacus(config=cfg, statsd=True) as a:
            with socket.create_connection(a.statsd["tcp"], timeout=30) as s:
                s.sendall("".join("stuck.%s%d:1|c\n" % (PAD, i)
                                  for i in range(STUCK_SERIES)).encode())
            wait_until(lambda: scrape_line_value(a, "abacus_series",
                                                 '{family="stuck_total"}') == STUCK_SERIES,
                       "the series created", timeout=60)
            self.assertEqual(scrape_line_value(a, "abacus_http_connections_closed_total",
                                               '{reason="write_timeout"}'), 0)
            stuck = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                stuck.settimeout(30)
                stuck.connect((a.host, a.port))
                stuck.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                # The response has begun (peeked, not read): the stuck scrape holds the slot.
                wait_until(lambda: stuck.recv(1, socket.MSG_PEEK) == b"H",
                           "the stuck scrape's first bytes")
                # This scrape waits for the only slot; the cut gives it over, and it is
                # answered. It may render before the watchdog counts the cut: poll.
                wait_until(lambda: scrape_line_value(a, "abacus_http_connections_closed_total",
                                                     '{reason="write_timeout"}') == 1,
                           "the stuck scrape cut and counted as write_timeout", timeout=60)
                # the stuck client sees the end of its connection: EOF or a reset, after what
                # was buffered, and never the whole response
                got = b""
                while True:
                    try:
                        chunk = stuck.recv(65536)
                    except ConnectionResetError:
                        break
                    if not chunk:
                        break
                    got += chunk
                self.assertNotIn(b"\r\n0\r\n\r\n", got[-16:], "the response was complete")
            finally:
                stuck.close()
            self.assertEqual(harness.http_request(a.host, a.port, "GET", "/metrics",
                                                  timeout=60).status, 200)
            self.assertEqual(scrape_line_value(a, "abacus_http_connections_closed_total",
                                               '{reason="request_timeout"}'), 0)


    def test_timeout_flags_override_the_file(self):
        cfg = "server:\n  request_timeout: 30s\n  write_timeout: 30s\n"
        with Abacus(config=cfg, args=["--web.request-timeout=1500ms",
                                      "--web.write-timeout=0"]) as a:
            line = a.wait_log(r"listening")
            self.assertRegex(line, r"request_timeout\W+1500ms")
            self.assertRegex(line, r"write_timeout\W+0ms")
        for flag in ("--web.request-timeout=soon", "--web.write-timeout=-1s"):
            rc, _, err = harness.run([flag])
            self.assertEqual(rc, 2, flag)
            self.assertIn(flag.split("=")[0], err)
        rc, out, _ = harness.run(["--help"])
        self.assertIn("--web.request-timeout=10s", out)
        self.assertIn("--web.write-timeout=60s", out)


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
