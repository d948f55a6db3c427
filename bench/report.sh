#!/usr/bin/env bash
# Turns the JSON rows of the bench scripts into results.json, a Markdown table and a PNG chart.
set -euo pipefail
rows=${1:?rows.jsonl}
out=${2:?output dir}
mkdir -p "$out"
jq -s --arg date "$(date -u +%Y-%m-%d)" --arg machine "$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)" \
  '{date:$date, machine:$machine, rows:.}' "$rows" >"$out/results.json"
{
  echo "Benchmarks of $(jq -r .date "$out/results.json") on $(jq -r .machine "$out/results.json") (medians; ratio = kiste/peer, below 1 is faster)."
  echo
  echo "| comparison | kiste | peer | peer time | ratio | kiste RSS | peer RSS | note |"
  echo "|---|---|---|---|---|---|---|---|"
  jq -r '.rows[] | "| \(.comparison) | \(if .kiste_ms then "\(.kiste_ms) ms" else "—" end) | \(.peer // "—") | \(if .peer_ms then "\(.peer_ms) ms" else "—" end) | \(.ratio // "—") | \(if .kiste_rss_kib then "\(.kiste_rss_kib/1024|.*10|round/10) MiB" else "—" end) | \(if .peer_rss_kib then "\(.peer_rss_kib/1024|.*10|round/10) MiB" else "—" end) | \(.note // "") |"' "$out/results.json"
} >"$out/results.md"
jq -r '.rows[] | select(.ratio != null) | "\"\(.comparison) vs \(.peer)\" \(.ratio)"' "$out/results.json" >"$out/ratios.dat"
if [ -s "$out/ratios.dat" ]; then
  n=$(wc -l <"$out/ratios.dat")
  gnuplot <<GP
set terminal pngcairo size 900,$((120 + 40 * n)) font "sans,10"
set output "$out/ratios.png"
set title "kiste time / peer time (below 1: kiste is faster)"
set style fill solid 0.8
set boxwidth 0.6
set yrange [-0.5:$n-0.5]
set xrange [0:*]
set xtics nomirror
set grid xtics
set arrow from 1, graph 0 to 1, graph 1 nohead lc rgb "red" dt 2
unset key
plot "$out/ratios.dat" using (\$2/2):(\$0):(\$2/2):(0.3):ytic(1) with boxxyerror lc rgb "#3b7dd8"
GP
fi
rm -f "$out/ratios.dat"
cat "$out/results.md"
