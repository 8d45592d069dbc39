"""test_push.py - what abacus's push API does beyond the Pushgateway's protocol, and its
bounds (issue 11): group TTLs, the aggregating push, pushes that must fit the declared metric
of their name, the series limit, body size and buffer bounds, slow pushers, the JSON API and
the admin wipe. The protocol itself is compared with the real Pushgateway in test_push_diff.py
and with prometheus_client in test_push_clients.py. Runs the real binary (env ABACUS_BIN)."""

import gzip
import json
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Abacus, sample_value, wait_until  # noqa: E402

GAUGE = "# TYPE g gauge\ng 1\n"


def refused(a, reason):
    return a.value("abacus_push_refused_total", {"reason": reason})


def groups(a):
    fams, _, _ = a.scrape()
    return sorted(dict(s.labels).get("job") for s in fams["push_time_seconds"].samples) \
        if "push_time_seconds" in fams else []


class GroupTTL(unittest.TestCase):
    def test_default_ttl_and_per_push_ttl(self):
        with Abacus(args=["--push.group-ttl=1s"]) as a:
            # Both seen together while "short" is within its 1 s; a loaded machine can spend
            # that before the scrape, so each try pushes it again (which renews its ttl).
            def both():
                self.assertEqual(a.request("PUT", "/metrics/job/short", body=GAUGE).status, 200)
                self.assertEqual(a.request("PUT", "/metrics/job/long?ttl=1h",
                                           body=GAUGE).status, 200)
                return groups(a) == ["long", "short"]
            wait_until(both, "the two groups, both live")
            wait_until(lambda: groups(a) == ["long"], "the 1s group expires, the 1h one stays")
            self.assertEqual(a.value("abacus_push_groups"), 1)

    def test_a_push_renews_the_ttl(self):
        with Abacus() as a:
            self.assertEqual(a.request("PUT", "/metrics/job/j?ttl=300ms", body=GAUGE).status,
                             200)
            # Pushed again without a ttl: the default (never) applies from now on.
            self.assertEqual(a.request("POST", "/metrics/job/j", body=GAUGE).status, 200)
            self.assertEqual(a.request("PUT", "/metrics/job/gone?ttl=300ms", body=GAUGE).status,
                             200)
            wait_until(lambda: groups(a) == ["j"], "only the group pushed without ttl stays")

    def test_bad_ttl_is_400(self):
        with Abacus() as a:
            r = a.request("PUT", "/metrics/job/j?ttl=soon", body=GAUGE)
            self.assertEqual(r.status, 400)
            self.assertIn("invalid ttl", r.text)
            self.assertEqual(groups(a), [])
            self.assertEqual(refused(a, "invalid_ttl"), 1)


class Aggregate(unittest.TestCase):
    def test_counters_and_histograms_add_up(self):
        body = ("# TYPE jobs_total counter\njobs_total{kind=\"a\"} 2\n"
                "# TYPE took histogram\ntook_bucket{le=\"1\"} 1\ntook_bucket{le=\"+Inf\"} 2\n"
                "took_sum 3.5\ntook_count 2\n"
                "# TYPE last gauge\nlast 7\n")
        with Abacus() as a:
            for i in range(5):
                r = a.request("POST", "/metrics/aggregate/job/batch", body=body)
                self.assertEqual(r.status, 200, r.text)
            r = a.request("POST", "/metrics/aggregate/job/batch",
                          body="# TYPE jobs_total counter\njobs_total{kind=\"b\"} 1\n")
            self.assertEqual(r.status, 200)
            fams, _, _ = a.scrape()
            base = {"instance": "", "job": "batch"}
            self.assertEqual(sample_value(fams, "jobs_total", dict(base, kind="a")), 10)
            self.assertEqual(sample_value(fams, "jobs_total", dict(base, kind="b")), 1)
            self.assertEqual(sample_value(fams, "took_bucket", dict(base, le="1")), 5)
            self.assertEqual(sample_value(fams, "took_bucket", dict(base, le="+Inf")), 10)
            self.assertEqual(sample_value(fams, "took_sum", base), 17.5)
            self.assertEqual(sample_value(fams, "took_count", base), 10)
            self.assertEqual(sample_value(fams, "last", base), 7)  # gauges replace

    def test_other_layout_and_methods_refused(self):
        with Abacus() as a:
            h1 = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n"
            h2 = "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n"
            self.assertEqual(a.request("POST", "/metrics/aggregate/job/x", body=h1).status, 200)
            r = a.request("POST", "/metrics/aggregate/job/x", body=h2)
            self.assertEqual(r.status, 400)
            self.assertIn("bucket layout", r.text)
            self.assertEqual(a.value("h_count", {"instance": "", "job": "x"}), 1)
            r = a.request("PUT", "/metrics/aggregate/job/x", body=h1)
            self.assertEqual(r.status, 405)
            self.assertEqual(r.header("Allow"), "OPTIONS, POST")


DECLARED = """\
metrics:
  - name: jobs_done_total
    help: Jobs done.
    type: counter
    labels: [queue]
"""


class FitsDeclared(unittest.TestCase):
    def test_conflicts_are_400_and_change_nothing(self):
        with Abacus(config=DECLARED) as a:
            ok = "# HELP jobs_done_total Jobs done.\n# TYPE jobs_done_total counter\n" \
                 "jobs_done_total{queue=\"q\"} 3\n"
            self.assertEqual(a.request("PUT", "/metrics/job/w", body=ok).status, 200)
            cases = [
                "# TYPE jobs_done_total gauge\njobs_done_total{queue=\"q\"} 4\n",
                "# HELP jobs_done_total Other.\n# TYPE jobs_done_total counter\n"
                "jobs_done_total{queue=\"q\"} 4\n",
                "# TYPE jobs_done_total counter\njobs_done_total{queue=\"q\",x=\"1\"} 4\n",
                "# TYPE jobs_done_total counter\njobs_done_total 4\n",
            ]
            for body in cases:
                r = a.request("PUT", "/metrics/job/w", body=body)
                self.assertEqual(r.status, 400, body)
                self.assertIn("jobs_done_total", r.text)
                self.assertEqual(a.value("jobs_done_total",
                                         {"instance": "", "job": "w", "queue": "q"}), 3)
            self.assertEqual(refused(a, "conflict"), len(cases))
            # The pushed series render inside the declared family: one HELP and TYPE.
            _, text, _ = a.scrape()
            self.assertEqual(text.count("# TYPE jobs_done_total "), 1)
            self.assertIn('jobs_done_total{instance="",job="w",queue="q"} 3', text)


class Limits(unittest.TestCase):
    def test_series_limit_refuses_the_whole_push(self):
        with Abacus(config="statsd:\n  max_series: 100\n") as a:
            small = "".join("s{i=\"%d\"} 1\n" % i for i in range(50))
            big = "".join("s{i=\"%d\"} 1\n" % i for i in range(150))
            self.assertEqual(a.request("PUT", "/metrics/job/a", body=small).status, 200)
            r = a.request("PUT", "/metrics/job/b", body=big)
            self.assertEqual(r.status, 400)
            self.assertIn("series limit", r.text)
            fams, _, _ = a.scrape()
            self.assertEqual(len(fams["s"].samples), 50)
            self.assertEqual(refused(a, "series_limit"), 1)
            # Replacing a group with a smaller one gives series back.
            ten = "".join("s{i=\"%d\"} 1\n" % i for i in range(10))
            eighty = "".join("s{i=\"%d\"} 1\n" % i for i in range(80))
            self.assertEqual(a.request("PUT", "/metrics/job/b", body=eighty).status, 400)
            self.assertEqual(a.request("PUT", "/metrics/job/a", body=ten).status, 200)
            self.assertEqual(a.request("PUT", "/metrics/job/b", body=eighty).status, 200)

    def test_body_bounds(self):
        with Abacus(args=["--push.max-body-bytes=4096"]) as a:
            big = "# TYPE g gauge\n" + "".join("g{i=\"%d\"} 1\n" % i for i in range(1000))
            r = a.request("PUT", "/metrics/job/j", body=big)
            self.assertEqual(r.status, 413)
            # gzip: small on the wire, too large once decoded
            r = a.request("PUT", "/metrics/job/j", headers={"Content-Encoding": "gzip"},
                          body=gzip.compress(big.encode()))
            self.assertEqual(r.status, 413)
            self.assertIn("decoded", r.text)
            r = a.request("PUT", "/metrics/job/j", headers={"Content-Encoding": "gzip"},
                          body=gzip.compress(GAUGE.encode()))
            self.assertEqual(r.status, 200)
            self.assertEqual(refused(a, "too_large"), 2)

    def test_slow_pushers_hold_bounded_memory_and_time(self):
        args = ["--push.max-buffered-bytes=65536", "--web.request-timeout=1s"]
        with Abacus(args=args) as a:
            body = "# TYPE g gauge\n" + "".join("g{i=\"%06d\"} 1\n" % i for i in range(4000))
            head = ("PUT /metrics/job/slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                    % len(body)).encode()
            stalled = []

            # One pusher sends most of a 64 KiB body, then stalls; a second push that needs
            # buffer room is refused while the first holds it. The first holds it until its
            # request timeout (1 s), which a loaded machine (CI, an ASan build) can spend before
            # the second push is read: then another pusher stalls and the second tries again.
            def busy():
                s = socket.create_connection((a.host, a.port))
                stalled.append(s)
                s.sendall(head + body[:60000].encode())
                return a.request("PUT", "/metrics/job/other", body=body[:40000]).status == 503
            try:
                wait_until(busy, "a push beyond the buffer budget gets 503")
                self.assertGreaterEqual(refused(a, "busy"), 1)
                # ...scrapes and small pushes are not held up, and the stalled pusher is cut.
                wait_until(lambda: a.value("abacus_http_connections_closed_total",
                                           {"reason": "request_timeout"}) >= 1,
                           "the stalled push is closed by request_timeout")
            finally:
                for s in stalled:
                    s.close()
            wait_until(lambda: a.request("PUT", "/metrics/job/other",
                                         body=body[:40000].rsplit("\n", 1)[0] + "\n").status
                       == 200, "the budget is free again")


class API(unittest.TestCase):
    def test_metrics_and_status_json(self):
        with Abacus() as a:
            body = ("# HELP c A counter.\n# TYPE c counter\nc{x=\"1\"} 3\n"
                    "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                    "h_sum 3.5\nh_count 2\n"
                    "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 10\ns_count 5\n")
            self.assertEqual(a.request("PUT", "/metrics/job/a/instance/i", body=body).status,
                             200)
            self.assertEqual(a.request("PUT", "/metrics/job/a/instance/i",
                                       body="c 1 1000\n").status, 400)
            r = a.get("/api/v1/metrics")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Type"), "application/json")
            doc = json.loads(r.text)
            self.assertEqual(doc["status"], "success")
            [g] = doc["data"]
            self.assertEqual(g["labels"], {"instance": "i", "job": "a"})
            self.assertIs(g["last_push_successful"], False)
            self.assertEqual(g["c"]["type"], "COUNTER")
            self.assertEqual(g["c"]["help"], "A counter.")
            self.assertEqual(g["c"]["metrics"],
                             [{"labels": {"instance": "i", "job": "a", "x": "1"}, "value": "3"}])
            self.assertRegex(g["c"]["time_stamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
            [hm] = g["h"]["metrics"]
            self.assertEqual(hm["buckets"], {"1": "1", "+Inf": "2"})
            self.assertEqual((hm["count"], hm["sum"]), ("2", "3.5"))
            [sm] = g["s"]["metrics"]
            self.assertEqual(sm["quantiles"], {"0.5": "1"})
            self.assertNotIn("help", g["h"])
            self.assertNotEqual(g["push_failure_time_seconds"]["metrics"][0]["value"], "0")

            r = a.get("/api/v1/status")
            self.assertEqual(r.status, 200)
            status = json.loads(r.text)
            self.assertEqual(status["status"], "success")
            self.assertIn("version", status["data"]["build_information"])
            self.assertIn("web.listen-address", status["data"]["flags"])
            self.assertEqual(a.request("POST", "/api/v1/status").status, 405)

    def test_wipe_needs_the_admin_api(self):
        with Abacus() as a:
            self.assertEqual(a.request("PUT", "/metrics/job/a", body=GAUGE).status, 200)
            self.assertEqual(a.request("PUT", "/api/v1/admin/wipe").status, 404)
            self.assertEqual(groups(a), ["a"])
        with Abacus(args=["--web.enable-admin-api"]) as a:
            for job in ("a", "b"):
                self.assertEqual(a.request("PUT", "/metrics/job/" + job, body=GAUGE).status, 200)
            self.assertEqual(a.request("GET", "/api/v1/admin/wipe").status, 405)
            self.assertEqual(a.request("PUT", "/api/v1/admin/wipe").status, 202)
            self.assertEqual(groups(a), [])
            self.assertEqual(json.loads(a.get("/api/v1/metrics").text)["data"], [])

    def test_push_disabled(self):
        with Abacus(args=["--no-push.enabled"]) as a:
            self.assertEqual(a.request("PUT", "/metrics/job/a", body=GAUGE).status, 404)
            self.assertEqual(a.get("/api/v1/metrics").status, 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
