// The sweep scheduler: point preparation, change detection, child processes, progress, stage 2.
#include "src/sweep/sweep_runner.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "src/config/config.h"
#include "src/config/number_text.h"
#include "src/report/run_summary.h"
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

std::string quoted(const std::string& arg) {
  bool plain = !arg.empty();
  for (char c : arg)
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) ||
                      std::string("_-.,/=:+").find(c) != std::string::npos);
  if (plain) return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class SweepRunner {
 public:
  SweepRunner(const SweepSpec& spec, const SweepOptions& options, std::ostream& out)
      : spec_(spec), options_(options), out_(out), dir_(spec.out_dir) {}

  int run();

 private:
  PreparedPoint prepare(const SweepPoint& point) const;
  void check_unchanged() const;
  void describe(const std::vector<PreparedPoint>& points, const char* heading) const;
  void refresh_from_run_dir(PreparedPoint& p) const;
  bool run_points(std::vector<PreparedPoint>& points, int stage);
  std::vector<SweepPoint> select_stage2(const std::vector<PreparedPoint>& stage1);
  void write_index_now() const;
  void status_line(const std::vector<PreparedPoint>& points, int stage, bool force);
  void event(const std::string& line);
  pid_t launch(const PreparedPoint& p) const;

  const SweepSpec& spec_;
  SweepOptions options_;
  std::ostream& out_;
  fs::path dir_;
  int threads_per_job_ = 1;
  std::vector<PreparedPoint*> all_;  // stage 1 then stage 2, for the index
  bool tty_ = isatty(STDOUT_FILENO) != 0;
  bool status_shown_ = false;
  Clock::time_point last_status_ = Clock::now() - std::chrono::hours(1);
  Clock::time_point start_ = Clock::now();
  std::map<int, int64_t> steps_done_at_start_;  // per stage: steps finished before this run
  std::vector<IndexEntry> earlier_index_;       // sweep.jsonl as this invocation found it
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
  for (const auto& arg : p.train_args) e.command += " " + quoted(arg);
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

void SweepRunner::describe(const std::vector<PreparedPoint>& points, const char* heading) const {
  out_ << heading << "\n";
  for (const auto& p : points) {
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
  for (const auto* p : all_) entries.push_back(p->entry), current.insert(p->entry.point);
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

void SweepRunner::status_line(const std::vector<PreparedPoint>& points, int stage, bool force) {
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_status_).count();
  if (!force && since < (tty_ ? 1.0 : 30.0)) return;
  last_status_ = now;
  int done = 0, running = 0, failed = 0, left = 0;
  int64_t steps_total = 0, steps_done = 0;
  for (const auto& p : points) {
    steps_total += p.steps;
    if (p.entry.status == "done") ++done, steps_done += p.steps;
    if (p.entry.status == "failed") ++failed;
    if (p.entry.status == "running") {
      ++running;
      steps_done += last_train_step((fs::path(p.entry.run_dir) / "metrics.jsonl").string());
    }
    if (p.entry.status == "pending" || p.entry.status == "interrupted") ++left;
  }
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double fraction = steps_total ? double(steps_done) / double(steps_total) : 1.0;
  std::string eta = "?";
  if (steps_done_at_start_.count(stage) == 0) steps_done_at_start_[stage] = steps_done;
  const int64_t progressed = steps_done - steps_done_at_start_[stage];
  if (progressed > 0 && elapsed > 0)
    eta = format_duration(elapsed / double(progressed) * double(steps_total - steps_done));
  char line[256];
  snprintf(line, sizeof line,
           "sweep stage %d/%d: %d/%zu done, %d running, %d left, %d failed | %.0f%% of steps | "
           "ETA %s",
           stage, spec_.two_stage() ? 2 : 1, done, points.size(), running, left, failed,
           100 * fraction, eta.c_str());
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
  args.push_back(store.latest_valid([](const std::string&) {}) ? "--resume" : "--overwrite");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string console = (fs::path(p.entry.run_dir) / "console.log").string();
  {
    std::ofstream log(console, std::ios::app);
    log << kAttemptMarker << " " << p.entry.command << "\n";
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

// Runs every point not yet done; false if interrupted by a signal.
bool SweepRunner::run_points(std::vector<PreparedPoint>& points, int stage) {
  std::vector<size_t> queue;
  for (size_t i = 0; i < points.size(); ++i)
    if (points[i].entry.status != "done") points[i].entry.status = "pending", queue.push_back(i);
  write_index_now();
  std::map<pid_t, std::pair<size_t, Clock::time_point>> running;
  start_ = Clock::now();
  steps_done_at_start_.erase(stage);
  size_t next = 0;
  bool forwarded = false;
  while ((next < queue.size() && g_sweep_signal == 0) || !running.empty()) {
    const bool stopping = g_sweep_signal != 0;
    if (stopping && !forwarded) {
      for (const auto& [pid, job] : running) kill(pid, SIGTERM);
      forwarded = true;
      event("sweep: stopping on signal " + std::to_string(g_sweep_signal.load()) +
            "; running points checkpoint and stop (rerun the same command to continue)");
    }
    while (g_sweep_signal == 0 && next < queue.size() &&
           static_cast<int>(running.size()) < options_.jobs) {
      PreparedPoint& p = points[queue[next++]];
      p.entry.status = "running";
      p.entry.error.clear();
      running[launch(p)] = {static_cast<size_t>(&p - points.data()), Clock::now()};
      write_index_now();
      event("started  " + p.entry.point + "  (" + std::to_string(threads_per_job_) + " thread" +
            (threads_per_job_ > 1 ? "s" : "") + ", log " + p.entry.run_dir + "/train.log)");
    }
    int wstatus = 0;
    pid_t pid = waitpid(-1, &wstatus, WNOHANG);
    if (pid > 0 && running.count(pid)) {
      auto [index, started] = running[pid];
      running.erase(pid);
      PreparedPoint& p = points[index];
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
      write_index_now();
      status_line(points, stage, true);
      continue;
    }
    status_line(points, stage, false);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (g_sweep_signal != 0)
    for (auto& p : points)
      if (p.entry.status == "pending") p.entry.status = "interrupted";
  write_index_now();
  return g_sweep_signal == 0;
}

std::vector<SweepPoint> SweepRunner::select_stage2(const std::vector<PreparedPoint>& stage1) {
  std::map<std::string, const PreparedPoint*> best;
  std::vector<std::string> order;
  for (const auto& p : stage1) {
    if (!best.count(p.entry.group)) order.push_back(p.entry.group), best[p.entry.group] = nullptr;
    if (p.entry.status != "done") continue;
    const double loss = spec_.select == "best_val" ? p.entry.best_val : p.entry.final_val;
    const PreparedPoint*& current = best[p.entry.group];
    const double current_loss = !current                     ? INFINITY
                                : spec_.select == "best_val" ? current->entry.best_val
                                                             : current->entry.final_val;
    if (std::isfinite(loss) && loss < current_loss) current = &p;
  }
  json selection = json::object();
  std::vector<SweepPoint> points;
  out_ << "stage 2: each group's best stage-1 point (lowest " << spec_.select << "):\n";
  for (const auto& group : order) {
    const PreparedPoint* p = best[group];
    if (!p) {
      out_ << "  " << group << ": no finished stage-1 point; no stage-2 points\n";
      continue;
    }
    const double loss = spec_.select == "best_val" ? p->entry.best_val : p->entry.final_val;
    std::string chosen;
    for (const auto& [key, value] : p->point.overrides)
      chosen += (chosen.empty() ? "" : " ") + override_argument(key, value);
    char loss_text[32];
    snprintf(loss_text, sizeof loss_text, "%.4f", loss);
    out_ << "  " << group << ": " << p->entry.point << "  " << spec_.select << " " << loss_text
         << "  (" << chosen << ")\n";
    selection[group] = {{"point", p->entry.point},
                        {"run_dir", p->entry.run_dir},
                        {"overrides", p->entry.overrides},
                        {"select", spec_.select},
                        {"loss", loss}};
    for (auto& extra : spec_.stage2_points(p->point)) points.push_back(std::move(extra));
  }
  write_file_atomically((dir_ / "selection.json").string(), selection.dump(2) + "\n");
  return points;
}

int SweepRunner::run() {
  const int cores = available_cores();
  if (options_.jobs < 1 || options_.jobs > cores)
    throw ConfigError("--jobs " + std::to_string(options_.jobs) + ": must be between 1 and the " +
                      std::to_string(cores) + " cores available (threads per job = cores / jobs)");
  threads_per_job_ = cores / options_.jobs;
  if (options_.muonlab_binary.empty()) options_.muonlab_binary = self_executable();

  std::vector<PreparedPoint> stage1;
  std::set<std::string> names;
  for (const auto& point : spec_.stage1_points()) {
    if (!names.insert(point.name).second)
      throw ConfigError("sweep " + spec_.file + ": two points are both named " + point.name +
                        "; make every combination of values distinct");
    stage1.push_back(prepare(point));
  }
  if (spec_.two_stage() && !stage1.empty())
    for (const auto& point : spec_.stage2_points(stage1.front().point)) prepare(point);  // validate
  if (options_.dry_run) {
    describe(stage1, ("sweep " + spec_.file + ": " + std::to_string(stage1.size()) +
                      " stage-1 points (base " + spec_.base + ", " + std::to_string(options_.jobs) +
                      " at a time, " + std::to_string(threads_per_job_) + " threads each):")
                         .c_str());
    if (spec_.two_stage()) {
      size_t extra = 1;
      for (const auto& block : spec_.stage2) extra *= block.rows.size();
      out_ << "stage 2: up to " << extra << " more points per " << spec_.group_by
           << " group at its best stage-1 point (lowest " << spec_.select << ")\n";
    }
    return 0;
  }
  check_unchanged();
  earlier_index_ = read_index(dir_.string());
  for (auto& p : stage1) refresh_from_run_dir(p), all_.push_back(&p);

  g_sweep_signal = 0;
  auto previous_int = std::signal(SIGINT, on_sweep_signal);
  auto previous_term = std::signal(SIGTERM, on_sweep_signal);
  struct Restore {
    void (*i)(int);
    void (*t)(int);
    ~Restore() { std::signal(SIGINT, i), std::signal(SIGTERM, t); }
  } restore{previous_int, previous_term};

  out_ << "sweep " << spec_.file << " -> " << dir_.string() << ": " << stage1.size() << " points, "
       << options_.jobs << " at a time with " << threads_per_job_ << " thread"
       << (threads_per_job_ > 1 ? "s" : "") << " each\n";
  bool completed = run_points(stage1, 1);
  std::vector<PreparedPoint> stage2;
  stage2.reserve(64);
  if (completed && spec_.two_stage()) {
    for (const auto& point : select_stage2(stage1)) {
      if (!names.insert(point.name).second) continue;  // already a stage-1 point
      stage2.push_back(prepare(point));
    }
    for (auto& p : stage2) refresh_from_run_dir(p), all_.push_back(&p);
    completed = run_points(stage2, 2);
  }
  event("");
  int done = 0, failed = 0;
  for (const auto* p : all_)
    done += p->entry.status == "done", failed += p->entry.status == "failed";
  out_ << "sweep " << (completed ? "finished" : "interrupted") << ": " << done << " of "
       << all_.size() << " points done, " << failed << " failed; index "
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
