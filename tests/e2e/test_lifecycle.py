"""test_lifecycle.py - start-up and shutdown as README promises them:

- `/-/ready` answers 503 until the configuration is applied and the listeners are up: the
  StatsD Unix socket's bind() is held by a small LD_PRELOAD shim (built here with cc) while the
  HTTP server already answers; released, /-/ready turns 200.
- `/-/ready` answers 503 again while stopping: a request in flight (a reload whose body is
  not complete, confirmed by the server's `100 Continue`) keeps the HTTP server draining after
  SIGTERM; an idle kept-alive connection then asks /-/ready (503), new connections are refused,
  and the in-flight request still completes before the process exits 0.
- SIGTERM reads what is already queued: with the process stopped (SIGSTOP), 210 datagrams
  wait in the UDP socket's receive queue (checked in /proc/PID/net/udp, no kernel drop), then
  SIGTERM and SIGCONT; the last ten (each refused with its own logged metric name) are logged
  before the process exits. One reader reads its queue in order, so the last ones read means
  all were.
- The Unix socket file: a stale one (nobody receiving) is replaced, a live one (another
  process receiving on it) refused with exit 1, and the file is removed on exit.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, READY_REQUEST, raw_request, wait_until  # noqa: E402

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* bind() of a Unix socket at PATH waits while PATH.hold exists (after creating PATH.held). */
int bind(int fd, const struct sockaddr *sa, socklen_t len) {
    int (*real)(int, const struct sockaddr *, socklen_t) =
        (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    if (sa && sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *su = (const struct sockaddr_un *)sa;
        char hold[256], held[256];
        snprintf(hold, sizeof hold, "%.200s.hold", su->sun_path);
        snprintf(held, sizeof held, "%.200s.held", su->sun_path);
        if (access(hold, F_OK) == 0) {
            int h = open(held, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
            if (h >= 0)
                close(h);
            struct timespec ts = {0, 10 * 1000 * 1000};
            while (access(hold, F_OK) == 0)
                nanosleep(&ts, NULL);
        }
    }
    return real(fd, sa, len);
}
"""


def build_shim(directory):
    src = os.path.join(directory, "hold_bind.c")
    lib = os.path.join(directory, "hold_bind.so")
    with open(src, "w") as f:
        f.write(SHIM)
    cc = harness.tool("cc")
    p = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", lib, src, "-ldl"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert p.returncode == 0, p.stdout.decode(errors="replace")
    return lib


def preload_env(lib):
    # A sanitizer runtime linked as a shared library wants to come first in the library
    # list; the shim before it is harmless (it only forwards bind).
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"LD_PRELOAD": lib, "ASAN_OPTIONS": (asan + " verify_asan_link_order=0").strip()}


class Readiness(unittest.TestCase):
    def test_503_until_the_listeners_are_up(self):
        tmp = tempfile.mkdtemp(prefix="abacus-shim-")
        try:
            lib = build_shim(tmp)
            path = os.path.join(tmp, "statsd.sock")
            open(path + ".hold", "w").close()
            a = Abacus(args=["--statsd.listen-unixgram=" + path], env=preload_env(lib))
            try:
                a.start(wait_ready=False)  # returns once the HTTP server logged its address
                wait_until(lambda: os.path.exists(path + ".held"),
                           "the Unix socket's bind to be held", timeout=60)
                r = a.get("/-/ready")
                self.assertEqual((r.status, r.body), (503, b"Service Unavailable\n"))
                self.assertEqual(a.request("HEAD", "/-/ready").status, 503)
                self.assertEqual(a.get("/-/healthy").status, 200)  # alive, just not ready
                self.assertNotRegex(a.log_text(), r"msg=ready\b")
                os.remove(path + ".hold")
                wait_until(lambda: a.get("/-/ready").status == 200, "/-/ready 200 after bind",
                           timeout=60)
                a.wait_log(r"msg=ready\b")
                self.assertEqual(a.get("/-/ready").body, b"OK\n")
                a.stop()
            finally:
                a.cleanup()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_503_while_stopping(self):
        a = Abacus(lifecycle=True, config="metrics: []\n")
        try:
            a.start()
            idle = socket.create_connection((a.host, a.port), timeout=30)
            busy = socket.create_connection((a.host, a.port), timeout=30)
            try:
                self.assertEqual(raw_request(idle, READY_REQUEST)[0], 200)  # kept alive
                # a reload whose body is still coming: in flight once the handler ran, which
                # the server confirms with 100 Continue
                busy.sendall(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                             b"Expect: 100-continue\r\n\r\n")
                got = b""
                while b"\r\n\r\n" not in got:
                    chunk = busy.recv(4096)
                    self.assertTrue(chunk, "closed before 100 Continue")
                    got += chunk
                self.assertRegex(got, rb"^HTTP/1\.1 100 ")
                a.signal(signal.SIGTERM)
                # 1, or 2 when SIGTERM lands between the client reading the /-/ready response
                # and MHD's completion notification for it (seen on a loaded machine); that
                # request ends on its own, and the drain's end below shows nothing else is left
                a.wait_log(r'msg="waiting for in-flight requests" requests=[12]$')
                status, _, body = raw_request(idle, READY_REQUEST)
                self.assertEqual((status, body), (503, b"Service Unavailable\n"))
                # no new connections while draining
                with self.assertRaises(OSError):
                    c = socket.create_connection((a.host, a.port), timeout=5)
                    try:
                        c.sendall(READY_REQUEST.encode())
                        if not c.recv(1):
                            raise ConnectionResetError("closed")
                    finally:
                        c.close()
                self.assertIsNone(a.proc.poll())  # still draining
                # the request in flight completes, then the process exits 0
                busy.sendall(b"body")
                status, _, _ = raw_request(busy, "")
                self.assertEqual(status, 200)
            finally:
                idle.close()
                busy.close()
            self.assertEqual(a.proc.wait(timeout=60), 0)
            a.stop()
            self.assertNotIn("drain timed out", a.log_text())
        finally:
            a.cleanup()


class Drain(unittest.TestCase):
    def test_sigterm_reads_queued_datagrams(self):
        # 200 datagrams of 300 lines (8 KB) each: reading them takes the reader long enough
        # (about 0.1 ms a datagram, more in a sanitizer build) that SIGTERM's stop request
        # reaches it while most are still queued; then the ten markers
        filler, markers, lines = 200, 10, 300
        payload = b"\n".join([b"e2e_drain_filler_total:1|c"] * lines)
        a = Abacus(statsd=True, args=["--statsd.read-buffer=4194304"])
        try:
            a.start()
            pid = a.proc.pid
            port = a.statsd["udp"][1]
            a.pause()
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    for i in range(filler):
                        s.sendto(payload, a.statsd["udp"])
                    # refused (a negative increment after no scale: a parse error is only
                    # debug; a non-finite increment is logged at warn with the metric name)
                    for i in range(markers):
                        s.sendto(b"e2e_drain_m%d_total:NaN|c" % i, a.statsd["udp"])
                queued, drops = udp_queue(pid, port)
                self.assertEqual(drops, 0, "the kernel dropped datagrams: raise read-buffer")
                self.assertGreater(queued, 0)
                a.signal(signal.SIGTERM)
            finally:
                a.resume()
            a.stop()
            log = a.log_text()
            stop_at = log.index("msg=stopped")
            for i in range(markers):
                m = re.search(r'msg="statsd events refused" metric=e2e_drain_m%d_total '
                              r'type=counter reason=invalid_value' % i, log)
                self.assertIsNotNone(m, "marker %d (of the %d datagrams queued at SIGTERM) "
                                        "was not read:\n%s" % (i, filler + markers, log))
                self.assertLess(m.start(), stop_at)
        finally:
            a.cleanup()

    def test_sigterm_reads_a_long_queue(self):
        """README: "SIGTERM reads what is already queued before the process stops" (for at
        most 10 s). A queue far longer than one drain batch (6,000 datagrams of 20 lines,
        queued while stopped, no kernel drop) is read to its end: the last ten are logged.
        Each line creates a series (slower to read than an increment), so that the reader
        cannot empty the queue before the stop request reaches it. This failed while the
        drain stopped after 64 batches of 32 datagrams."""
        filler, markers = 5990, 10
        a = Abacus(statsd=True, args=["--statsd.read-buffer=16777216"])
        try:
            a.start()
            a.pause()
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    for i in range(filler):
                        s.sendto(b"\n".join(b"e2e_drain_f_total:1|c|#d:%d,l:%d" % (i, k)
                                            for k in range(20)), a.statsd["udp"])
                    for i in range(markers):
                        s.sendto(b"e2e_drain_m%d_total:NaN|c" % i, a.statsd["udp"])
                queued, drops = udp_queue(a.proc.pid, a.statsd["udp"][1])
                self.assertEqual(drops, 0)
                a.signal(signal.SIGTERM)
            finally:
                a.resume()
            a.stop()
            found = re.findall(r"metric=e2e_drain_m\d+_total", a.log_text())
            self.assertEqual(len(found), markers, "the last datagrams queued at SIGTERM "
                                                  "were not read")
        finally:
            a.cleanup()


def udp_queue(pid, port):
    """(bytes queued, drops) of process pid's UDP socket on port, from /proc/PID/net/udp."""
    with open("/proc/%d/net/udp" % pid) as f:
        next(f)
        for row in f:
            col = row.split()
            if int(col[1].rsplit(":", 1)[1], 16) == port:
                return int(col[4].split(":")[1], 16), int(col[-1])
    raise AssertionError("no UDP socket on port %d" % port)


class UnixSocketFile(unittest.TestCase):
    def test_stale_replaced_live_refused(self):
        tmp = tempfile.mkdtemp(prefix="abacus-unix-")
        try:
            path = os.path.join(tmp, "statsd.sock")
            # stale: a socket file whose owner is gone
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind(path)
            s.close()
            self.assertTrue(os.path.exists(path))
            a = Abacus(args=["--statsd.listen-unixgram=" + path])
            try:
                a.start()
                a.wait_log(r'statsd listener started" listener=unixgram')
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as c:
                    c.sendto(b"e2e_unix_total:3|c", path)
                wait_until(lambda: a.value("e2e_unix_total") == 3, "the line over the socket")
                a.stop()
            finally:
                a.cleanup()
            self.assertFalse(os.path.exists(path), "the socket file outlived the process")
            # live: another process (here: this one) receives on it
            live = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            live.bind(path)
            try:
                rc, _, err = harness.run(["--web.listen-address=127.0.0.1:0",
                                          "--statsd.listen-udp=", "--statsd.listen-tcp=",
                                          "--statsd.listen-unixgram=" + path], timeout=60)
                self.assertEqual(rc, 1, err)
                self.assertIn("is in use by another process", err)
                # the live socket still works: abacus neither removed nor replaced it
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as c:
                    c.sendto(b"still mine", path)
                live.settimeout(10)
                self.assertEqual(live.recv(100), b"still mine")
            finally:
                live.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
