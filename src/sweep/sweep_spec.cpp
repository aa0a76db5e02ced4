// Parsing, validation and expansion of sweep files.
#include "src/sweep/sweep_spec.h"

#include <filesystem>
#include <set>

#include "src/config/config_reader.h"
#include "src/config/number_text.h"

namespace muonlab {
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kTopKeys = {"base",     "out_dir",  "set",    "grid",  "zip",
                                           "variants", "group_by", "select", "stage2"};

class SpecReader {
 public:
  explicit SpecReader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw ConfigError("sweep " + file_ + ": " + key + ": " + problem);
  }

  void check_keys(const YAML::Node& map, const std::string& where,
                  const std::vector<std::string>& valid) const {
    for (const auto& kv : map) {
      auto key = kv.first.as<std::string>();
      bool known = false;
      for (const auto& v : valid) known = known || v == key;
      if (known) continue;
      std::string hint = nearest_word(key, valid);
      std::string path = where.empty() ? key : where + "." + key;
      fail(path, hint.empty() ? "unknown key" : "unknown key; did you mean '" + hint + "'?");
    }
  }

  Overrides read_set(const YAML::Node& node, const std::string& where) const {
    Overrides out;
    if (!node || node.IsNull()) return out;
    if (!node.IsMap()) fail(where, "expected a mapping of config keys to values");
    for (const auto& kv : node) out.emplace_back(kv.first.as<std::string>(), kv.second);
    return out;
  }

  AxisBlock read_zip_block(const YAML::Node& node, const std::string& where) const {
    if (!node.IsMap() || node.size() == 0)
      fail(where, "expected a mapping of config keys to equally long lists of values");
    AxisBlock block;
    for (const auto& kv : node) {
      auto key = kv.first.as<std::string>();
      if (!kv.second.IsSequence() || kv.second.size() == 0)
        fail(where + "." + key, "expected a non-empty list of values");
      if (!block.keys.empty() && kv.second.size() != block.rows.size())
        fail(where + "." + key, "has " + std::to_string(kv.second.size()) + " values but " +
                                    block.keys.front() + " has " +
                                    std::to_string(block.rows.size()) +
                                    "; zipped keys need lists of the same length");
      if (block.keys.empty()) block.rows.resize(kv.second.size());
      block.keys.push_back(key);
      for (size_t i = 0; i < kv.second.size(); ++i) block.rows[i].push_back(kv.second[i]);
    }
    return block;
  }

  // `grid` (one block per key) and `zip` (one block per mapping) of a mapping.
  // `grid` (one block per key) and `zip` (one block per mapping) of a mapping, in file order.
  Axes read_axes(const YAML::Node& owner, const std::string& prefix) const {
    Axes axes;
    const std::string where = prefix.empty() ? "" : prefix + ".";
    for (const auto& entry : owner) {
      const std::string name = entry.first.as<std::string>();
      const YAML::Node& node = entry.second;
      if ((name != "grid" && name != "zip") || node.IsNull()) continue;
      if (name == "grid") {
        if (!node.IsMap()) fail(where + "grid", "expected a mapping of config keys to lists");
        for (const auto& kv : node) {
          YAML::Node one(YAML::NodeType::Map);
          one[kv.first] = kv.second;
          axes.push_back(read_zip_block(one, where + "grid"));
        }
      } else if (node.IsMap()) {
        axes.push_back(read_zip_block(node, where + "zip"));
      } else if (node.IsSequence()) {
        for (size_t i = 0; i < node.size(); ++i)
          axes.push_back(read_zip_block(node[i], where + "zip[" + std::to_string(i) + "]"));
      } else {
        fail(where + "zip", "expected a mapping (or a list of mappings) of keys to lists");
      }
    }
    return axes;
  }

 private:
  std::string file_;
};

std::string resolve_base(const std::string& sweep_file, const std::string& base) {
  fs::path next_to_file = fs::path(sweep_file).parent_path() / base;
  if (fs::exists(next_to_file)) return next_to_file.lexically_normal().string();
  return base;
}

bool safe_name(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      return false;
  return true;
}

// Every combination of the blocks' rows, as overrides (last block fastest).
std::vector<Overrides> expand(const Axes& axes) {
  std::vector<Overrides> combos{{}};
  for (const auto& block : axes) {
    std::vector<Overrides> next;
    for (const auto& combo : combos)
      for (const auto& row : block.rows) {
        Overrides extended = combo;
        for (size_t k = 0; k < block.keys.size(); ++k) extended.emplace_back(block.keys[k], row[k]);
        next.push_back(std::move(extended));
      }
    combos = std::move(next);
  }
  return combos;
}

// Sets `key` (replacing its entry, never assigning through it: a YAML::Node copy shares its
// value, so assigning would change every point that shares the node).
void set_override(Overrides& overrides, const std::string& key, const YAML::Node& value) {
  for (auto it = overrides.begin(); it != overrides.end(); ++it)
    if (it->first == key) {
      it = overrides.erase(it);
      overrides.insert(it, std::make_pair(key, value));
      return;
    }
  overrides.emplace_back(key, value);
}

uint32_t fnv1a(const std::string& text) {
  uint32_t hash = 2166136261u;
  for (unsigned char c : text) hash = (hash ^ c) * 16777619u;
  return hash;
}

void check_axis_keys(const SpecReader& reader, const Axes& a, const Axes& b,
                     const std::string& where) {
  std::set<std::string> seen;
  for (const Axes* axes : {&a, &b})
    for (const auto& block : *axes)
      for (const auto& key : block.keys)
        if (!seen.insert(key).second)
          reader.fail(where, "key " + key + " is varied by two axes; vary it in one place");
}

}  // namespace

std::string SweepSpec::value_text(const YAML::Node& value) {
  if (!value.IsScalar()) {
    YAML::Emitter e;
    e << YAML::Flow << value;
    char hash[16];
    snprintf(hash, sizeof hash, "#%08x", fnv1a(e.c_str()));
    return hash;
  }
  double number = 0;
  if (parse_number(value.Scalar(), number)) return shortest_text(number);
  std::string text = value.Scalar();
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.' &&
        c != '+')
      c = '_';
  return text.empty() ? "_" : text;
}

std::vector<std::string> SweepSpec::named_keys() const {
  std::vector<std::string> order;
  std::set<std::string> seen;
  auto collect = [&](const Axes& axes) {
    for (const auto& block : axes)
      for (const auto& key : block.keys)
        if (seen.insert(key).second) order.push_back(key);
  };
  for (const auto& variant : variants) collect(variant.axes);
  collect(stage2);
  return order;
}

std::string SweepSpec::point_name(const std::string& variant, const Overrides& overrides) const {
  const auto varied = named_keys();
  std::map<std::string, int> last_part_count;
  auto last_part = [](const std::string& key) { return key.substr(key.rfind('.') + 1); };
  for (const auto& key : varied) ++last_part_count[last_part(key)];
  std::string name = variants.size() > 1 ? "variant=" + variant : "";
  for (const auto& key : varied)
    for (const auto& [k, v] : overrides)
      if (k == key) {
        std::string label = last_part_count[last_part(key)] > 1 ? key : last_part(key);
        name += (name.empty() ? "" : ",") + label + "=" + value_text(v);
      }
  return name.empty() ? "point" : name;
}

std::vector<SweepPoint> SweepSpec::stage1_points() const {
  std::vector<SweepPoint> points;
  for (const auto& variant : variants) {
    for (const auto& combo : expand(variant.axes)) {
      SweepPoint p;
      p.variant = variant.name;
      p.overrides = variant.set;
      for (const auto& [key, value] : combo) set_override(p.overrides, key, value);
      p.name = point_name(variant.name, p.overrides);
      points.push_back(std::move(p));
    }
  }
  return points;
}

std::vector<SweepPoint> SweepSpec::stage2_points(const SweepPoint& best) const {
  std::vector<SweepPoint> points;
  for (const auto& combo : expand(stage2)) {
    SweepPoint p = best;
    p.stage = 2;
    for (const auto& [key, value] : combo) set_override(p.overrides, key, value);
    p.name = point_name(p.variant, p.overrides);
    if (p.name == best.name) continue;  // the best point itself: already run
    points.push_back(std::move(p));
  }
  return points;
}

SweepSpec load_sweep_spec(const std::string& path, const std::vector<std::string>& cli_set,
                          const std::string& out_dir) {
  SpecReader reader(path);
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError("sweep " + path + ": cannot open the file; check the path");
  } catch (const YAML::ParserException& e) {
    throw ConfigError("sweep " + path + ": YAML syntax error at line " +
                      std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) throw ConfigError("sweep " + path + ": the top level must be a mapping");
  reader.check_keys(root, "", kTopKeys);

  SweepSpec spec;
  spec.file = path;
  spec.tree = root;
  spec.cli_set = cli_set;
  if (!root["base"] || !root["base"].IsScalar())
    reader.fail("base", "missing; name the config every point starts from");
  spec.base = resolve_base(path, root["base"].as<std::string>());
  if (!fs::exists(spec.base))
    reader.fail("base", "file '" + root["base"].as<std::string>() +
                            "' not found (looked next to the sweep file and in the working "
                            "directory)");
  spec.out_dir = !out_dir.empty()  ? out_dir
                 : root["out_dir"] ? root["out_dir"].as<std::string>()
                                   : "runs/" + fs::path(path).stem().string();
  spec.set = reader.read_set(root["set"], "set");
  for (const auto& assignment : cli_set) {
    auto [key, value] = parse_assignment(assignment);
    set_override(spec.set, key, value);
  }
  if (root["group_by"]) spec.group_by = root["group_by"].as<std::string>();
  if (root["select"]) spec.select = root["select"].as<std::string>();
  if (spec.select != "final_val" && spec.select != "best_val")
    reader.fail("select", "unknown '" + spec.select + "'; use final_val or best_val");

  const Axes top = reader.read_axes(root, "");
  if (YAML::Node variants = root["variants"]; variants && !variants.IsNull()) {
    if (!variants.IsMap() || variants.size() == 0)
      reader.fail("variants", "expected a mapping of variant names to {set, grid, zip}");
    for (const auto& kv : variants) {
      SweepVariant v;
      v.name = kv.first.as<std::string>();
      const std::string where = "variants." + v.name;
      if (!safe_name(v.name))
        reader.fail(where, "a variant name may use only letters, digits, '_', '-' and '.'");
      if (!kv.second.IsMap()) reader.fail(where, "expected a mapping with set, grid or zip");
      reader.check_keys(kv.second, where, {"set", "grid", "zip"});
      v.set = reader.read_set(kv.second["set"], where + ".set");
      v.axes = reader.read_axes(kv.second, where);
      check_axis_keys(reader, v.axes, top, where);
      v.axes.insert(v.axes.end(), top.begin(), top.end());
      spec.variants.push_back(std::move(v));
    }
  } else {
    check_axis_keys(reader, top, {}, "grid");
    spec.variants.push_back({"", {}, top});
  }
  if (spec.group_by == "variant" && spec.variants.size() < 2 && spec.variants[0].name.empty())
    reader.fail("group_by", "'variant' needs a variants: section");
  if (YAML::Node stage2 = root["stage2"]; stage2 && !stage2.IsNull()) {
    if (!stage2.IsMap()) reader.fail("stage2", "expected a mapping with grid or zip");
    reader.check_keys(stage2, "stage2", {"grid", "zip"});
    spec.stage2 = reader.read_axes(stage2, "stage2");
    if (spec.stage2.empty()) reader.fail("stage2", "give a grid or zip of the extra points");
  }
  return spec;
}

std::string override_argument(const std::string& key, const YAML::Node& value) {
  YAML::Emitter e;
  e << YAML::Flow << value;
  return key + "=" + e.c_str();
}

}  // namespace muonlab
