#!/bin/sh
# stage.sh - build abacus with the project's CMake build and install it into a staging root.
# docker/Dockerfile's build stage runs exactly this script, and its runtime stage copies the
# staging root over /; tests/e2e/test_docker_stage.py runs the same script outside Docker, so
# what the image contains is built and checked here without a Docker engine.
#
# Usage: docker/stage.sh SRC BUILD ROOT
#   SRC    the repository root
#   BUILD  the CMake build directory (created; reused when it exists: incremental)
#   ROOT   the staging root; receives
#            ROOT/usr/local/bin/abacus          the binary (debug info stripped)
#            ROOT/etc/abacus/abacus.yml         the example configuration (SRC/abacus.yml)
# Environment: ABACUS_REVISION (optional) is compiled in as the revision label of
# abacus_build_info; JOBS (optional) is the build parallelism.
# Needs only what `docker/install-deps.sh build` installs; never touches the network.
set -eu
if [ $# -ne 3 ]; then
    echo "usage: $0 SRC BUILD ROOT" >&2
    exit 2
fi
src=$1 build=$2 root=$3
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# RelWithDebInfo: the same optimisation the test suite builds and tests with.
set -- -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ -n "${ABACUS_REVISION:-}" ]; then
    case $ABACUS_REVISION in
    *[!0-9A-Za-z._-]*) echo "$0: ABACUS_REVISION may hold only [0-9A-Za-z._-]" >&2; exit 2 ;;
    esac
    # exporter/CMakeLists.txt takes a preset ABACUS_REVISION over `git rev-parse` (the
    # image's build context has no .git and the build stage no git).
    set -- "$@" "-DABACUS_REVISION=$ABACUS_REVISION"
fi
cmake -S "$src" -B "$build" "$@" >/dev/null
# Only the binary: unit tests, stress tests and benchmarks are not part of the image.
cmake --build "$build" --target abacus -j "$jobs" >/dev/null

# Every directory explicitly 0755 root-owned: the runtime stage's COPY merges them over /.
install -d -m 0755 "$root" "$root/usr" "$root/usr/local" "$root/usr/local/bin" "$root/etc" \
    "$root/etc/abacus"
install -m 0755 -s "$build/exporter/abacus" "$root/usr/local/bin/abacus"
install -m 0644 "$src/abacus.yml" "$root/etc/abacus/abacus.yml"
# Fail here, not at container start, when the example configuration is invalid.
if ! out=$("$root/usr/local/bin/abacus" --check-config \
    --config.file="$root/etc/abacus/abacus.yml" 2>&1); then
    printf '%s\n' "$out" >&2
    exit 1
fi
