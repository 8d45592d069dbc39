"""test_image.py - docker/Dockerfile built with podman and the image run (issue 12).

test_docker_stage.py checks the image's steps without an engine; this one builds the real
image and runs it:
  - the base image: no registry is reachable, so `debian:12-slim` is made here from a
    `debootstrap --variant=minbase bookworm` root and `podman import`ed under that name
    (the Dockerfile's default DEBIAN_IMAGE). The build stages reach the Debian mirror
    through apt-get inside the build containers (podman's default netavark network);
  - `podman build --format docker`: the OCI format drops HEALTHCHECK;
  - the image runs as uid 10001, answers /-/healthy and /-/ready, turns a StatsD line into
    a sample on /metrics, passes its HEALTHCHECK (`podman healthcheck run`: there is no
    systemd here to run the timer), exits 0 on `podman stop`;
  - HTTPS with the web config file and its certificate mounted from a volume, the
    HEALTHCHECK passing over HTTPS.

Everything podman stores goes to a temporary --root/--runroot of the test's own, and podman
reads a containers.conf of the test's own (CONTAINERS_CONF): runc (crun refuses this cgroup
layout), cgroup_manager = "cgroupfs" (no systemd) and ulimits the sandbox allows (runc cannot
set RLIMIT_NPROC to the hard limit itself, only below it, nor raise RLIMIT_NOFILE).

Needs root, podman, runc, debootstrap, openssl (docker/install-deps.sh test) and the Debian
mirror. Takes about 90 s: debootstrap ~30 s, import ~4 s, build ~45 s.
"""

import os
import re
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import sample_value, wait_until  # noqa: E402

SRC = os.environ.get("ABACUS_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BASE = "debian:12-slim"          # docker/Dockerfile's ARG DEBIAN_IMAGE default
IMAGE = "localhost/abacus:e2e"
UID = 10001


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


T0 = time.monotonic()


class Podman:
    def __init__(self, d):
        self.d = d
        self.conf = os.path.join(d, "containers.conf")
        hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        hard_nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        nofile = min(hard_nofile, 65536) if hard_nofile != resource.RLIM_INFINITY else 65536
        # Below the hard limit, not at it: runc's prlimit on its init process fails with
        # EPERM at exactly the hard limit here (found by trial, podman 4.3.1 + runc 1.1.5).
        nproc = 4096 if hard_nproc == resource.RLIM_INFINITY or hard_nproc > 8192 \
            else max(hard_nproc // 2, 64)
        with open(self.conf, "w") as f:
            f.write('[containers]\n'
                    'default_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]\n'
                    '[engine]\n'
                    'runtime = "runc"\n'
                    'cgroup_manager = "cgroupfs"\n'
                    'events_logger = "file"\n' % (nofile, nofile, nproc, nproc))
        self.env = dict(os.environ, CONTAINERS_CONF=self.conf)
        self.flags = ["--root", os.path.join(d, "storage"), "--runroot", os.path.join(d, "run"),
                      "--tmpdir", os.path.join(d, "libpod-tmp")]

    def __call__(self, *args, check=True, stdin=None, timeout=600):
        p = subprocess.run(["podman"] + self.flags + list(args), env=self.env, input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("podman %s: rc %d\n%s\n%s" % (
                " ".join(args), p.returncode, p.stdout.decode(errors="replace")[-4000:],
                p.stderr.decode(errors="replace")[-4000:]))
        return p

    def out(self, *args, **kw):
        return self(*args, **kw).stdout.decode().strip()

    def cleanup(self):
        self("rm", "-af", "-t", "0", check=False)
        self("rmi", "-af", check=False)
        # overlay may leave mounts under the storage root: unmount them, deepest first
        with open("/proc/self/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(self.d)]
        for m in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(self.d, ignore_errors=True)


def require():
    missing = [t for t in ("podman", "runc", "debootstrap", "openssl", "tar")
               if shutil.which(t) is None]
    assert not missing, "missing %s (docker/install-deps.sh test installs them)" % missing
    assert os.geteuid() == 0, "needs root: debootstrap and rootful podman"


def debian_mirror():
    """The Debian mirror this machine's apt uses (deb822 or one-line sources), unless
    ABACUS_DEBIAN_MIRROR names one: debootstrap fetches bookworm from it."""
    if os.environ.get("ABACUS_DEBIAN_MIRROR"):
        return os.environ["ABACUS_DEBIAN_MIRROR"]
    files = ["/etc/apt/sources.list"]
    d = "/etc/apt/sources.list.d"
    if os.path.isdir(d):
        files += sorted(os.path.join(d, n) for n in os.listdir(d))
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        for m in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text, re.M):
            uri = m.group(1)
            if not uri.rstrip("/").endswith("-security"):
                return uri
    raise AssertionError("no Debian mirror in /etc/apt/sources.list{,.d}; "
                         "set ABACUS_DEBIAN_MIRROR")


def make_base(pm):
    """debian:12-slim from a minbase bookworm root (no registry)."""
    root = os.path.join(pm.d, "rootfs")
    t = time.monotonic()
    p = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", root, debian_mirror()],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    assert p.returncode == 0, p.stdout.decode(errors="replace")[-4000:]
    log("debootstrap minbase bookworm: %.0f s" % (time.monotonic() - t))
    t = time.monotonic()
    tar = subprocess.run(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE, check=True)
    pm("import", "-", BASE, stdin=tar.stdout)
    shutil.rmtree(root)
    log("podman import: %.0f s" % (time.monotonic() - t))


def build(pm):
    t = time.monotonic()
    p = pm("build", "--format", "docker", "-f", os.path.join(SRC, "docker", "Dockerfile"),
           "-t", IMAGE, "--build-arg", "ABACUS_REVISION=imagetest", SRC, timeout=1200)
    log("podman build --format docker: %.0f s" % (time.monotonic() - t))
    text = (p.stdout + p.stderr).decode(errors="replace")
    assert "useradd warning" not in text, "useradd warns:\n" + text[-2000:]
    return text


def check_image(pm):
    hc = pm.out("image", "inspect", IMAGE, "--format", "{{json .HealthCheck}}")
    assert hc not in ("", "null"), "HEALTHCHECK dropped (built without --format docker?)"
    assert "--health-check=127.0.0.1:9102" in hc, hc
    user = pm.out("image", "inspect", IMAGE, "--format", "{{.User}}")
    assert user == "%d:%d" % (UID, UID), user
    # apt-get clean in the runtime stage: no downloaded .debs left in the image
    debs = pm.out("run", "--rm", "--entrypoint", "/bin/sh", IMAGE, "-c",
                  "ls /var/cache/apt/archives/ | grep '\\.deb$' || true")
    assert debs == "", "downloaded packages left in the image:\n" + debs


def get(port, path, ctx=None):
    if ctx is None:
        return harness.http_request("127.0.0.1", port, "GET", path)
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_plain(pm):
    port, udp = harness.free_port(), harness.free_port(socket.SOCK_DGRAM)
    name = "abacus-e2e"
    pm("run", "-d", "--name", name, "-p", "127.0.0.1:%d:9102" % port,
       "-p", "127.0.0.1:%d:9125/udp" % udp, IMAGE)
    try:
        def up():
            try:
                return get(port, "/-/ready").status == 200
            except OSError:
                return False
        wait_until(up, "image's /-/ready", timeout=30)
        assert get(port, "/-/healthy").status == 200
        assert get(port, "/-/ready").status == 200
        # uid: the process inside, not just the image config
        assert pm.out("exec", name, "id", "-u") == str(UID)
        assert pm.out("top", name, "huser").splitlines()[1:] == [str(UID)], \
            pm.out("top", name, "huser")

        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        def counted():
            s.sendto(b"image.test:1|c\n", ("127.0.0.1", udp))
            fams = harness.parse_text(get(port, "/metrics").text)
            return max(sample_value(fams, "image_test") or 0,
                       sample_value(fams, "image_test_total") or 0) >= 1
        wait_until(counted, "StatsD line on /metrics", timeout=15, interval=0.2)
        s.close()

        def healthy():
            return pm("healthcheck", "run", name, check=False).returncode == 0
        wait_until(healthy, "podman healthcheck run", timeout=30, interval=1)
        assert pm.out("inspect", name, "--format", "{{.State.Health.Status}}") == "healthy"

        pm("stop", "-t", "20", name)
        rc = pm.out("inspect", name, "--format", "{{.State.ExitCode}}")
        assert rc == "0", "exit %s on stop:\n%s" % (rc, pm.out("logs", name))
    finally:
        pm("rm", "-f", name, check=False)
    log("ok plain: healthy, ready, statsd, uid %d, healthcheck, exit 0" % UID)


def test_https(pm):
    web = os.path.join(pm.d, "web")
    os.mkdir(web)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key", "-out",
                    "server.crt", "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   cwd=web, check=True, capture_output=True)
    with open(os.path.join(web, "web.yml"), "w") as f:
        f.write("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    # readable by uid 10001 inside the container (a test key; a real one would be group-owned)
    for n in os.listdir(web):
        os.chmod(os.path.join(web, n), 0o644)
    os.chmod(web, 0o755)
    port = harness.free_port()
    name = "abacus-e2e-tls"
    pm("run", "-d", "--name", name, "-p", "127.0.0.1:%d:9102" % port,
       "-v", web + ":/etc/abacus/web:ro", IMAGE, "--web.config.file=/etc/abacus/web/web.yml")
    try:
        ctx = ssl.create_default_context(cafile=os.path.join(web, "server.crt"))

        def up():
            try:
                return get(port, "/-/ready", ctx)[0] == 200
            except (OSError, ssl.SSLError):
                return False
        wait_until(up, "HTTPS /-/ready", timeout=30)
        st, body = get(port, "/metrics", ctx)
        assert st == 200 and b"abacus_build_info" in body, (st, body[:200])
        # plain HTTP on the TLS port gets no HTTP answer
        try:
            r = get(port, "/-/ready")
            assert r.status != 200, "plain HTTP answered 200 with TLS configured"
        except (OSError, http.client.HTTPException):
            pass
        # The HEALTHCHECK finds the listener speaks TLS and passes over HTTPS.
        hc = pm("healthcheck", "run", name, check=False)
        assert hc.returncode == 0, "HEALTHCHECK failed with TLS on: %s\n%s" % (
            (hc.stdout + hc.stderr).decode(errors="replace"), pm.out("logs", name))
        pm("stop", "-t", "20", name)
        rc = pm.out("inspect", name, "--format", "{{.State.ExitCode}}")
        assert rc == "0", "exit %s on stop:\n%s" % (rc, pm.out("logs", name))
    finally:
        pm("rm", "-f", name, check=False)
    log("ok https: web config from a volume")


def main():
    require()
    d = tempfile.mkdtemp(prefix="abacus-image-")
    pm = Podman(d)
    try:
        make_base(pm)
        build(pm)
        check_image(pm)
        test_plain(pm)
        test_https(pm)
    finally:
        pm.cleanup()
    log("ok")


if __name__ == "__main__":
    main()
