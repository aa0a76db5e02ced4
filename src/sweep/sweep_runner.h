// `muonlab sweep`: runs a SweepSpec's points as `muonlab train` child processes, N at a time
// with cores/N threads each, one run directory per point under the sweep directory, and keeps
// sweep.jsonl current. Re-running skips finished points and resumes interrupted ones from their
// newest checkpoint; a changed sweep file, base config or --set is refused, naming what changed.
// A two-stage sweep also runs stage 2 at each group's best stage-1 point (lowest final or best
// val, written to selection.json), queued as soon as that group's stage 1 is finished. Progress
// goes to one status display; each point's console output goes to its run directory (console.log,
// besides the trainer's own train.log). It does not train in process and does not compare results
// (`muonlab compare` does).
#pragma once
#include <ostream>
#include <string>

#include "src/sweep/sweep_spec.h"

namespace muonlab {

struct SweepOptions {
  int jobs = 1;
  bool dry_run = false;
  std::string muonlab_binary;  // the executable to run points with; empty = this process's own
};

// Exit status: 0 every point finished, 1 some point failed, 130 interrupted by a signal.
// Throws ConfigError / std::runtime_error for a bad sweep (before any point runs).
int run_sweep(const SweepSpec& spec, const SweepOptions& options, std::ostream& out);

// Cores this process may use (its CPU affinity mask).
int available_cores();

}  // namespace muonlab
