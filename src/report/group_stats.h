// Per-group statistics of a comparison, the way optimizer papers report them: inside a group
// (e.g. one optimizer) the runs are grouped by learning rate, the best lr is the one with the
// lowest mean final validation loss over the seeds every lr has (so a second stage's extra
// seeds at one lr do not change which lr wins), the plateau is the contiguous range of lrs
// around it within delta of that loss (delta = 0.02 nats, and 1 %), flagged when the best lr
// sits at the edge of the grid; then mean +- std over seeds at the best lr, and the gap of each
// group to the best one with Welch's t-test over seeds. Only finished runs ("done") count.
// It reads no files and formats nothing.
#pragma once
#include <string>
#include <vector>

#include "src/report/run_summary.h"
#include "src/report/welch.h"

namespace muonlab {

struct LrPoint {
  double lr = NAN;
  double mean = NAN, std = NAN;  // of final val over the finished selection-seed runs here
  int n = 0;                     // finished runs counted in mean
  int runs = 0;                  // all runs at this lr
};

struct Plateau {
  double delta = 0;  // nats, or a fraction of the best loss
  double lr_min = NAN, lr_max = NAN;
  double width = NAN;  // log10(lr_max / lr_min)
};

struct GroupStats {
  std::string name;
  int runs = 0, done = 0;
  std::vector<LrPoint> by_lr;            // ascending lr
  std::vector<int64_t> selection_seeds;  // seeds every lr finished; by_lr uses only these
  double best_lr = NAN;
  bool edge = false;  // the best lr is the smallest or largest of the grid (or the only one)
  Plateau plateau_nats, plateau_relative;
  std::vector<double> final_at_best, best_at_best;  // one per seed at the best lr
  double final_mean = NAN, final_std = NAN, best_mean = NAN, best_std = NAN;
  bool is_best = false;            // the lowest mean final val of all groups
  double gap = NAN, gap_se = NAN;  // mean final val minus the best group's
  WelchResult test;                // against the best group, over seeds
};

constexpr double kPlateauDeltaNats = 0.02;
constexpr double kPlateauDeltaRelative = 0.01;

// The plateau of `by_lr` (ascending) around index `best`: lrs within `delta` of its mean loss,
// contiguous; `relative` makes delta a fraction of that loss.
Plateau plateau_around(const std::vector<LrPoint>& by_lr, size_t best, double delta, bool relative);

// Groups `runs` by their .group (in first-seen order), marks each run's at_best_lr.
std::vector<GroupStats> group_statistics(std::vector<RunSummary>& runs);

}  // namespace muonlab
