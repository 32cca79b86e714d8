#!/usr/bin/env bash
# The demo fleet: three systemd containers, demo/prepare.yml (an application database on
# the database host), playbooks/site.yml applied to them, one maintenance cycle (every job
# run once with `caretaker run`, in name order: the backup before its drill) and
# `caretaker status` of each.
# Usage: demo.sh up | clean        (make demo / make demo-clean; the images must exist)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
inventory=$repo/demo/inventory.yml
declare -A image=(
    [caretaker-demo-1]=localhost/caretaker-test:debian12
    [caretaker-demo-2]=localhost/caretaker-test:debian13
    [caretaker-demo-3]=localhost/caretaker-test:debian12
)
hosts=(caretaker-demo-1 caretaker-demo-2 caretaker-demo-3)

up() {
    for host in "${hosts[@]}"; do
        if [ "$(podman inspect --format '{{.State.Running}}' "$host" 2>/dev/null)" = true ]; then
            echo "$host: running"
            continue
        fi
        podman rm --force --ignore "$host" >/dev/null
        podman run --detach --name "$host" --hostname "$host" --systemd=always \
            --label caretaker.demo=1 "${image[$host]}" /sbin/init >/dev/null
        echo "$host: started from ${image[$host]}"
    done
    for host in "${hosts[@]}"; do
        podman exec "$host" systemctl is-system-running --wait >/dev/null || true
    done

    ansible-playbook -i "$inventory" "$repo/demo/prepare.yml"
    ansible-playbook -i "$inventory" "$repo/playbooks/site.yml"

    failed=()
    for host in "${hosts[@]}"; do
        jobs=$(podman exec "$host" caretaker status --json |
            python3 -c 'import json, sys; print(" ".join(job["name"] for job in json.load(sys.stdin)["jobs"]))')
        for job in $jobs; do
            echo "--- $host: caretaker run $job"
            podman exec "$host" caretaker run "$job" || failed+=("$host:$job")
        done
    done
    for host in "${hosts[@]}"; do
        echo
        echo "=== $host: caretaker status"
        podman exec "$host" caretaker status
    done
    if [ ${#failed[@]} -gt 0 ]; then
        echo "jobs that failed: ${failed[*]}" >&2
        exit 1
    fi
    echo
    echo "demo fleet up: podman exec -it caretaker-demo-1 bash; make demo-clean removes it"
}

clean() {
    for host in "${hosts[@]}"; do
        podman rm --force --ignore --time 2 "$host" >/dev/null
    done
    rm -rf "$repo/.build/demo"
    echo "demo fleet removed"
}

case "${1:-}" in
    up) up ;;
    clean) clean ;;
    *) echo "usage: $0 up|clean" >&2; exit 2 ;;
esac
