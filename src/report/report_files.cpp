// summary.json / summary.csv / summary.md, and running tools/plot.py.
#include "src/report/report_files.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "src/config/number_text.h"
#include "src/shell_quote.h"
#include "src/stop_signals.h"
#include "src/sweep/sweep_index.h"

namespace muonlab {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json plateau_json(const Plateau& p) {
  return {{"delta", p.delta},
          {"lr_min", number(p.lr_min)},
          {"lr_max", number(p.lr_max)},
          {"width", number(p.width)}};
}

std::string cell(double v) { return std::isfinite(v) ? shortest_text(v) : ""; }

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "–";
  char buf[64];
  snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string rank(const RunSummary& r, const char* key) {
  auto it = r.stable_rank.find(key);
  return it == r.stable_rank.end() ? "–" : fixed(it->second, 2);
}

const char* kKinds[] = {"q", "k", "v", "o", "w1", "w2", "w3"};

}  // namespace

// A frequency-bucket run's steps to threshold (null for other runs).
json buckets_json(const RunSummary& r) {
  if (r.bucket_steps.empty()) return nullptr;
  json steps = json::array();
  for (int64_t s : r.bucket_steps) steps.push_back(s >= 0 ? json(s) : json(nullptr));
  return {{"threshold", number(r.bucket_threshold)},
          {"threshold_on", r.bucket_metric},
          {"steps_to_threshold", steps},
          {"tail_head_ratio", number(r.tail_head_ratio)},
          {"final_excess", number(r.final_excess)},
          {"final_accuracy", number(r.final_accuracy)}};
}

json comparison_json(const Comparison& c) {
  json runs = json::array();
  for (const auto& r : c.runs) {
    json sr = json::object();
    for (const auto& [key, value] : r.stable_rank) sr[key] = number(value);
    runs.push_back({{"run_dir", r.run_dir},
                    {"name", r.name},
                    {"group", r.group},
                    {"optimizer", r.optimizer},
                    {"lr", number(r.lr)},
                    {"seed", r.seed},
                    {"status", r.status},
                    {"error", r.error},
                    {"steps", r.steps},
                    {"planned_steps", r.planned_steps},
                    {"tokens", r.tokens},
                    {"final_val", number(r.final_val)},
                    {"best_val", number(r.best_val)},
                    {"ppl", number(r.final_ppl)},
                    {"bpb", number(r.final_bpb)},
                    {"tok_per_s", number(r.tok_per_s)},
                    {"target_step", r.target_step >= 0 ? json(r.target_step) : json(nullptr)},
                    {"target_tokens", r.target_tokens >= 0 ? json(r.target_tokens) : json(nullptr)},
                    {"stable_rank", sr},
                    {"update_stable_rank", number(r.update_stable_rank)},
                    {"buckets", buckets_json(r)},
                    {"at_best_lr", r.at_best_lr}});
  }
  json groups = json::array();
  for (const auto& g : c.groups) {
    json by_lr = json::array();
    for (const auto& p : g.by_lr)
      by_lr.push_back({{"lr", p.lr},
                       {"mean", number(p.mean)},
                       {"std", number(p.std)},
                       {"n", p.n},
                       {"runs", p.runs}});
    groups.push_back(
        {{"name", g.name},
         {"runs", g.runs},
         {"done", g.done},
         {"best_lr", number(g.best_lr)},
         {"edge", g.edge},
         {"loss_by_lr", by_lr},
         {"selection_seeds", g.selection_seeds},
         {"plateau",
          {{"nats", plateau_json(g.plateau_nats)}, {"relative", plateau_json(g.plateau_relative)}}},
         {"seeds", g.final_at_best.size()},
         {"final_val",
          {{"mean", number(g.final_mean)},
           {"std", number(g.final_std)},
           {"values", g.final_at_best}}},
         {"best_val",
          {{"mean", number(g.best_mean)}, {"std", number(g.best_std)}, {"values", g.best_at_best}}},
         {"is_best", g.is_best},
         {"gap", number(g.gap)},
         {"gap_se", number(g.gap_se)},
         {"welch", g.test.valid ? json({{"t", number(g.test.t)},
                                        {"dof", number(g.test.dof)},
                                        {"p", number(g.test.p)}})
                                : json(nullptr)}});
  }
  return {
      {"group_by", c.group_by}, {"target", number(c.target)}, {"runs", runs}, {"groups", groups}};
}

std::string comparison_csv(const Comparison& c) {
  std::ostringstream out;
  out << "run,group,optimizer,lr,seed,status,steps,tokens,final_val,best_val,ppl,bpb,tok_per_s,"
         "target_step,target_tokens,sr_all,sr_attn,sr_mlp,sr_q,sr_k,sr_v,sr_o,sr_w1,sr_w2,sr_w3,"
         "sr_update,at_best_lr,final_excess,tail_head_ratio,steps_to_threshold,threshold_on,"
         "final_accuracy\n";
  for (const auto& r : c.runs) {
    auto sr = [&](const char* key) {
      auto it = r.stable_rank.find(key);
      return it == r.stable_rank.end() ? std::string() : cell(it->second);
    };
    out << csv_field(r.run_dir) << "," << csv_field(r.group) << "," << csv_field(r.optimizer) << ","
        << cell(r.lr) << "," << r.seed << "," << r.status << "," << r.steps << "," << r.tokens
        << "," << cell(r.final_val) << "," << cell(r.best_val) << "," << cell(r.final_ppl) << ","
        << cell(r.final_bpb) << "," << cell(r.tok_per_s) << ","
        << (r.target_step >= 0 ? std::to_string(r.target_step) : "") << ","
        << (r.target_tokens >= 0 ? std::to_string(r.target_tokens) : "");
    for (const char* key : {"all", "attn", "mlp", "q", "k", "v", "o", "w1", "w2", "w3"})
      out << "," << sr(key);
    std::string steps;
    for (int64_t s : r.bucket_steps)
      steps += (steps.empty() ? "" : " ") + (s >= 0 ? std::to_string(s) : "-");
    out << "," << cell(r.update_stable_rank) << "," << (r.at_best_lr ? "true" : "false") << ","
        << cell(r.final_excess) << "," << cell(r.tail_head_ratio) << "," << steps << ","
        << (r.bucket_steps.empty() ? "" : r.bucket_metric) << "," << cell(r.final_accuracy) << "\n";
  }
  return out.str();
}

// The frequency-bucket section: each bucket's steps to threshold per run ("" without buckets).
// Runs scored by excess loss (assoc_memory) and by accuracy (a facts corpus) share the table
// with each row naming its own threshold when both kinds are present.
std::string buckets_markdown(const Comparison& c) {
  std::vector<const RunSummary*> shown;
  for (const auto& r : c.runs)
    if (!r.bucket_steps.empty()) shown.push_back(&r);
  if (shown.empty()) return "";
  size_t by_accuracy = 0;
  for (const auto* r : shown) by_accuracy += r->bucket_metric == "accuracy";
  const bool mixed = by_accuracy > 0 && by_accuracy < shown.size();
  const bool accuracy = by_accuracy == shown.size();
  const double threshold = shown.front()->bucket_threshold;
  std::ostringstream md;
  md << "\n## Frequency buckets\n\nSteps until a bucket's ";
  if (mixed)
    md << "mean excess loss falls below, or first-object accuracy reaches, its run's threshold";
  else
    md << (accuracy ? "first-object accuracy reaches " : "mean excess loss falls below ")
       << shortest_text(threshold);
  md << ", head (most frequent) first; – = not reached. "
     << (mixed      ? "Final = L − L* (excess) or mass-weighted accuracy."
         : accuracy ? "Accuracy = final mass-weighted first-object accuracy."
                    : "Excess = final L − L*.")
     << "\n\n| run | "
     << (mixed      ? "final"
         : accuracy ? "accuracy"
                    : "excess")
     << " | steps to threshold | tail/head |\n|---|---|---|---|\n";
  for (const auto* r : shown) {
    const bool by_acc = r->bucket_metric == "accuracy";
    std::string steps;
    if (mixed)
      steps = (by_acc ? "(accuracy ≥ " : "(excess < ") + shortest_text(r->bucket_threshold) + ")";
    for (int64_t s : r->bucket_steps)
      steps += (steps.empty() ? "" : " ") + (s >= 0 ? std::to_string(s) : std::string("–"));
    char score[32];
    snprintf(score, sizeof score, by_acc ? "%.3f" : "%.2e",
             by_acc ? r->final_accuracy : r->final_excess);
    md << "| " << r->name << " | " << score << " | " << steps << " | "
       << (std::isfinite(r->tail_head_ratio) ? fixed(r->tail_head_ratio, 2) : "–") << " |\n";
  }
  return md.str();
}

std::string comparison_markdown(const Comparison& c, const json& plots) {
  std::ostringstream md;
  md << "# Comparison by `" << c.group_by << "`\n\n";
  md << "## Groups\n\nStatistics over finished runs; final/best val are mean ± std over the "
        "seeds at each group's best lr: the lr with the lowest mean final val over the seeds every "
        "lr of the group finished. Plateau = log10(lr_max/lr_min) "
        "over the contiguous lrs within δ of the best loss. The gap is to the best group, ± its "
        "standard error; p from Welch's t-test over seeds (n/a with one seed).\n\n";
  md << "| " << c.group_by
     << " | runs | best lr | seeds | final val | best val | plateau δ=0.02 "
        "nats | plateau δ=1 % | gap to best | p |\n|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& g : c.groups) {
    auto plateau = [](const Plateau& p) {
      return std::isfinite(p.width) ? fixed(p.width, 2) + " [" + shortest_text(p.lr_min) + ", " +
                                          shortest_text(p.lr_max) + "]"
                                    : std::string("–");
    };
    md << "| " << g.name << " | " << g.done << "/" << g.runs << " | "
       << (std::isfinite(g.best_lr) ? shortest_text(g.best_lr) : "–")
       << (g.edge && std::isfinite(g.best_lr) ? " ⚠ edge of grid" : "") << " | "
       << g.final_at_best.size() << " | " << fixed(g.final_mean, 4) << " ± "
       << fixed(g.final_std, 4) << " | " << fixed(g.best_mean, 4) << " ± " << fixed(g.best_std, 4)
       << " | " << plateau(g.plateau_nats) << " | " << plateau(g.plateau_relative) << " | "
       << (g.is_best              ? "best"
           : std::isfinite(g.gap) ? fixed(g.gap, 4) + " ± " + fixed(g.gap_se, 4)
                                  : "–")
       << " | "
       << (g.is_best || !std::isfinite(g.gap) ? "–"
           : g.test.valid                     ? fixed(g.test.p, 4)
                                              : "n/a")
       << " |\n";
  }
  md << "\n## Runs\n\n`*` = at its group's best lr. SR = mean stable rank ‖W‖²_F/σ²_max of the "
        "block matrices at the last spectral record (higher = flatter); SR upd = of their "
        "updates.\n\n";
  md << "| run | group | lr | seed | status | steps | tokens | final val | best val | ppl | bpb "
        "| tok/s | target at | SR all | SR attn | SR mlp | SR upd |";
  for (const char* k : kKinds) md << " SR " << k << " |";
  md << "\n|";
  for (int column = 0; column < 17 + 7; ++column) md << "---|";
  md << "\n";
  for (const auto& r : c.runs) {
    std::string target = !std::isfinite(c.target) ? "–"
                         : r.target_step >= 0     ? "step " + std::to_string(r.target_step) + " (" +
                                                    std::to_string(r.target_tokens) + " tokens)"
                                              : "not reached";
    md << "| " << r.name << " | " << r.group << " | "
       << (std::isfinite(r.lr) ? shortest_text(r.lr) : "–") << " | " << r.seed << " | " << r.status
       << (r.at_best_lr ? " *" : "") << " | " << r.steps << " | " << r.tokens << " | "
       << fixed(r.final_val, 4) << " | " << fixed(r.best_val, 4) << " | " << fixed(r.final_ppl, 2)
       << " | " << fixed(r.final_bpb, 4) << " | " << fixed(r.tok_per_s, 0) << " | " << target
       << " | " << rank(r, "all") << " | " << rank(r, "attn") << " | " << rank(r, "mlp") << " | "
       << fixed(r.update_stable_rank, 2) << " |";
    for (const char* k : kKinds) md << " " << rank(r, k) << " |";
    md << "\n";
  }
  for (const auto& r : c.runs)
    if (!r.error.empty()) md << "\n- `" << r.name << "` failed: " << r.error << "\n";
  md << buckets_markdown(c);
  if (plots.is_object()) {
    md << "\n## Figures\n\n";
    for (const auto& p : plots.value("plots", json::array()))
      md << "### " << p.value("title", "") << "\n\n![" << p.value("title", "") << "]("
         << p.value("file", "") << ")\n\n";
    for (const auto& s : plots.value("skipped", json::array()))
      md << "- not drawn: " << s.value("plot", "") << " (" << s.value("reason", "") << ")\n";
  }
  return md.str();
}

std::string plot_script_path() {
  if (const char* env = std::getenv("MUONLAB_PLOT_SCRIPT"); env && *env) return env;
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    fs::path exe(std::string(buf, static_cast<size_t>(n)));
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.parent_path();
         dir = dir.parent_path())
      if (fs::exists(dir / "tools" / "plot.py")) return (dir / "tools" / "plot.py").string();
  }
  return "tools/plot.py";
}

namespace {

json draw_plots(const std::string& out_dir, std::string& messages) {
  const std::string python = "/usr/bin/python3";
  const std::string script = plot_script_path();
  if (!fs::exists(script))
    throw std::runtime_error("compare --plots: " + script +
                             " not found; set MUONLAB_PLOT_SCRIPT to muonlab's tools/plot.py");
  // The plotting program must stay stoppable by Ctrl-C / SIGTERM (stop_signals.h).
  const StopSignalsUnblockedHere python_stoppable;
  if (system((python + " -c 'import matplotlib' >/dev/null 2>&1").c_str()) != 0)
    throw std::runtime_error(
        "compare --plots: /usr/bin/python3 has no matplotlib; install "
        "Debian's python3-matplotlib (tools/setup.sh does)");
  const std::string summary = (fs::path(out_dir) / "summary.json").string();
  const std::string command = python + " " + shell_quoted(script) + " " + shell_quoted(summary) +
                              " " + shell_quoted(out_dir) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("compare --plots: cannot run " + command);
  char buffer[4096];
  std::string output;
  while (fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = pclose(pipe);
  messages += output;
  if (status != 0) {
    while (!output.empty() && std::isspace(static_cast<unsigned char>(output.back())))
      output.pop_back();
    throw std::runtime_error("compare --plots: tools/plot.py failed: " +
                             output.substr(output.rfind('\n') + 1));
  }
  std::ifstream in(fs::path(out_dir) / "plots.json");
  json plots = json::parse(in, nullptr, false);
  if (plots.is_discarded() || !plots.is_object())
    throw std::runtime_error("compare --plots: tools/plot.py wrote no readable plots.json");
  // Embed only the files that exist.
  json kept = json::array();
  for (const auto& p : plots.value("plots", json::array()))
    if (fs::exists(fs::path(out_dir) / p.value("file", ""))) kept.push_back(p);
  plots["plots"] = kept;
  return plots;
}

}  // namespace

std::string write_report(const Comparison& c, const std::string& out_dir, bool plots) {
  fs::create_directories(out_dir);
  std::string messages;
  const fs::path dir(out_dir);
  write_file_atomically((dir / "summary.json").string(), comparison_json(c).dump(2) + "\n");
  write_file_atomically((dir / "summary.csv").string(), comparison_csv(c));
  json drawn = nullptr;
  std::string plot_error;
  if (plots) {
    try {
      drawn = draw_plots(out_dir, messages);
    } catch (const std::exception& e) {
      // summary.md must never describe the previous figures: write it without any.
      plot_error = e.what();
      drawn = {{"plots", json::array()},
               {"skipped", json::array({{{"plot", "every figure"}, {"reason", plot_error}}})}};
    }
  }
  write_file_atomically((dir / "summary.md").string(), comparison_markdown(c, drawn));
  if (!plot_error.empty())
    throw std::runtime_error(plot_error + " (summary.md, .csv and .json written, without figures)");
  messages += "wrote " + (dir / "summary.md").string() + ", summary.csv, summary.json\n";
  return messages;
}

}  // namespace muonlab
