#!/usr/bin/env bash
# Start-up of `run --rm true` on a pure cgroup v2 host with systemd (the tests/vm guest, qemu TCG):
# kiste with each cgroup manager against runc --systemd-cgroup and runc on cgroupfs, N runs each,
# in one boot. TCG makes every number ~100x slower than on metal: compare ratios only.
#   bench/vm_latency.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
top=$(pwd)
work=$top/build/vmbench
rm -rf "$work" && mkdir -p "$work/rootfs" "$work/bundle" "$work/bundle-cgroupfs"
bash scripts/busybox-rootfs.sh "$work/bb.tar" && tar -C "$work/rootfs" -xf "$work/bb.tar"
(cd "$work/bundle" && runc spec)
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
c = json.load(open(f'{work}/bundle/config.json'))
c['process'].update(terminal=False, args=['true'])
c['root'] = {'path': f'{work}/rootfs', 'readonly': True}
c['linux']['cgroupsPath'] = 'system.slice:runc:bench'
json.dump(c, open(f'{work}/bundle/config.json', 'w'))
c['linux']['cgroupsPath'] = '/runcbench'
json.dump(c, open(f'{work}/bundle-cgroupfs/config.json', 'w'))
PY
cat > "$work/guest.sh" <<GUEST
#!/bin/sh
per_run() { echo "\$1: \$(echo "(\$3 - \$2) * 1000 / $n" | bc -l | cut -c1-7) ms per run"; }
for m in systemd cgroupfs; do
  a=\$(cut -d' ' -f1 /proc/uptime); i=0
  while [ \$i -lt $n ]; do
    $top/build/cli/kiste --root /tmp/kr run --rm --cgroup-manager \$m --rootfs $work/rootfs true || exit 1
    i=\$((i+1))
  done
  per_run "kiste --cgroup-manager \$m" \$a \$(cut -d' ' -f1 /proc/uptime)
done
for m in systemd cgroupfs; do
  a=\$(cut -d' ' -f1 /proc/uptime); i=0
  while [ \$i -lt $n ]; do
    if [ \$m = systemd ]; then runc --root /tmp/runc --systemd-cgroup run -b $work/bundle b\$i >/dev/null 2>&1 || exit 1
    else runc --root /tmp/runc run -b $work/bundle-cgroupfs c\$i >/dev/null 2>&1 || exit 1; fi
    i=\$((i+1))
  done
  per_run "runc (\$m)" \$a \$(cut -d' ' -f1 /proc/uptime)
done
GUEST
chmod +x "$work/guest.sh"
tests/vm/run.sh -- "$work/guest.sh"
