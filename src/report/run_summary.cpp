// Reading a run directory into a RunSummary.
#include "src/report/run_summary.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "src/config/config_reader.h"
#include "src/config/number_text.h"
#include "src/train/metrics.h"
#include "src/train/run_lock.h"

namespace muonlab {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double median(std::vector<double> values) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

double number_or_nan(const json& record, const char* key) {
  auto it = record.find(key);
  return it != record.end() && it->is_number() ? it->get<double>() : NAN;
}

void read_config(RunSummary& s) {
  const fs::path path = fs::path(s.run_dir) / "config.yaml";
  if (!fs::exists(path)) return;
  try {
    s.config = YAML::LoadFile(path.string());
  } catch (const YAML::Exception&) {
    return;
  }
  s.optimizer = config_value(s.config, "optim.kind");
  double number = NAN;
  if (parse_number(config_value(s.config, "optim.lr"), number)) s.lr = number;
  if (parse_number(config_value(s.config, "seed"), number)) s.seed = static_cast<int64_t>(number);
  if (parse_number(config_value(s.config, "train.steps"), number))
    s.planned_steps = static_cast<int64_t>(number);
}

// Mean stable ranks of the block matrices (and their updates) of one spectral record.
void summarize_spectra(const json& record, RunSummary& s) {
  std::map<std::string, std::pair<double, int>> sums;
  double update_sum = 0;
  int updates = 0;
  bool has_blocks = false;
  for (const auto& m : record.at("matrices"))
    has_blocks = has_blocks || !block_matrix_kind(m.value("name", "")).empty();
  for (const auto& m : record.at("matrices")) {
    std::string kind = block_matrix_kind(m.value("name", ""));
    if (kind.empty() && has_blocks) continue;  // embedding, head
    if (kind.empty()) kind = "other";          // a model without blocks: every matrix counts
    double rank = number_or_nan(m, "stable_rank");
    if (!std::isfinite(rank)) continue;
    const bool attention = kind == "q" || kind == "k" || kind == "v" || kind == "o";
    std::vector<std::string> keys{"all"};
    if (has_blocks) keys = {kind, "all", attention ? "attn" : "mlp"};
    for (const auto& key : keys) sums[key].first += rank, sums[key].second += 1;
    if (m.contains("update")) {
      double update = number_or_nan(m["update"], "stable_rank");
      if (std::isfinite(update)) update_sum += update, ++updates;
    }
  }
  s.stable_rank.clear();
  for (const auto& [key, sum] : sums) s.stable_rank[key] = sum.first / sum.second;
  s.update_stable_rank = updates ? update_sum / updates : NAN;
}

// Steps to threshold and ratio from a `buckets` record (present in the run's final one).
void summarize_buckets(const json& record, RunSummary& s) {
  s.final_excess = number_or_nan(record, "excess");
  s.final_accuracy = number_or_nan(record, "accuracy");
  if (!record.contains("steps_to_threshold")) return;
  s.bucket_metric = record.value("threshold_on", std::string("excess"));
  s.bucket_steps.clear();
  for (const auto& step : record.at("steps_to_threshold"))
    s.bucket_steps.push_back(step.is_number() ? step.get<int64_t>() : -1);
  s.bucket_threshold = number_or_nan(record, "threshold");
  s.tail_head_ratio = number_or_nan(record, "tail_head_ratio");
}

}  // namespace

std::string block_matrix_kind(const std::string& name) {
  if (name.rfind("blocks.", 0) != 0) return "";
  const std::string last = name.substr(name.rfind('.') + 1);
  if (last == "wq" || last == "wk" || last == "wv" || last == "wo") return last.substr(1);
  if (last == "w1" || last == "w2" || last == "w3") return last;
  return "";
}

std::string config_value(const YAML::Node& config, const std::string& dotted_key) {
  if (!config || !config.IsMap()) return "";
  auto flat = flatten_yaml(config);
  auto it = flat.find(dotted_key);
  return it == flat.end() ? "" : it->second;
}

RunSummary summarize_run(const std::string& run_dir, double target) {
  RunSummary s;
  s.run_dir = run_dir;
  s.name = run_dir;
  read_config(s);
  const bool running = run_is_locked(run_dir);
  const fs::path metrics = fs::path(run_dir) / "metrics.jsonl";
  if (!fs::exists(metrics)) {
    s.status = running ? "running" : "no metrics";
    return s;
  }
  std::vector<double> speeds;
  std::map<int64_t, int64_t> tokens_at_step{{0, 0}};
  int64_t last_val_step = -1;
  std::vector<nlohmann::json> records;
  try {
    records = read_metrics(metrics.string());
  } catch (const std::exception& e) {
    s.status = running ? "running" : "unreadable";
    s.error = e.what();
    return s;
  }
  for (const auto& r : records) {
    const std::string kind = r.value("kind", "");
    const int64_t step = r.value("step", int64_t{0});
    if (kind == "train") {
      s.steps = std::max(s.steps, step);
      s.tokens = r.value("tokens", s.tokens);
      tokens_at_step[step] = r.value("tokens", int64_t{0});
      double speed = number_or_nan(r, "tok_per_s");
      if (std::isfinite(speed)) speeds.push_back(speed);
    } else if (kind == "val") {
      s.final_val = number_or_nan(r, "loss");
      s.final_ppl = number_or_nan(r, "ppl");
      s.final_bpb = number_or_nan(r, "bpb");
      if (std::isfinite(s.final_val) && !(s.final_val >= s.best_val)) s.best_val = s.final_val;
      last_val_step = step;
      if (s.target_step < 0 && std::isfinite(target) && s.final_val <= target) {
        s.target_step = step;
        auto it = tokens_at_step.find(step);
        s.target_tokens = it != tokens_at_step.end() ? it->second : -1;
      }
    } else if (kind == "spectral") {
      summarize_spectra(r, s);
    } else if (kind == "buckets") {
      summarize_buckets(r, s);
    }
  }
  s.tok_per_s = median(speeds);
  if (running)
    s.status = "running";
  else if (last_val_step < 0)
    s.status = "no val";
  else if (s.planned_steps > 0 && s.steps >= s.planned_steps && last_val_step == s.steps)
    s.status = "done";
  else
    s.status = "stopped";
  return s;
}

}  // namespace muonlab
