#!/usr/bin/env bash
# kiste-runc against crun and runc on a pure cgroup v2 host with systemd (the tests/vm guest,
# qemu TCG), where crun runs (it refuses this hybrid host): the raw create+start+delete of one
# prepared bundle, and podman run --rm with each as --runtime, in one boot. TCG makes every run
# ~100x slower than on metal: compare ratios only.
#   bench/vm_oci.sh [N] [PODMAN_N]
# The bundle is bench/oci.sh's: `runc spec` with terminal off and the command `true` on a
# busybox rootfs (3 capabilities, runc's masked and read-only paths, no_new_privs, read-only
# root, no seccomp profile for any runtime, new pid/net/ipc/uts/mount namespaces, the runtime's
# default cgroup on cgroupfs). podman: isolated vfs storage under the guest's /tmp, systemd's
# cgroup manager (the guest's default), --network none, busybox from `kiste save`.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
pn=${2:-5}
top=$(pwd)
kiste=$top/build/cli/kiste
[ -x "$kiste" ] || { echo "vm_oci: build kiste first ($kiste)" >&2; exit 1; }
work=$top/build/vmbench-oci
rm -rf "$work" && mkdir -p "$work/bundle/rootfs" "$work/out"
bash scripts/busybox-rootfs.sh "$work/bb.tar" >/dev/null && tar -C "$work/bundle/rootfs" -xf "$work/bb.tar"
(cd "$work/bundle" && runc spec)
jq '.process.terminal = false | .process.args = ["true"]' "$work/bundle/config.json" >"$work/c.json"
mv "$work/c.json" "$work/bundle/config.json"
"$kiste" --root "$work/kroot" import -c 'CMD ["/bin/sh"]' "$work/bb.tar" busybox >/dev/null
"$kiste" --root "$work/kroot" save -o "$work/busybox.tar" busybox >/dev/null
rm -rf "$work/kroot"
printf '[engine]\nruntime_supports_json = ["kiste-runc", "crun", "runc"]\nevents_logger = "none"\n' >"$work/containers.conf"

cat >"$work/guest.sh" <<GUEST
#!/bin/bash
set -eu
cycle() { echo "sh -c '\$1 --root /tmp/state-\$2 create --bundle $work/bundle b >/dev/null 2>&1 </dev/null && \$1 --root /tmp/state-\$2 start b && \$1 --root /tmp/state-\$2 delete --force b'"; }
hyperfine --warmup 1 --runs $n --style basic --export-json $work/out/raw.json \
  -n kiste "\$(cycle $top/build/cli/kiste-runc kiste)" -n crun "\$(cycle crun crun)" -n runc "\$(cycle runc runc)" >&2
P="env CONTAINERS_CONF=$work/containers.conf podman --root /tmp/pstore --runroot /tmp/prun --tmpdir /tmp/plib --storage-driver vfs"
\$P load -q -i $work/busybox.tar >/dev/null
U="--network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
hyperfine --warmup 1 --runs $pn --style basic --export-json $work/out/podman.json \
  -n kiste "\$P --runtime $top/build/cli/kiste-runc run --rm \$U busybox true" \
  -n crun "\$P --runtime \$(command -v crun) run --rm \$U busybox true" \
  -n runc "\$P --runtime \$(command -v runc) run --rm \$U busybox true" >&2
GUEST
chmod +x "$work/guest.sh"
tests/vm/run.sh -v --timeout 900 --out "$work/out" -- "$work/guest.sh"
for f in raw podman; do  # results in the order kiste, crun, runc
  jq -r --arg f "$f" '[.results[].median * 1000] as [$k, $c, $r]
    | "\($f): kiste \($k|round) ms, crun \($c|round) ms, runc \($r|round) ms;"
      + " kiste/crun \($k/$c*100|round/100), kiste/runc \($k/$r*100|round/100)"' "$work/out/$f.json"
done
