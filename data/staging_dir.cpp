// The staging directory: mkdtemp inside out_dir, renames out of it, removal on destruction.
#include "data/staging_dir.h"

#include <stdlib.h>

#include <stdexcept>
#include <system_error>

namespace muonlab {
namespace fs = std::filesystem;

StagingDir::StagingDir(const fs::path& out_dir, std::string command)
    : out_dir_(out_dir), command_(std::move(command)) {
  std::string pattern = (out_dir / ".staging-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error(command_ + ": cannot create a staging directory in " +
                             out_dir.string() + "; check it is writable");
  path_ = pattern;
}

StagingDir::~StagingDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

void StagingDir::commit(const std::vector<std::string>& names) const {
  for (const auto& name : names) {
    std::error_code ec;
    fs::rename(path_ / name, out_dir_ / name, ec);
    if (ec)
      throw std::runtime_error(command_ + ": cannot move " + name + " into " + out_dir_.string() +
                               ": " + ec.message());
  }
}

}  // namespace muonlab
