"""test_docker_manifests.py - the deployment files under docker/ agree with each other and
with the real binary.

- docker/kubernetes/*.yaml parse; the Deployment runs the app and abacus in one pod; the
  ConfigMap it mounts at /etc/abacus holds a config that passes `abacus --check-config`; the
  container port, the prometheus.io/* annotations, the PodMonitor and the probes name the
  port and paths that config serves; the app's StatsD address is the one abacus listens on;
  abacus runs as the image's user with requests and limits.
- abacus started with that ConfigMap config answers the probe paths and the annotated
  telemetry path, and the example app's own code (run here for a moment) produces the
  metrics the ConfigMap declares.
- docker/compose.yml and docker/prometheus.yml parse, publish and scrape the right ports,
  mount files that exist; `promtool check config` accepts prometheus.yml.
- docker/kubernetes/tls/, the HTTPS variant: the same app and metrics; the ConfigMap's
  abacus.yml and web.yml pass `abacus --check-config --web.config.file=...` with a certificate
  made by openssl at test time; the Secret is mounted where web.yml points; the probes use
  HTTPS with the "probe" user's header, which verifies against web.yml's bcrypt hash, and get
  200 from a live abacus (401 without it); StatsD on 127.0.0.1 only; push off; the scrape job
  and PodMonitor use https with tls_config and basic_auth (promtool check config).
- .dockerignore keeps build output, .git and caches out of the build context and keeps
  every file the build needs in it (Docker's pattern rules, reimplemented here).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import base64
import http.client
import ssl
import unittest
import warnings

import yaml

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # the system's libcrypt: checks web.yml's bcrypt hashes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, sample_value, wait_until  # noqa: E402
from test_docker_stage import dockerfile_instructions, image_user  # noqa: E402

SRC = os.environ.get("ABACUS_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKER = os.path.join(SRC, "docker")
K8S = os.path.join(DOCKER, "kubernetes")
K8S_TLS = os.path.join(K8S, "tls")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def split_addr(addr):
    """(host, port) of a listen address: ':9102', 'host:9102', '[v6]:9102'."""
    m = re.fullmatch(r"(?:\[([^\]]*)\]|([^:]*)):(\d+)", addr)
    assert m, "bad listen address %r" % addr
    return (m.group(1) if m.group(1) is not None else m.group(2)), int(m.group(3))


class Kube:
    """The objects of docker/kubernetes/*.yaml, by kind and name."""

    def __init__(self, where=K8S):
        self.objs = {}
        self.files = sorted(f for f in os.listdir(where) if f.endswith(".yaml"))
        for name in self.files:
            for d in load_all(os.path.join(where, name)):
                for key in ("apiVersion", "kind", "metadata"):
                    assert key in d, "%s: an object without %s" % (name, key)
                self.objs[(d["kind"], d["metadata"]["name"])] = d

    def one(self, kind):
        found = [o for (k, _), o in self.objs.items() if k == kind]
        assert len(found) == 1, "want one %s, found %d" % (kind, len(found))
        return found[0]


def container(pod_spec, pred, what):
    found = [c for c in pod_spec["containers"] if pred(c)]
    assert len(found) == 1, "want one %s container, found %r" % (what, [c["name"] for c in found])
    return found[0]


def named_port(c, port):
    """A probe/endpoint port (number or name) resolved against container c's ports."""
    if isinstance(port, int):
        return port
    for p in c.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError("container %s has no port named %r" % (c["name"], port))


class KubernetesManifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kube = Kube()
        cls.deploy = cls.kube.one("Deployment")
        cls.pod = cls.deploy["spec"]["template"]
        cls.spec = cls.pod["spec"]
        cls.abacus = container(cls.spec, lambda c: c["image"].split(":")[0].endswith("abacus"),
                               "abacus")
        cls.app = container(cls.spec, lambda c: c is not cls.abacus, "application")
        mounts = {m["name"]: m for m in cls.abacus.get("volumeMounts", [])}
        vols = {v["name"]: v for v in cls.spec.get("volumes", [])}
        cfg_mounts = [m for m in mounts.values() if m["mountPath"] == "/etc/abacus"]
        assert len(cfg_mounts) == 1, "abacus must mount its config at /etc/abacus"
        cls.cfg_mount = cfg_mounts[0]
        vol = vols[cls.cfg_mount["name"]]
        cls.cm = cls.kube.objs[("ConfigMap", vol["configMap"]["name"])]
        cls.config_text = cls.cm["data"]["abacus.yml"]
        cls.config = yaml.safe_load(cls.config_text)

    def test_parse_and_select(self):
        self.assertIn("deployment.yaml", self.kube.files)
        self.assertIn("configmap.yaml", self.kube.files)
        sel = self.deploy["spec"]["selector"]["matchLabels"]
        labels = self.pod["metadata"]["labels"]
        for k, v in sel.items():
            self.assertEqual(labels.get(k), v, "the selector does not select the pod")
        self.assertEqual(len(self.spec["containers"]), 2)

    def test_config_passes_check_config(self):
        tmp = tempfile.mkdtemp(prefix="abacus-k8s-")
        try:
            path = os.path.join(tmp, "abacus.yml")
            with open(path, "w") as f:
                f.write(self.config_text)
            rc, out, err = harness.run(["--check-config", "--config.file=" + path])
            self.assertEqual(rc, 0, "ConfigMap config rejected:\n" + out + err)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_ports_paths_and_probes(self):
        server = self.config.get("server") or {}
        _, port = split_addr(server.get("listen_address", ":9102"))
        path = server.get("telemetry_path", "/metrics")
        ports = {p["containerPort"]: p for p in self.abacus["ports"]}
        self.assertIn(port, ports, "abacus does not declare its HTTP port")
        self.assertEqual(ports[port].get("protocol", "TCP"), "TCP")
        ann = self.pod["metadata"].get("annotations") or {}
        self.assertEqual(ann.get("prometheus.io/scrape"), "true")
        self.assertEqual(ann.get("prometheus.io/port"), str(port))
        self.assertEqual(ann.get("prometheus.io/path"), path)
        live = self.abacus["livenessProbe"]["httpGet"]
        ready = self.abacus["readinessProbe"]["httpGet"]
        self.assertEqual(live["path"], "/-/healthy")
        self.assertEqual(ready["path"], "/-/ready")
        self.assertEqual(named_port(self.abacus, live["port"]), port)
        self.assertEqual(named_port(self.abacus, ready["port"]), port)
        for (kind, _), o in self.kube.objs.items():
            if kind == "PodMonitor":
                ep = o["spec"]["podMetricsEndpoints"]
                self.assertEqual([e["path"] for e in ep], [path])
                self.assertEqual([named_port(self.abacus, e["port"]) for e in ep], [port])
                for k, v in o["spec"]["selector"]["matchLabels"].items():
                    self.assertEqual(self.pod["metadata"]["labels"].get(k), v)

    def test_app_sends_statsd_where_abacus_listens(self):
        statsd = self.config.get("statsd") or {}
        env = {e["name"]: e.get("value") for e in self.app.get("env", [])}
        for key in ("listen_udp", "listen_tcp"):
            host, port = split_addr(statsd.get(key, ":9125"))
            self.assertIn(host, ("127.0.0.1", "", "::", "0.0.0.0"))
            self.assertEqual(env.get("STATSD_PORT"), str(port))
        self.assertEqual(env.get("STATSD_HOST"), "127.0.0.1")
        with open(os.path.join(K8S, "deployment.yaml")) as f:
            comments = "\n".join(ln for ln in f.read().splitlines() if ln.lstrip().startswith("#"))
        self.assertIn("127.0.0.1:9125", comments, "show how the app sends StatsD")

    def test_security_and_resources(self):
        uid, gid = image_user(dockerfile_instructions())
        sc = self.abacus["securityContext"]
        self.assertEqual(sc.get("runAsUser"), uid)
        self.assertEqual(sc.get("runAsGroup"), gid)
        self.assertIs(sc.get("readOnlyRootFilesystem"), True)
        self.assertIs(sc.get("allowPrivilegeEscalation"), False)
        self.assertTrue(self.spec["securityContext"].get("runAsNonRoot"))
        res = self.abacus["resources"]
        for kind in ("requests", "limits"):
            self.assertIn("memory", res[kind])
        self.assertIn("cpu", res["requests"])
        with open(os.path.join(K8S, "deployment.yaml")) as f:
            self.assertTrue(re.search(r"(?i)sized from measurements", f.read()),
                            "say where the resource figures come from")
        self.assertTrue(self.cfg_mount.get("readOnly"))
        self.assertNotIn("subPath", self.cfg_mount, "a subPath mount never sees updates")

    def test_live_probes_and_app(self):
        """abacus with the ConfigMap config serves the probe and scrape paths, and the
        example app's code (run here for a moment) produces the declared metrics."""
        server = self.config.get("server") or {}
        path = server.get("telemetry_path", "/metrics")
        a = Abacus(config=self.config_text, statsd=True)
        app = None
        try:
            a.start()
            for p in (self.abacus["livenessProbe"]["httpGet"]["path"],
                      self.abacus["readinessProbe"]["httpGet"]["path"]):
                self.assertEqual(a.get(p).status, 200, p)
            a.scrape(path=path)
            # The app container's own program, pointed at this abacus.
            cmd = self.app["command"]
            self.assertEqual(cmd[:2], ["python3", "-c"])
            host, port = a.statsd["udp"]
            env = dict(os.environ, STATSD_HOST=host, STATSD_PORT=str(port))
            app = subprocess.Popen([sys.executable, "-c", cmd[2]], env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
            declared = [m["name"] for m in self.config.get("metrics") or []]

            def all_present():
                assert app.poll() is None, "the example app exited: %s" % app.stderr.read()
                fams, _, _ = a.scrape(path=path)
                return all((sample_value(fams, "abacus_series", {"family": n}) or 0) > 0
                           for n in declared)
            wait_until(all_present, "series in every declared family %s" % declared)
            a.stop()
        finally:
            if app is not None:
                app.kill()
                app.wait()
                app.stderr.close()
            a.cleanup()


# ---- docker/kubernetes/tls/: the HTTPS variant -----------------------------------------------

TLS_NAME = "abacus.shop.svc"  # the name the scrape job and PodMonitor check (server_name)


def make_cert(d):
    """A self-signed certificate as deployment.yaml's header makes it, plus 127.0.0.1."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + TLS_NAME,
                    "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % TLS_NAME,
                    "-keyout", os.path.join(d, "tls.key"), "-out", os.path.join(d, "tls.crt")],
                   check=True, capture_output=True)


def probe_auth(probe):
    """(user, password) of a probe's Authorization: Basic header."""
    hdrs = {h["name"]: h["value"] for h in probe["httpGet"].get("httpHeaders", [])}
    scheme, _, token = hdrs["Authorization"].partition(" ")
    assert scheme == "Basic", hdrs
    user, _, password = base64.b64decode(token).decode().partition(":")
    return user, password


class KubernetesTLS(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kube = Kube(K8S_TLS)
        cls.base = Kube(K8S)
        cls.deploy = cls.kube.one("Deployment")
        cls.spec = cls.deploy["spec"]["template"]["spec"]
        cls.abacus = container(cls.spec, lambda c: c["image"].split(":")[0].endswith("abacus"),
                               "abacus")
        cls.app = container(cls.spec, lambda c: c is not cls.abacus, "application")
        cls.mounts = {m["name"]: m for m in cls.abacus.get("volumeMounts", [])}
        cls.vols = {v["name"]: v for v in cls.spec.get("volumes", [])}
        cfg = [m for m in cls.mounts.values() if m["mountPath"] == "/etc/abacus"]
        assert len(cfg) == 1, "abacus must mount its config at /etc/abacus"
        cls.cm = cls.kube.objs[("ConfigMap", cls.vols[cfg[0]["name"]]["configMap"]["name"])]
        cls.config_text = cls.cm["data"]["abacus.yml"]
        cls.config = yaml.safe_load(cls.config_text)
        flags = [a for a in cls.abacus.get("args", []) if a.startswith("--web.config.file=")]
        assert len(flags) == 1, "abacus must be started with --web.config.file"
        web_path = flags[0].split("=", 1)[1]
        assert os.path.dirname(web_path) == "/etc/abacus", web_path
        cls.web_text = cls.cm["data"][os.path.basename(web_path)]
        cls.web = yaml.safe_load(cls.web_text)
        cls.port = split_addr((cls.config.get("server") or {}).get("listen_address", ":9102"))[1]
        cls.path = (cls.config.get("server") or {}).get("telemetry_path", "/metrics")

    def secret_mount(self):
        """(mount path, secret name) of the Secret volume abacus mounts."""
        found = [(m["mountPath"], self.vols[m["name"]]["secret"]["secretName"], m)
                 for m in self.mounts.values() if "secret" in self.vols[m["name"]]]
        self.assertEqual(len(found), 1, "abacus mounts one Secret")
        path, name, m = found[0]
        self.assertTrue(m.get("readOnly"))
        self.assertNotIn("subPath", m, "a subPath mount never sees a renewed certificate")
        return path, name

    def local_web(self, d):
        """web.yml with the Secret's mount path pointing at d (a test certificate in it)."""
        mount, _ = self.secret_mount()
        make_cert(d)
        path = os.path.join(d, "web.yml")
        with open(path, "w") as f:
            f.write(self.web_text.replace(mount + "/", d + "/"))
        return path

    def test_same_app_and_metrics_as_plain(self):
        base_spec = self.base.one("Deployment")["spec"]["template"]["spec"]
        base_app = container(base_spec, lambda c: c["name"] == self.app["name"], "application")
        self.assertEqual(self.app, base_app, "the app container differs from ../deployment.yaml")
        base_cfg = yaml.safe_load(self.base.one("ConfigMap")["data"]["abacus.yml"])
        for key in ("statsd", "defaults", "metrics", "mappings"):
            self.assertEqual(self.config.get(key), base_cfg.get(key), key)

    def test_config_and_web_config_pass_check_config(self):
        d = tempfile.mkdtemp(prefix="abacus-k8s-tls-")
        try:
            web = self.local_web(d)
            cfg = os.path.join(d, "abacus.yml")
            with open(cfg, "w") as f:
                f.write(self.config_text)
            rc, out, err = harness.run(["--check-config", "--config.file=" + cfg,
                                        "--web.config.file=" + web])
            self.assertEqual(rc, 0, "ConfigMap files rejected:\n" + out + err)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_secret_mounted_where_web_config_points(self):
        mount, name = self.secret_mount()
        tls = self.web["tls_server_config"]
        # the keys of a kubernetes.io/tls Secret (kubectl create secret tls), no items remap
        self.assertEqual(tls["cert_file"], mount + "/tls.crt")
        self.assertEqual(tls["key_file"], mount + "/tls.key")
        vol = [v for v in self.vols.values() if v.get("secret", {}).get("secretName") == name][0]
        self.assertNotIn("items", vol["secret"])
        self.assertEqual(vol["secret"].get("defaultMode", 0o644) & 0o007, 0, "key world-readable")
        sc = self.spec["securityContext"]
        self.assertEqual(sc.get("fsGroup"), self.abacus["securityContext"]["runAsGroup"],
                         "abacus must be able to read the key (group-readable, fsGroup)")
        with open(os.path.join(K8S_TLS, "deployment.yaml")) as f:
            self.assertIn("kubectl create secret tls %s " % name, f.read())
        # a client certificate cannot be required: the kubelet's probes present none
        self.assertIn(tls.get("client_auth_type", "NoClientCert"),
                      ("NoClientCert", "RequestClientCert", "VerifyClientCertIfGiven"))

    def test_probes_https_with_probe_user(self):
        users = self.web["basic_auth_users"]
        self.assertEqual(len(self.abacus["ports"]), 1)
        self.assertEqual(self.abacus["ports"][0]["containerPort"], self.port)
        for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
            g = self.abacus[probe]["httpGet"]
            self.assertEqual(g["scheme"], "HTTPS", probe)
            self.assertEqual(g["path"], path)
            self.assertEqual(named_port(self.abacus, g["port"]), self.port)
            user, password = probe_auth(self.abacus[probe])
            self.assertIn(user, users)
            self.assertNotEqual(user, "prometheus", "probes need their own user")
            self.assertEqual(crypt.crypt(password, users[user]), users[user],
                             "%s's password does not match web.yml's hash" % probe)

    def test_statsd_loopback_push_off(self):
        statsd = self.config.get("statsd") or {}
        env = {e["name"]: e.get("value") for e in self.app.get("env", [])}
        for key in ("listen_udp", "listen_tcp"):
            host, port = split_addr(statsd.get(key, ":9125"))
            self.assertEqual(host, "127.0.0.1", key)
            self.assertEqual(env.get("STATSD_PORT"), str(port))
        self.assertEqual(env.get("STATSD_HOST"), "127.0.0.1")
        self.assertIs((self.config.get("push") or {}).get("enabled"), False,
                      "the probe credential must not be able to push")
        self.assertNotIn("--web.enable-lifecycle", self.abacus.get("args", []))
        ann = self.deploy["spec"]["template"]["metadata"].get("annotations") or {}
        self.assertNotEqual(ann.get("prometheus.io/scrape"), "true",
                            "the annotation-driven job would scrape without a password")

    def test_scrape_config_and_podmonitor(self):
        users = self.web["basic_auth_users"]
        with open(os.path.join(K8S_TLS, "prometheus-scrape.yml")) as f:
            prom = yaml.safe_load(f)
        job, = prom["scrape_configs"]
        self.assertEqual(job["scheme"], "https")
        self.assertEqual(job.get("metrics_path", "/metrics"), self.path)
        self.assertEqual(job["tls_config"]["server_name"], TLS_NAME)
        self.assertIn("ca_file", job["tls_config"])
        self.assertIn(job["basic_auth"]["username"], users)
        self.assertIn("password_file", job["basic_auth"])
        keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
        port_name = self.abacus["ports"][0]["name"]
        self.assertTrue(any(r["regex"].endswith(";" + port_name) for r in keep))
        # Debian's promtool is built without Kubernetes discovery: check the rest of the job
        # with a static target in its place.
        del job["kubernetes_sd_configs"]
        job["static_configs"] = [{"targets": ["127.0.0.1:%d" % self.port]}]
        d = tempfile.mkdtemp(prefix="abacus-k8s-tls-")
        try:
            path = os.path.join(d, "prometheus.yml")
            with open(path, "w") as f:
                yaml.safe_dump(prom, f)
            p = subprocess.run([harness.tool("promtool"), "check", "config", path],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))
        finally:
            shutil.rmtree(d, ignore_errors=True)
        ep, = self.kube.one("PodMonitor")["spec"]["podMetricsEndpoints"]
        self.assertEqual(ep["scheme"], "https")
        self.assertEqual(ep["path"], self.path)
        self.assertEqual(named_port(self.abacus, ep["port"]), self.port)
        self.assertEqual(ep["tlsConfig"]["serverName"], TLS_NAME)
        self.assertEqual(ep["tlsConfig"]["ca"]["secret"]["name"], self.secret_mount()[1])
        self.assertIn("username", ep["basicAuth"])
        self.assertIn("password", ep["basicAuth"])

    def test_live_https_probes(self):
        """abacus with the ConfigMap files and a test certificate: the probes' requests get
        200 over HTTPS, without their header 401; TLS and auth are reported on."""
        d = tempfile.mkdtemp(prefix="abacus-k8s-tls-")
        a = None
        try:
            web = self.local_web(d)
            a = Abacus(config=self.config_text, args=["--web.config.file=" + web])
            a.start(wait_ready=False)
            ctx = ssl.create_default_context(cafile=os.path.join(d, "tls.crt"))

            def get(path, headers):
                c = http.client.HTTPSConnection("127.0.0.1", a.port, context=ctx, timeout=10)
                try:
                    c.request("GET", path, headers=headers)
                    r = c.getresponse()
                    return r.status, r.read().decode(errors="replace")
                finally:
                    c.close()

            probe_hdrs = {}
            for probe in ("livenessProbe", "readinessProbe"):
                g = self.abacus[probe]["httpGet"]
                hdrs = {h["name"]: h["value"] for h in g.get("httpHeaders", [])}
                probe_hdrs = hdrs
                wait_until(lambda: get(g["path"], hdrs)[0] == 200, "%s over HTTPS" % probe)
                self.assertEqual(get(g["path"], {})[0], 401, "%s without credentials" % probe)
            status, body = get(self.path, probe_hdrs)
            self.assertEqual(status, 200)
            fams = harness.parse_text(body)
            self.assertEqual(sample_value(fams, "abacus_tls_enabled"), 1)
            self.assertEqual(sample_value(fams, "abacus_auth_enabled"), 1)
            a.stop()
        finally:
            if a is not None:
                a.cleanup()
            shutil.rmtree(d, ignore_errors=True)


class Compose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(DOCKER, "compose.yml")) as f:
            cls.compose = yaml.safe_load(f)
        cls.services = cls.compose["services"]

    def test_abacus_service(self):
        s = self.services["abacus"]
        ctx = os.path.normpath(os.path.join(DOCKER, s["build"]["context"]))
        self.assertEqual(ctx, os.path.normpath(SRC), "build context must be the repo root")
        self.assertTrue(os.path.isfile(os.path.join(ctx, s["build"]["dockerfile"])))
        ports = set(str(p) for p in s["ports"])
        self.assertEqual(ports, {"9102:9102", "9125:9125/udp", "9125:9125/tcp"})
        mounts = [v.split(":") for v in s.get("volumes", [])]
        cfg = [m for m in mounts if m[1] == "/etc/abacus/abacus.yml"]
        self.assertEqual(len(cfg), 1, "the config override must target the baked-in path")
        self.assertTrue(os.path.isfile(os.path.normpath(os.path.join(DOCKER, cfg[0][0]))))
        # command is appended to the entrypoint, which keeps --config.file
        self.assertFalse(any(a.startswith("--config.file") for a in s.get("command", [])))

    def test_mounted_files_exist(self):
        for name, s in self.services.items():
            for v in s.get("volumes", []):
                src = v.split(":")[0]
                if src.startswith("."):
                    self.assertTrue(os.path.exists(os.path.normpath(os.path.join(DOCKER, src))),
                                    "%s mounts missing %s" % (name, src))

    def test_prometheus_scrapes_abacus(self):
        s = self.services["prometheus"]
        self.assertIn("./prometheus.yml:/etc/prometheus/prometheus.yml:ro", s["volumes"])
        with open(os.path.join(DOCKER, "prometheus.yml")) as f:
            prom = yaml.safe_load(f)
        jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
        job = jobs["abacus"]
        targets = [t for sc in job["static_configs"] for t in sc["targets"]]
        self.assertEqual(targets, ["abacus:9102"])
        with open(os.path.join(SRC, "abacus.yml")) as f:
            tp = (yaml.safe_load(f).get("server") or {}).get("telemetry_path", "/metrics")
        self.assertEqual(job.get("metrics_path", "/metrics"), tp)
        p = subprocess.run([harness.tool("promtool"), "check", "config",
                            os.path.join(DOCKER, "prometheus.yml")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))

    def test_grafana_provisioning(self):
        s = self.services["grafana"]
        vols = dict(v.split(":")[:2] for v in s["volumes"])
        dash_dir = None
        for src, dst in vols.items():
            if src.endswith("provisioning"):
                prov = os.path.normpath(os.path.join(DOCKER, src))
                with open(os.path.join(prov, "datasources", "prometheus.yml")) as f:
                    ds = yaml.safe_load(f)["datasources"][0]
                self.assertEqual(ds["url"], "http://prometheus:9090")
                with open(os.path.join(prov, "dashboards", "abacus.yml")) as f:
                    dash_dir = yaml.safe_load(f)["providers"][0]["options"]["path"]
        self.assertIsNotNone(dash_dir)
        self.assertIn(dash_dir + "/abacus.json", vols.values())


# ---- .dockerignore ----------------------------------------------------------------------------

def _pattern_regex(pat):
    """Docker's .dockerignore pattern (Go filepath.Match plus **) as a regex."""
    pat = os.path.normpath(pat.strip().lstrip("/"))
    out, i = "", 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pat.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pat.index("]", i)
            out += "[" + pat[i + 1:j].replace("^", "\\^", 1).replace("!", "^", 1) + "]"
            i = j
        elif c == "\\" and i + 1 < len(pat):
            i += 1
            out += re.escape(pat[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"$")


def dockerignore_rules(path):
    rules = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            rules.append((neg, _pattern_regex(line[1:] if neg else line)))
    return rules


def ignored(rules, rel):
    """Whether rel (a path relative to the context) is left out: the last rule matching it or
    one of its parent directories decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    out = False
    for neg, rx in rules:
        if any(rx.match(p) for p in prefixes):
            out = not neg
    return out


JUNK = re.compile(r"(^|/)(__pycache__|[^/]*\.pyc|[^/]*\.o|CMakeCache\.txt|CMakeFiles)(/|$)"
                  r"|^registry/model/(pan[^/]*|[^/]*\.trail|_spin_nvr\.tmp)$")
NEEDED = re.compile(r"(^|/)CMakeLists\.txt$|\.(c|h|pml|sh|py|yml|yaml|json)$|^\.clang-format$")


class DockerIgnore(unittest.TestCase):
    def test_context(self):
        rules = dockerignore_rules(os.path.join(SRC, ".dockerignore"))
        self.assertTrue(ignored(rules, ".git"))
        self.assertTrue(ignored(rules, "build-anything/exporter/abacus"))
        bad, checked = [], 0
        for top in os.listdir(SRC):
            if top.startswith("build") or top == ".git":
                if not ignored(rules, top):
                    bad.append("%s is in the build context" % top)
                continue
            if os.path.isdir(os.path.join(SRC, top)):
                rels = [os.path.relpath(os.path.join(d, n), SRC)
                        for d, _, files in os.walk(os.path.join(SRC, top)) for n in files]
            else:
                rels = [top]
            for rel in rels:
                checked += 1
                if JUNK.search(rel):
                    if not ignored(rules, rel):
                        bad.append("%s is in the build context" % rel)
                elif NEEDED.search(rel) and ignored(rules, rel):
                    bad.append("%s is needed but ignored" % rel)
        self.assertGreater(checked, 10)
        for need in ("CMakeLists.txt", "abacus.yml", "docker/install-deps.sh", "docker/stage.sh",
                     "exporter/main.c", "tests/CMakeLists.txt", "bench/CMakeLists.txt"):
            self.assertFalse(ignored(rules, need), need)
        self.assertEqual(bad, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
