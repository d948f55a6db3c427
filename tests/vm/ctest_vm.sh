#!/usr/bin/env bash
# ctest's entry to the VM stage: boots one guest (VARIANT systemd or nosystemd) and runs each
# GoogleTest executable in it, one after the other, with its XML report written straight to
# OUTDIR on the host (shared read-write). Fails if the guest or any executable fails, or if a
# report is missing, empty, or lists a failure.
#
# usage: ctest_vm.sh VARIANT OUTDIR TEST_EXECUTABLE[=GTEST_FILTER]…
# (a host test executable can run in the guest too, with a filter naming the tests that matter on
# a pure v2 host)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
variant=${1:?usage: ctest_vm.sh VARIANT OUTDIR TEST_EXECUTABLE…}
outdir=${2:?usage: ctest_vm.sh VARIANT OUTDIR TEST_EXECUTABLE…}
shift 2
[ $# -gt 0 ] || { echo "kiste-vm: no test executable given" >&2; exit 2; }
case "$variant" in
systemd) flags=() ;;
nosystemd) flags=(--no-systemd) ;;
*) echo "kiste-vm: unknown variant \`$variant\`" >&2; exit 2 ;;
esac

rm -rf "$outdir"
mkdir -p "$outdir"
reports=()
for exe in "$@"; do
  exe=${exe%%=*}
  reports+=("$outdir/$(basename "$exe").xml")
done

# In the guest: every executable runs even if one before it failed.
status=0
"$here/run.sh" -v "${flags[@]}" --timeout "${KISTE_VM_TIMEOUT:-540}" --out "$outdir" -- \
  bash -c 'rc=0; out=$1; shift
    for arg; do
      exe=${arg%%=*} filter=*
      [ "$exe" = "$arg" ] || filter=${arg#*=}
      "$exe" --gtest_filter="$filter" --gtest_output="xml:$out/${exe##*/}.xml" || rc=1
    done; exit $rc' \
  guest "$outdir" "$@" || status=$?

for report in "${reports[@]}"; do
  if [ ! -s "$report" ]; then
    # 125: run.sh said why on one line already (no qemu, no kernel, the guest did not boot).
    [ "$status" -eq 125 ] ||
      echo "kiste-vm: $variant: no report \`$report\` (the executable did not finish)" >&2
    [ "$status" -ne 0 ] || status=1
    continue
  fi
  # The <testsuites …> element carries the totals.
  totals=$(grep -m1 '<testsuites ' "$report")
  tests=$(sed -n 's/.* tests="\([0-9]*\)".*/\1/p' <<<"$totals")
  failures=$(sed -n 's/.* failures="\([0-9]*\)".*/\1/p' <<<"$totals")
  errors=$(sed -n 's/.* errors="\([0-9]*\)".*/\1/p' <<<"$totals")
  echo "kiste-vm: $variant: $(basename "$report" .xml): ${tests:-?} tests, ${failures:-?} failures, ${errors:-?} errors"
  if [ "${tests:-0}" -eq 0 ] || [ "${failures:-1}" -ne 0 ] || [ "${errors:-1}" -ne 0 ]; then
    grep -B1 '<failure' "$report" | sed -n 's/.*<testcase name="\([^"]*\)".*classname="\([^"]*\)".*/  failed: \2.\1/p' >&2
    [ "$status" -ne 0 ] || status=1
  fi
done
exit "$status"
