// The files `muonlab compare --out DIR` writes: summary.json (every figure, the input of
// tools/plot.py), summary.csv (one row per run), summary.md (the tables, and with --plots the
// figures that tools/plot.py drew, embedded). Plotting runs Debian's /usr/bin/python3 on
// tools/plot.py; a missing matplotlib is an error naming the package. It computes nothing.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "src/report/compare.h"

namespace muonlab {

nlohmann::json comparison_json(const Comparison& c);
std::string comparison_csv(const Comparison& c);
// `plots` is plot.py's plots.json (or null): the figures embedded, and the ones skipped.
std::string comparison_markdown(const Comparison& c, const nlohmann::json& plots);

// Writes summary.{json,csv,md} into out_dir, drawing the plots first when asked. Returns the
// lines to show the user (files written, plots drawn or skipped).
std::string write_report(const Comparison& c, const std::string& out_dir, bool plots);

// The plotting script: $MUONLAB_PLOT_SCRIPT, else tools/plot.py next to the binary's source tree.
std::string plot_script_path();

}  // namespace muonlab
