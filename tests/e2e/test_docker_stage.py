"""test_docker_stage.py - the image, checked without a Docker engine.

docker/Dockerfile's build stage runs docker/stage.sh and its runtime stage copies the staged
root over /, on top of `docker/install-deps.sh runtime`. This test reads the Dockerfile to
make sure it still does exactly that, runs the same docker/stage.sh into a staging root,
then:
  - checks the staged tree (binary, baked-in config, modes),
  - maps every library `ldd` lists for the staged binary to its Debian package (dpkg -S) and
    requires it to be installed by the runtime stage (the runtime package list or its
    dependencies), and every runtime package to be needed,
  - starts the staged binary as the image's non-root user with the image's entrypoint
    arguments (paths under the staging root) and the baked-in config, scrapes it, and runs
    the Dockerfile's HEALTHCHECK command against it (healthy while up, unhealthy once down).

The CMake build directory is kept next to the ctest build (<build>/docker-stage) so reruns
are incremental; the staging root is fresh each time.
"""

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Abacus, sample_value, wait_until  # noqa: E402

SRC = os.environ.get("ABACUS_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKERFILE = os.path.join(SRC, "docker", "Dockerfile")
INSTALL_DEPS = os.path.join(SRC, "docker", "install-deps.sh")
STAGE = os.path.join(SRC, "docker", "stage.sh")
REVISION = "stagetest"


# ---- reading the Dockerfile -----------------------------------------------------------------

def dockerfile_instructions(path=DOCKERFILE):
    """[(stage_index, KEYWORD, argument)] with line continuations joined and comments dropped.
    Stage -1 holds instructions before the first FROM (global ARGs)."""
    out, stage, buf = [], -1, ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not buf and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if buf and line.lstrip().startswith("#"):
                continue  # a comment inside a continued instruction
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            buf += line
            kw, _, arg = buf.strip().partition(" ")
            kw = kw.upper()
            if kw == "FROM":
                stage += 1
            out.append((stage, kw, arg.strip()))
            buf = ""
    assert not buf, "Dockerfile ends inside a continued line"
    return out


def stage_names(ins):
    names = {}
    for st, kw, arg in ins:
        if kw == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", arg, re.I)
            assert m, arg
            names[st] = (m.group(1), m.group(2))
    return names


def global_args(ins):
    args = {}
    for st, kw, arg in ins:
        if st == -1 and kw == "ARG":
            k, _, v = arg.partition("=")
            args[k] = v
    return args


def runtime_packages(path=INSTALL_DEPS):
    """The package list `install-deps.sh runtime` installs."""
    with open(path) as f:
        text = f.read()
    m = re.search(r'^runtime="([^"]*)"', text, re.M)
    assert m, "install-deps.sh has no runtime=\"...\" list"
    return m.group(1).split()


def image_user(ins):
    """(uid, gid) of the last USER of the final stage."""
    last = max(st for st, _, _ in ins)
    users = [arg for st, kw, arg in ins if st == last and kw == "USER"]
    assert users, "the runtime stage sets no USER"
    m = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
    assert m, "USER %r must be numeric (runAsNonRoot needs it)" % users[-1]
    uid = int(m.group(1))
    return uid, int(m.group(2) or uid)


def exec_form(arg, what):
    try:
        v = json.loads(arg)
    except ValueError:
        raise AssertionError("%s must be in exec (JSON array) form: %r" % (what, arg))
    assert isinstance(v, list) and v and all(isinstance(x, str) for x in v), arg
    return v


def healthcheck_command(ins):
    last = max(st for st, _, _ in ins)
    hc = [arg for st, kw, arg in ins if st == last and kw == "HEALTHCHECK"]
    assert len(hc) == 1, "want one HEALTHCHECK in the runtime stage, got %r" % hc
    m = re.match(r"((?:--\S+\s+)*)CMD\s+(.*)$", hc[0])
    assert m, hc[0]
    return exec_form(m.group(2), "HEALTHCHECK CMD")


def entrypoint(ins):
    last = max(st for st, _, _ in ins)
    ep = [arg for st, kw, arg in ins if st == last and kw == "ENTRYPOINT"]
    assert ep, "the runtime stage has no ENTRYPOINT"
    return exec_form(ep[-1], "ENTRYPOINT")


# ---- dpkg ---------------------------------------------------------------------------------

def dpkg_owner(path):
    """The package that ships path (trying the merged-/usr spellings), or None."""
    cands = [path, os.path.realpath(path)]
    for p in list(cands):
        if p.startswith("/usr/"):
            cands.append(p[4:])
        else:
            cands.append("/usr" + p)
    for p in cands:
        r = subprocess.run(["dpkg", "-S", p], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=30)
        if r.returncode == 0:
            for line in r.stdout.decode().splitlines():
                if line.startswith("diversion "):
                    continue
                # "libck0:amd64: /usr/lib/..." or "pkg1, pkg2: /path"
                return line.split(": ", 1)[0].split(",")[0].strip().split(":")[0]
    return None


def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=30)
    return r.returncode == 0 and r.stdout.decode().endswith("install ok installed")


def depends(pkg):
    """Installed dependencies (Depends + Pre-Depends) of an installed package; of each set of
    alternatives, the installed ones."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", pkg],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30)
    out = set()
    for group in r.stdout.decode().split(","):
        for alt in group.split("|"):
            name = alt.strip().split(" ")[0].split(":")[0]
            if name and installed(name):
                out.add(name)
    return out


def closure(pkgs):
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(depends(p) - seen)
    return seen


def ldd_paths(binary):
    r = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    text = r.stdout.decode()
    assert r.returncode == 0, "ldd failed:\n" + text
    paths = []
    for line in text.splitlines():
        line = line.strip()
        assert "not found" not in line, "unresolved library: " + line
        m = re.match(r"(\S+) => (/\S+) \(", line) or re.match(r"(/\S+) \(", line)
        if m:
            paths.append(m.group(m.lastindex))
    return paths


# ---- the test -----------------------------------------------------------------------------

class DockerStage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ins = dockerfile_instructions()
        bin_dir = os.path.dirname(os.path.abspath(harness.binary()))
        cls.build = os.path.join(os.path.dirname(bin_dir), "docker-stage")
        cls.tmp = tempfile.mkdtemp(prefix="abacus-stage-")
        cls.root = os.path.join(cls.tmp, "root")
        env = dict(os.environ, ABACUS_REVISION=REVISION)
        r = subprocess.run(["sh", STAGE, SRC, cls.build, cls.root], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        if r.returncode != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError("docker/stage.sh failed (%d):\n%s" % (
                r.returncode, r.stdout.decode(errors="replace")))
        # The non-root user must reach the staged files, as it does in the image.
        os.chmod(cls.tmp, 0o755)
        cls.bin = os.path.join(cls.root, "usr/local/bin/abacus")
        cls.conf = os.path.join(cls.root, "etc/abacus/abacus.yml")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- the Dockerfile does what this test reproduces --

    def test_dockerfile_stages(self):
        ins = self.ins
        names = stage_names(ins)
        self.assertEqual(len(names), 2, "want two stages (build, runtime): %r" % names)
        base = global_args(ins)
        for st, (image, _) in names.items():
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: base.get(m.group(1), m.group(0)), image)
            self.assertEqual(image, "debian:12-slim", "stage %d is based on %s" % (st, image))
        self.assertEqual(names[0][1], "build")
        runs = {st: " ".join(a for s, k, a in ins if s == st and k == "RUN") for st in names}
        self.assertIn("install-deps.sh build", runs[0])
        self.assertIn("stage.sh /src /build /staging", runs[0])
        self.assertIn("install-deps.sh runtime", runs[1])
        self.assertNotIn("install-deps.sh build", runs[1])
        copies = [a for s, k, a in ins if s == 1 and k == "COPY"]
        self.assertIn("--from=build /staging/ /", copies)
        # Nothing is downloaded except through apt (install-deps.sh).
        for st, kw, arg in ins:
            self.assertNotEqual(kw, "ADD", "ADD may fetch URLs; use COPY")
            self.assertNotRegex(arg, r"\b(curl|wget|git clone|pip install)\b")
        with open(DOCKERFILE) as f:
            self.assertNotRegex(f.read(), r"(?m)^#\s*syntax\s*=",
                                "a syntax directive downloads a BuildKit frontend")

    def test_dockerfile_runtime_settings(self):
        ins = self.ins
        expose = set()
        for st, kw, arg in ins:
            if st == 1 and kw == "EXPOSE":
                for p in arg.split():
                    expose.add(p if "/" in p else p + "/tcp")
        self.assertEqual(expose, {"9102/tcp", "9125/udp", "9125/tcp"})
        uid, gid = image_user(ins)
        self.assertNotEqual(uid, 0)
        self.assertNotEqual(gid, 0)
        runs = " ".join(a for s, k, a in ins if s == 1 and k == "RUN")
        self.assertRegex(runs, r"useradd\b[^&]*--uid %d\b" % uid)
        self.assertEqual(entrypoint(ins),
                         ["/usr/local/bin/abacus", "--config.file=/etc/abacus/abacus.yml"])
        hc = healthcheck_command(ins)
        self.assertEqual(hc[0], entrypoint(ins)[0], "the HEALTHCHECK is not abacus's own probe")
        self.assertRegex(" ".join(hc[1:]), r"--health-check=127\.0\.0\.1:9102\b")

    def test_healthcheck_program_is_in_the_image(self):
        """The HEALTHCHECK runs the image's own binary (the probe needs no curl, no shell)."""
        prog = healthcheck_command(self.ins)[0]
        self.assertTrue(os.path.isabs(prog), prog)
        self.assertTrue(os.access(self.root + prog, os.X_OK), "%s is not staged" % prog)

    def test_staged_tree(self):
        files = []
        for d, dirs, fs in os.walk(self.root):
            for name in dirs + fs:
                p = os.path.join(d, name)
                st = os.lstat(p)
                rel = os.path.relpath(p, self.root)
                files.append(rel)
                if stat.S_ISDIR(st.st_mode):
                    self.assertEqual(stat.S_IMODE(st.st_mode), 0o755, rel)
        self.assertEqual(sorted(files), ["etc", "etc/abacus", "etc/abacus/abacus.yml", "usr",
                                         "usr/local", "usr/local/bin",
                                         "usr/local/bin/abacus"])
        self.assertEqual(stat.S_IMODE(os.stat(self.bin).st_mode), 0o755)
        self.assertEqual(stat.S_IMODE(os.stat(self.conf).st_mode), 0o644)
        with open(self.conf, "rb") as a, open(os.path.join(SRC, "abacus.yml"), "rb") as b:
            self.assertEqual(a.read(), b.read(), "the baked-in config is the example config")
        # Installed stripped (install -s): the image carries no debug info.
        r = subprocess.run([harness.tool("readelf"), "-S", "-W", self.bin],
                           stdout=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertNotIn(".debug_info", r.stdout.decode())

    def test_ldd_only_runtime_packages(self):
        runtime = runtime_packages()
        missing = [p for p in runtime if not installed(p)]
        self.assertEqual(missing, [], "runtime packages not installed here: %r" % missing)
        allowed = closure(runtime)
        owners = {}
        for path in ldd_paths(self.bin):
            pkg = dpkg_owner(path)
            self.assertIsNotNone(pkg, "%s belongs to no Debian package" % path)
            owners[path] = pkg
        outside = {p: k for p, k in owners.items() if k not in allowed}
        self.assertEqual(outside, {}, "libraries from packages the runtime stage does not "
                         "install (runtime list: %s)" % " ".join(runtime))
        # And nothing in the list is dead weight: each package provides a linked library.
        unused = sorted(set(runtime) - set(owners.values()))
        self.assertEqual(unused, [], "runtime packages providing no library ldd lists")

    # -- running it --

    def _runner(self, uid, gid):
        """argv prefix that runs a program as the image's user (when we are root)."""
        if os.geteuid() != 0:
            return []
        return [harness.tool("setpriv"), "--reuid=%d" % uid, "--regid=%d" % gid,
                "--clear-groups"]

    def test_run_staged_binary_as_image_user(self):
        uid, gid = image_user(self.ins)
        prefix = self._runner(uid, gid)
        ep = entrypoint(self.ins)
        # The image's entrypoint, with its absolute paths under the staging root.
        argv = [self.root + a if a.startswith("/") else
                re.sub(r"=(/\S+)", lambda m: "=" + self.root + m.group(1), a) for a in ep]
        wrapper = os.path.join(self.tmp, "run-as-image-user")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec %s \"$@\"\n" % " ".join(shlex.quote(x)
                                                          for x in prefix + argv))
        os.chmod(wrapper, 0o755)
        orig = harness.binary
        harness.binary = lambda: wrapper
        # StatsD on loopback port 0 instead of the config's :9125 (harness statsd=True).
        a = Abacus(statsd=True, cwd=os.path.join(self.root, "etc/abacus"))
        try:
            a.start()
            with open("/proc/%d/status" % a.proc.pid) as f:
                ids = dict(ln.split(":", 1) for ln in f.read().splitlines() if ":" in ln)
            if prefix:
                self.assertEqual(ids["Uid"].split()[0], str(uid))
                self.assertEqual(ids["Gid"].split()[0], str(gid))
            fams, _, _ = a.scrape()
            self.assertEqual(sample_value(fams, "abacus_build_info",
                                          {"version": _version(), "revision": REVISION,
                                           "compiler": _compiler(fams)}), 1)
            # The baked-in config was loaded, not the built-in defaults...
            self.assertNotEqual(sample_value(fams, "abacus_config_hash"), 0)
            self.assertEqual(sample_value(fams, "abacus_config_last_reload_successful"), 1)
            # ...and applied: every declared metric is a family.
            import yaml
            with open(self.conf) as f:
                declared = [m["name"] for m in yaml.safe_load(f).get("metrics") or []]
            self.assertTrue(declared)
            for name in declared:
                self.assertIsNotNone(sample_value(fams, "abacus_series", {"family": name}),
                                     "declared metric %s missing" % name)
            # StatsD in, through the UDP listener the image exposes.
            a.send_udp("docker_stage.test_total:2|c")
            wait_until(lambda: a.value("docker_stage_test_total") == 2, "the StatsD counter")

            hc = healthcheck_command(self.ins)
            hc_live = [self.root + hc[0]] + [x.replace(":9102", ":%d" % a.port) for x in hc[1:]]
            self.assertNotEqual(hc_live, hc, "the HEALTHCHECK names no port 9102")
            r = subprocess.run(prefix + hc_live, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=10)
            self.assertEqual(r.returncode, 0, "HEALTHCHECK failed on a healthy abacus:\n%s"
                             % r.stdout.decode(errors="replace"))
            self.assertEqual(a.stop(expect_rc=0), 0)
            r = subprocess.run(prefix + hc_live, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=10)
            self.assertNotEqual(r.returncode, 0, "HEALTHCHECK passed with abacus stopped")
        finally:
            harness.binary = orig
            a.cleanup()


def _version():
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        m = re.search(r"project\(abacus VERSION (\S+)", f.read())
    return m.group(1)


def _compiler(fams):
    for s in fams["abacus_build_info"].samples:
        return s.labels["compiler"]


if __name__ == "__main__":
    unittest.main(verbosity=2)
