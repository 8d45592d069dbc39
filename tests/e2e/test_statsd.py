"""test_statsd.py - end-to-end tests of the StatsD listeners: the real binary, real UDP, TCP and
Unix datagram sockets, checked through /metrics (every scrape promtool-valid and structurally
checked by the harness).

- Listeners from flags and from the YAML `statsd` section; an empty value disables one; several
  lines per datagram; a TCP line split across writes is reassembled; the Unix socket file is
  removed on exit.
- statsd_exporter's semantics end to end: mapping rules (glob and regex captures, labels,
  honor_labels, scale, help, drop, observer types), all four tag styles becoming sorted labels,
  gauge deltas, sample rates, timers in seconds, default buckets and help text, escaping.
- Conflicting events (type, label set, _sum/_count/_bucket collisions, families StatsD does not
  own) are dropped and counted, and every scrape stays valid.
- Series limits hold, are counted per family and logged; TTL expiry brings the live-series
  gauge down.
- statsd_exporter parity at the edges: `foo--bar.*` globs, DogStatsD fields abacus does not
  know (`|card:low`) skipped and counted, a bad `|T` only loses itself; non-finite values and
  sample rates outside (0, 1] refused with their own reasons, never reaching a metric.
- Many clients at once over TCP onto brand-new label values: every counter exact.
- Reload (SIGHUP) switches rules and tag parsing; hostile input is counted, never fatal.
Conditions are awaited by polling /metrics with a deadline, never by fixed sleeps.
Metric names in the traffic pass promtool's lint (counters end in _total): statsd_exporter
would export an unmapped counter as sent, and so does abacus.
"""

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, sample_value, wait_until  # noqa: E402

SELF_METRICS = [
    "abacus_statsd_packets_total", "abacus_statsd_bytes_total", "abacus_statsd_lines_total",
    "abacus_statsd_samples_total", "abacus_statsd_tags_total", "abacus_statsd_tag_errors_total",
    "abacus_statsd_sample_errors_total", "abacus_statsd_events_total",
    "abacus_statsd_events_dropped_total", "abacus_statsd_events_actions_total",
    "abacus_statsd_events_unmapped_total", "abacus_statsd_mapping_cache_hits_total",
    "abacus_statsd_mapping_cache_misses_total", "abacus_statsd_tcp_connections_total",
    "abacus_statsd_tcp_connection_errors_total", "abacus_statsd_packets_dropped_total",
    "abacus_statsd_tcp_connections_refused_total", "abacus_statsd_tcp_connections_closed_total",
    "abacus_statsd_unknown_fields_total",
]


class StatsdAbacus(Abacus):
    """Abacus with StatsD listeners on ephemeral loopback ports (and a Unix socket in its
    temporary directory); their bound addresses are read from the log."""

    def __init__(self, config=None, udp=True, tcp=True, unixgram=False, args=(), flags=True):
        super().__init__(config=config)
        # Our own listen flags (flags=False: none, the YAML file decides).
        self.args = [x for x in self.args if not x.startswith("--statsd.listen-")]
        self.sock_path = os.path.join(self.tmp, "statsd.sock")
        if flags:
            self.args += ["--statsd.listen-udp=" + ("127.0.0.1:0" if udp else ""),
                          "--statsd.listen-tcp=" + ("127.0.0.1:0" if tcp else ""),
                          "--statsd.listen-unixgram=" + (self.sock_path if unixgram else "")]
        self.want_statsd = not flags or udp or tcp or unixgram  # harness: await the log line
        self.args += list(args)
        self.addr = {}

    def start(self, wait_ready=True):
        super().start(wait_ready=wait_ready)
        for line in self.log_text().splitlines():
            m = re.search(r'statsd listener started"? listener=(\w+) address=(\S+)', line)
            if m:
                self.addr[m.group(1)] = m.group(2)
        return self

    def inet(self, kind):
        host, port = self.addr[kind].rsplit(":", 1)
        return host.strip("[]"), int(port)

    def udp(self, payload):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(payload.encode() if isinstance(payload, str) else payload, self.inet("udp"))
        finally:
            s.close()

    def tcp(self):
        return socket.create_connection(self.inet("tcp"), timeout=20)

    def unixgram(self, payload):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.sendto(payload.encode(), self.addr["unixgram"])
        finally:
            s.close()

    def await_value(self, name, labels, want, what=None):
        return wait_until(lambda: self.value(name, labels) == want,
                          what or "%s%s == %r" % (name, labels or "", want))

    def await_lines(self, listener, n):
        self.await_value("abacus_statsd_lines_total", {"listener": listener}, n)


def check_format_ignoring_lint(text):
    """Random input creates names promtool's lint dislikes (a counter without _total): accept
    lint complaints (exit 3), never a format error (exit 1); check the structure as the
    harness does and parse with prometheus_client. Returns the families."""
    p = subprocess.run([harness.tool("promtool"), "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode(errors="replace")
    assert p.returncode in (0, 3) and "error while linting" not in out, out
    harness.check_text_structure(text)
    return {f.name: f for f in harness.text_parser.text_string_to_metric_families(text)}


def family(fams, name):
    """The prometheus_client family holding sample name (counters drop _total)."""
    for f in fams.values():
        if any(s.name == name for s in f.samples) or f.name == name:
            return f
    return None


class StatsdTest(unittest.TestCase):

    def test_listeners_and_line_splitting(self):
        with StatsdAbacus(unixgram=True) as a:
            self.assertEqual(set(a.addr), {"udp", "tcp", "unixgram"})
            # Several lines per datagram, a trailing newline (an empty last line).
            a.udp("e2e_udp_total:1|c\ne2e_udp_total:2|c\ne2e_level:7|g\n")
            a.await_value("e2e_udp_total", None, 3)
            # A TCP line split across writes (and reads), CRLF endings, a final line without
            # a newline completed by the end of the stream.
            c = a.tcp()
            c.sendall(b"e2e_tcp_total:1|c\ne2e_tc")
            a.await_value("e2e_tcp_total", None, 1)
            c.sendall(b"p_total:2|c\r\ne2e_tcp_total:4|c")
            a.await_value("e2e_tcp_total", None, 3)
            c.close()
            a.await_value("e2e_tcp_total", None, 7)
            a.unixgram("e2e_unix_total:5|c|#via:unixgram")
            a.await_value("e2e_unix_total", {"via": "unixgram"}, 5)
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "e2e_level"), 7)
            self.assertEqual(sample_value(fams, "abacus_statsd_lines_total", {"listener": "udp"}),
                             4)
            self.assertEqual(sample_value(fams, "abacus_statsd_packets_total",
                                          {"listener": "udp"}), 1)
            self.assertEqual(sample_value(fams, "abacus_statsd_packets_total",
                                          {"listener": "unixgram"}), 1)
            self.assertEqual(sample_value(fams, "abacus_statsd_tcp_connections_total"), 1)
            self.assertEqual(sample_value(fams, "abacus_statsd_bytes_total", {"listener": "tcp"}),
                             len("e2e_tcp_total:1|c\ne2e_tcp_total:2|c\r\ne2e_tcp_total:4|c"))
            for name in SELF_METRICS:
                f = family(fams, name)
                self.assertIsNotNone(f, name)
                self.assertEqual(f.type, "counter", name)
            self.assertTrue(os.path.exists(a.sock_path))
        self.assertFalse(os.path.exists(a.sock_path), "the socket file outlived the process")

    def test_yaml_listeners_and_disabling(self):
        with StatsdAbacus(flags=False, config="statsd:\n  listen_udp: \"127.0.0.1:0\"\n"
                          "  listen_tcp: \"\"\n") as a:
            self.assertEqual(set(a.addr), {"udp"})
            a.udp("e2e_yaml_total:1|c")
            a.await_value("e2e_yaml_total", None, 1)
        # Flags override the file; empty values disable every listener.
        with StatsdAbacus(udp=False, tcp=False,
                          config="statsd:\n  listen_udp: \"127.0.0.1:0\"\n") as a:
            self.assertEqual(a.addr, {})
            fams, _, _ = a.scrape()
            self.assertIsNone(sample_value(fams, "abacus_statsd_lines_total",
                                           {"listener": "udp"}))

    def test_statsd_exporter_semantics(self):
        config = r"""
defaults:
  observer_type: histogram
mappings:
  - match: "app.*.requests"
    name: app_requests_total
    labels: {service: "$1", source: mapping}
  - match: "honor.*"
    name: honored_total
    honor_labels: true
    labels: {env: "$1"}
  - match: "scaled.*"
    name: scaled_seconds
    scale: 0.001
    help: Scaled things.
  - match: "noisy.*"
    action: drop
  - match: "lat.*"
    name: latency_seconds
    observer_type: summary
    labels: {op: "$1"}
  - match: 'rx_([a-z]+)_(\d+)_total'
    match_type: regex
    name: "rx_${1}_total"
    labels: {num: "$2"}
"""
        lines = [
            "app.api.requests:1|c|#region:eu,source:tag",   # DogStatsD; the rule wins
            "app.api.requests,region=eu:2|c",                # InfluxDB
            "app.api.requests#region=eu:4|c",                # Librato
            "app.api[region=eu].requests:8|c",               # SignalFx
            "honor.prod:1|c|#env:staging",
            "honor.prod:1|c",
            "scaled.x:2500|g",
            "noisy.thing:1|c",
            "lat.get:10|ms",
            "lat.get:30|ms",
            "rx_abc_42_total:1|c",
            "my.dotted-name:7|g",
            "level:5|g", "level:+2|g", "level:-1|g",
            "req.time:100|ms",
            "sampled_total:1|c|@0.25",
            "multi_total:1|c:2|c",
            "dist:1:2:3|d",
            "tags_total:1|c|#b:2,a:1",
            "tags_total:1|c|#a:1,b:2",
        ]
        with StatsdAbacus(config=config, tcp=False) as a:
            for i in range(0, len(lines), 5):
                a.udp("\n".join(lines[i:i + 5]))
            a.await_lines("udp", len(lines))
            fams, text, _ = a.scrape()
            v = lambda n, l=None: sample_value(fams, n, l)  # noqa: E731
            self.assertEqual(v("app_requests_total",
                               {"region": "eu", "service": "api", "source": "mapping"}), 15)
            self.assertIn('app_requests_total{region="eu",service="api",source="mapping"} 15',
                          text)  # label names sorted, as statsd_exporter exposes them
            self.assertEqual(v("honored_total", {"env": "staging"}), 1)
            self.assertEqual(v("honored_total", {"env": "prod"}), 1)
            self.assertAlmostEqual(v("scaled_seconds"), 2.5)
            self.assertIn("# HELP scaled_seconds Scaled things.", text)
            self.assertNotIn("noisy", text)
            self.assertEqual(v("latency_seconds_count", {"op": "get"}), 2)
            self.assertAlmostEqual(v("latency_seconds_sum", {"op": "get"}), 0.04)
            self.assertEqual(family(fams, "latency_seconds").type, "summary")
            self.assertIsNotNone(v("latency_seconds", {"op": "get", "quantile": "0.99"}))
            self.assertEqual(v("rx_abc_total", {"num": "42"}), 1)
            self.assertEqual(v("my_dotted_name"), 7)
            self.assertIn("# HELP my_dotted_name Metric autogenerated by abacus.", text)
            self.assertIn("# TYPE my_dotted_name gauge", text)
            self.assertEqual(v("level"), 6)
            self.assertEqual(family(fams, "req_time").type, "histogram")
            self.assertEqual(v("req_time_count"), 1)
            self.assertAlmostEqual(v("req_time_sum"), 0.1)
            self.assertEqual(v("req_time_bucket", {"le": "0.1"}), 1)
            self.assertEqual(v("req_time_bucket", {"le": "0.05"}), 0)
            self.assertEqual(len([s for s in family(fams, "req_time").samples
                                  if s.name == "req_time_bucket"]), 12)  # DefBuckets + Inf
            self.assertEqual(v("sampled_total"), 4)
            self.assertEqual(v("multi_total"), 3)
            self.assertEqual(v("dist_count"), 3)
            self.assertEqual(v("dist_sum"), 6)
            self.assertEqual(v("tags_total", {"a": "1", "b": "2"}), 2)
            self.assertEqual(v("abacus_statsd_events_actions_total", {"action": "drop"}), 1)
            self.assertEqual(v("abacus_statsd_events_actions_total", {"action": "map"}), 10)

    def test_default_observer_is_summary(self):
        """Without an observer type anywhere, timers become summaries, as statsd_exporter's
        exporter does, with its default objectives 0.5, 0.9, 0.99."""
        with StatsdAbacus(tcp=False, config="mappings: []\n") as a:
            a.udp("dflt_timer:250|ms\ndflt_timer:750|ms")
            a.await_lines("udp", 2)
            fams, _, _ = a.scrape()
            f = family(fams, "dflt_timer")
            self.assertEqual(f.type, "summary")
            self.assertEqual(sample_value(fams, "dflt_timer_count"), 2)
            self.assertEqual(sample_value(fams, "dflt_timer_sum"), 1.0)
            qs = sorted(s.labels["quantile"] for s in f.samples if "quantile" in s.labels)
            self.assertEqual(qs, ["0.5", "0.9", "0.99"])

    def test_conflicts_never_break_a_scrape(self):
        bad = [
            "cx_total:1|c", "cx_total:1|g", "cx_total:1|ms",  # type
            "cy_total:1|c|#a:1", "cy_total:1|c|#b:1",        # label set
            "hh:1|ms", "hh_count:1|g", "hh_bucket:1|g",      # a histogram's sample names
            "abacus_build_info:1|g", "process_open_fds:1|g", "abacus_series:1|g",  # not ours
            "lh:1|ms|#le:x",                                 # reserved label for a histogram
        ]
        with StatsdAbacus(tcp=False, config="defaults:\n  observer_type: histogram\n") as a:
            for line in bad:  # one datagram each, and again all together
                a.udp(line)
            a.udp("\n".join(bad))
            a.await_lines("udp", 2 * len(bad))
            fams, text, _ = a.scrape()  # the harness checks promtool and the structure
            self.assertEqual(sample_value(fams, "cx_total"), 2)
            self.assertEqual(sample_value(fams, "cy_total", {"a": "1"}), 2)
            self.assertEqual(sample_value(fams, "hh_count"), 2)
            self.assertEqual(family(fams, "hh").type, "histogram")
            self.assertIsNone(family(fams, "lh"))
            self.assertEqual(len(re.findall(r"^# TYPE hh_count ", text, re.M)), 0)
            self.assertEqual(sample_value(fams, "abacus_statsd_events_dropped_total",
                                          {"reason": "conflict"}), 2 * 8)
            self.assertEqual(sample_value(fams, "abacus_statsd_events_dropped_total",
                                          {"reason": "invalid_labels"}), 2)
            self.assertIn("statsd events refused", a.log_text())

    def test_series_limits_and_expiry(self):
        config = """
defaults:
  max_series: 5
mappings:
  - match: "short.*"
    name: short_lived_total
    ttl: 300ms
    labels: {id: "$1"}
"""
        with StatsdAbacus(config=config, tcp=False) as a:
            a.udp("\n".join("lim_total:1|c|#id:%d" % i for i in range(10)))
            a.udp("\n".join("short.%d:1|c" % i for i in range(3)))
            a.await_lines("udp", 13)
            fams, _, _ = a.scrape()
            self.assertEqual(len([s for s in family(fams, "lim_total").samples]), 5)
            self.assertEqual(sample_value(fams, "abacus_series", {"family": "lim_total"}), 5)
            self.assertEqual(sample_value(fams, "abacus_series_refused_total",
                                          {"family": "lim_total"}), 5)
            self.assertEqual(sample_value(fams, "abacus_statsd_events_dropped_total",
                                          {"reason": "series_limit"}), 5)
            # The first refusals are logged with the family and the reason.
            a.wait_log(r'msg="statsd events refused" metric=lim_total type=counter '
                       r'reason=series_limit')
            # The TTL expires the series; the live-series gauge goes down with them.
            a.await_value("abacus_series", {"family": "short_lived_total"}, 0)
            fams, _, _ = a.scrape()
            self.assertIsNone(sample_value(fams, "short_lived_total", {"id": "0"}))
            self.assertEqual(sample_value(fams, "abacus_series", {"family": "lim_total"}), 5)

    def test_parity_and_odd_values(self):
        config = """
defaults:
  observer_type: histogram
mappings:
  - match: "foo--bar.*"
    name: double_dash_total
    labels: {v: "$1"}
"""
        lines = [
            "foo--bar.x:1|c",                            # a glob statsd_exporter accepts
            "hs_total:1|c|#env:prod|card:low",           # hot-shots with cardinality set
            "hs_plain_total:1|c|card:low",
            "hs_timer:250|ms|#env:prod|c:cid|card:high|T1656581400",
            "ts_total:1|c|T", "ts_total:1|c|Tnot-a-number",
            "odd_total:1|c", "odd_total:Inf|c", "odd_total:NaN|c", "odd_total:+Inf|c",
            "odd_lat:10|ms", "odd_lat:NaN|ms", "odd_lat:Inf|ms", "odd_lat:-Inf|h",
            "odd_lat:1|ms|@2", "odd_lat:1|ms|@-1", "odd_lat:1|ms|@NaN", "odd_lat:1|ms|@Inf",
            "odd_lat:1|ms|@1e-300", "odd_total:1|c|@2",
        ]
        with StatsdAbacus(config=config, tcp=False) as a:
            a.udp("\n".join(lines))
            a.await_lines("udp", len(lines))
            fams, text, _ = a.scrape()  # promtool would refuse a +Inf or NaN counter
            v = lambda n, l=None: sample_value(fams, n, l)  # noqa: E731
            self.assertEqual(v("double_dash_total", {"v": "x"}), 1)
            self.assertEqual(v("hs_total", {"env": "prod"}), 1)
            self.assertEqual(v("hs_plain_total"), 1)
            self.assertEqual(v("hs_timer_count", {"env": "prod", "container_id": "cid"}), 1)
            self.assertEqual(v("ts_total"), 2)
            self.assertEqual(v("odd_total"), 1)
            self.assertEqual(v("odd_lat_count"), 1)
            self.assertAlmostEqual(v("odd_lat_sum"), 0.01)
            self.assertEqual(v("abacus_statsd_unknown_fields_total"), 3)
            errs = lambda r: v("abacus_statsd_sample_errors_total", {"reason": r})  # noqa: E731
            dropped = lambda r: v("abacus_statsd_events_dropped_total",  # noqa: E731
                                  {"reason": r})
            self.assertEqual(errs("malformed_timestamp"), 2)
            self.assertEqual(errs("malformed_container_id"), 0)
            self.assertEqual(errs("invalid_sample_rate"), 6)
            self.assertEqual(dropped("invalid_value"), 6)
            self.assertNotIn("Inf", "".join(l for l in text.splitlines()
                                            if l.startswith("odd_") and "le=" not in l))
            a.wait_log(r'msg="statsd events refused" metric=odd_total type=counter '
                       r'reason=invalid_value')

    def test_many_tcp_clients_exact(self):
        clients, per = 16, 1500
        errors = []

        def client(t):
            try:
                c = a.tcp()
                buf = []
                for i in range(per):
                    buf.append("e2e_hot_total:1|c\n"
                               "e2e_fresh_total:1|c|#client:c%d,seq:s%d\n"
                               "e2e_shared_total:1|c|#slot:%d\n" % (t, i, i % 50))
                    if len(buf) == 100:
                        c.sendall("".join(buf).encode())
                        buf = []
                c.sendall("".join(buf).encode())
                c.close()
            except Exception as e:  # reported by the main thread
                errors.append(e)

        with StatsdAbacus(udp=False, config="defaults:\n  max_series: 100000\n") as a:
            threads = [threading.Thread(target=client, args=(t,)) for t in range(clients)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            self.assertEqual(errors, [])
            a.await_lines("tcp", clients * per * 3)
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "e2e_hot_total"), clients * per)
            fresh = [s for s in family(fams, "e2e_fresh_total").samples
                     if s.name == "e2e_fresh_total"]
            self.assertEqual(len(fresh), clients * per)
            self.assertTrue(all(s.value == 1 for s in fresh))
            self.assertEqual(len({(s.labels["client"], s.labels["seq"]) for s in fresh}),
                             clients * per)
            for slot in range(50):
                self.assertEqual(sample_value(fams, "e2e_shared_total", {"slot": str(slot)}),
                                 clients * per / 50)
            self.assertEqual(sample_value(fams, "abacus_statsd_tcp_connections_total"), clients)
            self.assertEqual(sample_value(fams, "abacus_statsd_events_total",
                                          {"type": "counter"}), clients * per * 3)

    def test_many_udp_clients(self):
        """Two readers (SO_REUSEPORT), many client sockets. Each reader receives: with the
        process stopped, datagrams from 64 client sockets wait in the kernel, and both reader
        sockets' receive queues hold some (the kernel spreads clients by source port; all 64
        on one socket has probability 2^-63), then every line is counted once it runs again.
        Then 8 clients send at once in rounds of 5 datagrams each: at most 40 datagrams
        (about 28 KB of payload, under 100 KB with the kernel's per-datagram overhead) are ever
        queued, far below the receive buffer (8 MiB asked for; at least the 208 KiB default),
        so the kernel has no reason to drop one: every line must arrive (lower bound = all)."""
        clients, rounds, per_round, lines = 8, 10, 5, 20

        def datagram(t, p):
            return "\n".join("e2e_udp_fresh_total:1|c|#c:%d,p:%d,l:%d" % (t, p, k)
                             for k in range(lines)).encode()

        with StatsdAbacus(tcp=False, args=["--statsd.readers=2",
                                           "--statsd.read-buffer=8388608"]) as a:
            dest = a.inet("udp")
            # 1. both readers receive
            socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(64)]
            a.pause()
            try:
                for i, s in enumerate(socks):
                    s.sendto(datagram(100 + i, 0), dest)
                queues = self._udp_queues(a)
            finally:
                a.resume()
                for s in socks:
                    s.close()
            self.assertEqual(len(queues), 2, queues)  # one socket per reader
            self.assertTrue(all(q > 0 for q in queues.values()),
                            "a reader's socket received nothing: %r" % queues)
            first = 64 * lines
            a.await_lines("udp", first)

            # 2. many clients at once, every line delivered
            def client(t, r):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                for p in range(r * per_round, (r + 1) * per_round):
                    s.sendto(datagram(t, p), dest)
                s.close()

            for r in range(rounds):
                threads = [threading.Thread(target=client, args=(t, r)) for t in range(clients)]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
                a.await_lines("udp", first + (r + 1) * clients * per_round * lines)
            total = clients * rounds * per_round * lines
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "abacus_statsd_packets_dropped_total",
                                          {"listener": "udp", "reason": "kernel"}), 0)
            self.assertEqual(sample_value(fams, "abacus_statsd_packets_total",
                                          {"listener": "udp"}), 64 + clients * rounds * per_round)
            fresh = family(fams, "e2e_udp_fresh_total").samples
            self.assertEqual(len(fresh), first + total)
            self.assertTrue(all(s.value == 1 for s in fresh))

    @staticmethod
    def _udp_queues(a):
        """{inode: bytes in the receive queue} of abacus's UDP sockets (/proc/PID/net/udp)."""
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % a.proc.pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (a.proc.pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        port = "%04X" % a.inet("udp")[1]
        out = {}
        with open("/proc/%d/net/udp" % a.proc.pid) as f:
            next(f)
            for row in f:
                col = row.split()
                # sl local_address rem_address st tx_queue:rx_queue tr tm->when retrnsmt uid
                # timeout inode ...
                if col[1].endswith(":" + port) and col[9] in inodes:
                    out[col[9]] = int(col[4].split(":")[1], 16)
        return out

    def test_reload_switches_rules_and_tag_parsing(self):
        before = 'mappings:\n  - match: "r.*"\n    name: before_total\n    labels: {k: "$1"}\n'
        after = ('statsd:\n  parse_dogstatsd_tags: false\n  read_buffer: 1048576\n'
                 'mappings:\n  - match: "r.*"\n    name: after_total\n    labels: {k: "$1"}\n')
        with StatsdAbacus(config=before, tcp=False) as a:
            a.udp("r.x:1|c\ntagged_total:1|c|#a:b")
            a.await_value("before_total", {"k": "x"}, 1)
            a.await_value("tagged_total", {"a": "b"}, 1)
            a.write_config(after)
            mark = len(a.lines)
            a.signal(signal.SIGHUP)
            a.wait_log("configuration reloaded", start=mark)
            a.udp("r.x:2|c\ntagged2_total:5|c|#a:b")
            a.await_value("after_total", {"k": "x"}, 2)
            a.await_value("tagged2_total", None, 5)  # DogStatsD tags ignored now
            self.assertEqual(a.value("before_total", {"k": "x"}), 1)
            # read_buffer only applies at start: said once, by one reader.
            a.wait_log("take effect after a restart", start=mark)
            self.assertEqual(a.log_text().count("take effect after a restart"), 1)

    def test_malformed_inputs_counted_by_their_reason(self):
        """Each malformed input moves exactly its documented counter by exactly one, and no
        other refusal counter: sent one at a time, each followed by a marker datagram (one
        reader: the queue is read in order), the counters compared before and after."""
        se, dr = "abacus_statsd_sample_errors_total", "abacus_statsd_events_dropped_total"
        te, ev = "abacus_statsd_tag_errors_total", "abacus_statsd_events_total"
        cases = [
            # an empty datagram is one empty line: skipped, nothing refused, nothing applied
            (b"", {}),
            (b":", {(se, "malformed_line"): 1}),                     # no name
            (b"a:|c", {(se, "malformed_value"): 1}),                 # no value
            (b"a:1|", {(se, "illegal_event"): 1}),                   # no type
            (b"a:1|x", {(se, "illegal_event"): 1}),                  # unknown type
            (b"a:1|s", {(se, "unsupported_set"): 1}),                # sets are refused
            # statsd_exporter refuses a negative counter in its parser (sample error); a
            # counter that becomes negative through `scale` is an event refusal instead
            (b"a:-1|c", {(se, "illegal_negative_counter"): 1}),
            (b"a:nan|c", {(dr, "invalid_value"): 1}),                # non-finite increment
            (b"\xff\xfe:1|c", {(se, "malformed_line"): 1}),          # not UTF-8
            (b"x_total:1|c|#__name__:y", {(dr, "invalid_labels"): 1}),  # reserved label
            (b"a:1e999|g", {(se, "malformed_value"): 1}),            # out of range
            # a lone bracket pair out of order: a tag error, the sample kept (name escaped)
            (b"]a[b=c:1|c", {(te, ""): 1, (ev, "counter"): 1}),
            # accepted: an escaped name, a rate @0 meaning 1, a non-ASCII name escaped
            (b"a\x00b:1|c", {(ev, "counter"): 1}),
            (b"b:1|ms|@0", {(ev, "observer"): 1}),
            (b"h.\xc3\xa9:1|g", {(ev, "gauge"): 1}),
        ]
        watched = (se, dr, te, ev, "abacus_statsd_unknown_fields_total")

        def counters():
            r = a.get("/metrics")
            assert r.status == 200, r.status
            fams = check_format_ignoring_lint(r.text)
            out = {(s.name, s.labels.get("reason", s.labels.get("type", ""))): s.value
                   for f in fams.values() for s in f.samples if s.name in watched}
            return fams, out

        with StatsdAbacus(tcp=False) as a:
            _, before = counters()
            for i, (payload, want) in enumerate(cases, 1):
                a.udp(payload)
                a.udp("e2e_marker_total:1|c")
                want = dict(want)
                want[(ev, "counter")] = want.get((ev, "counter"), 0) + 1  # the marker
                last = {}

                def settled():
                    # the self-metrics are folded a moment after the metric is updated, and
                    # not in one step: await exactly the expected movement (a counter moved
                    # too far, or one that should not move, never gets there)
                    fams, after = counters()
                    last["moved"] = {k: after[k] - before.get(k, 0) for k in after
                                     if after[k] != before.get(k, 0)}
                    if (sample_value(fams, "e2e_marker_total") == i
                            and last["moved"] == want):
                        return fams, after
                    return None
                try:
                    _, after = wait_until(settled, "the counters of %r" % payload,
                                          timeout=10)
                except AssertionError:
                    self.assertEqual(last.get("moved"), want, payload)
                    raise
                before = after
            # what the accepted ones became (raw lines: prometheus_client renames a counter
            # without _total)
            lines = set(a.get("/metrics").text.splitlines())
            for line in ("a_b 1", "_a_b_c 1", "b_count 1", "h__ 1"):
                self.assertIn(line, lines)

    def test_hostile_input(self):
        rnd = random.Random(1234)
        alphabet = b"ab.:|#@,=[]-+cgmshd \n\\\"\x00\xc3\xa9\x80\xff"
        with StatsdAbacus(unixgram=True) as a:
            for _ in range(300):
                n = rnd.randrange(0, 600)
                a.udp(bytes(rnd.choice(alphabet) if rnd.random() < 0.8 else rnd.randrange(256)
                            for _ in range(n)))
            c = a.tcp()
            c.sendall(b"z" * 70000 + b":1|c\n" + b"\xff\x00garbage\n" + b"e2e_after_total:1|c\n")
            c.close()
            a.unixgram("e2e_marker_total:1|c")

            def value(name, labels=None):
                r = a.get("/metrics")
                assert r.status == 200, r.status
                return sample_value(check_format_ignoring_lint(r.text), name, labels)
            wait_until(lambda: value("e2e_after_total") == 1, "the line after the garbage")
            wait_until(lambda: value("e2e_marker_total") == 1, "the unixgram marker")
            a.udp("e2e_marker_total:1|c")
            wait_until(lambda: value("e2e_marker_total") == 2, "the UDP marker")
            fams = check_format_ignoring_lint(a.get("/metrics").text)
            self.assertGreater(sample_value(fams, "abacus_statsd_sample_errors_total",
                                            {"reason": "malformed_line"}), 0)
            self.assertEqual(sample_value(fams, "abacus_statsd_sample_errors_total",
                                          {"reason": "line_too_long"}), 1)
            # every datagram was read: 300 random ones and the UDP marker
            self.assertEqual(sample_value(fams, "abacus_statsd_packets_total",
                                          {"listener": "udp"}), 301)
            self.assertEqual(a.get("/-/healthy").status, 200)

if __name__ == "__main__":
    unittest.main(verbosity=2)
