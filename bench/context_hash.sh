#!/usr/bin/env bash
# Cached rebuild of a large build context (not a test, not part of bench/run): how long a
# `kiste build` takes when nothing changed, for a 10 MB and a 200 MB context (1 MB files), with
# the stat-keyed content-hash cache (<root>/cache/context/) on and, for comparison, with a
# binary given as KISTE_BEFORE (a build from before the cache existed), both in one hyperfine run.
#
#   KISTE_BEFORE=/path/to/old/kiste bench/context_hash.sh      Environment: KISTE, BENCH_RUNS
source "$(dirname "$0")/lib.sh"
work=${KISTE_BENCH_DIR:-/var/tmp/kiste-bench}/context-hash
mkdir -p "$work"
[ -f "$work/busybox.tar" ] || bash "$REPO_DIR/scripts/busybox-rootfs.sh" "$work/busybox.tar"
for mb in 10 200; do
  ctx=$work/ctx-$mb
  if [ ! -f "$ctx/.ready" ]; then
    mkdir -p "$ctx/data"
    for i in $(seq 1 "$mb"); do head -c $((1 << 20)) /dev/urandom >"$ctx/data/f$i.bin"; done
    printf 'FROM busybox\nCOPY data/ /data/\nCMD ["ls", "/data"]\n' >"$ctx/Containerfile"
    touch "$ctx/.ready"
  fi
  cmds=()
  for which in after before; do
    bin=$KISTE
    [ "$which" = before ] && bin=${KISTE_BEFORE:-}
    [ -z "$bin" ] && continue
    root=$work/root-$which
    rm -rf "$root"
    "$bin" --root "$root" import "$work/busybox.tar" busybox >/dev/null
    "$bin" --root "$root" build -q -t ctx "$ctx" >/dev/null  # fills the build cache (and hash cache)
    cmds+=(-n "$which ${mb}MB" "$bin --root $root build -q -t ctx $ctx")
  done
  log "cached rebuild, ${mb} MB context"
  hyperfine --warmup 1 --runs "$BENCH_RUNS" --style basic "${cmds[@]}"
done
