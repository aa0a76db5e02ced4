// Builds the `spectral` metrics record: for every 2-D parameter, the spectral figures of the
// weight and of the update just applied, from all singular values (train.spectral_method: svd;
// matrix_spectrum: Gram eigenvalues where accurate, else an SVD) or with sigma_max
// from warm-started power iteration (power: sigma_max with its error bound `sigma_max_bound`,
// stable rank from it and the exact Frobenius norm, RMS; effective rank and condition number are
// null). On spectrum_every steps every figure, of weights and updates, is exact, and the
// weights' singular values are listed. The power iteration's vectors are kept between records but
// not checkpointed: after a resume the first record starts cold, so its estimates can differ from
// an uninterrupted run's in the digits below the estimate's error. Matrices are measured side by
// side on LibTorch's threads, each one whole on one thread (single-threaded inside), so the
// figures are the same for any thread count. It does not decide when to measure (the trainer
// does) nor write the record.
#pragma once
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "optim/optimizer.h"
#include "optim/spectral/spectral.h"

namespace muonlab {

nlohmann::json spectrum_json(const MatrixSpectrum& s);

class SpectralRecorder {
 public:
  // `method`: svd | power. `spectrum_every`: steps whose records list all singular values (0 =
  // never).
  SpectralRecorder(std::string method, int64_t spectrum_every);
  // The record for the weights after `step` updates; `before` maps parameter names to their
  // weights before this step's update (empty: no update figures, e.g. at step 0).
  nlohmann::json record(const std::vector<NamedParam>& params,
                        const std::map<std::string, torch::Tensor>& before, int64_t step);

 private:
  // Figures of `matrix` as JSON, exact (matrix_spectrum) if `exact` or the method is svd; with
  // `values`, also all its singular values (then from an SVD).
  nlohmann::json measure(const std::string& key, const torch::Tensor& matrix, bool exact,
                         std::vector<double>* values);

  std::string method_;
  int64_t spectrum_every_;
  std::map<std::string, torch::Tensor> warm_start_;  // power iteration vector per matrix
};

}  // namespace muonlab
