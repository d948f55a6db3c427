#!/usr/bin/env bash
# Unpack benchmark (not a test): a ~100 MB image of a few large files and an image of ~20,000
# small files, unpacked by kiste, `umoci unpack` and `oci-image-tool unpack`, same machine, same
# run, with hyperfine. Prints medians and kiste's ratio to each peer.
#
#   bench/unpack.sh [BUILD_DIR]        (default: ./build)
# Environment: KISTE_BENCH_DIR (work dir, default /var/tmp/kiste-bench), RUNS_LARGE (5),
# RUNS_SMALL (3), SMALL_FILES (20000).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
work=${KISTE_BENCH_DIR:-/var/tmp/kiste-bench}
runs_large=${RUNS_LARGE:-5}
runs_small=${RUNS_SMALL:-3}
small_files=${SMALL_FILES:-20000}
layout=$work/layout
for tool in umoci hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "unpack.sh: needs $tool" >&2; exit 1; }
done

# kiste: the bench driver over the library's unpack_layers (what `kiste unpack` runs), unless
# KISTE_UNPACK_CMD gives another command; {layout}, {tag} and {out} are substituted, e.g.
#   KISTE_UNPACK_CMD='build/cli/kiste --root /tmp/r unpack {tag} {out}'
kiste_cmd=${KISTE_UNPACK_CMD:-"$build/bench/kiste-layer-bench unpack {layout}:{tag} {out}"}
kiste_unpack() {
  local c=${kiste_cmd//\{layout\}/$layout}
  c=${c//\{tag\}/$1}
  echo "${c//\{out\}/$2}"
}

mkdir -p "$work"
if [ ! -f "$work/.ready-$small_files" ]; then
  echo "unpack.sh: generating images in $work (once)"
  rm -rf "$work"/{layout,src-large,src-small,bundle-*}
  # A few large files: half incompressible, half text-like (compresses ~4:1).
  mkdir -p "$work/src-large/opt/blobs"
  head -c $((25 << 20)) /dev/urandom >"$work/src-large/opt/blobs/random1.bin"
  head -c $((25 << 20)) /dev/urandom >"$work/src-large/opt/blobs/random2.bin"
  head -c $((19 << 20)) /dev/urandom | base64 >"$work/src-large/opt/blobs/text1.txt"
  head -c $((19 << 20)) /dev/urandom | base64 -w 120 >"$work/src-large/opt/blobs/text2.txt"
  # Many small files (0.5-4 KiB of text) in 100 directories.
  python3 - "$work/src-small" "$small_files" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(42)
words = [("w%05d" % i) for i in range(5000)]
for i in range(n):
    d = os.path.join(root, "usr/share/pkg%03d" % (i % 100))
    os.makedirs(d, exist_ok=True)
    size = random.randint(512, 4096)
    text = " ".join(random.choice(words) for _ in range(size // 6))[:size]
    with open(os.path.join(d, "file%05d.txt" % i), "w") as f:
        f.write(text)
PY
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

results=$work/results
mkdir -p "$results"
out=$work/out
for kind in large small; do
  runs=$runs_large
  [ "$kind" = small ] && runs=$runs_small
  cmds=(-n kiste "$(kiste_unpack "$kind" "$out/kiste")"
        -n umoci "umoci unpack --image $layout:$kind $out/umoci")
  if command -v oci-image-tool >/dev/null; then
    cmds+=(-n oci-image-tool "oci-image-tool unpack --ref name=$kind $layout $out/oit")
  fi
  hyperfine --runs "$runs" --warmup 1 --prepare "sync; rm -rf $out; mkdir -p $out" \
    --export-json "$results/$kind.json" "${cmds[@]}"
done
rm -rf "$out"

python3 - "$results" <<'PY'
import json, sys, os
res = sys.argv[1]
print("\nmedians (s) and kiste's time as a fraction of each peer's:")
for kind in ("large", "small"):
    data = json.load(open(os.path.join(res, kind + ".json")))["results"]
    med = {r["command"]: r["median"] for r in data}
    k = med.get("kiste")
    line = "  %-5s " % kind + "  ".join("%s %.3f" % (c, m) for c, m in med.items())
    ratios = "  ".join("kiste/%s %.2f" % (c, k / m) for c, m in med.items() if c != "kiste")
    print(line + "   | " + ratios)
PY
