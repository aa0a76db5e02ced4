// Packing the probe facts into rows and scoring the first object token per bucket.
#include "src/train/facts_probe.h"

#include <fmt/format.h>

#include <stdexcept>

#include "src/train/precision.h"

namespace muonlab {

FactsProbe::FactsProbe(const FactsCorpus& corpus, int64_t seq_len, int64_t batch_size,
                       double threshold)
    : threshold_(threshold) {
  const int64_t fact_tokens = corpus.fact_tokens();
  const int64_t per_row = (seq_len - 1) / fact_tokens;
  if (per_row < 1)
    throw std::runtime_error(fmt::format(
        "data.facts: a fact is {} tokens, so model.seq_len must be at least {} (it is {})",
        fact_tokens, fact_tokens + 1, seq_len));
  struct Probe {
    int64_t fact, bucket;
  };
  std::vector<Probe> probes;
  for (size_t b = 0; b < corpus.buckets.size(); ++b) {
    for (int64_t id : corpus.buckets[b].probe) probes.push_back({id, static_cast<int64_t>(b)});
    probes_per_bucket_.push_back(static_cast<int64_t>(corpus.buckets[b].probe.size()));
    subjects_per_bucket_.push_back(corpus.buckets[b].subjects);
    masses_.push_back(corpus.buckets[b].mass);
  }
  steps_to_threshold_.assign(corpus.buckets.size(), -1);
  const int64_t per_batch = per_row * batch_size;
  for (size_t first = 0; first < probes.size(); first += per_batch) {
    const size_t last = std::min(probes.size(), first + static_cast<size_t>(per_batch));
    const int64_t rows = (static_cast<int64_t>(last - first) + per_row - 1) / per_row;
    ProbeBatch batch;
    batch.inputs =
        torch::full({rows, seq_len}, static_cast<int64_t>(FactsVocab::kEnd), torch::kInt64);
    std::vector<int64_t> positions, targets, buckets;
    auto in = batch.inputs.accessor<int64_t, 2>();
    for (size_t k = first; k < last; ++k) {
      const int64_t slot = static_cast<int64_t>(k - first);
      const int64_t row = slot / per_row, start = 1 + (slot % per_row) * fact_tokens;
      const auto tokens = corpus.fact(probes[k].fact);
      for (size_t t = 0; t < tokens.size(); ++t)
        in[row][start + static_cast<int64_t>(t)] = tokens[t];
      positions.push_back(row * seq_len + start + 2);  // the "->"
      targets.push_back(tokens[3]);
      buckets.push_back(probes[k].bucket);
    }
    batch.positions = torch::tensor(positions, torch::kInt64);
    batch.targets = torch::tensor(targets, torch::kInt64);
    batch.buckets = torch::tensor(buckets, torch::kInt64);
    batches_.push_back(std::move(batch));
  }
}

nlohmann::json FactsProbe::record(LlamaImpl& model, const std::string& precision, int64_t step,
                                  bool final) {
  torch::NoGradGuard no_grad;
  const auto n_buckets = static_cast<int64_t>(masses_.size());
  torch::Tensor loss_sum = torch::zeros({n_buckets}, torch::kDouble);
  torch::Tensor correct_sum = torch::zeros({n_buckets}, torch::kDouble);
  for (const auto& batch : batches_) {
    torch::Tensor logits = model_logits(model, batch.inputs, precision);  // (B, T, V)
    torch::Tensor at_arrow = logits.flatten(0, 1).index_select(0, batch.positions);
    torch::Tensor logp = torch::log_softmax(at_arrow.to(torch::kDouble), 1);  // (P, V)
    torch::Tensor loss = -logp.gather(1, batch.targets.unsqueeze(1)).squeeze(1);
    torch::Tensor correct = (logp.argmax(1) == batch.targets).to(torch::kDouble);
    loss_sum.index_add_(0, batch.buckets, loss);
    correct_sum.index_add_(0, batch.buckets, correct);
  }
  nlohmann::json list = nlohmann::json::array();
  double total_loss = 0, error = 0;
  for (int64_t b = 0; b < n_buckets; ++b) {
    const double n = static_cast<double>(probes_per_bucket_[b]);
    const double loss = loss_sum[b].item<double>() / n;
    const double accuracy = correct_sum[b].item<double>() / n;
    total_loss += masses_[b] * loss, error += masses_[b] * (1 - accuracy);
    if (steps_to_threshold_[b] < 0 && accuracy >= threshold_) steps_to_threshold_[b] = step;
    list.push_back({{"items", probes_per_bucket_[b]},
                    {"subjects", subjects_per_bucket_[b]},
                    {"mass", masses_[b]},
                    {"loss", loss},
                    {"accuracy", accuracy}});
  }
  nlohmann::json record = {{"kind", "buckets"},
                           {"step", step},
                           {"loss", total_loss},
                           {"accuracy", 1 - error},
                           {"error", error},
                           {"head_error", 1 - list.front()["accuracy"].get<double>()},
                           {"tail_error", 1 - list.back()["accuracy"].get<double>()},
                           {"buckets", list}};
  if (final) {
    nlohmann::json steps = nlohmann::json::array();
    for (int64_t s : steps_to_threshold_)
      steps.push_back(s < 0 ? nlohmann::json() : nlohmann::json(s));
    const int64_t head = steps_to_threshold_.front(), tail = steps_to_threshold_.back();
    record["threshold"] = threshold_;
    record["threshold_on"] = "accuracy";
    record["steps_to_threshold"] = steps;
    record["tail_head_ratio"] =
        head > 0 && tail >= 0 ? nlohmann::json(static_cast<double>(tail) / head) : nlohmann::json();
  }
  return record;
}

std::string FactsProbe::describe() const {
  int64_t probes = 0;
  for (int64_t n : probes_per_bucket_) probes += n;
  return fmt::format(
      "facts probe: {} facts in {} buckets (head mass {:.3f}, tail {:.4f}), {} "
      "batches; threshold: first-object accuracy >= {}",
      probes, masses_.size(), masses_.front(), masses_.back(), batches_.size(), threshold_);
}

std::string FactsProbe::final_summary() const {
  std::string steps;
  for (int64_t s : steps_to_threshold_)
    steps += (steps.empty() ? "" : " ") + (s < 0 ? "-" : std::to_string(s));
  const int64_t head = steps_to_threshold_.front(), tail = steps_to_threshold_.back();
  return fmt::format(
      "steps to bucket first-object accuracy >= {} (head first; - = not reached): {}; tail/head "
      "{}",
      threshold_, steps,
      head > 0 && tail >= 0 ? fmt::format("{:.2f}", static_cast<double>(tail) / head) : "n/a");
}

nlohmann::json FactsProbe::state() const { return {{"steps_to_threshold", steps_to_threshold_}}; }

void FactsProbe::restore(const nlohmann::json& state) {
  if (state.is_null()) return;
  auto steps = state.at("steps_to_threshold").get<std::vector<int64_t>>();
  if (steps.size() != steps_to_threshold_.size())
    throw std::runtime_error("checkpoint: the facts probe state has " +
                             std::to_string(steps.size()) + " buckets, data.facts has " +
                             std::to_string(steps_to_threshold_.size()));
  steps_to_threshold_ = steps;
}

}  // namespace muonlab
