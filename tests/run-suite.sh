#!/bin/sh
# run-suite.sh - the whole test suite, from a fresh Debian 12 machine: installs what is
# missing, then builds and runs every test (ctest) three times: a normal -Werror build,
# ThreadSanitizer, and AddressSanitizer+UBSan. The SPIN model runs once, in the first.
# Usage: tests/run-suite.sh [normal|thread|address]...   (default: all three)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
sh "$root/docker/install-deps.sh" test
jobs=$(nproc 2>/dev/null || echo 2)
builds=${*:-normal thread address}
for kind in $builds; do
    dir="$root/build-ci-$kind"
    case $kind in
    normal) san="" exclude="" ;;
    thread) san=thread exclude="model" ;;
    address) san=address exclude="model" ;;
    *) echo "unknown build $kind" >&2; exit 2 ;;
    esac
    echo "=== $kind build"
    cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DABACUS_WERROR=ON \
        -DABACUS_SANITIZE="$san" >/dev/null
    cmake --build "$dir" -j "$jobs" >/dev/null
    # halt_on_error: a sanitizer report fails the test that caused it.
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ASAN_OPTIONS="detect_leaks=1 halt_on_error=1" UBSAN_OPTIONS="print_stacktrace=1" \
        ctest --test-dir "$dir" --output-on-failure -j "$jobs" ${exclude:+-LE "$exclude"}
done
echo "=== all builds passed: $builds"
