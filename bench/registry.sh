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
  bench_stop_registry
  rm -rf "$D"
}
trap cleanup EXIT

bench_start_registry "$D"
# A 5-layer image of incompressible bytes as an OCI layout.
bench_random_layout "$D" big 40 30 20 8 2
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
