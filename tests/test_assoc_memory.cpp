// The associative-memory model (reference AM-7 and AM-4, in-process): the analytic population
// gradient against autograd, the closed-form optimum L*, the exact polar factor's singular values,
// Muon's per-query uniformity, GD and Muon acting identically in task space whatever the basis,
// SignGD balanced only in the task basis, task coordinates reproducing it (the oracle
// TRA-SignGD), the minibatch loss, the bucket records and their steps-to-threshold.
#include <catch2/catch.hpp>
#include <cmath>

#include "models/assoc_memory.h"
#include "optim/muon.h"
#include "optim/registry.h"

using muonlab::AssocMemory;
using muonlab::AssocMemoryConfig;
using muonlab::NamedParam;
using muonlab::OptimConfig;

namespace {

AssocMemoryConfig small_config() {
  AssocMemoryConfig c;
  c.K = 64;
  c.groups = 16;
  c.zipf_exponent = 1.5;
  return c;
}

OptimConfig theory_optimizer(const std::string& kind, double lr) {
  OptimConfig o;
  o.kind = kind;
  o.lr = lr;
  o.momentum = 0;
  o.nesterov = false;
  o.orthogonalizer = "exact";
  o.lr_scale = "none";
  o.beta1 = 0.9, o.beta2 = 0.999, o.eps = 1e-12;
  o.routes = {{"*", 0, "main"}};
  return o;
}

// Trains `model` for `steps` full-gradient steps; calls after(step) after each update.
template <typename After>
void train(AssocMemory& model, const OptimConfig& optim, int steps, After&& after) {
  std::vector<NamedParam> params;
  for (auto& [name, t] : model.named_params()) params.push_back({name, t});
  auto optimizer = muonlab::build_optimizer(optim, params);
  for (int step = 0; step < steps; ++step) {
    optimizer->zero_grad();
    model.step_loss(step, 0, 1).backward();
    optimizer->step();
    after(step + 1);
  }
}

void train(AssocMemory& model, const OptimConfig& optim, int steps) {
  train(model, optim, steps, [](int) {});
}

// The final record's steps to threshold, after training `steps` steps.
std::vector<int64_t> steps_to_threshold(AssocMemory& model, const OptimConfig& optim, int steps) {
  train(model, optim, steps, [&](int step) { model.task_records(step, false); });
  auto record = model.task_records(steps, true).front();
  std::vector<int64_t> out;
  for (const auto& s : record["steps_to_threshold"])
    out.push_back(s.is_null() ? -1 : s.get<int64_t>());
  return out;
}

double max_relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

}  // namespace

// K = 256 in float64 is a few ms per step on two threads.
struct TwoThreads {
  TwoThreads() { at::set_num_threads(2); }
} two_threads;

TEST_CASE("the analytic population gradient equals autograd's to 1e-10 in float64") {
  AssocMemoryConfig c = small_config();
  c.label_noise = 0.2;
  c.init = "gaussian";  // away from W = 0, so Q is not uniform
  AssocMemory model(c, 1, 3);
  model.population_loss().backward();
  torch::Tensor autograd = model.named_params()[0].second.grad();
  REQUIRE(autograd.scalar_type() == torch::kDouble);
  CHECK(max_relative_difference(model.analytic_gradient(), autograd) < 1e-10);
  CHECK(autograd.abs().max().item<double>() > 1e-4);  // not a vanishing gradient
}

TEST_CASE("L* has the closed form and is the loss of the Bayes-optimal logits") {
  CHECK(muonlab::assoc_optimal_loss(256, 0.2) == Approx(1.60324).margin(5e-6));
  CHECK(muonlab::assoc_optimal_loss(256, 0.0) == 0.0);

  AssocMemoryConfig c = small_config();
  c.label_noise = 0.2;
  c.embedding = "identity";
  c.coordinates = "task";
  AssocMemory model(c, 1, 0);
  const double a = 0.2, K = 64;
  torch::NoGradGuard no_grad;
  torch::Tensor optimal_logits =
      (torch::eye(64, torch::kDouble) * (1 - a) + a / K).log();  // Z = log p(i|j)
  model.named_params()[0].second.copy_(optimal_logits);
  CHECK(model.population_loss().item<double>() == Approx(model.optimal_loss()).epsilon(1e-12));
  CHECK(model.evaluate().fields["excess"].get<double>() == Approx(0).margin(1e-12));
}

TEST_CASE("the exact polar factor of a rank-deficient gradient has singular values 1 or 0") {
  AssocMemory model(small_config(), 1, 0);
  model.population_loss().backward();
  torch::Tensor g =
      model.named_params()[0].second.grad();  // rank <= K - 1 (columns of Q-P sum to 0)
  torch::Tensor sigma = at::linalg_svdvals(muonlab::exact_polar_factor(g));
  torch::Tensor nonzero = sigma.masked_select(sigma > 0.5);
  CHECK(nonzero.numel() == 63);
  CHECK((nonzero - 1).abs().max().item<double>() < 1e-10);
  CHECK(sigma.masked_select(sigma <= 0.5).abs().max().item<double>() < 1e-10);
}

TEST_CASE("exact Muon learns every query at the same pace (K = 256, spread <= 1.2 over 24 steps)") {
  AssocMemoryConfig c;  // K 256, 16 groups, zipf 1.5
  c.embedding = "identity";
  AssocMemory model(c, 1, 0);
  double worst_spread = 0;
  train(model, theory_optimizer("muon", 0.5), 24, [&](int) {
    torch::Tensor L = model.per_query_loss().detach();
    worst_spread = std::max(worst_spread, (L.max() / L.min()).item<double>());
  });
  CHECK(worst_spread <= 1.2);
  CHECK(worst_spread > 1.0);  // the o_K(1) deviation from the idealised formula is really there
}

TEST_CASE("GD and Muon move identically in task space for identity and rotated embeddings") {
  for (const std::string kind : {"sgd", "muon"}) {
    AssocMemoryConfig identity = small_config(), rotated = small_config();
    identity.embedding = "identity";
    rotated.embedding = "random_orthogonal";
    AssocMemory a(identity, 1, 0), b(rotated, 1, 0);
    const double lr = kind == "sgd" ? 100.0 : 0.5;
    train(a, theory_optimizer(kind, lr), 15);
    train(b, theory_optimizer(kind, lr), 15);
    INFO(kind);
    CHECK(max_relative_difference(b.task_matrix().detach(), a.task_matrix().detach()) < 1e-8);
    CHECK(a.task_matrix().abs().max().item<double>() > 0.1);  // it did move
  }
}

TEST_CASE("SignGD is balanced in the task basis only; task coordinates are the oracle") {
  AssocMemoryConfig identity;  // AM-1 / AM-4: K 256, 16 groups, zipf 1.5
  identity.embedding = "identity";
  AssocMemoryConfig rotated = identity;
  rotated.embedding = "random_orthogonal";
  AssocMemoryConfig oracle = rotated;
  oracle.coordinates = "task";
  const auto signgd = theory_optimizer("signgd", 0.1);

  AssocMemory a(identity, 1, 0), b(rotated, 1, 0), c(oracle, 1, 0);
  auto steps_identity = steps_to_threshold(a, signgd, 60);
  auto steps_rotated = steps_to_threshold(b, signgd, 60);
  auto steps_oracle = steps_to_threshold(c, signgd, 60);
  INFO("identity " << steps_identity.front() << "/" << steps_identity.back() << ", rotated "
                   << steps_rotated.front() << "/" << steps_rotated.back());
  REQUIRE(steps_identity.front() > 0);
  REQUIRE(steps_rotated.back() > 0);
  CHECK(static_cast<double>(steps_identity.back()) / steps_identity.front() <= 1.25);
  CHECK(static_cast<double>(steps_rotated.back()) / steps_rotated.front() >= 2);
  CHECK(steps_oracle == steps_identity);
  // Same task-space trajectory, bit for bit: the oracle is SignGD in the task basis.
  CHECK(torch::equal(c.task_matrix().detach(), a.task_matrix().detach()));
}

TEST_CASE("bucket records: head first, masses sum to 1, steps to threshold, tail/head ratio") {
  AssocMemoryConfig c;  // K 256, 16 groups of 16, zipf 1.5, rotated
  AssocMemory model(c, 1, 0);
  auto first = model.task_records(0, false).front();
  REQUIRE(first["kind"] == "buckets");
  REQUIRE(first["buckets"].size() == 16);
  double mass = 0;
  for (const auto& b : first["buckets"]) mass += b["mass"].get<double>();
  CHECK(mass == Approx(1.0).epsilon(1e-12));
  CHECK(first["buckets"][0]["mass"].get<double>() / first["buckets"][15]["mass"].get<double>() ==
        Approx(64.0));                                            // 16^1.5
  CHECK(first["loss"].get<double>() == Approx(std::log(256.0)));  // W = 0: uniform answers
  CHECK(first["head_error"].get<double>() > 0.9);

  auto steps = steps_to_threshold(model, theory_optimizer("sgd", 100), 400);
  CHECK(steps.front() == 5);  // reference AM-1: GD at lr 100 needs 5 / 132 / 373 steps
  CHECK(steps[7] == 132);
  CHECK(steps.back() == 373);
  auto last = model.task_records(400, true).front();
  CHECK(last["tail_head_ratio"].get<double>() == Approx(373.0 / 5));
  CHECK(last["tail_error"].get<double>() == 0.0);
}

TEST_CASE("octave buckets when there are many groups") {
  AssocMemoryConfig c;
  c.groups = 256;  // C = 1: plain Zipf
  AssocMemory model(c, 1, 0);
  const auto& buckets = model.bucket_items();
  REQUIRE(buckets.size() == 9);  // ranks {1}, {2,3}, {4..7}, ..., {128..255}, {256}
  CHECK(buckets[0].size() == 1);
  CHECK(buckets[1].size() == 2);
  CHECK(buckets[7].size() == 128);
  CHECK(buckets[8].size() == 1);
}

TEST_CASE("minibatch losses are reproducible per step and estimate the population loss") {
  AssocMemoryConfig c = small_config();
  c.grad_mode = "minibatch";
  c.label_noise = 0.3;
  c.init = "gaussian";
  AssocMemory model(c, 20000, 5);
  const double a = model.step_loss(7, 0, 1).item<double>();
  CHECK(model.step_loss(7, 0, 1).item<double>() == a);
  CHECK(model.step_loss(7, 1, 2).item<double>() != a);
  CHECK(a == Approx(model.population_loss().item<double>()).epsilon(0.03));
}

TEST_CASE("assoc_memory config errors name the key") {
  AssocMemoryConfig c;
  c.groups = 5;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("model.groups"));
  c = AssocMemoryConfig{};
  c.d = 100;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("model.d"));
  c = AssocMemoryConfig{};
  c.embedding = "gaussian_unit";
  c.coordinates = "task";
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("model.coordinates"));
  c = AssocMemoryConfig{};
  c.grad_mode = "sampled";
  CHECK_THROWS_WITH(c.validate(),
                    Catch::Contains("model.grad_mode") && Catch::Contains("minibatch"));
}
