"""test_docker_dashboard.py - docker/grafana/abacus.json only asks for what abacus exports.

- The dashboard is well formed: unique panel ids, every query on the ${datasource}
  variable, the job/instance variables used, and it covers what an operator needs (events in,
  dropped by reason, series per family, refused series, scrape duration, memory).
- Every query parses as PromQL (`promtool check rules`, Grafana variables substituted).
- Every metric name in a query or variable appears in a live scrape of the real binary, after
  StatsD traffic (good lines, malformed lines, lines over a series limit) made the event-driven
  series move.
- A real Prometheus, configured from docker/prometheus.yml (the abacus job, pointed at the
  live process), scrapes it, and every panel query returns data.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, sample_value, wait_until  # noqa: E402

SRC = os.environ.get("ABACUS_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
DASHBOARD = os.path.join(SRC, "docker", "grafana", "abacus.json")
PROM_CONFIG = os.path.join(SRC, "docker", "prometheus.yml")

CONFIG = """\
defaults:
  max_series: 100
metrics:
  - name: dash_jobs_total
    help: Jobs, by queue.
    type: counter
    labels: [queue]
    max_series: 1
mappings:
  - match: "dash.jobs.*"
    name: dash_jobs_total
    labels: {queue: "$1"}
"""

# Sent over UDP and TCP: applied events of each type, a series over dash_jobs_total's limit of
# one, a malformed line, a set (refused by the parser) and a line a drop rule would not see.
STATSD_LINES = [
    "dash.jobs.a:1|c",
    "dash.jobs.b:1|c",          # refused: the family holds one series at most
    "dash.level:3|g",
    "dash.latency:12|ms",
    "not a statsd line",        # malformed_line
    "dash.set:1|s",             # unsupported_set
]

# What an operator needs at a glance (the list): one query family each.
REQUIRED = ["abacus_statsd_events_total", "abacus_statsd_events_dropped_total",
            "abacus_series", "abacus_series_refused_total",
            "abacus_scrape_duration_seconds_bucket", "process_resident_memory_bytes"]

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
             "or", "unless", "offset", "atan2", "inf", "nan", "Inf", "NaN"}


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(d):
    for p in d.get("panels", []):
        yield p
        for q in p.get("panels", []):  # collapsed rows hold their panels
            yield q


def queries(d):
    """[(where, expr)] of every panel target, annotation and variable query."""
    out = []
    for p in all_panels(d):
        for t in p.get("targets", []):
            out.append(("panel %r target %s" % (p.get("title"), t.get("refId")), t["expr"]))
    for a in d.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append(("annotation %r" % a.get("name"), a["expr"]))
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            out.append(("variable %s" % v["name"], q))
    return out


def substitute(expr, job=".+", instance=".+", rate_interval="10s"):
    """Grafana's variables replaced so that Prometheus can evaluate the expression; a
    label_values(selector, label) variable query becomes its selector."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", expr)
    if m:
        expr = m.group(1)
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__interval", "5s")
    expr = expr.replace("$__range", "1h")
    expr = re.sub(r"\$\{?job\}?", job, expr)
    return re.sub(r"\$\{?instance\}?", instance, expr)


def metric_names(expr):
    """The metric names a PromQL expression (or label_values query) selects."""
    e = substitute(expr)
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', e)  # strings
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)\s*(\()?", e):
        if m.group(2) or m.group(1) in _KEYWORDS:
            continue  # a function, an aggregation or a keyword
        names.add(m.group(1))
    return names


def prometheus_for(target):
    """harness.Prometheus with docker/prometheus.yml's abacus job aimed at a live target."""
    with open(PROM_CONFIG) as f:
        cfg = yaml.safe_load(f)
    jobs = [j for j in cfg["scrape_configs"] if j["job_name"] == "abacus"]
    assert len(jobs) == 1, "docker/prometheus.yml has no abacus job"
    job = jobs[0]
    job["scrape_interval"] = "1s"
    job["scrape_timeout"] = "1s"
    job["static_configs"] = [{"targets": [target]}]
    cfg["scrape_configs"] = [job]
    cfg.setdefault("global", {})["scrape_interval"] = "1s"
    cfg["global"]["evaluation_interval"] = "1s"
    prom = harness.Prometheus(target, config=yaml.safe_dump(cfg))
    prom.query = lambda expr: prom.api("query", query=expr)["result"]
    return prom


def send_statsd(a, lines):
    a.send_udp("\n".join(lines))
    a.send_tcp("\n".join(lines) + "\n")


class Dashboard(unittest.TestCase):
    def test_structure(self):
        d = load_dashboard()
        self.assertTrue(d.get("title"))
        self.assertTrue(d.get("uid"))
        ids = [p["id"] for p in all_panels(d)]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        for p in all_panels(d):
            if p.get("type") == "row":
                continue
            self.assertTrue(p.get("targets"), "panel %r has no query" % p.get("title"))
            for t in [p] + p["targets"]:
                self.assertEqual(t["datasource"]["uid"], "${datasource}", p.get("title"))
            for t in p["targets"]:
                self.assertIn('job=~"$job"', t["expr"], p.get("title"))
                self.assertIn('instance=~"$instance"', t["expr"], p.get("title"))
        used = set()
        for _, q in queries(d):
            used |= metric_names(q)
        for name in REQUIRED:
            self.assertIn(name, used, "the dashboard should show %s" % name)

    def test_queries_parse(self):
        d = load_dashboard()
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": "dashboard:query_%d" % i, "expr": substitute(q)}
            for i, (_, q) in enumerate(queries(d))]}]}
        tmp = tempfile.mkdtemp(prefix="abacus-dash-")
        try:
            path = os.path.join(tmp, "rules.yml")
            with open(path, "w") as f:
                yaml.safe_dump(rules, f)
            p = subprocess.run([harness.tool("promtool"), "check", "rules", path],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_metric_names_extracted(self):
        self.assertEqual(metric_names(
            'histogram_quantile(0.9, sum by (le) (rate(a_bucket{job=~"$job"}[$__rate_interval])))'
            ' / on (instance) group_left (version) b_info or vector(1) + time() - c offset 5m'),
            {"a_bucket", "b_info", "c"})
        self.assertEqual(metric_names('label_values(x_info{job=~"$job"}, instance)'), {"x_info"})

    def test_names_exist_and_queries_return_data(self):
        d = load_dashboard()
        wanted = {}
        for where, q in queries(d):
            for n in metric_names(q):
                wanted.setdefault(n, where)
        self.assertTrue(wanted)
        a = Abacus(config=CONFIG, statsd=True)
        prom = None
        try:
            a.start()
            send_statsd(a, STATSD_LINES)

            def traffic_counted():
                fams, _, _ = a.scrape()
                v = lambda n, l=None: sample_value(fams, n, l) or 0  # noqa: E731
                return (v("abacus_statsd_events_total", {"type": "counter"}) >= 2
                        and v("abacus_statsd_events_total", {"type": "observer"}) >= 2
                        and v("abacus_statsd_sample_errors_total",
                              {"reason": "malformed_line"}) >= 2
                        and v("abacus_statsd_events_dropped_total",
                              {"reason": "series_limit"}) >= 2
                        and v("abacus_series_refused_total", {"family": "dash_jobs_total"}) >= 1
                        and v("abacus_statsd_lines_total", {"listener": "tcp"}) >= 6)
            wait_until(traffic_counted, "the StatsD traffic in the self-metrics")
            _, text, _ = a.scrape()  # a scrape duration and HTTP requests were recorded
            fams = harness.parse_text(text)
            exported = {s.name for f in fams.values() for s in f.samples}
            missing = {n: w for n, w in wanted.items() if n not in exported}
            self.assertEqual(missing, {}, "dashboard metrics abacus does not export")

            prom = prometheus_for("127.0.0.1:%d" % a.port)
            prom.start()
            job = "abacus"  # docker/prometheus.yml's job name, as $job would select it
            exprs = [(w, substitute(q, job=job)) for w, q in queries(d)]
            # Every query evaluates; panel and variable queries also return data once
            # Prometheus holds a few scrapes (rate() needs two points).
            for w, e in exprs:
                prom.query(e)
            pending = {w: e for w, e in exprs if not w.startswith("annotation")}

            def all_answer():
                send_statsd(a, STATSD_LINES[:1])
                for w in list(pending):
                    if prom.query(pending[w]):
                        del pending[w]
                return not pending
            try:
                wait_until(all_answer, "every dashboard query to return data", timeout=25,
                           interval=0.5)
            except AssertionError:
                raise AssertionError("queries without data: %s\nPrometheus log:\n%s"
                                     % (json.dumps(pending, indent=1), prom.log()))
            a.stop()
        finally:
            if prom is not None:
                prom.cleanup()
            a.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
