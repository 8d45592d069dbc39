#!/bin/sh
# run-target.sh - run one libFuzzer target the way the fuzz.* ctests do: replay every file in
# regressions/<name>/, then fuzz a copy of corpus/<name>/ for a bounded time.
# Usage: run-target.sh BINARY SRCDIR NAME WORKROOT MAX_LEN [LIBFUZZER_OPTION]...
# Environment: ABACUS_FUZZ_SECONDS (default ABACUS_FUZZ_DEFAULT_SECONDS, else 30);
#   ABACUS_FUZZ_KEEP=1 keeps WORKROOT/NAME/corpus between runs (run.sh), so a long run
#   continues from what earlier runs found instead of from the seeds alone.
# Exit status: 0, or non-zero when an input crashed, leaked, hung (-timeout) or failed a check;
# the input is then in WORKROOT/NAME/artifacts/ and the command to replay it is printed.
set -eu
bin=$1 src=$2 name=$3 root=$4 max_len=$5
shift 5
extra="$*"
seconds=${ABACUS_FUZZ_SECONDS:-${ABACUS_FUZZ_DEFAULT_SECONDS:-30}}
work=$root/$name
[ "${ABACUS_FUZZ_KEEP:-0}" = 1 ] || rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp -p "$src/corpus/$name/"* "$work/corpus/" 2>/dev/null || true
: "${ASAN_OPTIONS:=detect_leaks=1}"
: "${UBSAN_OPTIONS:=print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS UBSAN_OPTIONS
opts="-timeout=25 -rss_limit_mb=2048 -max_len=$max_len -artifact_prefix=$work/artifacts/ $extra"

fail() {
    echo "FAIL fuzz_$name: $1" >&2
    for f in "$work"/artifacts/*; do
        [ -e "$f" ] || continue
        echo "  input: $f" >&2
        echo "  replay: $bin $f" >&2
        echo "  keep it: cp $f $src/regressions/$name/" >&2
    done
    exit 1
}

regs=$(find "$src/regressions/$name" -type f ! -name '*.md' ! -name '.*' 2>/dev/null | sort)
if [ -n "$regs" ]; then
    n=$(echo "$regs" | wc -l)
    echo "fuzz_$name: replaying $n regression inputs"
    # shellcheck disable=SC2086 # one argument per file; the paths have no spaces
    "$bin" $opts $regs >"$work/replay.log" 2>&1 || {
        cat "$work/replay.log" >&2
        fail "a regression input fails again"
    }
fi

echo "fuzz_$name: fuzzing for ${seconds}s from $(ls "$work/corpus" | wc -l) corpus files"
# shellcheck disable=SC2086
if ! "$bin" $opts -max_total_time="$seconds" -print_final_stats=1 "$work/corpus" \
    >"$work/fuzz.log" 2>&1; then
    tail -n 80 "$work/fuzz.log" >&2
    fail "libFuzzer found a failing input"
fi
grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ +DONE|^fuzz_' \
    "$work/fuzz.log" || true
echo "fuzz_$name: ok, corpus now $(ls "$work/corpus" | wc -l) files"
