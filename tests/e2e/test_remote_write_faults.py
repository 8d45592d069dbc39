"""test_remote_write_faults.py - remote write against a scripted receiver (http.server here,
decoding snappy and the WriteRequest protobuf itself) that is down, refuses, or rate-limits.

- Down for a while, then back: nothing is lost within the queue bound (what abacus counts as
  sent is exactly what the receiver got, nothing dropped), every series' timestamps arrive in
  increasing order, and the retried counter moved.
- Down with a small queue: what does not fit is counted as dropped, the queue never holds
  more than its capacity.
- 400: every sample is counted as failed, none retried, no sample is sent twice.
- 429 without retry_on_http_429: like 400. With it: retried, then delivered.
- A reload that changes the receiver's url (same name) keeps its queue: the new url gets
  the samples collected before the reload.
- SIGTERM sends what is queued before the process exits.
"""

import http.server
import os
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (first: it may re-run this under the system's python3)

import snappy  # noqa: E402  (Debian's python3-snappy)


# ---- protobuf, as much as a WriteRequest needs -------------------------------------------------

def _varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def _fields(b):
    """(field number, wire type, value) of one message: bytes for length-delimited, the raw
    8 bytes for fixed64, an int for varints."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise AssertionError("unexpected wire type %d" % wt)
        yield num, wt, v


def decode_write_request(body):
    """[(labels tuple, value, timestamp)] of a snappy-compressed WriteRequest."""
    out = []
    for num, _, ts in _fields(snappy.uncompress(body)):
        assert num == 1, "WriteRequest field %d" % num
        labels, samples = [], []
        for n2, _, v in _fields(ts):
            if n2 == 1:
                kv = {n3: v3.decode() for n3, _, v3 in _fields(v)}
                labels.append((kv.get(1, ""), kv.get(2, "")))
            elif n2 == 2:
                s = {n3: v3 for n3, _, v3 in _fields(v)}
                value = struct.unpack("<d", s.get(1, b"\0" * 8))[0]
                t = s.get(2, 0)
                if t >= 1 << 63:
                    t -= 1 << 64
                samples.append((value, t))
        assert labels == sorted(labels), "labels not sorted: %r" % labels
        for value, t in samples:
            out.append((tuple(labels), value, t))
    return out


# ---- the receiver ------------------------------------------------------------------------------

class Receiver:
    """An HTTP remote-write receiver on 127.0.0.1:port answering statuses from script(n) for
    its n-th request (0-based); records the samples of every request and what it answered."""

    def __init__(self, script, port=0):
        self.script = script
        self.requests = []  # (status, samples)
        self.lock = threading.Lock()
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.headers["Content-Encoding"] == "snappy"
                assert self.headers["Content-Type"] == "application/x-protobuf"
                assert self.headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
                samples = decode_write_request(body)
                with rx.lock:
                    status = rx.script(len(rx.requests))
                    rx.requests.append((status, samples))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/api/v1/write" % self.port

    def accepted(self):
        with self.lock:
            return [s for status, batch in self.requests if status // 100 == 2 for s in batch]

    def count(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def config(url, queue=""):
    return ("metrics:\n"
            "  - {name: work_total, type: counter, help: Work., labels: [kind]}\n"
            "remote_write:\n"
            "  - url: %s\n"
            "    name: r\n"
            "    interval: 200ms\n"
            "    queue_config: {batch_send_deadline: 20ms, min_backoff: 20ms, max_backoff: 100ms"
            "%s}\n" % (url, queue))


def counters(a, url):
    """The receiver's self-metrics, or None until the scrape shows all of them (a receiver's
    figures are published by its thread once it has started)."""
    labels = {"remote_name": "r", "url": url}
    got = {k: a.value("abacus_remote_write_%s" % k, labels)
           for k in ("samples_total", "samples_failed_total", "samples_retried_total",
                     "samples_dropped_total", "samples_pending", "queue_capacity")}
    return None if None in got.values() else got


def assert_in_order(samples):
    last = {}
    for labels, _, t in samples:
        assert t > last.get(labels, -1), "out of order or twice: %r at %d" % (labels, t)
        last[labels] = t


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_down_and_back():
    port = free_port()
    url = "http://127.0.0.1:%d/api/v1/write" % port
    with harness.Abacus(config=config(url), statsd=True) as a:
        a.send_udp(b"work_total:1|c|#kind:x\n")
        harness.wait_until(lambda: (counters(a, url) or {}).get("samples_retried_total", 0) > 0,
                           "retries while the receiver is down")
        queued = harness.wait_until(
            lambda: (lambda p: p > 1000 and p)((counters(a, url) or {}).get("samples_pending", 0)),
            "samples queued during the outage")
        rx = Receiver(lambda n: 200, port=port)
        try:
            c = harness.wait_until(lambda: (lambda c: c and c["samples_total"] >= queued and c)(
                counters(a, url)), "the outage's samples delivered")
            assert c["samples_dropped_total"] == 0 and c["samples_failed_total"] == 0, c
            got = rx.accepted()
            # The receiver records a request before answering it; abacus counts after.
            assert len(got) >= c["samples_total"], (len(got), c)
            assert_in_order(got)
            work = [s for s in got if ("__name__", "work_total") in s[0]]
            assert len(work) >= 5, "the outage's samples of work_total arrived: %d" % len(work)
        finally:
            rx.close()


def test_down_queue_bound():
    port = free_port()
    url = "http://127.0.0.1:%d/api/v1/write" % port
    with harness.Abacus(config=config(url, ", capacity: 50")) as a:
        c = harness.wait_until(lambda: (lambda c: c and c["samples_dropped_total"] > 0 and c)(
            counters(a, url)), "samples dropped beyond the capacity")
        assert c["queue_capacity"] == 50 and c["samples_pending"] <= 50, c


def test_bad_request_dropped():
    rx = Receiver(lambda n: 400)
    try:
        with harness.Abacus(config=config(rx.url)) as a:
            c = harness.wait_until(lambda: (lambda c: c and c["samples_failed_total"] > 200 and c)(
                counters(a, rx.url)), "400s counted as failed")
            assert c["samples_retried_total"] == 0 and c["samples_total"] == 0, c
            with rx.lock:
                seen = [s for _, batch in rx.requests for s in batch]
            assert_in_order(seen)  # each sample was sent once: no retry
    finally:
        rx.close()


def test_too_many_requests():
    rx = Receiver(lambda n: 429)
    try:
        with harness.Abacus(config=config(rx.url)) as a:
            c = harness.wait_until(lambda: (lambda c: c and c["samples_failed_total"] > 0 and c)(
                counters(a, rx.url)), "429 without retry_on_http_429: failed")
            assert c["samples_retried_total"] == 0, c
    finally:
        rx.close()
    rx = Receiver(lambda n: 429 if n < 3 else 200)
    try:
        with harness.Abacus(config=config(rx.url, ", retry_on_http_429: true")) as a:
            c = harness.wait_until(lambda: (lambda c: c and c["samples_total"] > 0 and c)(
                counters(a, rx.url)), "429 retried, then delivered")
            assert c["samples_retried_total"] > 0 and c["samples_failed_total"] == 0, c
            with rx.lock:
                first = rx.requests[0][1]
                delivered = [s for status, batch in rx.requests if status == 200
                             for s in batch]
            assert set(first) <= set(delivered), "the refused batch was sent again"
            assert_in_order(delivered)
    finally:
        rx.close()


def test_reload_keeps_queue():
    """A reload that points the receiver (same name) elsewhere keeps what was queued for it:
    the new url receives the samples collected before the reload."""
    down = "http://127.0.0.1:%d/api/v1/write" % free_port()
    rx = Receiver(lambda n: 200)
    try:
        with harness.Abacus(config=config(down)) as a:
            queued = harness.wait_until(
                lambda: (lambda p: p > 500 and p)((counters(a, down) or {}).get("samples_pending", 0)),
                "samples queued for the unreachable url")
            reload_ms = int(time.time() * 1000)
            a.write_config(config(rx.url))
            a.signal(signal.SIGHUP)
            a.wait_log(r"remote write reconfigured")
            # The new url's series appear with the supervisor's next publication.
            c = harness.wait_until(lambda: (lambda c: (c["samples_total"] or 0) >= queued and c)(
                counters(a, rx.url)), "the queued samples delivered to the new url")
            assert c["samples_dropped_total"] == 0, c
            got = rx.accepted()
            assert_in_order(got)
            # Collected while the old url was configured: before the reload was asked for.
            assert min(t for _, _, t in got) < reload_ms, (got[0], reload_ms)
    finally:
        rx.close()


def test_shutdown_flushes():
    """Samples still queued at SIGTERM are sent before the process exits: a batch deadline of
    an hour and a huge batch keep everything queued until then."""
    rx = Receiver(lambda n: 200)
    try:
        a = harness.Abacus(config=config(rx.url).replace(
            "batch_send_deadline: 20ms", "batch_send_deadline: 1h, max_samples_per_send: 1000000"))
        with a:
            queued = harness.wait_until(
                lambda: (lambda p: p > 500 and p)((counters(a, rx.url) or {}).get("samples_pending", 0)),
                "samples queued")
            assert rx.count() == 0
        # The context's exit sent SIGTERM and required exit code 0.
        got = rx.accepted()
        assert len(got) >= queued, (len(got), queued)
        assert_in_order(got)
    finally:
        rx.close()


def main():
    for t in (test_down_and_back, test_down_queue_bound, test_bad_request_dropped,
              test_too_many_requests, test_reload_keeps_queue, test_shutdown_flushes):
        t()
        print("ok", t.__name__)


if __name__ == "__main__":
    main()
