// The muonlab binary: all logic lives in the libraries; see src/cli.h.
#include "src/cli.h"
#include "src/stop_signals.h"

int main(int argc, char** argv) {
  muonlab::route_stop_signals_to_own_thread();  // before any thread starts: see stop_signals.h
  return muonlab::run_cli(argc, argv);
}
