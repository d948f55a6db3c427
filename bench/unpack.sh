#!/usr/bin/env bash
# Unpack benchmark (not a test): a ~100 MB image of a few large files and an image of ~20,000
# small files, flattened to a directory by `kiste unpack`, `umoci unpack` and
# `oci-image-tool unpack`, same machine, same hyperfine invocation per pair (bench/lib.sh rows:
# median, ratio kiste/peer, peak RSS). The images are built once by umoci into an OCI layout and
# loaded into a kiste store through an oci-archive.
#
# Environment: KISTE_BENCH_DIR (work dir, default /var/tmp/kiste-bench), BENCH_RUNS (lib.sh;
# the small-files comparisons use at most SMALL_RUNS, default 3), SMALL_FILES (20000),
# KISTE_UNPACK_DRIVER=1 to time build/bench/kiste-layer-bench (the library without the CLI).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
work=${KISTE_BENCH_DIR:-/var/tmp/kiste-bench}
small_files=${SMALL_FILES:-20000}
small_runs=${SMALL_RUNS:-3}
layout=$work/layout
for tool in umoci hyperfine python3 jq; do
  command -v "$tool" >/dev/null || { echo "unpack.sh: needs $tool" >&2; exit 1; }
done

mkdir -p "$work"
if [ ! -f "$work/.ready-$small_files" ]; then
  echo "unpack.sh: generating images in $work (once)"
  rm -rf "$work"/{layout,src-large,src-small,bundle-*}
  # A few large files: half incompressible, half base64 text (gzip shrinks it to ~76%).
  mkdir -p "$work/src-large/opt/blobs"
  head -c $((25 << 20)) /dev/urandom >"$work/src-large/opt/blobs/random1.bin"
  head -c $((25 << 20)) /dev/urandom >"$work/src-large/opt/blobs/random2.bin"
  head -c $((19 << 20)) /dev/urandom | base64 >"$work/src-large/opt/blobs/text1.txt"
  head -c $((19 << 20)) /dev/urandom | base64 -w 120 >"$work/src-large/opt/blobs/text2.txt"
  # Many small files (0.5-4 KiB of text) in 100 directories.
  bench_small_files "$work/src-small" "$small_files"
  umoci init --layout "$layout"
  for kind in large small; do
    umoci new --image "$layout:$kind"
    umoci unpack --image "$layout:$kind" "$work/bundle-$kind"
    cp -a "$work/src-$kind/." "$work/bundle-$kind/rootfs/"
    umoci repack --image "$layout:$kind" "$work/bundle-$kind"
    rm -rf "$work/bundle-$kind"
  done
  touch "$work/.ready-$small_files"
fi

# Load both images into a kiste store (an oci-archive is a tar of the layout; the containerd
# name annotation gives them names).
kroot=$work/kiste-root
if [ ! -f "$kroot/.loaded-$small_files" ]; then
  rm -rf "$kroot" "$work/archive"
  mkdir -p "$work/archive"
  cp -a "$layout/." "$work/archive/"
  jq '.manifests |= map(.annotations["io.containerd.image.name"] =
        ("localhost/bench/" + .annotations["org.opencontainers.image.ref.name"] + ":latest"))' \
    "$layout/index.json" >"$work/archive/index.json"
  tar -C "$work/archive" -cf "$work/images.tar" .
  "$KISTE" --root "$kroot" load -q -i "$work/images.tar"
  rm -rf "$work/archive" "$work/images.tar"
  touch "$kroot/.loaded-$small_files"
fi

out=$work/out
# Remove the last output and sync before each run, so no run pays for the previous one's deletes.
prepare="rm -rf $out; mkdir -p $out; sync"
all_runs=$BENCH_RUNS
for kind in large small; do
  if [ "$kind" = small ] && [ "$BENCH_RUNS" -gt "$small_runs" ]; then BENCH_RUNS=$small_runs; fi
  if [ "${KISTE_UNPACK_DRIVER:-0}" = 1 ]; then
    kcmd="$REPO_DIR/build/bench/kiste-layer-bench unpack $layout:$kind $out/kiste"
  else
    kcmd="$KISTE --root $kroot unpack localhost/bench/$kind:latest $out/kiste"
  fi
  note="$(du -sh --apparent-size "$work/src-$kind" | cut -f1) in $(find "$work/src-$kind" -type f | wc -l) files"
  bench_compare "unpack-$kind" "$kcmd" umoci "umoci unpack --image $layout:$kind $out/umoci" \
    "$prepare" "$note"
  if command -v oci-image-tool >/dev/null; then
    bench_compare "unpack-$kind" "$kcmd" oci-image-tool \
      "oci-image-tool unpack --ref name=$kind $layout $out/oit" "$prepare" "$note"
  else
    bench_unavailable "unpack-$kind" oci-image-tool "not installed"
  fi
  BENCH_RUNS=$all_runs
done
rm -rf "$out"
jq -r 'select(.comparison | startswith("unpack-")) |
  "\(.comparison) kiste \(.kiste_ms) ms vs \(.peer) \(.peer_ms) ms: ratio \(.ratio) (RSS \(.kiste_rss_kib) / \(.peer_rss_kib) KiB)"' \
  "$BENCH_OUT" | tail -4 >&2
