#!/usr/bin/env bash
# Configures and builds muonlab (Release, -O3) into build/. Extra arguments go to `cmake --build`
# (e.g. `tools/build.sh --target muonlab`).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" "$@"
