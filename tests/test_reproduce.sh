#!/usr/bin/env bash
# CTest: `tools/reproduce.sh lm --quick` runs end to end into a temporary directory, and its
# results page shows every group (adamw, muon, polar) in the claims and the group table, with
# every figure it links present. Usage: test_reproduce.sh MUONLAB_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MUONLAB="$1" bash tools/reproduce.sh lm --quick --work "$tmp/sweep" --out "$tmp/docs"
page="$tmp/docs/results.md"
fail() { echo "test_reproduce: $*" >&2; exit 1; }
[ -s "$page" ] || fail "no $page"
for group in adamw muon polar; do
  grep -q "^| $group | [0-9]/[0-9] |" "$page" || fail "group $group missing from the group table"
  grep -q "^| variant=$group,lr=" "$page" || fail "no run of $group in the run table"
done
grep -q "^| muon's final val loss is below AdamW's" "$page" || fail "no loss claim for muon"
grep -q "^| polar ends with a higher mean block stable rank" "$page" || fail "no rank claim for polar"
links=$(grep -o '](figures/[^)]*\.png)' "$page" | sed 's/^](//; s/)$//')
[ "$(echo "$links" | wc -l)" -ge 6 ] || fail "fewer than 6 figures linked"
for link in $links; do [ -s "$tmp/docs/$link" ] || fail "linked figure $link is missing"; done
echo "test_reproduce: results page with every group and $(echo "$links" | wc -l) figures"
