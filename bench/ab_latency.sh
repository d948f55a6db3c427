#!/usr/bin/env bash
# A/B start-up latency of `run --rm busybox true` for two or more kiste builds (and crun), in
# alternating rounds: each round runs every command once, in turn (the order flips every round).
# hyperfine runs all of one command, then all of the next; on this host that order decides
# more than a 0.3 ms change does (see README: the file system gets slower while a loop frees
# inodes). For deciding between builds, not for the published table (bench/run).
#
#   bench/ab_latency.sh [--crun] [--rounds N] KISTE_A KISTE_B [KISTE_C …]
#
# All builds share one store (made by the first). With --crun, everything runs inside
# `unshare --mount` with /sys/fs/cgroup/unified unmounted, as in run_latency.sh.
set -euo pipefail
rounds=100 crun=0
while [ $# -gt 0 ]; do
  case "$1" in
    --crun) crun=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: $0 [--crun] [--rounds N] KISTE_A KISTE_B [...]" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "ab_latency: needs root" >&2; exit 1; }
WORK=$(mktemp -d /tmp/kiste-ab-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
source "$(dirname "$0")/latency_setup.sh"
latency_setup "$WORK" "$(readlink -f "$1")"
cmds=()
for k in "$@"; do cmds+=("$(readlink -f "$k") --root $KROOT run --rm busybox true"); done
[ "$crun" = 1 ] && cmds+=("$(command -v crun) run --bundle $BUNDLE kiste-ab-crun")
runner=(python3 "$(dirname "$(readlink -f "$0")")/alternate.py" "$rounds" "${cmds[@]}")
if [ "$crun" = 1 ]; then
  unshare --mount bash -c 'mount --make-rprivate /; umount /sys/fs/cgroup/unified 2>/dev/null || true; exec "$@"' _ "${runner[@]}"
else
  "${runner[@]}"
fi
