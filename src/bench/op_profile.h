// A per-operator CPU profile of some code: LibTorch's RecordFunction callbacks on the calling
// thread time every ATen operator and autograd node it runs (the autograd engine runs CPU
// backward on the calling thread), attributing self time (own time minus that of the operators
// it called) and total time to each name. It does not see work outside RecordFunction (our own
// loops between operators show up as the gap to wall time) nor time spent in other threads
// beyond what the calling thread waits for.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace muonlab {

struct OpProfileRow {
  std::string name;  // e.g. "aten::mm", "autograd::engine::evaluate_function: MmBackward0"
  int64_t calls = 0;
  double self_s = 0;   // time in this operator minus its children's
  double total_s = 0;  // time from entry to exit, outermost calls only (no double counting)
};

struct OpProfile {
  std::vector<OpProfileRow> rows;  // by self time, largest first
  double wall_s = 0;               // wall time of all runs together
  int runs = 0;
};

// Runs `fn` `runs` times with the profiler on; figures are sums over the runs.
OpProfile profile_ops(const std::function<void()>& fn, int runs);

}  // namespace muonlab
