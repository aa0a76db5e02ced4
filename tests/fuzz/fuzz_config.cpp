// libFuzzer target: arbitrary bytes as a YAML config and as a --set override. Anything but a
// clean ConfigError / YAML exception (a crash, a sanitizer report, another exception) is a bug.
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "src/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    YAML::Node root = YAML::Load(text);
    muonlab::parse_run_config(root, "fuzz.yaml");
  } catch (const muonlab::ConfigError&) {
  } catch (const YAML::Exception&) {
  }
  try {
    YAML::Node root(YAML::NodeType::Map);
    muonlab::apply_override(root, text);
  } catch (const muonlab::ConfigError&) {
  }
  return 0;
}
