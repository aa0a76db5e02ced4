#!/usr/bin/env bash
# Reproduces a study of the papers muonlab is built around, from scratch, with one command.
#
#   tools/reproduce.sh lm [--quick] [--jobs N] [--work DIR] [--out DIR]
#
# lm: the language-model optimizer study (configs/sweeps/lm-study.yaml): AdamW, Muon and the
# exact polar factor on every matrix, each on its own learning-rate grid, then 3 seeds at each
# group's best lr; writes OUT/results.md and OUT/figures/*.png (OUT = docs by default).
# --quick runs the CI-sized version (configs/sweeps/lm-study-quick.yaml, a tiny model, a few
# minutes) into OUT = runs/lm-study-quick/docs unless --out says otherwise: the same tables and
# figures, numbers that say nothing about the optimizers. The sweep is resumable: running the
# command again continues where it stopped. Installs and builds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/kjv_data.sh
usage() { echo "usage: tools/reproduce.sh lm [--quick] [--jobs N] [--work DIR] [--out DIR]" >&2; exit 2; }
[ "${1:-}" = lm ] || usage
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

stage "sweep $sweep -> $work ($jobs at a time)"
status=0
"$muonlab" sweep "$sweep" --jobs "$jobs" --out "$work" || status=$?
if [ "$status" = 130 ]; then echo "interrupted; run the same command again to continue" >&2; exit 130; fi
[ "$status" = 0 ] || echo "warning: some points failed (see above); the report lists them" >&2

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
