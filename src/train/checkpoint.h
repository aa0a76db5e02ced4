// Checkpoints: one directory per step, checkpoints/step_NNNNNNN/, written under a temporary name
// with every file fsync'ed, renamed into place, with manifest.json (format version, step, tokens,
// config hash, xxh64 + size of every file) written last. Holds model weights, optimizer state,
// train state (step, tokens, loader cursor, best val loss, the model kind's record state), the
// torch RNG state and the resolved config. Loading verifies the manifest first; a checkpoint that
// does not verify is skipped. Fault injection for tests: if
// MUONLAB_FAULT_KILL_IN_CHECKPOINT=<step>, the process kills itself with SIGKILL halfway through
// writing that step's checkpoint.
#pragma once
#include <filesystem>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "data/batch_loader.h"
#include "optim/optimizer.h"

namespace muonlab {

constexpr int kCheckpointFormat = 1;

struct TrainState {
  int64_t step = 0;  // optimizer steps completed
  int64_t tokens_seen = 0;
  LoaderCursor cursor;
  double best_val_loss = std::numeric_limits<double>::infinity();
  nlohmann::json task_state;  // the model kind's record state (Model::task_state); null if none
};

// A model's parameters by name (Model::named_params()).
using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// xxh64 hex digest of a whole file (streamed).
std::string file_xxh64(const std::filesystem::path& path);
// Short stable hash of a text (used for the config).
std::string text_xxh64(const std::string& text);

// Which checkpoints survive pruning: the newest keep_last, plus every one whose step is a
// multiple of keep_every (when keep_every > 0).
struct RetentionPolicy {
  int64_t keep_last = 3;
  int64_t keep_every = 0;
};

class CheckpointStore {
 public:
  explicit CheckpointStore(std::filesystem::path run_dir);

  // Writes the checkpoint for state.step, then prunes by `retention`. On failure (e.g. disk
  // full) removes the partial write, leaves earlier checkpoints untouched and throws
  // std::runtime_error saying what happened.
  std::filesystem::path save(const TrainState& state, const NamedTensors& params,
                             const OptimizerSet& optimizer, const std::string& config_yaml,
                             const RetentionPolicy& retention) const;
  // Checkpoint directories (step_N), newest first by step number.
  std::vector<std::filesystem::path> list() const;
  // The newest checkpoint that verifies; `skipped` is told about each one that does not.
  std::optional<std::filesystem::path> latest_valid(
      const std::function<void(const std::string&)>& skipped) const;

  // Throws std::runtime_error saying what is wrong with the checkpoint at `dir`.
  static void verify(const std::filesystem::path& dir);
  // Restores model, optimizer and RNG; returns the train state. Verifies first.
  static TrainState load(const std::filesystem::path& dir, const NamedTensors& params,
                         OptimizerSet& optimizer);
  // The resolved config saved in a checkpoint.
  static std::string saved_config(const std::filesystem::path& dir);

 private:
  // Applies `retention` around the checkpoint just written for current_step (never deleted).
  void prune(const RetentionPolicy& retention, int64_t current_step) const;
  std::filesystem::path root_;  // run_dir/checkpoints
};

}  // namespace muonlab
