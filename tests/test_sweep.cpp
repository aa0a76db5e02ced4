// `muonlab sweep`: grid, zip and variant expansion and run-directory names; two-stage selection
// of the lowest loss, each group's stage 2 queued as soon as its stage 1 is finished; --jobs 2
// giving the same numbers as the point run alone; a failing point not stopping the others; resume
// after the sweep is SIGKILLed mid-point (every point finishes once, with the numbers of an
// uninterrupted sweep); SIGTERM stopping it cleanly (exit 130); changed sweep files refused;
// --dry-run.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <thread>

#include "src/config/config_reader.h"
#include "src/sweep/sweep_index.h"
#include "src/sweep/sweep_runner.h"
#include "src/sweep/sweep_spec.h"
#include "tests/run_fixture.h"
#include "tests/test_util.h"

using Catch::Matchers::Contains;
using muonlab::test::corpus;
using muonlab::test::read_file;
using muonlab::test::run_muonlab;
using muonlab::test::run_shell;
using muonlab::test::TempDir;
using muonlab::test::train_losses;
using muonlab::test::write_file;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> names(const std::vector<muonlab::SweepPoint>& points) {
  std::vector<std::string> out;
  for (const auto& p : points) out.push_back(p.name);
  return out;
}

muonlab::SweepSpec spec_from(const TempDir& dir, const std::string& body) {
  write_file(dir.path() / "base.yaml", "seed: 0\n");
  write_file(dir.path() / "sweep.yaml", "base: base.yaml\n" + body);
  return muonlab::load_sweep_spec(dir.str("sweep.yaml"), {});
}

// A sweep file over configs/tiny.yaml on the test corpus.
std::string tiny_sweep(const std::string& axes, int steps = 20) {
  std::string data = corpus().data_overrides();  // " --set data.train=X --set ..."
  std::string set = "set: {train.steps: " + std::to_string(steps) +
                    ", train.eval_every: 10, train.ckpt_every: 5, train.spectral_every: 10";
  for (size_t at = data.find("--set "); at != std::string::npos; at = data.find("--set ", at + 1)) {
    size_t start = at + 6, end = data.find(' ', start);
    std::string assignment = data.substr(start, end == std::string::npos ? end : end - start);
    set += ", " + assignment.substr(0, assignment.find('=')) + ": " +
           assignment.substr(assignment.find('=') + 1);
  }
  return "base: " + muonlab::test::source_path("configs/tiny.yaml") + "\n" + set + "}\n" + axes;
}

}  // namespace

TEST_CASE("sweep files expand grids, zips and variants into named points") {
  TempDir dir;
  auto grid = spec_from(dir, "grid: {optim.lr: [0.01, 0.02], seed: [0, 1]}\n");
  CHECK(names(grid.stage1_points()) == std::vector<std::string>{"lr=0.01,seed=0", "lr=0.01,seed=1",
                                                                "lr=0.02,seed=0",
                                                                "lr=0.02,seed=1"});
  auto zipped = spec_from(dir,
                          "zip: {optim.kind: [adamw, muon], optim.lr: [3.0e-3, 2e-2]}\n"
                          "grid: {seed: [0]}\n");
  CHECK(names(zipped.stage1_points()) ==
        std::vector<std::string>{"kind=adamw,lr=0.003,seed=0", "kind=muon,lr=0.02,seed=0"});
  // Every axis key is named, by its last part unless two share it.
  auto clash = spec_from(dir,
                         "grid: {optim.lr: [0.01, 0.02], optim.adamw.lr: [0.001, 0.003], "
                         "train.steps: [10]}\n");
  auto points = clash.stage1_points();
  REQUIRE(points.size() == 4);
  CHECK(points[0].name == "optim.lr=0.01,optim.adamw.lr=0.001,steps=10");
  CHECK(points[0].overrides.size() == 3);
  auto variants =
      spec_from(dir,
                "variants:\n"
                "  adamw: {set: {optim.kind: adamw}, grid: {optim.lr: [0.001, 0.003]}}\n"
                "  polar: {set: {optim.kind: muon, optim.orthogonalizer: exact}, "
                "grid: {optim.lr: [0.02]}}\n"
                "grid: {seed: [0]}\n"
                "group_by: variant\n"
                "stage2: {grid: {seed: [1, 2]}}\n");
  auto v = variants.stage1_points();
  CHECK(names(v) == std::vector<std::string>{"variant=adamw,lr=0.001,seed=0",
                                             "variant=adamw,lr=0.003,seed=0",
                                             "variant=polar,lr=0.02,seed=0"});
  CHECK(v[2].overrides.size() == 4);  // kind, orthogonalizer, lr, seed
  auto extra = variants.stage2_points(v[1]);
  CHECK(names(extra) ==
        std::vector<std::string>{"variant=adamw,lr=0.003,seed=1", "variant=adamw,lr=0.003,seed=2"});
  // The stage-1 point's own seed value is not changed by building stage 2 from it.
  CHECK(muonlab::SweepSpec::value_text(v[1].overrides.back().second) == "0");
}

TEST_CASE("the shipped sweep files load and every point's config is valid") {
  auto spec =
      muonlab::load_sweep_spec(muonlab::test::source_path("configs/sweeps/tiny-lr.yaml"), {});
  CHECK(spec.two_stage());
  auto points = spec.stage1_points();
  REQUIRE(points.size() == 8);
  CHECK(points.front().name == "kind=adamw,lr=0.00025,seed=0");
  auto r = run_muonlab("sweep " + muonlab::test::source_path("configs/sweeps/tiny-lr.yaml") +
                       " --dry-run");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Contains("runs/tiny-lr/kind=muon,lr=0.04,seed=0"));
}

TEST_CASE("bad sweep files fail with one line naming the key") {
  TempDir dir;
  auto fails_with = [&](const std::string& body, const std::string& message) {
    INFO(body);
    CHECK_THROWS_WITH(spec_from(dir, body), Contains(message));
  };
  fails_with("zip: {optim.kind: [adamw, muon], optim.lr: [0.1]}\n", "zip.optim.lr: has 1 values");
  fails_with("grids: {seed: [0]}\n", "grids: unknown key; did you mean 'grid'?");
  fails_with("grid: {seed: 3}\n", "grid.seed: expected a non-empty list");
  fails_with("grid: {seed: [0]}\nzip: {seed: [1]}\n", "seed is varied by two axes");
  fails_with("select: lowest\n", "select: unknown 'lowest'");
  write_file(dir.path() / "nobase.yaml", "base: missing.yaml\n");
  CHECK_THROWS_WITH(muonlab::load_sweep_spec(dir.str("nobase.yaml"), {}),
                    Contains("base: file 'missing.yaml' not found"));
  spec_from(dir, "grid: {seed: [0]}\n");
  auto r = run_muonlab("sweep " + dir.str("sweep.yaml") + " --jobs 64");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Contains("--jobs 64: must be between 1 and the"));
  r = run_muonlab("sweep " + dir.str("sweep.yaml") + " --dry-run --set 'optim.lr=[1,'");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Contains("--set optim.lr=[1,: cannot parse the value"));
}

TEST_CASE("a two-stage sweep picks the lowest loss, and --jobs 2 matches a lone run", "[slow]") {
  TempDir dir;
  write_file(
      dir.path() / "s.yaml",
      tiny_sweep(
          "grid: {optim.lr: [0.0003, 0.003, 0.03], seed: [0]}\nstage2: {grid: {seed: [1]}}\n"));
  auto dry = run_muonlab("sweep " + dir.str("s.yaml") + " --out " + dir.str("out") + " --dry-run");
  INFO(dry.output);
  REQUIRE(dry.exit_code == 0);
  CHECK_THAT(dry.output, Contains("lr=0.003,seed=0"));
  CHECK_FALSE(fs::exists(dir.path() / "out"));

  auto r = run_muonlab("sweep " + dir.str("s.yaml") + " --out " + dir.str("out") + " --jobs 2");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  auto index = muonlab::read_index(dir.str("out"));
  REQUIRE(index.size() == 4);
  std::string best;
  double best_loss = INFINITY;
  for (const auto& e : index) {
    CHECK(e.status == "done");
    CHECK(std::isfinite(e.final_val));
    CHECK(fs::exists(fs::path(e.run_dir) / "train.log"));
    if (e.stage == 1 && e.final_val < best_loss) best_loss = e.final_val, best = e.point;
  }
  auto selection = nlohmann::json::parse(read_file(dir.path() / "out" / "selection.json"));
  CHECK(selection["adamw"]["point"] == best);
  CHECK(selection["adamw"]["loss"].get<double>() == best_loss);
  CHECK(index[3].stage == 2);
  CHECK(index[3].point == best.substr(0, best.find(",seed=")) + ",seed=1");
  CHECK_THAT(r.output, Contains("stage 2, adamw: best stage-1 point " + best + "  final_val"));

  // The same point alone, with the thread count --jobs 2 gave it (half the cores).
  const std::string threads = std::to_string(muonlab::available_cores() / 2);
  auto alone = run_shell(muonlab::test::train_command(dir.str("alone"), "--quiet") + " " +
                         "--set train.steps=20 --set train.eval_every=10 --set train.ckpt_every=5 "
                         "--set train.spectral_every=10 --set optim.lr=0.003 --set threads=" +
                         threads);
  INFO(alone.output);
  REQUIRE(alone.exit_code == 0);
  CHECK(train_losses(dir.str("alone")) == train_losses(dir.str("out/lr=0.003,seed=0")));

  // Running it again trains nothing; a changed sweep file is refused, naming the change.
  auto again = run_muonlab("sweep " + dir.str("s.yaml") + " --out " + dir.str("out"));
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.output, !Contains("started"));
  write_file(dir.path() / "s.yaml", tiny_sweep("grid: {optim.lr: [0.003, 0.03], seed: [0]}\n"));
  auto changed = run_muonlab("sweep " + dir.str("s.yaml") + " --out " + dir.str("out"));
  CHECK(changed.exit_code != 0);
  CHECK_THAT(changed.output, Contains("changed since"));
  CHECK_THAT(changed.output, Contains("sweep.grid.optim.lr"));
  CHECK(muonlab::read_index(dir.str("out")).size() == 4);  // the index is untouched
}

TEST_CASE("a group's stage 2 starts as soon as its own stage 1 is finished", "[slow]") {
  TempDir dir;
  write_file(dir.path() / "s.yaml",
             tiny_sweep("variants:\n"
                        "  a: {set: {optim.kind: adamw}, grid: {optim.lr: [0.003]}}\n"
                        "  m: {set: {optim.kind: muon}, grid: {optim.lr: [0.01, 0.02]}}\n"
                        "grid: {seed: [0]}\ngroup_by: variant\nstage2: {grid: {seed: [1]}}\n",
                        10));
  auto r = run_muonlab("sweep " + dir.str("s.yaml") + " --out " + dir.str("out") + " --jobs 1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> started;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("started  ", 0) == 0) started.push_back(line.substr(9, line.find("  (") - 9));
  auto selection = nlohmann::json::parse(read_file(dir.path() / "out" / "selection.json"));
  const std::string m_best = selection["m"]["point"];
  const std::vector<std::string> expected = {
      "variant=a,lr=0.003,seed=0", "variant=a,lr=0.003,seed=1", "variant=m,lr=0.01,seed=0",
      "variant=m,lr=0.02,seed=0", m_best.substr(0, m_best.find(",seed=")) + ",seed=1"};
  CHECK(started == expected);
  CHECK(muonlab::read_index(dir.str("out")).size() == 5);
}

TEST_CASE("a failing point is reported and the others still run") {
  TempDir dir;
  write_file(dir.path() / "s.yaml",
             tiny_sweep("zip: {data.val: [" + dir.str("missing.bin") + ", " +
                        corpus().data_overrides().substr(
                            corpus().data_overrides().find("data.val=") + 9,
                            corpus().data_overrides().find(" --set data.tokenizer") -
                                corpus().data_overrides().find("data.val=") - 9) +
                        "]}\n"));
  auto r = run_muonlab("sweep " + dir.str("s.yaml") + " --out " + dir.str("out"));
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("FAILED"));
  CHECK_THAT(r.output, Contains("missing.bin"));
  auto index = muonlab::read_index(dir.str("out"));
  REQUIRE(index.size() == 2);
  CHECK(index[0].status == "failed");
  CHECK_THAT(index[0].error, Contains("missing.bin"));
  CHECK(index[1].status == "done");
}

TEST_CASE("a sweep killed mid-point resumes: every point finishes once, same numbers", "[slow]") {
  TempDir dir;
  const std::string axes = "grid: {optim.lr: [0.001, 0.003], seed: [0]}\n";
  write_file(dir.path() / "s.yaml", tiny_sweep(axes, 60));
  auto straight = run_muonlab("sweep " + dir.str("s.yaml") + " --out " + dir.str("straight"));
  INFO(straight.output);
  REQUIRE(straight.exit_code == 0);

  // Start the same sweep in its own process group, kill the group once the second point has
  // checkpointed once (at step 5 of 60).
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setpgid(0, 0);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1), dup2(devnull, 2);
    execl(MUONLAB_BINARY, MUONLAB_BINARY, "sweep", dir.str("s.yaml").c_str(), "--out",
          dir.str("killed").c_str(), (char*)nullptr);
    _exit(127);
  }
  setpgid(pid, pid);
  const fs::path second = dir.path() / "killed" / "lr=0.003,seed=0" / "checkpoints";
  bool killed = false;
  auto has_checkpoint = [&] {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(second, ec))
      if (entry.path().filename().string().rfind("step_", 0) == 0) return true;
    return false;
  };
  for (int i = 0; i < 3600 && !killed; ++i) {  // up to 3 minutes (sanitizer builds are slow)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (has_checkpoint()) {
      kill(-pid, SIGKILL);
      killed = true;
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(killed);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto before = muonlab::read_index(dir.str("killed"));
  REQUIRE(before.size() == 2);
  CHECK(before[0].status == "done");
  CHECK(before[1].status == "running");

  auto resumed = run_muonlab("sweep " + dir.str("s.yaml") + " --out " + dir.str("killed"));
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK_THAT(resumed.output, Contains("started  lr=0.003,seed=0"));
  CHECK_THAT(resumed.output, !Contains("started  lr=0.001,seed=0"));
  for (const auto& e : muonlab::read_index(dir.str("killed"))) CHECK(e.status == "done");
  // The killed point continued from its checkpoint rather than starting over.
  CHECK_THAT(read_file(dir.path() / "killed" / "lr=0.003,seed=0" / "train.log"),
             Contains("resumed from"));
  for (const char* point : {"lr=0.001,seed=0", "lr=0.003,seed=0"}) {
    auto a = train_losses(dir.str("straight/") + point);
    auto b = train_losses(dir.str("killed/") + point);
    CHECK(a.size() == 60);
    CHECK(a == b);
  }
}

TEST_CASE("SIGTERM stops a sweep: the running point checkpoints, the rest wait, exit 130") {
  TempDir dir;
  write_file(dir.path() / "s.yaml",
             // Long enough that the first point is still training when the signal arrives,
             // however fast a step runs (60 steps once finished inside the 50 ms poll).
             tiny_sweep("grid: {optim.lr: [0.001, 0.003], seed: [0]}\n", 400));
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1), dup2(devnull, 2);
    execl(MUONLAB_BINARY, MUONLAB_BINARY, "sweep", dir.str("s.yaml").c_str(), "--out",
          dir.str("out").c_str(), (char*)nullptr);
    _exit(127);
  }
  const fs::path first = dir.path() / "out" / "lr=0.001,seed=0" / "checkpoints";
  bool signalled = false;
  for (int i = 0; i < 3600 && !signalled; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(first, ec))
      if (entry.path().filename().string().rfind("step_", 0) == 0) signalled = true;
  }
  REQUIRE(signalled);
  kill(pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 1200 && waitpid(pid, &status, WNOHANG) == 0; ++i)  // at most 2 minutes
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (waitpid(pid, &status, WNOHANG) == 0) kill(pid, SIGKILL), waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  auto index = muonlab::read_index(dir.str("out"));
  REQUIRE(index.size() == 2);
  INFO("first point's error: " << index[0].error);
  CHECK(index[0].status == "interrupted");
  CHECK(index[1].status == "interrupted");
  CHECK_FALSE(fs::exists(dir.path() / "out" / "lr=0.003,seed=0" / "checkpoints"));
  auto again = run_muonlab("sweep " + dir.str("s.yaml") + " --out " + dir.str("out"));
  INFO(again.output);
  CHECK(again.exit_code == 0);
  for (const auto& e : muonlab::read_index(dir.str("out"))) CHECK(e.status == "done");
}
