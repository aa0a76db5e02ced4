// `model.kind: matrix_sensing`: the spectral-flattening control of the second Muon paper. An
// m x n target W* of rank r (equal singular values 1, random orthonormal factors) is seen through
// p Gaussian measurements b_i = <A_i, W*> with A_i ~ N(0, 1)/sqrt(p); the trainable W starts at
// init_scale * N(0, 1) and the loss is (1/2p) sum_i (<A_i, W> - b_i)^2, with its exact gradient
// (every measurement, every step). Underdetermined when p < m n, so the optimizer's implicit bias
// decides which of the many interpolating W it reaches. Every step it reports the loss, the
// normalised spectral entropy H(sigma / sum sigma) / ln min(m, n), the stable rank and the
// relative distance to W*. It does not implement optimizers.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/model.h"

namespace muonlab {

struct MatrixSensingConfig {
  int64_t m = 20, n = 20;      // W is m x n
  int64_t rank = 2;            // r of the target
  int64_t measurements = 200;  // p
  double init_scale = 1e-3;    // W0 = init_scale * N(0, 1)
  std::string dtype = "float64";
  // Throws std::invalid_argument naming the model.* key that is out of range.
  void validate() const;
};

// Normalised spectral entropy H(sigma / sum sigma) / ln min(m, n) of a matrix (0 for a zero one).
double normalised_spectral_entropy(const torch::Tensor& w);

class MatrixSensing : public Model {
 public:
  // Target, measurements and the initial W are drawn from `seed`.
  MatrixSensing(const MatrixSensingConfig& config, uint64_t seed);

  std::vector<std::pair<std::string, torch::Tensor>> named_params() const override;
  std::vector<std::string> describe() const override;
  torch::Tensor step_loss(int64_t step, int64_t micro, int64_t accum) override;
  int64_t items_per_micro() const override { return config_.measurements; }
  std::string item_unit() const override { return "measurements"; }
  Evaluation evaluate() override;
  std::vector<nlohmann::json> task_records(int64_t step, bool final) override;

  torch::Tensor loss() const;  // (1/2p) sum (<A_i, W> - b_i)^2
  const torch::Tensor& target() const { return target_; }
  const torch::Tensor& weight() const { return weight_; }

 private:
  MatrixSensingConfig config_;
  torch::Tensor A_;       // (p, m n), rows are the flattened A_i
  torch::Tensor b_;       // (p)
  torch::Tensor target_;  // W* (m, n)
  torch::Tensor weight_;  // W (m, n)
};

}  // namespace muonlab
