#!/usr/bin/env bash
# Sourced by tools/quickstart.sh and tools/reproduce.sh: the King James Bible corpus (Debian's
# bible-kjv, one verse per line) and its token shards. Functions only; runs nothing by itself.

# datasets/kjv/kjv.txt, made once.
kjv_text() {
  mkdir -p datasets/kjv
  if [ ! -s datasets/kjv/kjv.txt ]; then
    # One verse per line; drop the leading verse reference ("Ge1:1 ").
    bible -f gen1:1-rev22:21 | sed -E 's/^[^ ]+ //' > datasets/kjv/kjv.txt.tmp
    mv datasets/kjv/kjv.txt.tmp datasets/kjv/kjv.txt
  fi
  echo "datasets/kjv/kjv.txt: $(wc -l < datasets/kjv/kjv.txt) verses, $(wc -c < datasets/kjv/kjv.txt) bytes"
}

# kjv_shards MUONLAB DIR VOCAB: tokenizer.model, train.bin and val.bin in DIR, unless present.
kjv_shards() {
  local muonlab=$1 dir=$2 vocab=$3
  if [ -s "$dir/train.bin" ] && [ -s "$dir/val.bin" ] && [ -s "$dir/tokenizer.model" ]; then
    echo "$dir already holds tokenizer.model, train.bin and val.bin; reusing them"
  else
    "$muonlab" tokenize --input datasets/kjv/kjv.txt --vocab-size "$vocab" --out "$dir"
  fi
}
