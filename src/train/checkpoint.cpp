// Crash-safe checkpoint writing (temp dir, fsync, rename, manifest last), verification,
// loading and pruning.
#include "src/train/checkpoint.h"

#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace muonlab {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string hex64(uint64_t value) {
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(value));
  return buf;
}

void fsync_directory(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path.string() + ": " + strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw std::runtime_error("cannot sync " + path.string() + ": " + strerror(errno));
}

// Writes `bytes` to a new file and fsyncs it; throws with the OS's reason (e.g. "No space left
// on device") on any failure.
void write_file_synced(const fs::path& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path.string() + ": " + strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string reason = n < 0 ? strerror(errno) : "short write";
      ::close(fd);
      throw std::runtime_error("cannot write " + path.string() + ": " + reason);
    }
    done += static_cast<size_t>(n);
  }
  bool synced = ::fsync(fd) == 0;
  std::string reason = synced ? "" : strerror(errno);
  if (::close(fd) != 0 && synced) reason = strerror(errno), synced = false;
  if (!synced) throw std::runtime_error("cannot write " + path.string() + ": " + reason);
}

// LibTorch's file writer aborts the process if the disk fills (it throws from a destructor), so
// archives are serialised in memory and written by write_file_synced.
void write_archive(torch::serialize::OutputArchive& archive, const fs::path& path) {
  std::ostringstream buffer;
  archive.save_to(buffer);
  write_file_synced(path, buffer.str());
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("checkpoint " + path.parent_path().string() + ": missing " +
                             path.filename().string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string step_dir_name(int64_t step) {
  char buf[32];
  snprintf(buf, sizeof buf, "step_%07lld", static_cast<long long>(step));
  return buf;
}

json state_to_json(const TrainState& s) {
  return {{"step", s.step},
          {"tokens_seen", s.tokens_seen},
          {"cursor_step", s.cursor.step},
          {"cursor_micro", s.cursor.micro},
          {"best_val_loss", std::isfinite(s.best_val_loss) ? json(s.best_val_loss) : json()},
          {"task_state", s.task_state}};
}

TrainState state_from_json(const json& j) {
  TrainState s;
  s.step = j.at("step").get<int64_t>();
  s.tokens_seen = j.at("tokens_seen").get<int64_t>();
  s.cursor.step = j.at("cursor_step").get<int64_t>();
  s.cursor.micro = j.at("cursor_micro").get<int64_t>();
  if (!j.at("best_val_loss").is_null()) s.best_val_loss = j.at("best_val_loss").get<double>();
  if (j.contains("task_state")) s.task_state = j.at("task_state");  // absent in older ones
  return s;
}

// The step in a "step_NNNNNNN" directory name, or -1 if the name is not of that form.
int64_t step_of(const fs::path& dir) {
  const std::string name = dir.filename().string();
  if (name.rfind("step_", 0) != 0 || name.size() == 5) return -1;
  const std::string digits = name.substr(5);
  if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 18) return -1;
  return std::stoll(digits);
}

// The message of an exception on one line (LibTorch's errors carry a backtrace).
std::string one_line(const std::exception& e) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  std::string text = torch_error ? torch_error->what_without_backtrace() : e.what();
  return text.substr(0, text.find('\n'));
}

void maybe_inject_kill(int64_t step) {
  const char* at = std::getenv("MUONLAB_FAULT_KILL_IN_CHECKPOINT");
  if (at && std::to_string(step) == at) std::raise(SIGKILL);
}

void write_files(const fs::path& dir, const TrainState& state, const NamedTensors& params,
                 const OptimizerSet& optimizer, const std::string& config_yaml) {
  torch::serialize::OutputArchive weights;
  for (const auto& [name, tensor] : params) weights.write(name, tensor.detach());
  write_archive(weights, dir / "model.pt");
  maybe_inject_kill(state.step);

  torch::serialize::OutputArchive optim;
  optimizer.save(optim);
  write_archive(optim, dir / "optim.pt");

  torch::serialize::OutputArchive rng;
  rng.write("torch_cpu", at::detail::getDefaultCPUGenerator().get_state());
  write_archive(rng, dir / "rng.pt");

  write_file_synced(dir / "state.json", state_to_json(state).dump(2) + "\n");
  write_file_synced(dir / "config.yaml", config_yaml);
}

// The files every checkpoint holds; the manifest must list each with its size and checksum.
const char* const kCheckpointFiles[] = {"model.pt", "optim.pt", "rng.pt", "state.json",
                                        "config.yaml"};

}  // namespace

std::string file_xxh64(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  XXH64_state_t* state = XXH64_createState();
  XXH64_reset(state, 0);
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), buffer.size());
    XXH64_update(state, buffer.data(), static_cast<size_t>(in.gcount()));
  }
  uint64_t digest = XXH64_digest(state);
  XXH64_freeState(state);
  return hex64(digest);
}

std::string text_xxh64(const std::string& text) {
  return hex64(XXH64(text.data(), text.size(), 0));
}

namespace {

// Checks format version, the list of files and every file's size and xxh64. JSON type errors
// surface as json::exception.
void verify_manifest(const fs::path& dir, const json& manifest, const std::string& where) {
  int version = manifest.at("format_version").get<int>();
  if (version != kCheckpointFormat)
    throw std::runtime_error(where + "format version " + std::to_string(version) +
                             ", this build reads " + std::to_string(kCheckpointFormat));
  const json& files = manifest.at("files");
  for (const char* name : kCheckpointFiles)
    if (!files.contains(name)) throw std::runtime_error(where + "manifest does not list " + name);
  for (const auto& [name, info] : files.items()) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      throw std::runtime_error(where + "manifest lists an invalid file name '" + name + "'");
    fs::path file = dir / name;
    if (!fs::is_regular_file(file)) throw std::runtime_error(where + "missing " + name);
    if (fs::file_size(file) != info.at("bytes").get<uintmax_t>())
      throw std::runtime_error(where + name + " has the wrong size (truncated?)");
    if (file_xxh64(file) != info.at("xxh64").get<std::string>())
      throw std::runtime_error(where + name + " fails its checksum (corrupted)");
  }
}

}  // namespace

CheckpointStore::CheckpointStore(fs::path run_dir) : root_(std::move(run_dir) / "checkpoints") {}

fs::path CheckpointStore::save(const TrainState& state, const NamedTensors& params,
                               const OptimizerSet& optimizer, const std::string& config_yaml,
                               const RetentionPolicy& retention) const {
  fs::create_directories(root_);
  fs::path final_dir = root_ / step_dir_name(state.step);
  fs::path tmp_dir = root_ / (".tmp_" + step_dir_name(state.step));
  fs::remove_all(tmp_dir);
  fs::create_directories(tmp_dir);
  try {
    write_files(tmp_dir, state, params, optimizer, config_yaml);
    json manifest = {{"format_version", kCheckpointFormat},
                     {"step", state.step},
                     {"tokens_seen", state.tokens_seen},
                     {"config_hash", text_xxh64(config_yaml)},
                     {"files", json::object()}};
    for (const auto& entry : fs::directory_iterator(tmp_dir)) {
      manifest["files"][entry.path().filename().string()] = {{"bytes", fs::file_size(entry.path())},
                                                             {"xxh64", file_xxh64(entry.path())}};
    }
    write_file_synced(tmp_dir / "manifest.json", manifest.dump(2) + "\n");
    fsync_directory(tmp_dir);
    // Re-saving a step: keep the old copy until the new one is in place.
    fs::path old_dir = root_ / (".old_" + step_dir_name(state.step));
    if (fs::exists(final_dir)) fs::rename(final_dir, old_dir);
    fs::rename(tmp_dir, final_dir);
    fsync_directory(root_);
    fs::remove_all(old_dir);
    fsync_directory(root_);
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove_all(tmp_dir, ignored);
    throw std::runtime_error("checkpoint " + final_dir.string() + ": write failed (" + one_line(e) +
                             "); earlier checkpoints are untouched; check the free space in " +
                             root_.string());
  }
  prune(retention, state.step);
  return final_dir;
}

void CheckpointStore::prune(const RetentionPolicy& retention, int64_t current_step) const {
  // Checkpoints after the current step belong to an abandoned trajectory (this run resumed from
  // an earlier one): a later --resume must not pick them up.
  size_t kept_recent = 0;
  for (const auto& dir : list()) {  // newest first
    int64_t step = step_of(dir);
    bool current = step == current_step;
    bool stale = step > current_step;
    bool recent =
        !stale && static_cast<int64_t>(kept_recent) < std::max<int64_t>(retention.keep_last, 1);
    if (recent) ++kept_recent;
    bool milestone = !stale && retention.keep_every > 0 && step % retention.keep_every == 0;
    if (!current && (stale || (!recent && !milestone))) fs::remove_all(dir);
  }
  // Leftovers of interrupted writes.
  for (const auto& entry : fs::directory_iterator(root_)) {
    auto name = entry.path().filename().string();
    if (name.rfind(".tmp_", 0) == 0 || name.rfind(".old_", 0) == 0) fs::remove_all(entry.path());
  }
}

std::vector<fs::path> CheckpointStore::list() const {
  std::vector<fs::path> dirs;
  if (!fs::exists(root_)) return dirs;
  for (const auto& entry : fs::directory_iterator(root_)) {
    auto name = entry.path().filename().string();
    if (entry.is_directory() && step_of(entry.path()) >= 0) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end(),
            [](const fs::path& a, const fs::path& b) { return step_of(a) > step_of(b); });
  return dirs;
}

std::optional<fs::path> CheckpointStore::latest_valid(
    const std::function<void(const std::string&)>& skipped) const {
  for (const auto& dir : list()) {
    try {
      verify(dir);
      return dir;
    } catch (const std::exception& e) {
      if (skipped) skipped(e.what());
    }
  }
  return std::nullopt;
}

void CheckpointStore::verify(const fs::path& dir) {
  std::string where = "checkpoint " + dir.string() + ": ";
  if (!fs::exists(dir / "manifest.json"))
    throw std::runtime_error(where + "no manifest.json (incomplete write); skipping it");
  json manifest = json::parse(read_text(dir / "manifest.json"), nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object())
    throw std::runtime_error(where + "manifest.json is unreadable");
  try {
    verify_manifest(dir, manifest, where);
  } catch (const json::exception& e) {
    throw std::runtime_error(where + "manifest.json is malformed (" + e.what() + ")");
  }
}

TrainState CheckpointStore::load(const fs::path& dir, const NamedTensors& params,
                                 OptimizerSet& optimizer) {
  verify(dir);
  torch::NoGradGuard no_grad;
  torch::serialize::InputArchive weights;
  weights.load_from((dir / "model.pt").string());
  for (const auto& [name, tensor] : params) {
    torch::Tensor saved;
    if (!weights.try_read(name, saved))
      throw std::runtime_error("checkpoint " + dir.string() + ": no weights for " + name);
    if (!saved.sizes().equals(tensor.sizes()))
      throw std::runtime_error("checkpoint " + dir.string() + ": " + name +
                               " has another shape; the model config differs");
    tensor.copy_(saved);
  }
  torch::serialize::InputArchive optim;
  optim.load_from((dir / "optim.pt").string());
  optimizer.load(optim);

  torch::serialize::InputArchive rng;
  rng.load_from((dir / "rng.pt").string());
  torch::Tensor rng_state;
  rng.read("torch_cpu", rng_state);
  auto generator = at::detail::getDefaultCPUGenerator();
  generator.set_state(rng_state);

  return state_from_json(json::parse(read_text(dir / "state.json")));
}

std::string CheckpointStore::saved_config(const fs::path& dir) {
  return read_text(dir / "config.yaml");
}

}  // namespace muonlab
