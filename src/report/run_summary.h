// What one run directory says about its run, read from config.yaml and metrics.jsonl: its
// status (done, running, stopped, no val, no metrics), optimizer, lr, seed, steps, tokens,
// final/best validation loss, perplexity, bits per byte, tokens/s, when it first reached a
// target loss, and the mean stable rank of the block matrices (all, attention, MLP, per kind)
// and of their updates at the last spectral record (every matrix counts as a block matrix for
// models without blocks), and for frequency-bucket models each bucket's steps to threshold and
// the tail/head ratio. It neither groups runs nor formats tables.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace muonlab {

struct RunSummary {
  std::string run_dir;
  std::string name;       // the sweep point name, or the run directory as given
  std::string group;      // filled in by the comparison
  std::string optimizer;  // optim.kind
  double lr = NAN;        // optim.lr
  int64_t seed = 0;
  std::string status =
      "no metrics";   // done running stopped failed "no val" "no metrics" unreadable
  std::string error;  // a failed sweep point's last error line, or why metrics are unreadable
  int64_t steps = 0, planned_steps = 0;  // last train step recorded; train.steps
  int64_t tokens = 0;                    // tokens seen at the last train record
  double final_val = NAN, best_val = NAN, final_ppl = NAN, final_bpb = NAN;
  double tok_per_s = NAN;                        // median over train records
  int64_t target_step = -1, target_tokens = -1;  // first val record at or below the target
  std::map<std::string, double> stable_rank;     // all, attn, mlp, q, k, v, o, w1, w2, w3
  double update_stable_rank = NAN;               // mean over block matrices' updates
  // Frequency-bucket runs (assoc_memory, a LLaMA model on a facts corpus): from the last
  // `buckets` record, each bucket's steps to threshold (head first; -1 = not reached; empty
  // before the final record), what the threshold is on ("excess": excess loss < threshold;
  // "accuracy": accuracy >= threshold), the tail/head ratio of those steps, the total excess
  // loss over L* (assoc_memory) and the mass-weighted accuracy (facts).
  std::vector<int64_t> bucket_steps;
  std::string bucket_metric = "excess";
  double bucket_threshold = NAN, tail_head_ratio = NAN, final_excess = NAN, final_accuracy = NAN;
  YAML::Node config;        // config.yaml (null if absent)
  bool at_best_lr = false;  // set by the comparison: a run at its group's best lr

  bool has_val() const { return std::isfinite(final_val); }
};

// Reads `run_dir`; `target` is the loss for steps-to-target (NaN: none). Never throws for a
// missing or partial run: its status says what is there.
RunSummary summarize_run(const std::string& run_dir, double target = NAN);

// The scalar text at a dotted key of a config tree ("" if absent), numbers in shortest form.
std::string config_value(const YAML::Node& config, const std::string& dotted_key);

// The matrix kind of a block matrix name ("blocks.3.attn.wq" -> "q", ".mlp.w1" -> "w1"), or ""
// for anything else (embedding, head, gains).
std::string block_matrix_kind(const std::string& name);

}  // namespace muonlab
