#!/usr/bin/env bash
# The main job: installs what is missing, builds muonlab, prepares the King James Bible corpus,
# trains a sentencepiece tokenizer and token shards, pretrains the same small LLaMA-style model
# with AdamW and with Muon, and prints a side-by-side comparison. Extra arguments are passed to
# both `muonlab train` runs (e.g. --set train.steps=100 for a shorter demo).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
stage() { printf '\n==> [%4ds] %s\n' "$(($(date +%s) - start))" "$*"; }

stage "1/6 checking dependencies (tools/setup.sh)"
bash tools/setup.sh

stage "2/6 building muonlab (Release)"
bash tools/build.sh --target muonlab

stage "3/6 preparing the corpus: King James Bible (Debian package bible-kjv)"
mkdir -p datasets/kjv
if [ ! -s datasets/kjv/kjv.txt ]; then
  # One verse per line; drop the leading verse reference ("Ge1:1 ").
  bible -f gen1:1-rev22:21 | sed -E 's/^[^ ]+ //' > datasets/kjv/kjv.txt.tmp
  mv datasets/kjv/kjv.txt.tmp datasets/kjv/kjv.txt
fi
echo "datasets/kjv/kjv.txt: $(wc -l < datasets/kjv/kjv.txt) verses, $(wc -c < datasets/kjv/kjv.txt) bytes"

stage "4/6 tokenizer (sentencepiece BPE, vocab 4096) and token shards"
if [ -s datasets/kjv/train.bin ] && [ -s datasets/kjv/val.bin ] && [ -s datasets/kjv/tokenizer.model ]; then
  echo "datasets/kjv already holds tokenizer.model, train.bin and val.bin; reusing them"
else
  build/muonlab tokenize --input datasets/kjv/kjv.txt --vocab-size 4096 --out datasets/kjv
fi
if [ ! -s datasets/tiny/train.bin ] || [ ! -s datasets/tiny/val.bin ]; then
  # The same text at vocabulary 512, for configs/tiny.yaml and the tiny sweeps (a few seconds).
  build/muonlab tokenize --input datasets/kjv/kjv.txt --vocab-size 512 --out datasets/tiny
fi

stage "5/6 pretraining with AdamW (configs/kjv-adamw.yaml)"
build/muonlab train configs/kjv-adamw.yaml --overwrite "$@"

stage "6/6 pretraining with Muon + AdamW (configs/kjv-muon.yaml)"
build/muonlab train configs/kjv-muon.yaml --overwrite "$@"

stage "comparison"
build/muonlab compare runs/kjv-adamw runs/kjv-muon
echo
echo "Full metrics: runs/kjv-*/metrics.jsonl (train, val and spectral records); logs: runs/kjv-*/train.log"
