// Tests for SGD, SignGD and Lion: one and two steps against fp64 scalar references written from
// each header's formula, SGD parity with torch::optim::SGD, exact continuation after save/load,
// and registry routing of the hidden matrices to each kind.
#include <catch2/catch.hpp>
#include <sstream>

#include "optim/lion.h"
#include "optim/registry.h"
#include "optim/sgd.h"
#include "optim/signgd.h"
#include "tests/optimizer_fixture.h"

using namespace muonlab;
using muonlab::test::check_resume;
using muonlab::test::make_param;
using muonlab::test::max_abs_diff;
using muonlab::test::set_grad;

namespace {

double sign(double x) { return (x > 0) - (x < 0); }

// Scalar references (fp64) for one element over a sequence of gradients; wd = 0 for 1-D params.
double reference_sgd(double p, const std::vector<double>& grads, double lr, double mu,
                     bool nesterov, double wd) {
  double buf = 0;
  for (double g : grads) {
    buf = mu * buf + g;
    const double d = nesterov ? g + mu * buf : buf;
    p *= 1 - lr * wd;
    p -= lr * d;
  }
  return p;
}

double reference_signgd(double p, const std::vector<double>& grads, double lr, double beta,
                        double wd) {
  double m = 0;
  for (double g : grads) {
    m = beta * m + (1 - beta) * g;
    p *= 1 - lr * wd;
    p -= lr * sign(m);
  }
  return p;
}

double reference_lion(double p, const std::vector<double>& grads, double lr, double b1, double b2,
                      double wd) {
  double m = 0;
  for (double g : grads) {
    const double c = b1 * m + (1 - b1) * g;
    p *= 1 - lr * wd;
    p -= lr * sign(c);
    m = b2 * m + (1 - b2) * g;
  }
  return p;
}

// A 2x2 matrix and a 1-D gain with two steps of gradients. Chosen so no momentum entry is 0 and
// the sign of the momentum differs from the sign of the latest gradient somewhere.
const std::vector<double> kMatrix0 = {1, 2, 3, 4}, kMatrixGrad1 = {0.1, -0.2, 0.3, 0.4},
                          kMatrixGrad2 = {-0.3, 0.1, 0.2, -0.034};
const std::vector<double> kGain0 = {0.5, -0.5}, kGainGrad1 = {0.2, -0.4}, kGainGrad2 = {0.1, 0.3};

torch::Tensor tensor_of(const std::vector<double>& values) {
  return torch::tensor(values, torch::kFloat);
}

struct TwoParams {
  torch::Tensor matrix = make_param(tensor_of(kMatrix0).reshape({2, 2}));
  torch::Tensor gain = make_param(tensor_of(kGain0));
  std::vector<NamedParam> named() const { return {{"w", matrix}, {"g", gain}}; }
  void set_grads(int step) {
    set_grad(matrix, tensor_of(step == 1 ? kMatrixGrad1 : kMatrixGrad2).reshape({2, 2}));
    set_grad(gain, tensor_of(step == 1 ? kGainGrad1 : kGainGrad2));
  }
};

// Steps `optimizer` twice on `params`, after each step comparing every element against
// reference(initial value, gradients so far, weight decay of that param).
template <typename Reference>
void check_two_steps(Optimizer& optimizer, TwoParams& params, Reference reference, double wd) {
  for (int step = 1; step <= 2; ++step) {
    INFO("step " << step);
    params.set_grads(step);
    optimizer.step();
    for (int i = 0; i < 4; ++i) {
      std::vector<double> grads = {kMatrixGrad1[i], kMatrixGrad2[i]};
      grads.resize(step);
      const double expected = reference(kMatrix0[i], grads, wd);
      CHECK(params.matrix.view(-1)[i].item<double>() == Approx(expected).margin(1e-6));
    }
    for (int i = 0; i < 2; ++i) {
      std::vector<double> grads = {kGainGrad1[i], kGainGrad2[i]};
      grads.resize(step);
      const double expected = reference(kGain0[i], grads, 0.0);  // no decay on 1-D params
      CHECK(params.gain[i].item<double>() == Approx(expected).margin(1e-6));
    }
  }
}

std::vector<NamedParam> fake_model() {
  return {{"tok_emb", torch::zeros({16, 8})},
          {"blocks.0.attn.wq", torch::zeros({8, 8})},
          {"blocks.0.attn_norm", torch::ones({8})},
          {"blocks.0.mlp.w1", torch::zeros({24, 8})},
          {"lm_head", torch::zeros({16, 8})}};
}

std::vector<std::string> names(const Optimizer& part) {
  std::vector<std::string> out;
  for (const auto& p : part.groups()[0].params) out.push_back(p.name);
  return out;
}

}  // namespace

TEST_CASE("SGD steps match the formula, with and without Nesterov", "[sgd]") {
  for (bool nesterov : {false, true}) {
    INFO("nesterov " << nesterov);
    SgdOptions options{0.1, 0.9, nesterov, 0.1};
    TwoParams params;
    Sgd sgd("sgd", params.named(), options);
    check_two_steps(
        sgd, params,
        [&](double p, const std::vector<double>& g, double wd) {
          return reference_sgd(p, g, 0.1, 0.9, nesterov, wd);
        },
        0.1);
    CHECK(sgd.steps_taken() == 2);
  }
  // Step 1 written out for w[0,0]: buf = g = 0.1, d = 0.1 (+ 0.9 * 0.1 with Nesterov),
  // p = 1 * (1 - 0.1 * 0.1) - 0.1 * d.
  CHECK(reference_sgd(1, {0.1}, 0.1, 0.9, false, 0.1) == Approx(0.98));
  CHECK(reference_sgd(1, {0.1}, 0.1, 0.9, true, 0.1) == Approx(0.971));
}

TEST_CASE("SGD with momentum 0 is plain gradient descent", "[sgd]") {
  for (bool nesterov : {false, true}) {
    INFO("nesterov " << nesterov);
    TwoParams params;
    Sgd sgd("sgd", params.named(), SgdOptions{0.1, 0.0, nesterov, 0.0});
    torch::Tensor expected = params.matrix.detach().clone();
    for (int step = 1; step <= 2; ++step) {
      params.set_grads(step);
      expected = expected - 0.1 * params.matrix.grad();
      sgd.step();
      CHECK(max_abs_diff(params.matrix, expected) < 1e-7);
    }
  }
}

TEST_CASE("NGD steps by lr along the gradient divided by its Frobenius norm", "[sgd]") {
  TwoParams params;
  OptimConfig cfg;
  cfg.kind = "ngd";
  cfg.lr = 0.5;
  cfg.momentum = 0;
  cfg.routes = {{"*", 0, "main"}};
  auto set = build_optimizer(cfg, params.named());
  REQUIRE(set->parts()[0]->kind() == "ngd");
  torch::Tensor expected = params.matrix.detach().clone();
  for (int step = 1; step <= 2; ++step) {
    params.set_grads(step);
    const torch::Tensor g = params.matrix.grad();
    expected = expected - 0.5 * g / g.norm();
    set->step();
    CHECK(max_abs_diff(params.matrix, expected) < 1e-7);
  }
  // Each step has Frobenius norm lr, whatever the gradient's scale.
  torch::Tensor before = params.matrix.detach().clone();
  set_grad(params.matrix, params.matrix.grad() * 1000);
  set->step();
  CHECK((params.matrix.detach() - before).norm().item<double>() == Approx(0.5).epsilon(1e-5));
}

TEST_CASE("SGD matches torch::optim::SGD over several steps", "[sgd]") {
  for (bool nesterov : {false, true}) {
    INFO("nesterov " << nesterov);
    torch::manual_seed(13);
    const double lr = 0.05, mu = 0.9;
    std::vector<torch::Tensor> ours, theirs;
    for (auto shape : {std::vector<int64_t>{3, 4}, std::vector<int64_t>{5}}) {
      torch::Tensor init = torch::randn(shape);
      ours.push_back(make_param(init));
      theirs.push_back(make_param(init));
    }
    Sgd sgd("sgd", {{"a", ours[0]}, {"b", ours[1]}}, SgdOptions{lr, mu, nesterov, 0.0});
    torch::optim::SGD reference(theirs,
                                torch::optim::SGDOptions(lr).momentum(mu).nesterov(nesterov));
    for (int step = 0; step < 5; ++step) {
      for (size_t i = 0; i < ours.size(); ++i) {
        torch::Tensor g = torch::randn(ours[i].sizes());
        set_grad(ours[i], g);
        set_grad(theirs[i], g);
      }
      sgd.step();
      reference.step();
    }
    for (size_t i = 0; i < ours.size(); ++i) CHECK(max_abs_diff(ours[i], theirs[i]) < 1e-6);
  }
}

TEST_CASE("SignGD steps match the formula", "[signgd]") {
  TwoParams params;
  SignGd signgd("signgd", params.named(), SignGdOptions{0.1, 0.9, 0.1});
  check_two_steps(
      signgd, params,
      [](double p, const std::vector<double>& g, double wd) {
        return reference_signgd(p, g, 0.1, 0.9, wd);
      },
      0.1);
  CHECK(signgd.steps_taken() == 2);
  // w[0,1] after two steps: m = 0.09 * -0.2 + 0.1 * 0.1 = -0.008, so it keeps moving up although
  // the second gradient is positive: 2 * 0.99 + 0.1, then 2.08 * 0.99 + 0.1.
  CHECK(params.matrix[0][1].item<double>() == Approx(2.08 * 0.99 + 0.1).margin(1e-6));
}

TEST_CASE("SignGD with momentum 0 steps along the sign of the gradient", "[signgd]") {
  TwoParams params;
  SignGd signgd("signgd", params.named(), SignGdOptions{0.1, 0.0, 0.0});
  params.set_grads(1);
  signgd.step();
  params.set_grads(2);
  signgd.step();
  // signs of the two gradients: w (+,-), (-,+), (+,+), (+,-); g (+,+), (-,+).
  CHECK(max_abs_diff(params.matrix, torch::tensor({1.0f, 2.0f, 2.8f, 4.0f}).reshape({2, 2})) <
        1e-6);
  CHECK(max_abs_diff(params.gain, torch::tensor({0.3f, -0.5f})) < 1e-6);
}

TEST_CASE("Lion steps match the formula", "[lion]") {
  TwoParams params;
  Lion lion("lion", params.named(), LionOptions{0.1, 0.9, 0.99, 0.1});
  check_two_steps(
      lion, params,
      [](double p, const std::vector<double>& g, double wd) {
        return reference_lion(p, g, 0.1, 0.9, 0.99, wd);
      },
      0.1);
  CHECK(lion.steps_taken() == 2);
  // w[1,1] after two steps: m = 0.01 * 0.4 = 0.004, c = 0.9 * 0.004 + 0.1 * -0.034 = 0.0002 > 0,
  // so the second step still moves it down: (4 * 0.99 - 0.1) * 0.99 - 0.1. (Updating m before
  // forming c would give c = 0.9 * 0.00376 - 0.0034 < 0 and move it up.)
  CHECK(params.matrix[1][1].item<double>() == Approx((4 * 0.99 - 0.1) * 0.99 - 0.1).margin(1e-6));
}

TEST_CASE("save/load continues SGD, SignGD and Lion bit-identically", "[sgd][signgd][lion]") {
  SECTION("sgd") { check_resume<Sgd>(SgdOptions{0.05, 0.9, true, 0.1}); }
  SECTION("signgd") { check_resume<SignGd>(SignGdOptions{0.01, 0.9, 0.1}); }
  SECTION("lion") { check_resume<Lion>(LionOptions{0.01, 0.9, 0.99, 0.1}); }
}

TEST_CASE("loading another kind's state names the missing key", "[sgd][lion]") {
  torch::Tensor w = make_param(torch::zeros({2, 2}));
  Sgd sgd("main", {{"w", w}}, SgdOptions{});
  torch::serialize::OutputArchive out;
  sgd.save(out, "main.");
  std::stringstream buffer;
  out.save_to(buffer);
  Lion lion("main", {{"w", make_param(torch::zeros({2, 2}))}}, LionOptions{});
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  CHECK_THROWS_WITH(lion.load(in, "main."), Catch::Contains("main.w.exp_avg"));
}

TEST_CASE("the new optimizers skip parameters without a gradient", "[sgd][signgd][lion]") {
  torch::Tensor a = make_param(torch::ones({2, 2})), b = make_param(torch::ones({2, 2}));
  std::vector<NamedParam> named = {{"a", a}, {"b", b}};
  std::vector<std::unique_ptr<Optimizer>> optimizers;
  optimizers.push_back(std::make_unique<Sgd>("sgd", named, SgdOptions{0.1, 0.9, true, 0.1}));
  optimizers.push_back(std::make_unique<SignGd>("signgd", named, SignGdOptions{0.1, 0.9, 0.1}));
  optimizers.push_back(std::make_unique<Lion>("lion", named, LionOptions{0.1, 0.9, 0.99, 0.1}));
  set_grad(a, torch::ones({2, 2}));
  for (auto& optimizer : optimizers) optimizer->step();
  CHECK(torch::equal(b, torch::ones({2, 2})));
  CHECK_FALSE(torch::equal(a, torch::ones({2, 2})));
}

TEST_CASE("out-of-range momentum and betas name the key", "[sgd][signgd][lion]") {
  std::vector<NamedParam> none;
  CHECK_THROWS_WITH(Sgd("sgd", none, SgdOptions{0.1, 1.0, false, 0}),
                    Catch::Contains("optim.momentum"));
  CHECK_THROWS_WITH(SignGd("signgd", none, SignGdOptions{0.1, -0.1, 0}),
                    Catch::Contains("optim.momentum"));
  CHECK_THROWS_WITH(Lion("lion", none, LionOptions{0.1, 0.9, 1.5, 0}),
                    Catch::Contains("optim.betas"));
}

TEST_CASE("build_optimizer routes hidden matrices to sgd, signgd and lion", "[registry]") {
  for (std::string kind : {"sgd", "signgd", "lion"}) {
    INFO("kind " << kind);
    OptimConfig cfg;
    cfg.kind = kind;
    cfg.lr = 0.01;
    auto set = build_optimizer(cfg, fake_model());
    REQUIRE(set->parts().size() == 2);
    const Optimizer& main = *set->parts()[0];
    CHECK(main.kind() == kind);
    CHECK(main.groups()[0].name == kind);
    CHECK(names(main) == std::vector<std::string>{"blocks.0.attn.wq", "blocks.0.mlp.w1"});
    CHECK(main.groups()[0].base_lr == Approx(0.01));
    const Optimizer& aux = *set->parts()[1];
    CHECK(aux.kind() == "adamw");
    CHECK(names(aux) == std::vector<std::string>{"tok_emb", "blocks.0.attn_norm", "lm_head"});
  }
  OptimConfig bad;
  bad.kind = "lion";
  bad.beta2 = 1.0;
  CHECK_THROWS_WITH(build_optimizer(bad, fake_model()), Catch::Contains("optim.betas"));
}

namespace {

// Over 2 steps: full at step 1, 0 at step 2.
ScheduleConfig cosine_to_zero() {
  ScheduleConfig cfg;
  cfg.min_ratio = 0;
  return cfg;
}

// Two steps of `optimizer` on `params` (gradients 1 and 2) with its group's momentum and weight
// decay following the given schedules over those 2 steps.
void two_steps_with(std::unique_ptr<Optimizer> optimizer, const ScheduleConfig& momentum,
                    const ScheduleConfig& weight_decay, TwoParams& params) {
  ParamGroup& group = optimizer->groups()[0];
  group.schedules.momentum = momentum;
  group.schedules.weight_decay = weight_decay;
  OptimizerSet set;
  set.add(std::move(optimizer));
  for (int step = 0; step < 2; ++step) {
    params.set_grads(step + 1);
    set.apply_schedules(step, 2);
    set.step();
  }
}

}  // namespace

TEST_CASE("SGD and SignGD take the scheduled momentum and weight decay of each step",
          "[sgd][signgd][schedule]") {
  // Momentum and weight decay follow a cosine to 0 over 2 steps: full at step 1, 0 at step 2.
  const ScheduleConfig to_zero = cosine_to_zero();
  auto two_scheduled_steps = [&](std::unique_ptr<Optimizer> optimizer, TwoParams& params) {
    two_steps_with(std::move(optimizer), to_zero, to_zero, params);
  };
  const double lr = 0.1, mu = 0.9, wd = 0.1;
  TwoParams params;
  SECTION("sgd: the second step forgets the first gradient and does not decay") {
    two_scheduled_steps(std::make_unique<Sgd>("sgd", params.named(), SgdOptions{lr, mu, false, wd}),
                        params);
    for (int i = 0; i < 4; ++i) {
      const double after_first = kMatrix0[i] * (1 - lr * wd) - lr * kMatrixGrad1[i];
      CHECK(params.matrix.view(-1)[i].item<double>() ==
            Approx(after_first - lr * kMatrixGrad2[i]).margin(1e-6));
    }
  }
  SECTION("signgd: the second step follows the sign of the second gradient alone") {
    two_scheduled_steps(
        std::make_unique<SignGd>("signgd", params.named(), SignGdOptions{lr, mu, wd}), params);
    for (int i = 0; i < 4; ++i) {
      const double after_first = kMatrix0[i] * (1 - lr * wd) - lr * sign(kMatrixGrad1[i]);
      CHECK(params.matrix.view(-1)[i].item<double>() ==
            Approx(after_first - lr * sign(kMatrixGrad2[i])).margin(1e-6));
    }
  }
}

TEST_CASE("AdamW, Lion and Muon take the scheduled momentum of each step", "[schedule]") {
  const ScheduleConfig to_zero = cosine_to_zero();
  ScheduleConfig half_then_full = constant_schedule();  // warmup over 2 steps from 0: 0.5, 1
  half_then_full.warmup_steps = 2;
  auto two_steps = [](std::unique_ptr<Optimizer> optimizer, const ScheduleConfig& momentum,
                      TwoParams& params) {
    two_steps_with(std::move(optimizer), momentum, constant_schedule(), params);
  };
  const double lr = 0.1;
  TwoParams params;
  SECTION("adamw: beta1 0 at step 2 uses the second gradient alone, bias correction 1") {
    AdamWOptions options;
    options.lr = lr;
    options.weight_decay = 0;
    two_steps(std::make_unique<AdamW>("adamw", params.named(), options), to_zero, params);
    const double b2 = options.beta2, eps = options.eps;
    for (int i = 0; i < 4; ++i) {
      const double g1 = kMatrixGrad1[i], g2 = kMatrixGrad2[i];
      const double after_first = kMatrix0[i] - lr * g1 / (std::abs(g1) + eps);
      const double v = b2 * (1 - b2) * g1 * g1 + (1 - b2) * g2 * g2;
      const double expected = after_first - lr * g2 / (std::sqrt(v / (1 - b2 * b2)) + eps);
      CHECK(params.matrix.view(-1)[i].item<double>() == Approx(expected).margin(1e-5));
    }
  }
  SECTION("lion: beta2 (the momentum EMA) is 0.495 at step 1, 0.99 at step 2") {
    two_steps(std::make_unique<Lion>("lion", params.named(), LionOptions{lr, 0.9, 0.99, 0.0}),
              half_then_full, params);
    for (int i = 0; i < 4; ++i) {
      const double g1 = kMatrixGrad1[i], g2 = kMatrixGrad2[i];
      const double m = (1 - 0.495) * g1;  // after step 1
      const double expected = kMatrix0[i] - lr * sign(g1) - lr * sign(0.9 * m + 0.1 * g2);
      CHECK(params.matrix.view(-1)[i].item<double>() == Approx(expected).margin(1e-6));
    }
  }
  SECTION("muon: momentum 0 at step 2 steps like a fresh Muon without momentum") {
    MuonOptions options;
    options.lr = lr;
    options.ns_bf16 = false;
    TwoParams matrix_only;
    std::vector<NamedParam> named = {{"w", matrix_only.matrix}};
    two_steps(std::make_unique<Muon>("muon", named, options), to_zero, matrix_only);
    // Reference: step 1 as configured, then a fresh momentum-0 Muon on the second gradient.
    TwoParams reference;
    Muon first("muon", {{"w", reference.matrix}}, options);
    reference.set_grads(1);
    first.step();
    options.momentum = 0;
    Muon fresh("muon", {{"w", reference.matrix}}, options);
    reference.set_grads(2);
    fresh.step();
    CHECK(max_abs_diff(matrix_only.matrix, reference.matrix) < 1e-6);
    CHECK(max_abs_diff(matrix_only.matrix, torch::tensor(kMatrix0).view({2, 2})) > 1e-3);
  }
}
