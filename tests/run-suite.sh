#!/bin/sh
# run-suite.sh - the whole test suite, from a fresh Debian 12 machine: installs what is
# missing, then builds and runs the tests (ctest) in four builds: a normal -Werror build,
# ThreadSanitizer, AddressSanitizer+UBSan, and the libFuzzer build (clang). The SPIN model
# runs once, in the first; the soak in the normal build (45 s) and, shorter and without its
# RSS check, in the address build; the fuzz build runs only the fuzz targets, each for
# ABACUS_FUZZ_SECONDS (default 30).
# Usage: tests/run-suite.sh [normal|thread|address|fuzz]...   (default: all four)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)
elapsed() { echo "$(($(date +%s) - start))s"; }
step() { echo "=== [$(elapsed)] $*"; }

# Configure and build output goes to a log; the build prints one line per tenth of its
# progress, so a long build is never silent. On failure the log's tail is shown.
logged() {
    log="$1"
    shift
    { "$@" 2>&1; echo $? >"$log.rc"; } | tee "$log" |
        awk '/^\[ *[0-9]+%\]/ { p = int(substr($0, 2, 3) / 10) * 10
             if (p != last) { last = p; printf "    %3d%%  %s\n", p, $NF; fflush() } }'
    rc=$(cat "$log.rc")
    if [ "$rc" != 0 ]; then
        tail -n 60 "$log" >&2
        echo "failed ($rc); full log: $log" >&2
        exit 1
    fi
}

step "dependencies (docker/install-deps.sh test)"
sh "$root/docker/install-deps.sh" test
jobs=$(nproc 2>/dev/null || echo 2)
builds=${*:-normal thread address fuzz}
summary=""
for kind in $builds; do
    t0=$(date +%s)
    dir="$root/build-ci-$kind"
    cc="" target="" labels="" exclude=""
    case $kind in
    normal) san="" ;;
    thread) san=thread exclude="model|soak" ;;
    address) san=address exclude="model" ;;
    fuzz) san="" cc=clang target=fuzz_all labels=fuzz ;;
    *) echo "unknown build $kind" >&2; exit 2 ;;
    esac
    step "$kind: configure $dir"
    mkdir -p "$dir"
    logged "$dir/configure.log" cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DABACUS_WERROR=ON -DABACUS_SANITIZE="$san" ${cc:+-DCMAKE_C_COMPILER=$cc} \
        -DABACUS_FUZZ="$([ "$kind" = fuzz ] && echo ON || echo OFF)"
    step "$kind: build${target:+ $target} (-j$jobs)"
    logged "$dir/build.log" cmake --build "$dir" -j "$jobs" ${target:+--target "$target"}
    step "$kind: ctest${labels:+ -L $labels}${exclude:+ -LE '$exclude'}"
    # halt_on_error: a sanitizer report fails the test that caused it.
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ASAN_OPTIONS="detect_leaks=1 halt_on_error=1" UBSAN_OPTIONS="print_stacktrace=1" \
    ABACUS_FUZZ_SECONDS="${ABACUS_FUZZ_SECONDS:-30}" \
        ctest --test-dir "$dir" --output-on-failure -j "$jobs" ${labels:+-L "$labels"} \
        ${exclude:+-LE "$exclude"}
    took=$(($(date +%s) - t0))
    summary="$summary  $kind: ${took}s\n"
    step "$kind: passed in ${took}s"
done
step "all builds passed: $builds"
printf "%b" "$summary"
