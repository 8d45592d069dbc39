#!/bin/sh
# install-deps.sh - install the Debian 12 packages abacus needs, only those missing.
# Usage: install-deps.sh build|run|runtime|test
#   build    compiler, CMake and the -dev libraries (also used by docker/Dockerfile)
#   run      build + curl, for the README's quick start (build, run, scrape)
#   runtime  the shared libraries the abacus binary links (the image's runtime stage)
#   test     build + what the test suite drives: Prometheus/promtool, Python's
#            prometheus_client, SPIN, the Pushgateway (benchmark peer, push reference), clang with libFuzzer
#            (tests/fuzz; libclang-rt is only a recommendation of clang), wrk (tests/soak),
#            clang-tidy and cppcheck (tests/lint), gcovr (the coverage build), openssl
#            (certificates made at test time: tests/e2e/test_tls.py, test_webconfig_check.py),
#            podman, runc and debootstrap (tests/e2e/test_image.py builds and runs the image),
#            python3-snappy (the remote write receivers of tests/e2e/test_remote_write*.py)
set -eu
build="ca-certificates build-essential cmake pkg-config libck-dev libmicrohttpd-dev libyaml-dev
zlib1g-dev libisal-dev libpcre2-dev libcmocka-dev libgnutls28-dev libcrypt-dev libprotobuf-c-dev
protobuf-c-compiler libsnappy-dev libcurl4-gnutls-dev"
runtime="libck0 libmicrohttpd12 libyaml-0-2 zlib1g libisal2 libpcre2-8-0 libgnutls30 libcrypt1
libprotobuf-c1 libsnappy1v5 libcurl3-gnutls"
test="$build python3 python3-prometheus-client python3-protobuf python3-snappy python3-yaml openssl prometheus prometheus-pushgateway spin procps iproute2
clang libclang-rt-14-dev wrk clang-tidy cppcheck gcovr podman runc debootstrap"
case "${1:-}" in
build) want=$build ;;
run) want="$build curl" ;;
runtime) want=$runtime ;;
test) want=$test ;;
*) echo "usage: $0 build|run|runtime|test" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "installing:$missing" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
