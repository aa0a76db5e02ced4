#!/usr/bin/env bash
# The main job: installs what is missing, builds muonlab, prepares the King James Bible corpus,
# trains a sentencepiece tokenizer and token shards, pretrains the same small LLaMA-style model
# with AdamW and with Muon, and prints a side-by-side comparison. Extra arguments are passed to
# both `muonlab train` runs (e.g. --set train.steps=100 for a shorter demo).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/kjv_data.sh
start=$(date +%s)
stage() { printf '\n==> [%4ds] %s\n' "$(($(date +%s) - start))" "$*"; }

stage "1/6 checking dependencies (tools/setup.sh)"
bash tools/setup.sh

stage "2/6 building muonlab (Release)"
bash tools/build.sh --target muonlab

stage "3/6 preparing the corpus: King James Bible (Debian package bible-kjv)"
kjv_text

stage "4/6 tokenizer (sentencepiece BPE, vocab 4096) and token shards"
kjv_shards build/muonlab datasets/kjv 4096
# The same text at vocabulary 512, for configs/tiny.yaml and the tiny sweeps (a few seconds).
kjv_shards build/muonlab datasets/tiny 512

stage "5/6 pretraining with AdamW (configs/kjv-adamw.yaml)"
build/muonlab train configs/kjv-adamw.yaml --overwrite "$@"

stage "6/6 pretraining with Muon + AdamW (configs/kjv-muon.yaml)"
build/muonlab train configs/kjv-muon.yaml --overwrite "$@"

stage "comparison"
build/muonlab compare runs/kjv-adamw runs/kjv-muon
echo
echo "Full metrics: runs/kjv-*/metrics.jsonl (train, val and spectral records); logs: runs/kjv-*/train.log"
