#!/bin/bash
# Registry benchmark (not a test): kiste vs skopeo on a loopback docker-registry.
#   pull    a ~100 MB, 5-layer image into a fresh store / OCI dir, and both tools into an OCI
#           layout directory (kiste copy … oci:DIR) (and a raw-HTTP ceiling: curl
#           fetching the same 5 blobs in parallel to files)
#   push    the image into a new repository each run
#   promote staging -> a new production repository each run (kiste: mounts only; skopeo with its
#           blob-info cache warm, and with the cache removed before each run)
#   peak RSS of pull and push (GNU time)
# Usage: bench/registry.sh (or bench/run for everything); KISTE=path BENCH_RUNS=n to override.
# Needs docker-registry, skopeo, hyperfine, jq, curl, python3, /usr/bin/time. Rows go to
# $BENCH_OUT via lib.sh; works in a temp dir and leaves nothing behind.
source "$(dirname "$0")/lib.sh"

for t in docker-registry skopeo hyperfine jq curl python3 /usr/bin/time; do
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
NOCACHE="rm -rf $SKOPEO_CACHE/blob-info-cache-v1.*"
RAW="mkdir -p $D/raw && curl -s --parallel --parallel-max 6"
for b in $(cat "$D/blobs.txt"); do RAW+=" -o $D/raw/${b#sha256:} http://$H/v2/staging/big/blobs/$b"; done

bench_compare registry-pull "$KISTE --root $D/kp pull -q $H/staging/big:1" \
  skopeo "skopeo copy -q --src-tls-verify=false docker://$H/staging/big:1 oci:$D/sp:big" \
  "rm -rf $D/kp $D/sp $D/raw" "100 MB, 5 layers, loopback docker-registry"
bench_compare registry-pull-oci "$KISTE copy -q docker://$H/staging/big:1 oci:$D/ko:big" \
  skopeo "skopeo copy -q --src-tls-verify=false docker://$H/staging/big:1 oci:$D/sp:big" \
  "rm -rf $D/ko $D/sp" "both write an OCI layout directory (kiste copy … oci:DIR:NAME)"
bench_compare registry-pull-vs-raw "$KISTE --root $D/kp pull -q $H/staging/big:1" \
  curl-raw "$RAW" "rm -rf $D/kp $D/sp $D/raw" "raw-HTTP ceiling: curl --parallel of the 6 blobs to files"
bench_compare registry-push "$KISTE --root $D/kiste-src push -q $H/staging/big:1 $H/push\$(date +%s%N)/big:1" \
  skopeo "skopeo copy -q --dest-tls-verify=false oci:$D/src-oci:big docker://$H/spush\$(date +%s%N)/big:1" \
  "$NOCACHE" "new repository per run"
# skopeo's blob-info cache knows staging after this copy: it then mounts like kiste does.
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$H/staging/big:1" "docker://$H/warm/big:1"
bench_compare registry-promote "$KISTE promote -q $H/staging/big:1 $H/prod\$(date +%s%N)/big:1" \
  skopeo-cached "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$H/staging/big:1 docker://$H/sprod\$(date +%s%N)/big:1" \
  "" "new production repository per run; kiste mounts every blob without any cache"
bench_compare registry-promote-uncached "$KISTE promote -q $H/staging/big:1 $H/prod\$(date +%s%N)/big:1" \
  skopeo-uncached "skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$H/staging/big:1 docker://$H/sprod\$(date +%s%N)/big:1" \
  "$NOCACHE" "skopeo's blob-info cache removed before each run"
log "registry: rows appended to $BENCH_OUT"
