// A staging directory for commands that write several output files at once (`tokenize`,
// `facts`): a fresh "<out_dir>/.staging-XXXXXX" that files are written into, renamed into out_dir
// in a given order by commit(), and removed (with whatever is left in it) on destruction, so a
// failure part-way never leaves half-written files in out_dir. It does not decide what to write.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace muonlab {

class StagingDir {
 public:
  // `command` prefixes error messages ("tokenize", "facts"). Throws std::runtime_error if the
  // directory cannot be created.
  StagingDir(const std::filesystem::path& out_dir, std::string command);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  std::filesystem::path file(const std::string& name) const { return path_ / name; }
  // Renames each file into out_dir, in order (replacing what is there).
  void commit(const std::vector<std::string>& names) const;

 private:
  std::filesystem::path out_dir_, path_;
  std::string command_;
};

}  // namespace muonlab
