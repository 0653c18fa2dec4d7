#!/usr/bin/env bash
#! scripts/base-image.sh: builds a Debian bookworm base image (with a C toolchain) from Debian's own
#! packages with debootstrap, for machines that cannot pull from a container registry.
#
# Usage: scripts/base-image.sh [--force] [NAME]      (NAME defaults to rmake-base:bookworm)
#
# The image is built only when NAME does not exist yet (--force rebuilds it). The packages come
# from the mirror apt is configured with on this machine (override: RMAKE_DEBIAN_MIRROR); the
# package list can be extended with RMAKE_BASE_EXTRA_PACKAGES (comma-separated). Needs root
# (debootstrap) and a running Docker engine. Takes one to two minutes.
set -euo pipefail

PACKAGES="gcc,g++,make,libc6-dev,binutils,ca-certificates"
SUITE=bookworm

log() { printf 'base-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

force=0
name=""
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) sed -n '2,11s/^#!\{0,1\} \{0,1\}//p' "$0"; exit 0 ;;
        -*) die "unknown option $arg (try --help)" ;;
        *) [ -z "$name" ] || die "one image name only"; name="$arg" ;;
    esac
done
name="${name:-rmake-base:bookworm}"

command -v docker >/dev/null 2>&1 || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (is it running, may this user use it?)"

if [ "$force" = 0 ] && docker image inspect "$name" >/dev/null 2>&1; then
    log "$name already exists (pass --force to rebuild it)"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "debootstrap needs root: run this script as root (or with sudo)"

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap with apt-get"
    apt-get install -y --no-install-recommends debootstrap >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends debootstrap >/dev/null; } ||
        die "cannot install debootstrap"
fi

mirror="${RMAKE_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    # shellcheck disable=SC2016 # $(REPO_URI) is apt's placeholder, not the shell's
    mirror="$(apt-get indextargets --format '$(REPO_URI)' "Release: $SUITE" 'Created-By: Packages' 2>/dev/null | head -n1 || true)"
fi
[ -n "$mirror" ] || die "no $SUITE mirror found in apt's configuration; set RMAKE_DEBIAN_MIRROR"
if [ -n "${RMAKE_BASE_EXTRA_PACKAGES:-}" ]; then
    PACKAGES="$PACKAGES,$RMAKE_BASE_EXTRA_PACKAGES"
fi

work="$(mktemp -d "${TMPDIR:-/var/tmp}/rmake-base.XXXXXX")"
root="$work/root"
cleanup() {
    # debootstrap mounts /proc and /sys inside the tree while it runs; never delete through them.
    if command -v findmnt >/dev/null 2>&1; then
        findmnt -rn -o TARGET | grep -F "$root/" | sort -r | while read -r m; do
            umount -l "$m" 2>/dev/null || true
        done
    fi
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

start=$(date +%s)
log "debootstrap $SUITE from $mirror with $PACKAGES"
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2 || true
    [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
fi

# What the image must not carry: package caches and lists, logs, this host's identity.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/* "$root"/debootstrap
rm -f "$root"/etc/hostname "$root"/etc/resolv.conf "$root"/etc/machine-id
: >"$root/etc/machine-id"
find "$root/dev" -mindepth 1 -delete 2>/dev/null || true

log "importing into docker as $name"
tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "rmake base: debootstrap --variant=minbase $SUITE +$PACKAGES" \
    - "$name" >/dev/null
size="$(docker image inspect --format '{{.Size}}' "$name")"
log "built $name in $(($(date +%s) - start))s ($((size / 1048576)) MiB)"
