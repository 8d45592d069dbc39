"""test_persistence.py - persistence end to end (--persistence.file, --persistence.interval).

(a) Heavy StatsD traffic (counters, gauges, timers and histograms, a declared counter) with
    snapshots every 200 ms, SIGKILL while they are being written: the file on disk is the last
    completed snapshot; decoded by the reader below (README "Persistence" format), it must
    equal exactly what a restarted abacus (no traffic) serves. Several rounds, each building
    on the restored state.
(b) A truncated, bit-flipped, foreign or future-version file: abacus starts, logs the refusal
    with the file and the reason, renames the file to <file>.corrupt and serves /metrics.
(c) SIGTERM writes a final snapshot equal to the last scrape; a restart restores it exactly.
(d) Pushed groups (PUT and POST to /metrics/job/..., refused pushes, a group that only ever
    failed) survive SIGTERM and a restart exactly; (a) pushes groups under load too.
"""

import base64

import os
import re
import shutil
import signal
import struct
import sys
import tempfile
import threading
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CONFIG = """
defaults:
  observer_type: histogram
  histogram_options: {buckets: [0.005, 0.05, 0.5, 5]}
metrics:
  - name: jobs_total
    help: Jobs processed.
    type: counter
    labels: [queue]
mappings:
  - match: "jobs.*"
    name: jobs_total
    labels: {queue: "$1"}
"""

TYPES = {0: "counter", 1: "gauge", 2: "histogram", 3: "summary", 4: "untyped"}


# ---- a reader of the snapshot format (README "Persistence") ---------------------------------

class Reader:
    def __init__(self, b):
        self.b, self.pos = b, 0

    def take(self, n):
        assert self.pos + n <= len(self.b), "record overrun"
        v = self.b[self.pos:self.pos + n]
        self.pos += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def f64(self):
        return struct.unpack("<d", self.take(8))[0]

    def s(self):
        return self.take(self.u32()).decode("utf-8")


def decode_family(r):
    d = {"name": r.s(), "help": r.s(), "unit": r.s(), "type": TYPES[r.u8()]}
    d["labels"] = [r.s() for _ in range(r.u32())]
    d["const"] = [(r.s(), r.s()) for _ in range(r.u32())]
    d["buckets"] = [r.f64() for _ in range(r.u32())]
    d["objectives"] = [(r.f64(), r.f64()) for _ in range(r.u32())]
    r.u64(), r.u32(), r.u32(), r.u64(), r.u64(), r.u32()  # window, ttl, limit, flags
    d["series"] = []
    return d


def decode_series(r, fam):
    labels = [r.s() for _ in range(r.u32())]
    s = {"labels": dict(zip(fam["labels"], labels)), "created": r.f64()}
    if fam["type"] == "histogram":
        s["buckets"] = [r.u64() for _ in range(r.u32())]
        s["sum"] = r.f64()
    elif fam["type"] == "summary":
        s["count"], s["sum"] = r.u64(), r.f64()
        r.pos = len(r.b)  # the stream state: not compared here
    else:
        s["value"] = r.f64()
    return s


def decode_group(r):
    g = {"key": r.s(), "push_time": r.f64(), "failure_time": r.f64(), "families": []}
    for _ in range(r.u32()):
        f = {"name": r.s()}
        f["help"] = r.s() if r.u8() else None
        f["type"], f["time"] = TYPES[r.u8()], r.f64()
        f["series"] = [(r.s(), [r.f64() for _ in range(r.u32())]) for _ in range(r.u32())]
        g["families"].append(f)
    return g


def decode(data):
    """({family name: family}, [pushed group]) from a snapshot's bytes; fails on anything
    malformed."""
    assert data[:16] == b"ABACUS-SNAPSHOT\n", "bad magic"
    version, flags, _written = struct.unpack("<IIQ", data[16:32])
    assert version == 1 and flags == 0
    assert data[-20:-12] == b"SNAP-END", "no trailer"
    count, crc = struct.unpack("<QI", data[-12:])
    assert zlib.crc32(data[:-4]) == crc, "crc mismatch"
    fams, groups, cur, pos, n = {}, [], None, 32, 0
    while pos < len(data) - 20:
        rtype, plen = struct.unpack("<BI", data[pos:pos + 5])
        r = Reader(data[pos + 5:pos + 5 + plen])
        if rtype == 3:
            groups.append(decode_group(r))
        elif rtype == 1 and not groups:
            cur = decode_family(r)
            fams[cur["name"]] = cur
        else:
            assert rtype == 2 and cur is not None and not groups, "unexpected record type %d" % rtype
            cur["series"].append(decode_series(r, cur))
        assert r.pos == plen, "record not consumed"
        pos += 5 + plen
        n += 1
    assert pos == len(data) - 20 and n == count
    return fams, groups


def expected_samples(decoded):
    """What /metrics must show for decoded families and groups: {(sample name, labels): value}
    (summary quantiles left out, as scraped_samples does)."""
    fams, groups = decoded
    out = {}
    for g in groups:
        meta = dict({"instance": ""}, **dict(_LABEL.findall(g["key"])))
        out[("push_time_seconds", frozenset(meta.items()))] = g["push_time"]
        out[("push_failure_time_seconds", frozenset(meta.items()))] = g["failure_time"]
        for f in g["families"]:
            for text, v in f["series"]:
                lab = dict(_LABEL.findall(text))
                if f["type"] in ("histogram", "summary"):
                    out[(f["name"] + "_sum", frozenset(lab.items()))] = v[0]
                    out[(f["name"] + "_count", frozenset(lab.items()))] = v[1]
                    if f["type"] == "histogram":
                        for bound, c in zip(v[2::2], v[3::2]):
                            out[(f["name"] + "_bucket", frozenset(dict(lab, le=bound).items()))] = c
                else:
                    out[(f["name"], frozenset(lab.items()))] = v[0]
    for f in fams.values():
        for s in f["series"]:
            lab = dict(f["const"], **s["labels"])
            if f["type"] == "histogram":
                acc = 0
                for bound, c in zip(f["buckets"] + [float("inf")], s["buckets"]):
                    acc += c
                    out[(f["name"] + "_bucket", frozenset(dict(lab, le=bound).items()))] = acc
                out[(f["name"] + "_count", frozenset(lab.items()))] = acc
                out[(f["name"] + "_sum", frozenset(lab.items()))] = s["sum"]
            elif f["type"] == "summary":
                out[(f["name"] + "_count", frozenset(lab.items()))] = s["count"]
                out[(f["name"] + "_sum", frozenset(lab.items()))] = s["sum"]
            else:
                out[(f["name"], frozenset(lab.items()))] = s["value"]
    return out


_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scraped_samples(a):
    """The scrape's samples, but abacus's own and process_* (not persisted)."""
    _, text, _ = a.scrape()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or line.startswith(("abacus_", "process_")):
            continue
        m = _LINE.match(line)
        assert m, line
        lab = dict(_LABEL.findall(m.group(2) or ""))
        if "le" in lab:
            lab["le"] = float(lab["le"])
        if "quantile" in lab:
            continue  # summaries' estimates: covered by the unit tests
        out[(m.group(1), frozenset(lab.items()))] = float(m.group(3))
    return out


def assert_same(want, got, what):
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    diff = [(k, want[k], got[k]) for k in want if k in got and want[k] != got[k]]
    assert not missing and not extra and not diff, "%s: missing %s, extra %s, different %s" % (
        what, missing[:5], extra[:5], diff[:5])


# ---- helpers ---------------------------------------------------------------------------------

def start(snap, interval, statsd):
    a = harness.Abacus(config=CONFIG, statsd=statsd,
                       args=["--persistence.file=" + snap, "--persistence.interval=" + interval])
    return a.__enter__()


def traffic(a, stop, round_no):
    """Heavy StatsD updates until stop is set."""
    i = 0
    while not stop.is_set():
        lines = []
        for k in range(40):
            j = i * 40 + k
            lines += ["jobs.q%d:1|c" % (j % 5), "req.r%d.total:%d|c" % (j % 50, j % 3 + 1),
                      "temp.t%d:%d|g" % (j % 20, j + round_no), "lat.l%d:%d|ms" % (j % 10, j % 900),
                      "size.s%d:%g|h" % (j % 5, (j % 70) / 10.0)]
        try:
            a.send_udp("\n".join(lines))
        except OSError:
            return  # killed
        i += 1


def push(a, method, path, body):
    return a.request(method, "/metrics/" + path, body=body.encode()).status


def push_traffic(a, stop, round_no):
    """Heavy pushes (PUT and POST, eight groups) until stop is set."""
    i = 0
    while not stop.is_set():
        body = ("# HELP load_level Level.\n# TYPE load_level gauge\nload_level{worker=\"w%d\"} %d\n"
                "# HELP load_done_total Done.\n# TYPE load_done_total counter\n"
                "load_done_total %d\n"
                "# HELP load_seconds Time.\n# TYPE load_seconds histogram\nload_seconds_bucket{le=\"1\"} %d\n"
                "load_seconds_bucket{le=\"+Inf\"} %d\nload_seconds_sum %g\n"
                "load_seconds_count %d\n") % (i % 3, i + round_no, i, i, 2 * i, i / 8.0, 2 * i)
        try:
            push(a, "POST" if i % 3 else "PUT", "job/load/shard/%d" % (i % 8), body)
        except Exception:  # killed: refused or reset
            return
        i += 1


def writes(a):
    return a.value("abacus_persistence_writes_total", {"outcome": "success"}) or 0


# ---- tests -----------------------------------------------------------------------------------

def test_kill9_restores_last_snapshot(d):
    snap = os.path.join(d, "snapshot")
    for round_no in range(3):
        a = start(snap, "200ms", statsd=True)
        stop = threading.Event()
        ts = [threading.Thread(target=fn, args=(a, stop, round_no), daemon=True)
              for fn in (traffic, push_traffic)]
        for t in ts:
            t.start()
        try:
            harness.wait_until(lambda: writes(a) >= 3, "three snapshots under traffic")
            w = writes(a)
            harness.wait_until(lambda: writes(a) > w, "one more snapshot")
            a.proc.send_signal(signal.SIGKILL)  # while the writer and the traffic run
            a.proc.wait()
        finally:
            stop.set()
            for t in ts:
                t.join()
            a.cleanup()
        with open(snap, "rb") as f:
            decoded = decode(f.read())
        fams, groups = decoded
        assert "jobs_total" in fams and "temp_t3" in fams and "lat_l3" in fams, sorted(fams)
        assert any(g["key"].startswith('job="load"') for g in groups), groups[:3]
        want = expected_samples(decoded)
        b = start(snap, "0", statsd=False)
        try:
            b.wait_log(r"snapshot loaded")
            assert_same(want, scraped_samples(b), "round %d after kill -9" % round_no)
        finally:
            b.__exit__(None, None, None)  # SIGTERM: writes the restored state again
        with open(snap, "rb") as f:
            assert_same(want, expected_samples(decode(f.read())), "rewritten at SIGTERM")


def test_sigterm_writes_final_snapshot(d):
    snap = os.path.join(d, "snapshot")
    a = start(snap, "1h", statsd=True)
    try:
        for i in range(200):
            a.send_udp("jobs.final:1|c\nfinal.level:%d|g\nfinal.hist:%g|h" % (i, i / 100.0))
        harness.wait_until(lambda: a.value("jobs_total", {"queue": "final"}) == 200,
                           "200 counts applied")
        harness.wait_until(lambda: a.value("final_hist_count") == 200, "200 observations")
        before = scraped_samples(a)
    finally:
        a.__exit__(None, None, None)
    assert "final snapshot written" in a.log_text()
    with open(snap, "rb") as f:
        want = expected_samples(decode(f.read()))
    assert_same(want, before, "final snapshot vs last scrape")
    b = start(snap, "1h", statsd=False)
    try:
        assert_same(want, scraped_samples(b), "restored after SIGTERM")
        assert b.value("abacus_persistence_restored_series") == len(
            [k for k in want if not k[0].endswith(("_bucket", "_count", "_sum"))]) + 1
    finally:
        b.__exit__(None, None, None)


def same_groups(restored, saved):
    """restored equals saved, but for family times: restored as their group's push time."""
    want = [dict(g, families=[dict(f, time=g["push_time"]) for f in g["families"]])
            for g in saved]
    assert restored == want, "groups differ:\n%r\n%r" % (restored, want)


ODD = 'x"y\\z\nw'  # every escaped character in a grouping key value


def test_pushed_groups_survive_restart(d):
    snap = os.path.join(d, "snapshot")
    a = start(snap, "1h", statsd=False)
    odd = "job/odd/a@base64/" + base64.urlsafe_b64encode(ODD.encode()).decode()
    try:
        assert push(a, "PUT", "job/batch", (
            "# HELP batch_last_success Last success.\n# TYPE batch_last_success gauge\n"
            "batch_last_success 1.7e+09\n"
            "# HELP batch_records_total Records.\n# TYPE batch_records_total counter\nbatch_records_total{step=\"load\"} 0.1\n"
            "batch_records_total{step=\"\u00e9\"} 1e300\n"
            "# HELP batch_misc Untyped.\nbatch_misc{x=\"1\"} -0.3333333333333333\n"
            "# HELP batch_seconds Duration.\n# TYPE batch_seconds histogram\n"
            "batch_seconds_bucket{le=\"0.5\"} 2\nbatch_seconds_bucket{le=\"1\"} 5\n"
            "batch_seconds_bucket{le=\"+Inf\"} 7\nbatch_seconds_sum 12.75\n"
            "batch_seconds_count 7\n"
            "# HELP batch_latency Latency.\n# TYPE batch_latency summary\nbatch_latency{quantile=\"0.5\"} 0.3\n"
            "batch_latency{quantile=\"0.99\"} 0.9\nbatch_latency_sum 3.25\n"
            "batch_latency_count 9\n")) == 200
        assert push(a, "POST", "job/batch", "# HELP batch_last_success Last success.\n"
                    "# TYPE batch_last_success gauge\nbatch_last_success 1.8e+09\n") == 200
        assert push(a, "PUT", odd, "# HELP batch_last_success Last success.\n"
                    "# TYPE batch_last_success gauge\nbatch_last_success{kind=\"a\"} 2\n") == 200
        # A counter where the name is a gauge elsewhere: refused, its failure time recorded.
        bad = "# HELP batch_last_success Last success.\n# TYPE batch_last_success counter\nbatch_last_success 1\n"
        assert push(a, "PUT", odd, bad) == 400
        assert push(a, "PUT", "job/failonly/instance/h1", bad) == 400
        before = scraped_samples(a)
    finally:
        a.__exit__(None, None, None)
    with open(snap, "rb") as f:
        decoded = decode(f.read())
    groups = decoded[1]
    assert [g["key"] for g in groups] == [
        'a="x\\"y\\\\z\\nw",job="odd"', 'instance="h1",job="failonly"', 'job="batch"'], groups
    assert groups[0]["push_time"] > 0 and groups[0]["failure_time"] > 0, groups[0]
    assert groups[1]["push_time"] == 0 and groups[1]["failure_time"] > 0, groups[1]
    assert groups[1]["families"] == [], groups[1]
    batch = {f["name"]: f for f in groups[2]["families"]}
    assert batch["batch_last_success"]["help"] == "Last success.", batch
    assert batch["batch_misc"]["time"] < groups[2]["push_time"], batch  # the POST was later
    want = expected_samples(decoded)
    assert_same(want, before, "final snapshot vs last scrape")
    b = start(snap, "1h", statsd=False)
    try:
        b.wait_log(r"snapshot loaded")
        assert_same(want, scraped_samples(b), "restored after SIGTERM")
    finally:
        b.__exit__(None, None, None)
    with open(snap, "rb") as f:
        same_groups(decode(f.read())[1], groups)


def test_bad_files_refused(d):
    snap = os.path.join(d, "good")
    a = start(snap, "0", statsd=True)
    try:
        a.send_udp("jobs.x:5|c\ng:1|g")
        harness.wait_until(lambda: a.value("g") == 1, "updates applied")
    finally:
        a.__exit__(None, None, None)
    with open(snap, "rb") as f:
        good = f.read()
    future = bytearray(good)
    future[16] = 2
    future[-4:] = struct.pack("<I", zlib.crc32(bytes(future[:-4])))
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    cases = {
        "truncated": (good[:len(good) // 2], "truncated or torn"),
        "flipped": (bytes(flipped), "checksum mismatch"),
        "foreign": (b"# HELP x y\nx 1\n", "not an abacus snapshot"),
        "future": (bytes(future), "unsupported format version 2"),
    }
    for name, (data, reason) in cases.items():
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        b = start(path, "0", statsd=False)
        try:
            line = b.wait_log(r"snapshot refused")
            assert path in line and reason in line, line
            assert b.value("abacus_persistence_load_failures_total") == 1
            assert b.value("jobs_total", {"queue": "x"}) is None  # nothing applied
            assert not os.path.exists(path)
            with open(path + ".corrupt", "rb") as f:
                assert f.read() == data
        finally:
            b.__exit__(None, None, None)
        with open(path, "rb") as f:
            decode(f.read())  # the shutdown wrote a good one in its place


def main():
    tests = [test_kill9_restores_last_snapshot, test_sigterm_writes_final_snapshot,
             test_pushed_groups_survive_restart, test_bad_files_refused]
    for t in tests:
        d = tempfile.mkdtemp(prefix="abacus-persist-")
        try:
            t(d)
            print("ok", t.__name__)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
