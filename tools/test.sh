#!/usr/bin/env bash
# The test command (CI runs exactly this): installs what is missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
bash tools/build.sh
ctest --test-dir build --output-on-failure --timeout 900
