#!/usr/bin/env bash
# The main job on a built-in example, each step printed as it happens: installs what it needs,
# builds kiste, makes a busybox base image offline (Debian's busybox-static), lists and inspects
# it, saves it as docker-archive and oci-archive, loads it into a second store and verifies both.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "installing build and runtime dependencies (Debian packages)"
bash scripts/setup.sh
step "building kiste"
bash scripts/build.sh >/dev/null
kiste=$PWD/build/cli/kiste

work=$(mktemp -d /tmp/kiste-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT
export KISTE_ROOT=$work/root

step "making a busybox root filesystem offline from /bin/busybox"
bash scripts/busybox-rootfs.sh "$work/busybox.tar"
ls -l "$work/busybox.tar"

step "kiste import busybox.tar busybox:latest"
"$kiste" import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
  "$work/busybox.tar" busybox:latest

step "kiste images"
"$kiste" images

step "kiste inspect busybox (abridged)"
"$kiste" inspect busybox | grep -E '"(Digest|Id|Architecture|Os|Size)"'

step "kiste save (docker-archive and oci-archive)"
"$kiste" save -o "$work/busybox-docker.tar" busybox
"$kiste" save --format oci-archive -o "$work/busybox-oci.tar" busybox
ls -l "$work"/busybox-*.tar

step "kiste load into a second store, and fsck both"
"$kiste" --root "$work/root2" load -i "$work/busybox-oci.tar"
"$kiste" --root "$work/root2" images
"$kiste" fsck
"$kiste" --root "$work/root2" fsck

step "done: the store at \$KISTE_ROOT is a plain OCI image layout (skopeo/umoci read it)"
