#!/bin/bash
# Release benchmark (not a test): promote a release of 20 images (5 layers each: one shared 8 MB
# base, four 1 MB layers of the image's own) from staging to a new production namespace each run,
# on a loopback docker-registry, in one run:
#   kiste:        kiste promote -q --release FILE          (verify, mount every blob, push every
#                                                          manifest by digest, then move the tags)
#   skopeo loop:  for each image: skopeo copy docker://REG/staging/appN:1 docker://REG/prod/…/appN:1
#   skopeo sync:  skopeo sync --src yaml (the 20 staging repositories) --dest docker REG/prod/…
# skopeo's blob-info cache is warm (it knows staging's blobs, so it mounts like kiste does).
# Usage: bench/release.sh (or bench/run); KISTE=path BENCH_RUNS=n to override. Leaves nothing
# behind.
source "$(dirname "$0")/lib.sh"

for t in docker-registry skopeo hyperfine jq curl python3 /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench: missing $t" >&2; exit 1; }
done
[ -x "$KISTE" ] || { echo "bench: no kiste binary at $KISTE" >&2; exit 1; }

N=20
D=$(mktemp -d /tmp/kiste-bench-release.XXXXXX)
REG_PID=
cleanup() {
  bench_stop_registry
  rm -rf "$D"
}
trap cleanup EXIT

bench_start_registry "$D"
# One OCI layout holding app1..app20: a shared base layer plus four layers of each image's own.
python3 - "$D/src-oci" "$N" <<'PY'
import hashlib, json, os, sys
lay, n = sys.argv[1], int(sys.argv[2])
os.makedirs(lay + "/blobs/sha256")
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{lay}/blobs/sha256/{h}", "wb").write(b)
    return {"digest": "sha256:" + h, "size": len(b)}
L = "application/vnd.oci.image.layer.v1.tar+gzip"
base = dict(put(os.urandom(8 * 1000 * 1000)), mediaType=L)
index = []
for i in range(1, n + 1):
    layers = [base] + [dict(put(os.urandom(1000 * 1000)), mediaType=L) for _ in range(4)]
    cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}).encode())
    m = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": dict(cfg, mediaType="application/vnd.oci.image.config.v1+json"),
                        "layers": layers}).encode())
    index.append(dict(m, mediaType="application/vnd.oci.image.manifest.v1+json",
                      annotations={"org.opencontainers.image.ref.name": f"app{i}"}))
open(lay + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
open(lay + "/index.json", "w").write(json.dumps({"schemaVersion": 2, "manifests": index}))
PY
for i in $(seq $N); do
  skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$D/src-oci:app$i" "docker://$H/staging/app$i:1"
done

# Each timed run promotes into a new namespace (prod/<tool><ns>/appN:1), so nothing is present
# there yet; the three commands are scripts so they can pick that name.
cat >"$D/kiste.sh" <<SH
ns=k\$(date +%s%N)
for i in \$(seq $N); do echo "$H/staging/app\$i:1 $H/prod/\$ns/app\$i:1"; done >$D/release-\$ns.txt
exec $KISTE promote -q --release $D/release-\$ns.txt >/dev/null
SH
cat >"$D/loop.sh" <<SH
ns=l\$(date +%s%N)
for i in \$(seq $N); do
  skopeo copy -q --src-tls-verify=false --dest-tls-verify=false docker://$H/staging/app\$i:1 docker://$H/prod/\$ns/app\$i:1
done
SH
{
  echo "$H:"
  echo "  tls-verify: false"
  echo "  images:"
  for i in $(seq $N); do echo "    staging/app$i: [\"1\"]"; done
} >"$D/sync.yaml"
cat >"$D/sync.sh" <<SH
exec skopeo sync --src yaml --dest docker --dest-tls-verify=false $D/sync.yaml $H/prod/s\$(date +%s%N) >/dev/null
SH
# Every side works before anything is timed (and skopeo's blob-info cache learns staging).
bash "$D/kiste.sh"
bash "$D/loop.sh"
bash "$D/sync.sh"
ns=$(ls "$D"/release-*.txt | head -1 | sed 's/.*release-\(.*\)\.txt/\1/')
for i in $(seq $N); do
  a=$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$H/v2/staging/app$i/manifests/1" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
  b=$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$H/v2/prod/$ns/app$i/manifests/1" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
  [ -n "$a" ] && [ "$a" = "$b" ] || { echo "bench: kiste's release left prod/$ns/app$i at '$b', staging is '$a'" >&2; exit 1; }
done

NOTE="20 images x 5 layers (8 MB shared base + 4 x 1 MB own), one registry, a new prod namespace per run; skopeo's blob-info cache warm"
bench_compare release-promote-20 "bash $D/kiste.sh" skopeo-copy-loop "bash $D/loop.sh" "" "$NOTE"
bench_compare release-promote-20-sync "bash $D/kiste.sh" skopeo-sync "bash $D/sync.sh" "" "$NOTE; skopeo sync --src yaml of the 20 staging repositories"
