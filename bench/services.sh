#!/usr/bin/env bash
# Detached containers (issue 16): `run -d` + `stop -t 0` + `rm` cycle, `exec CONTAINER true`,
# and the monitor's RSS while a container runs. kiste only for now (the podman/runc exec peers
# of the issue are not wired in yet). Usage: bench/services.sh [KISTE_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
kiste=$(realpath "${1:-build/cli/kiste}")
work=$(mktemp -d /tmp/kiste-bench-svc.XXXXXX)
K="$kiste --root $work/root"
cleanup() { $K ps -aq 2>/dev/null | xargs -r $K rm -f >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
scripts/busybox-rootfs.sh "$work/bb.tar" >/dev/null
$K import -c 'CMD ["/bin/sh"]' "$work/bb.tar" busybox >/dev/null

hyperfine --style basic -N --warmup 3 --runs 30 \
  "sh -c '$K run -d --name cyc busybox sleep 600 >/dev/null && $K stop -t 0 cyc >/dev/null && $K rm cyc >/dev/null'" \
  --export-json "$work/cycle.json" | grep -E "Time|Range"

$K run -d --name bench busybox sleep 600 >/dev/null
hyperfine --style basic -N --warmup 5 --runs 100 "$K exec bench true" | grep -E "Time|Range"
sleep 1  # the monitor drops its code pages 250 ms after the start
monitor=$(grep -o '"monitor_pid":[0-9]*' "$work/root/containers/"*/state.json | cut -d: -f2)
grep -E 'VmRSS|RssAnon|RssFile' "/proc/$monitor/status" | sed 's/^/monitor /'
