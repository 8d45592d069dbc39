"""test_documented.py - README behaviours no other end-to-end test reached:

- `--statsd.mapping-config`: its `mappings:` and `defaults:` replace the config file's; a
  rule changed in it applies after a reload (SIGHUP); a broken mapping file is rejected on
  reload and the running rules stay; declaring metrics in it is an error.
- `server.max_connections` (idle connections evicted, the newcomer kept, counted) and
  `server.max_connections_per_ip` (a third connection from one address closed at once,
  another address still served).
- A reload that changes `server:` logs the restart warning once and the old setting stays in
  force; a reload that does not change it logs nothing of the kind. The same for `push:`
  (`enabled`, `max_body_bytes`, `max_buffered_bytes`); `push.group_ttl` changes without one.
- Drop reasons `too_many_labels` (33 labels after merging with a rule's, 32 pass),
  `illegal_negative_counter` after `scale`, and `invalid_value` after `scale` (counter,
  gauge change, observation; a gauge *set* to +Inf is allowed).
- Log escaping: a configuration file name with a quote, backslash, newline, tab, `=`, space
  and a control byte, logged in logfmt and JSON, comes back exactly from one line each.
- The landing page HTML-escapes the configured telemetry path and file names.
"""

import json
import os
import re
import signal
import socket
import sys
import tempfile
import shutil
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, READY_REQUEST, raw_request, sample_value, wait_until  # noqa: E402


def closed_by_peer(s, timeout=20):
    """True once the server closed connection s (EOF or reset), False if it stays open for
    timeout seconds."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def closed_yet(s):
    """True when the server has closed connection s (EOF or reset), without waiting."""
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        s.settimeout(20)


def connect_from(source, host, port):
    """A connection to host:port from a source address of our choosing (127.0.0.0/8 is all
    loopback): the per-address limit then counts only the test's own connections, not the
    harness's, which the server may still be closing."""
    s = socket.socket()
    s.settimeout(20)
    s.bind((source, 0))
    s.connect((host, port))
    return s


def get_from(source, host, port, path="/-/healthy"):
    """GET path over a connection from source address; the status code, or None when the
    server closed the connection without answering."""
    s = socket.socket()
    try:
        s.settimeout(20)
        s.bind((source, 0))
        s.connect((host, port))
        s.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        # None when closed before answering (the server may still count a connection just
        # closed against the address), so that wait_until tries again
        return int(data.split(b" ", 2)[1]) if data else None
    finally:
        s.close()


class MappingConfig(unittest.TestCase):
    CONFIG = ('metrics:\n  - {name: declared_total, type: counter, help: Declared.}\n'
              'mappings:\n  - match: "m.*"\n    name: from_config_file_total\n')
    MAPPING = ('defaults:\n  ttl: 0\nmappings:\n  - match: "m.*"\n    name: "%s"\n'
               '    labels: {what: "$1"}\n')

    def test_mapping_file_at_start_and_on_reload(self):
        a = Abacus(config=self.CONFIG, statsd=True)
        mapping = os.path.join(a.tmp, "mapping.yml")
        a.write_config(self.MAPPING % "from_mapping_file_total", path=mapping)
        a.args.append("--statsd.mapping-config=" + mapping)
        with a:
            a.send_udp("m.one:1|c")
            wait_until(lambda: a.value("from_mapping_file_total", {"what": "one"}) == 1,
                       "the mapping file's rule")
            fams, text, _ = a.scrape()
            self.assertNotIn("from_config_file_total", text)
            self.assertEqual(sample_value(fams, "declared_total"), 0)  # metrics: stay
            page = a.get("/").text
            self.assertIn(mapping, page)
            hash1 = sample_value(fams, "abacus_config_hash")

            # a rule changed in the mapping file applies after a reload
            a.write_config(self.MAPPING % "after_reload_total", path=mapping)
            mark = len(a.lines)
            a.signal(signal.SIGHUP)
            a.wait_log("configuration reloaded", start=mark)
            a.send_udp("m.two:1|c")
            wait_until(lambda: a.value("after_reload_total", {"what": "two"}) == 1,
                       "the reloaded rule")
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "from_mapping_file_total", {"what": "one"}), 1)
            self.assertIsNone(sample_value(fams, "from_mapping_file_total", {"what": "two"}))
            self.assertNotEqual(sample_value(fams, "abacus_config_hash"), hash1)

            # a broken mapping file is rejected; the rules in force stay
            a.write_config("mappings:\n  - match: \"m.*\"\n    nmae: typo\n", path=mapping)
            mark = len(a.lines)
            a.signal(signal.SIGHUP)
            a.wait_log(r'level=error .*file=\S*mapping\.yml line=3 column=5 err=.*nmae',
                       start=mark)
            wait_until(lambda: a.value("abacus_config_last_reload_successful") == 0,
                       "the failed reload")
            a.send_udp("m.three:1|c")
            wait_until(lambda: a.value("after_reload_total", {"what": "three"}) == 1,
                       "the old rule still in force")

    def test_metrics_in_the_mapping_file_are_an_error(self):
        d = tempfile.mkdtemp(prefix="abacus-map-")
        try:
            mapping = os.path.join(d, "mapping.yml")
            with open(mapping, "w") as f:
                f.write("metrics:\n  - {name: x_total, type: counter}\nmappings: []\n")
            rc, out, err = harness.run(["--check-config", "--statsd.mapping-config=" + mapping],
                                       cwd=d)
            self.assertEqual(rc, 1, out + err)
            self.assertRegex(err, r"mapping\.yml:\d+:\d+: metrics: declared metrics belong in "
                                  r"the config file")
        finally:
            shutil.rmtree(d, ignore_errors=True)


class ConnectionLimits(unittest.TestCase):
    def test_max_connections_evicts_idle_ones(self):
        with Abacus(config="server:\n  max_connections: 2\n") as a:
            # One request on each before the next is opened: two idle connections fit, and each
            # newcomer evicts the idle one waiting longest, as the server sees it. Which one that
            # is this test does not say: the server marks a connection idle once it has sent the
            # response, which the client may read first, so of two answered within a moment the
            # server may take either as the older (seen in CI under ASan).
            conns = []
            try:
                for _ in range(4):
                    c = socket.create_connection((a.host, a.port), timeout=20)
                    conns.append(c)
                    self.assertEqual(raw_request(c, READY_REQUEST)[0], 200)
                wait_until(lambda: sum(map(closed_yet, conns[:3])) == 2, "two evictions")
                self.assertFalse(closed_yet(conns[3]))  # the newcomer evicts another, not itself
                # a request still gets through (evicting another idle connection)
                self.assertEqual(a.get("/-/healthy").status, 200)
                wait_until(lambda: sum(map(closed_yet, conns)) == 3, "a third eviction")
                # Each eviction is counted by the worker thread that accepted the newcomer; the
                # two workers may run behind each other (seen under ASan): await the count.
                try:
                    wait_until(lambda: sample_value(a.scrape()[0],
                                                    "abacus_http_connections_closed_total",
                                                    {"reason": "evicted"}) >= 3,
                               "three evictions")
                except AssertionError as e:
                    # Say how every connection was closed, and what abacus logged.
                    fams, _, _ = a.scrape()
                    closed = {r: sample_value(fams, "abacus_http_connections_closed_total",
                                              {"reason": r})
                              for r in ("evicted", "refused", "request_timeout", "write_timeout")}
                    raise AssertionError("%s; closed by reason: %r; open: %r; log:\n%s" % (
                        e, closed, sample_value(fams, "abacus_http_connections"),
                        a.log_text())) from None
                fams, _, _ = a.scrape()
                self.assertEqual(sample_value(fams, "abacus_http_connections_closed_total",
                                              {"reason": "refused"}), 0)
                self.assertLessEqual(sample_value(fams, "abacus_http_connections"), 2)
            finally:
                for c in conns:
                    c.close()

    def test_max_connections_per_ip(self):
        with Abacus(config="server:\n  max_connections_per_ip: 2\n") as a:
            # one request on each before the next is opened: the server has counted it (its two
            # workers could otherwise count the third before the second)
            conns = []
            try:
                for _ in range(2):
                    conns.append(connect_from("127.0.0.3", a.host, a.port))
                    self.assertEqual(raw_request(conns[-1], READY_REQUEST)[0], 200)
                third = connect_from("127.0.0.3", a.host, a.port)
                try:
                    self.assertTrue(closed_by_peer(third), "a third connection from "
                                                           "127.0.0.3 was kept")
                finally:
                    third.close()
                # the two stay open and are served
                for c in conns:
                    self.assertEqual(raw_request(c, READY_REQUEST)[0], 200)
                # another address is served
                self.assertEqual(get_from("127.0.0.2", a.host, a.port), 200)
                a.wait_log("reached connection limit")
            finally:
                for c in conns:
                    c.close()
            # once they are gone, 127.0.0.3 is served again
            wait_until(lambda: get_from("127.0.0.3", a.host, a.port) == 200,
                       "127.0.0.3 served again")


class ServerReload(unittest.TestCase):
    def test_reload_changing_server_warns_and_keeps_the_old_setting(self):
        base = "metrics:\n  - {name: g, type: gauge, help: G.}\n"
        a = Abacus(config="server:\n  max_connections_per_ip: 2\n" + base, lifecycle=True)
        with a:
            # a reload that leaves server: alone says nothing about a restart
            a.write_config("server:\n  max_connections_per_ip: 2\n" + base +
                           "  - {name: h, type: gauge, help: H.}\n")
            self.assertEqual(get_from("127.0.0.2", a.host, a.port, "/-/healthy"), 200)
            mark = len(a.lines)
            a.signal(signal.SIGHUP)
            a.wait_log("configuration reloaded", start=mark)
            self.assertNotIn("take effect after a restart", a.log_text())
            # one that changes it warns, once
            a.write_config("server:\n  max_connections_per_ip: 10\n" + base)
            mark = len(a.lines)
            a.signal(signal.SIGHUP)
            a.wait_log("configuration reloaded", start=mark)
            a.wait_log(r'level=warn msg="server settings changed; they take effect after a '
                       r'restart"', start=mark)
            self.assertEqual(a.log_text().count("take effect after a restart"), 1)
            self.assertIsNone(a.value("h"))  # the reload itself was applied
            # ...and the old per-address limit (2) is still in force
            conns = [connect_from("127.0.0.3", a.host, a.port) for _ in range(2)]
            try:
                third = connect_from("127.0.0.3", a.host, a.port)
                try:
                    self.assertTrue(closed_by_peer(third))
                finally:
                    third.close()
            finally:
                for c in conns:
                    c.close()

    def test_reload_changing_push_warns_except_group_ttl(self):
        base = "metrics:\n  - {name: g, type: gauge, help: G.}\n"
        a = Abacus(config="push:\n  group_ttl: 1h\n" + base)
        with a:
            # group_ttl is read at each push: a reload applies it, no restart warning
            a.write_config("push:\n  group_ttl: 2h\n" + base)
            mark = len(a.lines)
            a.signal(signal.SIGHUP)
            a.wait_log("configuration reloaded", start=mark)
            self.assertNotIn("take effect after a restart", a.log_text())
            # the settings the HTTP listener reads once warn, once
            a.write_config("push:\n  group_ttl: 2h\n  max_body_bytes: 1024\n" + base)
            mark = len(a.lines)
            a.signal(signal.SIGHUP)
            a.wait_log("configuration reloaded", start=mark)
            a.wait_log(r'level=warn msg="push settings changed \(enabled, max_body_bytes or '
                       r'max_buffered_bytes\); they take effect after a restart"', start=mark)
            self.assertEqual(a.log_text().count("take effect after a restart"), 1)


class DropReasons(unittest.TestCase):
    CONFIG = """
mappings:
  - match: "tml.*"
    name: tml_total
    labels: {r1: "$1", r2: "x", r3: "y"}
  - match: "neg.*"
    name: "neg_${1}_total"
    scale: -1
  - match: "big.*"
    name: "big_$1"
    scale: 1e300
    observer_type: histogram
"""

    def test_drop_reasons(self):
        tags = lambda n: ",".join("t%02d:v" % i for i in range(n))  # noqa: E731
        lines = [
            "tml.a:1|c|#" + tags(29),          # 29 tags + 3 rule labels = 32: applied
            "tml.b:1|c|#" + tags(30),          # 33: too_many_labels
            "neg.c:2|c",                        # -2 after scale: illegal_negative_counter
            "neg.z:0|c",                        # -0 is not below 0: applied
            "big.ctr:1e10|c",                   # +Inf after scale: invalid_value
            "big.gdelta:+1e10|g",               # a gauge change to +Inf: invalid_value
            "big.obs:1e10|h",                   # an observation of +Inf: invalid_value
            "big.gset:1e10|g",                  # a gauge set to +Inf: allowed
        ]
        with Abacus(config=self.CONFIG, statsd=True) as a:
            a.send_udp("\n".join(lines))
            wait_until(lambda: a.value("abacus_statsd_lines_total", {"listener": "udp"}) ==
                       len(lines), "all lines read")
            # +Inf in a gauge is valid exposition, but promtool's lint is not the point here
            text = a.get("/metrics").text
            fams = {f.name: f for f in harness.text_parser.text_string_to_metric_families(text)}
            dropped = {s.labels["reason"]: s.value
                       for s in fams["abacus_statsd_events_dropped"].samples}
            want = {"too_many_labels": 1, "illegal_negative_counter": 1, "invalid_value": 3}
            for reason, v in dropped.items():
                self.assertEqual(v, want.get(reason, 0), reason)
            errs = {s.labels["reason"]: s.value
                    for s in fams["abacus_statsd_sample_errors"].samples}
            self.assertEqual(sum(errs.values()), 0, errs)
            self.assertEqual(sample_value(fams, "abacus_statsd_events_total",
                                          {"type": "counter"}), 2)
            self.assertEqual(sample_value(fams, "abacus_statsd_events_total",
                                          {"type": "gauge"}), 1)
            tml = [s for s in fams["tml"].samples if s.name == "tml_total"]
            self.assertEqual(len(tml), 1)
            self.assertEqual(len(tml[0].labels), 32)
            self.assertEqual(tml[0].labels["r1"], "a")
            self.assertIn("neg_z_total 0\n", text)
            self.assertNotIn("neg_c_total", text.replace('family="neg_c_total"', ""))
            self.assertIn("big_gset +Inf\n", text)
            for name in ("big_ctr", "big_gdelta", "big_obs_bucket", "big_obs_sum"):
                self.assertNotIn("\n%s" % name, text.replace("# ", ""))
            for reason in ("illegal_negative_counter", "invalid_value"):
                a.wait_log(r'msg="statsd events refused" .*reason=%s' % reason)

    def test_too_many_labels_is_logged(self):
        """README: "The first refusals of each kind are logged (msg="statsd events
        refused" ...) with the metric name, type and reason", too_many_labels included (it
        was counted but never logged): `tml.b:1|c|#t00:v,...,t29:v` through a rule adding 3
        labels (33 in all)."""
        with Abacus(config=self.CONFIG, statsd=True) as a:
            a.send_udp("tml.b:1|c|#" + ",".join("t%02d:v" % i for i in range(30)))
            wait_until(lambda: a.value("abacus_statsd_events_dropped_total",
                                       {"reason": "too_many_labels"}) == 1, "the refusal")
            a.wait_log(r'msg="statsd events refused" .*reason=too_many_labels', timeout=5)


# a file name with everything logfmt and JSON must escape
ODD = 'cfg "q" back\\slash\nnew\tline=x\x01.yml'


def logfmt(line):
    """Parse one logfmt line (bare or double-quoted values with \\", \\\\, \\n, \\r, \\t and
    \\uXXXX escapes) into a dict."""
    out, i, n = {}, 0, len(line)
    while i < n:
        j = line.index("=", i)
        key = line[i:j]
        i = j + 1
        if i < n and line[i] == '"':
            i += 1
            val = []
            while line[i] != '"':
                c = line[i]
                if c == "\\":
                    e = line[i + 1]
                    if e == "u":
                        val.append(chr(int(line[i + 2:i + 6], 16)))
                        i += 6
                        continue
                    val.append({"n": "\n", "r": "\r", "t": "\t"}.get(e, e))
                    i += 2
                    continue
                val.append(c)
                i += 1
            i += 1
            out[key] = "".join(val)
        else:
            j = line.find(" ", i)
            j = n if j < 0 else j
            out[key] = line[i:j]
            i = j
        while i < n and line[i] == " ":
            i += 1
    return out


class LogEscaping(unittest.TestCase):
    def check(self, fmt, parse):
        d = tempfile.mkdtemp(prefix="abacus-log-")
        try:
            path = os.path.join(d, ODD)
            with open(path, "w") as f:
                f.write("metrics: []\n")
            a = Abacus(args=["--config.file=" + path, "--log.format=" + fmt])
            with a:
                pass
            loaded = [parse(line) for line in a.lines if "configuration loaded" in line]
            self.assertEqual(len(loaded), 1, a.log_text())
            self.assertEqual(loaded[0]["msg"], "configuration loaded")
            self.assertEqual(loaded[0]["file"], path)
            for line in a.lines:  # every line parses whole
                self.assertEqual(parse(line)["ts"][:2], "20")
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_logfmt(self):
        self.check("logfmt", logfmt)

    def test_json(self):
        self.check("json", json.loads)


class LandingPage(unittest.TestCase):
    def test_configured_values_are_escaped(self):
        path = "/m\"><x>&'"
        d = tempfile.mkdtemp(prefix="abacus-<b>&-")
        try:
            cfg = os.path.join(d, "a<i>.yml")
            with open(cfg, "w") as f:
                f.write("metrics: []\n")
            a = Abacus(args=["--config.file=" + cfg, "--web.telemetry-path=" + path])
            with a:
                r = a.get("/")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
                page = r.text
                esc = "/m&quot;&gt;&lt;x&gt;&amp;&#39;"
                self.assertIn('<a href="%s">Metrics</a>' % esc, page)
                self.assertIn("<td>%s</td>" % esc, page)
                self.assertIn(cfg.replace("&", "&amp;").replace("<", "&lt;")
                              .replace(">", "&gt;"), page)
                for raw in (path, "<x>", "<b>", "<i>"):
                    self.assertNotIn(raw, page)
                # the only elements are the page's own
                tags = set(re.findall(r"</?([a-zA-Z0-9]+)", page))
                self.assertEqual(tags - {"html", "head", "meta", "title", "style", "body", "h1",
                                         "h2", "p", "ul", "li", "a", "table", "tr", "th", "td"},
                                 set())
                # the path itself serves the metrics
                self.assertEqual(a.get(path).status, 200)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
