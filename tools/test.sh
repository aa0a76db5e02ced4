#!/usr/bin/env bash
# The test command (CI runs exactly this): installs what is missing, builds, runs every test.
#   1. Release build (-O3) and the whole CTest suite.
#   2. The same suite under AddressSanitizer + UndefinedBehaviorSanitizer (clang), plus the
#      libFuzzer targets for the config, shard and manifest readers, each for a bounded time.
# Set MUONLAB_SKIP_SANITIZE=1 to run only step 1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh

echo "== release build and tests"
bash tools/build.sh
ctest --test-dir build --output-on-failure --timeout 900

if [ "${MUONLAB_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== sanitizer build (ASan + UBSan) and tests, fuzzers"
  cmake --preset sanitize >/dev/null
  cmake --build --preset sanitize -j"$(nproc)"
  ctest --preset sanitize --timeout 900
fi
