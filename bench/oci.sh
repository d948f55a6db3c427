#!/usr/bin/env bash
# kiste as an OCI runtime (issue 18): kiste-runc vs runc vs crun on the same prepared bundle,
# podman with --runtime kiste-runc vs runc and crun, and containerd's `ctr run --rm` with
# --runc-binary kiste-runc vs runc. Usage: bench/oci.sh
#
# The bundle: `runc spec` (3 capabilities, runc's masked and read-only paths, no_new_privs,
# read-only root, no seccomp, new pid/net/ipc/uts/mount namespaces, deny-all devices) with
# terminal off and the command `true`, on a busybox rootfs. Each timed run is one container:
# `create`, `start`, `delete --force` (delete also waits for the container to be gone and
# removes its cgroup), the lifecycle an engine drives.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
RUNC_BIN=$(dirname "$KISTE")/kiste-runc
work=$(mktemp -d /tmp/kiste-bench-oci.XXXXXX)
cleanup() {
  for r in "$RUNC_BIN" runc crun; do "$r" --root "$work/state-$(basename "$r")" delete --force b >/dev/null 2>&1 || true; done
  if [ -n "${P:-}" ]; then $P rm -a -f -t 0 >/dev/null 2>&1 || true; fi
  if [ -n "${ctrd_pid:-}" ]; then kill "$ctrd_pid" 2>/dev/null || true; wait "$ctrd_pid" 2>/dev/null || true; fi
  for d in /sys/fs/cgroup/*/kiste-bench-ctr; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  if [ -z "${had_run_containerd-1}" ]; then rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null || true; fi
  for d in /sys/fs/cgroup/*/libpod_parent; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

bash "$REPO_DIR/scripts/busybox-rootfs.sh" "$work/bb.tar" >/dev/null
mkdir -p "$work/bundle/rootfs"
tar -C "$work/bundle/rootfs" -xf "$work/bb.tar"
(cd "$work/bundle" && runc spec)
jq '.process.terminal = false | .process.args = ["true"]' "$work/bundle/config.json" >"$work/c.json"
mv "$work/c.json" "$work/bundle/config.json"

cycle() {  # RUNTIME_BINARY -> the shell command of one create+start+delete
  local r=$1 s="$work/state-$(basename "$1")"
  # (one sh: lib.sh's RSS probe execs the command, which would end an && chain after create)
  echo "sh -c '$r --root $s create --bundle $work/bundle b >/dev/null 2>&1 </dev/null && $r --root $s start b && $r --root $s delete --force b'"
}
note="same runc-spec bundle (no seccomp), process true; create+start+delete --force"
bench_compare "oci create+start+delete" "$(cycle "$RUNC_BIN")" runc "$(cycle runc)" "" "$note"
# crun refuses hybrid hosts whose cgroup2 mount has a controller (here: hugetlb).
crun_error=$(crun --root "$work/state-crun-probe" run --bundle "$work/bundle" probe 2>&1 </dev/null | head -1) || true
crun --root "$work/state-crun-probe" delete --force probe >/dev/null 2>&1 || true
if [ -z "$crun_error" ]; then
  bench_compare "oci create+start+delete" "$(cycle "$RUNC_BIN")" crun "$(cycle crun)" "" "$note"
else
  bench_unavailable "oci create+start+delete" crun "crun cannot run here: $crun_error"
fi

# podman run --rm with each runtime: isolated storage, no network, busybox from `kiste save`.
if command -v podman >/dev/null; then
  printf '[engine]\nruntime_supports_json = ["kiste-runc", "crun", "runc"]\nevents_logger = "none"\n' >"$work/containers.conf"
  "$KISTE" --root "$work/kroot" import -c 'CMD ["/bin/sh"]' "$work/bb.tar" busybox >/dev/null
  "$KISTE" --root "$work/kroot" save -o "$work/busybox.tar" busybox >/dev/null
  P="env CONTAINERS_CONF=$work/containers.conf podman --root $work/pstore --runroot $work/prun --tmpdir $work/plib --storage-driver vfs --cgroup-manager cgroupfs"
  $P load -q -i "$work/busybox.tar" >/dev/null
  U="--network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
  pnote="podman run --rm $U busybox true (podman's own time included)"
  bench_compare "podman run --rm (runtime)" "$P --runtime $RUNC_BIN run --rm $U busybox true" \
    runc "$P --runtime $(command -v runc) run --rm $U busybox true" "" "$pnote"
  if [ -z "$crun_error" ]; then
    bench_compare "podman run --rm (runtime)" "$P --runtime $RUNC_BIN run --rm $U busybox true" \
      crun "$P --runtime $(command -v crun) run --rm $U busybox true" "" "$pnote"
  else
    bench_unavailable "podman run --rm (runtime)" crun "crun cannot run here: $crun_error"
  fi
else
  bench_unavailable "podman run --rm (runtime)" podman "podman is not installed"
fi

# containerd (its own, under $work: CRI plugin off, no network) with its runc shim; the
# container gets a network namespace with only lo and ctr's default spec (no seccomp profile
# for either runtime), busybox from `kiste save`.
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
  if [ -d /run/containerd ]; then had_run_containerd=1; else had_run_containerd=; fi
  if [ ! -f "$work/busybox.tar" ]; then
    "$KISTE" --root "$work/kroot" import -c 'CMD ["/bin/sh"]' "$work/bb.tar" busybox >/dev/null
    "$KISTE" --root "$work/kroot" save -o "$work/busybox.tar" busybox >/dev/null
  fi
  cat >"$work/containerd.toml" <<EOF
version = 2
root = "$work/ctrd-root"
state = "$work/ctrd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$work/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/ctrd-opt"
EOF
  containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 </dev/null &
  ctrd_pid=$!
  C="ctr --address $work/containerd.sock --namespace kiste-bench-ctr"
  for _ in $(seq 100); do $C version >/dev/null 2>&1 && break; sleep 0.1; done
  $C image import "$work/busybox.tar" >/dev/null
  img=docker.io/library/busybox:latest
  cnote="ctr run --rm IMAGE ID true through containerd-shim-runc-v2 (containerd's time included)"
  bench_compare "ctr run --rm (runtime)" \
    "$C run --rm --runc-binary $RUNC_BIN --runc-root $work/ctr-kiste $img ck true" \
    runc "$C run --rm --runc-binary $(command -v runc) --runc-root $work/ctr-runc $img cr true" "" "$cnote"
else
  bench_unavailable "ctr run --rm (runtime)" containerd "containerd is not installed"
fi
