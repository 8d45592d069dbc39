"""test_remote_write.py - remote write into a real Prometheus (its remote-write receiver).

- Every metric type: the values Prometheus's API returns equal those of abacus's own scrape,
  series by series (pushed counter, gauge, histogram with _bucket/le, _sum, _count, summary
  with quantile, _sum, _count; a StatsD-fed declared gauge), each with job/instance.
- A series that expires (TTL) and a pushed group that is deleted go stale: an instant query
  stops showing them at once (without the staleness marker Prometheus would show them for its
  5-minute lookback).
- TLS and basic auth: a Prometheus behind its own --web.config.file (certificate made by
  openssl here) receives with the right password; with a wrong one every request is answered
  401 and abacus counts the samples as failed, not retried.
"""

import base64
import os
import socket
import ssl
import sys
import urllib.parse
import urllib.request
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # the system's libcrypt: the bcrypt hash of basic_auth_users

PUSH_BODY = """# TYPE batch_jobs_total counter
batch_jobs_total{queue="a"} 7
batch_jobs_total{queue="b"} 2.5
# TYPE batch_temperature gauge
batch_temperature -3.25
# TYPE batch_duration_seconds histogram
batch_duration_seconds_bucket{le="0.1"} 1
batch_duration_seconds_bucket{le="1"} 3
batch_duration_seconds_bucket{le="+Inf"} 4
batch_duration_seconds_sum 6.5
batch_duration_seconds_count 4
# TYPE batch_size_bytes summary
batch_size_bytes{quantile="0.5"} 100
batch_size_bytes{quantile="0.99"} 900
batch_size_bytes_sum 2000
batch_size_bytes_count 5
"""

GONE_BODY = "# TYPE gone_gauge gauge\ngone_gauge 1\n"

FAMILIES = ("batch_jobs_total", "batch_temperature", "batch_duration_seconds",
            "batch_size_bytes", "declared_level")


class RemoteWriteReceiver(harness.Prometheus):
    """Prometheus with its remote-write receiver on and no scraping."""

    def __init__(self, web_config=None, ca=None, auth=None):
        super().__init__(None, config="global:\n  scrape_interval: 1m\n")
        self.web_config, self.ca, self.auth = web_config, ca, auth

    def command(self, binary):
        cmd = super().command(binary) + ["--web.enable-remote-write-receiver"]
        if self.web_config:
            cmd.append("--web.config.file=" + self.web_config)
        return cmd

    def _https(self, path):
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.port, path))
        if self.auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(
                ("%s:%s" % self.auth).encode()).decode())
        ctx = ssl.create_default_context(cafile=self.ca)
        return urllib.request.urlopen(req, timeout=10, context=ctx)

    def _ready(self):
        if not self.web_config:
            return super()._ready()
        try:
            with self._https("/-/ready") as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path, **params):
        if not self.web_config:
            return super().api(path, **params)
        import json
        with self._https("/api/v1/%s?%s" % (path, urllib.parse.urlencode(params))) as r:
            doc = json.load(r)
        assert doc["status"] == "success", doc
        return doc["data"]

    @property
    def write_url(self):
        scheme = "https" if self.web_config else "http"
        return "%s://127.0.0.1:%d/api/v1/write" % (scheme, self.port)

    def query(self, expr):
        return self.api("query", query=expr)["result"]


def selector(name, labels):
    return "%s{%s}" % (name, ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"'))
                                       for k, v in sorted(labels.items()) if v))


def config(url, extra=""):
    return ("metrics:\n"
            "  - {name: declared_level, type: gauge, help: A level., labels: [site]}\n"
            "  - {name: short_lived, type: gauge, help: Expires., ttl: 1s}\n"
            "remote_write:\n"
            "  - url: %s\n"
            "    name: prom\n"
            "    interval: 300ms\n"
            "    queue_config: {batch_send_deadline: 50ms, min_backoff: 20ms, max_backoff: 200ms}\n"
            "    external_labels: {cluster: test}\n%s" % (url, extra))


def abacus_samples(a):
    """{(name, labels tuple): value} of the checked families in abacus's scrape."""
    fams, _, _ = a.scrape()
    out = {}
    for fam in fams.values():
        for s in fam.samples:
            if s.name.startswith(FAMILIES):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def matches(prom, a, want):
    """Every sample in want is in Prometheus, once, with the same value and abacus's
    job/instance/external labels."""
    for (name, labels), value in want.items():
        got = prom.query(selector(name, dict(labels)))
        if len(got) != 1 or float(got[0]["value"][1]) != value:
            return False
        m = got[0]["metric"]
        if m.get("cluster") != "test" or not m.get("instance") or not m.get("job"):
            raise AssertionError("labels of %s: %r" % (name, m))
    return True


def test_every_type_and_staleness():
    with RemoteWriteReceiver() as prom, harness.Abacus(
            config=config(prom.write_url), statsd=True) as a:
        r = a.request("PUT", "/metrics/job/batch", body=PUSH_BODY.encode())
        assert r.status == 200, r.body
        r = a.request("PUT", "/metrics/job/gone", body=GONE_BODY.encode())
        assert r.status == 200, r.body
        a.send_udp(b"declared_level:42|g|#site:x\nshort_lived:5|g\n")
        harness.wait_until(lambda: abacus_samples(a).get(
            ("declared_level", (("site", "x"),))) == 42, "the StatsD gauge")
        want = abacus_samples(a)
        assert len(want) == 2 + 1 + 5 + 4 + 1, want
        harness.wait_until(lambda: matches(prom, a, want), "Prometheus has abacus's values")
        # The pushed series carry the group's job; the others abacus's own job and instance.
        m = prom.query('batch_temperature')[0]["metric"]
        assert m["job"] == "batch", m
        m = prom.query('declared_level')[0]["metric"]
        # instance: this host and the configured listen port (0 here: the tests bind port 0).
        assert m["job"] == "abacus" and m["instance"] == socket.gethostname() + ":0", m
        # Not among the samples awaited above: it may come in a later request of the same
        # collection (requests hold max_samples_per_send samples).
        harness.wait_until(lambda: prom.query('gone_gauge'), "the second pushed group received")
        # short_lived may have expired already: it must have reached Prometheus, then go.
        harness.wait_until(lambda: prom.query('count_over_time(short_lived[1h])'),
                           "the expiring series received")
        harness.wait_until(lambda: not prom.query('short_lived'), "short_lived stale")
        assert a.request("DELETE", "/metrics/job/gone").status == 202
        harness.wait_until(lambda: not prom.query('gone_gauge'), "the deleted group stale")
        assert prom.query('batch_temperature'), "a live series must not go stale"
        # Self-metrics: everything delivered, nothing lost.
        labels = {"remote_name": "prom", "url": prom.write_url}
        assert a.value("abacus_remote_write_samples_total", labels) > 0
        for lost in ("failed", "dropped", "retried"):
            assert a.value("abacus_remote_write_samples_%s_total" % lost, labels) == 0, lost
        assert a.value("abacus_remote_write_queue_capacity", labels) == 500000


def openssl(d, *args):
    import subprocess
    subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)


def make_cert(d):
    openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=receiver")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:receiver.test\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt")


def test_tls_basic_auth():
    import tempfile
    d = tempfile.mkdtemp(prefix="abacus-rw-tls-")
    make_cert(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        hashed = crypt.crypt("pa55", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
    web = os.path.join(d, "web.yml")
    with open(web, "w") as f:
        f.write("tls_server_config:\n  cert_file: %s/server.crt\n  key_file: %s/server.key\n"
                "basic_auth_users:\n  writer: '%s'\n" % (d, d, hashed))
    with open(os.path.join(d, "password"), "w") as f:
        f.write("pa55\n")
    with open(os.path.join(d, "wrong"), "w") as f:
        f.write("guess\n")
    ca = os.path.join(d, "ca.crt")
    with RemoteWriteReceiver(web_config=web, ca=ca, auth=("writer", "pa55")) as prom:
        good = ("    basic_auth: {username: writer, password_file: %s/password}\n"
                "    tls_config: {ca_file: %s, server_name: receiver.test}\n" % (d, ca))
        with harness.Abacus(config=config(prom.write_url, good), statsd=True) as a:
            a.send_udp(b"declared_level:7|g|#site:tls\n")
            harness.wait_until(lambda: prom.query('declared_level{site="tls"}'),
                               "a sample over TLS with basic auth")
            assert float(prom.query('declared_level{site="tls"}')[0]["value"][1]) == 7
        bad = good.replace("name: prom", "name: prom").replace("/password}", "/wrong}")
        with harness.Abacus(config=config(prom.write_url, bad).replace("name: prom",
                                                                        "name: wrong")) as a:
            labels = {"remote_name": "wrong", "url": prom.write_url}
            harness.wait_until(
                lambda: (a.value("abacus_remote_write_samples_failed_total", labels) or 0) > 0,
                "401 answers counted as failed")
            assert a.value("abacus_remote_write_samples_retried_total", labels) == 0
            assert a.value("abacus_remote_write_samples_total", labels) == 0
            # counted before it is logged: await the line
            harness.wait_until(lambda: "HTTP 401" in a.log_text(), "the 401 logged")
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def main():
    for t in (test_every_type_and_staleness, test_tls_basic_auth):
        t()
        print("ok", t.__name__)


if __name__ == "__main__":
    main()
