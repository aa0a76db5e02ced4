// `model.kind: assoc_memory` end to end through the CLI: the CI-sized AM-1 (exact Muon learns the
// tail as fast as the head, GD does not), bucket records every step, exact resume of a minibatch
// run (its sampled queries, the optimizer state and the steps-to-threshold bookkeeping), a sweep
// of it and `compare` showing the per-bucket steps (and drawing the bucket figures), and the
// config errors of the kind.
#include <catch2/catch.hpp>

#include "tests/run_fixture.h"
#include "tests/test_util.h"

using Catch::Matchers::Contains;
using muonlab::test::numbers_of;
using muonlab::test::read_file;
using muonlab::test::records;
using muonlab::test::run_muonlab;
using muonlab::test::source_path;
using muonlab::test::TempDir;
using muonlab::test::write_file;

namespace {

muonlab::test::CommandResult train_assoc(const std::string& out_dir, const std::string& extra) {
  return run_muonlab("train " + source_path("configs/assoc/base.yaml") +
                     " --set threads=2 --set train.out_dir=" + out_dir + " --quiet " + extra);
}

nlohmann::json final_buckets(const std::string& run_dir) {
  auto all = records(run_dir, "buckets");
  REQUIRE(!all.empty());
  return all.back();
}

double ratio_of(const nlohmann::json& record) {
  REQUIRE(record["tail_head_ratio"].is_number());
  return record["tail_head_ratio"].get<double>();
}

}  // namespace

TEST_CASE("AM-1 through the CLI: exact Muon's tail/head ratio <= 1.25, GD's >= 10", "[slow]") {
  TempDir runs;
  auto muon = train_assoc(runs.str("muon"), "--set train.steps=12");
  INFO(muon.output);
  REQUIRE(muon.exit_code == 0);
  auto gd =
      train_assoc(runs.str("gd"), "--set optim.kind=sgd --set optim.lr=100 --set train.steps=400");
  INFO(gd.output);
  REQUIRE(gd.exit_code == 0);

  auto m = final_buckets(runs.str("muon")), g = final_buckets(runs.str("gd"));
  CHECK(ratio_of(m) <= 1.25);
  CHECK(ratio_of(g) >= 10);
  CHECK(m["steps_to_threshold"][0] == 8);  // the reference's 8 steps at lr 1
  // One buckets record per step, head first, 16 frequency groups.
  auto every = records(runs.str("muon"), "buckets");
  REQUIRE(every.size() == 13);  // steps 0..12
  CHECK(every[5]["buckets"].size() == 16);
  CHECK(every[0]["loss"].get<double>() == Approx(std::log(256.0)));
  // The log says what the record says.
  CHECK_THAT(read_file(runs.path() / "muon" / "train.log"),
             Contains("steps to bucket excess < 0.1") && Contains("tail/head 1.00"));
  // The theory defaults: constant lr, no clipping, W on the main optimizer.
  auto config = read_file(runs.path() / "gd" / "config.yaml");
  CHECK_THAT(config, Contains("grad_clip: 0") && Contains("kind: constant"));
}

TEST_CASE("an assoc_memory minibatch run resumes exactly") {
  TempDir runs;
  const std::string setup =
      "--set model.grad_mode=minibatch --set model.label_noise=0.2 --set train.batch_size=256 "
      "--set model.K=64 --set optim.momentum=0.9 --set train.steps=30 --set train.ckpt_every=10 "
      "--set train.spectral_every=10";
  auto straight = train_assoc(runs.str("straight"), setup);
  INFO(straight.output);
  REQUIRE(straight.exit_code == 0);
  auto first = train_assoc(runs.str("resumed"), setup + " --stop-after 17");
  REQUIRE(first.exit_code == 0);
  auto rest = train_assoc(runs.str("resumed"), setup + " --resume");
  INFO(rest.output);
  REQUIRE(rest.exit_code == 0);
  CHECK(numbers_of(runs.str("resumed")) == numbers_of(runs.str("straight")));
  CHECK(final_buckets(runs.str("resumed"))["steps_to_threshold"] ==
        final_buckets(runs.str("straight"))["steps_to_threshold"]);
}

TEST_CASE("a sweep of assoc_memory runs, compared per frequency bucket") {
  TempDir dir;
  write_file(dir.path() / "sweep.yaml",
             "base: " + source_path("configs/assoc/base.yaml") +
                 "\nset: {train.steps: 20, model.K: 64}\n"
                 "zip:\n  optim.kind: [muon, muon, sgd, sgd]\n  optim.lr: [0.5, 1.0, 30, 100]\n"
                 "group_by: optim.kind\n");
  auto sweep =
      run_muonlab("sweep " + dir.str("sweep.yaml") + " --out " + dir.str("out") + " --jobs 2");
  INFO(sweep.output);
  REQUIRE(sweep.exit_code == 0);
  CHECK_THAT(sweep.output, Contains("4 of 4 points done, 0 failed"));
  auto compare =
      run_muonlab("compare " + dir.str("out") + " --out " + dir.str("report") + " --plots");
  INFO(compare.output);
  REQUIRE(compare.exit_code == 0);
  CHECK_THAT(compare.output, Contains("steps to bucket excess loss < 0.1"));
  CHECK_THAT(compare.output, Contains("kind=muon,lr=1 "));
  auto summary = nlohmann::json::parse(read_file(dir.path() / "report" / "summary.json"));
  int with_buckets = 0;
  for (const auto& run : summary["runs"]) {
    REQUIRE(run["buckets"].is_object());
    ++with_buckets;
    if (run["name"] == "kind=muon,lr=1") CHECK(run["buckets"]["tail_head_ratio"] == 1.0);
  }
  CHECK(with_buckets == 4);
  CHECK_THAT(read_file(dir.path() / "report" / "summary.md"), Contains("## Frequency buckets"));
  for (const char* figure : {"buckets.png", "loss_curves.png"})
    CHECK(std::filesystem::file_size(dir.path() / "report" / figure) > 10000);
}

TEST_CASE("assoc_memory config errors are one line naming the key") {
  TempDir runs;
  auto data = train_assoc(runs.str("a"), "--set data.train=x.bin");
  CHECK(data.exit_code != 0);
  CHECK_THAT(data.output, Contains("data") && Contains("generates its own data"));
  auto bf16 = train_assoc(runs.str("b"), "--set train.precision=bf16");
  CHECK(bf16.exit_code != 0);
  CHECK_THAT(bf16.output, Contains("train.precision"));
  auto unknown = train_assoc(runs.str("c"), "--set model.kind=hopfield");
  CHECK(unknown.exit_code != 0);
  CHECK_THAT(unknown.output, Contains("model.kind") && Contains("assoc_memory"));
  auto bad_d = train_assoc(runs.str("d"), "--set model.d=100");
  CHECK(bad_d.exit_code != 0);
  CHECK_THAT(bad_d.output, Contains("model.d"));
}
