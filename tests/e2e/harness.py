"""harness.py - shared helpers for abacus end-to-end tests.

Starts the real binary (env ABACUS_BIN) on a free loopback port, waits for /-/ready by
polling, scrapes and validates every scrape, and stops it with SIGTERM asserting exit 0.

Every text-format scrape goes through `promtool check metrics` and a strict structural check
(each family's lines together, one HELP and TYPE each, no series twice); every OpenMetrics
scrape through prometheus_client's OpenMetrics parser (promtool does not read OpenMetrics).
Tests wait for conditions by polling with a deadline (wait_until), never by fixed sleeps.
Missing tools (promtool, prometheus, prometheus_client) fail the tests: CI installs them.
"""

import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def _ensure_prometheus_client():
    """Debian's python3-prometheus-client lives in the system interpreter; a python3 found
    first on PATH (pyenv, venv) may lack it. Re-run the test under /usr/bin/python3 then."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        system = "/usr/bin/python3"
        if (os.path.exists(system) and not os.environ.get("ABACUS_E2E_REEXEC")
                and os.path.isfile(sys.argv[0])
                and os.path.realpath(sys.executable) != os.path.realpath(system)):
            os.environ["ABACUS_E2E_REEXEC"] = "1"
            sys.stdout.flush()
            os.execv(system, [system] + sys.argv)
        raise


_ensure_prometheus_client()

from prometheus_client.openmetrics import parser as om_parser  # noqa: E402
from prometheus_client import parser as text_parser  # noqa: E402

TEXT_CT = "text/plain; version=0.0.4; charset=utf-8"
OM_CT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
OM_ACCEPT = "application/openmetrics-text; version=1.0.0"

DEFAULT_TIMEOUT = 20.0


def binary():
    b = os.environ.get("ABACUS_BIN")
    if not b or not os.access(b, os.X_OK):
        raise AssertionError("ABACUS_BIN must name the abacus binary (got %r)" % b)
    return b


def tool(name):
    path = shutil.which(name) or ("/usr/bin/" + name if os.path.exists("/usr/bin/" + name)
                                  else None)
    if not path:
        raise AssertionError("%s is required for the end-to-end tests but is not installed"
                             % name)
    return path


def wait_until(cond, what, timeout=DEFAULT_TIMEOUT, interval=0.02):
    """Poll cond() until it returns a truthy value; return it. Fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except (OSError, http.client.HTTPException) as e:
            last_exc = e
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s%s" % (
                timeout, what, " (last error: %r)" % last_exc if last_exc else ""))
        time.sleep(interval)


def have_ipv6():
    """Whether the kernel has IPv6 (an ::1 socket can be bound)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port_all(kind=socket.SOCK_STREAM):
    """A port that was free a moment ago on every interface: for an all-interface listener
    (":PORT"), dual-stack [::] when the kernel has IPv6, else 0.0.0.0."""
    if have_ipv6():
        s = socket.socket(socket.AF_INET6, kind)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        addr = ("::", 0)
    else:
        s = socket.socket(socket.AF_INET, kind)
        addr = ("0.0.0.0", 0)
    try:
        s.bind(addr)
        return s.getsockname()[1]
    finally:
        s.close()


def free_port(kind=socket.SOCK_STREAM):
    """A port that was free a moment ago on 127.0.0.1 (for programs that cannot take :0)."""
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        """The value of a header (first one), or None. Case-insensitive."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self):
        return self.body.decode("utf-8")


def http_request(host, port, method, path, headers=None, body=None, timeout=DEFAULT_TIMEOUT):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.getheaders(), data)
    finally:
        conn.close()


# A kept-alive readiness request for raw_request: what a test sends to see the server answer
# on a connection it holds.
READY_REQUEST = "GET /-/ready HTTP/1.1\r\nHost: x\r\n\r\n"


def raw_request(sock, text):
    """Send one HTTP/1.1 request on an open socket; return (status, headers, body) of the
    response (Content-Length framed, as abacus answers /-/ready)."""
    sock.sendall(text.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("connection closed before a response: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in
               (x.split(":", 1) for x in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:n]


# ---- exposition checks ------------------------------------------------------------------------

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+\S+)?$')
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created", "_info")


def _family_of(sample, typed):
    if sample in typed:
        return sample
    for suf in _SUFFIXES:
        if sample.endswith(suf) and sample[:-len(suf)] in typed:
            return sample[:-len(suf)]
    return sample


def check_text_structure(text):
    """The text-format contract beyond promtool: every family's lines together, one HELP and
    one TYPE each (before its samples), no sample (name + labels) twice."""
    assert text.endswith("\n") or text == "", "output must end with a newline"
    help_seen, type_seen, done, seen = set(), {}, set(), set()
    current = None
    for ln, line in enumerate(text.splitlines(), 1):
        if not line:
            raise AssertionError("line %d: empty line" % ln)
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            name = parts[2]
            kind = parts[1]
            assert name not in done, "line %d: family %s split up" % (ln, name)
            if current is not None and current != name:
                done.add(current)
            current = name
            if kind == "HELP":
                assert name not in help_seen, "line %d: second HELP for %s" % (ln, name)
                help_seen.add(name)
            else:
                assert name not in type_seen, "line %d: second TYPE for %s" % (ln, name)
                type_seen[name] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        assert m, "line %d: not a sample: %r" % (ln, line)
        fam = _family_of(m.group(1), type_seen)
        if fam != current:
            assert fam not in done, "line %d: family %s split up" % (ln, fam)
            if current is not None:
                done.add(current)
            current = fam
        key = (m.group(1), m.group(2) or "")
        assert key not in seen, "line %d: duplicate series %s%s" % (ln, key[0], key[1])
        seen.add(key)


def promtool_check(text):
    """promtool's exit 3 means lint problems only. Those are defects in abacus's own metrics
    (abacus_*, process_*), but names and help of metrics that clients pushed or sent are
    theirs to choose (a pushed counter without _total, a family without HELP): lint lines
    about those are accepted."""
    p = subprocess.run([tool("promtool"), "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if p.returncode == 3:
        own = [ln for ln in p.stdout.decode(errors="replace").splitlines()
               if ln.strip() and ln.split()[0].startswith(("abacus_", "process_"))]
        if not own:
            return
    if p.returncode != 0:
        raise AssertionError("promtool check metrics failed (%d):\n%s\n--- input ---\n%s" % (
            p.returncode, p.stdout.decode(errors="replace"), text[:4000]))


def parse_text(text):
    """Validate a text-format scrape completely; return {name: family} (prometheus_client)."""
    check_text_structure(text)
    promtool_check(text)
    return {f.name: f for f in text_parser.text_string_to_metric_families(text)}


def parse_openmetrics(text):
    """Validate an OpenMetrics scrape with the strict parser; return {name: family}."""
    assert text.endswith("# EOF\n"), "OpenMetrics output must end with # EOF"
    return {f.name: f for f in om_parser.text_string_to_metric_families(text)}


def sample_value(families, name, labels=None):
    """The value of sample `name` with exactly `labels`, or None."""
    for fam in families.values():
        for s in fam.samples:
            if s.name == name and (labels is None or dict(s.labels) == labels):
                return s.value
    return None


# ---- the process -------------------------------------------------------------------------------

class Abacus:
    """One abacus process. Use as a context manager or call start()/stop().

    config: YAML text written to <tmpdir>/abacus.yml and passed with --config.file.
    args: extra flags (later ones win). statsd: False passes empty StatsD listen addresses
    (no listeners); True listens for UDP and TCP on 127.0.0.1 port 0 and, once ready, reads
    the bound addresses from the "statsd listener started" log lines into self.statsd
    ({"udp": (host, port), "tcp": (host, port)}) for send_udp/send_tcp.
    """

    def __init__(self, args=(), config=None, lifecycle=False, statsd=False, cwd=None,
                 pass_config_flag=True, env=None):
        self.tmp = tempfile.mkdtemp(prefix="abacus-e2e-")
        self.cwd = cwd or self.tmp
        self.config_path = os.path.join(self.tmp, "abacus.yml")
        if config is not None:
            self.write_config(config)
        # Port 0 and the address from the "listening" log line, which is at info level:
        # with a quieter level, fall back to a port that was free a moment ago.
        quiet = any(re.match(r"--log\.level=(warn|error)$", x) for x in args)
        self.port_hint = free_port() if quiet else 0
        self.args = ["--web.listen-address=127.0.0.1:%d" % self.port_hint]
        if config is not None and pass_config_flag:
            self.args.append("--config.file=" + self.config_path)
        if lifecycle:
            self.args.append("--web.enable-lifecycle")
        self.want_statsd = statsd
        self.statsd = {}
        if statsd:
            self.args += ["--statsd.listen-udp=127.0.0.1:0", "--statsd.listen-tcp=127.0.0.1:0"]
        else:
            self.args += ["--statsd.listen-udp=", "--statsd.listen-tcp="]
        self.args += list(args)
        self.env = env  # extra environment variables for the process (None: inherit only)
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self.lines = []
        self._cond = threading.Condition()
        self._reader = None

    def write_config(self, text, path=None):
        path = path or self.config_path
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)  # atomic: a concurrent reload sees old or new, never half

    # -- lifecycle --

    def start(self, wait_ready=True):
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen([binary()] + self.args, cwd=self.cwd,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        listen = [x for x in self.args if x.startswith("--web.listen-address=")][-1]
        if self.port_hint and listen.endswith(":%d" % self.port_hint):
            self.port = self.port_hint
        else:
            line = self.wait_log(r"listening", timeout=DEFAULT_TIMEOUT)
            m = re.search(r'address"?[=:]"?(?:\[([0-9a-f:.]+)\]|([0-9.]+)):(\d+)', line)
            assert m, "no address in %r" % line
            self.host = m.group(1) or m.group(2)
            self.port = int(m.group(3))
        if wait_ready:
            wait_until(lambda: self.get("/-/ready").status == 200, "abacus /-/ready")
        if self.want_statsd:
            self.wait_log(r"statsd listener started")
            rx = re.compile(r'listener"?[=:]"?(\w+)"?.*address"?[=:]"?'
                            r'(?:\[([0-9a-f:.]+)\]|([0-9.]+)):(\d+)')
            with self._cond:
                for line in self.lines:
                    m = rx.search(line) if "statsd listener started" in line else None
                    if m:
                        self.statsd[m.group(1)] = (m.group(2) or m.group(3), int(m.group(4)))
        return self

    def send_udp(self, data):
        """Send one datagram (bytes or str) to the StatsD UDP listener."""
        if isinstance(data, str):
            data = data.encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(data, self.statsd["udp"])

    def send_tcp(self, data):
        """Send bytes (or str) over one TCP connection to the StatsD TCP listener."""
        if isinstance(data, str):
            data = data.encode()
        with socket.create_connection(self.statsd["tcp"], timeout=DEFAULT_TIMEOUT) as s:
            s.sendall(data)

    def _read_stderr(self):
        for raw in self.proc.stderr:
            with self._cond:
                self.lines.append(raw.decode("utf-8", errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_log(self, pattern, timeout=DEFAULT_TIMEOUT, start=0):
        """The first stderr line (from index start) matching pattern; fails on timeout or if
        the process exits first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return self.lines[i]
                    i += 1
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError("abacus exited (%s) before logging %r:\n%s" % (
                        self.proc.returncode, pattern, "\n".join(self.lines)))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no log line matching %r within %.0fs:\n%s" % (
                        pattern, timeout, "\n".join(self.lines)))
                self._cond.wait(min(left, 0.2))

    def log_text(self):
        with self._cond:
            return "\n".join(self.lines)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def pause(self):
        """SIGSTOP, then wait until every thread is stopped (kill() returns before they
        are): from then on nothing is read from a socket until resume()."""
        self.proc.send_signal(signal.SIGSTOP)

        def all_stopped():
            for tid in os.listdir("/proc/%d/task" % self.proc.pid):
                try:
                    with open("/proc/%d/task/%s/stat" % (self.proc.pid, tid)) as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                except OSError:
                    continue  # a thread that just ended
                if state not in ("T", "t"):
                    return False
            return True
        wait_until(all_stopped, "every thread of abacus stopped")

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, expect_rc=0, timeout=30):
        """SIGTERM, wait, assert the exit code. Returns it."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("abacus did not exit within %ds of SIGTERM" % timeout)
        if self._reader:
            self._reader.join(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        if expect_rc is not None:
            assert rc == expect_rc, "abacus exited %d, want %d; log:\n%s" % (
                rc, expect_rc, self.log_text())
        return rc

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.stop()
        finally:
            self.cleanup()

    # -- HTTP --

    def request(self, method, path, headers=None, body=None):
        return http_request(self.host, self.port, method, path, headers, body)

    def get(self, path, headers=None):
        return self.request("GET", path, headers)

    def scrape(self, openmetrics=False, gzip_ok=False, path="/metrics"):
        """GET the telemetry path, check headers and validate the body; returns
        (families, text, response)."""
        h = {}
        if openmetrics:
            h["Accept"] = OM_ACCEPT
        if gzip_ok:
            h["Accept-Encoding"] = "gzip"
        r = self.get(path, h)
        assert r.status == 200, "scrape: HTTP %d: %r" % (r.status, r.body[:300])
        assert r.header("Content-Type") == (OM_CT if openmetrics else TEXT_CT), r.headers
        assert "Accept-Encoding" in (r.header("Vary") or ""), r.headers
        body = r.body
        if gzip_ok:
            assert r.header("Content-Encoding") == "gzip", r.headers
            body = gzip.decompress(body)
        else:
            assert r.header("Content-Encoding") is None, r.headers
        text = body.decode("utf-8")
        fams = parse_openmetrics(text) if openmetrics else parse_text(text)
        return fams, text, r

    def value(self, name, labels=None, openmetrics=False, path="/metrics"):
        fams, _, _ = self.scrape(openmetrics=openmetrics, path=path)
        return sample_value(fams, name, labels)


def sanitizer():
    """"thread" or "address" when ABACUS_BIN is a sanitizer build, else None: memory figures
    of such a build say nothing about the real one."""
    with open(binary(), "rb") as f:
        data = f.read()
    if b"__tsan_init" in data:
        return "thread"
    if b"__asan_init" in data:
        return "address"
    return None


def proc_status_kib(pid, field):
    """A kB figure of /proc/<pid>/status (VmRSS, VmHWM, ...), or None once the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def open_fds(pid):
    """How many descriptors process pid has open."""
    return len(os.listdir("/proc/%d/fd" % pid))


def run(args, cwd=None, timeout=60):
    """Run the binary to completion (for --check-config, --help, ...): (rc, stdout, stderr)."""
    p = subprocess.run([binary()] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---- real peers: Prometheus, the Pushgateway ---------------------------------------------------

class PeerServer:
    """A server of the Prometheus family on loopback, in its own process group, logging to a
    file in a throwaway directory; ready when GET /-/ready answers 200. Subclasses give its
    binary, name and command line. Use as a context manager or call start()/stop()."""

    binary = name = None

    def __init__(self, prefix):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"
        self.log_path = os.path.join(self.tmp, self.name.lower() + ".log")

    def command(self, binary):
        raise NotImplementedError

    def start(self):
        binary = tool(self.binary)
        for attempt in range(3):  # the free port may be taken again before it binds
            self.port = free_port()
            with open(self.log_path, "w") as log:
                self.proc = subprocess.Popen(
                    self.command(binary), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                wait_until(lambda: self.proc.poll() is not None or self._ready(),
                           "%s /-/ready" % self.name, timeout=60)
            except AssertionError:
                self.stop()
                raise
            if self.proc.poll() is None:
                return self
            if "address already in use" not in self.log() or attempt == 2:
                raise AssertionError("%s exited (%s):\n%s" % (self.name, self.proc.returncode,
                                                              self.log()))
        return self

    def _ready(self):
        try:
            return self.get("/-/ready").status == 200
        except (OSError, http.client.HTTPException):
            return False

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def request(self, method, path, headers=None, body=None):
        return http_request(self.host, self.port, method, path, headers, body)

    def get(self, path, headers=None):
        return self.request("GET", path, headers)

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, exc_type, exc, tb):
        self.cleanup()


class Prometheus(PeerServer):
    """A Prometheus server with a throwaway TSDB. config: the prometheus.yml text; default:
    one job "abacus" scraping target every 1s."""

    binary, name = "prometheus", "Prometheus"

    def __init__(self, target, config=None):
        super().__init__("abacus-prom-")
        self.cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(self.cfg, "w") as f:
            f.write(config or (
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: abacus\n    static_configs:\n"
                "      - targets: ['%s']\n" % target))

    def command(self, binary):
        return [binary, "--config.file=" + self.cfg,
                "--web.listen-address=127.0.0.1:%d" % self.port,
                "--storage.tsdb.path=" + os.path.join(self.tmp, "data")]

    def api(self, path, **params):
        """GET /api/v1/<path>; the "data" of a successful answer. A 4xx (an expression that
        does not evaluate) fails with Prometheus's message."""
        url = "http://127.0.0.1:%d/api/v1/%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                doc = json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError("%s: %s" % (url, e.read().decode(errors="replace")))
        assert doc["status"] == "success", doc
        return doc["data"]


class Pushgateway(PeerServer):
    """Prometheus's Pushgateway (the reference for abacus's push API), in memory only
    (--persistence.file= : the Debian default would read and write /var/lib). args: extra
    flags."""

    binary, name = "prometheus-pushgateway", "Pushgateway"

    def __init__(self, args=()):
        super().__init__("abacus-pgw-")
        self.args = list(args)

    def command(self, binary):
        return [binary, "--web.listen-address=127.0.0.1:%d" % self.port, "--persistence.file=",
                "--log.level=warn"] + self.args
