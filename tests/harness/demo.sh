#!/usr/bin/env bash
# The demo fleet: three systemd containers, demo/prepare.yml (an application database on
# the database host), playbooks/site.yml applied to them, one maintenance cycle (every job
# run once with `caretaker run`, in name order: the backup before its drill), a deploy of
# the sample app (tests/sample_app: v1, then v2 with its migration, through
# playbooks/deploy.yml behind HAProxy), `caretaker status` of each host, then the fleet
# report (one host has a stopped unit on purpose).
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
unhealthy=caretaker-demo-3
unhealthy_unit=cron.service

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

    # One host deliberately unhealthy, so the status and the fleet report show what a problem looks like.
    echo "$unhealthy: stopping $unhealthy_unit (the demo's deliberate problem)"
    podman exec "$unhealthy" systemctl stop "$unhealthy_unit"

    failed=()
    for host in "${hosts[@]}"; do
        jobs=$(podman exec "$host" caretaker status --json |
            python3 -c 'import json, sys; print(" ".join(job["name"] for job in json.load(sys.stdin)["jobs"]))')
        for job in $jobs; do
            echo "--- $host: caretaker run $job"
            podman exec "$host" caretaker run "$job" || failed+=("$host:$job")
        done
    done
    deploy_sample
    for host in "${hosts[@]}"; do
        echo
        echo "=== $host: caretaker status"
        podman exec "$host" caretaker status
    done
    report
    if [ ${#failed[@]} -gt 0 ]; then
        echo "jobs that failed: ${failed[*]}" >&2
        exit 1
    fi
    echo
    echo "demo fleet up: podman exec -it caretaker-demo-1 bash; make demo-clean removes it"
}

# The sample app on the demo's caretaker_app hosts (demo/inventory.yml): its database and
# HAProxy on caretaker-demo-1, then v1 (skipped once a release is in place, so a second
# `make demo` does not go back) and v2, whose migration runs once behind a verified backup.
deploy_sample() {
    local dir=$repo/.build/demo release artifact
    mkdir -p "$dir"
    echo
    echo "=== deploy of the sample app"
    ansible-playbook -i "$inventory" "$repo/tests/sample_app/fleet.yml" >"$dir/sample-fleet.log" ||
        { cat "$dir/sample-fleet.log"; echo "preparing the sample app's hosts failed" >&2; return 1; }
    for release in v1 v2; do
        if [ "$release" = v1 ] && podman exec caretaker-demo-2 test -e /srv/sample/current; then
            echo "sample: a release is in place already, v1 skipped"
            continue
        fi
        artifact=$dir/sample-$release.tar.gz
        python3 "$repo/tests/sample_app/build.py" "$release" "$artifact"
        echo "--- playbooks/deploy.yml, release $release"
        ansible-playbook -i "$inventory" "$repo/playbooks/deploy.yml" -e deploy_release="$release" \
            -e deploy_artifact="$artifact" -e deploy_sha256="$(sha256sum "$artifact" | cut -d' ' -f1)" >"$dir/deploy-$release.log" ||
            { cat "$dir/deploy-$release.log"; echo "the deploy of $release failed" >&2; return 1; }
        sed -n '/PLAY RECAP/,$p' "$dir/deploy-$release.log"
    done
}

# The fleet report of the demo fleet (playbooks/report.yml), its path and a one-screen summary.
report() {
    local dir=$repo/.build/demo/report
    mkdir -p "$dir"
    echo
    echo "=== fleet report"
    ansible-playbook -i "$inventory" "$repo/playbooks/report.yml" -e "report_dir=$dir" >"$repo/.build/demo/report.log" ||
        { cat "$repo/.build/demo/report.log"; echo "the fleet report failed" >&2; return 1; }
    python3 - "$repo/plugins" "$dir/fleet.json" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
from module_utils.report.render import text_summary
with open(sys.argv[2]) as handle:
    print(text_summary(json.load(handle)))
PY
    echo "fleet report: $dir/fleet.html (data: $dir/fleet.json)"
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
