// Runs that survive: SIGKILL in the middle of a checkpoint write, SIGKILL at random moments,
// SIGINT/SIGTERM (final checkpoint, clean exit) — each resumed run must reproduce the losses and
// final weights of an uninterrupted run exactly. Also non-finite losses: stop or skip_step.
#include <catch2/catch.hpp>
#include <random>

#include "tests/run_fixture.h"
#include "tests/test_util.h"

using Catch::Matchers::Contains;
using muonlab::test::checkpoint_weights;
using muonlab::test::run_shell;
using muonlab::test::TempDir;
using muonlab::test::train;
using muonlab::test::train_command;
using muonlab::test::train_losses;
namespace fs = std::filesystem;

namespace {

const std::string kRun =
    "--set train.steps=150 --set train.ckpt_every=10 --set train.eval_every=50 "
    "--set train.spectral_every=50 --set optim.kind=muon --set optim.lr=0.02 "
    "--set train.grad_accum=2 --quiet";

// The uninterrupted reference run, made once.
const std::string& straight_run() {
  static TempDir dir("muonlab-straight");
  static std::string out = [] {
    auto r = train(dir.str("run"), kRun);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    return dir.str("run");
  }();
  return out;
}

void require_same_as_straight(const std::string& run) {
  auto expected = train_losses(straight_run());
  auto got = train_losses(run);
  REQUIRE(got.size() == expected.size());
  for (const auto& [step, loss] : expected) {
    INFO("step " << step);
    REQUIRE(got.at(step) == loss);
  }
  auto wa = checkpoint_weights(fs::path(straight_run()) / "checkpoints/step_0000150");
  auto wb = checkpoint_weights(fs::path(run) / "checkpoints/step_0000150");
  for (const auto& [name, tensor] : wa) {
    INFO(name);
    CHECK(torch::equal(tensor, wb.at(name)));
  }
}

bool has_complete_checkpoint(const std::string& run) {
  if (!fs::exists(run + "/checkpoints")) return false;
  for (const auto& entry : fs::directory_iterator(run + "/checkpoints"))
    if (fs::exists(entry.path() / "manifest.json")) return true;
  return false;
}

// Starts the training command in the background, sends `signal` after `seconds` (counted from
// the first train record in out_dir's metrics when `after_first_step`), waits, and returns the
// exit status bash saw.
int run_and_signal(const std::string& command, const std::string& out_dir,
                   const std::string& signal, double seconds, bool after_first_step,
                   const TempDir& scratch) {
  std::string wait_for_step = after_first_step ? "until grep -qs '\"kind\":\"train\"' " + out_dir +
                                                     "/metrics.jsonl; do sleep 0.02; done\n"
                                               : "";
  std::string script = command + " > " + scratch.str("out.log") + " 2>&1 &\npid=$!\n" +
                       wait_for_step + "sleep " + std::to_string(seconds) + "\nkill -" + signal +
                       " $pid 2>/dev/null\nwait $pid\nexit $?\n";
  muonlab::test::write_file(scratch.path() / "run.sh", script);
  return run_shell("bash " + scratch.str("run.sh")).exit_code;
}

}  // namespace

TEST_CASE("SIGKILL in the middle of a checkpoint write: resume from the previous one, exactly",
          "[slow]") {
  TempDir runs;
  std::string out = runs.str("run");
  auto killed = run_shell("MUONLAB_FAULT_KILL_IN_CHECKPOINT=40 " + train_command(out, kRun));
  CHECK(killed.exit_code != 0);
  CHECK(fs::exists(out + "/checkpoints/.tmp_step_0000040/model.pt"));
  CHECK_FALSE(fs::exists(out + "/checkpoints/step_0000040"));

  auto resumed = run_shell(train_command(out, "--resume " + kRun));
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK_FALSE(fs::exists(out + "/checkpoints/.tmp_step_0000040"));
  require_same_as_straight(out);
}

TEST_CASE("SIGKILL at random moments, then resume, reproduces the uninterrupted run", "[slow]") {
  TempDir runs, scratch;
  std::string out = runs.str("run");
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> delay(0.4, 2.0);
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::string mode = has_complete_checkpoint(out) ? "--resume " : "--overwrite ";
    double seconds = delay(rng);
    int status =
        run_and_signal(train_command(out, mode + kRun), out, "KILL", seconds, false, scratch);
    INFO("attempt " << attempt << " killed after " << seconds << " s, status " << status);
    if (status == 0) break;  // finished before the kill
    REQUIRE(status == 128 + 9);
  }
  std::string mode = has_complete_checkpoint(out) ? "--resume " : "--overwrite ";
  auto last = run_shell(train_command(out, mode + kRun));
  INFO(last.output);
  REQUIRE(last.exit_code == 0);
  require_same_as_straight(out);
}

TEST_CASE("SIGINT and SIGTERM write a final checkpoint and exit cleanly") {
  for (std::string signal : {"INT", "TERM"}) {
    DYNAMIC_SECTION("SIG" << signal) {
      TempDir runs, scratch;
      std::string out = runs.str("run");
      int status = run_and_signal(train_command(out, kRun), out, signal, 0.3, true, scratch);
      if (status != 0) {  // 0 = finished before the signal arrived
        CHECK(status == 130);
        std::string train_log = muonlab::test::read_file(out + "/train.log");
        CHECK_THAT(train_log, Contains("stopped by signal"));
        auto losses = train_losses(out);
        REQUIRE_FALSE(losses.empty());
        int64_t last_step = losses.rbegin()->first;
        char name[32];
        snprintf(name, sizeof name, "step_%07lld", static_cast<long long>(last_step));
        CHECK(fs::exists(fs::path(out) / "checkpoints" / name / "manifest.json"));
      }
      auto resumed = run_shell(train_command(out, "--resume " + kRun));
      INFO(resumed.output);
      REQUIRE(resumed.exit_code == 0);
      require_same_as_straight(out);
    }
  }
}

TEST_CASE("a non-finite loss stops the run naming the step and parameter, or is skipped") {
  TempDir runs;
  std::string blowup =
      "--set train.steps=6 --set schedule.warmup_steps=0 --set optim.lr=1e30 "
      "--set optim.adamw.lr=1e30 --set train.grad_clip=0";
  auto stopped = train(runs.str("stop"), blowup);
  CHECK(stopped.exit_code != 0);
  CHECK_THAT(stopped.output, Contains("step "));
  CHECK_THAT(stopped.output, Contains("first non-finite gradient in "));
  CHECK_THAT(stopped.output, Contains("train.on_nonfinite"));

  auto skipped =
      run_shell(train_command(runs.str("skip"), blowup + " --set train.on_nonfinite=skip_step"));
  CHECK(skipped.exit_code == 0);
  CHECK_THAT(skipped.output, Contains("skipping the update"));
}
