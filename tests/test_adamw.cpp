// Tests for AdamW: hand-computed steps, parity with torch::optim::AdamW, lr changes through the
// optimizer set, and exact continuation after save/load.
#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>

#include "optim/adamw.h"
#include "optim/kernels/fused_adamw.h"
#include "tests/optimizer_fixture.h"

using namespace muonlab;
using muonlab::test::check_resume;
using muonlab::test::make_param;
using muonlab::test::max_abs_diff;
using muonlab::test::set_grad;

namespace {

// Scalar AdamW reference for one element over a sequence of gradients (fp64).
double reference_adamw(double p, const std::vector<double>& grads, double lr, double b1, double b2,
                       double eps, double wd) {
  double m = 0, v = 0;
  for (size_t t = 1; t <= grads.size(); ++t) {
    const double g = grads[t - 1];
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double m_hat = m / (1 - std::pow(b1, t)), v_hat = v / (1 - std::pow(b2, t));
    p -= lr * m_hat / (std::sqrt(v_hat) + eps);
  }
  return p;
}

}  // namespace

TEST_CASE("One AdamW step matches hand-computed numbers", "[adamw]") {
  AdamWOptions options;
  options.lr = 0.1;
  options.beta1 = 0.9;
  options.beta2 = 0.999;
  options.eps = 1e-8;
  options.weight_decay = 0.1;
  torch::Tensor matrix = make_param(torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({2, 2}));
  torch::Tensor gain = make_param(torch::tensor({0.5f, -0.5f}));
  AdamW adamw("adamw", {{"w", matrix}, {"g", gain}}, options);
  set_grad(matrix, torch::tensor({0.1f, -0.2f, 0.3f, 0.4f}).reshape({2, 2}));
  set_grad(gain, torch::tensor({0.2f, -0.4f}));
  adamw.step();
  // Step 1: m_hat = g, v_hat = g^2, so the step is lr * sign(g); decay 0.99 only on the matrix.
  torch::Tensor expected_matrix = torch::tensor({0.89f, 2.08f, 2.87f, 3.86f}).reshape({2, 2});
  CHECK(max_abs_diff(matrix, expected_matrix) < 1e-6);
  CHECK(max_abs_diff(gain, torch::tensor({0.4f, -0.4f})) < 1e-6);
  CHECK(adamw.steps_taken() == 1);

  // Step 2 with a different gradient, against the scalar reference.
  set_grad(matrix, torch::tensor({-0.3f, 0.1f, 0.2f, 0.05f}).reshape({2, 2}));
  set_grad(gain, torch::tensor({0.1f, 0.3f}));
  adamw.step();
  const std::vector<double> m0 = {1, 2, 3, 4}, mg1 = {0.1, -0.2, 0.3, 0.4},
                            mg2 = {-0.3, 0.1, 0.2, 0.05};
  for (int i = 0; i < 4; ++i) {
    const double expected = reference_adamw(m0[i], {mg1[i], mg2[i]}, 0.1, 0.9, 0.999, 1e-8, 0.1);
    CHECK(matrix.view(-1)[i].item<double>() == Approx(expected).margin(1e-6));
  }
  CHECK(gain[0].item<double>() ==
        Approx(reference_adamw(0.5, {0.2, 0.1}, 0.1, 0.9, 0.999, 1e-8, 0.0)).margin(1e-6));
  CHECK(gain[1].item<double>() ==
        Approx(reference_adamw(-0.5, {-0.4, 0.3}, 0.1, 0.9, 0.999, 1e-8, 0.0)).margin(1e-6));
}

TEST_CASE("AdamW matches torch::optim::AdamW over several steps", "[adamw]") {
  torch::manual_seed(11);
  const double lr = 1e-2, wd = 0.1;
  std::vector<torch::Tensor> ours, theirs;
  for (auto shape : {std::vector<int64_t>{3, 4}, std::vector<int64_t>{5, 2}}) {
    torch::Tensor init = torch::randn(shape);
    ours.push_back(make_param(init));
    theirs.push_back(make_param(init));
  }
  AdamWOptions options{lr, 0.9, 0.95, 1e-8, wd};
  AdamW adamw("adamw", {{"a", ours[0]}, {"b", ours[1]}}, options);
  torch::optim::AdamW reference(
      theirs, torch::optim::AdamWOptions(lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(wd));
  for (int step = 0; step < 5; ++step) {
    for (size_t i = 0; i < ours.size(); ++i) {
      torch::Tensor g = torch::randn(ours[i].sizes());
      set_grad(ours[i], g);
      set_grad(theirs[i], g);
    }
    adamw.step();
    reference.step();
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    CHECK(max_abs_diff(ours[i], theirs[i]) < 1e-6);
  }
}

TEST_CASE("apply_schedules sets the AdamW step size from the group's lr schedule", "[adamw]") {
  AdamWOptions options;
  options.lr = 0.1;
  options.weight_decay = 0;
  torch::Tensor param = make_param(torch::zeros({3}));
  OptimizerSet set;
  set.add(std::make_unique<AdamW>("adamw", std::vector<NamedParam>{{"p", param}}, options));
  set_grad(param, torch::tensor({1.0f, -2.0f, 3.0f}));
  ParamGroup& group = set.parts()[0]->groups()[0];
  group.schedules.lr = constant_schedule();
  group.schedules.lr.warmup_steps = 2;
  set.apply_schedules(0, 10);  // first of two warmup steps: half the peak
  CHECK(set.parts()[0]->groups()[0].lr == Approx(0.05));
  CHECK(set.parts()[0]->groups()[0].base_lr == Approx(0.1));
  set.step();
  // First step moves each element by lr * sign(g) = 0.05.
  CHECK(max_abs_diff(param, torch::tensor({-0.05f, 0.05f, -0.05f})) < 1e-6);
  group.schedules.lr.kind = "cosine";
  group.schedules.lr.min_ratio = 0;
  set.apply_schedules(9, 10);  // last step of a cosine to 0
  CHECK(group.lr == 0);
  torch::Tensor before = param.detach().clone();
  set.step();
  CHECK(torch::equal(param, before));
  set.zero_grad();
  CHECK_FALSE(param.grad().defined());  // released, not zeroed in place
  CHECK(set.describe().size() == 1);
  CHECK_THAT(set.describe()[0], Catch::Contains("adamw") && Catch::Contains("p"));
}

TEST_CASE("AdamW skips parameters without a gradient", "[adamw]") {
  torch::Tensor a = make_param(torch::ones({2, 2})), b = make_param(torch::ones({2, 2}));
  AdamW adamw("adamw", {{"a", a}, {"b", b}}, AdamWOptions{});
  set_grad(a, torch::ones({2, 2}));
  adamw.step();
  CHECK(torch::equal(b, torch::ones({2, 2})));
  CHECK_FALSE(torch::equal(a, torch::ones({2, 2})));
}

TEST_CASE("AdamW save/load continues bit-identically", "[adamw]") {
  std::stringstream buffer(check_resume<AdamW>(AdamWOptions{}));
  // Loading under a prefix that was never written names the missing key.
  AdamW stranger("adamw", {{"w", make_param(torch::zeros({12, 8}))}}, AdamWOptions{});
  torch::serialize::InputArchive again;
  again.load_from(buffer);
  CHECK_THROWS_WITH(stranger.load(again, "adamw."), Catch::Contains("adamw.w.exp_avg"));
}

TEST_CASE("AdamW load rejects a state tensor of the wrong shape", "[adamw]") {
  torch::Tensor small = make_param(torch::zeros({2, 2}));
  AdamW writer("g", {{"w", small}}, AdamWOptions{});
  torch::serialize::OutputArchive out;
  writer.save(out, "g.");
  std::stringstream buffer;
  out.save_to(buffer);
  AdamW reader("g", {{"w", make_param(torch::zeros({3, 2}))}}, AdamWOptions{});
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  CHECK_THROWS_AS(reader.load(in, "g."), std::runtime_error);
}

namespace {

// Three AdamW steps of a float32 matrix (size not a multiple of any vector width, large enough to
// be split over threads) with `threads` LibTorch threads; returns param, exp_avg and the
// param's value computed in fp64 from the same gradients.
struct FusedRun {
  torch::Tensor param, reference;
};
FusedRun run_fused_adamw(int threads) {
  const int previous = at::get_num_threads();
  at::set_num_threads(threads);
  torch::manual_seed(5);
  torch::Tensor init = torch::randn({517, 301});
  std::vector<torch::Tensor> grads;
  for (int i = 0; i < 3; ++i) grads.push_back(torch::randn({517, 301}) * (i + 1));
  torch::Tensor param = make_param(init);
  torch::Tensor reference = make_param(init.to(torch::kDouble));
  AdamWOptions options{1e-2, 0.9, 0.95, 1e-8, 0.1};
  AdamW fused("f", {{"w", param}}, options);
  AdamW tensor_ops("r", {{"w", reference}}, options);  // fp64: the tensor-op path
  for (const auto& g : grads) {
    set_grad(param, g);
    set_grad(reference, g.to(torch::kDouble));
    fused.step();
    tensor_ops.step();
  }
  at::set_num_threads(previous);
  return {param.detach(), reference.detach()};
}

}  // namespace

TEST_CASE("The single-pass float32 AdamW equals the update in fp64 to float rounding", "[adamw]") {
  FusedRun run = run_fused_adamw(2);
  // Each step moves an element by ~lr; float rounding of values ~3 is ~2.4e-7 per operation.
  const double diff = max_abs_diff(run.param, run.reference);
  CHECK(diff < 2e-6);
  CHECK(diff > 0);  // the float kernel really ran (an fp64 path would match exactly)
  // And it moved the parameters by what AdamW moves them (about lr per step), not by nothing.
  torch::manual_seed(5);
  CHECK(max_abs_diff(run.param, torch::randn({517, 301})) > 1e-2);
}

TEST_CASE("The single-pass AdamW gives the same bits with one thread and with two", "[adamw]") {
  CHECK(torch::equal(run_fused_adamw(1).param, run_fused_adamw(2).param));
}

TEST_CASE("fused_adamw_applies only to contiguous float32 tensors of one size", "[adamw]") {
  torch::Tensor f = torch::zeros({4, 6});
  CHECK(fused_adamw_applies(f, f, f, f));
  CHECK_FALSE(fused_adamw_applies(f.to(torch::kDouble), f, f, f));
  CHECK_FALSE(fused_adamw_applies(f, f.t(), f, f));
  CHECK_FALSE(fused_adamw_applies(f, f, torch::zeros({5, 6}), f));
}

TEST_CASE("The single-pass AdamW and the tensor-op AdamW agree in float32", "[adamw]") {
  torch::manual_seed(8);
  torch::Tensor init = torch::randn({300, 70});
  torch::Tensor fused_param = make_param(init), ops_param = make_param(init);
  AdamWOptions fused_options{1e-2, 0.9, 0.95, 1e-8, 0.1};
  AdamWOptions ops_options = fused_options;
  ops_options.fused = false;
  AdamW fused("f", {{"w", fused_param}}, fused_options);
  AdamW ops("o", {{"w", ops_param}}, ops_options);
  for (int step = 0; step < 4; ++step) {
    torch::Tensor g = torch::randn({300, 70});
    set_grad(fused_param, g);
    set_grad(ops_param, g);
    fused.step();
    ops.step();
  }
  CHECK(max_abs_diff(fused_param, ops_param) < 2e-6);
  CHECK(max_abs_diff(fused_param, init) > 1e-2);
}
