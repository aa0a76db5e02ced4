#!/usr/bin/env bash
# Reproduces a study of the papers muonlab is built around, from scratch, with one command.
#
#   tools/reproduce.sh lm|assoc|sensing|facts [--quick] [--jobs N] [--work DIR] [--out DIR]
#
# lm: the language-model optimizer study (configs/sweeps/lm-study.yaml): AdamW, Muon and the
# exact polar factor on every matrix, each on its own learning-rate grid, then 3 seeds at each
# group's best lr; writes OUT/results.md and OUT/figures/*.png (OUT = docs by default).
# --quick runs the CI-sized version (configs/sweeps/lm-study-quick.yaml, a tiny model, a few
# minutes) into OUT = runs/lm-study-quick/docs unless --out says otherwise: the same tables and
# figures, numbers that say nothing about the optimizers. The sweep is resumable: running the
# command again continues where it stopped. Installs and builds what is missing.
#
# assoc: the associative-memory protocols of the Muon theory paper (reference AM-1 to AM-4:
# configs/sweeps/assoc-am{1,3,4}.yaml; AM-2 reads AM-1's runs), a few minutes; writes the
# "assoc" section of OUT/results.md, OUT/figures/assoc/*.png and WORK/assoc.json (every number
# and whether each of the reference's assertions holds). --quick: K = 64 and reduced grids
# (assoc-am*-quick.yaml), about a minute, into runs/assoc-quick unless --work/--out say otherwise.
#
# sensing: the matrix-sensing control of the second paper (configs/sweeps/sensing.yaml: Muon, GD
# and norm-matched GD from a small and a large init, 5 seeds, about a minute); writes the
# "sensing" section of OUT/results.md, OUT/figures/sensing/ and WORK/sensing.json. --quick: 1000
# steps instead of 3000 (sensing-quick.yaml), into runs/sensing-quick.
#
# facts: AdamW against Muon on the synthetic power-law facts corpus (`muonlab facts` into
# WORK/corpus; configs/sweeps/facts.yaml: a 2-layer LLaMA model, each optimizer on its own lr
# grid, 3 seeds at the best lrs, several minutes); writes the "facts" section of OUT/results.md,
# OUT/figures/facts/ and WORK/facts.json (the tail-bucket accuracy gap at the step AdamW's head
# bucket first reaches 0.95). --quick: a small corpus and facts-quick.yaml, into runs/facts-quick.
# Each study writes only its own section of results.md (tools/results_page.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/kjv_data.sh
usage() { echo "usage: tools/reproduce.sh lm|assoc|sensing|facts [--quick] [--jobs N] [--work DIR] [--out DIR]" >&2; exit 2; }
study="${1:-}"
case "$study" in lm|assoc|sensing|facts) ;; *) usage ;; esac
shift
quick=0
jobs=$(( $(nproc) >= 2 ? 2 : 1 ))
work=""
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --jobs) jobs="${2:?--jobs needs a number}"; shift ;;
    --work) work="${2:?--work needs a directory}"; shift ;;
    --out) out="${2:?--out needs a directory}"; shift ;;
    *) usage ;;
  esac
  shift
done
start=$(date +%s)
stage() { printf '\n==> [%4ds] %s\n' "$(($(date +%s) - start))" "$*"; }

muonlab=${MUONLAB:-build/muonlab}
if [ ! -x "$muonlab" ]; then
  stage "installing and building muonlab"
  bash tools/setup.sh
  bash tools/build.sh --target muonlab
fi

# Runs one sweep file into a directory (further arguments go to muonlab sweep, e.g. --set);
# exits 130 if interrupted, warns if points failed.
run_sweep() {
  local status=0 file="$1" dir="$2"
  shift 2
  stage "sweep $file -> $dir ($jobs at a time)"
  "$muonlab" sweep "$file" --jobs "$jobs" --out "$dir" "$@" || status=$?
  if [ "$status" = 130 ]; then echo "interrupted; run the same command again to continue" >&2; exit 130; fi
  [ "$status" = 0 ] || echo "warning: some points failed (see above); the report lists them" >&2
}

if [ "$study" = facts ]; then
  suffix=""
  [ "$quick" = 1 ] && suffix="-quick"
  work=${work:-runs/facts$suffix}
  if [ "$quick" = 1 ]; then
    out=${out:-runs/facts-quick/docs}
    corpus_args=(--subjects 64 --relations 2 --groups 4 --objects 32 --object-tokens 1
                 --train-facts 50000 --val-facts 2000)
    setup="CI-sized version (\`--quick\`): a corpus of 64 subjects × 2 relations in 4 buckets with one-token objects, sequence length 32, 400 steps, two learning rates per optimizer, one seed (configs/sweeps/facts-quick.yaml). Its numbers exercise the machinery; the full study's are the ones to read."
  else
    out=${out:-docs}
    corpus_args=()
    setup="The corpus (\`muonlab facts\` with its defaults): 512 subjects × 4 relations = 2048 facts \"S R -> O1 O2 .\" (6 tokens; objects are 2 tokens from 128, fixed per fact), subjects in 8 frequency buckets of 64 with bucket mass ∝ i^-1.5 (head 0.519, tail 0.0229: each tail fact is 22.6 times rarer than a head fact), 400,000 training facts (2.4M tokens), no label noise; the probe set is 256 facts per bucket. The model (configs/facts/base.yaml): LLaMA, d_model 64, 2 layers, 4 heads, seq 64, batch 16 (1024 tokens a step, about 170 facts), 800 steps, cosine schedule with 50 warmup steps, grad clip 1, weight decay 0.1; AdamW β = (0.9, 0.95); Muon is Newton–Schulz (5 steps, momentum 0.95, Nesterov) on the block matrices with AdamW at 3e-3 for embeddings, head and gains. Sweep file: configs/sweeps/facts.yaml."
  fi
  if [ ! -s "$work/corpus/facts.json" ]; then
    stage "corpus: muonlab facts -> $work/corpus"
    "$muonlab" facts --out "$work/corpus" "${corpus_args[@]}"
  fi
  sweep_dir="$work/sweep"
  run_sweep "configs/sweeps/facts$suffix.yaml" "$sweep_dir" --set "data.train=$work/corpus/train.bin" \
    --set "data.val=$work/corpus/val.bin" --set "data.facts=$work/corpus/facts.json"
  stage "compare (per-bucket steps to 0.95) and the results section"
  "$muonlab" compare "$sweep_dir" --group-by variant --out "$sweep_dir/report" >/dev/null
  command="tools/reproduce.sh facts"
  if [ "$quick" = 1 ]; then command="$command --quick"; fi
  mkdir -p "$out/figures/facts"
  /usr/bin/python3 tools/facts_report.py --sweep "$sweep_dir" --page "$out/results.md" \
    --figures "$out/figures/facts" --figures-rel figures/facts --json "$work/facts.json" \
    --command "$command" --setup "$setup" --wall-seconds "$(($(date +%s) - start))"
  stage "done: $out/results.md (section facts)"
  exit 0
fi

if [ "$study" = sensing ]; then
  suffix=""
  [ "$quick" = 1 ] && suffix="-quick"
  work=${work:-runs/sensing$suffix}
  if [ "$quick" = 1 ]; then out=${out:-runs/sensing-quick/docs}; else out=${out:-docs}; fi
  setup="The reference's set-up (shared reference notes, experiments.md §4) on muonlab's \`model.kind: matrix_sensing\` (configs/sensing/base.yaml): a 20 × 20 target of rank 2 with singular values 1, 200 Gaussian measurements A_i ~ N(0, 1)/√200 (400 unknowns), loss (1/2p)Σ(⟨A_i, W⟩ − b_i)² with its exact gradient in float64, lr 0.01, $([ "$quick" = 1 ] && echo 1000 || echo 3000) steps, 5 seeds. Muon is the exact polar factor without momentum or scaling; NM-GD is gradient descent with each step rescaled to the Frobenius norm of a polar update (√20). Sweep file: configs/sweeps/sensing$suffix.yaml."
  run_sweep "configs/sweeps/sensing$suffix.yaml" "$work"
  command="tools/reproduce.sh sensing"
  if [ "$quick" = 1 ]; then command="$command --quick"; fi
  mkdir -p "$out/figures/sensing"
  /usr/bin/python3 tools/sensing_report.py --sweep "$work" --page "$out/results.md" \
    --figures "$out/figures/sensing" --figures-rel figures/sensing --json "$work/sensing.json" \
    --command "$command" --setup "$setup" --wall-seconds "$(($(date +%s) - start))"
  stage "done: $out/results.md (section sensing)"
  exit 0
fi

if [ "$study" = assoc ]; then
  suffix="" args=(--K 256 --t-min 64)
  if [ "$quick" = 1 ]; then
    suffix="-quick" args=(--K 64 --t-min 32)
    work=${work:-runs/assoc-quick}
    out=${out:-runs/assoc-quick/docs}
    setup="CI-sized version (\`--quick\`): K = d = 64 pairs and reduced grids (configs/sweeps/assoc-am*-quick.yaml). Its numbers exercise the machinery; the full study's are the ones to read."
  else
    work=${work:-runs/assoc}
    out=${out:-docs}
    setup="The reference's protocols (shared reference notes, experiments.md §3) on muonlab's \`model.kind: assoc_memory\` (configs/assoc/base.yaml): K = d = 256 query–answer pairs with orthonormal embeddings, the exact population gradient in float64, zero initialisation, every optimizer without momentum and on its own learning-rate grid; Muon is the exact polar factor UVᵀ (singular values below 1e-10·σ_max dropped), unscaled. Sweep files: configs/sweeps/assoc-am1.yaml (AM-1 and AM-2), assoc-am3.yaml, assoc-am4.yaml."
  fi
  for protocol in am1 am3 am4; do
    run_sweep "configs/sweeps/assoc-$protocol$suffix.yaml" "$work/$protocol"
  done
  stage "compare (per-bucket steps to threshold) and the results section"
  "$muonlab" compare "$work/am1" --group-by variant --out "$work/am1/report" >/dev/null
  command="tools/reproduce.sh assoc"
  if [ "$quick" = 1 ]; then command="$command --quick"; fi
  mkdir -p "$out/figures/assoc"
  /usr/bin/python3 tools/assoc_report.py --am1 "$work/am1" --am3 "$work/am3" --am4 "$work/am4" \
    --page "$out/results.md" --figures "$out/figures/assoc" --figures-rel figures/assoc \
    --json "$work/assoc.json" --command "$command" --setup "$setup" "${args[@]}" \
    --wall-seconds "$(($(date +%s) - start))"
  stage "done: $out/results.md (section assoc)"
  exit 0
fi

stage "corpus: the King James Bible (Debian package bible-kjv)"
kjv_text
if [ "$quick" = 1 ]; then
  data=datasets/tiny vocab=512 sweep=configs/sweeps/lm-study-quick.yaml
  work=${work:-runs/lm-study-quick}
  out=${out:-runs/lm-study-quick/docs}
  setup="CI-sized smoke version (\`--quick\`): configs/tiny.yaml (d_model 64, 2 layers, 4 heads, seq 32, batch 8, vocabulary 512) on the King James Bible, 40 steps (10,240 tokens) per run. Its numbers exercise the study's machinery and say nothing about the optimizers."
else
  data=datasets/kjv vocab=4096 sweep=configs/sweeps/lm-study.yaml
  work=${work:-runs/lm-study}
  out=${out:-docs}
  setup="The quickstart's model and budget (configs/kjv-base.yaml): a LLaMA-style decoder with d_model 256, 4 layers, 4 heads, SwiGLU 704, seq 128, untied embeddings (vocabulary 4096, sentencepiece BPE on the King James Bible), batch 16, 400 steps = 819,200 tokens per run, bf16 autocast, cosine schedule with 30 warmup steps to 10 %. Groups: **adamw** (AdamW on the hidden matrices, betas 0.9/0.95, decay 0.1; embedding, head and gains in the same AdamW group at 3e-3 as muon's, so the two differ only in the hidden matrices' optimizer); **muon** (Muon, Newton–Schulz 5 steps in bf16, momentum 0.95 Nesterov, Keller scaling, on the hidden matrices; AdamW at 3e-3 on embedding, head and gains); **polar** (the second paper's configuration: the exact polar factor from an SVD, no shape scaling, momentum 0.95, on every 2-D parameter including embedding and head; AdamW only on the RMSNorm gains). Each group on its own grid of 5 learning rates (factor 2), seed 0; then seeds 1 and 2 at each group's best lr (lowest final val). Sweep file: configs/sweeps/lm-study.yaml."
fi
kjv_shards "$muonlab" "$data" "$vocab"

run_sweep "$sweep" "$work"

stage "compare and plots"
report="$work/report"
"$muonlab" compare "$work" --group-by variant --out "$report" --plots
mkdir -p "$out/figures"
rm -f "$out"/figures/*.png
cp "$report"/*.png "$out/figures/" 2>/dev/null || true
command="tools/reproduce.sh lm"
if [ "$quick" = 1 ]; then command="$command --quick"; fi
/usr/bin/python3 tools/study_report.py --summary "$report/summary.json" \
  --summary-md "$report/summary.md" --out "$out/results.md" --figures figures \
  --setup "$setup" --command "$command" --wall-seconds "$(($(date +%s) - start))"
stage "done: $out/results.md"
