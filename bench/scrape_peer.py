#!/usr/bin/env python3
"""scrape_peer.py (bench) - abacus and Prometheus's Pushgateway serving the same series,
scraped over HTTP in the same run. Prints figures; asserts nothing.

For each size (default 10,000 and 100,000 counter series with two labels): abacus is fed
over StatsD/TCP and the Pushgateway by one PUT of the same series in the text format; then
each /metrics is fetched 5 times (plain, then gzip) and the median time and the bytes are
printed. Both listen on 127.0.0.1 only and are stopped at the end.

Usage: bench/scrape_peer.py [--abacus BIN] [--sizes 10000,100000]
"""
import argparse
import gzip
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, deadline=30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("not up: " + url)


def fetch(url, gz):
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gz else {})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        body = r.read()
    return time.perf_counter() - t0, body


def measure(url):
    out = []
    for gz in (False, True):
        times, size = [], 0
        for _ in range(5):
            dt, body = fetch(url, gz)
            times.append(dt)
            size = len(body)
        out.append((gz, statistics.median(times) * 1e3, size))
    return out


def series(n):
    for i in range(n):
        yield "svc-%d" % (i % 1000), "/api/v1/item/%d" % i, i % 100000


def feed_abacus(port, n):
    with socket.create_connection(("127.0.0.1", port)) as s:
        batch = []
        for svc, ep, v in series(n):
            batch.append("bench_requests_total:%d|c|#service:%s,endpoint:%s\n" % (v, svc, ep))
            if len(batch) == 2000:
                s.sendall("".join(batch).encode())
                batch = []
        s.sendall("".join(batch).encode())


def abacus_series(url, n):
    """Wait until abacus holds n series of the bench family (abacus_series gauge)."""
    end = time.monotonic() + 120
    want = 'abacus_series{family="bench_requests_total"} %d' % n
    while time.monotonic() < end:
        _, body = fetch(url, False)
        if want.encode() in body:
            return
        time.sleep(0.1)
    raise RuntimeError("abacus did not reach %d series" % n)


def feed_pushgateway(url, n):
    lines = ["# TYPE bench_requests_total counter\n"]
    lines += ['bench_requests_total{service="%s",endpoint="%s"} %d\n' % s for s in series(n)]
    req = urllib.request.Request(url + "/metrics/job/bench", data="".join(lines).encode(),
                                 method="PUT")
    with urllib.request.urlopen(req, timeout=300) as r:
        r.read()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--abacus", default=os.path.join(here, "..", "build", "exporter", "abacus"))
    ap.add_argument("--pushgateway", default="/usr/bin/prometheus-pushgateway")
    ap.add_argument("--sizes", default="10000,100000")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    procs = []
    tmp = tempfile.mkdtemp(prefix="abacus-bench-")
    try:
        print("%-12s %10s %5s %10s %12s" % ("server", "series", "gzip", "ms", "bytes"))
        for n in sizes:
            hp, sp = free_port(), free_port()
            cfg = os.path.join(tmp, "abacus.yml")
            with open(cfg, "w") as f:
                f.write("statsd:\n  listen_udp: \"\"\n  listen_tcp: \"127.0.0.1:%d\"\n"
                        "  max_series: 0\ndefaults:\n  max_series: 0\n" % sp)
            ab = subprocess.Popen([a.abacus, "--config.file=" + cfg,
                                   "--web.listen-address=127.0.0.1:%d" % hp],
                                  stderr=subprocess.DEVNULL, start_new_session=True)
            procs.append(ab)
            aurl = "http://127.0.0.1:%d" % hp
            wait_http(aurl + "/-/ready")
            feed_abacus(sp, n)
            abacus_series(aurl + "/metrics", n)
            pp = free_port()
            pg = None
            if os.path.exists(a.pushgateway):
                pg = subprocess.Popen([a.pushgateway, "--web.listen-address=127.0.0.1:%d" % pp],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
                procs.append(pg)
                purl = "http://127.0.0.1:%d" % pp
                wait_http(purl + "/-/ready")
                feed_pushgateway(purl, n)
            for gz, ms, size in measure(aurl + "/metrics"):
                print("%-12s %10d %5s %10.1f %12d" % ("abacus", n, "yes" if gz else "no", ms, size))
            if pg:
                for gz, ms, size in measure(purl + "/metrics"):
                    print("%-12s %10d %5s %10.1f %12d" % ("pushgateway", n, "yes" if gz else "no",
                                                         ms, size))
            else:
                print("pushgateway: not installed (%s), no peer column" % a.pushgateway)
            sys.stdout.flush()
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=30)
            procs = []
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
