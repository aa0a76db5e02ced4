// metrics.jsonl: one JSON object per line, each with "kind" and "step" (see design.md).
// Lines are flushed as written so a crash loses at most the line being written. On resume the
// file is cut back to the records at or before the checkpoint step, so no step appears twice.
#pragma once
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace muonlab {

class MetricsWriter {
 public:
  // Opens `path` for appending (creating it) after dropping every record whose step is greater
  // than keep_through_step (rewriting the file atomically): the checkpoint step on resume, -1 for
  // a fresh run (which thus starts an empty file).
  MetricsWriter(const std::string& path, int64_t keep_through_step);
  void write(const nlohmann::json& record);

 private:
  std::ofstream out_;
};

// Reads every record of a metrics.jsonl file, ignoring a last line cut short by a crash; throws
// std::runtime_error naming any other bad line.
std::vector<nlohmann::json> read_metrics(const std::string& path);

}  // namespace muonlab
