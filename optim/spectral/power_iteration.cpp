// Power iteration on W^T W for sigma_max, accelerated by Lanczos (restarted, fully
// reorthogonalised), with a residual error bound and a warm start.
#include "optim/spectral/power_iteration.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace muonlab {

namespace {

// Same precision rule as matrix_spectrum: fp64 up to this many elements, fp32 above.
constexpr int64_t kDoubleMaxElements = 1 << 20;
// Seed of the local generator behind cold starts (fixed: cold starts are reproducible).
constexpr uint64_t kColdStartSeed = 0x5eed5eedULL;

void require_matrix(const torch::Tensor& w, const char* caller) {
  if (w.dim() != 2) {
    throw std::invalid_argument(std::string(caller) + ": expected a 2-D matrix, got " +
                                std::to_string(w.dim()) + " dims");
  }
}

// w detached, in fp64 (small) or fp32 (large), on its own device.
torch::Tensor compute_copy(const torch::Tensor& w) {
  const auto dtype = w.numel() <= kDoubleMaxElements ? torch::kDouble : torch::kFloat;
  return w.detach().to(dtype);
}

// A unit Gaussian vector from a generator of its own, so the global RNG stream is untouched.
torch::Tensor cold_start(int64_t length, const torch::TensorOptions& options) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(kColdStartSeed);
  torch::Tensor v = at::randn({length}, generator, torch::TensorOptions().dtype(torch::kDouble));
  return (v / v.norm()).to(options);
}

// The caller's vector as a unit start vector, or a cold start if it cannot be one.
torch::Tensor start_vector(const torch::Tensor& v, const torch::Tensor& matrix) {
  const int64_t cols = matrix.size(1);
  if (v.defined() && v.dim() == 1 && v.size(0) == cols) {
    torch::Tensor start = v.detach().to(matrix.options());
    const double norm = start.norm().item<double>();
    if (std::isfinite(norm) && norm > 0) return start / norm;
  }
  return cold_start(cols, matrix.options());
}

// sqrt(1 + ||r|| / lambda) - 1: relative width of [sqrt(lambda), sqrt(lambda + ||r||)].
double relative_bound(double lambda, double residual) {
  if (lambda <= 0) return residual > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  return std::sqrt(1 + residual / lambda) - 1;
}

// Largest Krylov dimension of one Lanczos cycle; a cycle that has not settled restarts from its
// Ritz vector.
constexpr int64_t kMaxKrylovDim = 48;
// The top Ritz value is checked every kCheckEvery products.
constexpr int64_t kCheckEvery = 4;

// The Lanczos tridiagonal matrix of the first m basis vectors.
torch::Tensor tridiagonal(const std::vector<double>& alpha, const std::vector<double>& beta,
                          int64_t m) {
  torch::Tensor t = torch::zeros({m, m}, torch::kDouble);
  auto a = t.accessor<double, 2>();
  for (int64_t i = 0; i < m; ++i) {
    a[i][i] = alpha[i];
    if (i + 1 < m) a[i][i + 1] = a[i + 1][i] = beta[i];
  }
  return t;
}

struct RitzPair {
  double value = 0;            // top eigenvalue of T (a lower bound of lambda_max(W^T W))
  double residual = 0;         // ||W^T W y - value y|| = beta_m |s_m| for the Ritz vector y = Q s
  torch::Tensor coefficients;  // s (fp64, length m)
};

RitzPair top_ritz_pair(const std::vector<double>& alpha, const std::vector<double>& beta,
                       int64_t m) {
  auto [values, vectors] = torch::linalg_eigh(tridiagonal(alpha, beta, m));
  RitzPair pair;
  pair.value = values[m - 1].item<double>();
  pair.coefficients = vectors.select(1, m - 1).contiguous();
  pair.residual = std::abs(beta[m - 1] * pair.coefficients[m - 1].item<double>());
  return pair;
}

// Whether the top Ritz value has settled, from its last three checks (oldest first): the last
// change is below rel_tol / 4 (relative), and the rest of the climb extrapolated as a geometric
// sequence, change q / (1 - q) with q the ratio of the last two changes, below rel_tol / 2.
// Ritz values only rise, so a change <= 0 is rounding.
bool ritz_value_settled(const std::vector<double>& checks, double rel_tol) {
  const size_t n = checks.size();
  if (n < 3) return false;
  const double value = checks[n - 1], change = value - checks[n - 2];
  const double earlier = checks[n - 2] - checks[n - 3];
  if (change <= 0) return true;
  if (change >= 0.25 * rel_tol * value || !(earlier > change)) return false;
  const double q = change / earlier;
  return change * q / (1 - q) < 0.5 * rel_tol * value;
}

// One Lanczos cycle on W^T W from the unit vector x (replaced by the Ritz vector), with full
// reorthogonalisation, until the top Ritz value settles, the residual bound drops below rel_tol,
// the Krylov space is exhausted or `budget` products are spent. The Krylov space holds every
// power iterate, so this is never worse than power iteration with as many products.
PowerIterationResult lanczos_cycle(const torch::Tensor& matrix, torch::Tensor& x, double rel_tol,
                                   int budget) {
  const int64_t limit = std::min<int64_t>({matrix.size(1), kMaxKrylovDim, budget});
  torch::Tensor basis = torch::zeros({limit + 1, matrix.size(1)}, matrix.options());
  basis[0] = x;
  std::vector<double> alpha, beta;
  PowerIterationResult result;
  RitzPair pair;
  std::vector<double> checks;
  for (int64_t j = 0; j < limit; ++j) {
    torch::Tensor q = basis[j];
    torch::Tensor z = torch::mv(matrix.t(), torch::mv(matrix, q));  // W^T W q
    alpha.push_back(q.dot(z).item<double>());
    torch::Tensor used = basis.narrow(0, 0, j + 1);
    for (int pass = 0; pass < 2; ++pass) z -= torch::mv(used.t(), torch::mv(used, z));
    beta.push_back(z.norm().item<double>());
    result.iterations += 1;
    const bool exhausted = beta.back() <= 1e-13 * std::abs(alpha.front()) || j + 1 == limit;
    if (!exhausted) basis[j + 1] = z / beta.back();
    if (!exhausted && (j + 1) % kCheckEvery != 0) continue;
    pair = top_ritz_pair(alpha, beta, j + 1);
    result.sigma_max = std::sqrt(std::max(pair.value, 0.0));
    result.error_bound = relative_bound(pair.value, pair.residual);
    checks.push_back(pair.value);
    result.converged =
        result.error_bound < rel_tol || ritz_value_settled(checks, rel_tol) || beta.back() == 0;
    if (result.converged || exhausted) break;
  }
  torch::Tensor y = torch::mv(basis.narrow(0, 0, pair.coefficients.size(0)).t(),
                              pair.coefficients.to(matrix.options()));
  const double norm = y.norm().item<double>();
  x = norm > 0 ? y / norm : torch::Tensor();
  return result;
}

// Lanczos cycles from the unit vector x (replaced by the latest Ritz vector) until one converges
// or max_iterations products are spent. x comes back undefined if W x = 0.
PowerIterationResult iterate_until_settled(const torch::Tensor& matrix, torch::Tensor& x,
                                           double rel_tol, int max_iterations) {
  PowerIterationResult total;
  while (total.iterations < max_iterations && !total.converged && x.defined()) {
    if (torch::mv(matrix, x).abs().max().item<double>() == 0) {
      x = torch::Tensor();
      break;
    }
    PowerIterationResult cycle =
        lanczos_cycle(matrix, x, rel_tol, max_iterations - total.iterations);
    cycle.iterations += total.iterations;
    total = cycle;
  }
  return total;
}

PowerIterationResult not_finite_result() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  return {nan, nan, 0, false};
}

// power_sigma_max on the compute copy of the matrix.
PowerIterationResult power_on_copy(const torch::Tensor& matrix, torch::Tensor& v, double rel_tol,
                                   int max_iterations) {
  // One pass for both checks: the largest |entry| is NaN or inf for a non-finite matrix.
  const double largest = matrix.numel() == 0 ? 0.0 : matrix.abs().max().item<double>();
  if (!std::isfinite(largest)) return not_finite_result();
  if (largest == 0) return {0, 0, 0, true};
  torch::Tensor x = start_vector(v, matrix);
  PowerIterationResult result = iterate_until_settled(matrix, x, rel_tol, max_iterations);
  if (!x.defined()) {  // the warm start was in the null space of W: start again, cold
    x = cold_start(matrix.size(1), matrix.options());
    result = iterate_until_settled(matrix, x, rel_tol, max_iterations);
    if (!x.defined()) x = cold_start(matrix.size(1), matrix.options());
  }
  v = x;
  return result;
}

}  // namespace

PowerIterationResult power_sigma_max(const torch::Tensor& w, torch::Tensor& v, double rel_tol,
                                     int max_iterations) {
  require_matrix(w, "power_sigma_max");
  torch::NoGradGuard no_grad;
  return power_on_copy(compute_copy(w), v, rel_tol, max_iterations);
}

MatrixSpectrum matrix_spectrum_power(const torch::Tensor& w, torch::Tensor& v, double rel_tol,
                                     int max_iterations) {
  require_matrix(w, "matrix_spectrum_power");
  torch::NoGradGuard no_grad;
  const torch::Tensor matrix = compute_copy(w);
  const PowerIterationResult power = power_on_copy(matrix, v, rel_tol, max_iterations);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (std::isnan(power.sigma_max)) return {nan, nan, nan, nan, nan, nan, nan};
  if (power.sigma_max <= 0) return {};
  const double fro_squared = matrix.square().sum(torch::kDouble).item<double>();
  MatrixSpectrum spectrum;
  spectrum.sigma_max = power.sigma_max;
  spectrum.sigma_max_bound = power.error_bound;
  spectrum.fro_norm = std::sqrt(fro_squared);
  spectrum.stable_rank = fro_squared / (power.sigma_max * power.sigma_max);
  spectrum.eff_rank = nan;
  spectrum.condition = nan;
  spectrum.rms = spectrum.fro_norm / std::sqrt(static_cast<double>(matrix.numel()));
  return spectrum;
}

}  // namespace muonlab
