#!/bin/sh
# run-suite.sh - the whole test suite, from a fresh Debian 12 machine: installs what is
# missing, then builds and runs the tests (ctest) in five builds: a normal -Werror build,
# ThreadSanitizer, AddressSanitizer+UBSan, the libFuzzer build (clang) and coverage. The SPIN
# model runs once, in the first; the soak in the normal build (45 s) and, shorter and without its
# RSS check, in the address build; the fuzz build runs only the fuzz targets, each for
# ABACUS_FUZZ_SECONDS (default 30). Static analysis (lint: clang-tidy and cppcheck) runs in
# the normal build; the allocation-failure sweep (alloc) in the address build.
# The coverage build (gcc --coverage, -O0) runs the unit, stress, alloc and e2e tests and
# prints line and branch coverage per folder (gcovr); it asserts nothing about the figures.
# Usage: tests/run-suite.sh [normal|thread|address|fuzz|coverage]...   (default: all five)
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

# Line and branch coverage of registry/, config/ and exporter/ from the .gcda files of a
# coverage build: gcovr's per-file JSON summary, added up per folder. Printed, not asserted;
# the per-file table is kept in BUILD/coverage.txt.
coverage_report() {
    # The build directory as the search path: other builds' .gcda files in the same tree
    # (a developer's) would otherwise be merged in.
    gcovr -r "$root" --object-directory "$1" -f "$root/registry/" -f "$root/config/" \
        -f "$root/exporter/" -j "$jobs" --json-summary "$1/coverage.json" \
        --txt "$1/coverage.txt" "$1" >"$1/gcovr.log" 2>&1 || { tail -n 20 "$1/gcovr.log" >&2; exit 1; }
    python3 - "$1/coverage.json" <<'PY'
import json, sys
files = json.load(open(sys.argv[1]))["files"]
rows = {}
for f in files:
    top = f["filename"].split("/")[0] + "/"
    r = rows.setdefault(top, [0, 0, 0, 0])
    r[0] += f["line_covered"]; r[1] += f["line_total"]
    r[2] += f["branch_covered"]; r[3] += f["branch_total"]
rows["total"] = [sum(r[i] for r in list(rows.values())) for i in range(4)]
pct = lambda a, b: 100.0 * a / b if b else 100.0
print("    %-10s %18s %20s" % ("folder", "lines", "branches"))
for k in ["registry/", "config/", "exporter/", "total"]:
    if k in rows:
        a, b, c, d = rows[k]
        print("    %-10s %5.1f%% %5d/%-6d %5.1f%% %6d/%-6d" % (k, pct(a, b), a, b, pct(c, d), c, d))
PY
    echo "    per file: $1/coverage.txt"
}

step "dependencies (docker/install-deps.sh test)"
sh "$root/docker/install-deps.sh" test
jobs=$(nproc 2>/dev/null || echo 2)
builds=${*:-normal thread address fuzz coverage}
summary=""
for kind in $builds; do
    t0=$(date +%s)
    dir="$root/build-ci-$kind"
    cc="" target="" labels="" exclude="" cov=OFF rc=0
    case $kind in
    normal) san="" ;;
    thread) san=thread exclude="model|soak|lint|image" ;;
    address) san=address exclude="model|lint|image" ;;
    fuzz) san="" cc=clang target=fuzz_all labels=fuzz ;;
    # Timing-bound tests (soak) and tool runs (model, lint) add nothing to coverage.
    coverage) san="" cov=ON labels="unit|stress|alloc|e2e" exclude="image" ;;
    *) echo "unknown build $kind" >&2; exit 2 ;;
    esac
    step "$kind: configure $dir"
    mkdir -p "$dir"
    logged "$dir/configure.log" cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DABACUS_WERROR=ON -DABACUS_SANITIZE="$san" ${cc:+-DCMAKE_C_COMPILER=$cc} \
        -DABACUS_FUZZ="$([ "$kind" = fuzz ] && echo ON || echo OFF)" -DABACUS_COVERAGE=$cov
    step "$kind: build${target:+ $target} (-j$jobs)"
    logged "$dir/build.log" cmake --build "$dir" -j "$jobs" ${target:+--target "$target"}
    # Counts from an earlier run would add up with this one's.
    if [ "$cov" = ON ]; then find "$dir" -name '*.gcda' -delete; fi
    step "$kind: ctest${labels:+ -L '$labels'}${exclude:+ -LE '$exclude'}"
    # halt_on_error: a sanitizer report fails the test that caused it.
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ASAN_OPTIONS="detect_leaks=1 halt_on_error=1" UBSAN_OPTIONS="print_stacktrace=1" \
    ABACUS_FUZZ_SECONDS="${ABACUS_FUZZ_SECONDS:-30}" \
        ctest --test-dir "$dir" --output-on-failure -j "$jobs" ${labels:+-L "$labels"} \
        ${exclude:+-LE "$exclude"} || rc=$?
    # Coverage is reported even when a test failed (then the suite still fails below).
    if [ "$cov" = ON ]; then
        step "$kind: gcovr (lines and branches of production code, per folder)"
        coverage_report "$dir"
    fi
    if [ "$rc" != 0 ]; then
        step "$kind: ctest failed ($rc)"
        exit "$rc"
    fi
    took=$(($(date +%s) - t0))
    summary="$summary  $kind: ${took}s\n"
    step "$kind: passed in ${took}s"
done
step "all builds passed: $builds"
printf "%b" "$summary"
