// Helpers shared by the tests: fresh temporary directories, running the muonlab CLI and
// capturing its output, reading files. Test-only; nothing here ships in the binary.
#pragma once
#include <ATen/Parallel.h>

#include <filesystem>
#include <string>

namespace muonlab::test {

// A new empty directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "muonlab");
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string str(const std::string& child = "") const;

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `/path/to/muonlab <args>` through the shell and captures its output.
CommandResult run_muonlab(const std::string& args);
// Runs an arbitrary shell command and captures its output.
CommandResult run_shell(const std::string& command);

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& text);
// Path of a file in the source tree (e.g. "configs/tiny.yaml").
std::string source_path(const std::string& relative);

// f() with LibTorch's intra-op thread count set to `threads`; the previous count comes back after.
template <typename F>
auto with_threads(int threads, F f) {
  struct Restore {
    int previous = at::get_num_threads();
    ~Restore() { at::set_num_threads(previous); }
  } restore;
  at::set_num_threads(threads);
  return f();
}

}  // namespace muonlab::test
