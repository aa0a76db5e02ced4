#!/usr/bin/env bash
# CTest: `tools/reproduce.sh facts --quick` (a small facts corpus, AdamW and Muon on two lrs each,
# 400 steps) runs end to end into a temporary directory: the corpus is written, both optimizers'
# head buckets reach 0.95 first-object accuracy at their best lr (so t* exists and the gap is a
# number), the page section states the reference's check, and its figure exists.
# Usage: test_reproduce_facts.sh MUONLAB_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MUONLAB="$1" bash tools/reproduce.sh facts --quick --work "$tmp/work" --out "$tmp/docs"
fail() { echo "test_reproduce_facts: $*" >&2; exit 1; }
page="$tmp/docs/results.md"
[ -s "$tmp/work/corpus/facts.json" ] || fail "no corpus in $tmp/work/corpus"
grep -q "<!-- muonlab:section facts -->" "$page" || fail "no facts section in $page"
grep -q "reference check" "$page" || fail "the section does not state the reference's check"
/usr/bin/python3 - "$tmp/work/facts.json" <<'PY' || fail "a head bucket was not learned, or no gap"
import json, sys
result = json.load(open(sys.argv[1]))
row = result["seeds"][0]
print(f"best lrs {result['best_lr']}; t* {row['t_star']}; tail gap {row['gap']}; "
      f"heads at the end {row['adamw_head_final']}, {row['muon_head_final']}")
ok = (row["t_star"] is not None and isinstance(row["gap"], float)
      and row["adamw_head_final"] >= 0.95 and row["muon_head_final"] >= 0.95)
sys.exit(0 if ok else 1)
PY
link=$(grep -o '](figures/facts/[^)]*\.png)' "$page" | sed 's/^](//; s/)$//')
[ -s "$tmp/docs/$link" ] || fail "linked figure $link is missing"
echo "test_reproduce_facts: the study ran; figure $link"
