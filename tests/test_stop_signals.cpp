// SIGINT/SIGTERM kept off the compute threads (src/stop_signals.h), through a helper process that
// takes a storm of SIGTERMs while it multiplies through oneDNN, the BLAS and oneDNN's bf16 GEMM:
// routed, it survives, its handler runs every time and never on a thread that computes; unrouted,
// the same handler lands on the compute threads (or the process dies of the heap corruption the
// routing prevents), which shows the helper tests what it claims to. And the muonlab binary itself:
// while it computes, every thread but one blocks both signals.
#include <catch2/catch.hpp>
#include <csignal>
#include <regex>
#include <string>

#include "test_util.h"

using muonlab::test::run_shell;

namespace {

struct StormResult {
  int exit_code = -1;
  long handled = -1, on_compute = -1;
  std::string output;
};

StormResult run_storm(const std::string& mode) {
  // A corrupted heap may also deadlock inside malloc: SIGKILL after a minute (exit code -1).
  const auto r = run_shell("timeout -s KILL 60 " + std::string(MUONLAB_SIGNAL_PROBE) + " " + mode);
  StormResult s{r.exit_code, -1, -1, r.output};
  std::smatch m;
  if (std::regex_search(r.output, m, std::regex("handled (\\d+) signals, (\\d+) on compute"))) {
    s.handled = std::stol(m[1]), s.on_compute = std::stol(m[2]);
  }
  return s;
}

}  // namespace

TEST_CASE("routed: a SIGTERM storm during oneDNN GEMMs is handled off the compute threads") {
  for (int run = 0; run < 2; ++run) {
    const StormResult s = run_storm("routed");
    INFO(s.output);
    REQUIRE(s.exit_code == 0);
    CHECK(s.handled >= 2000);
    CHECK(s.on_compute == 0);
  }
}

TEST_CASE("unrouted: the same storm reaches the compute threads, or corrupts the heap") {
  const StormResult s = run_storm("unrouted");
  INFO(s.output);
  // Any failure counts as the corruption: an abort, a sanitizer's report (exit 1), a wrong
  // product (3), a hang (-1).
  const bool died = s.exit_code != 0;
  if (!died) CHECK(s.on_compute > 0);
  WARN("unrouted probe: " << (died ? "failed (exit " + std::to_string(s.exit_code) + ")"
                                   : "survived, " + std::to_string(s.on_compute) +
                                         " handlers on compute threads"));
}

TEST_CASE("muonlab blocks SIGINT and SIGTERM on every thread but one while it computes") {
  // A bench of the small shape runs for seconds with LibTorch's threads busy; /proc lists each
  // thread's blocked signals (SigBlk, hex; SIGINT is bit 1, SIGTERM bit 14). Then SIGTERM, which
  // bench does not handle, must still end it.
  const std::string script =
      "cd \"$(mktemp -d)\" && " + std::string(MUONLAB_BINARY) + " bench " +
      muonlab::test::source_path("configs/bench/s.yaml") +
      " --set threads=2 --step-only --repeats 50 >/dev/null 2>&1 & pid=$!; "
      "for i in $(seq 1 200); do [ \"$(ls /proc/$pid/task | wc -l)\" -ge 3 ] && break; "
      "sleep 0.1; done; sleep 1; "
      "for t in /proc/$pid/task/*; do echo \"mask $(awk '/^SigBlk/ {print $2}' $t/status)\"; done; "
      "kill -TERM $pid; wait $pid; echo \"exit $?\"";
  const auto r = run_shell(script);
  INFO(r.output);
  int both = 0, neither = 0, other = 0;
  std::smatch m;
  std::string rest = r.output;
  while (std::regex_search(rest, m, std::regex("mask ([0-9a-f]+)"))) {
    const unsigned long long mask = std::stoull(m[1], nullptr, 16);
    const unsigned long long stop = (1ULL << (SIGINT - 1)) | (1ULL << (SIGTERM - 1));
    ((mask & stop) == stop ? both : (mask & stop) == 0 ? neither : other) += 1;
    rest = m.suffix();
  }
  CHECK(neither == 1);
  CHECK(both >= 2);
  CHECK(other == 0);
  CHECK(r.output.find("exit 143") != std::string::npos);
}
