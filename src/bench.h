// `muonlab bench`: timings for the model and optimizers a config describes, measured in one
// process so they compare as ratios: forward+backward of one micro-batch, one step of every
// optimizer kind, and Newton-Schulz per hidden-matrix shape (bf16 vs fp32, batched vs one by one)
// against its FLOP estimate 5 x (4 m^2 n + 2 m^3), m = min dim, and one spectral record of the
// weights by full SVD against power iteration (cold and warm). Medians over several repeats.
// It measures; it does not train or write anything.
#pragma once
#include <string>

#include "src/config/config.h"

namespace muonlab {

struct BenchOptions {
  int repeats = 5;  // timed repetitions per figure (after one warm-up)
};

// Runs the benchmark and returns the report text.
std::string run_bench(const RunConfig& cfg, const BenchOptions& options);

}  // namespace muonlab
