// `muonlab compare` on run directories with constructed metrics: best lr, plateau width (both
// deltas) and the edge-of-grid flag, mean +- std over seeds, steps-to-target, Welch's p against
// textbook values, crashed / partial / val-less runs listed, sweep directories read with their
// failed points, and --plots writing valid PNGs that summary.md references exactly.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "src/config/config.h"
#include "src/report/compare.h"
#include "src/report/report_files.h"
#include "src/report/welch.h"
#include "src/sweep/sweep_index.h"
#include "tests/test_util.h"

using Catch::Matchers::Contains;
using muonlab::test::read_file;
using muonlab::test::run_muonlab;
using muonlab::test::run_shell;
using muonlab::test::TempDir;
using muonlab::test::write_file;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct FakeRun {
  std::string kind = "muon";
  double lr = 0.02;
  int64_t seed = 0;
  int64_t planned_steps = 100;
  std::vector<std::pair<int64_t, double>> val;  // step -> loss
  int64_t last_train_step = 100;
  bool spectral = true;
  bool truncated_last_line = false;
};

// A run directory as the trainer would leave it: config.yaml and metrics.jsonl.
void write_run(const fs::path& dir, const FakeRun& run) {
  fs::create_directories(dir);
  write_file(dir / "config.yaml",
             "seed: " + std::to_string(run.seed) + "\noptim:\n  kind: " + run.kind +
                 "\n  lr: " + std::to_string(run.lr) +
                 "\ntrain:\n  steps: " + std::to_string(run.planned_steps) + "\n");
  std::string lines;
  for (int64_t step = 1; step <= run.last_train_step; ++step)
    lines += json({{"kind", "train"},
                   {"step", step},
                   {"loss", 5.0},
                   {"tokens", step * 1000},
                   {"tok_per_s", 1000.0}})
                 .dump() +
             "\n";
  for (const auto& [step, loss] : run.val)
    lines +=
        json({{"kind", "val"}, {"step", step}, {"loss", loss}, {"ppl", std::exp(loss)}}).dump() +
        "\n";
  if (run.spectral) {
    json matrices = json::array();
    for (int layer = 0; layer < 2; ++layer)
      for (const char* m :
           {"attn.wq", "attn.wk", "attn.wv", "attn.wo", "mlp.w1", "mlp.w2", "mlp.w3"}) {
        std::string name = "blocks." + std::to_string(layer) + "." + m;
        double rank = std::string(m).rfind("attn", 0) == 0 ? 10.0 + layer : 20.0 + layer;
        matrices.push_back({{"name", name},
                            {"shape", {16, 16}},
                            {"stable_rank", rank},
                            {"eff_rank", 12.0},
                            {"update", {{"stable_rank", 3.0}, {"eff_rank", 8.0}}}});
      }
    matrices.push_back({{"name", "tok_emb"}, {"shape", {64, 16}}, {"stable_rank", 99.0}});
    for (int64_t step : {int64_t{0}, run.last_train_step}) {
      json record = {
          {"kind", "spectral"}, {"step", step}, {"method", "svd"}, {"matrices", matrices}};
      if (step == 0)
        for (auto& m : record["matrices"]) m.erase("update");
      lines += record.dump() + "\n";
    }
  }
  if (run.truncated_last_line) lines += "{\"kind\": \"train\", \"st";
  write_file(dir / "metrics.jsonl", lines);
}

const muonlab::GroupStats& group(const muonlab::Comparison& c, const std::string& name) {
  for (const auto& g : c.groups)
    if (g.name == name) return g;
  FAIL("no group " << name);
  throw std::logic_error("unreachable");
}

const muonlab::RunSummary& run_named(const muonlab::Comparison& c, const std::string& suffix) {
  for (const auto& r : c.runs)
    if (r.run_dir.size() >= suffix.size() &&
        r.run_dir.compare(r.run_dir.size() - suffix.size(), suffix.size(), suffix) == 0)
      return r;
  FAIL("no run " << suffix);
  throw std::logic_error("unreachable");
}

// Two optimizers on log grids; muon's losses are a valley at 0.02, adamw's fall to the grid's
// lower edge. Seeds 1 and 2 only at each best lr, as a two-stage sweep leaves them.
std::vector<std::string> write_study(const TempDir& dir) {
  std::vector<std::string> dirs;
  auto add = [&](const std::string& name, FakeRun run) {
    write_run(dir.path() / name, run);
    dirs.push_back(dir.str(name));
  };
  const std::vector<std::pair<double, double>> muon = {
      {0.005, 3.90}, {0.01, 3.79}, {0.02, 3.78}, {0.04, 3.795}, {0.08, 3.85}};
  for (auto [lr, loss] : muon)
    add("muon-" + std::to_string(lr),
        {"muon", lr, 0, 100, {{0, 8.3}, {50, loss + 0.2}, {100, loss}}});
  add("muon-s1", {"muon", 0.02, 1, 100, {{0, 8.3}, {50, 3.99}, {100, 3.77}}});
  add("muon-s2", {"muon", 0.02, 2, 100, {{0, 8.3}, {50, 3.97}, {100, 3.79}}});
  const std::vector<std::pair<double, double>> adamw = {
      {0.001, 3.95}, {0.003, 3.985}, {0.01, 4.20}};
  for (auto [lr, loss] : adamw)
    add("adamw-" + std::to_string(lr), {"adamw", lr, 0, 100, {{0, 8.3}, {100, loss}}});
  add("adamw-s1", {"adamw", 0.001, 1, 100, {{0, 8.3}, {100, 3.96}}});
  add("adamw-s2", {"adamw", 0.001, 2, 100, {{0, 8.3}, {100, 3.97}}});
  return dirs;
}

}  // namespace

TEST_CASE("Welch's t-test and the t distribution match textbook values") {
  CHECK(muonlab::student_t_two_sided_p(2.228, 10) == Approx(0.05).margin(2e-4));
  CHECK(muonlab::student_t_two_sided_p(2.0, 10) == Approx(0.0734).margin(2e-4));
  CHECK(muonlab::student_t_two_sided_p(0.0, 5) == Approx(1.0));
  CHECK(muonlab::student_t_two_sided_p(12.706, 1) == Approx(0.05).margin(2e-4));
  // a = {1, 2, 3, 4}, b = {3, 4, 5, 6, 7}: means 2.5 / 5, variances 5/3 and 2.5.
  auto r = muonlab::welch_t_test({1, 2, 3, 4}, {3, 4, 5, 6, 7});
  REQUIRE(r.valid);
  const double se = std::sqrt(5.0 / 3.0 / 4 + 2.5 / 5);
  CHECK(r.t == Approx(-2.5 / se));
  const double va = 5.0 / 3.0 / 4, vb = 2.5 / 5;
  CHECK(r.dof == Approx((va + vb) * (va + vb) / (va * va / 3 + vb * vb / 4)));
  CHECK(r.p == Approx(muonlab::student_t_two_sided_p(r.t, r.dof)));
  CHECK(r.p > 0.01);
  CHECK(r.p < 0.05);
  CHECK_FALSE(muonlab::welch_t_test({1.0}, {2.0, 3.0}).valid);  // one seed: n/a
}

TEST_CASE("compare: best lr, plateau widths, edge flag and seed statistics") {
  TempDir dir;
  muonlab::CompareOptions options;
  options.inputs = write_study(dir);
  options.target = 3.85;
  auto c = muonlab::build_comparison(options);
  REQUIRE(c.group_by == "optim.kind");
  REQUIRE(c.groups.size() == 2);

  const auto& muon = group(c, "muon");
  CHECK(muon.best_lr == Approx(0.02));
  CHECK_FALSE(muon.edge);
  // Within 0.02 nats of 3.78: 0.01 (3.79) and 0.04 (3.795), not 0.005 / 0.08.
  CHECK(muon.plateau_nats.lr_min == Approx(0.01));
  CHECK(muon.plateau_nats.lr_max == Approx(0.04));
  CHECK(muon.plateau_nats.width == Approx(std::log10(4.0)));
  // Within 1 % (3.8178): also 0.01 and 0.04.
  CHECK(muon.plateau_relative.width == Approx(std::log10(4.0)));
  // The seeds at the best lr: 3.78, 3.77, 3.79.
  REQUIRE(muon.final_at_best.size() == 3);
  CHECK(muon.final_mean == Approx(3.78));
  CHECK(muon.final_std == Approx(0.01));
  CHECK(muon.is_best);

  const auto& adamw = group(c, "adamw");
  CHECK(adamw.best_lr == Approx(0.001));
  CHECK(adamw.edge);                                      // the smallest lr tried: not bracketed
  CHECK(adamw.plateau_nats.width == Approx(0.0));         // 0.003 is 0.035 nats worse
  CHECK(adamw.plateau_relative.lr_max == Approx(0.003));  // 3.985 <= 3.95 * 1.01
  CHECK(adamw.final_mean == Approx(3.96));
  CHECK(adamw.gap == Approx(0.18));
  REQUIRE(adamw.test.valid);
  CHECK(adamw.test.p < 1e-3);

  // Steps to target: muon at 0.02 first reaches 3.85 at step 100 (3.98 at 50), tokens 100k.
  const auto& best = run_named(c, "muon-0.020000");
  CHECK(best.target_step == 100);
  CHECK(best.target_tokens == 100000);
  CHECK(run_named(c, "adamw-0.010000").target_step == -1);
  CHECK(best.stable_rank.at("attn") == Approx(10.5));
  CHECK(best.stable_rank.at("mlp") == Approx(20.5));
  CHECK(best.stable_rank.at("q") == Approx(10.5));
  CHECK(best.stable_rank.at("all") == Approx((4 * 10.5 + 3 * 20.5) / 7));
  CHECK(best.update_stable_rank == Approx(3.0));

  auto text = muonlab::format_comparison(c);
  CHECK_THAT(text, Contains("0.001 (edge)"));
  CHECK_THAT(text, Contains("adamw's best lr 0.001 is at the edge of its grid"));
  CHECK_THAT(text, Contains("not reached"));
}

TEST_CASE("compare: extra seeds at one lr do not move the best lr") {
  TempDir dir;
  // Seed 0: 0.01 is best; seeds 1 and 2 (only at 0.02) are worse than 0.02's seed 0.
  write_run(dir.path() / "a", {"muon", 0.01, 0, 10, {{10, 3.70}}, 10, false});
  write_run(dir.path() / "b", {"muon", 0.02, 0, 10, {{10, 3.75}}, 10, false});
  write_run(dir.path() / "c", {"muon", 0.02, 1, 10, {{10, 3.60}}, 10, false});
  write_run(dir.path() / "d", {"muon", 0.02, 2, 10, {{10, 3.60}}, 10, false});
  muonlab::CompareOptions options;
  options.inputs = {dir.str("a"), dir.str("b"), dir.str("c"), dir.str("d")};
  auto c = muonlab::build_comparison(options);
  CHECK(c.groups.at(0).best_lr == Approx(0.01));
  CHECK(c.groups.at(0).selection_seeds == std::vector<int64_t>{0});
}

TEST_CASE("compare: crashed, partial and val-less runs are listed with their status") {
  TempDir dir;
  write_run(dir.path() / "done", {"muon", 0.02, 0, 10, {{0, 6.0}, {10, 4.0}}, 10, false});
  write_run(dir.path() / "stopped", {"muon", 0.04, 0, 10, {{0, 6.0}}, 6, false, true});
  write_run(dir.path() / "noval", {"muon", 0.08, 0, 10, {}, 3, false});
  fs::create_directories(dir.path() / "empty");
  write_file(dir.path() / "empty" / "config.yaml", "optim: {kind: muon, lr: 0.1}\n");
  muonlab::CompareOptions options;
  options.inputs = {dir.str("done"), dir.str("stopped"), dir.str("noval"), dir.str("empty")};
  auto c = muonlab::build_comparison(options);
  CHECK(run_named(c, "done").status == "done");
  CHECK(run_named(c, "stopped").status == "stopped");
  CHECK(run_named(c, "stopped").steps == 6);
  CHECK(run_named(c, "noval").status == "no val");
  CHECK(run_named(c, "empty").status == "no metrics");
  // Only the finished run counts; 0.02 is then the only lr with a loss.
  CHECK(c.groups.at(0).best_lr == Approx(0.02));
  CHECK(c.groups.at(0).done == 1);
  auto text = muonlab::format_comparison(c);
  CHECK_THAT(text, Contains("stopped (6/10)"));
  CHECK_THAT(text, Contains("no val"));

  auto r = run_muonlab("compare " + dir.str("nothing-here"));
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Contains("neither a run directory"));
}

TEST_CASE("compare: a sweep directory contributes every point, failed ones with their error") {
  TempDir dir;
  write_run(dir.path() / "lr=0.01", {"muon", 0.01, 0, 10, {{10, 3.9}}, 10, false});
  fs::create_directories(dir.path() / "lr=0.02");
  muonlab::IndexEntry ok, bad;
  ok.point = "lr=0.01", ok.status = "done", ok.variant = "fast", ok.run_dir = dir.str("lr=0.01");
  bad.point = "lr=0.02", bad.status = "failed", bad.variant = "fast",
  bad.run_dir = dir.str("lr=0.02");
  bad.error = "muonlab: error: shard x.bin: cannot open";
  muonlab::write_index(dir.str(), {ok, bad});
  muonlab::CompareOptions options;
  options.inputs = {dir.str()};
  options.group_by = "variant";
  auto c = muonlab::build_comparison(options);
  REQUIRE(c.runs.size() == 2);
  CHECK(c.runs[0].name == "lr=0.01");
  CHECK(c.runs[0].group == "fast");
  CHECK(c.runs[1].status == "failed");
  CHECK_THAT(muonlab::format_comparison(c), Contains("cannot open"));
}

namespace {

// Width and height from a PNG's IHDR chunk; 0 x 0 if the signature is wrong.
std::pair<uint32_t, uint32_t> png_size(const fs::path& path) {
  std::string bytes = read_file(path);
  if (bytes.size() < 24 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return {0, 0};
  auto be32 = [&](size_t at) {
    return (uint32_t(uint8_t(bytes[at])) << 24) | (uint32_t(uint8_t(bytes[at + 1])) << 16) |
           (uint32_t(uint8_t(bytes[at + 2])) << 8) | uint32_t(uint8_t(bytes[at + 3]));
  };
  return {be32(16), be32(20)};
}

// The study's run directories as compare arguments; fails the test without matplotlib.
std::string plot_inputs(const std::vector<std::string>& inputs) {
  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0)
    FAIL("python3-matplotlib is missing; tools/setup.sh installs it");
  std::string args;
  for (const auto& d : inputs) args += " " + d;
  return args;
}

}  // namespace

TEST_CASE("compare --plots writes valid PNGs and summary.md references exactly those") {
  TempDir dir;
  auto inputs = write_study(dir);
  const std::string args = plot_inputs(inputs);
  auto r = run_muonlab("compare" + args + " --out " + dir.str("report") + " --plots");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const std::string md = read_file(dir.path() / "report" / "summary.md");
  int pngs = 0;
  for (const auto& entry : fs::directory_iterator(dir.path() / "report")) {
    if (entry.path().extension() != ".png") continue;
    ++pngs;
    auto [width, height] = png_size(entry.path());
    INFO(entry.path());
    CHECK(width >= 600);
    CHECK(height >= 300);
    CHECK(fs::file_size(entry.path()) > 10000);
    CHECK_THAT(md, Contains("](" + entry.path().filename().string() + ")"));
  }
  // val loss, lr sweep, a heatmap per group, stable rank, effective rank / entropy; no spectra
  // (no singular values stored), which is named as skipped.
  CHECK(pngs == 6);
  CHECK_FALSE(fs::exists(dir.path() / "report" / "spectra.png"));
  CHECK_THAT(md, Contains("not drawn: spectra"));
  size_t embedded = 0;
  for (size_t at = md.find("]("); at != std::string::npos; at = md.find("](", at + 1)) ++embedded;
  CHECK(embedded == static_cast<size_t>(pngs));
  auto csv = read_file(dir.path() / "report" / "summary.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 1 + static_cast<long>(inputs.size()));
  auto summary = json::parse(read_file(dir.path() / "report" / "summary.json"));
  CHECK(summary["groups"].size() == 2);
}

TEST_CASE("compare --plots: a failing plot script leaves a summary.md without any figure") {
  TempDir dir;
  auto inputs = write_study(dir);
  const std::string args = plot_inputs(inputs);
  // A report with figures from an earlier, successful run...
  fs::create_directories(dir.path() / "report");
  write_file(dir.path() / "report" / "summary.md", "![old](val_loss.png)\n");
  write_file(dir.path() / "broken.py", "import sys\nsys.exit('plot: out of ink')\n");
  auto r =
      run_shell("MUONLAB_PLOT_SCRIPT=" + dir.str("broken.py") + " " + std::string(MUONLAB_BINARY) +
                " compare" + args + " --out " + dir.str("report") + " --plots");
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Contains("tools/plot.py failed: plot: out of ink"));
  // ...is replaced by this run's tables, naming why there are no figures.
  const std::string md = read_file(dir.path() / "report" / "summary.md");
  CHECK(md.find("](") == std::string::npos);
  CHECK_THAT(md, Contains("not drawn: every figure"));
  CHECK_THAT(md, Contains(fs::path(inputs[0]).filename().string()));
}

TEST_CASE("the bucket table lines up each run's own head, middle and tail when counts differ") {
  muonlab::Comparison c;
  muonlab::RunSummary groups, octaves, plain;
  groups.name = "sixteen";
  groups.bucket_steps = {5, 16, 30, 46, 65, 85, 108, 132, 157, 184, 213, 242, 273, 305, 339, 373};
  groups.bucket_threshold = 0.1, groups.tail_head_ratio = 74.6, groups.final_excess = 1e-3;
  octaves.name = "seven";
  octaves.bucket_steps = {2, 4, 9, 20, 41, 80, -1};
  octaves.bucket_threshold = 0.05, octaves.tail_head_ratio = NAN, octaves.final_excess = 0.2;
  plain.name = "llama-run";  // no buckets: not in the table
  c.runs = {groups, octaves, plain};
  const std::string text = muonlab::format_comparison(c);
  const std::string table = text.substr(text.find("steps to bucket excess loss"));
  CHECK_THAT(table, Contains("threshold") && Contains("middle") && Contains("tail"));
  // Each run's own tail: 373 for the 16 groups, not reached ("-") for the 7 octaves.
  const std::string sixteen = table.substr(table.find("sixteen"));
  CHECK_THAT(sixteen.substr(0, sixteen.find('\n')),
             Contains("5") && Contains("132") && Contains("373") && Contains("74.60"));
  const std::string seven = table.substr(table.find("seven"));
  CHECK_THAT(seven.substr(0, seven.find('\n')),
             Contains("0.05") && Contains(" 20 ") && Contains(" - "));
  CHECK(table.find("llama-run") == std::string::npos);

  c.runs = {groups, groups};  // same count and threshold: every bucket is a column
  const std::string uniform = muonlab::format_comparison(c);
  CHECK_THAT(uniform, Contains("steps to bucket excess loss < 0.1") && Contains("b8"));

  // A facts-corpus run counts steps until accuracy >= its threshold and shows its accuracy.
  muonlab::RunSummary facts;
  facts.name = "facts-run";
  facts.bucket_steps = {250, 400, 550, 1200};
  facts.bucket_metric = "accuracy", facts.bucket_threshold = 0.95, facts.final_accuracy = 0.987;
  facts.tail_head_ratio = 4.8;
  c.runs = {facts};
  CHECK_THAT(muonlab::format_comparison(c),
             Contains("steps to bucket accuracy >= 0.95") && Contains("0.987"));
  c.runs = {groups, facts};  // mixed: each row names its own threshold
  const std::string mixed = muonlab::format_comparison(c);
  const std::string bucket_part = mixed.substr(mixed.find("steps to bucket"));
  const std::string facts_row = bucket_part.substr(bucket_part.find("facts-run"));
  CHECK_THAT(facts_row.substr(0, facts_row.find('\n')),
             Contains(">= 0.95") && Contains("1200") && Contains("4.80"));
}
