#!/usr/bin/env bash
# Configures and builds kiste into ./build (Ninja, C++23, -Werror).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKISTE_WERROR=ON >/dev/null
ninja -C build
