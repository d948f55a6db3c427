#!/bin/bash
# Registry benchmark (not a test): kiste vs skopeo on a loopback docker-registry.
#   pull    a ~100 MB, 5-layer image into a fresh store / OCI dir  (and a raw-HTTP ceiling: curl
#           fetching the same 5 blobs in parallel to files)
#   push    the image into a new repository each run
#   promote staging -> a new production repository each run (kiste: mounts only; skopeo with its
#           blob-info cache warm, and with the cache removed before each run)
#   peak RSS of pull and push (GNU time)
# Usage: bench/registry.sh [path/to/kiste]   (needs docker-registry, skopeo, hyperfine, curl,
#        python3, /usr/bin/time). Runs in a temp dir; leaves nothing behind.
set -euo pipefail

KISTE=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/cli/kiste}
RUNS=${RUNS:-10}
for t in docker-registry skopeo hyperfine curl python3 /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench: missing $t" >&2; exit 1; }
done
[ -x "$KISTE" ] || { echo "bench: no kiste binary at $KISTE" >&2; exit 1; }

D=$(mktemp -d /tmp/kiste-bench.XXXXXX)
REG_PID=
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
H=127.0.0.1:$PORT
cat >"$D/config.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $D/storage}, delete: {enabled: true}}
http: {addr: "$H", secret: bench}
EOF
docker-registry serve "$D/config.yml" >"$D/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf "http://$H/v2/" >/dev/null && break; sleep 0.05; done

# A 5-layer image of incompressible bytes (40+30+20+8+2 MB) as an OCI layout.
python3 - "$D" <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]; lay = os.path.join(d, "src-oci"); os.makedirs(lay + "/blobs/sha256")
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{lay}/blobs/sha256/{h}", "wb").write(b)
    return "sha256:" + h, len(b)
layers, diffs = [], []
for mb in (40, 30, 20, 8, 2):
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
     "annotations": {"org.opencontainers.image.ref.name": "big"}}]}))
open(d + "/blobs.txt", "w").write("\n".join([cd] + diffs) + "\n")
PY
skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$D/src-oci:big" "docker://$H/staging/big:1"
"$KISTE" --root "$D/kiste-src" pull -q "$H/staging/big:1" >/dev/null   # a store to push from

SKOPEO_CACHE=/var/lib/containers/cache
RAW="cd $D && mkdir -p raw && curl -s --parallel --parallel-max 6"
for b in $(cat "$D/blobs.txt"); do RAW+=" -o raw/${b#sha256:} http://$H/v2/staging/big/blobs/$b"; done

hyperfine -N --runs "$RUNS" --warmup 1 --export-json "$D/pull.json" \
  --prepare "rm -rf $D/kp $D/sp $D/raw" \
  -n kiste-pull "$KISTE --root $D/kp pull -q $H/staging/big:1" \
  -n skopeo-pull "skopeo copy -q --src-tls-verify=false docker://$H/staging/big:1 oci:$D/sp:big" \
  -n raw-http "bash -c '$RAW'" >/dev/null

hyperfine --runs "$RUNS" --warmup 1 --export-json "$D/push.json" \
  --prepare "rm -rf $SKOPEO_CACHE/blob-info-cache-v1.*" \
  -n kiste-push "$KISTE --root $D/kiste-src push -q $H/staging/big:1 $H/push\$(date +%s%N)/big:1" \
  -n skopeo-push "skopeo copy -q --dest-tls-verify=false oci:$D/src-oci:big docker://$H/spush\$(date +%s%N)/big:1" \
  >/dev/null

# Warm skopeo's blob-info cache with the staging location first.
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$H/staging/big:1" "docker://$H/warm/big:1"
hyperfine --runs "$RUNS" --warmup 1 --export-json "$D/promote.json" \
  -n kiste-promote "$KISTE promote -q $H/staging/big:1 $H/prod\$(date +%s%N)/big:1" \
  -n skopeo-promote-cached "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$H/staging/big:1 docker://$H/sprod\$(date +%s%N)/big:1" \
  >/dev/null
hyperfine --runs "$RUNS" --warmup 1 --export-json "$D/promote-nocache.json" \
  --prepare "rm -rf $SKOPEO_CACHE/blob-info-cache-v1.*" \
  -n skopeo-promote-uncached "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$H/staging/big:1 docker://$H/sprod\$(date +%s%N)/big:1" \
  >/dev/null

rss() { /usr/bin/time -f %M -o "$D/rss" "$@" >/dev/null 2>&1; cat "$D/rss"; }
rm -rf "$D/kp" "$D/sp"
K_PULL_RSS=$(rss "$KISTE" --root "$D/kp" pull -q "$H/staging/big:1")
S_PULL_RSS=$(rss skopeo copy -q --src-tls-verify=false "docker://$H/staging/big:1" "oci:$D/sp:big")
K_PUSH_RSS=$(rss "$KISTE" --root "$D/kiste-src" push -q "$H/staging/big:1" "$H/rsspush/big:1")
S_PUSH_RSS=$(rss skopeo copy -q --dest-tls-verify=false "oci:$D/src-oci:big" "docker://$H/srsspush/big:1")

python3 - "$D" "$K_PULL_RSS" "$S_PULL_RSS" "$K_PUSH_RSS" "$S_PUSH_RSS" <<'PY'
import json, sys
d = sys.argv[1]
med = {}
for f in ("pull", "push", "promote", "promote-nocache"):
    for r in json.load(open(f"{d}/{f}.json"))["results"]:
        med[r["command"]] = r["median"] * 1000
mb = 100.0
def line(name):
    print(f"  {name:26s} {med[name]:8.1f} ms")
print(f"median of hyperfine runs, ~100 MB / 5 layers, loopback docker-registry")
for n in ("kiste-pull", "skopeo-pull", "raw-http", "kiste-push", "skopeo-push",
          "kiste-promote", "skopeo-promote-cached", "skopeo-promote-uncached"):
    line(n)
print(f"pull:    kiste {mb/med['kiste-pull']*1000:.0f} MB/s; kiste/skopeo = {med['kiste-pull']/med['skopeo-pull']:.2f}; kiste/raw = {med['kiste-pull']/med['raw-http']:.2f}")
print(f"push:    kiste/skopeo = {med['kiste-push']/med['skopeo-push']:.2f}")
print(f"promote: kiste/skopeo(cached) = {med['kiste-promote']/med['skopeo-promote-cached']:.3f}; kiste/skopeo(uncached) = {med['kiste-promote']/med['skopeo-promote-uncached']:.3f}")
k1, s1, k2, s2 = (int(x) for x in sys.argv[2:6])
print(f"peak RSS: pull kiste {k1/1024:.1f} MiB vs skopeo {s1/1024:.1f} MiB; push kiste {k2/1024:.1f} MiB vs skopeo {s2/1024:.1f} MiB")
PY
