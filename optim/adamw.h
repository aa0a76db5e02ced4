// AdamW: bias-corrected Adam moments, eps outside the square root, decoupled weight decay
// applied only to parameters with 2 or more dimensions. Matches torch::optim::AdamW's math.
// beta1 is the group's momentum, so it can be scheduled; the bias correction 1 - beta1^t then uses
// the current beta1 (as PyTorch does), not the product of the past ones.
#pragma once
#include "optim/optimizer.h"

namespace muonlab {

struct AdamWOptions {
  double lr = 3e-3;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  bool fused = true;  // the single-pass kernel for float32 (false: tensor ops; for comparisons)
};

class AdamW : public Optimizer {
 public:
  AdamW(std::string group_name, std::vector<NamedParam> params, const AdamWOptions& options);
  std::string kind() const override { return "adamw"; }
  void step() override;

 private:
  AdamWOptions options_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;  // parallel to groups_[0].params
};

}  // namespace muonlab
