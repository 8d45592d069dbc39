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
- .dockerignore keeps build output, .git and caches out of the build context and keeps
  every file the build needs in it (Docker's pattern rules, reimplemented here).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, sample_value, wait_until  # noqa: E402
from test_docker_stage import dockerfile_instructions, image_user  # noqa: E402

SRC = os.environ.get("ABACUS_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKER = os.path.join(SRC, "docker")
K8S = os.path.join(DOCKER, "kubernetes")


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

    def __init__(self):
        self.objs = {}
        self.files = sorted(f for f in os.listdir(K8S) if f.endswith((".yaml", ".yml")))
        for name in self.files:
            for d in load_all(os.path.join(K8S, name)):
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
