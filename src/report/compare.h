// `muonlab compare`: reads run directories and sweep directories (all their points), groups the
// runs by a config key (default optim.kind; `variant` for sweep variants), and computes each
// group's best lr, plateau and seed statistics (group_stats). Formats the terminal tables; the
// files of --out (summary.md/csv/json) and the plots are report_files' job.
#pragma once
#include <string>
#include <vector>

#include "src/report/group_stats.h"
#include "src/report/run_summary.h"

namespace muonlab {

struct CompareOptions {
  std::vector<std::string> inputs;  // run or sweep directories
  std::string group_by;             // empty: the sweeps' own group_by, else optim.kind
  double target = NAN;              // loss for steps-to-target; NaN = not asked
  std::string out_dir;              // summary files (and plots) go here; empty = none
  bool plots = false;
};

struct Comparison {
  std::string group_by;
  double target = NAN;
  std::vector<RunSummary> runs;
  std::vector<GroupStats> groups;
};

// Throws std::runtime_error for an input that is neither a run nor a sweep directory.
Comparison build_comparison(const CompareOptions& options);

// The terminal report: per-run table, stable rank by matrix kind, per-group table, notes.
std::string format_comparison(const Comparison& comparison);

}  // namespace muonlab
