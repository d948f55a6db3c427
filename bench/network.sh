#!/usr/bin/env bash
# Bridge networks (issue 17), in a network namespace of its own (the bridge, the rules and the
# clients never touch the host's interfaces):
#   attach:  `run --rm --network NET busybox true` vs the same run without a network (the cost of
#            a lease, a veth pair, addresses and the route); podman's bridge run when installed.
#   publish: 256 MiB from the host to a container, through a published port on 127.0.0.1 (kiste's
#            splice proxy) vs straight to the container's address over the bridge (the kernel's
#            forwarding path that a DNAT rule would use).
# Usage: bench/network.sh (as root; re-executes itself under `unshare -n`).
set -euo pipefail
if [ "${KISTE_BENCH_NETNS:-}" != 1 ]; then
  exec env KISTE_BENCH_NETNS=1 unshare -n -- bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
ip link set lo up
work=$(mktemp -d /tmp/kiste-bench-net.XXXXXX)
K="$KISTE --root $work/root"
cleanup() {
  $K rm -f sink >/dev/null 2>&1 || true
  $K network rm benchnet >/dev/null 2>&1 || true
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

# One connection per measured run: the sink container's nc takes it, drains it and exits; its
# shell loop listens again (bounded: 1000 connections).
$K run -d --name sink --network benchnet --ip 192.0.2.10 -p 127.0.0.1:18080:8080 busybox \
  sh -c 'i=0; while [ $i -lt 1000 ]; do nc -l -p 8080 >/dev/null; i=$((i+1)); done' >/dev/null
# send.py HOST PORT: 256 MiB, then half-close and wait for the sink to close.
cat >"$work/send.py" <<'EOF'
import socket, sys, time
for _ in range(50):  # the listener comes back between connections
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
        break
    except OSError:
        time.sleep(0.05)
else:
    sys.exit("no listener")
buf = b"\0" * (1 << 20)
for _ in range(256):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
EOF
bench_compare "publish throughput (256 MiB)" \
  "python3 $work/send.py 127.0.0.1 18080" \
  "direct to the container" "python3 $work/send.py 192.0.2.10 8080" "" \
  "peer is the bridge path straight to the container's address: the ratio is the proxy's cost"
