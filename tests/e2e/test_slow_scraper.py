"""test_slow_scraper.py - a slow scrape client pins no memory (issue 9, item 2).

Series churn through a 1 s TTL (new names arriving all the time, old ones reaped) while one
client reads /metrics very slowly, so its scrape stays open for the whole run. What the reaper
retires meanwhile must still be freed: peak RSS with the slow client stays within 2x of the
same run without it. Runs the real binary (env ABACUS_BIN) twice, with the same load."""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Abacus, wait_until  # noqa: E402

STATIC = 30000      # long-labelled series rendered first: more output than socket buffers hold
RATE = 20000        # new series per second
SECONDS = 12        # of churn per run
PAD = "x" * 100     # makes label text long, so the output outgrows the kernel's buffers

CONFIG = """\
defaults:
  ttl: 1s
metrics:
  - name: aaa_static_total
    help: Series that stay.
    type: counter
    labels: [id]
    ttl: 0s
mappings:
  - match: "static.*"
    name: aaa_static_total
    labels: {id: "$1"}
  - match: "churn.*"
    name: churn_total
    labels: {id: "$1"}
"""


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


class SlowReader:
    """GET /metrics with a 4 KiB receive buffer, then read 512 bytes every 20 ms."""

    def __init__(self, host, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, port))
        self.sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.received = 0
        self.eof = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            data = self.sock.recv(512)
            if not data:
                self.eof = True
                return
            self.received += len(data)
            self.stop.wait(0.02)  # the client's pace, not a wait for a condition

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        self.sock.close()


def churn_run(slow):
    """One process, the same load; returns (peak RSS KiB during churn, slow reader or None)."""
    with Abacus(config=CONFIG, statsd=True) as a:
        with socket.create_connection(a.statsd["tcp"]) as s:
            s.sendall("".join("static.%s%d:1|c\n" % (PAD, i) for i in range(STATIC)).encode())
            wait_until(lambda: a.value("abacus_series", {"family": "aaa_static_total"})
                       == STATIC, "static series created", timeout=60)
            reader = SlowReader(a.host, a.port) if slow else None
            wait_until(lambda: reader is None or reader.received > 0, "slow scrape started")
            peak = 0
            start = time.monotonic()
            n = 0
            batch = RATE // 10
            while time.monotonic() - start < SECONDS:
                s.sendall("".join("churn.%s%d:1|c\n" % (PAD, n + i)
                                  for i in range(batch)).encode())
                n += batch
                peak = max(peak, rss_kib(a.proc.pid))
                # Pace the sender to RATE: the next batch is due 0.1 s after this one.
                due = start + n / RATE
                time.sleep(max(0.0, due - time.monotonic()))
            expired = a.value("abacus_series", {"family": "churn_total"})
        if reader:
            reader.close()
        # The churn really expired series (else the test measured nothing).
        assert expired < n, (expired, n)
        return peak, reader


class SlowScraper(unittest.TestCase):
    def test_rss_with_a_slow_reader_stays_within_twice_without(self):
        base, _ = churn_run(slow=False)
        slow, reader = churn_run(slow=True)
        print("peak RSS without a slow reader %d KiB, with one %d KiB (read %d bytes)" % (
            base, slow, reader.received))
        self.assertFalse(reader.eof, "the slow scrape finished early: nothing was tested")
        self.assertLess(slow, 2 * base,
                        "a slow scrape client pinned memory: %d KiB vs %d KiB" % (slow, base))


if __name__ == "__main__":
    unittest.main(verbosity=2)
