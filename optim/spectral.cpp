// Spectral figures of a matrix from its singular values (fp64 for small matrices, fp32 above).
#include "optim/spectral.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace muonlab {

namespace {

// Matrices up to this many elements are decomposed in fp64; larger ones in fp32.
constexpr int64_t kDoubleSvdMaxElements = 1 << 20;

MatrixSpectrum not_finite_spectrum() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  return {nan, nan, nan, nan};
}

double effective_rank(const torch::Tensor& singular_values) {
  torch::Tensor positive = singular_values.masked_select(singular_values > 0);
  torch::Tensor p = positive / positive.sum();
  const double entropy = -(p * p.log()).sum().item<double>();
  return std::exp(entropy);
}

}  // namespace

MatrixSpectrum matrix_spectrum(const torch::Tensor& w) {
  if (w.dim() != 2) {
    throw std::invalid_argument("matrix_spectrum: expected a 2-D matrix, got " +
                                std::to_string(w.dim()) + " dims");
  }
  torch::NoGradGuard no_grad;
  const auto dtype = w.numel() <= kDoubleSvdMaxElements ? torch::kDouble : torch::kFloat;
  torch::Tensor matrix = w.detach().to(dtype);
  if (!torch::isfinite(matrix).all().item<bool>()) return not_finite_spectrum();
  if (matrix.numel() == 0) return {};
  torch::Tensor s = at::linalg_svdvals(matrix).to(torch::kDouble);  // descending
  MatrixSpectrum spectrum;
  spectrum.sigma_max = s[0].item<double>();
  if (spectrum.sigma_max <= 0) return {};
  const double fro_squared = s.square().sum().item<double>();
  spectrum.fro_norm = std::sqrt(fro_squared);
  spectrum.stable_rank = fro_squared / (spectrum.sigma_max * spectrum.sigma_max);
  spectrum.eff_rank = effective_rank(s);
  return spectrum;
}

}  // namespace muonlab
