#!/bin/sh
# check.sh - run SPIN on series.pml, the model of the series lifecycle (DESIGN.md), in its
# small configuration, and check that a deliberately broken variant (a scrape without the
# second look) is caught, so a model that can no longer fail would be noticed.
# Usage: check.sh WORKDIR [full]. "full" adds the 3-updater configuration (about 90 s).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-/tmp/abacus-model}
spin=${SPIN:-spin}
mkdir -p "$work"
cd "$work"
# run NAME MODEL EXPECT SPIN-FLAGS...: EXPECT is "ok" (no error) or "caught" (an error found)
run() {
    name=$1 model=$2 expect=$3
    shift 3
    rm -f pan pan.* ./*.trail
    "$spin" "$@" -a "$model" >/dev/null
    gcc -O2 -DSAFETY -DCOLLAPSE -o pan pan.c
    out=$(./pan -m100000 -w24)
    errors=$(printf '%s\n' "$out" | sed -n 's/.*errors: \([0-9]*\).*/\1/p')
    states=$(printf '%s\n' "$out" | sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p')
    echo "model $name: errors=$errors states=$states (expected: $expect)"
    if [ "$expect" = ok ]; then [ "$errors" = 0 ]; else [ "$errors" != 0 ]; fi
}
run "NU=2" "$here/series.pml" ok -DNU=2
sed 's/if :: (st\[i\] & DEAD) -> rep = rep & ~(1 << i) :: else -> skip fi/skip/' \
    "$here/series.pml" >broken_no_second_look.pml
run "broken: scrape without second look" broken_no_second_look.pml caught -DNU=2 -DNR=1
if [ "${2:-}" = full ]; then
    run "NU=3 ONEUPD" "$here/series.pml" ok -DNU=3 -DONEUPD
fi
echo "model: verified"
