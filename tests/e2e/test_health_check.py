"""test_health_check.py - `abacus --health-check=ADDRESS`, the image's HEALTHCHECK, against a
real abacus in each web config it may meet (plain, TLS, basic auth, client certificates) and
against listeners that are not healthy (none, silent, 503, not HTTP).
"""

import os
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_tls  # noqa: E402  (its PKI and web config helpers)


def probe(addr):
    """(exit code, the line printed) of a probe; the probe bounds its own time (2.5 s)."""
    r = subprocess.run([harness.binary(), "--health-check=" + addr], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return r.returncode, r.stdout.decode(errors="replace").strip()


def expect(addr, rc, words):
    got_rc, line = probe(addr)
    assert got_rc == rc and words in line, "%s: want %d %r, got %d %r" % (
        addr, rc, words, got_rc, line)


def test_plain():
    a = harness.Abacus()
    try:
        a.start()
        expect("127.0.0.1:%d" % a.port, 0, "healthy: HTTP 200")
        expect(":%d" % a.port, 0, "healthy: HTTP 200")  # wildcard: the loopback
        port = a.port
        a.stop()
        expect("127.0.0.1:%d" % port, 1, "unhealthy")
    finally:
        a.cleanup()


def with_web(d, text, want, ctx, auth=None):
    web = test_tls.write_web(d, text)
    with test_tls.start(web) as a:
        test_tls.wait_https(a, ctx, auth)
        expect("127.0.0.1:%d" % a.port, 0, want)


def test_web_configs(d):
    tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
    users = "basic_auth_users:\n  alice: %s\n" % test_tls.bcrypt(test_tls.PASSWORD)
    auth = test_tls.basic("alice", test_tls.PASSWORD)
    ctx = test_tls.client_ctx(d)
    with_web(d, tls, "healthy: HTTPS 200", ctx)
    with_web(d, tls + users, "healthy: HTTPS 401", ctx, auth)
    client = test_tls.client_ctx(d, "client")
    for extra in ("", "  max_version: TLS12\n"):
        with_web(d, tls + "  client_auth_type: RequireAndVerifyClientCert\n"
                 "  client_ca_file: ca.crt\n" + extra,
                 "healthy: the TLS listener wants a client certificate", client)
    # basic auth over plain HTTP
    web = test_tls.write_web(d, users)
    a = harness.Abacus(args=["--web.config.file=" + web])
    try:
        a.start(wait_ready=False)
        harness.wait_until(lambda: probe("127.0.0.1:%d" % a.port)[0] == 0, "the probe")
        expect("127.0.0.1:%d" % a.port, 0, "healthy: HTTP 401")
        a.stop()
    finally:
        a.cleanup()


class Listener:
    """A TCP listener on the loopback that answers each connection with `answer` (bytes, or
    None: read the request and say nothing until the client goes)."""

    def __init__(self, answer):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.conns = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            c.recv(4096)
            if self.answer is not None:
                c.sendall(self.answer)
                c.close()

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_unhealthy_listeners():
    for answer, words in ((b"HTTP/1.1 503 Service Unavailable\r\n\r\n", "HTTP 503"),
                          (b"SSH-2.0-OpenSSH\r\n", "unhealthy"),
                          (None, "unhealthy")):
        ln = Listener(answer)
        try:
            expect("127.0.0.1:%d" % ln.port, 1, words)
        finally:
            ln.close()
    expect("127.0.0.1", 1, "missing port")


def main():
    test_plain()
    print("ok test_plain")
    d = test_tls.make_pki()
    test_web_configs(d)
    print("ok test_web_configs")
    test_unhealthy_listeners()
    print("ok test_unhealthy_listeners")


if __name__ == "__main__":
    main()
