// Tests for Newton-Schulz orthogonalisation and the Muon optimizer: singular-value bands, a
// hand-computed fp64 reference step, batching by shape, lr scaling and checkpoint round trips.
#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>

#include "optim/kernels/bf16_matmul.h"
#include "optim/muon.h"
#include "optim/newton_schulz.h"
#include "optim/registry.h"
#include "tests/optimizer_fixture.h"

using namespace muonlab;
using muonlab::test::check_resume;
using muonlab::test::make_param;
using muonlab::test::max_abs_diff;
using muonlab::test::set_grad;

namespace {

// Singular values of every matrix in x (2-D or batched), in fp64.
torch::Tensor singular_values(const torch::Tensor& x) {
  return at::linalg_svdvals(x.to(torch::kDouble));
}

// A square n x n matrix with singular values spread evenly over [1, 10] (well conditioned).
torch::Tensor well_conditioned_square(int64_t n) {
  auto q1 = std::get<0>(at::linalg_qr(torch::randn({n, n})));
  auto q2 = std::get<0>(at::linalg_qr(torch::randn({n, n})));
  return q1.matmul(torch::diag(torch::linspace(1, 10, n))).matmul(q2.t());
}

// Independent fp64 reference of the quintic Newton-Schulz iteration (Keller coefficients).
torch::Tensor reference_ns5(torch::Tensor u) {
  const bool tall = u.size(0) > u.size(1);
  torch::Tensor x = tall ? u.t() : u;
  x = x / (std::sqrt((x * x).sum().item<double>()) + 1e-7);
  for (int i = 0; i < 5; ++i) {
    torch::Tensor a = x.matmul(x.t());
    x = 3.4445 * x + (-4.7750 * a + 2.0315 * a.matmul(a)).matmul(x);
  }
  return tall ? x.t() : x;
}

}  // namespace

TEST_CASE("bf16 products are fp32 products of the bf16 inputs rounded once", "[muon]") {
  torch::manual_seed(3);
  // A (batched) Gram product as Newton-Schulz forms it, and a plain one.
  torch::Tensor x = torch::randn({3, 40, 96}).to(torch::kBFloat16);
  torch::Tensor y = torch::randn({96, 24}).to(torch::kBFloat16);
  for (const auto& [a, b] : {std::pair{x, x.transpose(-2, -1)}, std::pair{x, y}}) {
    torch::Tensor got = bf16_matmul(a, b);
    torch::Tensor exact = torch::matmul(a.to(torch::kDouble), b.to(torch::kDouble));
    CHECK(got.scalar_type() == torch::kBFloat16);
    CHECK(got.sizes() == exact.sizes());
    // One rounding to bf16 (relative 2^-9) plus fp32 accumulation: far below bf16's step.
    const double err =
        (got.to(torch::kDouble) - exact).abs().div(exact.abs().clamp_min(1)).max().item<double>();
    CHECK(err <= 1.0 / 256);
    // Without oneDNN's bf16 kernels: exactly the fp32 product of the bf16 values, rounded once.
    if (!has_native_bf16_matmul())
      CHECK(torch::equal(
          got, torch::matmul(a.to(torch::kFloat), b.to(torch::kFloat)).to(torch::kBFloat16)));
  }
  CHECK(bf16_matmul(torch::ones({2, 3}), torch::ones({3, 2})).scalar_type() == torch::kFloat);
}

TEST_CASE("Newton-Schulz lands singular values in the Keller band", "[muon]") {
  torch::manual_seed(1);
  const NsSchedule keller = ns_schedule("keller", 5);
  std::vector<torch::Tensor> inputs = {well_conditioned_square(64), torch::randn({32, 96}),
                                       torch::randn({96, 32}), torch::randn({3, 32, 48})};
  for (const auto& g : inputs) {
    for (bool bf16 : {true, false}) {
      torch::Tensor out = newton_schulz(g, keller, bf16);
      REQUIRE(out.sizes() == g.sizes());
      REQUIRE(out.scalar_type() == g.scalar_type());
      torch::Tensor s = singular_values(out);
      const double lo = bf16 ? 0.6 : 0.67, hi = bf16 ? 1.2 : 1.14;
      INFO("shape " << g.sizes() << " bf16 " << bf16);
      CHECK(s.min().item<double>() > lo);
      CHECK(s.max().item<double>() < hi);
    }
  }
}

TEST_CASE("Newton-Schulz keeps the singular vectors and handles tall input by transposing",
          "[muon]") {
  torch::manual_seed(2);
  const NsSchedule keller = ns_schedule("keller", 5);
  torch::Tensor g = torch::randn({24, 40});
  torch::Tensor wide = newton_schulz(g, keller, false);
  torch::Tensor tall = newton_schulz(g.t().contiguous(), keller, false);
  CHECK(max_abs_diff(tall, wide.t()) < 1e-5);

  // O = U f(S) V^T: in the singular bases of g, O is diagonal with entries in the band.
  auto svd = at::linalg_svd(g.to(torch::kDouble), false);
  torch::Tensor in_bases =
      std::get<0>(svd).t().matmul(wide.to(torch::kDouble)).matmul(std::get<2>(svd).t());
  torch::Tensor diagonal = in_bases.diagonal();
  CHECK((in_bases - torch::diag(diagonal)).abs().max().item<double>() < 1e-4);
  CHECK(diagonal.min().item<double>() > 0.67);
  CHECK(diagonal.max().item<double>() < 1.14);

  torch::Tensor bf16_input = g.to(torch::kBFloat16);
  CHECK(newton_schulz(bf16_input, keller, true).scalar_type() == torch::kBFloat16);
  CHECK_THROWS_AS(newton_schulz(torch::randn({5}), keller), std::invalid_argument);
}

TEST_CASE("Polar Express gives a tighter band than Keller", "[muon]") {
  torch::manual_seed(3);
  const NsSchedule polar = ns_schedule("polar_express", 5);
  REQUIRE(polar.coefficients.size() == 5);
  CHECK(polar.norm_scale == Approx(1.02));
  CHECK(polar.coefficients[0][0] == Approx(8.156554524902461));
  CHECK(ns_schedule("polar_express", 7).coefficients[6] == polar.coefficients[4]);
  torch::Tensor g = torch::randn({32, 96});
  torch::Tensor s32 = singular_values(newton_schulz(g, polar, false));
  CHECK(s32.min().item<double>() > 0.8);
  CHECK(s32.max().item<double>() < 1.2);
  torch::Tensor s16 = singular_values(newton_schulz(g, polar, true));
  CHECK(s16.min().item<double>() > 0.75);
  CHECK(s16.max().item<double>() < 1.25);
}

TEST_CASE("ns_schedule and muon_lr_scale validate their inputs", "[muon]") {
  CHECK(ns_schedule("keller", 3).coefficients.size() == 3);
  CHECK_THROWS_WITH(ns_schedule("cubic", 5),
                    Catch::Contains("optim.ns_coefficients") && Catch::Contains("polar_express"));
  CHECK_THROWS_WITH(ns_schedule("keller", 0), Catch::Contains("optim.ns_steps"));
  CHECK(muon_lr_scale("keller", 4, 3) == Approx(std::sqrt(4.0 / 3.0)));
  CHECK(muon_lr_scale("keller", 3, 4) == Approx(1.0));
  CHECK(muon_lr_scale("match_rms_adamw", 16, 64) == Approx(0.2 * 8));
  CHECK(muon_lr_scale("none", 16, 64) == Approx(1.0));
  CHECK_THROWS_WITH(muon_lr_scale("spectral", 2, 2), Catch::Contains("optim.lr_scale"));
  torch::Tensor gain = make_param(torch::ones({8}));
  CHECK_THROWS_WITH(Muon("muon", {{"blocks.0.norm", gain}}, MuonOptions{}),
                    Catch::Contains("blocks.0.norm"));
}

TEST_CASE("One and two Muon steps match a hand-computed fp64 reference", "[muon]") {
  const torch::Tensor p0 =
      torch::tensor({0.5, -0.2, 0.1, 0.3, 0.8, -0.6, -0.4, 0.2, 0.9, 0.05, -0.7, 0.4},
                    torch::kDouble)
          .reshape({4, 3});
  const torch::Tensor g1 =
      torch::tensor({0.3, -1.2, 0.5, 0.7, 0.1, -0.4, -0.9, 0.6, 0.2, 1.1, -0.3, 0.8},
                    torch::kDouble)
          .reshape({4, 3});
  const torch::Tensor g2 =
      torch::tensor({-0.5, 0.4, 0.9, 0.2, -0.8, 0.3, 0.6, -0.1, -0.7, 0.4, 1.0, -0.2},
                    torch::kDouble)
          .reshape({4, 3});
  const double beta = 0.95, lr = 0.1, wd = 0.01, scale = std::sqrt(4.0 / 3.0);

  // Reference: m = beta m + (1 - beta) g; u = (1 - beta) g + beta m; p = p (1 - lr wd) - lr s O.
  torch::Tensor m = torch::zeros({4, 3}, torch::kDouble), p = p0.clone();
  std::vector<torch::Tensor> expected;
  for (const auto& g : {g1, g2}) {
    m = beta * m + (1 - beta) * g;
    torch::Tensor u = (1 - beta) * g + beta * m;
    p = p * (1 - lr * wd) - lr * scale * reference_ns5(u);
    expected.push_back(p.clone());
  }

  MuonOptions options;
  options.lr = lr;
  options.momentum = beta;
  options.nesterov = true;
  options.weight_decay = wd;
  options.ns_bf16 = false;
  torch::Tensor param = make_param(p0.to(torch::kFloat));
  Muon muon("muon", {{"blocks.0.w", param}}, options);
  set_grad(param, g1.to(torch::kFloat));
  muon.step();
  CHECK(max_abs_diff(param, expected[0]) < 1e-5);
  set_grad(param, g2.to(torch::kFloat));
  muon.step();
  CHECK(max_abs_diff(param, expected[1]) < 1e-5);
  // The step moved the parameter by more than the tolerance, so the check can fail.
  CHECK(max_abs_diff(expected[1], p0) > 1e-2);
}

TEST_CASE("Muon without Nesterov orthogonalises the momentum itself", "[muon]") {
  torch::manual_seed(4);
  torch::Tensor p0 = torch::randn({6, 5}), g = torch::randn({6, 5});
  MuonOptions options;
  options.nesterov = false;
  options.ns_bf16 = false;
  options.lr = 0.05;
  torch::Tensor param = make_param(p0);
  Muon muon("muon", {{"blocks.0.w", param}}, options);
  set_grad(param, g);
  muon.step();
  torch::Tensor expected = p0.to(torch::kDouble) -
                           0.05 * std::sqrt(6.0 / 5.0) * reference_ns5(0.05 * g.to(torch::kDouble));
  CHECK(max_abs_diff(param, expected) < 1e-5);
  CHECK(max_abs_diff(param.grad(), g) == 0);  // the gradient is not modified
}

TEST_CASE("Batched-by-shape Muon equals stepping each matrix on its own", "[muon]") {
  torch::manual_seed(5);
  MuonOptions options;
  options.ns_bf16 = false;
  options.weight_decay = 0.1;
  std::vector<std::vector<int64_t>> shapes = {{16, 24}, {24, 16}, {16, 24}, {16, 24}, {24, 16}};
  std::vector<NamedParam> together;
  std::vector<torch::Tensor> alone;
  std::vector<std::unique_ptr<Muon>> singles;
  for (size_t i = 0; i < shapes.size(); ++i) {
    torch::Tensor init = torch::randn(shapes[i]);
    together.push_back({"blocks." + std::to_string(i) + ".w", make_param(init)});
    alone.push_back(make_param(init));
    singles.push_back(std::make_unique<Muon>(
        "muon", std::vector<NamedParam>{{together.back().name, alone.back()}}, options));
  }
  Muon batched("muon", together, options);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      torch::Tensor g = torch::randn(shapes[i]);
      set_grad(together[i].param, g);
      set_grad(alone[i], g);
      singles[i]->step();
    }
    batched.step();
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    INFO("param " << i);
    CHECK(max_abs_diff(together[i].param, alone[i]) < 1e-6);
  }
}

TEST_CASE("Muon skips parameters without a gradient", "[muon]") {
  torch::Tensor a = make_param(torch::ones({4, 4})), b = make_param(torch::ones({4, 4}));
  Muon muon("muon", {{"blocks.0.a", a}, {"blocks.0.b", b}}, MuonOptions{});
  set_grad(a, torch::eye(4));
  muon.step();
  CHECK(max_abs_diff(b, torch::ones({4, 4})) == 0);
  CHECK(max_abs_diff(a, torch::ones({4, 4})) > 1e-3);
}

TEST_CASE("match_rms_adamw gives an update RMS of about 0.2", "[muon]") {
  torch::manual_seed(6);
  for (auto shape : {std::vector<int64_t>{64, 128}, std::vector<int64_t>{128, 48}}) {
    MuonOptions options;
    options.lr = 1.0;
    options.lr_scale = "match_rms_adamw";
    options.ns_bf16 = false;
    torch::Tensor param = make_param(torch::zeros(shape));
    Muon muon("muon", {{"blocks.0.w", param}}, options);
    set_grad(param, torch::randn(shape));
    muon.step();
    const double rms = param.detach().square().mean().sqrt().item<double>();
    INFO("shape " << shape[0] << "x" << shape[1]);
    CHECK(rms > 0.15);
    CHECK(rms < 0.25);
  }
}

TEST_CASE("Muon save/load continues bit-identically", "[muon]") {
  check_resume<Muon>(MuonOptions{});
}

TEST_CASE("OptimizerSet round trip and loading another kind's checkpoint", "[muon]") {
  torch::manual_seed(8);
  auto make_params = [] {
    return std::vector<NamedParam>{{"tok_emb", make_param(torch::randn({10, 4}))},
                                   {"blocks.0.attn.wq", make_param(torch::randn({4, 4}))},
                                   {"blocks.0.attn_norm", make_param(torch::ones({4}))}};
  };
  OptimConfig muon_cfg;
  muon_cfg.kind = "muon";
  muon_cfg.lr = 0.02;
  auto params = make_params();
  auto set = build_optimizer(muon_cfg, params);
  for (auto& p : params) set_grad(p.param, torch::randn(p.param.sizes()));
  set->step();
  torch::serialize::OutputArchive out;
  set->save(out);
  std::stringstream buffer;
  out.save_to(buffer);

  torch::serialize::InputArchive listing;
  listing.load_from(buffer);
  buffer.seekg(0);
  auto keys = listing.keys();
  CHECK(std::find(keys.begin(), keys.end(), "muon.blocks.0.attn.wq.momentum") != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "aux_adamw.tok_emb.exp_avg") != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "muon.step") != keys.end());

  OptimConfig adamw_cfg;
  adamw_cfg.kind = "adamw";
  auto other_params = make_params();
  auto adamw_set = build_optimizer(adamw_cfg, other_params);
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  CHECK_THROWS_WITH(adamw_set->load(in), Catch::Contains("adamw.blocks.0.attn.wq.exp_avg"));
}

TEST_CASE("exact orthogonaliser returns the polar factor: all singular values 1") {
  torch::manual_seed(11);
  torch::Tensor g = torch::randn({2, 12, 20});
  torch::Tensor o = muonlab::exact_polar_factor(g);
  REQUIRE(o.sizes() == g.sizes());
  torch::Tensor s = at::linalg_svdvals(o.to(torch::kDouble));
  CHECK((s - 1).abs().max().item<double>() < 1e-5);
  // Same left/right singular vectors as g: o^T g is symmetric positive semi-definite.
  torch::Tensor p = torch::matmul(o[0].transpose(0, 1).to(torch::kDouble), g[0].to(torch::kDouble));
  CHECK((p - p.transpose(0, 1)).abs().max().item<double>() < 1e-4);
}

TEST_CASE("cautious weight decay only decays entries where update and weight agree in sign") {
  torch::manual_seed(5);
  torch::Tensor w0 = torch::randn({6, 4});
  torch::Tensor grad = torch::randn({6, 4});
  auto run = [&](bool cautious) {
    torch::Tensor w = w0.clone().requires_grad_(true);
    w.mutable_grad() = grad.clone();
    muonlab::MuonOptions o;
    o.lr = 0.1;
    o.weight_decay = 0.5;
    o.ns_bf16 = false;
    o.cautious_wd = cautious;
    muonlab::Muon muon("muon", {{"w", w}}, o);
    muon.step();
    return w.detach().clone();
  };
  // Reference from the rule: u = (1-b) g + b m with m = (1-b) g on the first step.
  const double b = 0.95;
  torch::Tensor u = (1 - b) * grad + b * ((1 - b) * grad);
  torch::Tensor ortho = muonlab::newton_schulz(u, muonlab::ns_schedule("keller", 5), false);
  const double step = 0.1 * muonlab::muon_lr_scale("keller", 6, 4);
  torch::Tensor agree = (ortho * w0 >= 0).to(torch::kFloat);
  torch::Tensor expected = w0 - 0.1 * 0.5 * w0 * agree - step * ortho;
  torch::Tensor cautious = run(true), plain = run(false);
  CHECK(torch::allclose(cautious, expected, 1e-6, 1e-6));
  CHECK_FALSE(torch::allclose(cautious, plain, 1e-6, 1e-6));
  CHECK(agree.sum().item<double>() > 0);
  CHECK(agree.sum().item<double>() < 24);
}

TEST_CASE("NorMuon normalises each output row, keeps the update's norm, and checkpoints V") {
  torch::manual_seed(8);
  torch::Tensor w0 = torch::randn({5, 8});
  std::vector<torch::Tensor> grads{torch::randn({5, 8}), torch::randn({5, 8})};
  muonlab::MuonOptions o;
  o.lr = 0.1;
  o.ns_bf16 = false;
  o.neuron_norm = true;
  o.beta2 = 0.9;
  torch::Tensor w = w0.clone().requires_grad_(true);
  muonlab::Muon normuon("normuon", {{"w", w}}, o);
  CHECK(normuon.kind() == "normuon");

  // Reference for two steps from the rule (EMA momentum, Nesterov, NS in fp32, row EMA).
  const double b = 0.95, b2 = 0.9;
  const auto schedule = muonlab::ns_schedule("keller", 5);
  const double scale = muonlab::muon_lr_scale("keller", 5, 8);
  torch::Tensor m = torch::zeros({5, 8}), v = torch::zeros({5, 1}), expected = w0.clone();
  for (const auto& g : grads) {
    m = b * m + (1 - b) * g;
    torch::Tensor ortho = muonlab::newton_schulz((1 - b) * g + b * m, schedule, false);
    v = b2 * v + (1 - b2) * ortho.square().mean(1, true);
    torch::Tensor normalized = ortho / (v.sqrt() + 1e-10);
    normalized = normalized * (ortho.norm() / normalized.norm());
    if (&g == &grads[0]) {
      // After the first step every row of the normalised update has the same RMS.
      torch::Tensor row_rms = normalized.square().mean(1).sqrt();
      CHECK((row_rms.max() - row_rms.min()).item<double>() < 1e-5);
    }
    expected = expected - 0.1 * scale * normalized;
    w.mutable_grad() = g.clone();
    normuon.step();
  }
  CHECK(torch::allclose(w.detach(), expected, 1e-5, 1e-6));

  torch::serialize::OutputArchive archive;
  normuon.save(archive, "normuon.");
  std::ostringstream bytes;
  archive.save_to(bytes);
  std::istringstream in(bytes.str());
  torch::serialize::InputArchive loaded;
  loaded.load_from(in);
  torch::Tensor row_variance;
  REQUIRE(loaded.try_read("normuon.w.row_variance", row_variance));
  CHECK(torch::allclose(row_variance, v, 1e-5, 1e-8));
}
