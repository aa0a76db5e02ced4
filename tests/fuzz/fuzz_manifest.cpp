// libFuzzer target: arbitrary bytes as a checkpoint's manifest.json next to real files. verify()
// must accept or throw std::runtime_error; nothing else.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "src/train/checkpoint.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("muonlab-fuzz-ckpt-" + std::to_string(getpid()));
    fs::create_directories(d);
    for (const char* name : {"model.pt", "optim.pt", "rng.pt", "state.json", "config.yaml"})
      std::ofstream(d / name) << "content";
    return d;
  }();
  {
    std::ofstream out(dir / "manifest.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    muonlab::CheckpointStore::verify(dir);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
