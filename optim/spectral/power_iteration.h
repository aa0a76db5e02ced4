// A cheap sigma_max (and so stable rank ||W||_F^2 / sigma_max^2) of a 2-D matrix by power
// iteration on W^T W accelerated by Lanczos: the top Ritz value of the Krylov space of the power
// iterates (fully reorthogonalised, restarted from its Ritz vector), warm-started from the
// previous measurement's right singular vector, with an a-posteriori error bound from the
// residual. Lanczos matters: freshly initialised weights have no gap at the top of their
// spectrum, where plain power iteration needs hundreds of products and Lanczos tens.
// It does not compute the rest of the spectrum (effective rank and condition number need every
// singular value: see optim/spectral/spectral.h), does not keep the warm-start vectors (the caller
// owns them) and does not decide when to measure.
#pragma once
#include <torch/torch.h>

#include "optim/spectral/spectral.h"

namespace muonlab {

struct PowerIterationResult {
  // sqrt(theta), theta = the top Ritz value y^T W^T W y (y the unit Ritz vector): a Rayleigh
  // quotient, so never above the true sigma_max (up to rounding).
  double sigma_max = 0;
  // Relative a-posteriori bound: the true sigma_max lies in [sigma_max, sigma_max * (1 +
  // error_bound)]. From the residual r = W^T W y - theta y: some eigenvalue mu of W^T W has
  // |mu - theta| <= ||r||, so error_bound = sqrt(1 + ||r|| / theta) - 1. It assumes that this mu
  // is the top one: that the start was not (numerically) orthogonal to the top right singular
  // vector, and that the top singular value stands apart from the next ones by more than ||r||.
  // Spectra crowded at the top (Muon's orthogonalised updates) can break the second assumption:
  // the estimate then stalls up to ~1e-3 below sigma_max, beyond the bound. On separated tops the
  // bound is first order in the angle to the top vector and the estimate second order, so the
  // actual error is usually far below it.
  double error_bound = 0;
  int iterations = 0;      // products with W^T W (one with W and one with W^T each)
  bool converged = false;  // the stopping test below passed before max_iterations
};

// sigma_max of the 2-D matrix `w` (std::invalid_argument otherwise), always on the right side:
// `v` has length cols, and W^T W is never formed.
// `v` is the warm start. An undefined tensor, or one of the wrong length, zero or non-finite,
// means a cold start from a fixed pseudo-random vector (a local generator: the global torch RNG is
// never touched); so does a warm start with W v = 0. On return `v` holds the new unit right
// singular vector estimate (fp64 for up to 2^20 elements, fp32 above, on w's device), ready for
// the next call. A zero matrix gives zeros (converged) and a non-finite one NaN; both leave `v`
// as it was.
// Stops when error_bound < rel_tol, or when the top Ritz value settles (checked every 4 products:
// its last change below rel_tol / 4 and the rest of its climb, extrapolated geometrically, below
// rel_tol / 2), or after max_iterations products.
PowerIterationResult power_sigma_max(const torch::Tensor& w, torch::Tensor& v,
                                     double rel_tol = 1e-4, int max_iterations = 100);

// The cheap spectrum: sigma_max (and sigma_max_bound) from power_sigma_max; fro_norm, rms and
// stable_rank from the entries (stable rank with the estimated sigma_max); eff_rank and condition
// are NaN (they need every singular value). A non-finite `w` gives all NaN and a zero matrix all
// zeros, as matrix_spectrum does.
MatrixSpectrum matrix_spectrum_power(const torch::Tensor& w, torch::Tensor& v,
                                     double rel_tol = 1e-4, int max_iterations = 100);

}  // namespace muonlab
