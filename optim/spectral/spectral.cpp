// Spectral figures of a matrix from its singular values: from the eigenvalues of its fp64 Gram
// matrix where those are accurate enough, otherwise from an SVD (fp64 for small matrices, fp32
// above).
#include "optim/spectral/spectral.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace muonlab {

namespace {

// Matrices up to this many elements are decomposed in fp64; larger ones in fp32.
constexpr int64_t kDoubleSvdMaxElements = 1 << 20;

// The Gram route is taken only when its error estimate for every singular value is within this.
constexpr double kGramRelativeError = 1e-6;
// Margin on the error estimate (gram_singular_values).
constexpr double kGramErrorSafety = 10;

MatrixSpectrum not_finite_spectrum() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  return {nan, nan, nan, nan, nan, nan, nan};
}

double effective_rank(const torch::Tensor& singular_values) {
  torch::Tensor positive = singular_values.masked_select(singular_values > 0);
  torch::Tensor p = positive / positive.sum();
  const double entropy = -(p * p.log()).sum().item<double>();
  return std::exp(entropy);
}

// The smallest singular value above the numerical-rank tolerance max(m, n) * eps * sigma_max, eps
// that of the SVD's precision.
double smallest_nonzero(const torch::Tensor& singular_values, const torch::Tensor& w, double eps) {
  const double sigma_max = singular_values[0].item<double>();
  const double tolerance = static_cast<double>(std::max(w.size(0), w.size(1))) * eps * sigma_max;
  return singular_values.masked_select(singular_values > tolerance).min().item<double>();
}

// Rows of the tall side turned into fp64 this many at a time for the Gram matrix.
constexpr int64_t kGramRowsPerChunk = 2048;

// Singular values, descending, as the square roots of the eigenvalues of the smaller Gram matrix
// X^T X: fp64 products over row chunks of the tall orientation of X (scaled by its largest entry,
// so squares neither overflow nor turn denormal), then a symmetric eigensolver; several times
// cheaper than an SVD. An eigenvalue's error is estimated with the usual rounding model, errors
// growing as the square root of the summation length: sqrt(m) eps ||X||_F^2 from the product plus
// n eps lambda_max from the eigensolver, times kGramErrorSafety; a singular value's relative error
// is half that over its eigenvalue. It is an estimate, not a bound (the strict bound grows with m,
// not sqrt(m)). Fine where the spread sigma_max / sigma_min is moderate, useless for the small
// values of an ill-conditioned or rank-deficient matrix: undefined when the estimate exceeds
// kGramRelativeError for the smallest value (then the caller takes the SVD).
torch::Tensor gram_singular_values(const torch::Tensor& w) {
  const torch::Tensor x = w.size(0) >= w.size(1) ? w : w.t();
  const int64_t m = x.size(0), n = x.size(1);
  const double scale = x.abs().max().item<double>();
  if (!(scale > 0)) return {};
  torch::Tensor gram = torch::zeros({n, n}, torch::kDouble);
  for (int64_t row = 0; row < m; row += kGramRowsPerChunk) {
    const torch::Tensor chunk =
        x.narrow(0, row, std::min(kGramRowsPerChunk, m - row)).to(torch::kDouble) / scale;
    gram.addmm_(chunk.t(), chunk);
  }
  const torch::Tensor lambda = at::linalg_eigvalsh(gram).flip(0).contiguous();
  const double largest = lambda[0].item<double>(), smallest = lambda[-1].item<double>();
  if (!(largest > 0) || !(smallest > 0)) return {};
  const double eps = std::numeric_limits<double>::epsilon();
  const double fro_squared = gram.trace().item<double>();
  const double error = kGramErrorSafety *
                       (std::sqrt(static_cast<double>(m)) * eps * fro_squared +
                        static_cast<double>(n) * eps * largest) /
                       (2 * smallest);
  if (error > kGramRelativeError) return {};
  return lambda.sqrt() * scale;
}

}  // namespace

std::vector<double> singular_values(const torch::Tensor& w) {
  torch::NoGradGuard no_grad;
  torch::Tensor s = at::linalg_svdvals(w.detach().to(torch::kDouble)).contiguous();
  return std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
}

MatrixSpectrum matrix_spectrum(const torch::Tensor& w, std::vector<double>* values) {
  if (w.dim() != 2) {
    throw std::invalid_argument("matrix_spectrum: expected a 2-D matrix, got " +
                                std::to_string(w.dim()) + " dims");
  }
  torch::NoGradGuard no_grad;
  if (!torch::isfinite(w).all().item<bool>()) return not_finite_spectrum();
  if (w.numel() == 0) return {};
  // Listed values always come from an fp64 SVD; otherwise the Gram route where it is accurate.
  // The SVD's precision sets the numerical-rank tolerance of the condition number.
  const bool svd_in_double = values || w.numel() <= kDoubleSvdMaxElements;
  const double eps = svd_in_double ? std::numeric_limits<double>::epsilon()
                                   : std::numeric_limits<float>::epsilon();
  torch::Tensor s = values ? torch::Tensor() : gram_singular_values(w.detach());
  if (!s.defined()) {
    const torch::Tensor matrix = w.detach().to(svd_in_double ? torch::kDouble : torch::kFloat);
    s = at::linalg_svdvals(matrix).to(torch::kDouble).contiguous();  // descending
  }
  if (values) values->assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
  MatrixSpectrum spectrum;
  spectrum.sigma_max = s[0].item<double>();
  if (spectrum.sigma_max <= 0) return {};
  const double fro_squared = s.square().sum().item<double>();
  spectrum.fro_norm = std::sqrt(fro_squared);
  spectrum.stable_rank = fro_squared / (spectrum.sigma_max * spectrum.sigma_max);
  spectrum.eff_rank = effective_rank(s);
  spectrum.condition = spectrum.sigma_max / smallest_nonzero(s, w, eps);
  spectrum.rms = spectrum.fro_norm / std::sqrt(static_cast<double>(w.numel()));
  return spectrum;
}

}  // namespace muonlab
