#!/bin/sh
# run.sh - build the libFuzzer targets and fuzz each for longer than CI does.
# Usage: tests/fuzz/run.sh [seconds-per-target] [target...]     (default: 600; all targets)
# Build directory: $ABACUS_FUZZ_BUILD (default build-fuzz at the repository root). The grown
# corpus of each target is kept in <build>/fuzz-long/<target>/corpus, so every run continues
# from where the last one stopped; a failing input is left in .../artifacts/ with the command
# that replays it. Targets run one after another (each is one process: one core).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-statsd config accept http}
build=${ABACUS_FUZZ_BUILD:-$root/build-fuzz}
cc=${CC:-clang}
command -v "$cc" >/dev/null || sh "$root/docker/install-deps.sh" test
echo "=== configure $build ($cc, ABACUS_FUZZ=ON)"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DABACUS_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
echo "=== build fuzz targets"
cmake --build "$build" --target fuzz_all -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
failed=""
for t in $targets; do
    echo "=== fuzz_$t for ${seconds}s"
    max_len=$(sed -n "s/^set(FUZZ_max_len_$t \([0-9]*\))/\1/p" "$root/tests/fuzz/CMakeLists.txt")
    extra=$(sed -n "s/^set(FUZZ_opts_$t \(.*\))/\1/p" "$root/tests/fuzz/CMakeLists.txt")
    # shellcheck disable=SC2086 # extra holds whole libFuzzer options
    ABACUS_FUZZ_SECONDS=$seconds ABACUS_FUZZ_KEEP=1 sh "$root/tests/fuzz/run-target.sh" \
        "$build/tests/fuzz/fuzz_$t" "$root/tests/fuzz" "$t" "$build/fuzz-long" \
        "${max_len:-4096}" $extra || failed="$failed $t"
done
if [ -n "$failed" ]; then
    echo "=== FAILED:$failed" >&2
    exit 1
fi
echo "=== all fuzz targets ran ${seconds}s each without a finding"
