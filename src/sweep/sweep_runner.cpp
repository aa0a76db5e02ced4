// The sweep scheduler: point preparation, change detection, child processes, progress, stage 2.
#include "src/sweep/sweep_runner.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "src/config/config.h"
#include "src/config/number_text.h"
#include "src/report/run_summary.h"
#include "src/shell_quote.h"
#include "src/sweep/sweep_index.h"
#include "src/train/checkpoint.h"

namespace muonlab {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

std::atomic<int> g_sweep_signal{0};
constexpr const char* kAttemptMarker = "== muonlab sweep runs:";
extern "C" void on_sweep_signal(int signal) { g_sweep_signal = signal; }

// A point made ready to run: its index entry and the `muonlab train` arguments.
struct PreparedPoint {
  SweepPoint point;
  IndexEntry entry;
  std::vector<std::string> train_args;  // after "train"
  int64_t steps = 0;
};

std::string self_executable() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    throw std::runtime_error("sweep: cannot find the muonlab executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

json yaml_to_json(const YAML::Node& node) {
  if (node.IsSequence()) {
    json list = json::array();
    for (const auto& item : node) list.push_back(yaml_to_json(item));
    return list;
  }
  if (node.IsMap()) {
    json map = json::object();
    for (const auto& kv : node) map[kv.first.as<std::string>()] = yaml_to_json(kv.second);
    return map;
  }
  if (!node.IsScalar()) return nullptr;
  double number = 0;
  if (parse_number(node.Scalar(), number)) return number;
  if (node.Scalar() == "true" || node.Scalar() == "false") return node.Scalar() == "true";
  return node.Scalar();
}

class SweepRunner {
 public:
  SweepRunner(const SweepSpec& spec, const SweepOptions& options, std::ostream& out)
      : spec_(spec), options_(options), out_(out), dir_(spec.out_dir) {}

  int run();

 private:
  PreparedPoint prepare(const SweepPoint& point) const;
  void check_unchanged() const;
  void describe(const char* heading) const;
  void refresh_from_run_dir(PreparedPoint& p) const;
  bool run_points();
  void add_stage2_if_ready(const std::string& group, std::deque<size_t>& queue);
  void add_point(PreparedPoint p);
  void write_index_now() const;
  double seconds_per_step(const std::string& group, double fallback) const;
  std::string eta_text(int64_t steps_done, int running) const;
  void status_line(bool force);
  void event(const std::string& line);
  pid_t launch(const PreparedPoint& p) const;

  const SweepSpec& spec_;
  SweepOptions options_;
  std::ostream& out_;
  fs::path dir_;
  int threads_per_job_ = 1;
  // Stage 1, then each group's stage-2 points as soon as its stage 1 is finished (a deque, so
  // references stay valid as points are added).
  std::deque<PreparedPoint> points_;
  std::set<std::string> names_;
  std::vector<std::string> groups_;      // in the order of their first stage-1 point
  std::set<std::string> stage2_chosen_;  // groups whose stage 2 has been chosen
  json selection_ = json::object();      // selection.json
  int stage2_errors_ = 0;                // stage-2 points that could not be prepared
  bool tty_ = isatty(STDOUT_FILENO) != 0;
  bool status_shown_ = false;
  Clock::time_point last_status_ = Clock::now() - std::chrono::hours(1);
  Clock::time_point start_ = Clock::now();
  int64_t steps_done_at_start_ = -1;       // steps finished before this invocation
  std::vector<IndexEntry> earlier_index_;  // sweep.jsonl as this invocation found it
};

PreparedPoint SweepRunner::prepare(const SweepPoint& point) const {
  PreparedPoint p;
  p.point = point;
  const std::string run_dir = (dir_ / point.name).string();
  std::vector<std::string> sets;
  for (const auto& [key, value] : spec_.set) sets.push_back(override_argument(key, value));
  for (const auto& [key, value] : point.overrides) sets.push_back(override_argument(key, value));
  sets.push_back(override_argument("train.out_dir", YAML::Node(run_dir)));
  sets.push_back("threads=" + std::to_string(threads_per_job_));
  RunConfig cfg;
  try {
    cfg = load_run_config(spec_.base, sets);
  } catch (const ConfigError& e) {
    throw ConfigError("sweep " + spec_.file + ": point " + point.name + ": " + e.what());
  }
  p.steps = cfg.train.steps;
  p.train_args = {spec_.base};
  for (const auto& s : sets) p.train_args.insert(p.train_args.end(), {"--set", s});
  p.train_args.push_back("--quiet");

  IndexEntry& e = p.entry;
  e.point = point.name;
  e.stage = point.stage;
  e.variant = point.variant;
  e.run_dir = run_dir;
  for (const auto& [key, value] : point.overrides) e.overrides[key] = yaml_to_json(value);
  if (spec_.group_by == "variant") {
    e.group = point.variant;
  } else {
    e.group = config_value(YAML::Load(cfg.resolved_yaml), spec_.group_by);
    if (e.group.empty())
      throw ConfigError("sweep " + spec_.file + ": group_by: '" + spec_.group_by +
                        "' is not a key of the run config (e.g. optim.kind, or variant)");
  }
  e.command = "muonlab train";
  for (const auto& arg : p.train_args) e.command += " " + shell_quoted(arg);
  return p;
}

// What the sweep directory was started with, against what it is run with now.
void SweepRunner::check_unchanged() const {
  YAML::Node now(YAML::NodeType::Map);
  now["sweep"] = spec_.tree;
  now["set"] = YAML::Node(YAML::NodeType::Sequence);
  for (const auto& s : spec_.cli_set) now["set"].push_back(s);
  now["base_config"] = load_yaml_with_bases(spec_.base);
  const fs::path stored = dir_ / "sweep.yaml";
  if (fs::exists(stored)) {
    auto before = flatten_yaml(YAML::LoadFile(stored.string()));
    auto after = flatten_yaml(now);
    std::string changes;
    std::set<std::string> keys;
    for (const auto& kv : before) keys.insert(kv.first);
    for (const auto& kv : after) keys.insert(kv.first);
    for (const auto& key : keys) {
      if (key == "sweep_file") continue;
      auto a = before.count(key) ? before[key] : "(unset)";
      auto b = after.count(key) ? after[key] : "(unset)";
      if (a != b) changes += (changes.empty() ? "" : ", ") + key + ": " + a + " -> " + b;
    }
    if (!changes.empty())
      throw ConfigError("sweep " + spec_.file + " (or its base config or --set) changed since " +
                        dir_.string() + " was started: " + changes +
                        "; restore it, or give the changed sweep a new out_dir (--out DIR)");
    return;
  }
  now["sweep_file"] = spec_.file;
  fs::create_directories(dir_);
  YAML::Emitter e;
  e << now;
  write_file_atomically(stored.string(), std::string(e.c_str()) + "\n");
}

void SweepRunner::describe(const char* heading) const {
  out_ << heading << "\n";
  for (const auto& p : points_) {
    std::string overrides;
    for (const auto& [key, value] : p.point.overrides)
      overrides += (overrides.empty() ? "" : " ") + override_argument(key, value);
    out_ << "  " << p.entry.run_dir << "  [" << p.entry.group << "]  " << overrides << "\n";
  }
}

// A point is finished when its run directory says so (val at the last step, not running).
void SweepRunner::refresh_from_run_dir(PreparedPoint& p) const {
  if (!fs::exists(p.entry.run_dir)) return;
  RunSummary s = summarize_run(p.entry.run_dir);
  if (s.status == "done") {
    p.entry.status = "done";
    p.entry.final_val = s.final_val;
    p.entry.best_val = s.best_val;
    p.entry.error.clear();
  } else if (s.status == "running") {
    throw std::runtime_error("sweep point " + p.entry.point + " (" + p.entry.run_dir +
                             ") is being trained by another process; wait for it or stop it");
  }
}

void SweepRunner::write_index_now() const {
  std::vector<IndexEntry> entries;
  std::set<std::string> current;
  for (const auto& p : points_) entries.push_back(p.entry), current.insert(p.entry.point);
  // Points of the earlier index not prepared yet in this invocation (stage 2 while stage 1
  // reruns) stay listed until they are.
  for (const auto& earlier : earlier_index_)
    if (!current.count(earlier.point)) entries.push_back(earlier);
  write_index(dir_.string(), entries);
}

void SweepRunner::event(const std::string& line) {
  if (tty_ && status_shown_) out_ << "\r\033[K";
  status_shown_ = false;
  out_ << line << "\n" << std::flush;
}

int64_t last_train_step(const std::string& metrics_path) {
  std::ifstream in(metrics_path, std::ios::binary | std::ios::ate);
  if (!in) return 0;
  const std::streamoff size = in.tellg();
  const std::streamoff start = std::max<std::streamoff>(0, size - (1 << 16));
  in.seekg(start);
  std::string tail(static_cast<size_t>(size - start), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  size_t end = tail.size();
  while (end > 0) {
    size_t begin = tail.rfind('\n', end - 1);
    begin = begin == std::string::npos ? 0 : begin + 1;
    auto record = json::parse(tail.substr(begin, end - begin), nullptr, false);
    if (!record.is_discarded() && record.value("kind", "") == "train")
      return record.value("step", int64_t{0});
    if (begin == 0) break;
    end = begin - 1;
  }
  return 0;
}

// Seconds a point of `group` takes per step: from the group's points finished in this sweep,
// else from any group's, else `fallback`.
double SweepRunner::seconds_per_step(const std::string& group, double fallback) const {
  double seconds[2] = {0, 0}, steps[2] = {0, 0};  // [0] this group, [1] every group
  for (const auto& p : points_) {
    if (p.entry.status != "done" || p.entry.seconds <= 0) continue;
    for (int i : {0, 1})
      if (i == 1 || p.entry.group == group) seconds[i] += p.entry.seconds, steps[i] += p.steps;
  }
  if (steps[0] > 0) return seconds[0] / steps[0];
  if (steps[1] > 0) return seconds[1] / steps[1];
  return fallback;
}

// The work left (unfinished points, and the stage-2 points of groups whose stage 1 is still
// running) at each group's measured speed, shared by the jobs but never less than the longest
// single point left.
std::string SweepRunner::eta_text(int64_t steps_done, int running) const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const int64_t progressed = steps_done - steps_done_at_start_;
  // Before any point finishes: the pace of the running points so far.
  const double live = progressed > 0 && elapsed > 0 ? elapsed * running / double(progressed) : NAN;
  double left = 0, longest = 0;
  std::map<std::string, const PreparedPoint*> stage1;  // group -> one of its stage-1 points
  for (const auto& p : points_) {
    if (p.entry.stage == 1) stage1.emplace(p.entry.group, &p);
    if (p.entry.status == "done" || p.entry.status == "failed") continue;
    int64_t done = 0;
    if (p.entry.status == "running")
      done = last_train_step((fs::path(p.entry.run_dir) / "metrics.jsonl").string());
    const double seconds = double(p.steps - done) * seconds_per_step(p.entry.group, live);
    left += seconds, longest = std::max(longest, seconds);
  }
  if (spec_.two_stage()) {
    for (const auto& [group, p] : stage1) {
      if (stage2_chosen_.count(group)) continue;
      const double seconds = double(p->steps) * seconds_per_step(group, live);
      left += double(spec_.stage2_points(p->point).size()) * seconds;
      longest = std::max(longest, seconds);
    }
  }
  return std::isfinite(left) ? format_duration(std::max(left / options_.jobs, longest)) : "?";
}

void SweepRunner::status_line(bool force) {
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_status_).count();
  if (!force && since < (tty_ ? 1.0 : 30.0)) return;
  last_status_ = now;
  int done = 0, running = 0, failed = 0, left = 0;
  int64_t steps_done = 0;
  for (const auto& p : points_) {
    if (p.entry.status == "done") ++done, steps_done += p.steps;
    if (p.entry.status == "failed") ++failed;
    if (p.entry.status == "running") {
      ++running;
      steps_done += last_train_step((fs::path(p.entry.run_dir) / "metrics.jsonl").string());
    }
    if (p.entry.status == "pending" || p.entry.status == "interrupted") ++left;
  }
  if (steps_done_at_start_ < 0) steps_done_at_start_ = steps_done;
  std::string waiting;
  if (spec_.two_stage()) {
    const size_t open = groups_.size() - stage2_chosen_.size();
    if (open > 0)
      waiting = "; stage 2 of " + std::to_string(open) + " group" + (open > 1 ? "s" : "") +
                " still to choose";
  }
  char line[320];
  snprintf(line, sizeof line, "sweep: %d/%zu done, %d running, %d left, %d failed%s | ETA %s", done,
           points_.size(), running, left, failed, waiting.c_str(),
           eta_text(steps_done, running).c_str());
  if (tty_)
    out_ << "\r\033[K" << line << std::flush;
  else
    out_ << line << "\n" << std::flush;
  status_shown_ = tty_;
}

pid_t SweepRunner::launch(const PreparedPoint& p) const {
  fs::create_directories(p.entry.run_dir);
  std::vector<std::string> args = {options_.muonlab_binary, "train"};
  args.insert(args.end(), p.train_args.begin(), p.train_args.end());
  CheckpointStore store(p.entry.run_dir);
  const std::string restart =
      store.latest_valid([](const std::string&) {}) ? "--resume" : "--overwrite";
  args.push_back(restart);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string console = (fs::path(p.entry.run_dir) / "console.log").string();
  {
    std::ofstream log(console, std::ios::app);
    log << kAttemptMarker << " " << p.entry.command << " " << restart << "\n";
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("sweep: fork failed");
  if (pid == 0) {
    // Only async-signal-safe calls until exec. A child ends (checkpointing) with its sweep.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    int fd = open(console.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) dup2(fd, STDOUT_FILENO), dup2(fd, STDERR_FILENO), close(fd);
    // SIGINT/SIGTERM stay blocked across exec: a pending one waits for the child's own routing
    // (src/stop_signals.h) rather than reaching the sweep's handler copied into this child.
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// The last error line of the newest attempt in console.log.
std::string last_error_line(const std::string& console_log) {
  std::ifstream in(console_log);
  std::string line, last, error;
  while (std::getline(in, line)) {
    if (line.rfind(kAttemptMarker, 0) == 0) last.clear(), error.clear();
    if (line.empty() || line.rfind(kAttemptMarker, 0) == 0) continue;
    last = line;
    if (line.find("error") != std::string::npos) error = line;
  }
  return !error.empty() ? error : !last.empty() ? last : "no output";
}

// Runs every point not yet done, adding each group's stage-2 points as soon as its stage 1 is
// finished; false if interrupted by a signal.
bool SweepRunner::run_points() {
  std::deque<size_t> queue;  // indices into points_, next first
  for (size_t i = 0; i < points_.size(); ++i)
    if (points_[i].entry.status != "done") points_[i].entry.status = "pending", queue.push_back(i);
  for (const auto& group : groups_) add_stage2_if_ready(group, queue);
  write_index_now();
  std::map<pid_t, std::pair<size_t, Clock::time_point>> running;
  start_ = Clock::now();
  bool forwarded = false;
  while ((!queue.empty() && g_sweep_signal == 0) || !running.empty()) {
    const bool stopping = g_sweep_signal != 0;
    if (stopping && !forwarded) {
      for (const auto& [pid, job] : running) kill(pid, SIGTERM);
      forwarded = true;
      event("sweep: stopping on signal " + std::to_string(g_sweep_signal.load()) +
            "; running points checkpoint and stop (rerun the same command to continue)");
    }
    while (g_sweep_signal == 0 && !queue.empty() &&
           static_cast<int>(running.size()) < options_.jobs) {
      const size_t index = queue.front();
      queue.pop_front();
      PreparedPoint& p = points_[index];
      p.entry.status = "running";
      p.entry.error.clear();
      running[launch(p)] = {index, Clock::now()};
      write_index_now();
      event("started  " + p.entry.point + "  (" + std::to_string(threads_per_job_) + " thread" +
            (threads_per_job_ > 1 ? "s" : "") + ", log " + p.entry.run_dir + "/train.log)");
    }
    int wstatus = 0;
    pid_t pid = waitpid(-1, &wstatus, WNOHANG);
    if (pid > 0 && running.count(pid)) {
      auto [index, started] = running[pid];
      running.erase(pid);
      PreparedPoint& p = points_[index];
      p.entry.seconds += std::chrono::duration<double>(Clock::now() - started).count();
      const int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
      refresh_from_run_dir(p);
      if (p.entry.status == "done") {
        char loss[32];
        snprintf(loss, sizeof loss, "%.4f", p.entry.final_val);
        event("finished " + p.entry.point + "  final val " + loss + " (" +
              format_duration(p.entry.seconds) + ")");
      } else if (g_sweep_signal != 0 && (code == 130 || code == 128 + SIGTERM)) {
        p.entry.status = "interrupted";
      } else {
        p.entry.status = "failed";
        p.entry.error = WIFSIGNALED(wstatus)
                            ? "killed by signal " + std::to_string(WTERMSIG(wstatus))
                            : last_error_line(p.entry.run_dir + "/console.log");
        event("FAILED   " + p.entry.point + " (exit " + std::to_string(code) +
              "): " + p.entry.error + "  [" + p.entry.run_dir + "/console.log]");
      }
      if (p.entry.stage == 1 && g_sweep_signal == 0) add_stage2_if_ready(p.entry.group, queue);
      write_index_now();
      status_line(true);
      continue;
    }
    status_line(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (g_sweep_signal != 0)
    for (auto& p : points_)
      if (p.entry.status == "pending") p.entry.status = "interrupted";
  write_index_now();
  return g_sweep_signal == 0;
}

// Once every stage-1 point of `group` is done or failed: picks its best (lowest select loss),
// records it in selection.json and queues its stage-2 points ahead of the points waiting, so a
// slow group's extra seeds do not all wait for the end.
void SweepRunner::add_stage2_if_ready(const std::string& group, std::deque<size_t>& queue) {
  if (!spec_.two_stage() || stage2_chosen_.count(group)) return;
  const PreparedPoint* best = nullptr;
  auto loss_of = [&](const PreparedPoint& p) {
    return spec_.select == "best_val" ? p.entry.best_val : p.entry.final_val;
  };
  for (const auto& p : points_) {
    if (p.entry.stage != 1 || p.entry.group != group) continue;
    if (p.entry.status != "done" && p.entry.status != "failed") return;  // not finished yet
    if (p.entry.status == "done" && std::isfinite(loss_of(p)) &&
        (!best || loss_of(p) < loss_of(*best)))
      best = &p;
  }
  stage2_chosen_.insert(group);
  if (!best) {
    event("stage 2, " + group + ": no finished stage-1 point; no stage-2 points");
    return;
  }
  std::string chosen;
  for (const auto& [key, value] : best->point.overrides)
    chosen += (chosen.empty() ? "" : " ") + override_argument(key, value);
  char loss_text[32];
  snprintf(loss_text, sizeof loss_text, "%.4f", loss_of(*best));
  event("stage 2, " + group + ": best stage-1 point " + best->entry.point + "  " + spec_.select +
        " " + loss_text + "  (" + chosen + ")");
  selection_[group] = {{"point", best->entry.point},
                       {"run_dir", best->entry.run_dir},
                       {"overrides", best->entry.overrides},
                       {"select", spec_.select},
                       {"loss", loss_of(*best)}};
  write_file_atomically((dir_ / "selection.json").string(), selection_.dump(2) + "\n");
  const SweepPoint best_point = best->point;
  std::vector<size_t> added;
  for (const auto& point : spec_.stage2_points(best_point)) {
    if (names_.count(point.name)) continue;  // already a point of the sweep
    PreparedPoint prepared;
    try {
      prepared = prepare(point);
      refresh_from_run_dir(prepared);
    } catch (const std::exception& e) {
      // Other points are running: report it, count it as a failure, go on with the rest.
      ++stage2_errors_;
      event("FAILED   " + point.name + ": " + e.what());
      continue;
    }
    names_.insert(point.name);
    add_point(std::move(prepared));
    if (points_.back().entry.status != "done") {
      points_.back().entry.status = "pending";
      added.push_back(points_.size() - 1);
    }
  }
  // Ahead of the stage-1 points still waiting, behind stage-2 points queued before.
  auto at = std::find_if(queue.begin(), queue.end(),
                         [&](size_t i) { return points_[i].entry.stage == 1; });
  queue.insert(at, added.begin(), added.end());
}

// Takes a prepared (and refreshed) point into the sweep, with its time from the earlier index.
void SweepRunner::add_point(PreparedPoint p) {
  for (const auto& earlier : earlier_index_)
    if (earlier.point == p.entry.point && p.entry.seconds == 0) p.entry.seconds = earlier.seconds;
  points_.push_back(std::move(p));
}

int SweepRunner::run() {
  const int cores = available_cores();
  if (options_.jobs < 1 || options_.jobs > cores)
    throw ConfigError("--jobs " + std::to_string(options_.jobs) + ": must be between 1 and the " +
                      std::to_string(cores) + " cores available (threads per job = cores / jobs)");
  threads_per_job_ = cores / options_.jobs;
  if (options_.muonlab_binary.empty()) options_.muonlab_binary = self_executable();

  std::vector<PreparedPoint> stage1;
  for (const auto& point : spec_.stage1_points()) {
    if (!names_.insert(point.name).second)
      throw ConfigError("sweep " + spec_.file + ": two points are both named " + point.name +
                        " (run-directory names write each number in its shortest form and "
                        "replace characters other than letters, digits, _-.+ by _); make the "
                        "values distinct");
    stage1.push_back(prepare(point));
  }
  if (spec_.two_stage() && !stage1.empty())
    for (const auto& point : spec_.stage2_points(stage1.front().point)) prepare(point);  // validate
  if (options_.dry_run) {
    for (auto& p : stage1) points_.push_back(std::move(p));
    describe(("sweep " + spec_.file + ": " + std::to_string(points_.size()) +
              " stage-1 points (base " + spec_.base + ", " + std::to_string(options_.jobs) +
              " at a time, " + std::to_string(threads_per_job_) + " threads each):")
                 .c_str());
    if (spec_.two_stage()) {
      size_t extra = 1;
      for (const auto& block : spec_.stage2) extra *= block.rows.size();
      out_ << "stage 2: up to " << extra << " more points per " << spec_.group_by
           << " group at its best stage-1 point (lowest " << spec_.select
           << "), each group's as soon as its stage 1 is finished\n";
    }
    return 0;
  }
  check_unchanged();
  earlier_index_ = read_index(dir_.string());
  if (std::ifstream in(dir_ / "selection.json"); in) {
    // Groups chosen by an earlier invocation stay recorded until they are chosen again.
    json earlier = json::parse(in, nullptr, false);
    if (earlier.is_object()) selection_ = earlier;
  }
  for (auto& p : stage1) {
    if (std::find(groups_.begin(), groups_.end(), p.entry.group) == groups_.end())
      groups_.push_back(p.entry.group);
    refresh_from_run_dir(p);
    add_point(std::move(p));
  }

  g_sweep_signal = 0;
  auto previous_int = std::signal(SIGINT, on_sweep_signal);
  auto previous_term = std::signal(SIGTERM, on_sweep_signal);
  struct Restore {
    void (*i)(int);
    void (*t)(int);
    ~Restore() { std::signal(SIGINT, i), std::signal(SIGTERM, t); }
  } restore{previous_int, previous_term};

  out_ << "sweep " << spec_.file << " -> " << dir_.string() << ": " << points_.size()
       << " stage-1 points" << (spec_.two_stage() ? " (stage 2 follows per group)" : "") << ", "
       << options_.jobs << " at a time with " << threads_per_job_ << " thread"
       << (threads_per_job_ > 1 ? "s" : "") << " each\n";
  const bool completed = run_points();
  event("");
  int done = 0, failed = stage2_errors_;
  for (const auto& p : points_)
    done += p.entry.status == "done", failed += p.entry.status == "failed";
  out_ << "sweep " << (completed ? "finished" : "interrupted") << ": " << done << " of "
       << points_.size() << " points done, " << failed << " failed; index "
       << (dir_ / "sweep.jsonl").string() << "\ncompare them with: muonlab compare "
       << dir_.string() << "\n";
  if (!completed) return 130;
  return failed ? 1 : 0;
}

}  // namespace

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

int run_sweep(const SweepSpec& spec, const SweepOptions& options, std::ostream& out) {
  SweepRunner runner(spec, options, out);
  return runner.run();
}

}  // namespace muonlab
