// A sweep file (`muonlab sweep SWEEP.yaml`): a base config, axes (a cartesian `grid`, `zip`
// blocks of keys varied together, named `variants` with their own settings and axes), a
// `group_by` key and an optional second stage run at each group's best stage-1 point. This file
// parses and validates it and expands it into points with stable run-directory names; it does
// not run anything (sweep_runner does) and does not know which keys a run config accepts (each
// point is validated by loading its config).
//
//   base: configs/kjv-muon.yaml          # relative to the sweep file, then the working dir
//   out_dir: runs/lr-sweep               # default runs/<sweep file name without .yaml>
//   set: {train.steps: 200}              # applied to every point
//   grid: {optim.lr: [0.01, 0.02], seed: [0]}
//   zip: [{optim.kind: [adamw, muon], optim.lr: [0.003, 0.02]}]
//   variants: {muon: {set: {optim.kind: muon}, grid: {optim.lr: [0.01, 0.02]}}}
//   group_by: optim.kind                 # or `variant`
//   select: final_val                    # final_val | best_val
//   stage2: {grid: {seed: [1, 2]}}       # at each group's best stage-1 point
#pragma once
#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace muonlab {

// An ordered list of (dotted config key, YAML value).
using Overrides = std::vector<std::pair<std::string, YAML::Node>>;

// Keys varied together: rows[i][k] is the value of keys[k] in the i-th combination.
struct AxisBlock {
  std::vector<std::string> keys;
  std::vector<std::vector<YAML::Node>> rows;
};
// The cartesian product of its blocks, in order (the last block varies fastest).
using Axes = std::vector<AxisBlock>;

struct SweepVariant {
  std::string name;  // empty when the file has no `variants`
  Overrides set;
  Axes axes;
};

struct SweepPoint {
  std::string name;  // run-directory name: "lr=0.02,seed=1" (axis keys; not variant `set`s)
  int stage = 1;
  std::string variant;
  Overrides overrides;  // variant set, then axis values; `set` and --set come before these
};

struct SweepSpec {
  std::string file;                    // the sweep file as given
  std::string base;                    // the base config path, resolved
  std::string out_dir;                 // the sweep directory
  Overrides set;                       // sweep `set`, then the command line's --set
  std::vector<SweepVariant> variants;  // at least one
  std::string group_by = "optim.kind";
  std::string select = "final_val";
  Axes stage2;                       // empty: a one-stage sweep
  YAML::Node tree;                   // the sweep file as parsed (for change detection)
  std::vector<std::string> cli_set;  // the command line's --set, as given

  bool two_stage() const { return !stage2.empty(); }
  // Stage-1 points, in file order.
  std::vector<SweepPoint> stage1_points() const;
  // The stage-2 points of one group: `best` (a stage-1 point) with the stage-2 axes applied.
  std::vector<SweepPoint> stage2_points(const SweepPoint& best) const;
  // The text a point's directory name gives a value ("0.02", "adamw", "#1f3a9c02" for lists).
  static std::string value_text(const YAML::Node& value);

 private:
  std::string point_name(const std::string& variant, const Overrides& overrides) const;
  std::vector<std::string> named_keys() const;  // every axis key, in first-seen order
};

// Reads and validates a sweep file; `cli_set` are "key=value" overrides for every point and
// `out_dir` (if not empty) replaces the file's. Throws ConfigError naming the file and key.
SweepSpec load_sweep_spec(const std::string& path, const std::vector<std::string>& cli_set,
                          const std::string& out_dir = "");

// "key=value" (the value in YAML flow style) for `muonlab train --set`.
std::string override_argument(const std::string& key, const YAML::Node& value);

}  // namespace muonlab
