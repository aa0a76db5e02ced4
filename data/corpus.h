// Corpus tokenization: text files -> tokenizer.model + train.bin + val.bin, the work behind
// `muonlab tokenize`. Each non-empty line is one document; documents are encoded with all
// cores, each followed by the EOS id, and split into train/val on document boundaries.
// It does not define the shard format (token_shard.h) or train models.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace muonlab {

struct TokenizeOptions {
  std::vector<std::string> inputs;  // UTF-8 text files
  int vocab_size = 4096;
  std::string out_dir;
  std::string tokenizer;            // reuse this .model instead of training one (optional)
  double val_fraction = 0.05;       // share of documents (in blocks of 64) sent to val.bin
  int threads = 0;                  // 0 = all cores
};

struct TokenizeResult {
  uint64_t documents = 0;
  uint64_t train_tokens = 0;
  uint64_t val_tokens = 0;
  int vocab_size = 0;
  double seconds = 0;
};

// Progress callback: (documents done, documents total).
using ProgressFn = std::function<void(uint64_t, uint64_t)>;

// Runs the whole pipeline; throws std::runtime_error on bad input (missing, empty or binary
// files, vocab size out of range) without touching existing files in out_dir.
TokenizeResult tokenize_corpus(const TokenizeOptions& opts, const ProgressFn& progress = {});

}  // namespace muonlab
