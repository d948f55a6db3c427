#!/usr/bin/env bash
# Multi-platform build benchmark (not a test): `kiste build --platform linux/amd64,linux/arm64`
# vs `buildah bud --platform linux/amd64,linux/arm64 --manifest` on the same tiny Containerfile
# (a RUN per platform, the arm64 one under qemu-user), both with every step run (--no-cache).
# Bases: busybox-amd64 and busybox-arm64, made offline (scripts/busybox-rootfs.sh, --arch arm64
# from Debian's busybox-static:arm64); the Containerfile picks one with $TARGETARCH, which both
# tools set. Needs the qemu-aarch64 binfmt_misc handler that scripts/setup.sh registers.
#
#   bench/multiarch.sh             Environment: KISTE (binary), KISTE_BENCH_DIR, BENCH_RUNS
source "$(dirname "$0")/lib.sh"
name="build 2 platforms"
work=${KISTE_BENCH_DIR:-/var/tmp/kiste-bench}/multiarch
command -v buildah >/dev/null || { bench_unavailable "$name" buildah "buildah not installed"; exit 0; }
grep -qs '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
  { bench_unavailable "$name" buildah "no qemu-aarch64 binfmt_misc handler (scripts/setup.sh)"; exit 0; }

mkdir -p "$work/ctx"
if [ ! -f "$work/.ready" ]; then
  log "multiarch: preparing $work (once)"
  bash "$REPO_DIR/scripts/busybox-rootfs.sh" "$work/busybox.tar"
  bash "$REPO_DIR/scripts/busybox-rootfs.sh" --arch arm64 "$work/busybox-arm64.tar"
  cat >"$work/ctx/Containerfile" <<'CF'
ARG TARGETARCH
FROM busybox-${TARGETARCH}
RUN uname -m > /arch
CMD ["cat", "/arch"]
CF
  touch "$work/.ready"
fi

bench_build_roots "$work"
"$KISTE" --root "$kroot" import "$work/busybox.tar" busybox-amd64 >/dev/null
"$KISTE" --root "$kroot" import --platform linux/arm64 "$work/busybox-arm64.tar" busybox-arm64 >/dev/null
b="buildah --root $broot --runroot $brun --storage-driver overlay"
for arch in amd64 arm64; do
  "$KISTE" --root "$kroot" save --format oci-archive -o "$work/busybox-$arch.oci.tar" "busybox-$arch"
  id=$($b pull -q "oci-archive:$work/busybox-$arch.oci.tar")
  $b tag "$id" "busybox-$arch"
done
kcmd="$kbuild_base --no-cache --platform linux/amd64,linux/arm64 -t multi $work/ctx"
# buildah adds to an existing list; remove it before every run so each run builds one from scratch.
bcmd="$bbuild_base --no-cache --platform linux/amd64,linux/arm64 --manifest multi $work/ctx"
prepare="$b manifest rm multi >/dev/null 2>&1 || true"
# Correctness first: both lists have two entries.
$kcmd >/dev/null
bash -c "$prepare"
$bcmd >/dev/null
[ "$("$KISTE" --root "$kroot" manifest inspect multi | jq '.manifests | length')" = 2 ]
[ "$($b manifest inspect multi | jq '.manifests | length')" = 2 ]
bench_compare "$name" "$kcmd" buildah "$bcmd" "$prepare" "amd64 + arm64 (qemu-user), every step runs"
