#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, then runs every ctest label
# (unit, root, e2e, lint). Root-only tests skip with a visible reason when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
echo "==> running tests (ctest -j$(nproc))"
ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@"
