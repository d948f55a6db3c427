#!/usr/bin/env bash
# Start-to-exit latency of `true` in a fresh container: kiste vs runc vs crun (vs podman when it
# is installed and works). Same machine, same busybox rootfs, same run. Not a test: run it by
# hand (root) and read the medians and ratios it prints.
#
#   bench/run_latency.sh [path/to/kiste] [runs]
#
# Needs: hyperfine, runc, crun (apt-get install hyperfine runc crun), busybox-static, python3.
# crun refuses this hybrid cgroup host, so it runs inside `unshare --mount` with
# /sys/fs/cgroup/unified unmounted (as measured in the issue).
set -euo pipefail
KISTE=${1:-$(dirname "$0")/../build/cli/kiste}
RUNS=${2:-50}
KISTE=$(readlink -f "$KISTE")
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

cmds=(-n kiste "$KISTE --root $KROOT run --rm busybox true"
      -n kiste-rootfs "$KISTE --root $KROOT run --rm --rootfs $ROOTFS true"
      -n runc "runc run --bundle $BUNDLE kb-\$RANDOM\$RANDOM >/dev/null")
hyperfine -w 3 -r "$RUNS" --export-json "$WORK/main.json" "${cmds[@]}" >/dev/null

if command -v crun >/dev/null; then
  unshare --mount bash -c "
    mount --make-rprivate /
    umount /sys/fs/cgroup/unified 2>/dev/null || true
    hyperfine -w 3 -r $RUNS --export-json $WORK/crun.json \
      -n crun 'crun run --bundle $BUNDLE kc-\$RANDOM\$RANDOM >/dev/null' >/dev/null" || echo "crun: failed" >&2
fi
if command -v podman >/dev/null; then
  hyperfine -w 1 -r 10 --export-json "$WORK/podman.json" -n podman \
    "podman run --rm --network none --rootfs $ROOTFS true" >/dev/null 2>&1 || echo "podman: failed, skipped" >&2
fi

python3 - "$WORK" <<'PY'
import json, os, sys
w = sys.argv[1]
res = {}
for f in ("main.json", "crun.json", "podman.json"):
    p = os.path.join(w, f)
    if os.path.exists(p):
        for r in json.load(open(p))["results"]:
            res[r["command"]] = r["median"] * 1000
k = res.get("kiste")
print(f"{'runtime':8} {'median ms':>10} {'kiste/x':>8}")
for name, ms in res.items():
    print(f"{name:8} {ms:10.1f} {k / ms if k else float('nan'):8.2f}")
PY
