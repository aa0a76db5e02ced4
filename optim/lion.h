// Lion (EvoLved Sign Momentum, Chen et al. 2023) for hidden matrices. Per parameter, with
// gradient g:
//   c  = b1 * m + (1 - b1) * g              (m starts at 0)
//   p *= 1 - lr * wd                        (only parameters with 2 or more dims)
//   p -= lr * sign(c)
//   m  = b2 * m + (1 - b2) * g
// b1, b2 come from optim.betas, whose default is [0.9, 0.95] (shared with AdamW); the paper's
// default is [0.9, 0.99], so set optim.betas explicitly to reproduce it. No lr shape scaling.
#pragma once
#include "optim/optimizer.h"

namespace muonlab {

struct LionOptions {
  double lr = 1e-4;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double weight_decay = 0.0;
};

class Lion : public Optimizer {
 public:
  // Throws std::invalid_argument naming optim.betas when a beta is outside [0, 1).
  Lion(std::string group_name, std::vector<NamedParam> params, const LionOptions& options);
  std::string kind() const override { return "lion"; }
  void step() override;

 private:
  LionOptions options_;
  std::vector<torch::Tensor> exp_avg_;  // m, parallel to groups_[0].params
};

}  // namespace muonlab
