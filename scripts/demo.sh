#!/usr/bin/env bash
# The whole job kiste is hired for, on a built-in example, each step printed as it happens:
#   1. make a busybox base image offline (Debian's busybox-static) and `kiste build` the
#      multi-stage Containerfiles/hello;
#   2. start a local registry (Debian's docker-registry on a loopback port, temporary storage),
#      or use an existing one with --registry HOST:PORT;
#   3. push to staging/hello:1.0 and promote to prod/hello:1.0 with --expect-digest: both digests
#      are equal and no layer is uploaded twice;
#   4. pull prod/hello:1.0 into a fresh store and `kiste run` it with a memory limit;
#   5. stop the registry and clean up everything (no mount, process or cgroup left).
# Installs what it needs and builds kiste first (KISTE_DEMO_SKIP_BUILD=1 and KISTE=PATH skip it).
set -euo pipefail
cd "$(dirname "$0")/.."
registry=""
while [ $# -gt 0 ]; do
  case $1 in
    --registry) registry=${2:?--registry HOST:PORT}; shift 2 ;;
    --registry=*) registry=${1#--registry=}; shift ;;
    *) echo "usage: $0 [--registry HOST:PORT]" >&2; exit 2 ;;
  esac
done
registry=${registry#http://}
registry=${registry#https://}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ "${KISTE_DEMO_SKIP_BUILD:-}" != 1 ]; then
  step "installing dependencies (Debian packages) and building kiste"
  bash scripts/setup.sh
  bash scripts/build.sh
fi
kiste=${KISTE:-$PWD/build/cli/kiste}

work=$(mktemp -d /tmp/kiste-demo-XXXXXX)
registry_pid=""
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export KISTE_ROOT=$work/build-root

step "1. busybox base image, made offline from /bin/busybox"
bash scripts/busybox-rootfs.sh "$work/busybox.tar"
SOURCE_DATE_EPOCH=0 "$kiste" import "$work/busybox.tar" busybox:latest

# --network none: the RUN step needs no network, and the demo leaves the host's untouched
# (the default puts RUN steps on the bridge kiste0, with nft rules).
step "1. kiste build --network none -t hello:1.0 Containerfiles/hello"
"$kiste" build --network none --progress=plain -t hello:1.0 Containerfiles/hello
"$kiste" images

if [ -z "$registry" ]; then
  step "2. starting a local registry (docker-registry, temporary storage)"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  registry=127.0.0.1:$port
  cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: info, formatter: text}
storage: {filesystem: {rootdirectory: $work/registry-data}, delete: {enabled: true}}
http: {addr: $registry}
YML
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://$registry/v2/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://$registry/v2/" >/dev/null
  echo "registry listening on $registry (pid $registry_pid)"
else
  step "2. using the registry at $registry"
fi

step "3. kiste push hello:1.0 $registry/staging/hello:1.0"
staging=$("$kiste" push -q hello:1.0 "$registry/staging/hello:1.0")
echo "staging digest: $staging"

step "3. kiste promote staging -> prod --expect-digest $staging"
"$kiste" promote --expect-digest "$staging" "docker://$registry/staging/hello:1.0" "docker://$registry/prod/hello:1.0"
prod=$("$kiste" inspect -f '{{.Descriptor.digest}}' "docker://$registry/prod/hello:1.0")
echo "prod digest:    $prod"
[ "$staging" = "$prod" ] || { echo "demo: digests differ" >&2; exit 1; }
echo "digests are equal: the image tested in staging is the one in production"
if [ -n "$registry_pid" ]; then
  uploads=$(grep -c 'PUT /v2/prod/hello/blobs/uploads' "$work/registry.log" || true)
  mounts=$(grep -c 'POST /v2/prod/hello/blobs/uploads/?.*mount=' "$work/registry.log" || true)
  echo "blobs uploaded to prod: $uploads; mounted from staging: $mounts"
  [ "$uploads" = 0 ] || { echo "demo: promotion uploaded layers again" >&2; exit 1; }
fi

step "3. a promotion that expects another digest tags nothing"
if "$kiste" promote --expect-digest "sha256:$(printf '0%.0s' $(seq 1 64))" \
    "docker://$registry/staging/hello:1.0" "docker://$registry/prod/hello:wrong" 2>&1; then
  echo "demo: the wrong digest was accepted" >&2; exit 1
fi

step "4. kiste pull $registry/prod/hello:1.0 into a fresh store"
export KISTE_ROOT=$work/run-root
"$kiste" pull "$registry/prod/hello:1.0"
"$kiste" images

step "4. kiste run --rm --memory 32m $registry/prod/hello:1.0"
"$kiste" run --rm --memory 32m "$registry/prod/hello:1.0"

step "5. stopping the registry and cleaning up"
if [ -n "$registry_pid" ]; then kill "$registry_pid"; wait "$registry_pid" 2>/dev/null || true; registry_pid=""; fi
left=$(grep -c "$work" /proc/self/mountinfo || true)
echo "mounts left under the demo directory: $left"
[ "$left" = 0 ]
echo "done"
