// Implementation of the typed config reader, base-file merging and dotted overrides.
#include "src/config/config_reader.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "src/config/number_text.h"

namespace muonlab {
namespace fs = std::filesystem;

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string nearest_word(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(3, word.size() / 2) + 1;
  for (const auto& candidate : candidates) {
    size_t d = edit_distance(word, candidate);
    bool prefix = candidate.rfind(word, 0) == 0 || word.rfind(candidate, 0) == 0;
    if (prefix) d = std::min(d, size_t{1});
    if (d < best_distance) best_distance = d, best = candidate;
  }
  return best;
}

namespace {

YAML::Node parse_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("config " + path.string() + ": cannot open the file; check the path");
  try {
    YAML::Node node = YAML::Load(in);
    if (node.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!node.IsMap())
      throw ConfigError("config " + path.string() + ": the top level must be a mapping of keys");
    return node;
  } catch (const YAML::ParserException& e) {
    throw ConfigError("config " + path.string() + ": YAML syntax error at line " +
                      std::to_string(e.mark.line + 1) + ", column " +
                      std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

// Deep merge: maps merge key by key, anything else in `top` replaces `bottom`.
YAML::Node merge(const YAML::Node& bottom, const YAML::Node& top) {
  if (!bottom.IsMap() || !top.IsMap()) return YAML::Clone(top);
  YAML::Node out = YAML::Clone(bottom);
  for (const auto& kv : top) {
    auto key = kv.first.as<std::string>();
    out[key] = out[key] ? merge(out[key], kv.second) : YAML::Clone(kv.second);
  }
  return out;
}

fs::path resolve_base(const fs::path& including, const std::string& base) {
  fs::path relative_to_file = including.parent_path() / base;
  if (fs::exists(relative_to_file)) return relative_to_file;
  if (fs::exists(base)) return base;
  throw ConfigError("config " + including.string() + ": base: file '" + base +
                    "' not found (looked next to the config and in the working directory)");
}

YAML::Node load_chain(const fs::path& path, std::vector<std::string>& chain) {
  std::string canonical = fs::weakly_canonical(path).string();
  if (std::find(chain.begin(), chain.end(), canonical) != chain.end())
    throw ConfigError("config " + path.string() + ": base: cycle (" + chain.front() + " ... -> " +
                      canonical + "); remove one of the base: links");
  chain.push_back(canonical);
  YAML::Node node = parse_file(path);
  if (!node["base"]) return node;
  if (!node["base"].IsScalar())
    throw ConfigError("config " + path.string() + ": base: must be a file path");
  auto base_path = resolve_base(path, node["base"].as<std::string>());
  YAML::Node merged = merge(load_chain(base_path, chain), node);
  merged.remove("base");
  return merged;
}

std::string kind_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "'" + n.Scalar() + "'";
  }
}

template <typename T>
const char* type_name();
template <>
const char* type_name<int64_t>() {
  return "an integer";
}
template <>
const char* type_name<int>() {
  return "an integer";
}
template <>
const char* type_name<double>() {
  return "a number";
}
template <>
const char* type_name<bool>() {
  return "true or false";
}
template <>
const char* type_name<std::string>() {
  return "a string";
}
template <>
const char* type_name<std::vector<double>>() {
  return "a list of numbers";
}

// The value as it goes into the resolved tree: doubles as their shortest round-trip text
// ("0.003", not "0.0030000000000000001"), everything else as yaml-cpp writes it.
template <typename T>
YAML::Node resolved_node(const T& value) {
  return YAML::Node(value);
}
template <>
YAML::Node resolved_node<double>(const double& value) {
  if (!std::isfinite(value)) return YAML::Node(value);  // yaml-cpp's own .inf / .nan
  return YAML::Node(shortest_text(value));
}
template <>
YAML::Node resolved_node<std::vector<double>>(const std::vector<double>& values) {
  YAML::Node list(YAML::NodeType::Sequence);
  for (double v : values) list.push_back(resolved_node(v));
  list.SetStyle(YAML::EmitterStyle::Flow);
  return list;
}

// Flattens a YAML tree into "a.b.c" / "a.b[2]" -> scalar text, numbers in their shortest
// round-trip form (so a config saved with "0.0030000000000000001" equals one saying "0.003").
void flatten_into(const YAML::Node& node, const std::string& prefix,
                  std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node)
      flatten_into(
          kv.second,
          prefix.empty() ? kv.first.as<std::string>() : prefix + "." + kv.first.as<std::string>(),
          out);
  } else if (node.IsSequence()) {
    if (node.size() == 0) out[prefix] = "[]";
    for (size_t i = 0; i < node.size(); ++i)
      flatten_into(node[i], prefix + "[" + std::to_string(i) + "]", out);
  } else {
    double number = 0;
    out[prefix] = node.IsScalar() && parse_number(node.Scalar(), number) ? shortest_text(number)
                                                                         : node.Scalar();
  }
}

}  // namespace

std::map<std::string, std::string> flatten_yaml(const YAML::Node& root) {
  std::map<std::string, std::string> out;
  flatten_into(root, "", out);
  return out;
}

YAML::Node load_yaml_with_bases(const std::string& path) {
  std::vector<std::string> chain;
  return load_chain(path, chain);
}

std::pair<std::string, YAML::Node> parse_assignment(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("--set " + assignment + ": expected key.path=value, e.g. train.steps=100");
  try {
    return {assignment.substr(0, eq), YAML::Load(assignment.substr(eq + 1))};
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set " + assignment + ": cannot parse the value: " + e.msg);
  }
}

void apply_override(YAML::Node& root, const std::string& assignment) {
  auto [path, value] = parse_assignment(assignment);
  std::vector<YAML::Node> trail{root};
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string key =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (key.empty()) throw ConfigError("--set " + assignment + ": empty key in '" + path + "'");
    YAML::Node parent = trail.back();
    if (dot == std::string::npos) {
      parent[key] = value;
      return;
    }
    if (!parent[key] || !parent[key].IsMap()) parent[key] = YAML::Node(YAML::NodeType::Map);
    trail.push_back(parent[key]);
    start = dot + 1;
  }
}

ConfigSection::ConfigSection(YAML::Node node, std::string path, std::string origin,
                             YAML::Node resolved)
    : node_(node), path_(std::move(path)), origin_(std::move(origin)), resolved_(resolved) {}

std::string ConfigSection::key_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void ConfigSection::fail(const std::string& key, const std::string& problem) const {
  throw ConfigError("config " + origin_ + ": " + key_path(key) + ": " + problem);
}

template <typename T>
T ConfigSection::convert(const std::string& key, const YAML::Node& value) {
  bool shape_ok =
      std::is_same<T, std::vector<double>>::value ? value.IsSequence() : value.IsScalar();
  try {
    if (shape_ok) return value.as<T>();
  } catch (const YAML::Exception&) {
  }
  fail(key, std::string("expected ") + type_name<T>() + ", got " + kind_name(value));
}

template <typename T>
T ConfigSection::get(const std::string& key, const T& fallback) {
  known_.insert(key);
  T value = fallback;
  if (node_.IsMap() && node_[key] && !node_[key].IsNull()) value = convert<T>(key, node_[key]);
  resolved_[key] = resolved_node(value);
  return value;
}

template <typename T>
T ConfigSection::require(const std::string& key) {
  known_.insert(key);
  if (!node_.IsMap() || !node_[key] || node_[key].IsNull()) fail(key, "missing; it is required");
  T value = convert<T>(key, node_[key]);
  resolved_[key] = resolved_node(value);
  return value;
}

ConfigSection ConfigSection::section(const std::string& key) {
  known_.insert(key);
  YAML::Node child = node_.IsMap() && node_[key] ? node_[key] : YAML::Node(YAML::NodeType::Map);
  if (child.IsNull()) child = YAML::Node(YAML::NodeType::Map);
  if (!child.IsMap()) fail(key, "expected a mapping of keys, got " + kind_name(child));
  resolved_[key] = YAML::Node(YAML::NodeType::Map);
  return ConfigSection(child, key_path(key), origin_, resolved_[key]);
}

bool ConfigSection::has(const std::string& key) const {
  return node_.IsMap() && node_[key] && !node_[key].IsNull();
}

bool ConfigSection::is_null(const std::string& key) const {
  return node_.IsMap() && node_[key] && node_[key].IsNull();
}

std::optional<ConfigSection> ConfigSection::optional_section(const std::string& key) {
  known_.insert(key);
  if (!node_.IsMap() || !node_[key] || node_[key].IsNull()) return std::nullopt;
  return section(key);
}

std::vector<ConfigSection> ConfigSection::sections(const std::string& key,
                                                   const YAML::Node& fallback) {
  known_.insert(key);
  YAML::Node list = node_.IsMap() && node_[key] ? node_[key] : fallback;
  if (!list.IsSequence()) fail(key, "expected a list of mappings, got " + kind_name(list));
  resolved_[key] = YAML::Node(YAML::NodeType::Sequence);
  std::vector<ConfigSection> out;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string item = key + "[" + std::to_string(i) + "]";
    if (!list[i].IsMap()) fail(item, "expected a mapping, got " + kind_name(list[i]));
    resolved_[key].push_back(YAML::Node(YAML::NodeType::Map));
    out.emplace_back(list[i], key_path(item), origin_, resolved_[key][i]);
  }
  return out;
}

void ConfigSection::finish() const {
  if (!node_.IsMap()) return;
  std::vector<std::string> valid(known_.begin(), known_.end());
  for (const auto& kv : node_) {
    auto key = kv.first.as<std::string>();
    if (known_.count(key)) continue;
    std::string hint = nearest_word(key, valid);
    std::string problem = "unknown key";
    if (!hint.empty())
      problem += "; did you mean '" + key_path(hint) + "'?";
    else
      problem += "; valid keys here: " + [&] {
        std::string all;
        for (const auto& v : valid) all += (all.empty() ? "" : ", ") + v;
        return all;
      }();
    fail(key, problem);
  }
}

template int64_t ConfigSection::get<int64_t>(const std::string&, const int64_t&);
template int ConfigSection::get<int>(const std::string&, const int&);
template double ConfigSection::get<double>(const std::string&, const double&);
template bool ConfigSection::get<bool>(const std::string&, const bool&);
template std::string ConfigSection::get<std::string>(const std::string&, const std::string&);
template std::vector<double> ConfigSection::get<std::vector<double>>(const std::string&,
                                                                     const std::vector<double>&);
template std::string ConfigSection::require<std::string>(const std::string&);
template int64_t ConfigSection::require<int64_t>(const std::string&);

}  // namespace muonlab
