// `muonlab bench`: speed and memory of the model and optimizers a config describes, measured in
// one process so they compare as ratios. First the training step as the trainer runs it (data,
// forward, backward, optimizer; medians after warm-up) with model FLOPs, GFLOP/s, MFU against the
// fp32 and bf16 GEMM peaks measured at the model's own matmul shapes, peak resident memory and
// optimizer-state bytes; optionally a per-operator profile of training steps. Then (unless
// step_only) one step of every optimizer kind, Newton-Schulz per hidden-matrix shape (bf16 vs fp32,
// batched vs one by one) against its FLOP estimate 5 x (4 m^2 n + 2 m^3), m = min dim, and one
// spectral record of the weights by full SVD against power iteration (cold and warm). It measures;
// it does not train a run or write files.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "src/config/config.h"

namespace muonlab {

struct BenchOptions {
  int repeats = 5;         // timed repetitions per figure
  int warmup = 2;          // untimed training steps first
  bool step_only = false;  // only the training step, its peaks and memory
  int profile_steps = 0;   // > 0: also a per-operator profile of that many training steps
  int profile_top = 25;    // operators listed in the text report (the JSON has them all)
};

struct BenchReport {
  std::string text;     // the human-readable report
  nlohmann::json json;  // the same figures as one object (keys in the README)
};

// Runs the benchmark; progress lines go to stderr.
BenchReport run_bench(const RunConfig& cfg, const BenchOptions& options);

}  // namespace muonlab
