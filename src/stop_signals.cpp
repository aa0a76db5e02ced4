// SIGINT/SIGTERM confined to a thread of their own; see stop_signals.h for why.
#include "src/stop_signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace muonlab {
namespace {

sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void route_stop_signals_to_own_thread() {
  const sigset_t set = stop_signal_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  static std::atomic<bool> started{false};
  if (started.exchange(true)) return;
  std::thread([set] {
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    for (;;) pause();  // handlers run here, on this thread's own stack
  }).detach();
}

StopSignalsUnblockedHere::StopSignalsUnblockedHere() {
  const sigset_t set = stop_signal_set();
  pthread_sigmask(SIG_UNBLOCK, &set, &previous_);
}

StopSignalsUnblockedHere::~StopSignalsUnblockedHere() {
  pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

}  // namespace muonlab
