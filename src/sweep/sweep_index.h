// The sweep directory's index, `sweep.jsonl`: one JSON object per point (point, stage, group,
// variant, overrides, status, run_dir, final_val, best_val, seconds, error, command), rewritten
// atomically whenever a point changes state, so a killed sweep leaves a readable index. It also
// holds the two other files of a sweep directory: `sweep.yaml` (what the sweep was started with,
// for change detection) and `selection.json` (stage 2's chosen points). It runs nothing.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace muonlab {

struct IndexEntry {
  std::string point;
  int stage = 1;
  std::string group;
  std::string variant;
  nlohmann::json overrides = nlohmann::json::object();  // key -> value (JSON of the YAML value)
  std::string status = "pending";  // pending | running | done | failed | interrupted
  std::string run_dir;
  double final_val = NAN, best_val = NAN;  // NaN = none (written as null)
  double seconds = 0;
  std::string error;    // the failed point's last error line
  std::string command;  // the muonlab train command line that runs it; each launch adds
                        // --resume (a checkpoint exists) or --overwrite, as console.log shows
};

nlohmann::json to_json(const IndexEntry& e);
IndexEntry entry_from_json(const nlohmann::json& j);

// Writes `entries` to DIR/sweep.jsonl through a temporary file and a rename.
void write_index(const std::string& sweep_dir, const std::vector<IndexEntry>& entries);
// Reads DIR/sweep.jsonl; empty if absent. Throws std::runtime_error on a malformed line.
std::vector<IndexEntry> read_index(const std::string& sweep_dir);
bool is_sweep_dir(const std::string& dir);

// Writes `text` to `path` through a temporary file and a rename.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace muonlab
