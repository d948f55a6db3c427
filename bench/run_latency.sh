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
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,etc,proc,sys,dev,tmp}
cp /bin/busybox "$ROOTFS/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$ROOTFS/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$ROOTFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOTFS/etc/group"

# An OCI bundle equivalent to `kiste run --rm` (runc's default spec, command `true`, writable
# root like kiste's overlay).
BUNDLE=$WORK/bundle
mkdir -p "$BUNDLE"
(cd "$BUNDLE" && runc spec)
python3 - "$BUNDLE/config.json" "$ROOTFS" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["root"]["path"] = sys.argv[2]
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
c["root"]["readonly"] = False
json.dump(c, open(p, "w"), indent=1)
PY

KROOT=$WORK/kiste-root
# The same rootfs as an image in kiste's store (snapshots present after the first run).
tar -C "$ROOTFS" -cf "$WORK/busybox.tar" .
"$KISTE" --root "$KROOT" import "$WORK/busybox.tar" busybox:latest >/dev/null
# One warm-up run compiles and caches the seccomp program (as a first `kiste run` would).
"$KISTE" --root "$KROOT" run --rm busybox true

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
