"""pushdiff.py - compare abacus's Pushgateway-compatible push API with the real Pushgateway.

A Side wraps one server (abacus or a Pushgateway) and reads back the *pushed* state from its
/metrics: every family except the server's own (Pushgateway: go_, process_, pushgateway_;
abacus: abacus_, process_). push_time_seconds and push_failure_time_seconds are compared by
label set and by zero/non-zero only (their values are times). A Case is a sequence of requests
sent to both sides; after every step the statuses and the pushed states must agree, unless the
case is an intended deviation, whose abacus side is checked against its own expectation.
Used by test_push_diff.py and test_push_clients.py.
"""

import base64
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import text_parser  # noqa: E402

PUSH_TIMES = ("push_time_seconds", "push_failure_time_seconds")
OWN_PUSHGATEWAY = ("go_", "process_", "pushgateway_")
OWN_ABACUS = ("abacus_", "process_")
EXACT_STATUSES = (200, 202, 400, 405)  # where the Pushgateway's code is part of the protocol


class State:
    """What one /metrics scrape says about pushed series. http: the scrape's status (or None
    when it could not be read); error: why it is unusable; families: {name: (type, help,
    frozenset of (sample name, sorted labels, value))}; times: {name: {labels: nonzero}}."""

    def __init__(self, http=None, error=None, families=None, times=None):
        self.http = http
        self.error = error
        self.families = families or {}
        self.times = times or {}

    @property
    def ok(self):
        return self.http == 200 and self.error is None

    def groups(self):
        """The grouping label sets (each a sorted tuple of pairs) seen in push_time_seconds."""
        return set(self.times.get("push_time_seconds", {})) | set(
            self.times.get("push_failure_time_seconds", {}))

    def series(self, name):
        """{labels dict as sorted tuple: value} of the samples called name."""
        out = {}
        for fam in self.families.values():
            for s in fam[2]:
                if s[0] == name:
                    out[s[1]] = s[2]
        return out

    def describe(self):
        if not self.ok:
            return "/metrics HTTP %s %s" % (self.http, self.error or "")
        lines = []
        for name in sorted(self.families):
            typ, hlp, samples = self.families[name]
            lines.append("%s %s help=%r" % (name, typ, hlp))
            lines += ["  %s%s %s" % (s[0], dict(s[1]), s[2]) for s in sorted(samples, key=repr)]
        for name in sorted(self.times):
            for labels, nz in sorted(self.times[name].items()):
                lines.append("%s%s %s" % (name, dict(labels), "nonzero" if nz else "0"))
        return "\n".join(lines) or "(nothing pushed)"


def _value(v):
    return "NaN" if math.isnan(v) else v


def state_of(text, own_prefixes):
    """Parse a text-format scrape (already validated or not) into a State."""
    families, times = {}, {}
    for fam in text_parser.text_string_to_metric_families(text):
        if fam.name.startswith(tuple(own_prefixes)):
            continue
        if fam.name in PUSH_TIMES:
            d = times.setdefault(fam.name, {})
            for s in fam.samples:
                d[tuple(sorted(s.labels.items()))] = s.value != 0
            continue
        samples = frozenset((s.name, tuple(sorted(s.labels.items())), _value(s.value))
                            for s in fam.samples)
        if fam.name in families:  # the parser splits a family that is split in the text
            t, h, old = families[fam.name]
            samples = old | samples
        families[fam.name] = (fam.type, fam.documentation, samples)
    return State(200, None, families, times)


class Side:
    """One server under test. strict: validate each scrape completely (promtool and the
    structural checks of harness.parse_text); the Pushgateway reference is read as it is
    (it emits invalid text in some corner cases, see the deviations)."""

    def __init__(self, name, server, own_prefixes, strict):
        self.name = name
        self.server = server
        self.own = own_prefixes
        self.strict = strict

    def request(self, method, path, headers=None, body=None):
        if isinstance(body, str):
            body = body.encode()
        return self.server.request(method, path, headers, body)

    def state(self):
        try:
            r = self.server.get("/metrics")
        except OSError as e:
            return State(None, "scrape failed: %r" % e)
        if r.status != 200:
            return State(r.status, r.body[:300].decode(errors="replace"))
        text = r.body.decode("utf-8", errors="replace")
        try:
            if self.strict:
                harness.parse_text(text)
            return state_of(text, self.own)
        except (AssertionError, ValueError) as e:
            return State(200, "invalid exposition: %s" % str(e)[:500])

    def groups_paths(self, st):
        """DELETE paths for every group seen in st (instance="" both as given and as absent:
        the Pushgateway keeps those apart)."""
        paths = []
        for labels in st.groups():
            d = dict(labels)
            job = d.pop("job", "")
            variants = [d]
            if d.get("instance") == "":
                variants.append({k: v for k, v in d.items() if k != "instance"})
            for v in variants:
                paths.append(group_path(job, v))
        return paths


def b64(s):
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=") or "="


def group_path(job, labels):
    """A push path for job and labels, every value base64-encoded (safe for any value)."""
    p = "/metrics/job@base64/" + b64(job)
    for k, v in sorted(labels.items()):
        p += "/%s@base64/%s" % (k, b64(v))
    return p


def status_matches(ref, other):
    if ref in EXACT_STATUSES or other in EXACT_STATUSES:
        return ref == other
    return ref // 100 == other // 100


def compare_states(ref, other, compare_help=True, push_times="nonzero"):
    """Differences (list of strings) between two States; [] when they agree."""
    diffs = []
    if ref.ok != other.ok or (not ref.ok and ref.http != other.http):
        return ["/metrics: reference %s, other %s" % (
            "ok" if ref.ok else "HTTP %s %s" % (ref.http, ref.error),
            "ok" if other.ok else "HTTP %s %s" % (other.http, other.error))]
    if not ref.ok:
        return []
    for name in sorted(set(ref.families) | set(other.families)):
        a, b = ref.families.get(name), other.families.get(name)
        if a is None or b is None:
            diffs.append("family %s only on the %s side" % (name, "other" if a is None
                                                             else "reference"))
            continue
        if a[0] != b[0]:
            diffs.append("family %s: type %s vs %s" % (name, a[0], b[0]))
        # No HELP pushed: the Pushgateway prints none, abacus may print its own (promtool's
        # lint, run on every abacus scrape, wants one), so only a pushed HELP is compared.
        if compare_help and a[1] and a[1] != b[1]:
            diffs.append("family %s: help %r vs %r" % (name, a[1], b[1]))
        for s in sorted(a[2] - b[2], key=repr):
            diffs.append("only reference: %s%s %s" % (s[0], dict(s[1]), s[2]))
        for s in sorted(b[2] - a[2], key=repr):
            diffs.append("only other: %s%s %s" % (s[0], dict(s[1]), s[2]))
    for name in PUSH_TIMES:
        a, b = ref.times.get(name, {}), other.times.get(name, {})
        if set(a) != set(b):
            diffs.append("%s label sets: %s vs %s" % (name, [dict(x) for x in sorted(a)],
                                                      [dict(x) for x in sorted(b)]))
        elif push_times == "nonzero":
            for labels in a:
                if a[labels] != b[labels]:
                    diffs.append("%s%s: %s vs %s" % (name, dict(labels),
                                                     *("nonzero" if x else "0"
                                                       for x in (a[labels], b[labels]))))
    return diffs


class Step:
    """One request. accept: for the abacus side only, the status classes ("3xx", "4xx")
    allowed instead of the Pushgateway's (a path the Pushgateway redirects)."""

    def __init__(self, method, path, body=None, headers=None, accept=None):
        self.method = method
        self.path = path
        self.body = body
        self.headers = headers or {}
        self.accept = accept

    def __repr__(self):
        b = self.body
        if isinstance(b, (bytes, bytearray)) and len(b) > 60:
            b = b[:40] + b"...(%d bytes)" % len(b)
        elif isinstance(b, str) and len(b) > 60:
            b = b[:40] + "...(%d chars)" % len(b)
        return "%s %s %r" % (self.method, self.path, b)


def PUT(path, body="", **kw):
    return Step("PUT", path, body, **kw)


def POST(path, body="", **kw):
    return Step("POST", path, body, **kw)


def DELETE(path, **kw):
    return Step("DELETE", path, None, **kw)


class Case:
    """name; steps; deviation: None, or (reason, check) where check(results) returns a list
    of problems with abacus's own results [(step, response, state), ...]; cleanup: extra
    DELETE paths (groups that break the Pushgateway's /metrics cannot be found from it);
    compare_help, push_times: see compare_states."""

    def __init__(self, name, steps, deviation=None, cleanup=(), compare_help=True,
                 push_times="nonzero"):
        self.name = name
        self.steps = steps
        self.deviation = deviation
        self.cleanup = list(cleanup)
        self.compare_help = compare_help
        self.push_times = push_times


def clean(side, extra=()):
    """Delete every pushed group on side; return the problems (state not empty after)."""
    for p in extra:
        side.request("DELETE", p)
    st = side.state()
    for p in side.groups_paths(st) if st.ok else ():
        side.request("DELETE", p)
    st = side.state()
    if not st.ok or st.families or st.groups():
        return ["%s not clean: %s" % (side.name, st.describe()[:500])]
    return []


def run_case(case, ref, other, deviations=True):
    """Run case on both sides; return (verdict, problems). verdict: PASS, FAIL, DEVIATION-PASS."""
    # The groups the steps push to are deleted too: a group that breaks the Pushgateway's
    # /metrics cannot be found from it, and one such group must not fail every later case.
    paths = case.cleanup + [s.path for s in case.steps if s.method in ("PUT", "POST")]
    problems = clean(ref, paths) + clean(other, paths)
    if problems:
        return "FAIL", ["before the case: " + p for p in problems]
    results = []
    for i, step in enumerate(case.steps, 1):
        rr = ref.request(step.method, step.path, step.headers, step.body)
        ro = other.request(step.method, step.path, step.headers, step.body)
        sr, so = ref.state(), other.state()
        results.append((step, ro, so))
        if case.deviation and deviations:
            continue
        if not status_matches(rr.status, ro.status):
            okay = step.accept and "%dxx" % (ro.status // 100) in step.accept
            if not okay:
                problems.append("step %d %r: status %d (%s) vs %d (%s)" % (
                    i, step, rr.status, rr.body[:120], ro.status, ro.body[:120]))
        if rr.status == 405 and ro.status == 405:
            allow = {x.strip() for x in (ro.header("Allow") or "").split(",")}
            if not {"PUT", "POST", "DELETE"} <= allow:
                problems.append("step %d: 405 without Allow PUT, POST, DELETE: %r" % (
                    i, ro.header("Allow")))
        d = compare_states(sr, so, case.compare_help, case.push_times)
        if d:
            problems.append("step %d %r: state differs:\n      %s" % (i, step,
                                                                    "\n      ".join(d)))
    verdict = "PASS"
    if case.deviation and deviations:
        problems += case.deviation[1](results)
        verdict = "DEVIATION-PASS"
    problems += ["after the case: " + p for p in clean(ref, paths) + clean(other, paths)]
    return ("FAIL" if problems else verdict), problems


def run_cases(cases, ref, other, deviations=True, out=sys.stdout):
    """Run all cases, print a table and the details of the failures; return the failures."""
    rows, failures = [], []
    for c in cases:
        try:
            verdict, problems = run_case(c, ref, other, deviations)
        except Exception as e:  # noqa: BLE001 - one broken case must not hide the others
            verdict, problems = "FAIL", ["exception: %r" % e]
        rows.append((c.name, len(c.steps), verdict,
                     ("deviation: " + c.deviation[0]) if c.deviation and deviations else ""))
        if verdict == "FAIL":
            failures.append((c.name, problems))
    w = max(len(r[0]) for r in rows)
    print("\n%-*s  steps  result          note" % (w, "case"), file=out)
    for r in rows:
        print("%-*s  %5d  %-14s  %s" % (w, r[0], r[1], r[2], r[3][:90]), file=out)
    npass = sum(1 for r in rows if r[2] != "FAIL")
    print("%d cases, %d passed, %d failed (reference %s, other %s)" % (
        len(rows), npass, len(rows) - npass, ref.name, other.name), file=out)
    for name, problems in failures:
        print("\nFAIL %s:\n  %s" % (name, "\n  ".join(problems)), file=out)
    out.flush()
    return failures


# ---- expectations for deviation cases (abacus's own results) --------------------------------

def expect(status_classes=None, statuses=None, absent=(), valid=True, before=(200, 202)):
    """A deviation check: every step but the last answers one of before; the last step's
    status is in statuses (exact) or its class in status_classes; /metrics stays valid; none
    of the families in absent exist."""
    def check(results):
        problems = ["%r: status %d, want one of %s" % (st, r.status, before)
                    for st, r, _ in results[:-1] if r.status not in before]
        step, r, st = results[-1]
        if statuses and r.status not in statuses:
            problems.append("%r: status %d, want one of %s" % (step, r.status, statuses))
        if status_classes and "%dxx" % (r.status // 100) not in status_classes:
            problems.append("%r: status %d, want %s" % (step, r.status, status_classes))
        for _, _, s in results:
            if valid and not s.ok:
                problems.append("/metrics must stay valid: %s" % s.describe()[:400])
                break
        for name in absent:
            if st.ok and name in st.families:
                problems.append("family %s must not exist: %s" % (name, st.describe()[:400]))
        return problems
    return check
