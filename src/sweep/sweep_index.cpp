// Reading and atomic rewriting of sweep.jsonl.
#include "src/sweep/sweep_index.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace muonlab {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double number_or_nan(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : NAN;
}

}  // namespace

json to_json(const IndexEntry& e) {
  return {{"point", e.point},
          {"stage", e.stage},
          {"group", e.group},
          {"variant", e.variant},
          {"overrides", e.overrides},
          {"status", e.status},
          {"run_dir", e.run_dir},
          {"final_val", number_or_null(e.final_val)},
          {"best_val", number_or_null(e.best_val)},
          {"seconds", e.seconds},
          {"error", e.error},
          {"command", e.command}};
}

IndexEntry entry_from_json(const json& j) {
  IndexEntry e;
  e.point = j.value("point", "");
  e.stage = j.value("stage", 1);
  e.group = j.value("group", "");
  e.variant = j.value("variant", "");
  e.overrides = j.value("overrides", json::object());
  e.status = j.value("status", "pending");
  e.run_dir = j.value("run_dir", "");
  e.final_val = number_or_nan(j, "final_val");
  e.best_val = number_or_nan(j, "best_val");
  e.seconds = j.value("seconds", 0.0);
  e.error = j.value("error", "");
  e.command = j.value("command", "");
  return e;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp + " (disk full?)");
  }
  fs::rename(tmp, path);
}

void write_index(const std::string& sweep_dir, const std::vector<IndexEntry>& entries) {
  std::string text;
  for (const auto& e : entries) text += to_json(e).dump() + "\n";
  write_file_atomically((fs::path(sweep_dir) / "sweep.jsonl").string(), text);
}

std::vector<IndexEntry> read_index(const std::string& sweep_dir) {
  std::vector<IndexEntry> entries;
  const fs::path path = fs::path(sweep_dir) / "sweep.jsonl";
  std::ifstream in(path);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    try {
      entries.push_back(entry_from_json(json::parse(line)));
    } catch (const json::exception& e) {
      throw std::runtime_error(path.string() + ": line " + std::to_string(number) +
                               " is not a sweep index record (" + e.what() + ")");
    }
  }
  return entries;
}

bool is_sweep_dir(const std::string& dir) {
  return fs::is_regular_file(fs::path(dir) / "sweep.jsonl");
}

}  // namespace muonlab
