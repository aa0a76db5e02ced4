// The small interface every model kind implements, so that one training loop, the optimizers,
// routing, schedules, checkpoints, exact resume, spectral records, sweeps and `compare` work for
// all of them: named parameters, the loss of a (micro-)step, an evaluation, and the kind's own
// metric records. A model kind owns whatever data it trains on (token shards for `llama`, a
// synthetic distribution for `assoc_memory`), and its step loss is a pure function of the weights
// and (seed, step, micro), so a resumed run sees exactly the data of an uninterrupted one.
// It does not own optimizers, clip gradients, log, or decide when anything happens.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace muonlab {

// What one evaluation produced: the fields of the `val` record ("loss" is required) and the text
// the console shows after "val loss <loss>".
struct Evaluation {
  nlohmann::json fields;
  std::string summary;
};

class Model {
 public:
  virtual ~Model() = default;

  // Every trainable tensor with a stable name, in a fixed order.
  virtual std::vector<std::pair<std::string, torch::Tensor>> named_params() const = 0;
  // Lines describing the model (and its data) for the run's log.
  virtual std::vector<std::string> describe() const = 0;
  // The loss whose gradient trains micro-batch `micro` (of `accum`) of optimizer step `step`
  // (0-based). The trainer calls backward on it.
  virtual torch::Tensor step_loss(int64_t step, int64_t micro, int64_t accum) = 0;
  // The items one micro-batch trains on (tokens for a language model), for throughput figures.
  virtual int64_t items_per_micro() const = 0;
  // What an item is, for the console ("tok" gives "tok/s").
  virtual std::string item_unit() const { return "tok"; }
  // Training FLOPs per item, for MFU; 0 when not meaningful (then no mfu is reported).
  virtual double flops_per_item() const { return 0; }
  // Scores the current weights (no gradients).
  virtual Evaluation evaluate() = 0;
  // The kind's own records (each with "kind") for the weights after `step` updates; `final` is
  // true at the run's last step. Called after every step and at step 0 of a new run.
  virtual std::vector<nlohmann::json> task_records(int64_t step, bool final) { return {}; }
  // Lines for the end of the run's log (e.g. the per-bucket steps to threshold).
  virtual std::vector<std::string> final_summary() const { return {}; }
  // State the task records carry across steps (saved in checkpoints, restored on resume).
  virtual nlohmann::json task_state() const { return nullptr; }
  virtual void restore_task_state(const nlohmann::json& state) {}
};

}  // namespace muonlab
