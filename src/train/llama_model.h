// `model.kind: llama` as a trainable Model: the LLaMA decoder (models/llama.h) with its token
// shards, the deterministic batch loader, the fixed validation set, the configured precision
// (fp32, or bf16 autocast), bits per byte from the tokenizer and, on a facts corpus, the
// per-bucket probe records. It owns no optimizer and logs nothing; the trainer does.
#pragma once
#include <memory>
#include <string>

#include "data/batch_loader.h"
#include "data/token_shard.h"
#include "models/llama.h"
#include "models/model.h"
#include "src/train/facts_probe.h"

namespace muonlab {

struct LlamaData {
  std::string train, val, tokenizer;  // shard paths; tokenizer optional (bits per byte)
  std::string facts;                  // facts.json of a facts corpus (optional: bucket probe)
  int64_t probe_every = 1;            // steps between probes of the facts corpus (>= 1)
  double probe_threshold = 0.95;      // bucket accuracy for steps-to-threshold
  int64_t batch_size = 16;
  int64_t eval_batches = 20;
  std::string precision = "fp32";
  uint64_t seed = 0;
};

class LlamaModel : public Model {
 public:
  // Opens and checks the shards (and tokenizer) first, then builds the weights from the current
  // torch RNG. Throws std::runtime_error naming the file and what to change.
  LlamaModel(const LlamaConfig& config, const LlamaData& data);

  std::vector<std::pair<std::string, torch::Tensor>> named_params() const override;
  std::vector<std::string> describe() const override;
  torch::Tensor step_loss(int64_t step, int64_t micro, int64_t accum) override;
  int64_t items_per_micro() const override;
  double flops_per_item() const override;
  Evaluation evaluate() override;
  std::vector<nlohmann::json> task_records(int64_t step, bool final) override;
  std::vector<std::string> final_summary() const override;
  nlohmann::json task_state() const override;
  void restore_task_state(const nlohmann::json& state) override;

 private:
  void load_data();
  void load_facts_probe();
  double bytes_per_val_token() const;

  LlamaConfig config_;
  LlamaData data_;
  std::shared_ptr<const TokenShard> train_shard_, val_shard_;
  std::unique_ptr<BatchLoader> loader_;
  std::unique_ptr<ValidationSet> val_set_;
  double bytes_per_token_ = 0;
  std::unique_ptr<FactsProbe> probe_;  // with data.facts only
  Llama llama_{nullptr};
};

}  // namespace muonlab
