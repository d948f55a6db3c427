#!/usr/bin/env bash
# Start-to-exit latency of `true` in a fresh container: kiste vs runc vs crun (vs podman when it
# is installed and works). Same machine, same busybox rootfs, same run. Not a test: run it by
# hand (root) or through bench/run; rows go to $BENCH_OUT (see lib.sh).
#
#   bench/run_latency.sh [path/to/kiste] [runs]
#
# Needs: hyperfine, runc, crun (apt-get install hyperfine runc crun), busybox-static, python3.
# crun refuses this hybrid cgroup host, so it runs inside `unshare --mount` with
# /sys/fs/cgroup/unified unmounted (as measured in the issue).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KISTE=$(readlink -f "${1:-$KISTE}")
RUNS=${2:-30}
[ "$(id -u)" -eq 0 ] || { echo "run_latency: needs root" >&2; exit 1; }
for t in hyperfine runc python3; do
  command -v "$t" >/dev/null || { echo "run_latency: $t is missing" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/kiste-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
source "$(dirname "$0")/latency_setup.sh"
latency_setup "$WORK" "$KISTE"  # sets ROOTFS, BUNDLE, KROOT

kcmd="$KISTE --root $KROOT run --rm busybox true"
# Start-up latency is short and noisy (ext4 journal waits): more runs than the default.
export BENCH_RUNS=$RUNS
bench_compare "run --rm true" "$kcmd" runc "runc run --bundle $BUNDLE kb-\$RANDOM\$RANDOM" "" \
  "kiste: store image, snapshots present; runc: an equivalent bundle"

if command -v crun >/dev/null; then
  # crun refuses this hybrid cgroup host: both run in a mount namespace without the cgroup2 mount.
  unshare --mount bash -c "
    mount --make-rprivate /
    umount /sys/fs/cgroup/unified 2>/dev/null || true
    source $(dirname "$0")/lib.sh
    bench_compare 'run --rm true' '$kcmd' crun 'crun run --bundle $BUNDLE kc-\$RANDOM\$RANDOM' '' \
      'crun refuses cgroup v1 hybrid hosts: both measured with /sys/fs/cgroup/unified unmounted'
  " || bench_unavailable "run --rm true" crun "crun failed to run here"
else
  bench_unavailable "run --rm true" crun "crun not installed"
fi
if command -v podman >/dev/null && podman run --rm --network none --ulimit nofile=20000:20000 \
    --ulimit nproc=32768:32768 --runtime runc --rootfs "$ROOTFS" true >/dev/null 2>&1; then
  BENCH_RUNS=10 bench_compare "run --rm true" "$kcmd" podman \
    "podman run --rm --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 --runtime runc --rootfs $ROOTFS true" \
    "" "podman needs --ulimit (no CAP_SYS_RESOURCE here) and --runtime runc"
else
  bench_unavailable "run --rm true" podman "podman not installed or cannot run here"
fi
