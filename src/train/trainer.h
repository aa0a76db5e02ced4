// The training loop behind `muonlab train`: sets up the run directory, data, model and
// optimizers from a validated RunConfig, trains with gradient accumulation and clipping, logs
// to the console/train.log/metrics.jsonl, evaluates, measures spectra, checkpoints, resumes.
// It orchestrates only: the maths lives in models/ and optim/, the data in data/.
#pragma once
#include <string>

#include "src/config/config.h"

namespace muonlab {

struct TrainOptions {
  bool resume = false;
  std::string resume_from;  // a checkpoint directory; empty = newest valid one
  bool overwrite = false;   // start fresh even if the run directory holds checkpoints
  bool quiet = false;       // no console output (the log file is still written)
  int64_t stop_after = 0;   // > 0: checkpoint and stop after this many steps in this invocation
};

struct TrainSummary {
  int64_t steps = 0;
  double final_train_loss = 0;
  double final_val_loss = 0;
  double best_val_loss = 0;
  double tokens_per_second = 0;
  bool interrupted = false;  // stopped by SIGINT/SIGTERM after writing a checkpoint
  bool paused = false;       // stopped by stop_after (resume to continue)
};

// Runs training to cfg.train.steps; throws std::runtime_error/ConfigError on bad input.
TrainSummary run_training(const RunConfig& cfg, const TrainOptions& options);

}  // namespace muonlab
