#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, build-fuzz/) and runs them on copies of their seed corpora.
#   fuzz/run.sh [--minutes N | --seconds N] [--smoke] [--jobs N] [TARGET…]
# --smoke: 10 s per target (the ctest entry `fuzz.smoke`). Default: 10 minutes per target, one at
# a time (--jobs runs that many targets at once). Without TARGETs: all of them. Each run's corpus,
# log and crash artifacts stay in build-fuzz/runs/<target>/ (runs-smoke/ for --smoke); the summary
# prints executions, coverage and corpus size per target. Exits non-zero when any target crashed,
# leaked or timed out.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
build="$src/build-fuzz"
all_targets=(containerfile reference manifest image_config registries_conf www_authenticate
  seccomp_profile mount_options layer_extract dns_query package_db)
seconds=600
jobs=1
runs="$build/runs"
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) seconds=$(($2 * 60)); shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --smoke) seconds=10; runs="$build/runs-smoke"; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -f "$src/fuzz/${t}_fuzzer.cpp" ] || { echo "run.sh: no target $t" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then  # its sandbox is a private mount namespace
  for i in "${!targets[@]}"; do
    if [ "${targets[$i]}" = layer_extract ]; then
      echo "run.sh: layer_extract skipped: it needs root (a private mount namespace)" >&2
      unset 'targets[i]'
    fi
  done
  targets=("${targets[@]}")
  [ ${#targets[@]} -gt 0 ] || exit 0
fi

cxx=clang++-19
if ! command -v "$cxx" >/dev/null || [ ! -d /usr/lib/llvm-19/lib/clang/19/lib/linux ]; then
  bash "$src/scripts/setup.sh"
fi
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DKISTE_FUZZ=ON -DKISTE_WERROR=OFF >/dev/null
ninja -C "$build" $(printf '%s_fuzzer ' "${targets[@]}")

# Stack traces need a symbolizer; clang-19's own is not packaged without llvm-19.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  for s in /usr/lib/llvm-19/bin/llvm-symbolizer /usr/bin/llvm-symbolizer-19 /usr/bin/llvm-symbolizer; do
    if [ -x "$s" ]; then export ASAN_SYMBOLIZER_PATH=$s; break; fi
  done
fi

# One target: fresh copy of the seeds (plus generated tar seeds), then libFuzzer for $seconds.
run_one() {
  local t=$1 work="$runs/$1"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  if [ -d "$src/fuzz/corpus/$t" ]; then cp -r "$src/fuzz/corpus/$t/." "$work/corpus/"; fi
  if [ "$t" = layer_extract ]; then python3 "$src/fuzz/make_tar_seeds.py" "$work/corpus"; fi
  local dict=()
  [ -f "$src/fuzz/dict/$t.dict" ] && dict=(-dict="$src/fuzz/dict/$t.dict")
  local rc=0
  (cd "$work" && "$build/fuzz/${t}_fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -timeout=30 -artifact_prefix="$work/artifacts/" -print_final_stats=1 "${dict[@]}" \
    corpus >"$work/fuzz.log" 2>&1) || rc=$?
  echo "$rc" >"$work/rc"
}

pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
wait

failed=0
printf '%-18s %12s %8s %8s %8s  %s\n' target executions cov ft corpus result
for t in "${targets[@]}"; do
  work="$runs/$t"
  rc=$(cat "$work/rc")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(find "$work/corpus" -type f | wc -l)
  result=ok
  if [ "$rc" != 0 ]; then
    failed=1
    art=$(find "$work/artifacts" -type f | head -1)
    result="FAILED (exit $rc) ${art:-no artifact}; log: $work/fuzz.log"
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|layer_extract_fuzzer:' \
      "$work/fuzz.log" >&2 || true
  fi
  printf '%-18s %12s %8s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$result"
done
exit $failed
