// Spectral figures of a matrix from its singular values (fp64 for small matrices, fp32 above).
#include "optim/spectral/spectral.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace muonlab {

namespace {

// Matrices up to this many elements are decomposed in fp64; larger ones in fp32.
constexpr int64_t kDoubleSvdMaxElements = 1 << 20;

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

// The smallest singular value above the numerical-rank tolerance max(m, n) * eps * sigma_max.
double smallest_nonzero(const torch::Tensor& singular_values, const torch::Tensor& matrix) {
  const double eps = matrix.scalar_type() == torch::kDouble ? std::numeric_limits<double>::epsilon()
                                                            : std::numeric_limits<float>::epsilon();
  const double sigma_max = singular_values[0].item<double>();
  const double tolerance =
      static_cast<double>(std::max(matrix.size(0), matrix.size(1))) * eps * sigma_max;
  return singular_values.masked_select(singular_values > tolerance).min().item<double>();
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
  const bool small = w.numel() <= kDoubleSvdMaxElements;
  const auto dtype = small || values ? torch::kDouble : torch::kFloat;
  torch::Tensor matrix = w.detach().to(dtype);
  if (!torch::isfinite(matrix).all().item<bool>()) return not_finite_spectrum();
  if (matrix.numel() == 0) return {};
  torch::Tensor s = at::linalg_svdvals(matrix).to(torch::kDouble).contiguous();  // descending
  if (values) values->assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
  MatrixSpectrum spectrum;
  spectrum.sigma_max = s[0].item<double>();
  if (spectrum.sigma_max <= 0) return {};
  const double fro_squared = s.square().sum().item<double>();
  spectrum.fro_norm = std::sqrt(fro_squared);
  spectrum.stable_rank = fro_squared / (spectrum.sigma_max * spectrum.sigma_max);
  spectrum.eff_rank = effective_rank(s);
  spectrum.condition = spectrum.sigma_max / smallest_nonzero(s, matrix);
  spectrum.rms = spectrum.fro_norm / std::sqrt(static_cast<double>(matrix.numel()));
  return spectrum;
}

}  // namespace muonlab
