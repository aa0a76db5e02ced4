// The facts corpus's fixed probe set, scored on a LLaMA model: every probe fact is packed into
// rows of seq_len tokens (". S R -> O1..Ok . S R -> ..."), and the prediction at each "->" is
// scored against the fact's first object token. One `buckets` record per call: per bucket (head
// first) the mean cross-entropy and accuracy of that first object token, the mass-weighted total
// loss and error, head and tail error; the final record adds each bucket's first step with
// accuracy >= threshold and the tail/head ratio of those steps. It does not train, and it does
// not decide when to probe (the LLaMA model kind does).
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/facts_corpus.h"
#include "models/llama.h"

namespace muonlab {

class FactsProbe {
 public:
  // Throws std::runtime_error if a fact does not fit in `seq_len` tokens after the leading ".".
  FactsProbe(const FactsCorpus& corpus, int64_t seq_len, int64_t batch_size, double threshold);

  // Scores the model (no gradients) under `precision` ("fp32" or "bf16") at `step`.
  nlohmann::json record(LlamaImpl& model, const std::string& precision, int64_t step, bool final);
  std::string describe() const;
  std::string final_summary() const;
  nlohmann::json state() const;
  void restore(const nlohmann::json& state);  // throws std::runtime_error on a mismatch

 private:
  struct ProbeBatch {
    torch::Tensor inputs;     // (B, T) int64
    torch::Tensor positions;  // (P) int64: row * T + index of the "->"
    torch::Tensor targets;    // (P) int64: first object token
    torch::Tensor buckets;    // (P) int64
  };
  std::vector<ProbeBatch> batches_;
  std::vector<int64_t> probes_per_bucket_, subjects_per_bucket_;
  std::vector<double> masses_;
  double threshold_;
  std::vector<int64_t> steps_to_threshold_;  // per bucket; -1 = not reached yet
};

}  // namespace muonlab
