// `muonlab compare`: a side-by-side table of finished (or running) runs read from their
// metrics.jsonl and config.yaml: final/best val loss, perplexity, tokens/s and the mean stable
// rank of the attention (q, k, v, o) and MLP (w1, w2, w3) matrices at the last measurement.
#pragma once
#include <string>
#include <vector>

namespace muonlab {

struct RunSummary {
  std::string run;        // the run directory as given
  std::string optimizer;  // optim.kind from config.yaml
  int64_t steps = 0;      // last train step recorded
  double final_val = 0, best_val = 0, final_ppl = 0;
  double tok_per_s = 0;                              // median over train records
  double stable_rank_attn = 0, stable_rank_mlp = 0;  // means at the last spectral record
};

// Throws std::runtime_error if the directory holds no readable metrics.
RunSummary summarize_run(const std::string& run_dir);
// The aligned text table for several runs.
std::string format_comparison(const std::vector<RunSummary>& runs);

}  // namespace muonlab
