// Spectral figures of a weight (or update) matrix: stable rank ||W||_F^2 / sigma_max^2,
// sigma_max, Frobenius norm, effective rank exp(H(sigma / sum sigma)), condition number of the
// non-zero part (singular values above max(rows, cols) * machine epsilon * sigma_max), RMS entry.
// Computed from the singular values: the eigenvalues of the fp64 Gram matrix where a rounding-error
// estimate puts every singular value within 1e-6 relative (moderate spread sigma_max / sigma_min;
// several times faster than an SVD; measured within 7e-10 of the SVD on a training run's
// matrices), otherwise an SVD in fp64 (fp32 above 2^20 elements). It does not decide when to
// measure (the trainer does).
#pragma once
#include <torch/torch.h>

#include <vector>

namespace muonlab {

struct MatrixSpectrum {
  double stable_rank = 0;
  double sigma_max = 0;
  double fro_norm = 0;
  double eff_rank = 0;
  double condition = 0;  // sigma_max / sigma_min over the non-zero singular values
  double rms = 0;        // ||W||_F / sqrt(rows * cols)
  // Relative bound on sigma_max's error when it was estimated (power iteration): the true value
  // lies in [sigma_max, sigma_max * (1 + bound)]. 0 when it came from an SVD.
  double sigma_max_bound = 0;
};

// w must be 2-D. A zero matrix gives all zeros. With `values`, it also receives every singular
// value, descending, from the same decomposition (then always in fp64; empty if w is not finite).
MatrixSpectrum matrix_spectrum(const torch::Tensor& w, std::vector<double>* values = nullptr);
// All singular values of a 2-D matrix, descending (for spectrum plots).
std::vector<double> singular_values(const torch::Tensor& w);

}  // namespace muonlab
