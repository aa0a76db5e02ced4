// Summaries of run directories and their side-by-side table.
#include "src/compare.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "src/metrics.h"

namespace muonlab {
namespace fs = std::filesystem;

namespace {

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// A numeric field, or NaN when absent or null (non-finite values are written as null).
double number_or_nan(const nlohmann::json& record, const char* key) {
  auto it = record.find(key);
  return it != record.end() && it->is_number() ? it->get<double>() : NAN;
}

bool name_has_kind(const std::string& name, std::initializer_list<const char*> kinds) {
  for (const char* kind : kinds)
    if (name.size() > std::strlen(kind) &&
        name.compare(name.size() - std::strlen(kind), std::string::npos, kind) == 0)
      return true;
  return false;
}

void summarize_spectra(const nlohmann::json& record, RunSummary& s) {
  double attn = 0, mlp = 0;
  int n_attn = 0, n_mlp = 0;
  for (const auto& m : record.at("matrices")) {
    auto name = m.at("name").get<std::string>();
    double rank = number_or_nan(m, "stable_rank");
    if (name_has_kind(name, {".wq", ".wk", ".wv", ".wo"})) attn += rank, ++n_attn;
    if (name_has_kind(name, {".w1", ".w2", ".w3"})) mlp += rank, ++n_mlp;
  }
  s.stable_rank_attn = n_attn ? attn / n_attn : NAN;
  s.stable_rank_mlp = n_mlp ? mlp / n_mlp : NAN;
}

}  // namespace

RunSummary summarize_run(const std::string& run_dir) {
  RunSummary s;
  s.run = run_dir;
  fs::path config = fs::path(run_dir) / "config.yaml";
  if (fs::exists(config)) {
    YAML::Node root = YAML::LoadFile(config.string());
    s.optimizer =
        root["optim"] && root["optim"]["kind"] ? root["optim"]["kind"].as<std::string>() : "?";
  }
  std::vector<double> speeds;
  s.best_val = INFINITY;
  s.final_val = s.final_ppl = s.stable_rank_attn = s.stable_rank_mlp = NAN;
  for (const auto& r : read_metrics((fs::path(run_dir) / "metrics.jsonl").string())) {
    auto kind = r.value("kind", "");
    if (kind == "train") {
      s.steps = std::max(s.steps, r.value("step", int64_t{0}));
      double speed = number_or_nan(r, "tok_per_s");
      if (std::isfinite(speed)) speeds.push_back(speed);
    } else if (kind == "val") {
      s.final_val = number_or_nan(r, "loss");
      s.final_ppl = number_or_nan(r, "ppl");
      s.best_val = std::min(s.best_val, s.final_val);
    } else if (kind == "spectral") {
      summarize_spectra(r, s);
    }
  }
  if (std::isinf(s.best_val)) s.best_val = NAN;
  s.tok_per_s = median(speeds);
  return s;
}

std::string format_comparison(const std::vector<RunSummary>& runs) {
  size_t run_width = 3;
  for (const auto& r : runs) run_width = std::max(run_width, r.run.size());
  std::ostringstream out;
  char line[512];
  snprintf(line, sizeof line, "%-*s  %-9s %7s %10s %10s %9s %9s %9s %9s\n", (int)run_width, "run",
           "optimizer", "steps", "final val", "best val", "ppl", "tok/s", "SR attn", "SR mlp");
  out << line;
  for (const auto& r : runs) {
    snprintf(line, sizeof line, "%-*s  %-9s %7lld %10.4f %10.4f %9.2f %9.0f %9.2f %9.2f\n",
             (int)run_width, r.run.c_str(), r.optimizer.c_str(), (long long)r.steps, r.final_val,
             r.best_val, r.final_ppl, r.tok_per_s, r.stable_rank_attn, r.stable_rank_mlp);
    out << line;
  }
  out << "SR = mean stable rank ||W||_F^2 / sigma_max^2 at the last spectral measurement "
         "(higher = flatter spectrum)\n";
  return out.str();
}

}  // namespace muonlab
