"""test_push_protobuf.py - pushes in the delimited protobuf format (Content-Type
application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited),
encoded as client_golang's push package does (each MetricFamily message preceded by its
length as a varint), sent to abacus and to the real Pushgateway (/usr/bin/prometheus-pushgateway);
the status and the pushed series on /metrics must agree (pushdiff.compare_states).

The messages are built with python3-protobuf (Debian's package) from a descriptor of
client_model's metrics.proto made here at run time, so no protoc is needed; without
python3-protobuf the test fails (CI installs it: docker/install-deps.sh test).
"""

import gzip
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pushdiff  # noqa: E402
from pushdiff import Case, POST, PUT  # noqa: E402

try:
    from google.protobuf import descriptor_pb2, descriptor_pool
    from google.protobuf.internal.encoder import _VarintBytes
    try:
        from google.protobuf.message_factory import GetMessageClass
    except ImportError:  # python3-protobuf before 4.x
        from google.protobuf import message_factory

        def GetMessageClass(d):
            return message_factory.MessageFactory().GetPrototype(d)
except ImportError:
    descriptor_pb2 = None

CT = ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
      "encoding=delimited")

# client_model's metrics.proto (io.prometheus.client), the fields abacus reads plus a few it
# skips: (message, [(name, number, type, label, type_name)]).
F = descriptor_pb2.FieldDescriptorProto if descriptor_pb2 else None
MESSAGES = [] if F is None else [
    ("LabelPair", [("name", 1, F.TYPE_STRING, 1, None), ("value", 2, F.TYPE_STRING, 1, None)]),
    ("Gauge", [("value", 1, F.TYPE_DOUBLE, 1, None)]),
    ("Counter", [("value", 1, F.TYPE_DOUBLE, 1, None)]),
    ("Quantile", [("quantile", 1, F.TYPE_DOUBLE, 1, None), ("value", 2, F.TYPE_DOUBLE, 1, None)]),
    ("Summary", [("sample_count", 1, F.TYPE_UINT64, 1, None),
                 ("sample_sum", 2, F.TYPE_DOUBLE, 1, None),
                 ("quantile", 3, F.TYPE_MESSAGE, 3, "Quantile")]),
    ("Untyped", [("value", 1, F.TYPE_DOUBLE, 1, None)]),
    ("Bucket", [("cumulative_count", 1, F.TYPE_UINT64, 1, None),
                ("upper_bound", 2, F.TYPE_DOUBLE, 1, None)]),
    ("Histogram", [("sample_count", 1, F.TYPE_UINT64, 1, None),
                   ("sample_sum", 2, F.TYPE_DOUBLE, 1, None),
                   ("bucket", 3, F.TYPE_MESSAGE, 3, "Bucket"),
                   ("schema", 5, F.TYPE_SINT32, 1, None),
                   ("zero_count", 7, F.TYPE_UINT64, 1, None)]),
    ("Metric", [("label", 1, F.TYPE_MESSAGE, 3, "LabelPair"),
                ("gauge", 2, F.TYPE_MESSAGE, 1, "Gauge"),
                ("counter", 3, F.TYPE_MESSAGE, 1, "Counter"),
                ("summary", 4, F.TYPE_MESSAGE, 1, "Summary"),
                ("untyped", 5, F.TYPE_MESSAGE, 1, "Untyped"),
                ("timestamp_ms", 6, F.TYPE_INT64, 1, None),
                ("histogram", 7, F.TYPE_MESSAGE, 1, "Histogram")]),
    ("MetricFamily", [("name", 1, F.TYPE_STRING, 1, None), ("help", 2, F.TYPE_STRING, 1, None),
                      ("type", 3, F.TYPE_ENUM, 1, "MetricType"),
                      ("metric", 4, F.TYPE_MESSAGE, 3, "Metric"),
                      ("unit", 5, F.TYPE_STRING, 1, None)]),
]
TYPES = {"counter": 0, "gauge": 1, "summary": 2, "untyped": 3, "histogram": 4}


def metric_family_class():
    fd = descriptor_pb2.FileDescriptorProto(name="abacus_metrics_test.proto",
                                            package="io.prometheus.client", syntax="proto2")
    enum = fd.enum_type.add(name="MetricType")
    for name, number in [("COUNTER", 0), ("GAUGE", 1), ("SUMMARY", 2), ("UNTYPED", 3),
                         ("HISTOGRAM", 4), ("GAUGE_HISTOGRAM", 5)]:
        enum.value.add(name=name, number=number)
    for mname, fields in MESSAGES:
        m = fd.message_type.add(name=mname)
        for name, number, typ, label, type_name in fields:
            f = m.field.add(name=name, number=number, type=typ, label=label)
            if type_name:
                f.type_name = ".io.prometheus.client." + type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return GetMessageClass(pool.FindMessageTypeByName("io.prometheus.client.MetricFamily"))


MF = metric_family_class() if descriptor_pb2 else None


def family(name, typ, metrics, help="help text"):
    """A MetricFamily: metrics are dicts of labels (dict) and one of value / hist / summary."""
    mf = MF(name=name)
    if typ is not None:
        mf.type = TYPES[typ]
    if help is not None:
        mf.help = help
    for spec in metrics:
        m = mf.metric.add()
        for k, v in spec.get("labels", {}).items():
            m.label.add(name=k, value=v)
        kind = spec.get("kind", typ)
        if kind in ("counter", "gauge", "untyped"):
            getattr(m, kind).value = spec["value"]
        elif kind == "histogram":
            count, total, buckets = spec["hist"]
            m.histogram.sample_count = count
            m.histogram.sample_sum = total
            for bound, c in buckets:
                m.histogram.bucket.add(upper_bound=bound, cumulative_count=c)
            if spec.get("native"):
                m.histogram.schema = 3
                m.histogram.zero_count = 1
        elif kind == "summary":
            count, total, quantiles = spec["summary"]
            m.summary.sample_count = count
            m.summary.sample_sum = total
            for q, v in quantiles:
                m.summary.quantile.add(quantile=q, value=v)
        if "ts" in spec:
            m.timestamp_ms = spec["ts"]
    return mf


def body(*families):
    """The delimited encoding: each message after its length as a varint (client_golang's
    push package, through protodelim / pbutil.WriteDelimited)."""
    out = b""
    for mf in families:
        data = mf.SerializeToString()
        out += _VarintBytes(len(data)) + data
    return out


def PB(method, path, data, **headers):
    h = {"Content-Type": CT}
    h.update(headers)
    return method(path, data, headers=h)


def cases():
    g = family("pb_temperature_celsius", "gauge", [{"labels": {"a": "x"}, "value": 1.5},
                                      {"labels": {"a": "y"}, "value": -2}], help="a gauge")
    c = family("pb_requests_total", "counter", [{"labels": {"code": "200"}, "value": 7}],
               help="requests")
    u = family("pb_untyped", "untyped", [{"value": 3}])
    h = family("pb_latency_seconds", "histogram", [
        {"labels": {"path": "/a"}, "hist": (10, 4.5, [(0.1, 2), (1, 7)])},  # no +Inf: added
        {"labels": {"path": "/b"}, "hist": (3, 1, [(0.5, 1), (math.inf, 3)])},
        {"labels": {"path": "/n"}, "hist": (4, 2, [(1, 4)]), "native": True}])
    s = family("pb_rpc_seconds", "summary", [
        {"labels": {"m": "get"}, "summary": (5, 9.75, [(0.5, 1.25), (0.99, 3.5)])}],
        help="rpc\nlatency \\ with escapes")
    notype = family("pb_notype_total", None, [{"value": 1, "kind": "counter"}])
    mismatch = family("pb_mismatch", "gauge", [{"value": 1, "kind": "counter"}])
    stamped = family("pb_stamped", "gauge", [{"value": 1, "ts": 1234}])
    empty = family("pb_empty", "gauge", [])
    dup_first = family("pb_dup", "gauge", [{"value": 1}, {"labels": {"x": "1"}, "value": 2}])
    dup_second = family("pb_dup", "gauge", [{"labels": {"x": "2"}, "value": 3}])
    g9 = family("pb_temperature_celsius", "gauge", [{"value": 9}])
    job = "/metrics/job/pb"
    return [
        Case("pb_every_type", [PB(PUT, job + "/instance/i", body(g, c, u, h, s))]),
        Case("pb_gzip", [PB(PUT, job, gzip.compress(body(g, h)), **{"Content-Encoding": "gzip"})]),
        Case("pb_post_replaces_families", [PB(PUT, job, body(g, c)), PB(POST, job, body(g9))]),
        Case("pb_text_then_protobuf", [PUT(job, "# HELP pb_temperature_celsius t\n"
                                                "# TYPE pb_temperature_celsius gauge\n"
                                                "pb_temperature_celsius 1\n"),
                                       PB(POST, job, body(c))]),
        Case("pb_no_type_is_counter", [PB(PUT, job, body(notype))]),
        Case("pb_type_mismatch_400", [PB(PUT, job, body(g)), PB(PUT, job, body(g, mismatch))]),
        Case("pb_timestamp_400", [PB(PUT, job, body(stamped))]),
        Case("pb_empty_family_left_out", [PB(PUT, job, body(empty, g))]),
        Case("pb_later_family_wins", [PB(PUT, job, body(dup_first, c, dup_second))]),
        Case("pb_grouping_labels_override", [PB(PUT, job + "/a/fromkey",
                                                body(family("pb_temperature_celsius", "gauge", [
                                                    {"labels": {"a": "frombody"},
                                                     "value": 1}])))]),
        Case("pb_empty_body", [PB(PUT, job, b"")]),
    ]


class PushProtobuf(unittest.TestCase):
    def test_protobuf_pushes_agree_with_the_pushgateway(self):
        self.assertIsNotNone(MF, "python3-protobuf is not installed (docker/install-deps.sh test)")
        with harness.Pushgateway() as pg, harness.Abacus() as a:
            ref = pushdiff.Side("pushgateway", pg, pushdiff.OWN_PUSHGATEWAY, strict=False)
            other = pushdiff.Side("abacus", a, pushdiff.OWN_ABACUS, strict=True)
            failures = pushdiff.run_cases(cases(), ref, other)
        self.assertEqual([n for n, _ in failures], [], "cases differ (details above)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
