"""test_review_push_findings.py - reproductions of defects found reviewing the push API
(issue 11). Every test states the expected behaviour and its source (issue text, Pushgateway
1.5.1 as observed in /work/pgw-facts.md or here, README); at the review's commit (33a7e5b)
each of them fails. Runs the real binary (env ABACUS_BIN); some also run the real
Pushgateway (prometheus-pushgateway) as the reference."""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import binary as a_binary, Abacus, Pushgateway, sample_value, wait_until  # noqa: E402

HIST = ('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n')
SUMMARY = '# TYPE s summary\ns{quantile="0.5"} 1\ns_sum 1\ns_count 1\n'


def job_values(fams, name):
    return sorted(dict(s.labels).get("job") for s in fams[name].samples) if name in fams else []


class SuffixCollisions(unittest.TestCase):
    """A histogram h in one group and a family named h_bucket / h_count / h_sum in another
    (or a summary s and s_sum / s_count) print two TYPE blocks for one name: /metrics is no
    longer parseable (promtool: 'second TYPE line for metric name "h"'). The Pushgateway
    refuses the second push: 400 'collected metric named "h_bucket" collides with previously
    collected histogram named "h"'. README: "No pushes that break scrapes"."""

    def check(self, first, second, pgw_too=True):
        with Abacus() as a:
            self.assertEqual(a.request("PUT", "/metrics/job/a", body=first).status, 200)
            r = a.request("PUT", "/metrics/job/b", body=second)
            if r.status == 200:
                a.scrape()  # must stay valid if abacus takes the push (raises otherwise)
                a.scrape(openmetrics=True)
            else:
                self.assertEqual(r.status, 400, r.text)
        if pgw_too:
            with Pushgateway() as g:
                self.assertEqual(g.request("PUT", "/metrics/job/a", body=first).status, 200)
                self.assertEqual(g.request("PUT", "/metrics/job/b", body=second).status, 400)

    def test_histogram_and_bucket_gauge(self):
        self.check(HIST, "# TYPE h_bucket gauge\nh_bucket 3\n")

    def test_histogram_and_count_gauge(self):
        self.check(HIST, "# TYPE h_count gauge\nh_count 3\n")

    def test_summary_and_untyped_sum(self):
        self.check(SUMMARY, "s_sum 2\n")

    def test_self_metric_histogram_suffix(self):
        # abacus's own histogram abacus_scrape_duration_seconds and a pushed
        # abacus_scrape_duration_seconds_bucket: every scrape of abacus breaks.
        with Abacus() as a:
            r = a.request("PUT", "/metrics/job/a", body="abacus_scrape_duration_seconds_bucket 3\n")
            if r.status == 200:
                a.scrape()

    def test_declared_histogram_and_pushed_bucket_gauge(self):
        cfg = ("metrics:\n  - name: dh\n    type: histogram\n    help: d\n"
               "    histogram_options: {buckets: [1]}\n")
        with Abacus(config=cfg) as a:
            r = a.request("PUT", "/metrics/job/a", body="# TYPE dh_bucket gauge\ndh_bucket 1\n")
            if r.status == 200:
                a.scrape()


class DeclaredConstLabels(unittest.TestCase):
    """A push that fits a declared metric with const_labels (README: "labels, without the
    grouping key's and instance, equal to the metric's labels") is rendered with the declared
    constant labels prepended to the pushed series' own copy of them: dc{env="prod",
    env="prod",instance="",job="d"} - promtool: 'duplicate label names'. The push either
    has to be refused (400) or rendered once with valid labels."""

    CFG = ("metrics:\n  - name: dc\n    type: counter\n    help: C\n"
           "    const_labels: {env: prod}\n")

    def test_push_with_the_const_label(self):
        with Abacus(config=self.CFG) as a:
            r = a.request("PUT", "/metrics/job/d", body='# TYPE dc counter\ndc{env="prod"} 1\n')
            self.assertIn(r.status, (200, 400), r.text)
            a.scrape()  # raises: duplicate label names

    def test_push_with_another_value_of_the_const_label(self):
        # env="dev" is not the declared metric's env="prod": it cannot fit it.
        with Abacus(config=self.CFG) as a:
            r = a.request("PUT", "/metrics/job/d", body='# TYPE dc counter\ndc{env="dev"} 1\n')
            self.assertEqual(r.status, 400, "a push whose const label differs was accepted")

    def test_declared_push_time_seconds_with_const_labels(self):
        """The push-time gauges' names are only for label-less gauges: such a declaration is
        refused at start (exit 1, the reason logged), never a /metrics with job twice."""
        cfg = ("metrics:\n  - name: push_time_seconds\n    type: gauge\n    help: p\n"
               "    const_labels: {job: zz}\n")
        a = Abacus(config=cfg)
        try:
            p = subprocess.run([a_binary()] + a.args, capture_output=True, timeout=60,
                               cwd=a.cwd)
            self.assertEqual(p.returncode, 1, p.stderr.decode(errors="replace"))
            self.assertIn("conflicts with pushed metrics", p.stderr.decode(errors="replace"))
        finally:
            a.cleanup()


class StatsdAfterPush(unittest.TestCase):
    """A StatsD line whose tags are the grouping labels of a pushed series of the same name
    creates a registry family that renders the very same series a second time:
    sm{instance="i",job="j"} 5 and sm{instance="i",job="j"} 1 (the reverse order, push
    after StatsD, is refused as a conflict)."""

    def test_no_duplicate_series(self):
        with Abacus(statsd=True) as a:
            self.assertEqual(a.request("PUT", "/metrics/job/j/instance/i",
                                       body="# TYPE sm gauge\nsm 1\n").status, 200)
            a.send_udp("sm:5|g|#job:j,instance:i\n")
            # the line handled (folded into the count after it was applied); raw text, since
            # scrape() would raise on the duplicate series before the count is read
            wait_until(lambda: re.search(r'^abacus_statsd_lines_total\{listener="udp"\} [1-9]',
                                         a.get("/metrics").body.decode(), re.M),
                       "the StatsD line handled")
            # check_text_structure inside scrape() raises on the duplicate series
            a.scrape()


class Base64Nul(unittest.TestCase):
    """A base64 grouping value that decodes to bytes with a NUL is cut at the NUL: a push to
    job@base64/eAA (job "x\\0") replaces the group job="x", and a/YQBi ("a\\0b") the group
    a="a". The Pushgateway keeps "x\\u0000" a group of its own. Either refuse it (400) or
    keep it apart; never write into another group."""

    def test_nul_does_not_alias_another_group(self):
        with Abacus() as a:
            self.assertEqual(a.request("PUT", "/metrics/job/x",
                                       body="# TYPE m gauge\nm 1\n").status, 200)
            r = a.request("PUT", "/metrics/job@base64/eAA", body="# TYPE m gauge\nm 4\n")
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "m", {"job": "x", "instance": ""}), 1.0,
                             "the push to job \"x\\0\" (status %d) overwrote job=\"x\"" % r.status)

    def test_delete_with_nul_does_not_delete_another_group(self):
        with Abacus() as a:
            self.assertEqual(a.request("PUT", "/metrics/job/x/a/a",
                                       body="# TYPE m gauge\nm 1\n").status, 200)
            a.request("DELETE", "/metrics/job/x/a@base64/YQBi")
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "m", {"job": "x", "a": "a", "instance": ""}), 1.0)


class RejectedReloadKeepsValues(unittest.TestCase):
    """A reload refused because a declared metric conflicts with a pushed family ('keeping
    the old one') resets the old configuration's declared metrics: a removed-then-restored
    gauge and a changed-then-restored counter both read 0 afterwards. README: "the old
    configuration keeps running"; unchanged metrics keep their series."""

    def test_values_survive(self):
        cfg = ("metrics:\n  - name: keep_me\n    type: gauge\n    help: k\n"
               "  - name: changed_me\n    type: counter\n    help: c\n")
        with Abacus(config=cfg, statsd=True, lifecycle=True) as a:
            a.send_udp("keep_me:5|g\nchanged_me:7|c\n")
            wait_until(lambda: a.value("keep_me") == 5, "the StatsD lines applied")
            self.assertEqual(a.request("PUT", "/metrics/job/j",
                                       body="# TYPE m gauge\nm 1\n").status, 200)
            a.write_config("metrics:\n  - name: m\n    type: counter\n    help: declared\n"
                           "  - name: changed_me\n    type: counter\n    help: c2\n")
            self.assertEqual(a.request("POST", "/-/reload").status, 400)
            self.assertEqual(a.value("keep_me"), 5.0)
            self.assertEqual(a.value("changed_me_total"), 7.0)  # the parser's name for it


class GroupBounds(unittest.TestCase):
    """README, Bounds at the edges: pushed groups are bounded by the series limits, and
    push.group_ttl removes a group after its last successful push. A refused push (or an empty
    one) still makes a group with two series (push_time_seconds, push_failure_time_seconds)
    that the limit does not count; a group made only by refused pushes never expires."""

    def test_failed_pushes_obey_the_series_limit(self):
        with Abacus(config="statsd:\n  max_series: 10\n") as a:
            for i in range(50):
                a.request("PUT", "/metrics/job/f%d" % i, body="m 1 123\n")
            self.assertLessEqual(a.value("abacus_push_groups"), 5,
                                 "50 groups (100 series) under max_series: 10")

    def test_empty_pushes_obey_the_series_limit(self):
        with Abacus(config="statsd:\n  max_series: 10\n") as a:
            for i in range(50):
                a.request("PUT", "/metrics/job/e%d" % i, body="")
            self.assertLessEqual(a.value("abacus_push_groups"), 5)

    def test_failure_only_group_expires(self):
        with Abacus(args=["--push.group-ttl=300ms"]) as a:
            self.assertEqual(a.request("PUT", "/metrics/job/f", body="m 1 123\n").status, 400)
            self.assertEqual(a.request("PUT", "/metrics/job/ok", body="").status, 200)
            # both expire: the reaper removes expired groups once a second
            wait_until(lambda: a.value("abacus_push_groups") == 0, "both groups expired")


class OpenMetricsNames(unittest.TestCase):
    """Counters x (group a) and x_total (group b): the text format shows both; OpenMetrics
    drops group b's x_total series without a word (both are family "x"). A counter z_total
    and a gauge z_created: the OpenMetrics output does not parse ('Clashing name')."""

    def test_x_and_x_total_nothing_lost(self):
        with Abacus() as a:
            self.assertEqual(a.request("PUT", "/metrics/job/a",
                                       body="# TYPE x counter\nx 1\n").status, 200)
            r = a.request("PUT", "/metrics/job/b", body="# TYPE x_total counter\nx_total 2\n")
            if r.status == 200:
                _, text, _ = a.scrape(openmetrics=True)
                self.assertIn('job="b"} 2', "\n".join(ln for ln in text.splitlines()
                                                      if ln.startswith("x")))

    def test_total_and_created(self):
        with Abacus() as a:
            self.assertEqual(a.request("PUT", "/metrics/job/a",
                                       body="# TYPE z_total counter\nz_total 1\n").status, 200)
            r = a.request("PUT", "/metrics/job/b", body="# TYPE z_created gauge\nz_created 2\n")
            if r.status == 200:
                a.scrape(openmetrics=True)


class DotSegments(unittest.TestCase):
    """The Pushgateway's router answers 301 (to the cleaned path) for '.' and '..' segments;
    test_push_diff.py accepts 3xx or 4xx from abacus there. abacus answers 200 and makes
    groups job=".." or a="..", which no Pushgateway client could have made."""

    def test_dot_segments_are_not_groups(self):
        with Abacus() as a, Pushgateway() as g:
            for p in ["/metrics/job/..", "/metrics/job/.", "/metrics/job/x/a/..",
                      "/metrics/job/x/a/."]:
                rg = g.request("PUT", p, body="# TYPE m gauge\nm 1\n")
                ra = a.request("PUT", p, body="# TYPE m gauge\nm 1\n")
                self.assertEqual(rg.status // 100, 3)
                self.assertIn(ra.status // 100, (3, 4), "%s: abacus %d" % (p, ra.status))


if __name__ == "__main__":
    unittest.main(verbosity=2)
