// Timing one full training step of a LLaMA config the way the trainer runs it, on synthetic
// tokens: the batch from a BatchLoader over a temporary shard of random tokens (data), the loss
// under the configured precision (forward), backward (backward), then zero_grad, gradient clipping
// and the optimizer's step (optimizer). Medians over repetitions after warm-up steps, per phase
// and for the whole step. It trains the model it is given (the weights move), writes nothing but
// the temporary shard (removed again) and does not evaluate or record spectra.
#pragma once
#include <memory>
#include <string>

#include "models/llama.h"
#include "optim/optimizer.h"
#include "src/config/config.h"

namespace muonlab {

struct StepTiming {
  double step_s = 0;  // median of the per-step sums of the four phases
  double data_s = 0, forward_s = 0, backward_s = 0, optimizer_s = 0;  // medians per phase
  int repeats = 0;
  int warmup = 0;
};

struct PhaseSeconds {
  double data = 0, forward = 0, backward = 0, optimizer = 0;
};

// One training step at a time over a temporary random-token shard (removed on destruction).
// `params` are the model's parameters, as the optimizer was built over them; all four must
// outlive it.
class TrainingStep {
 public:
  TrainingStep(const RunConfig& cfg, LlamaImpl& model, const std::vector<NamedParam>& params,
               OptimizerSet& optimizer);
  ~TrainingStep();
  TrainingStep(const TrainingStep&) = delete;
  TrainingStep& operator=(const TrainingStep&) = delete;
  PhaseSeconds run();

 private:
  struct Data;
  const RunConfig& cfg_;
  LlamaImpl& model_;
  const std::vector<NamedParam>& params_;
  OptimizerSet& optimizer_;
  std::unique_ptr<Data> data_;
};

// Medians of `repeats` runs of `step` after `warmup` untimed ones.
StepTiming time_training_step(TrainingStep& step, int repeats, int warmup);

}  // namespace muonlab
