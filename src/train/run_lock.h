// An exclusive lock on a run directory (an OFD lock on RUN_DIR/.lock) held while `muonlab train`
// runs in it: a second trainer in the same directory is refused instead of interleaving
// checkpoints, and `muonlab compare` / `muonlab sweep` can tell a running run from a stopped one.
// The kernel drops the lock when the process dies, also by SIGKILL. It does not work across NFS
// hosts.
#pragma once
#include <string>

namespace muonlab {

class RunLock {
 public:
  // Takes the lock or throws std::runtime_error naming the directory and the holder's pid.
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// True if a live process holds the lock of `run_dir` (a trainer is running there).
bool run_is_locked(const std::string& run_dir);

}  // namespace muonlab
