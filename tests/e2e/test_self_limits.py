"""test_self_limits.py - limits meant for clients never hide abacus's own metrics (issue 9,
item 3). With the registry-wide limit `statsd.max_series` full, the self-metrics that report
the refusals (abacus_series, abacus_series_refused_total) and new abacus_http_requests_total
series must still be created. Runs the real binary (env ABACUS_BIN)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Abacus, sample_value, wait_until  # noqa: E402

LIMIT = 150
FAMILIES = 5
PER_FAMILY = 100

CONFIG = """\
statsd:
  max_series: %d
""" % LIMIT


class GlobalLimit(unittest.TestCase):
    def test_refusals_stay_visible(self):
        with Abacus(config=CONFIG, statsd=True) as a:
            # One series of each family first, so every family exists before the limit bites.
            a.send_tcp("".join("fam%d_total:1|c|#id:s0\n" % f for f in range(FAMILIES)))
            wait_until(lambda: all(
                a.value("abacus_series", {"family": "fam%d_total" % f}) == 1
                for f in range(FAMILIES)), "the families exist")
            a.send_tcp("".join("fam%d_total:1|c|#id:s%d\n" % (f, i)
                               for f in range(FAMILIES) for i in range(1, PER_FAMILY)))
            sent = FAMILIES * PER_FAMILY
            names = ["fam%d_total" % f for f in range(FAMILIES)]

            def refused():
                fams, _, _ = a.scrape()
                return sum(sample_value(fams, "abacus_series_refused_total", {"family": n}) or 0
                           for n in names)
            wait_until(lambda: refused() == sent - LIMIT, "every refusal counted")
            fams, text, _ = a.scrape()
            live = sum(sample_value(fams, "abacus_series", {"family": n}) for n in names)
            self.assertEqual(live, LIMIT)
            # New self-metric series are still created with the limit full.
            self.assertEqual(a.get("/no/such/page").status, 404)
            # counted when the server's completion callback runs, which may be after the
            # client has read the response
            wait_until(lambda: sample_value(a.scrape()[0], "abacus_http_requests_total",
                                            {"handler": "other", "code": "404"}) == 1,
                       "the 404 counted")
            fams, text, _ = a.scrape()
            self.assertIsNotNone(sample_value(fams, "abacus_series",
                                              {"family": "abacus_http_requests_total"}))
            # And clients still cannot create more.
            a.send_tcp("fam0_total:1|c|#id:extra\n")
            wait_until(lambda: refused() == sent - LIMIT + 1, "the extra refusal counted")
            fams, _, _ = a.scrape()
            self.assertEqual(sum(sample_value(fams, "abacus_series", {"family": n})
                                 for n in names), LIMIT)


if __name__ == "__main__":
    unittest.main(verbosity=2)
