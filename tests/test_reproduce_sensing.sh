#!/usr/bin/env bash
# CTest: `tools/reproduce.sh sensing --quick` (the matrix-sensing control, 1000 steps, 5 seeds)
# runs end to end into a temporary directory: from the small init Muon's final spectrum is
# flatter (normalised entropy and stable rank) than gradient descent's and norm-matched gradient
# descent's on at least 4 of 5 seeds, and the page section links a figure that exists.
# Usage: test_reproduce_sensing.sh MUONLAB_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MUONLAB="$1" bash tools/reproduce.sh sensing --quick --work "$tmp/work" --out "$tmp/docs"
fail() { echo "test_reproduce_sensing: $*" >&2; exit 1; }
page="$tmp/docs/results.md"
grep -q "<!-- muonlab:section sensing -->" "$page" || fail "no sensing section in $page"
/usr/bin/python3 - "$tmp/work/sensing.json" <<'PY' || fail "Muon's spectrum is not the flattest from the small init"
import json, sys
checks = [c for c in json.load(open(sys.argv[1]))["checks"] if c["init"] == "small"]
for c in checks:
    print(f"small init, {c['key']}: Muon above both on {c['wins']} of {c['seeds']} seeds")
sys.exit(0 if len(checks) == 2 and all(c["seeds"] == 5 and c["wins"] >= 4 for c in checks) else 1)
PY
link=$(grep -o '](figures/sensing/[^)]*\.png)' "$page" | sed 's/^](//; s/)$//')
[ -s "$tmp/docs/$link" ] || fail "linked figure $link is missing"
echo "test_reproduce_sensing: the separation holds; figure $link"
