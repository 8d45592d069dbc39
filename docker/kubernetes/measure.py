#!/usr/bin/env python3
"""measure.py - the figures behind deployment.yaml's resource requests and limits.

Runs abacus with configmap.yaml's configuration on loopback ports, creates series the way the
example app does (counters per route and status, a histogram per route, gauges per queue) plus
unmapped DogStatsD-tagged counters, then sends a steady StatsD load over UDP while scraping
once a second, and prints the resident memory and CPU use of the process.

    python3 docker/kubernetes/measure.py build/exporter/abacus             # ~3,000 series
    python3 docker/kubernetes/measure.py build/exporter/abacus --queues 4900 --tagged 14000 \
        --rate 100000                                                      # ~19,400 series

Not a test: it prints figures and never fails on them.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        return s.getsockname()[1]
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--routes", type=int, default=100, help="routes: 4 counters + 1 histogram each")
    ap.add_argument("--queues", type=int, default=1500, help="gauge series")
    ap.add_argument("--tagged", type=int, default=1000, help="unmapped tagged counter series")
    ap.add_argument("--rate", type=int, default=20000, help="StatsD lines per second")
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()

    with open(os.path.join(HERE, "configmap.yaml")) as f:
        config = yaml.safe_load(f)["data"]["abacus.yml"]
    tmp = tempfile.mkdtemp(prefix="abacus-measure-")
    path = os.path.join(tmp, "abacus.yml")
    with open(path, "w") as f:
        f.write(config)
    http, udp = free_port(), free_port()
    proc = subprocess.Popen([args.binary, "--config.file=" + path,
                             "--web.listen-address=127.0.0.1:%d" % http,
                             "--statsd.listen-udp=127.0.0.1:%d" % udp, "--statsd.listen-tcp=",
                             "--log.level=warn"])

    def get(p):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (http, p), timeout=10) as r:
            return r.read()

    deadline = time.monotonic() + 20
    while True:
        try:
            get("/-/ready")
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("abacus did not become ready")
            time.sleep(0.05)

    def rss_kib():
        with open("/proc/%d/status" % proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    def cpu_seconds():
        with open("/proc/%d/stat" % proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def report(tag):
        text = get("/metrics").decode()
        samples = sum(1 for ln in text.splitlines() if ln and not ln.startswith("#"))
        print("%-11s RSS %6.1f MiB, %6d samples exposed, scrape %7d bytes"
              % (tag, rss_kib() / 1024, samples, len(text)), flush=True)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(lines):
        batch, size = [], 0
        for ln in lines:
            batch.append(ln)
            size += len(ln) + 1
            if size > 1300:  # one Ethernet-sized datagram
                sock.sendto("\n".join(batch).encode(), ("127.0.0.1", udp))
                batch, size = [], 0
        if batch:
            sock.sendto("\n".join(batch).encode(), ("127.0.0.1", udp))

    report("idle")
    lines = []
    for r in range(args.routes):
        lines += ["shop.http.r%d.%s:1|c" % (r, s) for s in ("200", "404", "500", "503")]
        lines.append("shop.http.r%d.duration:12.5|ms" % r)
    lines += ["shop.queue.q%d.depth:%d|g" % (q, q) for q in range(args.queues)]
    lines += ["other.metric_%d:1|c|#pod:p%d" % (i % 50, i) for i in range(args.tagged)]
    for _ in range(3):
        for i in range(0, len(lines), 100):
            send(lines[i:i + 100])
            time.sleep(0.0005)  # let one reader keep up: this phase measures memory
    time.sleep(1)
    report("loaded")

    c0, t0, sent, next_scrape = cpu_seconds(), time.monotonic(), 0, time.monotonic()
    while time.monotonic() - t0 < args.seconds:
        i = sent % len(lines)
        chunk = lines[i:i + 200]
        send(chunk)
        sent += len(chunk)
        if time.monotonic() >= next_scrape:
            get("/metrics")
            next_scrape += 1
        ahead = sent / args.rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    elapsed, used = time.monotonic() - t0, cpu_seconds() - c0
    print("load       %d lines/s for %.0f s with a scrape per second: %.0f millicores"
          % (sent / elapsed, elapsed, used / elapsed * 1000))
    report("after load")
    text = get("/metrics").decode()
    for ln in text.splitlines():
        if ln.startswith(("abacus_statsd_packets_dropped_total", "abacus_series_refused_total",
                          "abacus_statsd_events_dropped_total")) and not ln.endswith(" 0"):
            print("  " + ln)
    proc.terminate()
    proc.wait()
    os.unlink(path)
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
