"""test_http.py - end-to-end tests of the abacus process: flags, endpoints, status codes and
headers, exposition formats, self-metrics, reload (SIGHUP and HTTP), graceful stop, and
concurrent scrapes during reloads. Runs the real binary (env ABACUS_BIN)."""

import gzip
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, run, sample_value, wait_until  # noqa: E402

CONFIG_A = """\
metrics:
  - name: jobs_processed_total
    help: Jobs processed, by queue.
    type: counter
    labels: [queue]
  - name: queue_depth
    help: Items waiting.
    type: gauge
  - name: job_duration_seconds
    help: Time to process one job.
    type: histogram
    histogram_options: {buckets: [0.1, 0.5, 1]}
"""

CONFIG_B = """\
metrics:
  - name: queue_depth
    help: Items waiting.
    type: gauge
  - name: workers_busy
    help: Busy workers.
    type: gauge
"""

BAD_CONFIG = """\
metrics:
  - name: ok_metric
    help: fine
    type: gauge
  - name: broken
    type: nonsense
"""

BAD_POS = re.compile(r"abacus\.yml:6:\d+: .*nonsense")


class Endpoints(unittest.TestCase):
    """One process serves all the read-only endpoint checks."""

    @classmethod
    def setUpClass(cls):
        cls.a = Abacus(config=CONFIG_A)
        try:
            cls.a.start()
        except BaseException:
            cls.a.cleanup()  # tearDownClass does not run after a failed setUpClass
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.a.stop()
        finally:
            cls.a.cleanup()

    def test_text_scrape(self):
        fams, text, r = self.a.scrape()
        self.assertEqual(sample_value(fams, "queue_depth"), 0)
        self.assertIn("# TYPE job_duration_seconds histogram", text)
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")  # streamed
        self.assertEqual(sample_value(fams, "abacus_config_last_reload_successful"), 1)

    def test_openmetrics_scrape(self):
        fams, text, _ = self.a.scrape(openmetrics=True)
        self.assertEqual(sample_value(fams, "queue_depth"), 0)
        self.assertEqual(sample_value(fams, "abacus_build_info",
                                      None) is not None, True)

    def test_negotiation_prefers_by_q(self):
        r = self.a.get("/metrics", {"Accept": "application/openmetrics-text;version=1.0.0;q=0.5,"
                                              "text/plain;version=0.0.4;q=0.9"})
        self.assertEqual(r.header("Content-Type"), harness.TEXT_CT)
        r = self.a.get("/metrics", {"Accept": "application/openmetrics-text;version=1.0.0,"
                                              "application/openmetrics-text;version=0.0.1;q=0.75,"
                                              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"})
        self.assertEqual(r.header("Content-Type"), harness.OM_CT)
        harness.parse_openmetrics(r.text)

    def test_gzip(self):
        for om in (False, True):
            fams, _, r = self.a.scrape(openmetrics=om, gzip_ok=True)
            self.assertEqual(r.header("Vary"), "Accept-Encoding")
            self.assertEqual(sample_value(fams, "queue_depth"), 0)

    def test_gzip_refused(self):
        for ae in ("gzip;q=0", "identity", "br"):
            r = self.a.get("/metrics", {"Accept-Encoding": ae})
            self.assertEqual(r.status, 200)
            self.assertIsNone(r.header("Content-Encoding"), ae)
            self.assertEqual(r.header("Vary"), "Accept-Encoding")
            harness.parse_text(r.text)

    def test_head(self):
        r = self.a.request("HEAD", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("Content-Type"), harness.TEXT_CT)
        r = self.a.request("HEAD", "/metrics", {"Accept": harness.OM_ACCEPT,
                                                "Accept-Encoding": "gzip"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), harness.OM_CT)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        for path in ("/", "/-/healthy", "/-/ready"):
            r = self.a.request("HEAD", path)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(r.body, b"", path)

    def test_landing_page(self):
        r = self.a.get("/")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        page = r.text
        _, out, _ = run(["--version"])
        version = re.search(r"version (\S+)", out).group(1)
        self.assertIn(version, page)
        self.assertIn('href="/metrics"', page)
        self.assertIn(self.a.config_path, page)
        self.assertIn("127.0.0.1:%d" % self.a.port, page)
        self.assertRegex(page, r"declared metrics</th><td>3<")

    def test_healthy_ready(self):
        for path in ("/-/healthy", "/-/ready"):
            r = self.a.get(path)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.text.strip(), "OK")

    def test_not_found(self):
        for path in ("/nope", "/metrics/", "/metricsx", "/-/", "/-/quit"):
            r = self.a.get(path)
            self.assertEqual(r.status, 404, path)
        r = self.a.request("POST", "/nope", body=b"x")
        self.assertEqual(r.status, 404)

    def test_method_not_allowed(self):
        for path in ("/metrics", "/", "/-/healthy", "/-/ready"):
            for m in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
                r = self.a.request(m, path)
                self.assertEqual(r.status, 405, (m, path))
                allow = {x.strip() for x in r.header("Allow").split(",")}
                self.assertEqual(allow, {"GET", "HEAD"}, (m, path))
        r = self.a.get("/-/reload")
        self.assertEqual(r.status, 405)
        self.assertEqual({x.strip() for x in r.header("Allow").split(",")}, {"POST", "PUT"})

    def test_reload_forbidden_without_lifecycle(self):
        for m in ("POST", "PUT"):
            r = self.a.request(m, "/-/reload")
            self.assertEqual(r.status, 403)

    def test_body_too_large(self):
        # An announced oversized body is refused before it is sent (default limit 4 MiB).
        s = socket.create_connection((self.a.host, self.a.port), timeout=30)
        try:
            s.sendall(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                      b"Expect: 100-continue\r\n\r\n" % (5 << 20))
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 413"))
        finally:
            s.close()

        def chunks():
            for _ in range(5):
                yield b"y" * (1 << 20)
        r = self.a.request("POST", "/-/reload", body=chunks())  # sent chunked
        self.assertEqual(r.status, 413)
        # the server still answers afterwards
        self.assertEqual(self.a.get("/-/healthy").status, 200)

    def test_self_metrics(self):
        fams, _, _ = self.a.scrape()
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                     "process_virtual_memory_bytes", "process_virtual_memory_max_bytes",
                     "process_open_fds", "process_max_fds", "process_start_time_seconds",
                     "abacus_config_last_reload_successful",
                     "abacus_config_last_reload_success_timestamp_seconds",
                     "abacus_config_hash"):
            self.assertIsNotNone(sample_value(fams, name), name)
        self.assertEqual(fams["process_cpu_seconds"].type, "counter")
        self.assertGreater(sample_value(fams, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(sample_value(fams, "process_open_fds"), 2)
        start = sample_value(fams, "process_start_time_seconds")
        self.assertLess(abs(start - time.time()), 3600)
        # series per family, including declared ones
        self.assertEqual(sample_value(fams, "abacus_series", {"family": "queue_depth"}), 1)
        self.assertEqual(sample_value(fams, "abacus_series",
                                      {"family": "jobs_processed_total"}), 0)
        self.assertEqual(sample_value(fams, "abacus_series_refused_total",
                                      {"family": "queue_depth"}), 0)
        # build info
        _, out, _ = run(["--version"])
        version = re.search(r"version (\S+)", out).group(1)
        build = [s for s in fams["abacus_build_info"].samples]
        self.assertEqual(len(build), 1)
        self.assertEqual(build[0].labels["version"], version)
        self.assertEqual(build[0].value, 1)
        self.assertIn("compiler", build[0].labels)
        # the config hash is that of a file, not 0
        self.assertNotEqual(sample_value(fams, "abacus_config_hash"), 0)

    def test_scrape_duration_histogram(self):
        self.a.scrape()
        fams, _, _ = self.a.scrape()
        fam = fams["abacus_scrape_duration_seconds"]
        self.assertEqual(fam.type, "histogram")
        count = sample_value(fams, "abacus_scrape_duration_seconds_count")
        self.assertGreaterEqual(count, 1)
        inf = sample_value(fams, "abacus_scrape_duration_seconds_bucket", {"le": "+Inf"})
        self.assertEqual(inf, count)

    def test_process_cpu_counter_monotonic(self):
        # A process of its own with a large registry (3000 declared gauges, ~300 KB a
        # scrape): scraping it burns CPU that the counter must show. Each reading lies
        # between the process's own utime + stime (/proc/PID/stat) read just before and just
        # after the scrape; the readings never go down and grow by at least 0.2 s.
        cfg = "metrics:\n" + "".join("  - {name: cpu_burn_%d, type: gauge, help: CPU.}\n" % i
                                     for i in range(3000))
        tick = os.sysconf("SC_CLK_TCK")
        with Abacus(config=cfg) as a:
            def proc_cpu():
                with open("/proc/%d/stat" % a.proc.pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

            def reading():
                lo = proc_cpu()
                v = a.value("process_cpu_seconds_total")
                hi = proc_cpu()
                self.assertTrue(lo - 1e-9 <= v <= hi + 1e-9, (lo, v, hi))
                return v
            first = prev = reading()

            def grown():
                nonlocal prev
                for _ in range(10):
                    self.assertEqual(a.get("/metrics").status, 200)
                v = reading()
                self.assertGreaterEqual(v, prev)
                prev = v
                return v >= first + 0.2
            wait_until(grown, "process_cpu_seconds_total to grow by 0.2 s", timeout=180)



class RequestCounting(unittest.TestCase):
    def test_http_requests_counted(self):
        # A process of its own: the count is exact only if nothing else hits the endpoint (a
        # request is counted when it completes, just after its response went out).
        with Abacus() as a:
            def count(handler, code):
                fams, _, _ = a.scrape()
                return sample_value(fams, "abacus_http_requests_total",
                                    {"handler": handler, "code": code}) or 0
            for _ in range(3):
                self.assertEqual(a.get("/-/healthy").status, 200)
            a.request("DELETE", "/-/healthy")
            a.get("/definitely-missing")
            wait_until(lambda: count("/-/healthy", "200") == 3, "3 /-/healthy requests counted")
            wait_until(lambda: count("/-/healthy", "405") == 1, "the 405 counted")
            wait_until(lambda: count("other", "404") == 1, "404 counted under handler=other")
            wait_until(lambda: count("/metrics", "200") >= 3, "scrapes counted")
            self.assertEqual(count("/-/healthy", "200"), 3)  # and no more

class Flags(unittest.TestCase):
    def test_help_and_version(self):
        rc, out, _ = run(["--help"])
        self.assertEqual(rc, 0)
        for flag in ("--web.listen-address", "--web.telemetry-path", "--web.enable-lifecycle",
                     "--config.file", "--check-config", "--log.level", "--log.format",
                     "--statsd.listen-udp", "--statsd.mapping-config", "--version"):
            self.assertIn(flag, out)
        rc, out2, _ = run(["-h"])
        self.assertEqual((rc, out2), (0, out))
        rc, out, _ = run(["--version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^abacus, version \S+")

    def test_usage_errors_exit_2(self):
        for args in (["--bogus"], ["--web.listen-address"], ["positional"],
                     ["--log.level=loud"], ["--log.format=xml"], ["--no-web.listen-address"],
                     ["--web.enable-lifecycle=maybe"], ["--statsd.read-buffer=-5"],
                     ["--statsd.read-buffer=12abc"], ["--help=yes"], ["-x"], ["--", "extra"],
                     ["--web.max-connections=99999999999999999999999"]):
            rc, out, err = run(args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertIn("error", err)

    def test_check_config(self):
        with tempfile.TemporaryDirectory() as d:
            good = os.path.join(d, "good.yml")
            bad = os.path.join(d, "abacus.yml")
            with open(good, "w") as f:
                f.write(CONFIG_A)
            with open(bad, "w") as f:
                f.write(BAD_CONFIG)
            # binds nothing: a port in use does not matter
            busy = socket.socket()
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            try:
                rc, _, err = run(["--check-config", "--config.file=" + good,
                                  "--web.listen-address=127.0.0.1:%d" % port])
                self.assertEqual(rc, 0, err)
            finally:
                busy.close()
            rc, _, err = run(["--check-config", "--config.file", bad])
            self.assertEqual(rc, 1)
            self.assertRegex(err, BAD_POS)
            # the default file in the working directory
            rc, _, err = run(["--check-config"], cwd=d)
            self.assertEqual(rc, 1)
            self.assertRegex(err, r"^abacus\.yml:6:\d+: ")
            # a missing named file is an error
            rc, _, err = run(["--check-config", "--config.file=" + os.path.join(d, "none.yml")])
            self.assertEqual(rc, 1)
            self.assertIn("none.yml", err)
            # no file at all: built-in defaults are valid
            with tempfile.TemporaryDirectory() as empty:
                rc, _, err = run(["--check-config"], cwd=empty)
                self.assertEqual(rc, 0, err)
            # invalid flag values are configuration errors
            for flag in ("--web.listen-address=nowhere", "--web.listen-address=::1:80",
                         "--web.listen-address=:99999", "--web.telemetry-path=metrics",
                         "--web.telemetry-path=/-/healthy", "--web.telemetry-path=/",
                         "--statsd.listen-udp=bad", "--web.max-connections=0",
                         "--web.max-connections=2000000", "--statsd.readers=1000",
                         "--statsd.read-buffer=9999999999", "--statsd.cache-size=99999999",
                         "--statsd.listen-unixgram=/" + "x" * 200):
                rc, _, err = run(["--check-config", "--config.file=" + good, flag])
                self.assertEqual(rc, 1, (flag, err))
                self.assertIn(flag.split("=")[0], err)
            # abacus's own metric names are reserved
            with open(bad, "w") as f:
                f.write("metrics:\n  - name: ok_gauge\n    help: x\n    type: gauge\n"
                        "  - name: process_open_fds\n    help: mine\n    type: gauge\n")
            rc, _, err = run(["--check-config", "--config.file=" + bad])
            self.assertEqual(rc, 1)
            self.assertRegex(err, r"abacus\.yml:5:\d+: .*process_open_fds.*reserved")
            # mapping files: a good one, a broken one, one with declared metrics
            mp = os.path.join(d, "mapping.yml")
            with open(mp, "w") as f:
                f.write('mappings:\n  - match: "a.*"\n    name: "a_$1"\n')
            rc, _, err = run(["--check-config", "--config.file=" + good,
                              "--statsd.mapping-config=" + mp])
            self.assertEqual(rc, 0, err)
            with open(mp, "w") as f:
                f.write(CONFIG_A)
            rc, _, err = run(["--check-config", "--config.file=" + good,
                              "--statsd.mapping-config=" + mp])
            self.assertEqual(rc, 1)
            self.assertRegex(err, r"mapping\.yml:2:\d+: .*config file")

    def test_start_errors(self):
        rc, _, err = run(["--config.file=/nonexistent/abacus.yml",
                          "--web.listen-address=127.0.0.1:0"])
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/abacus.yml", err)
        self.assertIn("level=error", err)
        # a port already in use
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        try:
            with tempfile.TemporaryDirectory() as d:
                rc, _, err = run(["--web.listen-address=127.0.0.1:%d" % busy.getsockname()[1],
                                  "--statsd.listen-udp=", "--statsd.listen-tcp="], cwd=d)
        finally:
            busy.close()
        self.assertEqual(rc, 1)
        self.assertIn("cannot listen", err)

    def test_default_config_file_and_overrides(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "abacus.yml"), "w") as f:
                f.write(CONFIG_A + "server:\n  telemetry_path: /from-file\n")
            # ./abacus.yml is picked up; the flag overrides its telemetry path
            a = Abacus(args=["--web.telemetry-path=/from-flag"], cwd=d)
            with a:
                fams, _, _ = a.scrape(path="/from-flag")
                self.assertEqual(sample_value(fams, "queue_depth"), 0)
                self.assertEqual(a.get("/from-file").status, 404)
                self.assertEqual(a.get("/metrics").status, 404)
                wait_until(lambda: sample_value(a.scrape(path="/from-flag")[0],
                                                "abacus_http_requests_total",
                                                {"handler": "/from-flag", "code": "200"}),
                           "requests counted under the custom telemetry path")
                # a reload keeps reading ./abacus.yml: deleting it is an error, not a switch
                # to the built-in defaults
                os.remove(os.path.join(d, "abacus.yml"))
                a.signal(signal.SIGHUP)
                wait_until(lambda: a.value("abacus_config_last_reload_successful",
                                           path="/from-flag") == 0, "failed reload")
                self.assertEqual(a.value("queue_depth", path="/from-flag"), 0)
        with tempfile.TemporaryDirectory() as d:
            a = Abacus(cwd=d)
            with a:
                self.assertIn("built-in defaults", a.log_text())
                fams, _, _ = a.scrape()
                self.assertEqual(sample_value(fams, "abacus_config_hash"), 0)

    def test_json_logs(self):
        a = Abacus(args=["--log.format=json"])
        with a:
            a.get("/-/healthy")
        lines = harness.json_lines(a.log_text())
        self.assertTrue(lines)
        for obj in lines:
            self.assertIn(obj["level"], ("debug", "info", "warn", "error"))
            self.assertTrue(obj["msg"])
            self.assertRegex(obj["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_log_level(self):
        fmt = r'^ts=\S+ level=(debug|info|warn|error) msg='
        # warn: a reload that changes server: logs a warning, a rejected one errors; the
        # info lines of start-up, reload and stop are not written.
        a = Abacus(config=CONFIG_B, args=["--log.level=warn"])
        with a:
            a.write_config("server:\n  max_connections: 77\n" + CONFIG_B)
            a.signal(signal.SIGHUP)
            a.wait_log(r"level=warn msg=\"server settings changed")
            a.write_config(BAD_CONFIG)
            a.signal(signal.SIGHUP)
            a.wait_log(r"level=error .*nonsense")
        for line in a.lines:
            self.assertRegex(line, fmt)
            self.assertRegex(line, r"^ts=\S+ level=(warn|error) ", line)
        # info: start-up and stop are logged; a refused StatsD line (debug) is not, even
        # once the line was counted and the process has exited (stderr read to its end).
        # debug: the same line is logged.
        for level in ("info", "debug"):
            a = Abacus(args=["--log.level=" + level], statsd=True)
            with a:
                a.send_udp("not a statsd line")
                wait_until(lambda: a.value("abacus_statsd_sample_errors_total",
                                           {"reason": "malformed_line"}) == 1,
                           "the refused line counted")
            text = a.log_text()
            for line in a.lines:
                self.assertRegex(line, fmt)
            for msg in ("starting abacus", "listening", "ready", "shutting down", "stopped"):
                self.assertRegex(text, r"(?m)^ts=\S+ level=info msg=\"?%s" % msg)
            refused = re.findall(r"(?m)^ts=\S+ level=debug msg=\"statsd line refused\".*$", text)
            self.assertEqual(len(refused), 1 if level == "debug" else 0, text)
            self.assertEqual("level=debug" in text, level == "debug", text)


class ServerLimits(unittest.TestCase):
    def test_connection_timeout_and_body_limit(self):
        cfg = "server:\n  connection_timeout: 1s\n  max_request_bytes: 1024\n"
        with Abacus(config=cfg) as a:
            s = socket.create_connection((a.host, a.port), timeout=30)
            try:
                # an idle connection is closed by the server (recv returns EOF)
                self.assertEqual(s.recv(1), b"")
            finally:
                s.close()
            self.assertEqual(a.request("POST", "/-/reload", body=b"z" * 2048).status, 413)
            self.assertEqual(a.request("POST", "/-/reload", body=b"z" * 10).status, 403)

    def test_ipv6_loopback(self):
        try:
            probe = socket.socket(socket.AF_INET6)
            probe.bind(("::1", 0))
            probe.close()
        except OSError:
            self.skipTest("no IPv6 loopback on this machine")
        a = Abacus(args=["--web.listen-address=[::1]:0"])
        with a:
            self.assertEqual(a.host, "::1")
            self.assertEqual(a.get("/-/healthy").status, 200)


class Reload(unittest.TestCase):
    def test_sighup_reload(self):
        with Abacus(config=CONFIG_A) as a:
            fams, _, _ = a.scrape()
            hash_a = sample_value(fams, "abacus_config_hash")
            ts_a = sample_value(fams, "abacus_config_last_reload_success_timestamp_seconds")
            self.assertIsNone(sample_value(fams, "workers_busy"))
            a.write_config(CONFIG_B)
            a.signal(signal.SIGHUP)
            fams = wait_until(lambda: (lambda f: f if sample_value(f, "workers_busy") == 0
                                       else None)(a.scrape()[0]), "reloaded config B")
            self.assertIsNone(sample_value(fams, "jobs_processed_total"))
            self.assertNotIn("job_duration_seconds", fams)
            self.assertNotEqual(sample_value(fams, "abacus_config_hash"), hash_a)
            self.assertGreaterEqual(
                sample_value(fams, "abacus_config_last_reload_success_timestamp_seconds"), ts_a)
            self.assertEqual(sample_value(fams, "abacus_config_last_reload_successful"), 1)
            # abacus_series forgets removed families
            self.assertIsNone(sample_value(fams, "abacus_series",
                                           {"family": "job_duration_seconds"}))

            # a bad file: rejected, errors logged with positions, old config keeps running
            mark = len(a.lines)
            a.write_config(BAD_CONFIG)
            a.signal(signal.SIGHUP)
            wait_until(lambda: a.value("abacus_config_last_reload_successful") == 0,
                       "failed reload reported")
            line = a.wait_log(r"nonsense", start=mark)
            self.assertIn("level=error", line)
            self.assertRegex(line, r"line=6 ")
            # the gauge and the counter move in one event, not atomically for a scrape: await
            wait_until(lambda: a.value("abacus_config_reloads_total",
                                       {"outcome": "failure"}) == 1, "the failed reload counted")
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "abacus_config_reloads_total",
                                          {"outcome": "success"}), 1)
            self.assertEqual(sample_value(fams, "workers_busy"), 0)
            self.assertIsNone(sample_value(fams, "ok_metric"))
            self.assertEqual(a.get("/-/ready").status, 200)

    def test_http_reload(self):
        with Abacus(config=CONFIG_A, lifecycle=True) as a:
            def reloads():
                fams, _, _ = a.scrape()
                return (sample_value(fams, "abacus_config_reloads_total", {"outcome": "success"}),
                        sample_value(fams, "abacus_config_reloads_total", {"outcome": "failure"}))

            # both outcomes exported from start; the load at start is not a reload
            self.assertEqual(reloads(), (0, 0))
            a.write_config(CONFIG_B)
            r = a.request("POST", "/-/reload")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(reloads(), (1, 0))
            # synchronous: the new config is in force when the response arrives
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "workers_busy"), 0)
            self.assertIsNone(sample_value(fams, "jobs_processed_total"))
            a.write_config(BAD_CONFIG)
            r = a.request("PUT", "/-/reload")
            self.assertEqual(r.status, 400)
            self.assertTrue(r.header("Content-Type").startswith("text/plain"))
            self.assertRegex(r.text, BAD_POS)
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "abacus_config_last_reload_successful"), 0)
            self.assertEqual(sample_value(fams, "workers_busy"), 0)
            self.assertEqual(reloads(), (1, 1))
            # back to good
            a.write_config(CONFIG_A)
            self.assertEqual(a.request("POST", "/-/reload").status, 200)
            self.assertEqual(reloads(), (2, 1))
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "abacus_config_last_reload_successful"), 1)
            self.assertEqual(sample_value(fams, "queue_depth"), 0)
            # a deleted file is an error too, and keeps the old config
            os.remove(a.config_path)
            r = a.request("POST", "/-/reload")
            self.assertEqual(r.status, 400)
            self.assertIn("abacus.yml", r.text)
            self.assertEqual(a.value("queue_depth"), 0)
            self.assertEqual(reloads(), (2, 2))

    def test_concurrent_scrapes_during_reloads(self):
        """Many scrapers validate every scrape while the registry changes under them."""
        declared = "".join("  - name: churn_%d\n    help: Churn %d.\n    type: gauge\n" % (i, i)
                           for i in range(40))
        cfg_x = "metrics:\n" + declared
        cfg_y = CONFIG_B
        with Abacus(config=cfg_x, lifecycle=True) as a:
            stop = threading.Event()
            errors = []
            done = [0] * 12  # scrapes completed per scraper
            lock = threading.Lock()

            def scraper(idx):
                try:
                    while not stop.is_set():
                        fams, _, _ = a.scrape(openmetrics=(idx % 2 == 1), gzip_ok=(idx % 3 == 0))
                        ok = sample_value(fams, "abacus_config_last_reload_successful")
                        if ok != 1:
                            raise AssertionError("reload reported failure: %r" % ok)
                        done[idx] += 1
                except Exception as e:  # reported by the main thread
                    with lock:
                        errors.append("scraper %d: %r" % (idx, e))

            threads = [threading.Thread(target=scraper, args=(i,)) for i in range(12)]
            for t in threads:
                t.start()
            reloads = 0
            try:
                # Reload (HTTP, and SIGHUP now and then) until every scraper has completed
                # five scrapes while reloads were going on; bounded in count.
                while (min(done) < 5 or reloads < 30) and reloads < 2000 and not errors:
                    a.write_config(cfg_y if reloads % 2 == 0 else cfg_x)
                    r = a.request("POST", "/-/reload")
                    self.assertEqual(r.status, 200, r.body)
                    if reloads % 5 == 0:
                        a.signal(signal.SIGHUP)
                    reloads += 1
                # end on cfg_x
                if reloads % 2 == 1:
                    a.write_config(cfg_x)
                    self.assertEqual(a.request("POST", "/-/reload").status, 200)
            finally:
                stop.set()
                for t in threads:
                    t.join(timeout=120)
            self.assertEqual(errors, [])
            self.assertGreaterEqual(min(done), 5)
            sys.stderr.write("(%d reloads, %d scrapes) " % (reloads, sum(done)))
            # the last HTTP reload installed cfg_x; a late SIGHUP reads the same file
            wait_until(lambda: a.value("churn_39") == 0 and a.value("workers_busy") is None,
                       "final configuration in force")
            fams, _, _ = a.scrape()
            churn = [n for n in fams if n.startswith("churn_")]
            self.assertEqual(len(churn), 40)


class Shutdown(unittest.TestCase):
    def test_sigterm_exits_zero_and_closes_port(self):
        a = Abacus()
        try:
            a.start()
            port = a.port
            self.assertEqual(a.stop(expect_rc=0), 0)
            self.assertIn("shutting down", a.log_text())
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
        finally:
            a.cleanup()

    def test_sigint_exits_zero(self):
        a = Abacus()
        try:
            a.start()
            a.signal(signal.SIGINT)
            self.assertEqual(a.stop(expect_rc=0), 0)
        finally:
            a.cleanup()

    def test_inflight_scrape_finishes(self):
        # ~8 MB of output against a 4 KiB receive window: more than the kernel buffers hold
        # (tcp_wmem max is 4 MiB), so the response is still being produced at SIGTERM.
        filler = "x" * 1000
        declared = "".join("  - name: big_%d\n    help: Help %d %s\n    type: gauge\n"
                           % (i, i, filler) for i in range(8000))
        a = Abacus(config="metrics:\n" + declared)
        try:
            a.start()
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
            s.settimeout(30)
            s.connect((a.host, a.port))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            first = s.recv(1024)
            self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
            a.signal(signal.SIGTERM)
            a.wait_log("shutting down")
            # 1, or 2 when the harness's last /-/ready was answered but its completion callback
            # had not run yet (as in test_lifecycle); that request ends on its own
            a.wait_log(r"waiting for in-flight requests\"? requests\"?[=:]\"?[12]\b")
            chunks = [first]
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
            s.close()
            raw = b"".join(chunks)
            head, _, body = raw.partition(b"\r\n\r\n")
            self.assertIn(b"Transfer-Encoding: chunked", head)
            text = _dechunk(body).decode()
            fams = harness.parse_text(text)
            self.assertEqual(sample_value(fams, "big_7999"), 0)
            self.assertNotIn("drain timed out", a.log_text())
            self.assertEqual(a.stop(expect_rc=0), 0)
        finally:
            a.cleanup()


def _dechunk(body):
    out, i = [], 0
    while True:
        j = body.index(b"\r\n", i)
        size = int(body[i:j].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[j + 2:j + 2 + size])
        i = j + 2 + size + 2


if __name__ == "__main__":
    unittest.main(verbosity=2)
