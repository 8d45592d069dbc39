"""test_prometheus.py - a real Prometheus (/usr/bin/prometheus) scrapes abacus every second;
the test waits until the target is up, then compares values Prometheus stored with what
abacus serves, including a metric declared by a configuration reload."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, sample_value, wait_until  # noqa: E402

CONFIG = """\
metrics:
  - name: e2e_queue_depth
    help: Items waiting.
    type: gauge
  - name: e2e_jobs_total
    help: Jobs, by queue.
    type: counter
    labels: [queue]
"""

RELOADED = CONFIG + """\
  - name: e2e_added_after_reload
    help: Declared by a reload.
    type: gauge
"""


class Prometheus:
    """A Prometheus server in its own process group with a throwaway TSDB."""

    def __init__(self, target):
        self.tmp = tempfile.mkdtemp(prefix="abacus-prom-")
        self.target = target
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.tmp, "prometheus.log")

    def start(self):
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: abacus\n    static_configs:\n"
                    "      - targets: ['%s']\n" % self.target)
        binary = harness.tool("prometheus")
        for attempt in range(3):  # the free port may be taken again before Prometheus binds
            self.port = harness.free_port()
            log = open(self.log_path, "w")
            self.proc = subprocess.Popen(
                [binary, "--config.file=" + cfg,
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--storage.tsdb.path=" + os.path.join(self.tmp, "data")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            log.close()
            try:
                wait_until(lambda: self.proc.poll() is not None or self._ready(),
                           "Prometheus /-/ready", timeout=60)
            except AssertionError:
                self.stop()
                raise
            if self.proc.poll() is None:
                return self
            if "address already in use" not in self.log() or attempt == 2:
                raise AssertionError("Prometheus exited (%s):\n%s" % (self.proc.returncode,
                                                                     self.log()))
        return self

    def _ready(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port,
                                        timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr):
        """Instant vector result: list of (labels, float value)."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return [(x["metric"], float(x["value"][1])) for x in data["result"]]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


class RealPrometheus(unittest.TestCase):
    def test_scraped_by_prometheus(self):
        a = Abacus(config=CONFIG, lifecycle=True)
        prom = None
        try:
            a.start()
            prom = Prometheus("127.0.0.1:%d" % a.port).start()

            def one(expr):
                r = prom.query(expr)
                return r[0] if len(r) == 1 else None

            try:
                wait_until(lambda: (one('up{job="abacus"}') or (None, 0))[1] == 1,
                           'up{job="abacus"} == 1', timeout=90, interval=0.25)
                targets = prom.api("targets")["activeTargets"]
                self.assertEqual(len(targets), 1)
                self.assertEqual(targets[0]["health"], "up", targets[0])
                self.assertEqual(targets[0]["lastError"], "")

                fams, _, _ = a.scrape()
                labels, v = wait_until(lambda: one('abacus_build_info{job="abacus"}'),
                                       "abacus_build_info in Prometheus")
                build = fams["abacus_build_info"].samples[0]
                self.assertEqual(v, 1)
                for k in ("version", "revision", "compiler"):
                    self.assertEqual(labels[k], build.labels[k])
                # a value that is specific to this process and file
                _, h = one('abacus_config_hash{job="abacus"}')
                self.assertEqual(h, sample_value(fams, "abacus_config_hash"))
                _, start = one('process_start_time_seconds{job="abacus"}')
                self.assertEqual(start, sample_value(fams, "process_start_time_seconds"))
                _, depth = one('e2e_queue_depth{job="abacus"}')
                self.assertEqual(depth, 0)
                # histograms arrive whole: _count equals the +Inf bucket
                wait_until(lambda: (one('abacus_scrape_duration_seconds_count{job="abacus"}')
                                    or (None, 0))[1] > 0, "scrape duration histogram")
                _, n = one('sum(abacus_http_requests_total{job="abacus",handler="/metrics",'
                           'code="200"})')
                self.assertGreater(n, 0)

                # a reload declares a new metric; Prometheus sees it on a later scrape
                a.write_config(RELOADED)
                self.assertEqual(a.request("POST", "/-/reload").status, 200)
                wait_until(lambda: one('e2e_added_after_reload{job="abacus"}'),
                           "metric declared by the reload in Prometheus", timeout=60,
                           interval=0.25)
                self.assertEqual(
                    one('abacus_config_last_reload_successful{job="abacus"}')[1], 1)
                targets = prom.api("targets")["activeTargets"]
                self.assertEqual(targets[0]["lastError"], "")
            except AssertionError:
                sys.stderr.write("--- prometheus log ---\n%s\n" % prom.log())
                raise
            prom.stop()
            a.stop()
        finally:
            if prom is not None:
                prom.cleanup()
            a.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
