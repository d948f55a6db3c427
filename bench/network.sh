#!/usr/bin/env bash
# Bridge networks (issue 17), in a network namespace of its own (the bridge, the rules and the
# clients never touch the host's interfaces):
#   attach:  `run --rm --network NET busybox true` vs the same run without a network (the cost of
#            a lease, a veth pair, addresses and the route); podman's bridge run when it runs here.
#   publish: TCP throughput (iperf3, 2 GiB per run) from an "outside" namespace (198.51.100.1, on
#            a veth to this one) to an iperf3 server in a container, through a published port:
#            kiste's splice proxy (the default) and `--publish-bypass-firewall` (prerouting DNAT),
#            each vs the same iperf3 server in a plain namespace on a veth, routed by this one
#            without kiste ("direct"); and vs podman's `-p` (CNI bridge + portmap DNAT).
# Usage: bench/network.sh (as root; re-executes itself under `unshare -n`).
set -euo pipefail
if [ "${KISTE_BENCH_NETNS:-}" != 1 ]; then
  exec env KISTE_BENCH_NETNS=1 unshare -n -- bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
ip link set lo up
work=$(mktemp -d /tmp/kiste-bench-net.XXXXXX)
K="$KISTE --root $work/root"
P="env CONTAINERS_CONF=$work/containers.conf podman --root $work/pstore --runroot $work/prun --tmpdir $work/plib --storage-driver vfs --cgroup-manager cgroupfs --runtime $(command -v runc)"
pids=()
# podman's CNI keeps IPAM and result files under /var/lib/cni: removed afterwards if made here.
cni_made=
[ -e /var/lib/cni ] || cni_made=1
cleanup() {
  $K rm -f iperf-proxy iperf-dnat >/dev/null 2>&1 || true
  $P rm -f -t 0 iperf-podman >/dev/null 2>&1 || true
  $K network rm benchnet >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -z "$cni_made" ] || rm -rf /var/lib/cni
  rm -rf "$work"
}
trap cleanup EXIT
"$REPO_DIR/scripts/busybox-rootfs.sh" "$work/bb.tar" >/dev/null
$K import -c 'CMD ["/bin/sh"]' "$work/bb.tar" busybox >/dev/null
$K network create --subnet 192.0.2.0/24 benchnet >/dev/null

bench_compare "network attach (run --rm true)" \
  "$K run --rm --network benchnet busybox true" \
  "kiste --network none" "$K run --rm busybox true" "" \
  "peer is kiste itself without a network: the ratio is what a bridge attach costs"

command -v iperf3 >/dev/null || { bench_unavailable "publish throughput" iperf3 "iperf3 not installed (scripts/setup.sh)"; exit 0; }
# new_ns VAR: a new network namespace held by a sleeping process (unshare execs it: one pid),
# whose pid goes into VAR.
new_ns() {
  unshare -n sleep infinity >/dev/null 2>&1 &
  pids+=($!)
  printf -v "$1" '%s' "$!"
  sleep 0.1
}
# veth HOST_END NS_PID HOST_ADDR NS_ADDR: a veth from here into the namespace, both ends up.
veth() {
  ip link add "$1" type veth peer name eth0 netns "$2"
  ip addr add "$3/24" dev "$1"
  ip link set "$1" up
  nsenter -t "$2" -n sh -c "ip link set lo up && ip addr add $4/24 dev eth0 && ip link set eth0 up"
}
sysctl -qw net.ipv4.ip_forward=1
new_ns outside
veth out0 "$outside" 198.51.100.2 198.51.100.1
new_ns direct
veth srv0 "$direct" 203.0.113.1 203.0.113.10
nsenter -t "$direct" -n ip route add default via 203.0.113.1
nsenter -t "$outside" -n ip route add 203.0.113.0/24 via 198.51.100.2
nsenter -t "$direct" -n iperf3 -s -p 5201 >/dev/null 2>&1 &
pids+=($!)
# iperf3 in a container: the host's /usr read-only, started through its loader (the busybox
# image has no /lib64).
IPERF="/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path /usr/lib/x86_64-linux-gnu /usr/bin/iperf3 -s -p 5201"
$K run -d --name iperf-proxy --network benchnet -v /usr:/usr:ro -p 198.51.100.2:15201:5201 busybox $IPERF >/dev/null
$K run -d --name iperf-dnat --network benchnet --publish-bypass-firewall -v /usr:/usr:ro \
  -p 198.51.100.2:25201:5201 busybox $IPERF >/dev/null
# client HOST PORT [BYTES]: the iperf3 client command in the outside namespace.
client() { echo "nsenter -t $outside -n iperf3 -c $1 -p $2 -n ${3:-2G}"; }
# ready HOST PORT: waits until a 1 MiB test passes.
ready() {
  for _ in $(seq 1 50); do $(client "$1" "$2" 1M) >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
ready 203.0.113.10 5201 && ready 198.51.100.2 15201 && ready 198.51.100.2 25201
gbits() { $(client "$1" "$2") -J | jq '.end.sum_received.bits_per_second / 1e9 | .*10 | round / 10'; }
# Before each timed run (untimed): an iperf3 server takes one test at a time and may still be
# closing the last one (through a proxy it sees the control connection end a little later).
settle="sleep 0.5"
note="2 GiB from an outside namespace; Gbit/s kiste $(gbits 198.51.100.2 15201), direct $(gbits 203.0.113.10 5201)"
bench_compare "publish throughput, proxy (iperf3)" "$(client 198.51.100.2 15201)" \
  "direct veth, no kiste" "$(client 203.0.113.10 5201)" "$settle" "$note; time ratio: below 1.11 is >= 0.9x direct"
note="2 GiB from an outside namespace; Gbit/s kiste $(gbits 198.51.100.2 25201), direct $(gbits 203.0.113.10 5201)"
bench_compare "publish throughput, --publish-bypass-firewall DNAT (iperf3)" "$(client 198.51.100.2 25201)" \
  "direct veth, no kiste" "$(client 203.0.113.10 5201)" "$settle" "$note; time ratio: below 1.11 is >= 0.9x direct"

# podman 4.3 (Debian 12: CNI bridge, portmap DNAT) in this namespace, its network config here.
mkdir -p "$work/cni"
printf '[engine]\nevents_logger = "none"\n[network]\nnetwork_config_dir = "%s/cni"\n' "$work" >"$work/containers.conf"
podman_ok() {
  command -v podman >/dev/null || return 1
  $K save -o "$work/bb.docker.tar" busybox >/dev/null &&
    $P load -q -i "$work/bb.docker.tar" >/dev/null 2>&1 &&
    $P run -d --name iperf-podman -v /usr:/usr:ro -p 198.51.100.2:35201:5201 \
      --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 busybox $IPERF >/dev/null 2>&1
}
if podman_ok; then
  ready 198.51.100.2 35201
  note="2 GiB from an outside namespace; Gbit/s kiste $(gbits 198.51.100.2 15201), podman $(gbits 198.51.100.2 35201)"
  bench_compare "publish throughput, proxy vs podman -p (iperf3)" "$(client 198.51.100.2 15201)" \
    podman "$(client 198.51.100.2 35201)" "$settle" "$note; podman $(podman --version | cut -d' ' -f3), CNI bridge + portmap"
  bench_compare "network attach vs podman (run --rm true)" \
    "$K run --rm --network benchnet busybox true" \
    podman "$P run --rm --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 busybox true" "" \
    "podman's default bridge (CNI), --runtime runc, vfs storage"
else
  bench_unavailable "publish throughput, proxy vs podman -p (iperf3)" podman "podman not installed or cannot run a bridged container here"
fi
