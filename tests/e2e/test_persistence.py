"""test_persistence.py - persistence end to end (--persistence.file, --persistence.interval).

(a) Heavy StatsD traffic (counters, gauges, timers and histograms, a declared counter) with
    snapshots every 200 ms, SIGKILL while they are being written: the file on disk is the last
    completed snapshot; decoded by the reader below (README "Persistence" format), it must
    equal exactly what a restarted abacus (no traffic) serves. Several rounds, each building
    on the restored state.
(b) A truncated, bit-flipped, foreign or future-version file: abacus starts, logs the refusal
    with the file and the reason, renames the file to <file>.corrupt and serves /metrics.
(c) SIGTERM writes a final snapshot equal to the last scrape; a restart restores it exactly.
"""

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


def decode(data):
    """{family name: family} from a snapshot's bytes; fails on anything malformed."""
    assert data[:16] == b"ABACUS-SNAPSHOT\n", "bad magic"
    version, flags, _written = struct.unpack("<IIQ", data[16:32])
    assert version == 1 and flags == 0
    assert data[-20:-12] == b"SNAP-END", "no trailer"
    count, crc = struct.unpack("<QI", data[-12:])
    assert zlib.crc32(data[:-4]) == crc, "crc mismatch"
    fams, cur, pos, n = {}, None, 32, 0
    while pos < len(data) - 20:
        rtype, plen = struct.unpack("<BI", data[pos:pos + 5])
        r = Reader(data[pos + 5:pos + 5 + plen])
        if rtype == 1:
            cur = decode_family(r)
            fams[cur["name"]] = cur
        else:
            assert rtype == 2 and cur is not None, "unexpected record type %d" % rtype
            cur["series"].append(decode_series(r, cur))
        assert r.pos == plen, "record not consumed"
        pos += 5 + plen
        n += 1
    assert pos == len(data) - 20 and n == count
    return fams


def expected_samples(fams):
    """What /metrics must show for the decoded families: {(sample name, labels): value}."""
    out = {}
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


def writes(a):
    return a.value("abacus_persistence_writes_total", {"outcome": "success"}) or 0


# ---- tests -----------------------------------------------------------------------------------

def test_kill9_restores_last_snapshot(d):
    snap = os.path.join(d, "snapshot")
    for round_no in range(3):
        a = start(snap, "200ms", statsd=True)
        stop = threading.Event()
        t = threading.Thread(target=traffic, args=(a, stop, round_no), daemon=True)
        t.start()
        try:
            harness.wait_until(lambda: writes(a) >= 3, "three snapshots under traffic")
            w = writes(a)
            harness.wait_until(lambda: writes(a) > w, "one more snapshot")
            a.proc.send_signal(signal.SIGKILL)  # while the writer and the traffic run
            a.proc.wait()
        finally:
            stop.set()
            t.join()
            a.cleanup()
        with open(snap, "rb") as f:
            fams = decode(f.read())
        assert "jobs_total" in fams and "temp_t3" in fams and "lat_l3" in fams, sorted(fams)
        want = expected_samples(fams)
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
             test_bad_files_refused]
    for t in tests:
        d = tempfile.mkdtemp(prefix="abacus-persist-")
        try:
            t(d)
            print("ok", t.__name__)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
