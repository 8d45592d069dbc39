"""test_push_atomic.py - a push is applied whole or not at all, and a scrape shows each group
wholly before or wholly after each push (issue 11). Many clients PUT, POST and DELETE one
group while others scrape it:

  - every PUT writes families a, b and c, every POST writes a and b, all with one
    generation number as value (each client counts its own generations, in its own range);
  - a scrape that shows the group must show a and b with the same value (they are only ever
    written together), c at most that new, and push_time_seconds for the group;
  - a scrape that does not show a never shows b or c either (DELETE removes the whole group);
  - POSTs that are refused (one family's type conflicts with another group's) change nothing:
    their other, valid family never appears.

Runs the real binary (env ABACUS_BIN) with plain sockets and keep-alive connections."""

import http.client
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Abacus, parse_text  # noqa: E402

WRITERS = 6
SCRAPERS = 3
SCRAPES = 300  # writers go on until the scrapers have checked this many
PATH = "/metrics/job/atomic/instance/x"


def body(gen, families):
    return "".join("# TYPE %s gauge\n%s{part=\"p\"} %d\n" % (f, f, gen) for f in families)


class Atomic(unittest.TestCase):
    def test_scrapes_see_whole_pushes(self):
        with Abacus() as a:
            self.assertEqual(a.request("PUT", "/metrics/job/other",
                                       body="# TYPE b gauge\nb 1\n").status, 200)
            errors = []
            stop = threading.Event()
            scrapes = [0]
            seen = {"with": 0, "without": 0}

            def writer(w):
                conn = http.client.HTTPConnection(a.host, a.port, timeout=20)
                try:
                    i = 0
                    while scrapes[0] < SCRAPES and not errors:
                        i += 1
                        gen = w * 1000000 + i
                        op = i % 5
                        if op in (0, 1):
                            method, text, want = "PUT", body(gen, "abc"), 200
                        elif op in (2, 3):
                            method, text, want = "POST", body(gen, "ab"), 200
                        else:
                            method, text, want = "DELETE", "", 202
                        if i % 7 == 3:
                            # b as a counter conflicts with b the gauge of group "other":
                            # refused, so its valid family "never" must not appear.
                            method, want = "POST", 400
                            text = body(gen, "a").replace("a{", "never{").replace(
                                "TYPE a", "TYPE never") + \
                                "# TYPE b counter\nb{part=\"p\"} 1\n"
                        conn.request(method, PATH, body=text.encode())
                        r = conn.getresponse()
                        r.read()
                        if r.status != want:
                            errors.append("%s gave %d, want %d" % (method, r.status, want))
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append("writer %d: %r" % (w, e))
                finally:
                    conn.close()

            def check(text):
                fams = parse_text(text)
                value = {}
                for name in ("a", "b", "c", "never"):
                    if name in fams:
                        for s in fams[name].samples:
                            if dict(s.labels).get("job") == "atomic":
                                value[name] = s.value
                pushed = any(dict(s.labels).get("job") == "atomic"
                             for s in fams["push_time_seconds"].samples) \
                    if "push_time_seconds" in fams else False
                if "never" in value:
                    return "a refused push showed its family"
                if "a" not in value:
                    seen["without"] += 1
                    return None if not value else "b or c without a: %r" % value
                seen["with"] += 1
                if not pushed:
                    return "families without push_time_seconds"
                if value.get("b") != value["a"]:
                    return "a and b differ: %r" % value
                if "c" in value and value["c"] > value["a"] and \
                        value["c"] // 1000000 == value["a"] // 1000000:
                    return "c newer than a from the same writer: %r" % value
                return None

            def scraper():
                conn = http.client.HTTPConnection(a.host, a.port, timeout=20)
                try:
                    while not stop.is_set():
                        conn.request("GET", "/metrics")
                        r = conn.getresponse()
                        text = r.read().decode()
                        if r.status != 200:
                            errors.append("scrape %d" % r.status)
                            continue
                        problem = check(text)
                        scrapes[0] += 1
                        if problem:
                            errors.append(problem)
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append("scraper: %r" % e)
                finally:
                    conn.close()

            scrapers = [threading.Thread(target=scraper) for _ in range(SCRAPERS)]
            writers = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
            for t in scrapers + writers:
                t.start()
            for t in writers:
                t.join(timeout=120)
            stop.set()
            for t in scrapers:
                t.join()
            self.assertEqual(errors[:10], [])
            # Both kinds of scrape happened, so the checks above were exercised.
            self.assertGreater(seen["with"], 0)
            self.assertGreater(seen["without"], 0)
            self.assertGreaterEqual(scrapes[0], SCRAPES)
            # The final state is one whole push too, and the exposition is valid.
            problem = check(a.scrape()[1])
            self.assertIsNone(problem)


if __name__ == "__main__":
    unittest.main(verbosity=2)
