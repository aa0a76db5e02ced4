// Path-aware, typed reading of a YAML config tree. Every key read is recorded (with the value
// actually used, defaults included) into a "resolved" tree, and finish() rejects keys that were
// never read, suggesting the nearest valid key. Also: loading a file with `base:` inheritance and
// applying `--set a.b.c=value` overrides. It knows nothing about which keys exist; config.cpp does.
#pragma once
#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace muonlab {

// A user-facing configuration problem; the message names the file and full key path.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Levenshtein distance, used for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate nearest to `word`, or "" if none is reasonably close.
std::string nearest_word(const std::string& word, const std::vector<std::string>& candidates);

// Loads `path`, merging any chain of `base:` files underneath (paths relative to the including
// file, then to the working directory). Throws ConfigError on syntax errors (with line and
// column), missing files and base cycles.
YAML::Node load_yaml_with_bases(const std::string& path);
// The tree as "a.b.c" / "a.b[2]" -> scalar text, numbers in their shortest round-trip form
// (so "0.0030000000000000001" and "0.003" compare equal); an empty list reads "[]".
std::map<std::string, std::string> flatten_yaml(const YAML::Node& root);
// Splits "a.b.c=value" into the key path and the value parsed as YAML; throws ConfigError
// naming the assignment when either part is malformed.
std::pair<std::string, YAML::Node> parse_assignment(const std::string& assignment);
// Applies "a.b.c=value" (value parsed as YAML) to `root`; throws ConfigError if malformed.
void apply_override(YAML::Node& root, const std::string& assignment);

// A view of one mapping in the config tree at a dotted path ("" for the root).
class ConfigSection {
 public:
  ConfigSection(YAML::Node node, std::string path, std::string origin, YAML::Node resolved);

  template <typename T>
  T get(const std::string& key, const T& fallback);
  template <typename T>
  T require(const std::string& key);
  // A nested mapping (empty if absent).
  ConfigSection section(const std::string& key);
  // A nested mapping only if the YAML has it, not null (the key is valid here either way; null
  // removes one inherited from a base file); absent ones leave no trace in the resolved config.
  std::optional<ConfigSection> optional_section(const std::string& key);
  // A list of mappings, each a section at "key[i]"; `fallback` (a YAML sequence) stands in
  // when the key is absent, so defaults show in the resolved config too.
  std::vector<ConfigSection> sections(const std::string& key, const YAML::Node& fallback);
  // True if the YAML sets `key` here (to anything but null). Reading it stays the caller's job.
  bool has(const std::string& key) const;
  // True if the YAML sets `key` here to null explicitly.
  bool is_null(const std::string& key) const;
  // Accepts `key` without reading it (finish() will not reject it; the resolved config omits it).
  void allow(const std::string& key) { known_.insert(key); }
  // Throws ConfigError for keys present in the YAML but never read.
  void finish() const;
  // "model.d_model" for key "d_model" in section "model".
  std::string key_path(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;

 private:
  template <typename T>
  T convert(const std::string& key, const YAML::Node& value);
  YAML::Node node_;
  std::string path_;
  std::string origin_;
  YAML::Node resolved_;
  std::set<std::string> known_;
};

}  // namespace muonlab
