#!/usr/bin/env bash
# Build the local test images that molecule and the demo fleet boot:
#   localhost/caretaker-test:debian12 (bookworm) and :debian13 (trixie).
# There is no registry here, so each image is a debootstrap tree imported into podman.
# An image is rebuilt only when its recipe (this script + image-packages.txt + local CAs)
# changes: the recipe's hash is in the image label caretaker.recipe and in a second tag
# (debian12-<recipe>), so worktrees on different recipes switch back by retagging.
# Usage: build-images.sh [debian12|debian13 ...]   (default: both)
#        build-images.sh --recipe
# CARETAKER_IMAGE and CARETAKER_IMAGE_PACKAGES build another image from another list the
# same way (the fleet benchmark's fresh hosts: fresh-host-packages.txt).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=${CARETAKER_IMAGE:-localhost/caretaker-test}
package_list=${CARETAKER_IMAGE_PACKAGES:-$here/image-packages.txt}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=$(grep -v -e '^#' -e '^[[:space:]]*$' "$package_list" | paste -sd ' ' -)
# Certificate authorities this machine added to its own trust store (a TLS-inspecting egress
# proxy, a company CA): the containers reach PyPI through the same network, so they need them too.
local_cas=(/usr/local/share/ca-certificates/*.crt)
[ -e "${local_cas[0]}" ] || local_cas=()
recipe=$(cat "$0" "$package_list" "${local_cas[@]}" | sha256sum | cut -c1-16)

# --recipe: print the recipe hash only (the Makefile exports it so molecule boots this
# checkout's images by their recipe tag, whatever another checkout last tagged debian12).
if [ "${1:-}" = --recipe ]; then
    echo "$recipe"
    exit 0
fi

suite_of() {
    case "$1" in
        debian12) echo bookworm ;;
        debian13) echo trixie ;;
        *) echo "unknown image tag $1 (expected debian12 or debian13)" >&2; exit 2 ;;
    esac
}

build() {
    local tag=$1 suite current root
    suite=$(suite_of "$tag")
    current=$(podman image inspect --format '{{ index .Labels "caretaker.recipe" }}' "$image:$tag" 2>/dev/null || true)
    if [ "$current" = "$recipe" ]; then
        echo "$image:$tag is up to date (recipe $recipe)"
        return
    fi
    if podman image exists "$image:$tag-$recipe"; then
        podman tag "$image:$tag-$recipe" "$image:$tag"
        echo "$image:$tag is $image:$tag-$recipe again"
        return
    fi
    echo "building $image:$tag from $suite (recipe $recipe)"
    root=$(mktemp -d /var/tmp/caretaker-image.XXXXXX)
    trap 'rm -rf "$root"' RETURN
    # debootstrap lays down the base system; apt inside it then installs the list (debootstrap's
    # own resolver fails on a list this long), starting no service while it does.
    {
        debootstrap --variant=minbase "$suite" "$root" "$mirror" &&
        printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d" &&
        unshare --mount --fork sh -c "mount -t proc proc '$root/proc' && chroot '$root' sh -ec '
            apt-get update -q
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages </dev/null
            apt-get clean'" &&
        rm "$root/usr/sbin/policy-rc.d"
    } >"$root.log" 2>&1 || { tail -n 40 "$root.log" >&2; rm -f "$root.log"; exit 1; }
    rm -f "$root.log"
    if [ ${#local_cas[@]} -gt 0 ]; then
        cp "${local_cas[@]}" "$root/usr/local/share/ca-certificates/"
        chroot "$root" update-ca-certificates >/dev/null
        # pip in a virtualenv trusts certifi's bundle unless told to use the system one.
        printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
    fi
    # A container gets its hostname and resolver from podman; a stale machine-id would be
    # shared by every container, so systemd creates one at first boot instead.
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"
    tar -C "$root" -c . | podman import \
        --change "LABEL caretaker.recipe=$recipe" \
        --change 'CMD ["/sbin/init"]' \
        --change 'ENV container=podman' \
        --quiet - "$image:$tag-$recipe" >/dev/null
    podman tag "$image:$tag-$recipe" "$image:$tag"
    echo "built $image:$tag"
}

# Worktrees and CI jobs on one machine share the images: one build at a time.
exec 9>/var/tmp/caretaker-test-images.lock
flock 9

tags=("$@")
[ ${#tags[@]} -gt 0 ] || tags=(debian12 debian13)
for tag in "${tags[@]}"; do
    build "$tag"
done
