// Tests for the power-iteration sigma_max (optim/spectral/power_iteration.h) against full SVDs in
// fp64: accuracy, the a-posteriori error bound, warm starts, determinism and the cheap spectrum.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "optim/spectral/power_iteration.h"
#include "optim/spectral/spectral.h"

using namespace muonlab;

namespace {

double svd_sigma_max(const torch::Tensor& w) {
  return at::linalg_svdvals(w.to(torch::kDouble))[0].item<double>();
}

// U diag(s) V^T with random orthonormal U (rows x k) and V (cols x k), k = s.size(0).
torch::Tensor with_spectrum(int64_t rows, int64_t cols, const torch::Tensor& s) {
  const int64_t k = s.size(0);
  torch::Tensor u = std::get<0>(at::linalg_qr(torch::randn({rows, k}, torch::kDouble)));
  torch::Tensor v = std::get<0>(at::linalg_qr(torch::randn({cols, k}, torch::kDouble)));
  return torch::matmul(u * s, v.t());
}

// s_i = i^-0.7, i = 1..k: s1 / s2 = 2^0.7, about 1.62.
torch::Tensor power_law(int64_t k) { return torch::arange(1, k + 1, torch::kDouble).pow(-0.7); }

// The true sigma_max lies in [estimate, estimate * (1 + bound)], up to rounding.
void check_bracket(const PowerIterationResult& r, double truth) {
  const double slack = 1e-12 * truth;
  CHECK(r.sigma_max <= truth + slack);
  CHECK(truth <= r.sigma_max * (1 + r.error_bound) + slack);
}

bool all_nan(const MatrixSpectrum& s) {
  return std::isnan(s.stable_rank) && std::isnan(s.sigma_max) && std::isnan(s.fro_norm) &&
         std::isnan(s.eff_rank) && std::isnan(s.condition) && std::isnan(s.rms);
}

}  // namespace

TEST_CASE("power iteration matches the SVD on random matrices", "[power_iteration]") {
  torch::manual_seed(31);
  for (auto shape :
       {std::vector<int64_t>{64, 64}, std::vector<int64_t>{256, 688},
        std::vector<int64_t>{688, 256}, std::vector<int64_t>{1, 50}, std::vector<int64_t>{50, 1}}) {
    torch::Tensor w = torch::randn(shape);
    INFO("shape " << shape[0] << "x" << shape[1]);
    const double truth = svd_sigma_max(w);
    torch::Tensor v;
    const PowerIterationResult r = power_sigma_max(w, v, 1e-4, 1000);
    CHECK(r.converged);
    CHECK(r.sigma_max == Approx(truth).epsilon(1e-4));
    check_bracket(r, truth);
    REQUIRE(v.defined());
    CHECK(v.sizes() == torch::IntArrayRef{shape[1]});
    CHECK(v.norm().item<double>() == Approx(1.0).epsilon(1e-12));
  }
}

TEST_CASE("freshly initialised weights (no spectral gap) within the tolerance in few products",
          "[power_iteration]") {
  // Gaussian init is the hard case: the top singular values crowd together at the edge of the
  // Marchenko-Pastur bulk. Plain power iteration needed hundreds of products here.
  torch::manual_seed(30);
  for (auto shape : {std::vector<int64_t>{256, 256}, std::vector<int64_t>{704, 256},
                     std::vector<int64_t>{256, 704}, std::vector<int64_t>{4096, 256}}) {
    INFO("shape " << shape[0] << "x" << shape[1]);
    torch::Tensor w = 0.02 * torch::randn(shape);
    const double truth = svd_sigma_max(w);
    torch::Tensor v;
    const PowerIterationResult r = power_sigma_max(w, v, 1e-4, 200);
    CHECK(r.converged);
    CHECK(r.iterations <= 100);
    CHECK(r.sigma_max <= truth * (1 + 1e-12));
    CHECK(r.sigma_max == Approx(truth).epsilon(1e-4));
  }
}

TEST_CASE("power iteration on constructed spectra", "[power_iteration]") {
  torch::manual_seed(32);
  SECTION("power law, s1 / s2 = 1.62: converges in a few iterations") {
    torch::Tensor w = with_spectrum(128, 96, power_law(96) * 3.0);
    torch::Tensor v;
    const PowerIterationResult r = power_sigma_max(w, v, 1e-6, 1000);
    CHECK(r.converged);
    CHECK(r.iterations <= 25);
    CHECK(r.sigma_max == Approx(3.0).epsilon(1e-6));
    check_bracket(r, 3.0);
  }
  SECTION("small gap, s1 / s2 = 1.01: still tens of products (plain power: ~700)") {
    torch::Tensor s = power_law(96);
    s[0] = 1.01 * s[1].item<double>();
    torch::Tensor w = with_spectrum(96, 128, s);
    const double truth = s[0].item<double>();
    torch::Tensor v;
    const PowerIterationResult r = power_sigma_max(w, v, 1e-6, 1000);
    CHECK(r.converged);
    CHECK(r.iterations <= 60);
    CHECK(r.sigma_max == Approx(truth).epsilon(1e-5));
    check_bracket(r, truth);
    SECTION("cut short, it says it has not converged") {
      torch::Tensor cold;
      const PowerIterationResult cut = power_sigma_max(w, cold, 1e-6, 10);
      CHECK_FALSE(cut.converged);
      CHECK(cut.iterations == 10);
      CHECK(cut.sigma_max < r.sigma_max);
    }
  }
  SECTION("large matrices go through fp32") {
    torch::Tensor w = with_spectrum(1100, 1000, power_law(1000) * 2.0).to(torch::kFloat);
    torch::Tensor v;
    const PowerIterationResult r = power_sigma_max(w, v, 1e-5, 1000);
    CHECK(r.converged);
    CHECK(v.scalar_type() == torch::kFloat);
    CHECK(r.sigma_max == Approx(2.0).epsilon(1e-4));
  }
}

TEST_CASE("a warm start from the previous vector saves iterations", "[power_iteration]") {
  torch::manual_seed(33);
  const double tol = 1e-4;
  for (bool gaussian : {true, false}) {
    INFO((gaussian ? "gaussian 256x688" : "power law 256x688"));
    torch::Tensor w = gaussian ? torch::randn({256, 688}, torch::kDouble)
                               : with_spectrum(256, 688, power_law(256));
    torch::Tensor v;
    REQUIRE(power_sigma_max(w, v, tol, 1000).converged);
    torch::Tensor perturbed = w + 1e-3 * w.abs().mean() * torch::randn_like(w);
    const double truth = svd_sigma_max(perturbed);
    torch::Tensor cold_v;
    const PowerIterationResult cold = power_sigma_max(perturbed, cold_v, tol, 1000);
    const PowerIterationResult warm = power_sigma_max(perturbed, v, tol, 1000);
    CHECK(warm.converged);
    CHECK(warm.iterations < cold.iterations);
    CHECK(warm.sigma_max == Approx(cold.sigma_max).epsilon(10 * tol));
    CHECK(warm.sigma_max == Approx(truth).epsilon(10 * tol));
    check_bracket(warm, truth);
  }
}

TEST_CASE("bad warm starts fall back to a cold start", "[power_iteration]") {
  torch::Tensor w = torch::diag(torch::tensor({3.0, 2.0, 0.0}));
  for (torch::Tensor start :
       {torch::Tensor(), torch::tensor({0.0, 0.0, 1.0}) /* null space of w */, torch::zeros({3}),
        torch::ones({4}), torch::full({3}, std::nan(""))}) {
    torch::Tensor v = start;
    const PowerIterationResult r = power_sigma_max(w, v, 1e-8, 1000);
    CHECK(r.sigma_max == Approx(3.0).epsilon(1e-8));
    CHECK(std::abs(v[0].item<double>()) == Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("cold starts are deterministic and leave the global RNG alone", "[power_iteration]") {
  torch::manual_seed(34);
  torch::Tensor w = torch::randn({64, 80});
  torch::Tensor v1, v2;
  const PowerIterationResult a = power_sigma_max(w, v1);
  const PowerIterationResult b = power_sigma_max(w, v2);
  CHECK(a.sigma_max == b.sigma_max);  // bit-identical
  CHECK(a.error_bound == b.error_bound);
  CHECK(a.iterations == b.iterations);
  CHECK(torch::equal(v1, v2));

  torch::manual_seed(35);
  torch::Tensor v;
  power_sigma_max(w, v);
  matrix_spectrum_power(w, v);
  torch::Tensor after_calls = torch::randn({16});
  torch::manual_seed(35);
  CHECK(torch::equal(after_calls, torch::randn({16})));
}

TEST_CASE("matrix_spectrum_power agrees with matrix_spectrum", "[power_iteration]") {
  torch::manual_seed(36);
  for (const torch::Tensor& w : {torch::randn({48, 64}), with_spectrum(80, 40, power_law(40))}) {
    const MatrixSpectrum want = matrix_spectrum(w);
    torch::Tensor v;
    const MatrixSpectrum got = matrix_spectrum_power(w, v, 1e-5, 1000);
    CHECK(got.sigma_max == Approx(want.sigma_max).epsilon(1e-3));
    CHECK(got.stable_rank == Approx(want.stable_rank).epsilon(1e-3));
    CHECK(got.fro_norm == Approx(want.fro_norm).epsilon(1e-3));
    CHECK(got.rms == Approx(want.rms).epsilon(1e-3));
    CHECK(std::isnan(got.eff_rank));
    CHECK(std::isnan(got.condition));
  }
  SECTION("zero matrix gives zeros") {
    torch::Tensor v;
    const MatrixSpectrum s = matrix_spectrum_power(torch::zeros({4, 5}), v);
    CHECK(s.stable_rank == 0);
    CHECK(s.sigma_max == 0);
    CHECK(s.fro_norm == 0);
    CHECK(s.eff_rank == 0);
    CHECK(s.condition == 0);
    CHECK(s.rms == 0);
  }
  SECTION("non-finite matrix gives NaN and keeps the warm start") {
    torch::Tensor w = torch::ones({3, 3});
    w[1][1] = std::numeric_limits<float>::quiet_NaN();
    torch::Tensor v = torch::tensor({1.0, 0.0, 0.0});
    CHECK(all_nan(matrix_spectrum_power(w, v)));
    CHECK(torch::equal(v, torch::tensor({1.0, 0.0, 0.0})));
    w[1][1] = std::numeric_limits<float>::infinity();
    CHECK(std::isnan(power_sigma_max(w, v).sigma_max));
  }
  SECTION("not a matrix") {
    torch::Tensor v;
    CHECK_THROWS_AS(matrix_spectrum_power(torch::ones({3}), v), std::invalid_argument);
    CHECK_THROWS_AS(power_sigma_max(torch::ones({2, 3, 4}), v), std::invalid_argument);
  }
}
