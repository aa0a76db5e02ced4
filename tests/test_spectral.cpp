// Tests for the spectral figures of a matrix and the gradient utilities (global norm, clipping,
// non-finite lookup).
#include <ATen/Parallel.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "optim/grad_clip.h"
#include "optim/kernels/sum_of_squares.h"
#include "optim/spectral/spectral.h"

using namespace muonlab;

namespace {

// Reference figures from a full SVD (U S V^T) in fp64, written out independently.
MatrixSpectrum reference_spectrum(const torch::Tensor& w) {
  torch::Tensor s = std::get<1>(at::linalg_svd(w.to(torch::kDouble), false));
  MatrixSpectrum r;
  r.sigma_max = s.max().item<double>();
  r.fro_norm = w.to(torch::kDouble).square().sum().sqrt().item<double>();
  r.stable_rank = r.fro_norm * r.fro_norm / (r.sigma_max * r.sigma_max);
  double total = s.sum().item<double>(), entropy = 0;
  for (int64_t i = 0; i < s.size(0); ++i) {
    const double p = s[i].item<double>() / total;
    if (p > 0) entropy -= p * std::log(p);
  }
  r.eff_rank = std::exp(entropy);
  return r;
}

void check_close(const MatrixSpectrum& got, const MatrixSpectrum& want, double rel) {
  CHECK(got.sigma_max == Approx(want.sigma_max).epsilon(rel));
  CHECK(got.fro_norm == Approx(want.fro_norm).epsilon(rel));
  CHECK(got.stable_rank == Approx(want.stable_rank).epsilon(rel));
  CHECK(got.eff_rank == Approx(want.eff_rank).epsilon(rel));
}

torch::Tensor param_with_grad(const torch::Tensor& grad) {
  torch::Tensor p = torch::zeros(grad.sizes()).set_requires_grad(true);
  p.mutable_grad() = grad.clone();
  return p;
}

}  // namespace

TEST_CASE("matrix_spectrum equals SVD-based figures", "[spectral]") {
  torch::manual_seed(21);
  for (auto shape :
       {std::vector<int64_t>{8, 8}, std::vector<int64_t>{5, 12}, std::vector<int64_t>{20, 7}}) {
    torch::Tensor w = torch::randn(shape);
    INFO("shape " << shape[0] << "x" << shape[1]);
    check_close(matrix_spectrum(w), reference_spectrum(w), 1e-6);
  }
  SECTION("large matrices: the Gram route, or an fp32 SVD when the spread is wide") {
    torch::Tensor w = torch::randn({1200, 900}) * torch::linspace(0.1, 2, 900);
    check_close(matrix_spectrum(w), reference_spectrum(w), 1e-4);
    // Columns scaled over 6 decades: a spread too wide for the Gram route.
    torch::Tensor wide = torch::randn({1200, 900}) * torch::logspace(0, -6, 900);
    const MatrixSpectrum got = matrix_spectrum(wide);
    check_close(got, reference_spectrum(wide), 1e-4);
    CHECK(got.condition > 3e3);  // far past what the Gram route accepts at this size
  }
}

TEST_CASE("matrix_spectrum known cases", "[spectral]") {
  SECTION("identity") {
    const MatrixSpectrum s = matrix_spectrum(torch::eye(6));
    CHECK(s.stable_rank == Approx(6));
    CHECK(s.eff_rank == Approx(6));
    CHECK(s.sigma_max == Approx(1));
    CHECK(s.fro_norm == Approx(std::sqrt(6.0)));
  }
  SECTION("rank one") {
    torch::Tensor w = torch::outer(torch::tensor({1.0f, 2.0f, 2.0f}), torch::tensor({3.0f, 4.0f}));
    const MatrixSpectrum s = matrix_spectrum(w);
    CHECK(s.stable_rank == Approx(1));
    CHECK(s.eff_rank == Approx(1).margin(1e-6));
    CHECK(s.sigma_max == Approx(15));  // |u| |v| = 3 * 5
    CHECK(s.fro_norm == Approx(15));
  }
  SECTION("diagonal with known singular values") {
    const MatrixSpectrum s = matrix_spectrum(torch::diag(torch::tensor({3.0f, 1.0f, 0.0f})));
    CHECK(s.sigma_max == Approx(3));
    CHECK(s.stable_rank == Approx(10.0 / 9.0));
    const double p = 0.75, q = 0.25;
    CHECK(s.eff_rank == Approx(std::exp(-(p * std::log(p) + q * std::log(q)))));
  }
  SECTION("zero matrix gives zeros") {
    const MatrixSpectrum s = matrix_spectrum(torch::zeros({4, 5}));
    CHECK(s.stable_rank == 0);
    CHECK(s.sigma_max == 0);
    CHECK(s.fro_norm == 0);
    CHECK(s.eff_rank == 0);
  }
  SECTION("non-finite matrix gives NaN, not an exception") {
    torch::Tensor w = torch::ones({3, 3});
    w[1][1] = std::numeric_limits<float>::quiet_NaN();
    CHECK(std::isnan(matrix_spectrum(w).sigma_max));
  }
  SECTION("not a matrix") {
    CHECK_THROWS_AS(matrix_spectrum(torch::ones({3})), std::invalid_argument);
  }
}

TEST_CASE("global grad norm and clipping", "[grad_clip]") {
  torch::Tensor a = param_with_grad(torch::tensor({3.0f, 0.0f}));
  torch::Tensor b = param_with_grad(torch::tensor({4.0f, 0.0f, 12.0f}).reshape({3, 1}));
  torch::Tensor no_grad = torch::zeros({2}).set_requires_grad(true);
  std::vector<NamedParam> params = {{"a", a}, {"none", no_grad}, {"b", b}};
  CHECK(global_grad_norm(params) == Approx(13.0));  // sqrt(9 + 16 + 144)

  SECTION("below the limit nothing changes") {
    CHECK(clip_grad_norm(params, 20.0) == Approx(13.0));
    CHECK(a.grad()[0].item<double>() == Approx(3.0));
  }
  SECTION("above the limit grads are scaled to max_norm") {
    CHECK(clip_grad_norm(params, 1.3) == Approx(13.0));
    CHECK(global_grad_norm(params) == Approx(1.3).epsilon(1e-6));
    CHECK(a.grad()[0].item<double>() == Approx(0.3).epsilon(1e-6));
    CHECK(b.grad()[2][0].item<double>() == Approx(1.2).epsilon(1e-6));
  }
  SECTION("max_norm <= 0 disables clipping") {
    CHECK(clip_grad_norm(params, 0.0) == Approx(13.0));
    CHECK(global_grad_norm(params) == Approx(13.0));
  }
}

TEST_CASE("global grad norm of random gradients equals the concatenated norm", "[grad_clip]") {
  torch::manual_seed(22);
  std::vector<NamedParam> params;
  std::vector<torch::Tensor> flat;
  for (int64_t n : {17, 300, 5}) {
    torch::Tensor g = torch::randn({n});
    params.push_back({"p" + std::to_string(n), param_with_grad(g)});
    flat.push_back(g.to(torch::kDouble));
  }
  CHECK(global_grad_norm(params) == Approx(torch::cat(flat).norm().item<double>()));
}

TEST_CASE("sum of squares accumulates in float64 and ignores the thread count", "[grad_clip]") {
  torch::manual_seed(23);
  // 300001 elements: several fixed chunks and a tail; a float32 sum would lose digits here.
  torch::Tensor g = torch::randn({300001}) + 3;
  const double exact = g.to(torch::kDouble).pow(2).sum().item<double>();
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const double one = sum_of_squares(g);
  at::set_num_threads(2);
  const double two = sum_of_squares(g);
  at::set_num_threads(threads);
  CHECK(one == two);  // bit for bit
  CHECK(std::abs(one - exact) <= 1e-12 * exact);
  torch::Tensor strided = torch::randn({300, 200}).t();  // not contiguous: the LibTorch path
  CHECK(sum_of_squares(strided) ==
        Approx(strided.to(torch::kDouble).pow(2).sum().item<double>()).epsilon(1e-12));
  g[12345] = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(sum_of_squares(g)));
}

TEST_CASE("first_nonfinite_grad finds the first bad gradient", "[grad_clip]") {
  torch::Tensor good = param_with_grad(torch::ones({3}));
  torch::Tensor nan_grad = torch::ones({2, 2});
  nan_grad[1][0] = std::numeric_limits<float>::quiet_NaN();
  torch::Tensor inf_grad = torch::ones({2});
  inf_grad[0] = std::numeric_limits<float>::infinity();
  std::vector<NamedParam> params = {{"good", good},
                                    {"bad_nan", param_with_grad(nan_grad)},
                                    {"bad_inf", param_with_grad(inf_grad)}};
  CHECK(first_nonfinite_grad(params) == "bad_nan");
  CHECK(first_nonfinite_grad({params[0], params[2]}) == "bad_inf");
  CHECK(first_nonfinite_grad({params[0]}).empty());
}

TEST_CASE("condition number ignores exact zeros and rms is the entry RMS") {
  // diag(3, 2, 1, 0): the zero singular value is not part of the non-zero spectrum.
  torch::Tensor w = torch::diag(torch::tensor({3.0, 2.0, 1.0, 0.0}));
  muonlab::MatrixSpectrum s = muonlab::matrix_spectrum(w);
  CHECK(s.condition == Approx(3.0));
  CHECK(s.rms == Approx(std::sqrt(14.0) / 4.0));

  torch::manual_seed(3);
  torch::Tensor r = torch::randn({20, 12}, torch::kDouble);
  torch::Tensor sv = std::get<1>(at::linalg_svd(r, /*full_matrices=*/false));
  muonlab::MatrixSpectrum rs = muonlab::matrix_spectrum(r);
  CHECK(rs.condition == Approx((sv.max() / sv.min()).item<double>()).epsilon(1e-9));
  CHECK(rs.rms == Approx(r.square().mean().sqrt().item<double>()).epsilon(1e-12));
}

TEST_CASE("the fast Gram route and the SVD fallback both give the SVD's figures", "[spectral]") {
  // Q1 diag(s) Q2^T with s spread geometrically from 1 down to 1/kappa: the condition number is
  // kappa by construction. Moderate spreads take the Gram route; wide ones (where the Gram
  // matrix's eigenvalues would lose the small singular values) must fall back to the SVD.
  torch::manual_seed(5);
  const int64_t m = 2100, n = 64;  // tall, and more rows than one fp64 chunk of the Gram route
  const auto orthonormal = [](int64_t rows, int64_t cols) {
    return std::get<0>(at::linalg_qr(torch::randn({rows, cols}, torch::kDouble)));
  };
  for (double kappa : {3.0, 300.0, 1e5, 1e7}) {
    INFO("kappa " << kappa);
    const torch::Tensor s = torch::logspace(0, -std::log10(kappa), n, 10, torch::kDouble);
    const torch::Tensor w = orthonormal(m, n).mm(torch::diag(s)).mm(orthonormal(n, n).t());
    for (const torch::Tensor& matrix : {w, w.t().contiguous()}) {
      const MatrixSpectrum got = matrix_spectrum(matrix);
      check_close(got, reference_spectrum(matrix), 1e-10);
      CHECK(got.condition == Approx(kappa).epsilon(1e-8));
    }
  }
}
