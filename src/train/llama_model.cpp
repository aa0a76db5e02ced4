// The LLaMA model kind: shards, loader and validation set around the decoder, the step loss
// under the configured precision, and the val record (loss, ppl, bits per byte).
#include "src/train/llama_model.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "data/tokenizer.h"
#include "src/train/precision.h"

namespace muonlab {

LlamaModel::LlamaModel(const LlamaConfig& config, const LlamaData& data)
    : config_(config), data_(data) {
  load_data();
  llama_ = Llama(config_);
}

void LlamaModel::load_data() {
  train_shard_ = std::make_shared<TokenShard>(data_.train);
  val_shard_ = std::make_shared<TokenShard>(data_.val);
  for (const auto& shard : {train_shard_, val_shard_}) {
    if (static_cast<int64_t>(shard->vocab_size()) > config_.vocab_size)
      throw std::runtime_error("shard " + shard->path() + " has vocabulary " +
                               std::to_string(shard->vocab_size()) + " but model.vocab_size is " +
                               std::to_string(config_.vocab_size) +
                               "; set model.vocab_size to at least the shard's");
  }
  loader_ =
      std::make_unique<BatchLoader>(train_shard_, config_.seq_len, data_.batch_size, data_.seed);
  val_set_ = std::make_unique<ValidationSet>(val_shard_, config_.seq_len, data_.batch_size,
                                             data_.eval_batches);
  bytes_per_token_ = bytes_per_val_token();
  if (!data_.facts.empty()) load_facts_probe();
}

void LlamaModel::load_facts_probe() {
  const FactsCorpus corpus = read_facts_corpus(data_.facts);
  for (const auto& shard : {train_shard_, val_shard_})
    if (shard->vocab_size() != corpus.vocab.size())
      throw std::runtime_error("data.facts: " + data_.facts + " describes a vocabulary of " +
                               std::to_string(corpus.vocab.size()) + " tokens but shard " +
                               shard->path() + " has " + std::to_string(shard->vocab_size()) +
                               "; use the train.bin and val.bin written with it");
  if (train_shard_->size() != corpus.train_tokens || val_shard_->size() != corpus.val_tokens)
    throw std::runtime_error("data.facts: " + data_.facts + " was written with shards of " +
                             std::to_string(corpus.train_tokens) + " and " +
                             std::to_string(corpus.val_tokens) + " tokens, not " +
                             train_shard_->path() + " and " + val_shard_->path() +
                             "; use the train.bin and val.bin written with it");
  probe_ = std::make_unique<FactsProbe>(corpus, config_.seq_len, data_.batch_size,
                                        data_.probe_threshold);
}

double LlamaModel::bytes_per_val_token() const {
  if (data_.tokenizer.empty()) return 0;
  Tokenizer tokenizer(data_.tokenizer);
  if (tokenizer.vocab_size() != static_cast<int>(val_shard_->vocab_size()))
    throw std::runtime_error("tokenizer " + data_.tokenizer + " has vocabulary " +
                             std::to_string(tokenizer.vocab_size()) + " but shard " +
                             val_shard_->path() + " was written with " +
                             std::to_string(val_shard_->vocab_size()) +
                             "; point data.tokenizer at the model that made the shards");
  double bytes = 0, tokens = 0;
  for (int64_t i = 0; i < val_set_->size(); ++i) {
    auto targets = (*val_set_)[i].targets;
    for (int64_t row = 0; row < targets.size(0); ++row) {
      auto ids_tensor = targets[row].to(torch::kInt64).contiguous();
      std::vector<uint32_t> ids(ids_tensor.data_ptr<int64_t>(),
                                ids_tensor.data_ptr<int64_t>() + ids_tensor.numel());
      bytes += static_cast<double>(tokenizer.decode(ids).size());
      tokens += static_cast<double>(ids.size());
    }
  }
  return bytes > 0 ? bytes / tokens : 0;
}

std::vector<std::pair<std::string, torch::Tensor>> LlamaModel::named_params() const {
  return llama_->named_params();
}

std::vector<std::string> LlamaModel::describe() const {
  std::vector<std::string> lines = {
      fmt::format("data: train {} tokens ({}), val {} tokens ({}), {} val tokens per eval",
                  train_shard_->size(), data_.train, val_shard_->size(), data_.val,
                  val_set_->tokens()),
      fmt::format("model: llama, {} parameters ({} layers, d_model {}, heads {}/{} kv, ffn {}, "
                  "seq_len {})",
                  llama_param_count(config_), config_.n_layers, config_.d_model, config_.n_heads,
                  config_.n_kv_heads, config_.ffn_dim(), config_.seq_len)};
  if (probe_)
    lines.push_back(probe_->describe() + fmt::format(", every {} steps", data_.probe_every));
  return lines;
}

torch::Tensor LlamaModel::step_loss(int64_t step, int64_t micro, int64_t accum) {
  LoaderCursor cursor{step, micro};
  return model_loss(*llama_, loader_->next(cursor, accum), data_.precision);
}

int64_t LlamaModel::items_per_micro() const { return data_.batch_size * config_.seq_len; }

double LlamaModel::flops_per_item() const { return llama_flops_per_token(config_); }

Evaluation LlamaModel::evaluate() {
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (int64_t i = 0; i < val_set_->size(); ++i)
    sum += model_loss(*llama_, (*val_set_)[i], data_.precision).item<double>();
  const double loss = sum / static_cast<double>(val_set_->size());
  Evaluation e;
  e.fields = {{"loss", loss}, {"ppl", std::exp(loss)}};
  e.summary = fmt::format("ppl {:.2f}", std::exp(loss));
  if (bytes_per_token_ > 0) {
    const double bpb = loss / std::log(2.0) / bytes_per_token_;
    e.fields["bpb"] = bpb;
    e.summary += fmt::format(" | bpb {:.4f}", bpb);
  }
  return e;
}

std::vector<nlohmann::json> LlamaModel::task_records(int64_t step, bool final) {
  if (!probe_ || (step % data_.probe_every != 0 && !final)) return {};
  return {probe_->record(*llama_, data_.precision, step, final)};
}

std::vector<std::string> LlamaModel::final_summary() const {
  if (!probe_) return {};
  return {probe_->final_summary()};
}

nlohmann::json LlamaModel::task_state() const { return probe_ ? probe_->state() : nullptr; }

void LlamaModel::restore_task_state(const nlohmann::json& state) {
  if (probe_) probe_->restore(state);
}

}  // namespace muonlab
