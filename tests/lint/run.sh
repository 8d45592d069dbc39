#!/bin/sh
# run.sh - static analysis of the production code: clang-tidy (the checks in /.clang-tidy) and
# cppcheck, over every .c file under registry/, config/ and exporter/ (found when it runs, so a
# file added or moved is never missed). Fails on any finding.
# Usage: tests/lint/run.sh BUILD_DIR
#   BUILD_DIR  a configured build (its compile_commands.json gives clang-tidy the flags; the
#              top-level CMakeLists.txt always exports it). ctest runs this as lint.analyzers.
# Exit: 0 clean; 1 findings (each printed as file:line:column: message [check]); 2 a tool
# could not do its job (missing tool or database, a file that does not compile, a cppcheck
# syntax or internal error): that is reported as such, never counted as a clean run.
# Full outputs stay in BUILD_DIR/lint/. Environment: LINT_JOBS (default: nproc).
#
# A finding that is not a bug is marked at its line, with the reason:
#   clang-tidy:  code;  // NOLINT(check-name): reason
#   cppcheck:    // cppcheck-suppress checkId ; reason        (on the line before)
set -u
if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" 2>/dev/null && pwd) || {
    echo "lint: tool error: no build directory $1" >&2
    exit 2
}
db="$build/compile_commands.json"
jobs=${LINT_JOBS:-$(nproc 2>/dev/null || echo 2)}
tool_error() {
    echo "lint: tool error: $*" >&2
    exit 2
}
[ -f "$db" ] || tool_error "no $db (configure with CMAKE_EXPORT_COMPILE_COMMANDS=ON)"
tidy=$(command -v clang-tidy) || tool_error "clang-tidy not installed (docker/install-deps.sh test)"
cppcheck=$(command -v cppcheck) || tool_error "cppcheck not installed (docker/install-deps.sh test)"

out="$build/lint"
rm -rf "$out"
mkdir -p "$out/clang-tidy" "$out/cppcheck-cache"
cd "$root" || tool_error "cannot enter $root"
files=$(find registry config exporter -name '*.c' | LC_ALL=C sort)
[ -n "$files" ] || tool_error "no production .c files under $root"
nfiles=$(echo "$files" | wc -l)
start=$(date +%s)

# ---- clang-tidy: one process per file, $jobs at a time ------------------------------------
# -UNDEBUG: the build is RelWithDebInfo (-DNDEBUG); the analyzer must see the asserts, which
# state the invariants it cannot infer. -Wno-error: gcc's -Werror would turn a clang-only
# compiler warning into a compile error, i.e. a tool error; warnings are gcc's job in the build.
tidy_version=$($tidy --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -n 1)
echo "lint: clang-tidy $tidy_version on $nfiles files (-j$jobs)"
echo "$files" | xargs -P "$jobs" -I{} sh -c '
    f=$1 out=$2/clang-tidy/$(echo "$1" | tr / _)
    "$3" -p "$4" --quiet --extra-arg=-UNDEBUG --extra-arg=-Wno-error \
        --extra-arg=-Wno-unknown-warning-option "$f" >"$out.txt" 2>"$out.err"
    echo $? >"$out.rc"' sh {} "$out" "$tidy" "$build"
tidy_findings=0 tidy_errors=0
for f in $files; do
    o="$out/clang-tidy/$(echo "$f" | tr / _)"
    # A finding is a warning line; the analyzer's path notes follow it in the full output.
    n=$(grep -cE '^[^ ]+:[0-9]+:[0-9]+: warning: .*\[[A-Za-z0-9.,-]+\]$' "$o.txt")
    if [ "$(cat "$o.rc" 2>/dev/null)" != 0 ] || grep -qE ': (error|fatal error):' "$o.txt"; then
        tidy_errors=$((tidy_errors + 1))
        echo "clang-tidy could not analyse $f (exit $(cat "$o.rc" 2>/dev/null)):" >&2
        grep -E ': (error|fatal error):' "$o.txt" "$o.err" | head -n 5 >&2
        tail -n 3 "$o.err" >&2
    fi
    if [ "$n" -gt 0 ]; then
        tidy_findings=$((tidy_findings + n))
        # The warning, its source line and caret; paths relative to the repository.
        grep -A2 -E '^[^ ]+:[0-9]+:[0-9]+: warning: ' "$o.txt" | grep -v '^--$' |
            sed "s#^$root/##"
    fi
done
echo "lint: clang-tidy: $tidy_findings finding(s) [$(($(date +%s) - start))s]"

# ---- cppcheck --------------------------------------------------------------------------------
# The project's include paths (each library's folder is its include root) and no -D: cppcheck
# then checks every #ifdef configuration (TSan, fuzz), not only the normal build's.
# Suppressed everywhere, with why:
#   varFuncNullUB  NULL ends exp_log's key/value pairs (declared __attribute__((sentinel)));
#                  glibc's C NULL is ((void *)0), a pointer, so there is nothing undefined.
#   readdirCalled  readdir_r is deprecated (glibc 2.24); readdir on a stream that one thread
#                  owns is thread-safe.
#   ctuuninitvar:config/yaml.c  cfg_quote(&q, ...) is called with an uninitialised cfg_quoted
#                  that it only writes (through out->text); the cross-file check reads taking
#                  the array's address as a read. An inline suppression does not reach
#                  cross-file findings, hence here, for that one file.
# Tool errors (a file cppcheck cannot parse, an internal error) go to their own list.
t0=$(date +%s)
echo "lint: $($cppcheck --version) on $nfiles files"
# shellcheck disable=SC2086 # $files is a newline-separated list of plain paths
$cppcheck -I registry -I config -I exporter --std=c11 --platform=unix64 --library=posix \
    --enable=warning,performance,portability --inline-suppr --error-exitcode=1 \
    --suppress=varFuncNullUB --suppress=readdirCalled --suppress=ctuuninitvar:config/yaml.c \
    -j "$jobs" --cppcheck-build-dir="$out/cppcheck-cache" --quiet \
    --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
    $files >"$out/cppcheck.out" 2>"$out/cppcheck.txt"
cpp_rc=$?
tool_ids='syntaxError|internalAstError|internalError|cppcheckError|preprocessorErrorDirective'
tool_ids="$tool_ids|unknownMacro|noValidConfiguration|unmatchedSuppression|bailoutUncheckedOptions"
grep -E "\[($tool_ids)\]$" "$out/cppcheck.txt" >"$out/cppcheck.tool" || true
grep -vE "\[($tool_ids)\]$" "$out/cppcheck.txt" | grep -E ': [a-z]+: .*\[[A-Za-z0-9_]+\]$' \
    >"$out/cppcheck.findings" || true
cpp_findings=$(wc -l <"$out/cppcheck.findings")
cpp_errors=$(wc -l <"$out/cppcheck.tool")
cat "$out/cppcheck.findings"
if [ "$cpp_errors" -gt 0 ]; then
    echo "cppcheck could not analyse:" >&2
    cat "$out/cppcheck.tool" >&2
elif [ "$cpp_rc" != 0 ] && [ "$cpp_findings" = 0 ]; then
    cpp_errors=1
    echo "cppcheck failed (exit $cpp_rc) without a finding:" >&2
    tail -n 20 "$out/cppcheck.txt" "$out/cppcheck.out" >&2
fi
echo "lint: cppcheck: $cpp_findings finding(s) [$(($(date +%s) - t0))s]"

if [ "$tidy_errors" -gt 0 ] || [ "$cpp_errors" -gt 0 ]; then
    tool_error "$tidy_errors file(s) clang-tidy could not analyse, $cpp_errors cppcheck" \
        "error(s); outputs in $out"
fi
total=$((tidy_findings + cpp_findings))
if [ "$total" -gt 0 ]; then
    echo "lint: $total finding(s): fix each, or mark a false positive at its line with the" \
         "reason (see the head of tests/lint/run.sh); full outputs in $out"
    exit 1
fi
echo "lint: clean ($nfiles files) in $(($(date +%s) - start))s"
