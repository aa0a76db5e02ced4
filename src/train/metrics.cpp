// metrics.jsonl writing, truncation on resume, and reading.
#include "src/train/metrics.h"

#include <filesystem>
#include <stdexcept>

namespace muonlab {

namespace {

void keep_records_through(const std::string& path, int64_t last_step) {
  if (!std::filesystem::exists(path)) return;
  std::ifstream in(path);
  std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::trunc);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded()) continue;  // a line cut by a crash
    if (record.value("step", int64_t{0}) <= last_step) out << line << '\n';
  }
  out.close();
  if (!out) throw std::runtime_error("metrics " + path + ": cannot rewrite the file");
  std::filesystem::rename(tmp, path);
}

}  // namespace

MetricsWriter::MetricsWriter(const std::string& path, int64_t keep_through_step) {
  keep_records_through(path, keep_through_step);
  out_.open(path, std::ios::app);
  if (!out_) throw std::runtime_error("metrics " + path + ": cannot open for writing");
}

void MetricsWriter::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("metrics " + path + ": cannot open; is this a run directory?");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(std::move(line));
  std::vector<nlohmann::json> records;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto record = nlohmann::json::parse(lines[i], nullptr, false);
    bool cut_by_crash = i + 1 == lines.size();  // the last line of a killed run may be partial
    if (record.is_discarded() && cut_by_crash) break;
    if (record.is_discarded())
      throw std::runtime_error("metrics " + path + ": line " + std::to_string(i + 1) +
                               " is not valid JSON");
    records.push_back(std::move(record));
  }
  return records;
}

}  // namespace muonlab
