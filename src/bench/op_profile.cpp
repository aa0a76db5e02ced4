// RecordFunction-based operator profile: a frame stack per thread gives self and total times.
#include "src/bench/op_profile.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>

namespace muonlab {
namespace {

using Clock = std::chrono::steady_clock;

struct Frame {
  Clock::time_point start;
  double children_s = 0;
};

struct Totals {
  int64_t calls = 0;
  double self_s = 0, total_s = 0;
};

// Only the profiling thread records (a thread-local callback), so plain thread_local state works.
thread_local std::vector<Frame> frames;
thread_local std::map<std::string, Totals>* totals = nullptr;
// Depth per name, so a recursive or nested call of the same name adds its total once.
thread_local std::map<std::string, int>* open_calls = nullptr;

std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn) {
  if (totals == nullptr) return nullptr;  // a thread other than the profiling one
  frames.push_back({Clock::now(), 0});
  (*open_calls)[fn.name()] += 1;
  return nullptr;
}

void on_exit(const at::RecordFunction& fn, at::ObserverContext*) {
  if (totals == nullptr || frames.empty()) return;  // another thread, or entered before the start
  const Frame frame = frames.back();
  frames.pop_back();
  const double elapsed = std::chrono::duration<double>(Clock::now() - frame.start).count();
  if (!frames.empty()) frames.back().children_s += elapsed;
  const std::string name = fn.name();
  Totals& t = (*totals)[name];
  t.calls += 1;
  t.self_s += elapsed - frame.children_s;
  int& depth = (*open_calls)[name];
  depth -= 1;
  if (depth == 0) t.total_s += elapsed;
}

}  // namespace

OpProfile profile_ops(const std::function<void()>& fn, int runs) {
  if (runs < 1) throw std::invalid_argument("profile_ops: runs must be >= 1");
  if (totals != nullptr) throw std::logic_error("profile_ops: already profiling on this thread");
  std::map<std::string, Totals> by_name;
  std::map<std::string, int> depth;
  totals = &by_name;
  open_calls = &depth;
  frames.clear();
  const auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(on_enter, on_exit));
  OpProfile profile;
  profile.runs = runs;
  const auto start = Clock::now();
  try {
    for (int i = 0; i < runs; ++i) fn();
  } catch (...) {
    at::removeCallback(handle);
    totals = nullptr;
    open_calls = nullptr;
    throw;
  }
  profile.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  at::removeCallback(handle);
  totals = nullptr;
  open_calls = nullptr;
  frames.clear();
  for (const auto& [name, t] : by_name)
    profile.rows.push_back({name, t.calls, t.self_s, t.total_s});
  std::sort(profile.rows.begin(), profile.rows.end(),
            [](const OpProfileRow& a, const OpProfileRow& b) { return a.self_s > b.self_s; });
  return profile;
}

}  // namespace muonlab
