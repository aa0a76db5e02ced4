// Config loading: unknown keys with suggestions, wrong types, missing files, base inheritance and
// cycles, syntax errors, --set overrides, validation and the resolved config; through the library
// and through the CLI (non-zero exit, key path in the one-line message).
#include <catch2/catch.hpp>

#include "src/config/config.h"
#include "src/config/number_text.h"
#include "tests/test_util.h"

using namespace muonlab;
using Catch::Matchers::Contains;
using muonlab::test::TempDir;
using muonlab::test::write_file;

namespace {

const char* kMinimal = R"(
model: {vocab_size: 64, d_model: 32, n_layers: 1, n_heads: 2, n_kv_heads: 1, seq_len: 16}
data: {train: a.bin, val: b.bin}
train: {steps: 10}
)";

std::string write_config(const TempDir& dir, const std::string& name, const std::string& text) {
  write_file(dir.path() / name, text);
  return dir.str(name);
}

}  // namespace

TEST_CASE("a minimal config loads with defaults filled in") {
  TempDir dir;
  RunConfig cfg = load_run_config(write_config(dir, "c.yaml", kMinimal));
  CHECK(cfg.model.llama.d_model == 32);
  CHECK(cfg.train.steps == 10);
  CHECK(cfg.train.batch_size == 16);
  CHECK(cfg.optim.kind == "adamw");
  CHECK_THAT(cfg.resolved_yaml, Contains("keep_last: 3"));
  CHECK_THAT(cfg.resolved_yaml, Contains("d_model: 32"));
}

TEST_CASE("the resolved config reloads to itself") {
  TempDir dir;
  RunConfig cfg = load_run_config(write_config(dir, "c.yaml", kMinimal), {"optim.kind=muon"});
  RunConfig again = parse_run_config(YAML::Load(cfg.resolved_yaml), "resolved");
  CHECK(again.resolved_yaml == cfg.resolved_yaml);
  CHECK(again.optim.kind == "muon");
  CHECK(again.optim.lr == Approx(0.02));  // muon's default lr
}

TEST_CASE("unknown keys name the full path and suggest the nearest valid key") {
  TempDir dir;
  auto path = write_config(dir, "c.yaml", std::string(kMinimal) + "optim: {adamw: {lrr: 0.1}}\n");
  CHECK_THROWS_WITH(load_run_config(path),
                    Contains("optim.adamw.lrr: unknown key; did you mean 'optim.adamw.lr'?"));
  CHECK_THROWS_WITH(load_run_config(path), Contains(path));
  auto top = write_config(dir, "d.yaml", std::string(kMinimal) + "sead: 3\n");
  CHECK_THROWS_WITH(load_run_config(top), Contains("sead: unknown key; did you mean 'seed'?"));
}

TEST_CASE("wrong types name the key and the expected type") {
  TempDir dir;
  auto path = write_config(dir, "c.yaml", std::string(kMinimal) + "seed: abc\n");
  CHECK_THROWS_WITH(load_run_config(path), Contains("seed: expected an integer, got 'abc'"));
  CHECK_THROWS_WITH(load_run_config(path, {"seed=1", "train.steps=1.5"}),
                    Contains("train.steps: expected an integer, got '1.5'"));
  CHECK_THROWS_WITH(load_run_config(path, {"seed=1", "model.tie_embeddings=maybe"}),
                    Contains("model.tie_embeddings: expected true or false"));
  CHECK_THROWS_WITH(load_run_config(path, {"seed=1", "model=3"}),
                    Contains("model: expected a mapping"));
}

TEST_CASE("missing data paths, missing files and syntax errors are reported") {
  TempDir dir;
  auto no_data = write_config(dir, "c.yaml", "train: {steps: 3}\n");
  CHECK_THROWS_WITH(load_run_config(no_data), Contains("data.train: missing; it is required"));
  CHECK_THROWS_WITH(load_run_config(dir.str("nope.yaml")), Contains("nope.yaml: cannot open"));
  auto bad = write_config(dir, "bad.yaml", "model:\n  d_model: [1, 2\ntrain: {}\n");
  CHECK_THROWS_WITH(load_run_config(bad), Contains("YAML syntax error at line"));
}

TEST_CASE("base: files merge underneath, detect cycles and missing bases") {
  TempDir dir;
  write_config(dir, "base.yaml", std::string(kMinimal) + "seed: 7\n");
  auto child = write_config(dir, "child.yaml", "base: base.yaml\ntrain: {steps: 99}\n");
  RunConfig cfg = load_run_config(child);
  CHECK(cfg.seed == 7);
  CHECK(cfg.train.steps == 99);
  CHECK(cfg.model.llama.d_model == 32);  // nested maps merge key by key

  write_config(dir, "x.yaml", "base: y.yaml\n");
  auto y = write_config(dir, "y.yaml", "base: x.yaml\n");
  CHECK_THROWS_WITH(load_run_config(y), Contains("base: cycle"));
  auto orphan = write_config(dir, "o.yaml", "base: gone.yaml\n");
  CHECK_THROWS_WITH(load_run_config(orphan), Contains("base: file 'gone.yaml' not found"));
}

TEST_CASE("--set overrides are typed and checked like file keys") {
  TempDir dir;
  auto path = write_config(dir, "c.yaml", kMinimal);
  RunConfig cfg = load_run_config(path, {"train.steps=5", "optim.adamw.betas=[0.8, 0.9]"});
  CHECK(cfg.train.steps == 5);
  CHECK(cfg.optim.adamw.beta1 == Approx(0.8));
  CHECK_THROWS_WITH(load_run_config(path, {"train.stepz=5"}),
                    Contains("train.stepz: unknown key; did you mean 'train.steps'?"));
  CHECK_THROWS_WITH(load_run_config(path, {"train.steps"}), Contains("expected key.path=value"));
}

TEST_CASE("optim.kind selects sgd, signgd and lion with their keys") {
  TempDir dir;
  auto path = write_config(dir, "c.yaml", kMinimal);
  RunConfig lion = load_run_config(path, {"optim.kind=lion", "optim.betas=[0.9, 0.99]"});
  CHECK(lion.optim.kind == "lion");
  CHECK(lion.optim.beta2 == Approx(0.99));
  RunConfig sgd = load_run_config(path, {"optim.kind=sgd", "optim.momentum=0", "optim.lr=0.1"});
  CHECK(sgd.optim.kind == "sgd");
  CHECK(sgd.optim.momentum == 0);
  CHECK(sgd.optim.lr == Approx(0.1));
  RunConfig signgd = load_run_config(path, {"optim.kind=signgd"});
  CHECK(signgd.optim.kind == "signgd");
  CHECK(signgd.optim.momentum == Approx(0.95));
  CHECK_THROWS_WITH(load_run_config(path, {"optim.kind=lion", "optim.betas=[0.9, 1.0]"}),
                    Contains("optim.betas"));
}

TEST_CASE("out-of-range values are rejected with their key") {
  TempDir dir;
  auto path = write_config(dir, "c.yaml", kMinimal);
  CHECK_THROWS_WITH(load_run_config(path, {"model.n_heads=3"}), Contains("model.n_heads"));
  CHECK_THROWS_WITH(load_run_config(path, {"model.n_kv_heads=3", "model.n_heads=4"}),
                    Contains("model.n_kv_heads"));
  CHECK_THROWS_WITH(load_run_config(path, {"optim.lr=-1"}), Contains("optim.lr"));
  CHECK_THROWS_WITH(load_run_config(path, {"train.batch_size=0"}), Contains("train.batch_size"));
  CHECK_THROWS_WITH(load_run_config(path, {"optim.kind=sgdd"}), Contains("optim.kind"));
  CHECK_THROWS_WITH(load_run_config(path, {"schedule.kind=linear"}), Contains("schedule.kind"));
  CHECK_THROWS_WITH(load_run_config(path, {"optim.kind=muon", "optim.orthogonalizer=svd"}),
                    Contains("optim.orthogonalizer: unknown 'svd'"));
  CHECK_THROWS_WITH(load_run_config(path, {"optim.kind=muon", "optim.momentum_start=1.5"}),
                    Contains("optim.momentum_start"));
}

TEST_CASE("the CLI exits non-zero with one line naming the key") {
  TempDir dir;
  auto path = write_config(dir, "c.yaml", kMinimal);
  write_config(dir, "typo.yaml", "base: c.yaml\ntrain: {stpes: 3}\n");
  auto result = muonlab::test::run_muonlab("train " + dir.str("typo.yaml"));
  CHECK(result.exit_code != 0);
  CHECK_THAT(result.output, Contains("train.stpes: unknown key; did you mean 'train.steps'?"));
  CHECK(std::count(result.output.begin(), result.output.end(), '\n') == 1);

  auto missing = muonlab::test::run_muonlab("train " + dir.str("missing.yaml"));
  CHECK(missing.exit_code != 0);
  CHECK_THAT(missing.output, Contains("missing.yaml"));

  auto typed = muonlab::test::run_muonlab("train " + dir.str("c.yaml") + " --set seed=x");
  CHECK(typed.exit_code != 0);
  CHECK_THAT(typed.output, Contains("seed: expected an integer"));
}

TEST_CASE("the shipped configs load") {
  for (auto name : {"configs/tiny.yaml", "configs/kjv-adamw.yaml", "configs/kjv-muon.yaml",
                    "configs/kjv-muon-wsd.yaml"}) {
    INFO(name);
    RunConfig cfg = load_run_config(muonlab::test::source_path(name));
    CHECK(cfg.train.steps > 0);
  }
  auto adamw = load_run_config(muonlab::test::source_path("configs/kjv-adamw.yaml"));
  auto muon = load_run_config(muonlab::test::source_path("configs/kjv-muon.yaml"));
  CHECK(adamw.optim.kind == "adamw");
  CHECK(muon.optim.kind == "muon");
  CHECK(adamw.model.llama.d_model == muon.model.llama.d_model);
  CHECK(adamw.train.steps == muon.train.steps);
}

TEST_CASE("nearest_word suggests close keys only") {
  CHECK(nearest_word("lrr", {"lr", "betas", "eps"}) == "lr");
  CHECK(nearest_word("d_modle", {"d_model", "n_layers"}) == "d_model");
  CHECK(nearest_word("zzzzzzzz", {"lr", "eps"}).empty());
  CHECK(edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("optim.routes: rules from YAML, defaults in the resolved config, errors by index") {
  TempDir dir;
  auto path = write_config(dir, "c.yaml", std::string(kMinimal) + R"(
optim:
  kind: muon
  routes:
    - {match: "blocks.*.attn.*", ndim: 2, to: main}
    - {match: "*", to: adamw}
)");
  RunConfig cfg = load_run_config(path);
  REQUIRE(cfg.optim.routes.size() == 2);
  CHECK(cfg.optim.routes[0].match == "blocks.*.attn.*");
  CHECK(cfg.optim.routes[1].ndim == 0);

  RunConfig defaults = load_run_config(write_config(dir, "d.yaml", kMinimal));
  CHECK(defaults.optim.routes.size() == default_routes().size());
  CHECK_THAT(defaults.resolved_yaml, Contains("match: blocks.*"));

  auto typo = write_config(dir, "e.yaml",
                           std::string(kMinimal) + "optim: {routes: [{mach: x, to: main}]}\n");
  CHECK_THROWS_WITH(
      load_run_config(typo),
      Contains("optim.routes[0].mach: unknown key; did you mean 'optim.routes[0].match'?"));
  auto no_to =
      write_config(dir, "f.yaml", std::string(kMinimal) + "optim: {routes: [{match: x}]}\n");
  CHECK_THROWS_WITH(load_run_config(no_to), Contains("optim.routes[0].to: missing"));
  auto bad_type = write_config(dir, "g.yaml", std::string(kMinimal) + "optim: {routes: 3}\n");
  CHECK_THROWS_WITH(load_run_config(bad_type), Contains("optim.routes: expected a list"));
}

TEST_CASE("optim.schedules: per-group lr, momentum and weight-decay schedules from YAML") {
  TempDir dir;
  auto with = [&](const std::string& name, const std::string& extra) {
    return write_config(dir, name, std::string(kMinimal) + extra);
  };
  RunConfig cfg = load_run_config(with("c.yaml", R"(
schedule: {kind: cosine, warmup_steps: 5, min_lr_ratio: 0.1}
optim:
  kind: muon
  schedules:
    lr: {min_ratio: 0}
    momentum: {kind: constant, warmup_steps: 3, start_ratio: 0.9}
  adamw:
    schedules: {weight_decay: {kind: wsd, decay_fraction: 0.5, decay_shape: sqrt}}
)"));
  REQUIRE(cfg.optim.schedules.lr);
  CHECK(cfg.optim.schedules.lr->kind == "cosine");   // from `schedule`
  CHECK(cfg.optim.schedules.lr->warmup_steps == 5);  // from `schedule`
  CHECK(cfg.optim.schedules.lr->min_ratio == 0);     // overridden
  REQUIRE(cfg.optim.schedules.momentum);
  CHECK(cfg.optim.schedules.momentum->start_ratio == Approx(0.9));
  CHECK_FALSE(cfg.optim.schedules.weight_decay);  // constant
  REQUIRE(cfg.optim.adamw_schedules.weight_decay);
  CHECK(cfg.optim.adamw_schedules.weight_decay->decay_shape == "sqrt");
  CHECK_FALSE(cfg.optim.adamw_schedules.lr);  // follows `schedule`
  RunConfig again = parse_run_config(YAML::Load(cfg.resolved_yaml), "resolved");
  CHECK(again.resolved_yaml == cfg.resolved_yaml);
  // Without overrides nothing about them appears in the resolved config.
  RunConfig plain = load_run_config(with("p.yaml", ""));
  CHECK_THAT(plain.resolved_yaml, !Contains("schedules"));

  CHECK_THROWS_WITH(
      load_run_config(with("e.yaml", "optim: {schedules: {momentm: {warmup_steps: 2}}}\n")),
      Contains("optim.schedules.momentm: unknown key; did you mean 'optim.schedules.momentum'?"));
  CHECK_THROWS_WITH(
      load_run_config(with("f.yaml", "optim: {schedules: {lr: {min_lr_ratio: 0}}}\n")),
      Contains("optim.schedules.lr.min_lr_ratio: unknown key; did you mean "
               "'optim.schedules.lr.min_ratio'?"));
  CHECK_THROWS_WITH(
      load_run_config(with("g.yaml", "optim: {schedules: {weight_decay: {kind: step}}}\n")),
      Contains("optim.schedules.weight_decay.kind: unknown 'step'"));
  CHECK_THROWS_WITH(
      load_run_config(with("h.yaml", "optim: {adamw: {schedules: {lr: {warmup_steps: 50}}}}\n")),
      Contains("optim.adamw.schedules.lr.warmup_steps: 50 is larger than train.steps 10"));
  CHECK_THROWS_WITH(load_run_config(with("i.yaml", R"(
optim: {kind: muon, momentum_warmup_steps: 5, schedules: {momentum: {warmup_steps: 5}}}
)")),
                    Contains("set either it or optim.schedules.momentum"));
  // null removes a schedule (e.g. one inherited from a base file).
  RunConfig nulled = load_run_config(with("j.yaml", R"(
optim: {kind: muon, momentum_warmup_steps: 5, schedules: {momentum: null}}
)"));
  CHECK_FALSE(nulled.optim.schedules.momentum);
  CHECK(nulled.optim.momentum_warmup_steps == 5);
  // A bad run schedule is reported under its own key, not under the copy in optim.schedules.lr.
  CHECK_THROWS_WITH(load_run_config(with("k.yaml", R"(
schedule: {kind: cosin}
optim: {schedules: {lr: {min_ratio: 0}}}
)")),
                    Contains(": schedule.kind: unknown 'cosin'"));
  CHECK_THROWS_WITH(
      load_run_config(with("l.yaml", "optim: {betas: [0, 0.95], momentum_warmup_steps: 5}\n")),
      Contains("optim.betas: must be > 0 for a momentum warmup"));
}

TEST_CASE("numbers print as the shortest text that reads back to the same double") {
  CHECK(shortest_text(0.003) == "0.003");
  CHECK(shortest_text(1e-5) == "1e-05");
  CHECK(shortest_text(0.0003) == "0.0003");
  CHECK(shortest_text(10.0) == "10");
  CHECK(shortest_text(0.1 + 0.2) == "0.30000000000000004");
  CHECK(shortest_text(1e16) == "1e+16");
  CHECK(shortest_text(-2.5) == "-2.5");
  for (double v : {0.003, 1e-5, 0.95, 3.0e-4, 1.0 / 3.0, 6.02e23, 5e-324})
    CHECK(std::strtod(shortest_text(v).c_str(), nullptr) == v);

  TempDir dir;
  RunConfig cfg = load_run_config(write_config(dir, "c.yaml", kMinimal), {"optim.lr=0.003"});
  CHECK_THAT(cfg.resolved_yaml, Contains("lr: 0.003\n"));
  CHECK_THAT(cfg.resolved_yaml, Contains("norm_eps: 1e-05"));
  CHECK_THAT(cfg.resolved_yaml, Contains("betas: [0.9, 0.95]"));
  CHECK_THAT(cfg.resolved_yaml, !Contains("0000000"));
  RunConfig again = parse_run_config(YAML::Load(cfg.resolved_yaml), "resolved");
  CHECK(again.optim.lr == cfg.optim.lr);
  CHECK(again.model.llama.norm_eps == cfg.model.llama.norm_eps);
  // A config saved by an older muonlab (17 significant digits) compares equal key by key, so a
  // checkpoint written before this change still resumes.
  auto old_text =
      flatten_yaml(YAML::Load("optim: {lr: 0.0030000000000000001, betas: "
                              "[0.90000000000000002, 0.94999999999999996]}"));
  auto new_text = flatten_yaml(YAML::Load("optim: {lr: 0.003, betas: [0.9, 0.95]}"));
  CHECK(old_text == new_text);
}
