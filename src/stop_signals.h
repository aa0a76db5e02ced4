// Keeps SIGINT and SIGTERM off the threads that compute. oneDNN up to 3.11.1 points the stack
// pointer of its float32 GEMM kernel at a heap buffer while the kernel runs, so a signal handler
// entered on such a thread writes its frame into the heap and glibc later aborts ("corrupted size
// vs. prev_size"); `dnnl_sgemm` and every thread that may run it are exposed. muonlab's handlers
// (a graceful stop in `train` and `sweep`) therefore always run on one thread of their own that
// does nothing else. This does not install or change any handler, and covers only these two
// signals (the ones muonlab handles); a signal without a handler still ends the process. Threads
// started before main() keep their own masks (a pthreads OpenBLAS starts its pool in a library
// constructor); they never run oneDNN. A muonlab started by muonlab (a sweep's points, the BLAS
// re-exec) inherits both signals blocked, pending ones included, and routes them again itself.
#pragma once
#include <signal.h>

namespace muonlab {

// Blocks SIGINT and SIGTERM in the calling thread, so in every thread it or its threads create
// from now on (OpenMP's workers, the data loader), and starts one detached thread that has them
// unblocked and sleeps: the kernel delivers them to that thread only. Call it first in main(),
// before anything starts a thread. Calling it again blocks them in the calling thread and starts
// no second thread.
void route_stop_signals_to_own_thread();

// While alive, the calling thread has SIGINT and SIGTERM unblocked (its previous mask restored on
// exit), so that a program started with system() or popen() inherits them unblocked. Only around
// code that runs no GEMM on this thread.
class StopSignalsUnblockedHere {
 public:
  StopSignalsUnblockedHere();
  ~StopSignalsUnblockedHere();
  StopSignalsUnblockedHere(const StopSignalsUnblockedHere&) = delete;
  StopSignalsUnblockedHere& operator=(const StopSignalsUnblockedHere&) = delete;

 private:
  sigset_t previous_;
};

}  // namespace muonlab
