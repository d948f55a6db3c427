# Shared by the bench/*.sh scripts (sourced). Each comparison runs kiste and a peer in the same
# hyperfine invocation (warm-up + several runs) and appends one row to $BENCH_OUT (JSON lines):
#   {"comparison", "kiste_ms", "peer", "peer_ms", "ratio", "kiste_rss_kib", "peer_rss_kib", "note"}
# ratio = kiste median / peer median (below 1 means kiste is faster).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
KISTE=${KISTE:-$REPO_DIR/build/cli/kiste}
BENCH_RUNS=${BENCH_RUNS:-10}
BENCH_OUT=${BENCH_OUT:-$BENCH_DIR/results/rows.jsonl}
mkdir -p "$(dirname "$BENCH_OUT")"

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

# Peak RSS in KiB of one run of a shell command (after `prepare`, if given).
peak_rss_kib() {
  local cmd=$1 prepare=${2:-true} out
  out=$(mktemp)
  bash -c "$prepare" >/dev/null 2>&1 || true
  /usr/bin/time -f '%M' -o "$out" bash -c "exec $cmd" >/dev/null 2>&1 || true
  tail -1 "$out"
  rm -f "$out"
}

# bench_compare NAME KISTE_CMD PEER_NAME PEER_CMD [PREPARE_CMD] [NOTE]
# PREPARE_CMD runs before every timed run of either command (hyperfine --prepare).
bench_compare() {
  local name=$1 kcmd=$2 peer=$3 pcmd=$4 prepare=${5:-} note=${6:-}
  local json
  json=$(mktemp)
  log "$name: kiste vs $peer ($BENCH_RUNS runs each)"
  local args=(--warmup 1 --runs "$BENCH_RUNS" --export-json "$json" --style basic)
  [ -n "$prepare" ] && args+=(--prepare "$prepare")
  hyperfine "${args[@]}" -n kiste "$kcmd" -n "$peer" "$pcmd" >&2
  local k p krss prss
  k=$(jq '.results[0].median * 1000' "$json")
  p=$(jq '.results[1].median * 1000' "$json")
  krss=$(peak_rss_kib "$kcmd" "${prepare:-true}")
  prss=$(peak_rss_kib "$pcmd" "${prepare:-true}")
  jq -nc --arg c "$name" --arg peer "$peer" --arg note "$note" \
    --argjson k "$k" --argjson p "$p" --argjson kr "${krss:-0}" --argjson pr "${prss:-0}" \
    '{comparison:$c, kiste_ms:($k|.*10|round/10), peer:$peer, peer_ms:($p|.*10|round/10),
      ratio:(($k/$p)*1000|round/1000), kiste_rss_kib:$kr, peer_rss_kib:$pr, note:$note}' >>"$BENCH_OUT"
  rm -f "$json"
}

# A row for a peer that cannot run here: says why instead of dropping the row.
bench_unavailable() {
  local name=$1 peer=$2 why=$3
  log "$name: $peer unavailable: $why"
  jq -nc --arg c "$name" --arg peer "$peer" --arg note "$why" \
    '{comparison:$c, kiste_ms:null, peer:$peer, peer_ms:null, ratio:null, kiste_rss_kib:null, peer_rss_kib:null, note:$note}' >>"$BENCH_OUT"
}

# bench_build_roots WORK: a kiste root and a buildah root (overlay driver) under WORK, each
# holding `busybox` from $WORK/busybox.tar. Sets kroot, broot, brun and the commands
# kbuild_base / bbuild_base (append -t, flags and the context). Both builders' RUN steps get
# --network none: the benches measure building, and a bridge (kiste0, buildah's CNI) would touch
# the host's network and nftables.
bench_build_roots() {
  local work=$1 id
  kroot=$work/kiste-root
  rm -rf "$kroot"
  "$KISTE" --root "$kroot" import "$work/busybox.tar" busybox >/dev/null
  broot=$work/buildah-root
  brun=$work/buildah-runroot
  local b="buildah --root $broot --runroot $brun --storage-driver overlay"
  $b rmi --all --force >/dev/null 2>&1 || true
  "$KISTE" --root "$kroot" save --format oci-archive -o "$work/busybox.oci.tar" busybox
  id=$($b pull -q "oci-archive:$work/busybox.oci.tar")
  $b tag "$id" busybox
  kbuild_base="$KISTE --root $kroot build -q --network none"
  bbuild_base="$b bud --layers --pull=never --runtime runc --network none -q"
}

# A docker-registry on a free loopback port storing under $1 (its log in $1/registry.log); sets H
# (host:port) and REG_PID, and returns once it answers. The caller kills $REG_PID on exit.
# N small text files (0.5-4 KiB, seeded: the same bytes every run) in 100 directories below
# DIR/usr/share: the many-small-files tree of the unpack and rootless benchmarks.
bench_small_files() {
  python3 - "$1" "$2" <<'PY'
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
}

# Stops the registry bench_start_registry started (nothing when none runs): for cleanup traps.
bench_stop_registry() {
  if [ -n "${REG_PID:-}" ]; then
    # `|| true`: wait returns the registry's 143, which under set -e would end the caller's
    # cleanup trap before the rest of it ran.
    kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
  fi
  return 0
}

bench_start_registry() {
  local dir=$1 port
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  H=127.0.0.1:$port
  cat >"$dir/config.yml" <<CONFIG
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/storage}, delete: {enabled: true}}
http: {addr: "$H", secret: bench}
CONFIG
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 100); do curl -sf "http://$H/v2/" >/dev/null && break; sleep 0.05; done
}

# An OCI layout $1/src-oci with one image named $2 whose layers are incompressible bytes of the
# given sizes in MB (`bench_random_layout DIR app 8 4 2`); $1/blobs.txt lists its config and layer
# digests.
bench_random_layout() {
  python3 - "$@" <<'PY'
import hashlib, json, os, sys
d, name, sizes = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3:]]
lay = os.path.join(d, "src-oci"); os.makedirs(lay + "/blobs/sha256")
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{lay}/blobs/sha256/{h}", "wb").write(b)
    return "sha256:" + h, len(b)
layers, diffs = [], []
for mb in sizes:
    dg, sz = put(os.urandom(mb * 1000 * 1000))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg, "size": sz})
    diffs.append(dg)
cd, cs = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diffs}}).encode())
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                "layers": layers}).encode()
md, ms = put(m)
open(lay + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
open(lay + "/index.json", "w").write(json.dumps({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
     "annotations": {"org.opencontainers.image.ref.name": name}}]}))
open(d + "/blobs.txt", "w").write("\n".join([cd] + diffs) + "\n")
PY
}
