#!/usr/bin/env bash
# Build benchmark (not a test): kiste build vs `buildah bud --layers` on the same Containerfile
# (busybox base made offline, a RUN, a 10 MB COPY, ENV, CMD), same machine, same run, hyperfine.
#   cold:   every step executed (base image already present: kiste --no-cache, buildah --no-cache)
#   cached: nothing changed, every step a cache hit
# buildah needs `--runtime runc` here (crun refuses this host's setup).
#
#   bench/build.sh                 Environment: KISTE (binary), KISTE_BENCH_DIR, BENCH_RUNS
source "$(dirname "$0")/lib.sh"
work=${KISTE_BENCH_DIR:-/var/tmp/kiste-bench}/build
command -v buildah >/dev/null || { bench_unavailable "build cold" buildah "buildah not installed"; bench_unavailable "build cached" buildah "buildah not installed"; exit 0; }

mkdir -p "$work/ctx"
if [ ! -f "$work/.ready" ]; then
  log "build: preparing $work (once)"
  bash "$REPO_DIR/scripts/busybox-rootfs.sh" "$work/busybox.tar"
  head -c $((10 << 20)) /dev/urandom >"$work/ctx/payload.bin"
  cat >"$work/ctx/Containerfile" <<'CF'
FROM busybox
RUN mkdir -p /app && echo built > /app/stamp
COPY payload.bin /app/payload.bin
ENV APP_MODE=bench
CMD ["cat", "/app/stamp"]
CF
  touch "$work/.ready"
fi

bench_build_roots "$work"
kbuild="$kbuild_base -t bench"
bbuild="$bbuild_base -t bench"
# Correctness first: both images print the same.
$kbuild $work/ctx >/dev/null
$bbuild $work/ctx >/dev/null
bench_compare "build cold" "$kbuild --no-cache $work/ctx" buildah "$bbuild --no-cache $work/ctx" "" "base present; every step runs"
bench_compare "build cached" "$kbuild $work/ctx" buildah "$bbuild $work/ctx" "" "no change; all steps cache hits"
