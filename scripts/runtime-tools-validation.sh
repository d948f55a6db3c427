#!/usr/bin/env bash
# Runs opencontainers/runtime-tools' validation suite against kiste-runc and runc, offline:
#   scripts/runtime-tools-validation.sh RUNTIME_TOOLS_SRC [KISTE_RUNC]
# RUNTIME_TOOLS_SRC is a runtime-tools source tree at the commit Debian packages (0105384,
# 0.9.0+git20220423). Debian's golang-github-opencontainers-runtime-tools-dev ships only the
# library packages (generate, validate, specerror, …), not validation/ nor cmd/runtimetest, and
# github.com/mndrix/tap-go is not packaged; those three come from the source tree (tap-go from its
# vendor/), everything else from Debian's /usr/share/gocode (GOPATH mode, GOPROXY=off).
# Prints one line per validation binary and runtime, then the counts; exits 1 when kiste fails a
# binary that runc passes and that is not listed in `unsupported` below with its reason.
set -euo pipefail
# In a mount namespace of its own: runc's rootfsPropagation=shared case propagates the
# container's proc, sys and dev mounts back onto the bundle, which would leave them on the host.
if [ -z "${KISTE_RTVAL_NS:-}" ]; then
  exec env KISTE_RTVAL_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
src=$(realpath "${1:?usage: runtime-tools-validation.sh RUNTIME_TOOLS_SRC [KISTE_RUNC]}")
here=$(cd "$(dirname "$0")/.." && pwd)
kiste=${2:-$here/build/cli/kiste-runc}  # not resolved: kiste is kiste-runc by its name
[ "${kiste#/}" != "$kiste" ] || kiste=$PWD/$kiste
for f in "$src/validation/util/test.go" "$src/cmd/runtimetest/main.go" "$src/vendor/github.com/mndrix/tap-go"; do
  [ -e "$f" ] || { echo "runtime-tools-validation: $f missing in the source tree" >&2; exit 1; }
done
[ -x "$kiste" ] || { echo "runtime-tools-validation: $kiste missing (build kiste first)" >&2; exit 1; }
command -v go >/dev/null || { echo "runtime-tools-validation: go missing (apt-get install golang-go)" >&2; exit 1; }
debian=/usr/share/gocode/src
[ -d "$debian/github.com/opencontainers/runtime-tools/generate" ] || {
  echo "runtime-tools-validation: apt-get install golang-github-opencontainers-runtime-tools-dev golang-github-google-uuid-dev" >&2
  exit 1; }

# Binaries kiste fails by design, with the reason (the name of the validation binary).
declare -A unsupported=(
  [config_updates_without_affect]="linux.rootfsPropagation shared is refused: kiste keeps the root private"
  [mounts]="the mount option shared (propagation) is refused: kiste makes mounts private or slave only"
  [linux_cgroups_cpus]="linux.resources.cpu.cpus/mems (cpuset) are refused"
  [linux_cgroups_relative_cpus]="linux.resources.cpu.cpus/mems (cpuset) are refused"
  [linux_ns_itype]="a container without namespaces of its own is refused"
  [linux_ns_path]="joining mount, pid or user namespaces by path is refused (net, ipc, uts, cgroup work)"
)

work=$(mktemp -d /tmp/kiste-rtval.XXXXXX)
cleanup() {  # what a failed binary left: containers, mounts, cgroups (its fixed names), files
  local rt id
  for rt in "$(command -v runc)" "$kiste"; do
    for id in $("$rt" list -q 2>/dev/null); do
      if "$rt" state "$id" 2>/dev/null | grep -q "\"bundle\": *\"$work/"; then
        "$rt" delete --force "$id" >/dev/null 2>&1 || true
      fi
    done
  done
  findmnt -rn -o TARGET | grep "^$work/" | sort -r | xargs -r umount -l || true
  rmdir /sys/fs/cgroup/*/testdir/cgrouptest /sys/fs/cgroup/*/testdir /sys/fs/cgroup/*/cgrouptest 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
gopath=$work/gopath
rt=$gopath/src/github.com/opencontainers/runtime-tools
mkdir -p "$gopath/src/github.com/opencontainers" "$rt"
for d in "$debian"/*; do [ "${d##*/}" = github.com ] || ln -s "$d" "$gopath/src/"; done
for d in "$debian"/github.com/*; do
  case ${d##*/} in opencontainers) ;; *) ln -s "$d" "$gopath/src/github.com/" ;; esac
done
for d in "$debian"/github.com/opencontainers/*; do
  [ "${d##*/}" = runtime-tools ] || ln -s "$d" "$gopath/src/github.com/opencontainers/"
done
for d in "$debian"/github.com/opencontainers/runtime-tools/*; do ln -s "$d" "$rt/"; done
cp -r "$src/validation" "$src/cmd" "$rt/"
cp -r "$src/vendor/github.com/mndrix" "$gopath/src/github.com/"

export GOPATH=$gopath GO111MODULE=off GOPROXY=off GOFLAGS= GOCACHE=${GOCACHE:-/var/cache/kiste-test/go-build}
run=$work/run
mkdir -p "$run"
echo "==> building runtimetest and the validation binaries (Debian's $(go version | cut -d' ' -f3))"
(cd "$rt" && CGO_ENABLED=0 go build -o "$run/runtimetest" ./cmd/runtimetest)
tests=()
for f in $(cd "$rt" && find validation -name '*.go' -not -path '*/util/*' | sort); do
  name=$(basename "$(dirname "$f")")
  (cd "$rt" && go build -o "$run/$name.t" "./$f")
  tests+=("$name")
done
bash "$here/scripts/busybox-rootfs.sh" "$work/rootfs.tar"
gzip -c "$work/rootfs.tar" >"$run/rootfs-$(go env GOARCH).tar.gz"

# One line per binary into $work/<runtime>.results: name pass|fail rc ok not-ok skip.
run_one() {  # runtime-label runtime-path name
  local label=$1 bin=$2 name=$3 tap rc=0 p f s verdict=pass
  tap=$work/$label-$name.tap
  # (TMPDIR: the bundles a failed binary leaves go with $work)
  mkdir -p "$work/tmp-$label"
  (cd "$run" && RUNTIME=$bin TMPDIR=$work/tmp-$label timeout 120 "./$name.t" >"$tap" 2>"$work/$label-$name.err") || rc=$?
  p=$(grep -E '^ok ' "$tap" | grep -vic '# skip' || true)
  s=$(grep -E '^ok ' "$tap" | grep -ic '# skip' || true)
  f=$(grep -c '^not ok ' "$tap" || true)
  if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
    verdict=fail
  elif [ $((p + s)) -eq 0 ]; then
    verdict=none  # a plan of 0: the binary checked nothing (the hooks ones, on both runtimes)
  fi
  echo "$name $verdict $rc $p $f $s" >>"$work/$label.results"
}
run_list() {  # runtime-label runtime-path name...
  local label=$1 bin=$2 name
  shift 2
  for name in "$@"; do run_one "$label" "$bin" "$name"; done
}
# The two runtimes run side by side, except the tests that use fixed cgroup paths.
plain=() cgroup=()
for name in "${tests[@]}"; do
  case $name in linux_cgroups_* | delete_only_create_resources) cgroup+=("$name") ;; *) plain+=("$name") ;; esac
done
runc=$(command -v runc)
echo "==> running ${#tests[@]} validation binaries against runc ($runc) and kiste ($kiste)"
run_list runc "$runc" "${plain[@]}" &
run_list kiste "$kiste" "${plain[@]}"
wait
run_list runc "$runc" "${cgroup[@]}"
run_list kiste "$kiste" "${cgroup[@]}"

declare -A result
for label in runc kiste; do
  binpass=0 binfail=0 pass=0 fail=0 skip=0
  while read -r name verdict rc p f s; do
    result[$label,$name]=$verdict
    case $verdict in pass) binpass=$((binpass + 1)) ;; fail) binfail=$((binfail + 1)) ;; esac
    pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
    printf '%-6s %-36s %-4s rc=%d ok=%d not-ok=%d skip=%d\n' "$label" "$name" "$verdict" "$rc" "$p" "$f" "$s"
  done < <(sort "$work/$label.results")
  echo "==> $label: ${#tests[@]} binaries: $binpass pass, $binfail fail, $((${#tests[@]} - binpass - binfail)) check nothing; TAP: $pass ok, $fail not ok, $skip skipped"
done

status=0
for name in "${tests[@]}"; do
  [ "${result[runc,$name]}" = pass ] && [ "${result[kiste,$name]}" = fail ] || continue
  if [ -n "${unsupported[$name]:-}" ]; then
    echo "known: $name: ${unsupported[$name]}"
  else
    echo "REGRESSION: kiste fails $name, which runc passes:"
    grep -A8 '^not ok' "$work/kiste-$name.tap" | head -20 || true
    head -5 "$work/kiste-$name.err" || true
    status=1
  fi
done
for name in "${!unsupported[@]}"; do
  [ "${result[kiste,$name]:-}" = pass ] && echo "kiste passes $name now: take it off the unsupported list" && status=1
done
exit $status
