"""test_prometheus.py - a real Prometheus (/usr/bin/prometheus) scrapes abacus every second;
the test waits until the target is up, then compares values Prometheus stored with what
abacus serves, including a metric declared by a configuration reload and pushed groups (one
of them into a declared family)."""

import os
import sys
import unittest

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


class Prometheus(harness.Prometheus):
    def query(self, expr):
        """Instant vector result: list of (labels, float value)."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return [(x["metric"], float(x["value"][1])) for x in data["result"]]


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
                # histograms arrive whole: _count equals the +Inf bucket, in what Prometheus
                # stored (both samples of one scrape: an instant query sees a scrape's
                # appends all or none) and in a scrape of our own
                wait_until(lambda: (one('abacus_scrape_duration_seconds_count{job="abacus"}')
                                    or (None, 0))[1] > 0, "scrape duration histogram")
                for _ in range(3):  # a few scrapes apart: each must hold
                    seen = prom.api("query", query='abacus_scrape_duration_seconds_count'
                                    '{job="abacus"} or abacus_scrape_duration_seconds_bucket'
                                    '{job="abacus",le="+Inf"}')
                    got = {x["metric"]["__name__"]: float(x["value"][1])
                           for x in seen["result"]}
                    self.assertEqual(set(got), {"abacus_scrape_duration_seconds_count",
                                                "abacus_scrape_duration_seconds_bucket"}, seen)
                    self.assertEqual(got["abacus_scrape_duration_seconds_count"],
                                     got["abacus_scrape_duration_seconds_bucket"], seen)
                    before = got["abacus_scrape_duration_seconds_count"]
                    wait_until(lambda: (one('abacus_scrape_duration_seconds_count'
                                            '{job="abacus"}') or (None, 0))[1] > before,
                               "a later scrape in Prometheus", timeout=60, interval=0.25)
                fams, _, _ = a.scrape()
                count = sample_value(fams, "abacus_scrape_duration_seconds_count")
                self.assertGreater(count, 0)
                self.assertEqual(count, sample_value(fams, "abacus_scrape_duration_seconds_bucket",
                                                     {"le": "+Inf"}))
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

                # pushed groups: their own family, and series inside a declared one. Without
                # honor_labels, the pushed job and instance become exported_job/_instance.
                pushed = ("# TYPE e2e_pushed_total counter\ne2e_pushed_total 5\n"
                          "# HELP e2e_jobs_total Jobs, by queue.\n# TYPE e2e_jobs_total counter\n"
                          'e2e_jobs_total{queue="batch"} 7\n')
                self.assertEqual(a.request("PUT", "/metrics/job/nightly/instance/b1",
                                           body=pushed).status, 200)
                got = wait_until(lambda: one('e2e_pushed_total{exported_job="nightly"}'),
                                 "the pushed counter in Prometheus", timeout=60, interval=0.25)
                self.assertEqual(got[1], 5)
                self.assertEqual(got[0]["exported_instance"], "b1")
                got = wait_until(lambda: one('e2e_jobs_total{queue="batch"}'),
                                 "the pushed series of a declared family", timeout=60,
                                 interval=0.25)
                self.assertEqual(got[1], 7)
                self.assertEqual(one('push_time_seconds{exported_job="nightly"}')[1] > 0, True)
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
