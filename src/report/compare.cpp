// Collecting runs from run and sweep directories, grouping them, and the terminal tables.
#include "src/report/compare.h"

#include <filesystem>
#include <sstream>

#include "src/config/number_text.h"
#include "src/sweep/sweep_index.h"

namespace muonlab {
namespace fs = std::filesystem;

namespace {

bool is_run_dir(const std::string& dir) {
  return fs::exists(fs::path(dir) / "metrics.jsonl") || fs::exists(fs::path(dir) / "config.yaml");
}

// The group_by of a sweep directory's sweep.yaml, or "".
std::string sweep_group_by(const std::string& dir) {
  try {
    YAML::Node stored = YAML::LoadFile((fs::path(dir) / "sweep.yaml").string());
    if (stored["sweep"] && stored["sweep"]["group_by"])
      return stored["sweep"]["group_by"].as<std::string>();
    return stored["sweep"] ? "optim.kind" : "";
  } catch (const YAML::Exception&) {
    return "";
  }
}

std::string default_group_by(const std::vector<std::string>& inputs) {
  std::string chosen;
  for (const auto& dir : inputs) {
    std::string g = is_sweep_dir(dir) ? sweep_group_by(dir) : "optim.kind";
    if (g.empty()) g = "optim.kind";
    if (!chosen.empty() && chosen != g) return "optim.kind";
    chosen = g;
  }
  return chosen.empty() ? "optim.kind" : chosen;
}

std::string group_of(const RunSummary& run, const std::string& group_by,
                     const std::string& variant) {
  if (group_by == "variant") return variant.empty() ? "(none)" : variant;
  std::string value = config_value(run.config, group_by);
  return value.empty() ? "?" : value;
}

void add_sweep(const std::string& dir, const CompareOptions& options, const std::string& group_by,
               std::vector<RunSummary>& runs) {
  for (const auto& entry : read_index(dir)) {
    std::string run_dir = (fs::path(dir) / entry.point).string();
    RunSummary s = summarize_run(run_dir, options.target);
    s.name = entry.point;
    if (entry.status == "failed" && s.status != "done" && s.status != "running") {
      s.status = "failed";
      s.error = entry.error;
    } else if (s.status == "no metrics" && entry.status == "pending") {
      s.status = "not started";
    }
    s.group = group_of(s, group_by, entry.variant);
    runs.push_back(std::move(s));
  }
}

std::string num(double v, const char* format) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  snprintf(buf, sizeof buf, format, v);
  return buf;
}

// 4 decimals, or scientific notation below 1e-3 (theory models reach such losses).
std::string loss_text(double loss) {
  return num(loss, std::abs(loss) >= 1e-3 || loss == 0 ? "%.4f" : "%.3e");
}

// A spread in the notation of its mean's loss_text.
std::string spread_text(double spread, double mean) {
  return num(spread, std::abs(mean) >= 1e-3 || mean == 0 ? "%.4f" : "%.3e");
}

std::string lr_text(double lr) { return std::isfinite(lr) ? shortest_text(lr) : "-"; }

// A text table with left-aligned first columns and right-aligned numbers.
class Table {
 public:
  explicit Table(std::vector<std::string> header, size_t left_columns = 1) : left_(left_columns) {
    rows_.push_back(std::move(header));
  }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string str() const {
    std::vector<size_t> width(rows_[0].size(), 0);
    for (const auto& row : rows_)
      for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (size_t c = 0; c < row.size(); ++c) {
        std::string pad(width[c] - row[c].size(), ' ');
        line += (c ? "  " : "") + (c < left_ ? row[c] + pad : pad + row[c]);
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    return out;
  }

 private:
  size_t left_;
  std::vector<std::vector<std::string>> rows_;
};

double rank_of(const RunSummary& r, const char* key) {
  auto it = r.stable_rank.find(key);
  return it == r.stable_rank.end() ? NAN : it->second;
}

// What a bucket threshold means, for headings: "excess loss < 0.1" or "accuracy >= 0.95".
std::string threshold_text(const RunSummary& r) {
  return (r.bucket_metric == "accuracy" ? "accuracy >= " : "excess loss < ") +
         shortest_text(r.bucket_threshold);
}

// Steps to threshold per frequency bucket and the tail/head ratio, for the runs that report
// buckets ("" if none does): every bucket when all runs have the same number (up to 16) and the
// same threshold, else each run's own head, middle and tail with its threshold. The second
// column is the final excess loss (excess thresholds) or the final accuracy (accuracy ones).
std::string bucket_table(const std::vector<RunSummary>& runs) {
  std::vector<const RunSummary*> shown;
  for (const auto& r : runs)
    if (!r.bucket_steps.empty()) shown.push_back(&r);
  if (shown.empty()) return "";
  const size_t count = shown.front()->bucket_steps.size();
  const std::string threshold = threshold_text(*shown.front());
  bool uniform = count <= 16;
  bool accuracy = true, excess = true;
  for (const auto* r : shown) {
    uniform = uniform && r->bucket_steps.size() == count && threshold_text(*r) == threshold;
    accuracy = accuracy && r->bucket_metric == "accuracy";
    excess = excess && r->bucket_metric != "accuracy";
  }
  auto steps_text = [](int64_t s) { return s >= 0 ? std::to_string(s) : std::string("-"); };
  std::vector<std::string> header{"run", accuracy ? "accuracy" : excess ? "excess" : "final"};
  if (!uniform) header.push_back("threshold");
  for (size_t b = 0; b < (uniform ? count : 3); ++b)
    header.push_back(!uniform         ? std::vector<std::string>{"head", "middle", "tail"}[b]
                     : b == 0         ? "head"
                     : b + 1 == count ? "tail"
                                      : "b" + std::to_string(b + 1));
  header.push_back("tail/head");
  Table table(header);
  for (const auto* r : shown) {
    const auto& s = r->bucket_steps;
    std::vector<std::string> row{r->name, r->bucket_metric == "accuracy"
                                              ? num(r->final_accuracy, "%.3f")
                                              : num(r->final_excess, "%.2e")};
    if (uniform) {
      for (int64_t step : s) row.push_back(steps_text(step));
    } else {
      row.push_back((r->bucket_metric == "accuracy" ? ">= " : "< ") +
                    shortest_text(r->bucket_threshold));
      for (size_t b : {size_t{0}, (s.size() - 1) / 2, s.size() - 1})
        row.push_back(steps_text(s[b]));
    }
    row.push_back(num(r->tail_head_ratio, "%.2f"));
    table.add(row);
  }
  const std::string final_note = accuracy ? "accuracy = final mass-weighted accuracy"
                                 : excess ? "excess = final L - L*"
                                          : "final: excess L - L*, or accuracy";
  const std::string heading = uniform    ? threshold
                              : accuracy ? "accuracy >= threshold"
                              : excess   ? "excess loss < threshold"
                                         : "threshold";
  return "\nsteps to bucket " + heading + " (frequency buckets, head first; - = not reached; " +
         final_note + ")\n" + table.str();
}

}  // namespace

Comparison build_comparison(const CompareOptions& options) {
  Comparison c;
  c.target = options.target;
  c.group_by = options.group_by.empty() ? default_group_by(options.inputs) : options.group_by;
  for (const auto& dir : options.inputs) {
    if (is_sweep_dir(dir)) {
      add_sweep(dir, options, c.group_by, c.runs);
    } else if (is_run_dir(dir)) {
      RunSummary s = summarize_run(dir, options.target);
      s.group = group_of(s, c.group_by, "");
      c.runs.push_back(std::move(s));
    } else {
      throw std::runtime_error("compare: " + dir +
                               " is neither a run directory (metrics.jsonl, config.yaml) nor a "
                               "sweep directory (sweep.jsonl)");
    }
  }
  c.groups = group_statistics(c.runs);
  return c;
}

std::string format_comparison(const Comparison& c) {
  std::ostringstream out;
  Table runs({"run", "group", "lr", "seed", "status", "steps", "tokens", "final val", "best val",
              "ppl", "bpb", "tok/s", "target at", "SR all", "SR attn", "SR mlp", "SR upd"},
             2);
  for (const auto& r : c.runs) {
    std::string target = !std::isfinite(c.target) ? "-"
                         : r.target_step >= 0     ? "step " + std::to_string(r.target_step)
                                                  : "not reached";
    std::string status = r.status + (r.at_best_lr ? " *" : "");
    if (r.status == "stopped" || r.status == "running")
      status += " (" + std::to_string(r.steps) + "/" + std::to_string(r.planned_steps) + ")";
    runs.add({r.name, r.group, lr_text(r.lr), std::to_string(r.seed), status,
              std::to_string(r.steps), std::to_string(r.tokens), loss_text(r.final_val),
              loss_text(r.best_val), num(r.final_ppl, "%.2f"), num(r.final_bpb, "%.4f"),
              num(r.tok_per_s, "%.0f"), target, num(rank_of(r, "all"), "%.2f"),
              num(rank_of(r, "attn"), "%.2f"), num(rank_of(r, "mlp"), "%.2f"),
              num(r.update_stable_rank, "%.2f")});
  }
  out << runs.str();
  out << "* = at its group's best lr. SR = mean stable rank ||W||_F^2/sigma_max^2 of the block "
         "matrices at the last spectral record (higher = flatter spectrum); SR upd = of their "
         "updates\n";
  for (const auto& r : c.runs)
    if (!r.error.empty()) out << r.name << ": " << r.error << "\n";

  Table kinds({"run", "q", "k", "v", "o", "w1", "w2", "w3"});
  bool any_kind = false;
  for (const auto& r : c.runs) {
    std::vector<std::string> row{r.name};
    for (const char* k : {"q", "k", "v", "o", "w1", "w2", "w3"})
      row.push_back(num(rank_of(r, k), "%.2f"));
    any_kind = any_kind || !r.stable_rank.empty();
    kinds.add(row);
  }
  if (any_kind)
    out << "\nstable rank by matrix kind (mean over layers, last record)\n" << kinds.str();
  out << bucket_table(c.runs);

  Table groups({c.group_by, "runs", "best lr", "seeds", "final val", "best val",
                "plateau 0.02 nats", "plateau 1%", "gap to best", "p (Welch)"});
  for (const auto& g : c.groups) {
    auto plateau = [&](const Plateau& p) {
      if (!std::isfinite(p.width)) return std::string("-");
      return num(p.width, "%.2f") + " [" + lr_text(p.lr_min) + ", " + lr_text(p.lr_max) + "]";
    };
    std::string best_lr =
        lr_text(g.best_lr) + (g.edge && std::isfinite(g.best_lr) ? " (edge)" : "");
    std::string gap =
        g.is_best
            ? "best"
            : num(g.gap, "%+.4f") + (std::isfinite(g.gap_se) ? " ± " + num(g.gap_se, "%.4f") : "");
    std::string p = g.is_best || !std::isfinite(g.gap) ? "-"
                    : g.test.valid                     ? num(g.test.p, "%.3g")
                                                       : "n/a";
    groups.add({g.name, std::to_string(g.done) + "/" + std::to_string(g.runs), best_lr,
                std::to_string(g.final_at_best.size()),
                loss_text(g.final_mean) + " ± " + spread_text(g.final_std, g.final_mean),
                loss_text(g.best_mean) + " ± " + spread_text(g.best_std, g.best_mean),
                plateau(g.plateau_nats), plateau(g.plateau_relative), gap, p});
  }
  out << "\nby " << c.group_by
      << " (statistics over finished runs; final/best val: mean ± std "
         "over seeds at the best lr)\n"
      << groups.str();
  for (const auto& g : c.groups) {
    if (g.by_lr.size() < 2 || g.selection_seeds.empty()) continue;
    std::string seeds;
    for (int64_t seed : g.selection_seeds)
      seeds += (seeds.empty() ? "" : ", ") + std::to_string(seed);
    out << g.name << ": best lr and plateau chosen on seed"
        << (g.selection_seeds.size() > 1 ? "s " : " ") << seeds << " (finished at every lr)\n";
  }
  for (const auto& g : c.groups)
    if (g.edge && std::isfinite(g.best_lr))
      out << "note: " << g.name << "'s best lr " << lr_text(g.best_lr)
          << (g.by_lr.size() == 1 ? " is the only lr tried" : " is at the edge of its grid")
          << ": the optimum is not bracketed; extend the grid\n";
  return out.str();
}

}  // namespace muonlab
