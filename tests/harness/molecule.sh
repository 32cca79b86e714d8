#!/usr/bin/env bash
# Run molecule scenarios, MOLECULE_JOBS at a time (default 2: scenarios are independent, their
# containers are named after the scenario and the checkout). Each scenario writes to its own
# log (.build/molecule-logs/SCENARIO.log), so outputs never interleave; the log of a scenario
# that fails is printed in full once it ends. A table of per-scenario times closes the run.
# Exits 1 when any scenario failed. Stopped (INT, TERM), it stops the scenarios it started;
# their containers stay until `molecule destroy -s SCENARIO`.
# Usage: MOLECULE_JOBS=2 molecule.sh SCENARIO...
set -euo pipefail

jobs=${MOLECULE_JOBS:-2}
logs=${MOLECULE_LOGS:-.build/molecule-logs}
mkdir -p "$logs"
began=$(date +%s)

declare -A pid_of=() started=() seconds=() result=()
order=("$@")

finish() {
    # Collect one finished scenario (any of the running ones) and report it.
    local done_pid scenario status=0
    wait -n -p done_pid || status=$?
    for scenario in "${!pid_of[@]}"; do
        [ "${pid_of[$scenario]}" = "$done_pid" ] || continue
        unset "pid_of[$scenario]"
        seconds[$scenario]=$(($(date +%s) - started[$scenario]))
        if [ "$status" -eq 0 ]; then
            result[$scenario]=ok
            echo "=== molecule $scenario: ok in ${seconds[$scenario]} s (log: $logs/$scenario.log)"
        else
            result[$scenario]=FAILED
            echo "=== molecule $scenario: FAILED (exit $status) after ${seconds[$scenario]} s; its log:"
            sed "s/^/$scenario | /" "$logs/$scenario.log"
            echo "=== end of molecule $scenario"
        fi
    done
}

stop_all() {
    # Each scenario is a process group of its own (setsid): stop molecule and its playbooks.
    local pid
    for pid in "${pid_of[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
}
trap 'stop_all; exit 130' INT TERM

for scenario in "${order[@]}"; do
    while [ ${#pid_of[@]} -ge "$jobs" ]; do finish; done
    echo "=== molecule $scenario: started"
    started[$scenario]=$(date +%s)
    setsid molecule test -s "$scenario" >"$logs/$scenario.log" 2>&1 </dev/null &
    pid_of[$scenario]=$!
done
while [ ${#pid_of[@]} -gt 0 ]; do finish; done

echo
echo "molecule scenario     seconds  result   ($jobs at a time)"
failed=()
for scenario in "${order[@]}"; do
    printf '%-20s %8d  %s\n' "$scenario" "${seconds[$scenario]}" "${result[$scenario]}"
    [ "${result[$scenario]}" = ok ] || failed+=("$scenario")
done
printf '%-20s %8d\n' "wall clock" $(($(date +%s) - began))
if [ ${#failed[@]} -gt 0 ]; then
    echo "molecule scenarios failed: ${failed[*]}"
    exit 1
fi
