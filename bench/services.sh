#!/usr/bin/env bash
# Detached containers (issue 16), kiste vs the peers the issue names, in one run:
# - `run -d` + `stop -t 0` + `rm` of `busybox sleep 600` vs podman (`--runtime runc`);
# - `exec CONTAINER true` vs `podman exec` and vs `runc exec` into a runc container;
# - the RSS of kiste's per-container monitor vs podman's conmon, while a container runs.
# podman: isolated storage (vfs) under the work dir, `--network none`, busybox from `kiste save`.
# Usage: bench/services.sh   Environment: KISTE (binary), BENCH_RUNS, BENCH_OUT
set -euo pipefail
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d /tmp/kiste-bench-svc.XXXXXX)
K="$KISTE --root $work/root"
P=
cleanup() {
  $K ps -aq 2>/dev/null | xargs -r $K rm -f >/dev/null 2>&1 || true
  runc --root "$work/runc" delete --force rb >/dev/null 2>&1 || true
  if [ -n "$P" ]; then $P rm -a -f -t 0 >/dev/null 2>&1 || true; fi
  for d in /sys/fs/cgroup/*/libpod_parent; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
for t in podman runc jq hyperfine; do
  command -v "$t" >/dev/null || { echo "bench: missing $t" >&2; exit 1; }
done

bash "$REPO_DIR/scripts/busybox-rootfs.sh" "$work/bb.tar" >/dev/null
$K import -c 'CMD ["/bin/sh"]' "$work/bb.tar" busybox >/dev/null
$K save -o "$work/busybox.tar" busybox >/dev/null
printf '[engine]\nevents_logger = "none"\n' >"$work/containers.conf"
P="env CONTAINERS_CONF=$work/containers.conf podman --root $work/pstore --runroot $work/prun --tmpdir $work/plib --storage-driver vfs --cgroup-manager cgroupfs --runtime $(command -v runc)"
$P load -q -i "$work/busybox.tar" >/dev/null
# This host: root lacks CAP_SYS_RESOURCE and the hard nofile limit is 20000.
U="--network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"

# (one sh per cycle: lib.sh's RSS probe execs the command, which would end an && chain)
bench_compare "run -d + stop + rm" \
  "sh -c '$K run -d --name cyc busybox sleep 600 >/dev/null && $K stop -t 0 cyc >/dev/null && $K rm cyc >/dev/null'" \
  podman "sh -c '$P run -d --name cyc $U busybox sleep 600 >/dev/null && $P stop -t 0 cyc >/dev/null && $P rm cyc >/dev/null'" \
  "" "busybox sleep 600; podman --runtime runc, vfs storage, --network none"

$K run -d --name bench busybox sleep 600 >/dev/null
$P run -d --name pbench $U busybox sleep 600 >/dev/null
mkdir -p "$work/bundle/rootfs"
tar -C "$work/bundle/rootfs" -xf "$work/bb.tar"
(cd "$work/bundle" && runc spec)
jq '.process.terminal = false | .process.args = ["sleep", "600"]' "$work/bundle/config.json" >"$work/c.json"
mv "$work/c.json" "$work/bundle/config.json"
runc --root "$work/runc" run -d --bundle "$work/bundle" rb </dev/null >/dev/null 2>&1
bench_compare "exec CONTAINER true" "$K exec bench true" podman "$P exec pbench true" "" \
  "into a running busybox sleep 600"
bench_compare "exec CONTAINER true" "$K exec bench true" "runc exec" "runc --root $work/runc exec rb true" "" \
  "kiste exec (its seccomp, caps, cgroup) vs runc exec into a runc-spec bundle (no seccomp)"

sleep 1  # the monitor drops its code pages 250 ms after the start
monitor=$(grep -o '"monitor_pid":[0-9]*' "$work/root/containers/"*/state.json | head -1 | cut -d: -f2)
conmon=$($P inspect --format '{{.State.ConmonPid}}' pbench)
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
krss=$(rss "$monitor")
prss=$(rss "$conmon")
log "monitor RSS while a container runs: kiste monitor ${krss} KiB, conmon ${prss} KiB"
jq -nc --argjson kr "$krss" --argjson pr "$prss" \
  '{comparison:"monitor RSS (running container)", kiste_ms:null, peer:"conmon", peer_ms:null,
    ratio:(($kr/$pr)*1000|round/1000), kiste_rss_kib:$kr, peer_rss_kib:$pr,
    note:"VmRSS of the per-container monitor vs podman conmon, 1 s after start"}' >>"$BENCH_OUT"
