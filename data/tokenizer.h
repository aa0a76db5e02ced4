// Tokenizer: trains and wraps a sentencepiece BPE model (byte fallback, split digits, identity
// normalisation). It does not read corpora or write shards (see corpus.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace muonlab {

struct TokenizerTrainOptions {
  std::vector<std::string> input_files;  // one sentence (document) per line
  int vocab_size = 4096;
  std::string model_prefix;              // writes <prefix>.model and <prefix>.vocab
  int threads = 2;
  int64_t max_sentences = 2000000;       // sentences sampled for training
};

// Trains a BPE model; throws std::runtime_error with sentencepiece's reason on failure.
void train_tokenizer(const TokenizerTrainOptions& opts);

// A loaded sentencepiece model. Encoding is thread-safe (const).
class Tokenizer {
 public:
  explicit Tokenizer(const std::string& model_path);  // throws if missing/invalid
  ~Tokenizer();
  int vocab_size() const;
  int eos_id() const;
  std::vector<uint32_t> encode(const std::string& text) const;
  std::string decode(const std::vector<uint32_t>& ids) const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace muonlab
