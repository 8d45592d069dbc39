"""test_reload_scrape.py - a reload is atomic for scrapes (issue 9, item 1).

Two configuration files differ only in the help text of one declared gauge. Many reloads
alternate them while several clients scrape; a large family sorted before the gauge makes
each scrape long enough for reloads to land while it streams. Every scrape must show the
gauge exactly once (one HELP, one TYPE, one sample), under the old or the new help, and never
lose a series of the families that did not change. Runs the real binary (env ABACUS_BIN)."""

import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, wait_until  # noqa: E402

BULK = 20000
RELOADS = 300
SCRAPERS = 3

CONFIG = """\
defaults:
  observer_type: histogram
metrics:
  - name: aaa_bulk_total
    help: Many series, rendered before the gauge.
    type: counter
    labels: [id]
  - name: pool_size
    help: {help}
    type: gauge
mappings:
  - match: "bulk.*"
    name: aaa_bulk_total
    labels: {{id: "$1"}}
"""


def config(help_text):
    return CONFIG.format(help=help_text)


class ReloadDuringScrapes(unittest.TestCase):
    def test_every_scrape_shows_the_replaced_family_once(self):
        with Abacus(config=config("Pool size, version A."), lifecycle=True, statsd=True) as a:
            lines = "".join("bulk.%d:1|c\n" % i for i in range(BULK))
            a.send_tcp(lines)
            wait_until(lambda: a.value("abacus_series", {"family": "aaa_bulk_total"}) == BULK,
                       "all bulk series created")
            configs = [config("Pool size, version B."), config("Pool size, version A.")]
            stop = threading.Event()
            results = []  # (ok, detail) per scrape
            lock = threading.Lock()

            def scraper():
                while not stop.is_set():
                    r = a.get("/metrics")
                    text = r.body.decode("utf-8")
                    lines = text.split("\n")
                    helps = [x for x in lines if x.startswith("# HELP pool_size ")]
                    types = [x for x in lines if x == "# TYPE pool_size gauge"]
                    samples = [x for x in lines if x.startswith("pool_size ")]
                    bulk = sum(1 for x in lines if x.startswith("aaa_bulk_total{"))
                    ok = (r.status == 200 and len(helps) == 1 and len(types) == 1
                          and len(samples) == 1 and bulk == BULK
                          and helps[0][len("# HELP pool_size "):] in (
                              "Pool size, version A.", "Pool size, version B."))
                    with lock:
                        results.append((ok, (r.status, helps, types, samples, bulk)))

            threads = [threading.Thread(target=scraper) for _ in range(SCRAPERS)]
            for t in threads:
                t.start()
            try:
                for i in range(RELOADS):
                    a.write_config(configs[i % 2])
                    r = a.request("POST", "/-/reload")
                    self.assertEqual(r.status, 200, r.body)
                # Keep scraping until every scraper finished at least one more scrape.
                with lock:
                    seen = len(results)
                wait_until(lambda: len(results) >= seen + SCRAPERS, "scrapes after reloads",
                           timeout=60)
            finally:
                stop.set()
                for t in threads:
                    t.join(timeout=60)
            bad = [d for ok, d in results if not ok]
            self.assertGreater(len(results), SCRAPERS)
            self.assertEqual(bad, [], "%d of %d scrapes were inconsistent; first: %r" % (
                len(bad), len(results), bad[:1]))
            # The last scrape is valid exposition as a whole.
            _, text, _ = a.scrape()
            harness.promtool_check(text)
            self.assertEqual(a.value("abacus_config_last_reload_successful"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
