#!/usr/bin/env bash
# Run `make STAGE` for each stage in order, stop at the first failure, and print how long
# each stage took (also when one failed).
# Usage: MAKE=make stages.sh STAGE...
set -euo pipefail

make=${MAKE:-make}
began=$(date +%s)
timings=()
summary() {
    local status=$?
    echo
    echo "stage          seconds  result"
    for line in "${timings[@]}"; do echo "$line"; done
    printf '%-14s %7d\n' total $(($(date +%s) - began))
    exit "$status"
}
trap summary EXIT

for stage in "$@"; do
    echo "=== make $stage"
    start=$(date +%s)
    if $make --no-print-directory "$stage"; then result=ok; else result=FAILED; fi
    timings+=("$(printf '%-14s %7d  %s' "$stage" $(($(date +%s) - start)) "$result")")
    [ "$result" = ok ] || exit 1
done
