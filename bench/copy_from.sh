#!/usr/bin/env bash
# COPY --from benchmark (not a test): one small file out of a ~150 MB stage, the stage itself a
# cache hit, kiste vs `buildah bud --layers`. A stamp file changed before every run (hyperfine
# --prepare) makes the final stage's steps run again, so each run times the COPY --from itself.
#
#   bench/copy_from.sh             Environment: KISTE (binary), KISTE_BENCH_DIR, BENCH_RUNS
source "$(dirname "$0")/lib.sh"
work=${KISTE_BENCH_DIR:-/var/tmp/kiste-bench}/copy-from
command -v buildah >/dev/null || { bench_unavailable "COPY --from (150 MB stage)" buildah "buildah not installed"; exit 0; }

mkdir -p "$work/ctx"
if [ ! -f "$work/.ready" ]; then
  log "copy-from: preparing $work (once)"
  bash "$REPO_DIR/scripts/busybox-rootfs.sh" "$work/busybox.tar"
  head -c $((150 << 20)) /dev/urandom >"$work/ctx/big.bin"
  cat >"$work/ctx/Containerfile" <<'CF'
FROM busybox AS big
COPY big.bin /data/big.bin
RUN echo small > /data/small.txt
FROM busybox
COPY stamp /stamp
COPY --from=big /data/small.txt /small.txt
CF
  touch "$work/.ready"
fi
date +%s%N >"$work/ctx/stamp"

bench_build_roots "$work"
kbuild="$kbuild_base -t bench $work/ctx"
bbuild="$bbuild_base -t bench $work/ctx"
$kbuild >/dev/null   # the big stage is built once; every timed run is a cache hit for it
$bbuild >/dev/null
bench_compare "COPY --from (150 MB stage)" "$kbuild" buildah "$bbuild" \
  "date +%s%N > $work/ctx/stamp" "stage cached; one 6-byte file copied out of it"
