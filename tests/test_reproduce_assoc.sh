#!/usr/bin/env bash
# CTest: `tools/reproduce.sh assoc --quick` (the CI-sized associative-memory study) runs end to end
# into a temporary directory and the qualitative outcomes the theory predicts hold in its numbers
# (WORK/assoc.json): AM-1, exact Muon's tail/head ratio <= 1.25 and gradient descent's >= 10;
# AM-3, the fitted exponents inside the reference's bands (Muon [-2.4, -1.7], GD [-0.75, -0.35]);
# and the page section links figures that exist. Usage: test_reproduce_assoc.sh MUONLAB_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MUONLAB="$1" bash tools/reproduce.sh assoc --quick --work "$tmp/work" --out "$tmp/docs"
fail() { echo "test_reproduce_assoc: $*" >&2; exit 1; }
page="$tmp/docs/results.md"
[ -s "$page" ] || fail "no $page"
grep -q "<!-- muonlab:section assoc -->" "$page" || fail "no assoc section in $page"
/usr/bin/python3 - "$tmp/work/assoc.json" <<'PY' || fail "an outcome the theory predicts does not hold"
import json, sys
r = json.load(open(sys.argv[1]))
muon = [row for row in r["am1"]["rows"] if row["variant"] == "muon"]
gd = [row for row in r["am1"]["rows"] if row["variant"] == "gd" and row["head"] and row["head"] >= 5]
problems = []
if not muon or any(row["ratio"] is None or row["ratio"] > 1.25 for row in muon):
    problems.append(f"AM-1 exact Muon tail/head: {[row['ratio'] for row in muon]}")
if not gd or any(row["ratio"] is not None and row["ratio"] < 10 for row in gd):
    problems.append(f"AM-1 GD tail/head: {[row['ratio'] for row in gd]}")
if not -2.4 <= r["am3"]["muon_slope"] <= -1.7:
    problems.append(f"AM-3 Muon exponent {r['am3']['muon_slope']:.2f}")
if not -0.75 <= r["am3"]["gd_slope"] <= -0.35:
    problems.append(f"AM-3 GD exponent {r['am3']['gd_slope']:.2f}")
for p in problems:
    print("test_reproduce_assoc:", p, file=sys.stderr)
print(f"AM-1 Muon {[row['ratio'] for row in muon]}, GD {[row['ratio'] for row in gd]}; "
      f"AM-3 exponents Muon {r['am3']['muon_slope']:.2f}, GD {r['am3']['gd_slope']:.2f}")
sys.exit(1 if problems else 0)
PY
links=$(grep -o '](figures/assoc/[^)]*\.png)' "$page" | sed 's/^](//; s/)$//')
[ "$(echo "$links" | wc -l)" -ge 4 ] || fail "fewer than 4 figures linked"
for link in $links; do [ -s "$tmp/docs/$link" ] || fail "linked figure $link is missing"; done
echo "test_reproduce_assoc: the quick study's outcomes hold; $(echo "$links" | wc -l) figures"
