# Sourced by run_latency.sh and ab_latency.sh: a busybox root filesystem, an OCI bundle of it for
# runc/crun, and the same rootfs as an image in a kiste store with its snapshot made.
#   latency_setup WORK KISTE   -> sets ROOTFS, BUNDLE, KROOT below WORK
latency_setup() {
  local work=$1 kiste=$2
  ROOTFS=$work/rootfs
  mkdir -p "$ROOTFS"/{bin,etc,proc,sys,dev,tmp}
  cp /bin/busybox "$ROOTFS/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$ROOTFS/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$ROOTFS/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOTFS/etc/group"

  # An OCI bundle equivalent to `kiste run --rm` (runc's default spec, command `true`, writable
  # root like kiste's overlay).
  BUNDLE=$work/bundle
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

  KROOT=$work/kiste-root
  # The same rootfs as an image in kiste's store (snapshots present after the first run).
  tar -C "$ROOTFS" -cf "$work/busybox.tar" .
  "$kiste" --root "$KROOT" import "$work/busybox.tar" busybox:latest >/dev/null
  # One warm-up run compiles and caches the seccomp program (as a first `kiste run` would).
  "$kiste" --root "$KROOT" run --rm busybox true
}
