"""test_http_memory.py - the memory concurrent scrapes may take is bounded: 200 concurrent scrapes
of 100k series keep the real binary inside the Kubernetes example's memory limit and give the
memory back afterwards; a scrape that cannot get a slot in time is answered 503 and counted.
Runs the real binary (env ABACUS_BIN); clients connect from 127.0.0.x only."""

import os
import re
import selectors
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, sample_value, wait_until  # noqa: E402

# docker/kubernetes/deployment.yaml: the abacus container's memory limit (32Mi).
EXAMPLE_LIMIT_KIB = 32 * 1024
CLIENT_ADDRS = ["127.0.0.%d" % i for i in range(2, 12)]  # under the per-address limit (64)


def fill(a, families, per_family, label_pad=""):
    """Create families x per_family counter series over StatsD TCP, and wait until abacus
    reports them all (abacus_series, read without parsing the whole page)."""
    lines = []
    for f in range(families):
        for n in range(per_family):
            lines.append("load.f%d_total:1|c|#s:%s%d" % (f, label_pad, n))
    a.send_tcp("\n".join(lines) + "\n")
    rx = re.compile(r'^abacus_series\{family="load_f\d+_total"\} (\S+)$', re.M)

    def done():
        r = a.get("/metrics")
        return r.status == 200 and sum(float(v) for v in rx.findall(r.text)) == \
            families * per_family
    wait_until(done, "%d series ingested" % (families * per_family), timeout=120, interval=0.5)


def concurrent_scrapes(host, port, n, gzip_every=2):
    """Send n scrapes at once over n connections (from several loopback addresses), then read
    them all concurrently to the end. Returns the status code of each."""
    socks = []
    sel = selectors.DefaultSelector()
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((CLIENT_ADDRS[i % len(CLIENT_ADDRS)], 0))
            s.connect((host, port))
            enc = b"Accept-Encoding: gzip\r\n" if gzip_every and i % gzip_every else b""
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + enc +
                      b"\r\n")
            s.setblocking(False)
            socks.append(s)
        bufs = {s: bytearray() for s in socks}
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        left = n
        while left:
            events = sel.select(timeout=120)
            assert events, "scrapes stalled"
            for key, _ in events:
                s = key.fileobj
                data = s.recv(1 << 16)
                if data:
                    bufs[s] += data
                else:
                    sel.unregister(s)
                    left -= 1
        codes = []
        for s in socks:
            b = bytes(bufs[s])
            codes.append(int(b[9:12]) if b.startswith(b"HTTP/1.1 ") else None)
            if codes[-1] == 200:
                assert b.endswith(b"\r\n0\r\n\r\n"), "a scrape ended early"
        return codes
    finally:
        sel.close()
        for s in socks:
            s.close()


class ConcurrentScrapes(unittest.TestCase):
    def test_200_concurrent_scrapes_of_100k_series_stay_inside_the_example_limit(self):
        # A queue long enough for the slowest (sanitizer) build: this test is about memory.
        cfg = "server:\n  scrape_queue_timeout: 5m\n"
        with Abacus(config=cfg, statsd=True) as a:
            fill(a, 10, 10000)
            before = harness.proc_status_kib(a.proc.pid, "VmRSS")
            peak = [before]
            stop = threading.Event()

            def sample():  # RSS of the real process while the scrapes run
                while not stop.wait(0.005):
                    v = harness.proc_status_kib(a.proc.pid, "VmRSS")
                    if v:
                        peak[0] = max(peak[0], v)

            t = threading.Thread(target=sample, daemon=True)
            t.start()
            try:
                codes = concurrent_scrapes(a.host, a.port, 200)
            finally:
                stop.set()
                t.join(5)
            self.assertEqual(codes, [200] * 200)
            fams, _, _ = a.scrape()
            self.assertGreater(sample_value(fams, "abacus_scrapes_queued_total"), 0)
            hwm = harness.proc_status_kib(a.proc.pid, "VmHWM")
            after = harness.proc_status_kib(a.proc.pid, "VmRSS")
            sys.stderr.write("\nRSS before %d KiB, peak sampled %d KiB, VmHWM %d KiB, after "
                             "%d KiB\n" % (before, peak[0], hwm, after))
            if harness.sanitizer():
                self.skipTest("memory figures of a %s sanitizer build are not the binary's"
                              % harness.sanitizer())
            self.assertLess(hwm, EXAMPLE_LIMIT_KIB)
            # given back afterwards: not left at the peak
            self.assertLess(after, before + 8 * 1024)


class ScrapeQueue(unittest.TestCase):
    def test_scrape_waiting_past_the_queue_timeout_gets_503(self):
        cfg = ("server:\n  max_concurrent_scrapes: 1\n  scrape_queue_timeout: 1s\n"
               "  connection_timeout: 120s\n")
        with Abacus(config=cfg, statsd=True) as a:
            # a page far larger than the socket buffers of a client that never reads
            fill(a, 1, 20000, label_pad="x" * 200)
            holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            holder.bind(("127.0.0.2", 0))
            holder.connect((a.host, a.port))
            try:
                holder.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                # it holds the only slot once its response has begun
                wait_until(lambda: holder.recv(1, socket.MSG_PEEK), "the held scrape started")
                r = harness.http_request(a.host, a.port, "GET", "/metrics", timeout=60)
                self.assertEqual(r.status, 503)
            finally:
                holder.close()
            # The slot comes back once the server notices the close; a scrape meanwhile waits
            # (and may time out too): count what the client saw.
            seen = [503]

            def served():
                st = harness.http_request(a.host, a.port, "GET", "/metrics", timeout=60).status
                seen.append(st)
                return st == 200
            wait_until(served, "a scrape served after the holder left")
            # a request is counted just after its response went out
            wait_until(lambda: a.value("abacus_http_requests_total",
                                       {"handler": "/metrics", "code": "503"}) == seen.count(503),
                       "every 503 counted")
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "abacus_http_requests_total",
                                          {"handler": "/metrics", "code": "503"}),
                             seen.count(503))
            self.assertGreaterEqual(sample_value(fams, "abacus_scrapes_queued_total"),
                                    seen.count(503))


if __name__ == "__main__":
    unittest.main(verbosity=2)
