"""test_webconfig_check.py - `abacus --check-config --web.config.file=FILE` and
`promtool check web-config FILE` (Debian's Prometheus 2.42) agree on a table of valid and
invalid web config files: both accept the valid ones, both refuse the invalid ones. abacus
also names each problem's position (file:line:column). A certificate and key are made with
openssl at test time; the bcrypt hash in the table was made with crypt(3).

Not in the table, on purpose (README "Web config file" lists them): files promtool 2.42
refuses only because its toolkit is older (client_allowed_sans), and min_version above
max_version (promtool accepts it, abacus refuses it: no TLS version is left)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# A real bcrypt hash ($2y$, cost 4: the password "secret"); made once by crypt(3)
HASH = "$2y$04$PpO4g7/.HZJyW.8SA1Sx7eAhtI.aFY11se3CADFBGshqLXsgmwaqu"
TLS = "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"

# (name, file text, valid)
TABLE = [
    ("empty", "", True),
    ("tls", TLS, True),
    ("tls and every option",
     TLS + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: cert.pem\n"
     "  min_version: TLS12\n  max_version: TLS13\n"
     "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384]\n"
     "  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: false\n", True),
    ("old client_auth_type name", TLS + "  client_auth_type: RequireClientCert\n", True),
    ("verify without a CA file", TLS + "  client_auth_type: VerifyClientCertIfGiven\n", True),
    ("basic auth", "basic_auth_users:\n  alice: '%s'\n" % HASH, True),
    ("tls and basic auth", TLS + "basic_auth_users:\n  alice: '%s'\n" % HASH, True),
    ("headers",
     "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n"
     "    X-Content-Type-Options: nosniff\n    Strict-Transport-Security: max-age=63072000\n",
     True),
    ("missing key file", "tls_server_config:\n  cert_file: cert.pem\n  key_file: nokey.pem\n",
     False),
    ("missing cert file", "tls_server_config:\n  cert_file: nocert.pem\n  key_file: key.pem\n",
     False),
    ("cert without key", "tls_server_config:\n  cert_file: cert.pem\n", False),
    ("key without cert", "tls_server_config:\n  key_file: key.pem\n", False),
    ("client_auth_type alone", "tls_server_config:\n  client_auth_type: RequestClientCert\n",
     False),
    ("unknown key", TLS + "  certfile: cert.pem\n", False),
    ("unknown top-level key", "tls_config: {}\n", False),
    ("duplicate key", TLS + "  key_file: key.pem\n", False),
    ("bad bcrypt hash", "basic_auth_users:\n  alice: secret\n", False),
    ("unknown TLS version", TLS + "  min_version: TLS14\n", False),
    ("unknown client_auth_type", TLS + "  client_auth_type: RequireClientCerts\n", False),
    ("client CA without client auth", TLS + "  client_ca_file: cert.pem\n", False),
    ("unknown cipher", TLS + "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n", False),
    ("unknown curve", TLS + "  curve_preferences: [P256]\n", False),
    ("header not allowed", "http_server_config:\n  headers:\n    Server: abacus\n", False),
    ("header value not allowed", "http_server_config:\n  headers:\n    X-Frame-Options: DENY\n",
     False),
    ("cert and key swapped", "tls_server_config:\n  cert_file: key.pem\n  key_file: cert.pem\n",
     False),
    ("key of another certificate",
     "tls_server_config:\n  cert_file: cert.pem\n  key_file: other-key.pem\n", False),
    ("certificate PEM that does not parse",
     "tls_server_config:\n  cert_file: garbled.pem\n  key_file: key.pem\n", False),
    ("not a mapping", "- tls_server_config\n", False),
    ("inline certificate (newer toolkits)", "tls_server_config:\n  cert: x\n  key: y\n", False),
]


class WebConfigCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="abacus-webcheck-")
        subprocess.run([harness.tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-days",
                        "1", "-keyout", os.path.join(cls.dir, "key.pem"), "-out",
                        os.path.join(cls.dir, "cert.pem")],
                       check=True, capture_output=True)
        subprocess.run([harness.tool("openssl"), "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-out", os.path.join(cls.dir, "other-key.pem")],
                       check=True, capture_output=True)
        with open(os.path.join(cls.dir, "garbled.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
                    "-----END CERTIFICATE-----\n")
        cls.config = os.path.join(cls.dir, "abacus.yml")
        with open(cls.config, "w") as f:
            f.write("server: {listen_address: \"127.0.0.1:0\"}\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def verdicts(self, name, text):
        """(promtool's, abacus's) verdict on text as a web config file, and abacus's stderr."""
        path = os.path.join(self.dir, "web-%s.yml" % name.replace(" ", "_"))
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([harness.tool("promtool"), "check", "web-config", path],
                           capture_output=True, text=True, timeout=60)
        a = subprocess.run([harness.binary(), "--check-config", "--config.file=" + self.config,
                            "--web.config.file=" + path],
                           capture_output=True, text=True, timeout=60)
        self.assertIn(a.returncode, (0, 1), a.stderr)
        return p.returncode == 0, a.returncode == 0, a.stderr, p.stdout + p.stderr, path

    def test_table(self):
        for name, text, valid in TABLE:
            with self.subTest(name):
                prom, ab, err, perr, path = self.verdicts(name, text)
                self.assertEqual(prom, valid, "promtool on %s: %s" % (name, perr))
                self.assertEqual(ab, valid, "abacus on %s: %s" % (name, err))
                if not valid:
                    # Every error names the file and a position (line:column) or is the
                    # file's own (cannot open).
                    lines = [x for x in err.splitlines() if x.strip()]
                    self.assertTrue(lines, name)
                    for line in lines:
                        self.assertTrue(line.startswith(path + ":"), line)

    def test_positions(self):
        _, ab, err, _, path = self.verdicts(
            "positions", TLS + "  min_version: TLS14\n  client_auth_type: Nope\n")
        self.assertFalse(ab)
        self.assertIn(path + ":4:16: tls_server_config.min_version: unknown TLS version "
                      "\"TLS14\"", err)
        self.assertIn(path + ":5:21: tls_server_config.client_auth_type: unknown "
                      "client_auth_type \"Nope\"", err)

    def test_config_key_and_flag(self):
        """server.web_config_file is checked too (relative to the config file), and the flag
        overrides it (\"\" turns it off)."""
        bad = os.path.join(self.dir, "bad-web.yml")
        with open(bad, "w") as f:
            f.write("basic_auth_users:\n  alice: secret\n")
        cfg = os.path.join(self.dir, "with-key.yml")
        with open(cfg, "w") as f:
            f.write("server: {web_config_file: bad-web.yml}\n")
        a = subprocess.run([harness.binary(), "--check-config", "--config.file=" + cfg],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(a.returncode, 1, a.stderr)
        self.assertIn(bad + ":2:10: basic_auth_users.alice: not a bcrypt hash", a.stderr)
        a = subprocess.run([harness.binary(), "--check-config", "--config.file=" + cfg,
                            "--web.config.file="], capture_output=True, text=True, timeout=60)
        self.assertEqual(a.returncode, 0, a.stderr)


    def test_start_and_reload(self):
        """A bad web config file stops the start (exit 1, the error logged with its position);
        on SIGHUP a bad one fails the reload and the running configuration stays. (The file
        here sets only a header, so the server stays plain HTTP either way.)"""
        web = os.path.join(self.dir, "reload-web.yml")
        with open(web, "w") as f:
            f.write("basic_auth_users:\n  alice: secret\n")
        rc, _, err = harness.run(["--config.file=" + self.config, "--web.config.file=" + web,
                                  "--statsd.listen-udp=", "--statsd.listen-tcp="])
        self.assertEqual(rc, 1, err)
        self.assertIn("basic_auth_users.alice", err)
        with open(web, "w") as f:
            f.write("http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n")
        with harness.Abacus(args=["--web.config.file=" + web]) as a:
            with open(web, "w") as f:
                f.write("http_server_config:\n  headers:\n    Server: abacus\n")
            mark = len(a.lines)
            a.signal(signal.SIGHUP)
            a.wait_log(r"level=error .*file=\S*reload-web\.yml line=3 column=5 .*Server",
                       start=mark)
            harness.wait_until(lambda: a.value("abacus_config_last_reload_successful") == 0,
                               "the failed reload")
            self.assertEqual(a.get("/-/healthy").status, 200)


if __name__ == "__main__":
    unittest.main()
