// The run configuration: YAML -> one validated struct per component (model, data, optim,
// schedule, train) plus the resolved config text (every key with the value used) that is printed
// at start and saved into the run directory and checkpoints. See README for every key.
#pragma once
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "models/assoc_memory.h"
#include "models/llama.h"
#include "models/matrix_sensing.h"
#include "optim/registry.h"
#include "optim/schedule.h"
#include "src/config/config_reader.h"

namespace muonlab {

// model.kind selects which of the per-kind sections below is used (the others keep defaults).
struct ModelConfig {
  std::string kind = "llama";  // llama | assoc_memory | matrix_sensing
  LlamaConfig llama;
  AssocMemoryConfig assoc;
  MatrixSensingConfig sensing;
};

// The model kinds the config accepts.
std::vector<std::string> model_kinds();

struct DataConfig {               // llama only; other kinds generate their data
  std::string train;              // token shard for training
  std::string val;                // token shard for validation
  std::string tokenizer;          // sentencepiece model (optional; enables bits-per-byte)
  std::string facts;              // facts.json of a `muonlab facts` corpus (optional: bucket probe)
  int64_t probe_every = 0;        // steps between facts probes; 0 = train.eval_every
  double probe_threshold = 0.95;  // bucket first-object accuracy for steps-to-threshold
};

struct TrainConfig {
  int64_t steps = 1000;
  int64_t batch_size = 16;
  int64_t grad_accum = 1;
  double grad_clip = 1.0;  // 0 disables clipping
  std::string precision = "fp32";
  std::string out_dir = "runs/default";
  int64_t log_every = 10;
  int64_t eval_every = 100;
  int64_t eval_batches = 20;
  int64_t spectral_every = 100;         // 0 disables
  int64_t spectrum_every = 0;           // full singular value lists every N steps; 0 = never
  std::string spectral_method = "svd";  // svd (all figures) | power (sigma_max by power iteration)
  int64_t ckpt_every = 200;             // 0 = only at the end
  int64_t keep_last = 3;
  int64_t keep_every = 0;  // also keep every checkpoint whose step is a multiple; 0 = none
  std::string on_nonfinite = "stop";  // stop | skip_step
  double peak_gflops = 0;             // for MFU; 0 = measure this machine's GEMM peak at start
};

struct RunConfig {
  int64_t seed = 0;
  int64_t threads = 0;  // 0 = all cores
  std::string device = "cpu";
  ModelConfig model;
  DataConfig data;
  OptimConfig optim;
  ScheduleConfig schedule;
  TrainConfig train;
  std::string resolved_yaml;  // every key with the value used
};

// Loads `path` (with bases), applies overrides, validates. Throws ConfigError.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Parses an already merged tree; `origin` names it in error messages.
RunConfig parse_run_config(const YAML::Node& root, const std::string& origin);

}  // namespace muonlab
