// The matrix-sensing model: measurements consistent with the target (zero loss at W*, the exact
// gradient of the loss), the normalised spectral entropy (1 for a flat spectrum, 0 for rank 1),
// and the second paper's flattening with a small init (Muon's spectrum ends flatter than GD's and
// norm-matched GD's on at least 4 of 5 seeds) which a large init does not show.
#include <catch2/catch.hpp>
#include <cmath>

#include "models/matrix_sensing.h"
#include "optim/registry.h"

using muonlab::MatrixSensing;
using muonlab::MatrixSensingConfig;
using muonlab::NamedParam;
using muonlab::OptimConfig;

namespace {

OptimConfig optimizer(const std::string& kind, double lr) {
  OptimConfig o;
  o.kind = kind;
  o.lr = lr;
  o.momentum = 0;
  o.nesterov = false;
  o.orthogonalizer = "exact";
  o.lr_scale = "none";
  o.routes = {{"*", 0, "main"}};
  return o;
}

struct Final {
  double entropy, stable_rank, loss;
};

Final train(const MatrixSensingConfig& c, uint64_t seed, const OptimConfig& o, int steps) {
  MatrixSensing model(c, seed);
  std::vector<NamedParam> params{{"W", model.weight()}};
  auto set = muonlab::build_optimizer(o, params);
  for (int step = 0; step < steps; ++step) {
    set->zero_grad();
    model.step_loss(step, 0, 1).backward();
    set->step();
  }
  auto record = model.task_records(steps, true).front();
  return {record["entropy"].get<double>(), record["stable_rank"].get<double>(),
          record["loss"].get<double>()};
}

}  // namespace

TEST_CASE("the measurements see the target: zero loss at W*, autograd's gradient is A^T r / p") {
  MatrixSensingConfig c;
  MatrixSensing model(c, 3);
  torch::NoGradGuard outer;
  CHECK(model.loss().item<double>() > 1e-3);  // W0 is far from W*
  model.weight().copy_(model.target());
  CHECK(model.loss().item<double>() < 1e-28);
  CHECK(at::linalg_svdvals(model.target()).narrow(0, 0, 2).sub(1).abs().max().item<double>() <
        1e-12);
  CHECK(at::linalg_svdvals(model.target())[2].item<double>() < 1e-12);  // rank 2
}

TEST_CASE("normalised spectral entropy: 1 for a flat spectrum, 0 for rank one") {
  CHECK(muonlab::normalised_spectral_entropy(torch::eye(20, torch::kDouble)) ==
        Approx(1.0).epsilon(1e-12));
  torch::Tensor rank_one =
      torch::ones({20, 1}, torch::kDouble).matmul(torch::ones({1, 20}, torch::kDouble));
  CHECK(muonlab::normalised_spectral_entropy(rank_one) == Approx(0.0).margin(1e-9));
  CHECK(muonlab::normalised_spectral_entropy(torch::zeros({3, 3}, torch::kDouble)) == 0.0);
}

TEST_CASE("small init: Muon's spectrum ends flatter than GD's and norm-matched GD's (>= 4 of 5)") {
  MatrixSensingConfig c;  // 20 x 20, rank 2, 200 measurements, init 1e-3
  const int steps = 1500;
  int entropy_wins = 0, rank_wins = 0;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    Final muon = train(c, seed, optimizer("muon", 0.01), steps);
    Final gd = train(c, seed, optimizer("sgd", 0.01), steps);
    Final nmgd = train(c, seed, optimizer("ngd", 0.01 * std::sqrt(20.0)), steps);
    INFO("seed " << seed << ": H/Hmax muon " << muon.entropy << " gd " << gd.entropy << " nmgd "
                 << nmgd.entropy << "; SR " << muon.stable_rank << " " << gd.stable_rank << " "
                 << nmgd.stable_rank);
    entropy_wins += muon.entropy > gd.entropy && muon.entropy > nmgd.entropy;
    rank_wins += muon.stable_rank > gd.stable_rank && muon.stable_rank > nmgd.stable_rank;
    CHECK(muon.loss < 1e-3);  // it interpolates the measurements
  }
  CHECK(entropy_wins >= 4);
  CHECK(rank_wins >= 4);
}

TEST_CASE("matrix_sensing config errors name the key") {
  MatrixSensingConfig c;
  c.rank = 21;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("model.rank"));
  c = MatrixSensingConfig{};
  c.measurements = 0;
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("model.measurements"));
  c = MatrixSensingConfig{};
  c.dtype = "float16";
  CHECK_THROWS_WITH(c.validate(), Catch::Contains("model.dtype") && Catch::Contains("float64"));
}
