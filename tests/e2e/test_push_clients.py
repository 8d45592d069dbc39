"""test_push_clients.py - Python's prometheus_client (0.16) pushing to abacus: push_to_gateway
(PUT), pushadd_to_gateway (POST) and delete_from_gateway (DELETE) with grouping keys, one of
them needing base64 (a value with '/'), then abacus's /metrics (validated by promtool and the
structural checks) is read for exact values and labels. Every step is also done against the
real Pushgateway and both must show the same pushed series (pushdiff.compare_states).

Runs the real binary (env ABACUS_BIN) and /usr/bin/prometheus-pushgateway.
ABACUS_PUSHDIFF_PEER=pushgateway puts a second Pushgateway in abacus's place (harness check).
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import pushdiff  # noqa: E402
import prometheus_client as pc  # noqa: E402

JOB = "client"
# '/' needs @base64 (prometheus_client encodes it); "" is sent as @base64/=; a space is sent
# by quote_plus as '+', which a Pushgateway keeps as '+'.
KEY = {"instance": "i1", "path": "/a/b", "empty": "", "sp": "x y"}
GROUP = {"job": JOB, "instance": "i1", "path": "/a/b", "empty": "", "sp": "x+y"}


def labels(extra=None):
    d = dict(GROUP)
    d.update(extra or {})
    return tuple(sorted(d.items()))


def full_registry():
    r = pc.CollectorRegistry()
    pc.Counter("c", "a counter", ["l"], registry=r).labels("x").inc(3)
    pc.Gauge("g", "a gauge", registry=r).set(2.5)
    h = pc.Histogram("h", "a histogram", buckets=(1, 2), registry=r)
    h.observe(1.5)
    h.observe(0.5)
    pc.Summary("s", "a summary", registry=r).observe(4)
    pc.Info("i", "an info", registry=r).info({"version": "1.0"})
    pc.Enum("e", "an enum", states=["a", "b"], registry=r).state("b")
    return r


class PushClients(unittest.TestCase):
    def check_full(self, st, who):
        self.assertTrue(st.ok, "%s: %s" % (who, st.describe()))
        self.assertEqual(st.series("c_total"), {labels({"l": "x"}): 3.0}, who)
        self.assertEqual(st.series("g"), {labels(): 2.5}, who)
        buckets = {float(dict(k)["le"]): v for k, v in st.series("h_bucket").items()}
        self.assertEqual(buckets, {1.0: 1.0, 2.0: 2.0, float("inf"): 2.0}, who)
        self.assertEqual(st.series("h_count"), {labels(): 2.0}, who)
        self.assertEqual(st.series("h_sum"), {labels(): 2.0}, who)
        self.assertEqual(st.series("s_count"), {labels(): 1.0}, who)
        self.assertEqual(st.series("s_sum"), {labels(): 4.0}, who)
        self.assertEqual(st.series("i_info"), {labels({"version": "1.0"}): 1.0}, who)
        self.assertEqual(st.series("e"), {labels({"e": "a"}): 0.0, labels({"e": "b"}): 1.0}, who)
        # 0.16 pushes the creation times as gauges
        self.assertEqual(list(st.series("c_created")), [labels({"l": "x"})], who)
        for name in ("h_created", "s_created"):
            self.assertEqual(list(st.series(name)), [labels()], who + " " + name)
        types = {n: f[0] for n, f in st.families.items()}
        for name, t in (("g", "gauge"), ("h", "histogram"), ("s", "summary"),
                        ("i_info", "gauge"), ("e", "gauge"), ("c_created", "gauge")):
            self.assertEqual(types.get(name), t, "%s: %s in %s" % (who, name, types))
        self.assertIn(types.get("c", types.get("c_total")), ("counter",), who)
        self.assertEqual(set(st.times.get("push_time_seconds", {})), {labels()}, who)
        self.assertEqual(st.times["push_failure_time_seconds"], {labels(): False}, who)

    def both(self, sides, fn):
        """Run fn(address) against both sides; return their states after it."""
        out = []
        for side in sides:
            fn("%s:%d" % (side.server.host, side.server.port))
            out.append(side.state())
        d = pushdiff.compare_states(out[0], out[1])
        self.assertEqual(d, [], "pushed series differ:\n%s\n--- %s:\n%s\n--- %s:\n%s" % (
            "\n".join(d), sides[0].name, out[0].describe(), sides[1].name, out[1].describe()))
        return out

    def run_all(self, ref, other):
        sides = [ref, other]
        for s in sides:
            self.assertEqual(pushdiff.clean(s), [])
        reg = full_registry()

        # PUT: the whole registry.
        sts = self.both(sides, lambda a: pc.push_to_gateway(a, job=JOB, registry=reg,
                                                            grouping_key=KEY))
        for st, s in zip(sts, sides):
            self.check_full(st, s.name)

        # POST: only g is replaced, the rest stays.
        small = pc.CollectorRegistry()
        pc.Gauge("g", "a gauge", ["k"], registry=small).labels("v").set(7)
        sts = self.both(sides, lambda a: pc.pushadd_to_gateway(a, job=JOB, registry=small,
                                                               grouping_key=KEY))
        for st, s in zip(sts, sides):
            self.assertEqual(st.series("g"), {labels({"k": "v"}): 7.0}, s.name)
            self.assertEqual(st.series("c_total"), {labels({"l": "x"}): 3.0}, s.name)

        # A second group under a job that needs base64 itself, and no grouping key.
        sts = self.both(sides, lambda a: pc.push_to_gateway(a, job="team/batch", registry=small))
        for st, s in zip(sts, sides):
            self.assertIn((("instance", ""), ("job", "team/batch"), ("k", "v")),
                          st.series("g"), s.name)

        # PUT again: back to the full registry (g without k).
        sts = self.both(sides, lambda a: pc.push_to_gateway(a, job=JOB, registry=reg,
                                                            grouping_key=KEY))
        for st, s in zip(sts, sides):
            self.assertEqual(st.series("g")[labels()], 2.5, s.name)

        # DELETE: the group is gone, the other one stays.
        sts = self.both(sides, lambda a: pc.delete_from_gateway(a, job=JOB, grouping_key=KEY))
        for st, s in zip(sts, sides):
            self.assertEqual(st.series("c_total"), {}, s.name)
            self.assertNotIn(labels(), st.groups(), s.name)
            self.assertEqual(st.groups(), {(("instance", ""), ("job", "team/batch"))}, s.name)
        sts = self.both(sides, lambda a: pc.delete_from_gateway(a, job="team/batch"))
        for st, s in zip(sts, sides):
            self.assertEqual((st.families, st.groups()), ({}, set()), s.name)

    def test_prometheus_client_push(self):
        peer = os.environ.get("ABACUS_PUSHDIFF_PEER", "abacus")
        with harness.Pushgateway() as pg:
            ref = pushdiff.Side("pushgateway", pg, pushdiff.OWN_PUSHGATEWAY, strict=False)
            if peer == "pushgateway":
                with harness.Pushgateway() as pg2:
                    self.run_all(ref, pushdiff.Side("pushgateway#2", pg2,
                                                    pushdiff.OWN_PUSHGATEWAY, strict=False))
            else:
                with harness.Abacus() as a:
                    self.run_all(ref, pushdiff.Side("abacus", a, pushdiff.OWN_ABACUS,
                                                    strict=True))


if __name__ == "__main__":
    unittest.main(verbosity=2)
