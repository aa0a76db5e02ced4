#!/usr/bin/env bash
# CTest: tools/bench/compare.sh --quick runs muonlab's bench and the PyTorch reference side by side
# on a tiny shape and writes per-pair ratios and a summary. The harness installs python3-torch on
# demand (as root, as CI runs); skipped (exit 77) only when torch is missing and we are not root.
# Usage: test_bench_compare.sh MUONLAB_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null && [[ "$(id -u)" -ne 0 ]]; then
  echo "no torch for /usr/bin/python3 and not root to install it: skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_bench_compare: $*" >&2; exit 1; }
bash tools/bench/compare.sh --quick --muonlab "$1" --json "$tmp/compare.json" >"$tmp/out.txt" 2>&1 \
  || { cat "$tmp/out.txt"; fail "compare.sh --quick failed"; }
grep -q "tok/s ratio median" "$tmp/out.txt" || { cat "$tmp/out.txt"; fail "no summary line"; }
/usr/bin/python3 - "$tmp/compare.json" <<'PY' || fail "the JSON lacks pairs or ratios"
import json, sys
result = json.load(open(sys.argv[1]))
case = result["cases"][0]
pair = case["pairs"][0]
assert case["summary"]["median_ratio_tokens_per_s"] > 0, case["summary"]
assert all(pair[side]["result"]["tokens_per_s"] > 0 for side in ("muonlab", "python")), pair
assert pair["kernel_match"] and pair["same_work"] == "", pair  # "" = no difference found
PY
echo "test_bench_compare: ok"
