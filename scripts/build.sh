#!/usr/bin/env bash
# Configures and builds kiste into ./build (Ninja, C++23, -Werror).
# One line per phase; on a terminal ninja shows its own progress line, otherwise (CI, pipes) its
# output goes to build/build.log and only the compiler's messages are printed when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
echo "==> configuring build/"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKISTE_WERROR=ON >/dev/null
steps=$(ninja -C build -n | grep -c '^\[' || true)
echo "==> building ($steps steps, $(nproc) cores)"
if [ -t 1 ]; then
  ninja -C build
elif ! ninja -C build >build/build.log 2>&1; then
  grep -v '^\[[0-9]*/[0-9]*\] ' build/build.log >&2 || true
  echo "build: failed (full log: build/build.log)" >&2
  exit 1
fi
echo "==> built in $((SECONDS - start)) s"
