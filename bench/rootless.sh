#!/usr/bin/env bash
# Rootless kiste (issue 20) against root kiste: start-to-exit of `run --rm true` (also against
# rootless podman when it runs here as the same user with --network none), and the first run of
# an image of 20,000 small files (its layer unpacked into the user's store inside the user namespace, with
# the image's owners: no chown pass), and pull + first run of that image from a loopback
# docker-registry against rootless podman. Rows go to $BENCH_OUT (lib.sh); ratio = rootless / peer.
#
#   bench/rootless.sh [path/to/kiste]
#
# Root starts it: it makes a user (useradd, a subordinate range from usermod) for the run and
# removes it again (with its home, its /etc/subuid and /etc/subgid lines). Needs hyperfine, jq,
# uidmap (newuidmap/newgidmap), busybox-static, python3, docker-registry. Environment: BENCH_RUNS (lib.sh),
# SMALL_FILES (20000), SMALL_RUNS (5).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
KISTE=$(readlink -f "${1:-$KISTE}")
small_files=${SMALL_FILES:-20000}
small_runs=${SMALL_RUNS:-5}
[ "$(id -u)" -eq 0 ] || { echo "rootless.sh: needs root (it makes the user it measures as)" >&2; exit 1; }
for t in hyperfine jq python3 newuidmap useradd setpriv; do
  command -v "$t" >/dev/null || { echo "rootless.sh: $t is missing" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/kiste-bench-rootless-XXXXXX)
chmod 755 "$WORK"
user=kb$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
REG_PID=
cleanup() {
  bench_stop_registry
  pkill -KILL -u "$user" 2>/dev/null || true
  for _ in $(seq 300); do pgrep -u "$user" >/dev/null || break; sleep 0.1; done  # userdel wants none
  userdel -r "$user" >/dev/null 2>&1 || true
  sed -i "/^$user:/d" /etc/subuid /etc/subgid
  rm -rf "$WORK"
}
trap cleanup EXIT
useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user"
start=$(cat /etc/subuid /etc/subgid | awk -F: 'BEGIN{m=300000} NF==3 && $2+$3>m {m=$2+$3} END{print m}')
usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" "$user"
uid=$(id -u "$user")
mkdir -m 700 "$WORK/run" && chown "$user:" "$WORK/run"
install -m 755 "$KISTE" "$WORK/kiste"
cp "$(dirname "$KISTE")/kiste-init" "$WORK/" 2>/dev/null || true
as_user="setpriv --reuid=$user --regid=$user --init-groups env -i HOME=/home/$user USER=$user PATH=/usr/sbin:/usr/bin:/sbin:/bin XDG_RUNTIME_DIR=$WORK/run"
KU="$as_user $WORK/kiste"                     # rootless kiste, the user's store
KR="$WORK/kiste --root $WORK/root-store"      # root kiste
ustore=/home/$user/.local/share/kiste

# Images: busybox, and busybox plus 20,000 small files (0.5-4 KiB) in 100 directories, both
# dated 1970 so the two stores hold the same bytes; root saves them and the user loads them.
"$(dirname "$0")/../scripts/busybox-rootfs.sh" "$WORK/busybox.tar" >/dev/null
mkdir -p "$WORK/small"
tar -C "$WORK/small" -xf "$WORK/busybox.tar"
bench_small_files "$WORK/small" "$small_files"
tar -C "$WORK/small" -cf "$WORK/small.tar" .
SOURCE_DATE_EPOCH=0 $KR import "$WORK/busybox.tar" busybox >/dev/null
SOURCE_DATE_EPOCH=0 $KR import "$WORK/small.tar" small >/dev/null
$KR save -o "$WORK/images.tar" busybox small
chmod 644 "$WORK/images.tar"
$KU load -q -i "$WORK/images.tar"
# Warm-ups: snapshots made, seccomp program cached, in both stores.
$KR run --rm busybox true
$KU run --rm busybox true 2>/dev/null

bench_compare "rootless run --rm true" "$KU run --rm busybox true 2>/dev/null" "root kiste" \
  "$KR run --rm busybox true" "" "rootless: the user's store, its user namespace (newuidmap/newgidmap each run), no cgroup"

# First run of the 20,000-file image: each timed run starts without its snapshots (removed by
# root in both stores before every run), so the layer is unpacked every time.
BENCH_RUNS=$small_runs bench_compare "rootless first run, $small_files files" \
  "$KU run --rm small true 2>/dev/null" "root kiste" "$KR run --rm small true" \
  "rm -rf $ustore/snapshots/* $WORK/root-store/snapshots/*" \
  "each run unpacks the layer (snapshots removed before every run); target: rootless <= 1.5x root"
# (Zombies are dead: this machine's PID 1 reaps the orphans it inherits only after a while.)
ps -u "$user" -o stat= | grep -qv '^Z' && { echo "rootless.sh: processes of $user left by kiste" >&2; exit 1; }

# Rootless podman as the same user, if it runs here: last, since it leaves its pause process
# (killed with the user on exit). crun refuses this hybrid cgroup host, so podman uses runc.
pod="$as_user podman --root /home/$user/.local/share/containers/storage --runroot $WORK/run/containers"
if command -v podman >/dev/null && $pod load -q -i "$WORK/images.tar" >/dev/null 2>&1 &&
    $pod run --rm --network none --runtime runc busybox true >/dev/null 2>&1; then
  bench_compare "rootless run --rm true" "$KU run --rm busybox true 2>/dev/null" "rootless podman" \
    "$pod run --rm --network none --runtime runc busybox true" "" \
    "both as the same user, --network none; podman with runc (crun refuses hybrid cgroups)"
  # Pull + first run of the 20,000-file image from a loopback registry: both stores lose the
  # image (kiste: the whole store; podman: rmi) before every timed run.
  bench_start_registry "$WORK"
  $KR push -q small "$H/bench/small:1" >/dev/null
  ref=$H/bench/small:1
  BENCH_RUNS=$small_runs bench_compare "rootless pull + first run, $small_files files" \
    "$KU pull -q $ref >/dev/null && $KU run --rm $ref true 2>/dev/null" "rootless podman" \
    "$pod pull -q --tls-verify=false $ref >/dev/null && $pod run --rm --network none --runtime runc $ref true" \
    "rm -rf $ustore; $pod rmi -af >/dev/null 2>&1 || true" \
    "both as the same user from a loopback docker-registry; each run starts without the image"
else
  why=$($pod run --rm --network none --runtime runc busybox true 2>&1 | tail -1 || true)
  bench_unavailable "rootless run --rm true" "rootless podman" "podman cannot run here as a user: ${why:-not installed}"
fi
exit 0
