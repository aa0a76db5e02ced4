// Tests for the lr schedules (warmup, cosine, constant, wsd), their validation, and the optimizer
// registry (config validation and routing of parameters to groups).
#include <catch2/catch.hpp>
#include <cmath>

#include "optim/registry.h"
#include "optim/schedule.h"

using namespace muonlab;

namespace {

ScheduleConfig schedule(const std::string& kind, int64_t warmup, double min_ratio,
                        double decay_fraction = 0.2) {
  ScheduleConfig cfg;
  cfg.kind = kind;
  cfg.warmup_steps = warmup;
  cfg.min_ratio = min_ratio;
  cfg.decay_fraction = decay_fraction;
  return cfg;
}

std::vector<std::string> names(const Optimizer& part) {
  std::vector<std::string> out;
  for (const auto& p : part.groups()[0].params) out.push_back(p.name);
  return out;
}

std::vector<NamedParam> fake_model() {
  auto p = [](std::vector<int64_t> shape) { return torch::zeros(shape).set_requires_grad(true); };
  return {{"tok_emb", p({32, 8})},         {"blocks.0.attn.wq", p({8, 8})},
          {"blocks.0.attn_norm", p({8})},  {"blocks.0.mlp.w1", p({16, 8})},
          {"blocks.1.attn.wq", p({8, 8})}, {"final_norm", p({8})},
          {"lm_head", p({32, 8})}};
}

}  // namespace

TEST_CASE("warmup ramps linearly", "[schedule]") {
  const auto cfg = schedule("cosine", 4, 0.1);
  CHECK(schedule_multiplier(cfg, 0, 100) == Approx(0.25));
  CHECK(schedule_multiplier(cfg, 1, 100) == Approx(0.5));
  CHECK(schedule_multiplier(cfg, 3, 100) == Approx(1.0));
}

TEST_CASE("cosine goes from peak to min_lr_ratio", "[schedule]") {
  const auto cfg = schedule("cosine", 10, 0.1);
  CHECK(schedule_multiplier(cfg, 10, 111) == Approx(1.0));   // right after warmup
  CHECK(schedule_multiplier(cfg, 110, 111) == Approx(0.1));  // last step
  CHECK(schedule_multiplier(cfg, 60, 111) == Approx(0.55));  // halfway: 0.1 + 0.9 * 0.5
  // A quarter of the way: 0.1 + 0.9 * 0.5 * (1 + cos(pi / 4)).
  CHECK(schedule_multiplier(cfg, 35, 111) == Approx(0.1 + 0.45 * (1 + std::cos(M_PI / 4))));
  double previous = 2;
  for (int64_t s = 10; s < 111; ++s) {
    const double m = schedule_multiplier(cfg, s, 111);
    CHECK(m <= previous);
    previous = m;
  }
  CHECK(schedule_multiplier(schedule("cosine", 0, 0.0), 0, 50) == Approx(1.0));
  CHECK(schedule_multiplier(schedule("cosine", 0, 0.0), 49, 50) == Approx(0.0).margin(1e-12));
}

TEST_CASE("constant stays at the peak after warmup", "[schedule]") {
  const auto cfg = schedule("constant", 2, 0.1);
  CHECK(schedule_multiplier(cfg, 0, 10) == Approx(0.5));
  CHECK(schedule_multiplier(cfg, 2, 10) == Approx(1.0));
  CHECK(schedule_multiplier(cfg, 9, 10) == Approx(1.0));
}

TEST_CASE("wsd holds then decays linearly to min_lr_ratio", "[schedule]") {
  const auto cfg = schedule("wsd", 5, 0.0, 0.2);  // 100 steps: decay over steps 80..99
  CHECK(schedule_multiplier(cfg, 0, 100) == Approx(0.2));
  CHECK(schedule_multiplier(cfg, 5, 100) == Approx(1.0));
  CHECK(schedule_multiplier(cfg, 79, 100) == Approx(1.0));
  CHECK(schedule_multiplier(cfg, 80, 100) < 1.0);
  CHECK(schedule_multiplier(cfg, 89, 100) == Approx(0.5));
  CHECK(schedule_multiplier(cfg, 99, 100) == Approx(0.0).margin(1e-12));
  CHECK(schedule_multiplier(schedule("wsd", 0, 0.1, 0.5), 9, 10) == Approx(0.1));
}

TEST_CASE("schedule validation names the key", "[schedule]") {
  CHECK_NOTHROW(schedule("wsd", 0, 0.5, 1.0).validate());
  CHECK_THROWS_WITH(schedule("linear", 0, 0.1).validate(), Catch::Contains("schedule.kind") &&
                                                               Catch::Contains("cosine") &&
                                                               Catch::Contains("wsd"));
  CHECK_THROWS_WITH(schedule("cosine", -1, 0.1).validate(),
                    Catch::Contains("schedule.warmup_steps"));
  CHECK_THROWS_WITH(schedule("cosine", 0, 1.5).validate(),
                    Catch::Contains("schedule.min_lr_ratio"));
  CHECK_THROWS_WITH(schedule("wsd", 0, 0.1, 0.0).validate(),
                    Catch::Contains("schedule.decay_fraction"));
}

TEST_CASE("registry routes hidden matrices to the main optimizer", "[registry]") {
  const auto params = fake_model();
  CHECK(is_hidden_matrix(params[1]));
  CHECK_FALSE(is_hidden_matrix(params[0]));
  CHECK_FALSE(is_hidden_matrix(params[2]));

  OptimConfig cfg;
  cfg.kind = "muon";
  cfg.lr = 0.02;
  auto set = build_optimizer(cfg, params);
  REQUIRE(set->parts().size() == 2);
  const Optimizer& main = *set->parts()[0];
  const Optimizer& aux = *set->parts()[1];
  CHECK(main.kind() == "muon");
  CHECK(main.groups()[0].name == "muon");
  CHECK(names(main) ==
        std::vector<std::string>{"blocks.0.attn.wq", "blocks.0.mlp.w1", "blocks.1.attn.wq"});
  CHECK(main.groups()[0].base_lr == Approx(0.02));
  CHECK(main.groups()[0].lr == Approx(0.02));
  CHECK(aux.kind() == "adamw");
  CHECK(aux.groups()[0].name == "aux_adamw");
  CHECK(names(aux) ==
        std::vector<std::string>{"tok_emb", "blocks.0.attn_norm", "final_norm", "lm_head"});
  CHECK(aux.groups()[0].lr == Approx(cfg.adamw.lr));
  const auto lines = set->describe();
  REQUIRE(lines.size() == 2);
  CHECK_THAT(lines[0], Catch::Contains("muon") && Catch::Contains("3 params") &&
                           Catch::Contains("blocks.0.mlp.w1"));

  cfg.kind = "adamw";
  cfg.lr = 3e-3;
  auto adamw_set = build_optimizer(cfg, params);
  CHECK(adamw_set->parts()[0]->kind() == "adamw");
  CHECK(adamw_set->parts()[0]->groups()[0].name == "adamw");
  CHECK(names(*adamw_set->parts()[0]) == names(main));

  auto only_aux = build_optimizer(cfg, {params[0], params[2]});
  REQUIRE(only_aux->parts().size() == 1);
  CHECK(only_aux->parts()[0]->groups()[0].name == "aux_adamw");
}

TEST_CASE("optim config validation names the key", "[registry]") {
  CHECK(optimizer_kinds() ==
        std::vector<std::string>{"adamw", "muon", "normuon", "sgd", "ngd", "signgd", "lion"});
  OptimConfig good;
  CHECK_NOTHROW(good.validate());
  auto fails_with = [](auto mutate, const std::string& key) {
    OptimConfig cfg;
    mutate(cfg);
    CHECK_THROWS_WITH(cfg.validate(), Catch::Contains(key));
  };
  fails_with([](OptimConfig& c) { c.kind = "sgd9"; }, "optim.kind");
  fails_with([](OptimConfig& c) { c.kind = "sgd9"; }, "adamw, muon");
  fails_with([](OptimConfig& c) { c.lr = 0; }, "optim.lr");
  fails_with([](OptimConfig& c) { c.weight_decay = -1; }, "optim.weight_decay");
  fails_with([](OptimConfig& c) { c.beta2 = 1.0; }, "optim.betas");
  fails_with([](OptimConfig& c) { c.eps = 0; }, "optim.eps");
  fails_with([](OptimConfig& c) { c.momentum = 1.0; }, "optim.momentum");
  fails_with([](OptimConfig& c) { c.ns_steps = 0; }, "optim.ns_steps");
  fails_with([](OptimConfig& c) { c.ns_coefficients = "x"; }, "optim.ns_coefficients");
  fails_with([](OptimConfig& c) { c.lr_scale = "x"; }, "optim.lr_scale");
  fails_with([](OptimConfig& c) { c.adamw.lr = -1; }, "optim.adamw.lr");
  fails_with([](OptimConfig& c) { c.adamw.beta1 = -0.1; }, "optim.adamw.betas");
  OptimConfig bad;
  bad.kind = "lion2";
  CHECK_THROWS_AS(build_optimizer(bad, fake_model()), std::invalid_argument);
}

TEST_CASE("wsd decay shapes: linear, sqrt and cosine between plateau and floor") {
  ScheduleConfig cfg;
  cfg.kind = "wsd";
  cfg.min_ratio = 0.2;
  cfg.decay_fraction = 0.5;      // steps 50..99 decay; progress p = (step - 49) / 50
  const double p = 25.0 / 50.0;  // step 74
  for (auto [shape, remaining] :
       std::vector<std::pair<std::string, double>>{{"linear", 1 - p},
                                                   {"sqrt", 1 - std::sqrt(p)},
                                                   {"cosine", 0.5 * (1 + std::cos(M_PI * p))}}) {
    INFO(shape);
    cfg.decay_shape = shape;
    CHECK(schedule_multiplier(cfg, 49, 100) == Approx(1.0));
    CHECK(schedule_multiplier(cfg, 74, 100) == Approx(0.2 + 0.8 * remaining));
    CHECK(schedule_multiplier(cfg, 99, 100) == Approx(0.2));
  }
  cfg.decay_shape = "cubic";
  CHECK_THROWS_WITH(cfg.validate(), Catch::Contains("schedule.decay_shape"));
}

TEST_CASE("warmup can start from a non-zero ratio", "[schedule]") {
  ScheduleConfig cfg = constant_schedule();
  cfg.warmup_steps = 4;
  cfg.start_ratio = 0.6;
  CHECK(schedule_multiplier(cfg, 0, 100) == Approx(0.6 + 0.4 * 0.25));
  CHECK(schedule_multiplier(cfg, 3, 100) == Approx(1.0));
  CHECK(schedule_multiplier(cfg, 50, 100) == Approx(1.0));
  cfg.start_ratio = -0.1;
  CHECK_THROWS_WITH(cfg.validate("optim.schedules.momentum.", "min_ratio"),
                    Catch::Contains("optim.schedules.momentum.start_ratio"));
}

TEST_CASE("every group follows its own lr, momentum and weight-decay schedules", "[schedule]") {
  OptimConfig cfg;
  cfg.kind = "muon";
  cfg.lr = 0.02;
  cfg.weight_decay = 0.1;
  cfg.adamw.weight_decay = 0.05;
  ScheduleConfig wd_cosine;
  wd_cosine.min_ratio = 0;  // cosine to 0
  cfg.schedules.weight_decay = wd_cosine;
  ScheduleConfig adamw_lr = constant_schedule();
  adamw_lr.warmup_steps = 10;
  cfg.adamw_schedules.lr = adamw_lr;
  ScheduleConfig run_lr = schedule("cosine", 0, 0.5);
  auto set = build_optimizer(cfg, fake_model(), run_lr);
  const ParamGroup& muon = set->parts()[0]->groups()[0];
  const ParamGroup& adamw = set->parts()[1]->groups()[0];
  set->apply_schedules(99, 100);         // last step
  CHECK(muon.lr == Approx(0.02 * 0.5));  // the run's cosine to 0.5
  CHECK(muon.momentum == Approx(0.95));  // constant
  CHECK(muon.weight_decay == Approx(0.0).margin(1e-15));
  CHECK(adamw.lr == Approx(3e-3));  // its own: warmup, then constant
  CHECK(adamw.weight_decay == Approx(0.05));
  set->apply_schedules(4, 100);
  CHECK(adamw.lr == Approx(3e-3 * 0.5));
  CHECK(muon.weight_decay == Approx(0.1 * 0.5 * (1 + std::cos(M_PI * 4 / 99))));
  CHECK_THAT(set->describe()[1], Catch::Contains("lr 0.003 (constant, warmup 10)"));
}

TEST_CASE("momentum_warmup_steps ramps the main group's momentum from momentum_start",
          "[schedule]") {
  OptimConfig cfg;
  cfg.kind = "muon";
  cfg.momentum = 0.95;
  cfg.momentum_start = 0.85;
  cfg.momentum_warmup_steps = 10;
  auto set = build_optimizer(cfg, fake_model());
  const ParamGroup& muon = set->parts()[0]->groups()[0];
  for (auto [step, expected] :
       std::vector<std::pair<int64_t, double>>{{0, 0.86}, {4, 0.90}, {9, 0.95}, {500, 0.95}}) {
    set->apply_schedules(step, 1000);
    CHECK(muon.momentum == Approx(expected));
  }
  CHECK(set->parts()[1]->groups()[0].momentum == Approx(0.9));  // AdamW beta1, constant
  cfg.schedules.momentum = constant_schedule();
  CHECK_THROWS_WITH(cfg.validate(), Catch::Contains("optim.momentum_warmup_steps") &&
                                        Catch::Contains("optim.schedules.momentum"));
}

TEST_CASE("a momentum schedule may not push the momentum to 1", "[schedule]") {
  OptimConfig cfg;
  cfg.kind = "sgd";
  cfg.momentum = 0.9;
  ScheduleConfig ramp_down = constant_schedule();
  ramp_down.warmup_steps = 5;
  ramp_down.start_ratio = 1.2;  // 1.08 at the start
  cfg.schedules.momentum = ramp_down;
  CHECK_THROWS_WITH(cfg.validate(), Catch::Contains("optim.schedules.momentum.start_ratio"));
  ramp_down.start_ratio = 1.1;  // 0.99
  cfg.schedules.momentum = ramp_down;
  CHECK_NOTHROW(cfg.validate());
}
