// Shared by the end-to-end tests: a generated corpus tokenized once per test binary, running
// `muonlab train configs/tiny.yaml` on it, and reading back metrics and checkpoint weights.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace muonlab::test {

// A small generated language with real structure (templates over word classes).
std::string generated_corpus(int lines);

// The generated corpus, tokenized (vocab 512) on first use.
class Corpus {
 public:
  Corpus();
  // "--set data.train=... --set data.val=... --set data.tokenizer=..."
  std::string data_overrides() const;

 private:
  TempDir dir_{"muonlab-corpus"};
};
const Corpus& corpus();

// The `muonlab train configs/tiny.yaml` command line on the corpus into out_dir, 2 threads.
std::string train_command(const std::string& out_dir, const std::string& extra);
// Runs it quietly.
CommandResult train(const std::string& out_dir, const std::string& extra);

std::vector<nlohmann::json> records(const std::string& run_dir, const std::string& kind);
// Every train, val, buckets and spectral record without its timing fields (tok_per_s, mfu,
// seconds), one per line: equal for two runs that computed the same numbers.
std::string numbers_of(const std::string& run_dir);
// step -> train loss, as the exact doubles written to metrics.jsonl.
std::map<int64_t, double> train_losses(const std::string& run_dir);
std::map<std::string, torch::Tensor> checkpoint_weights(const std::filesystem::path& dir);

}  // namespace muonlab::test
