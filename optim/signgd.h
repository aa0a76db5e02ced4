// SignGD with EMA momentum ("signum") for hidden matrices. Per parameter, with gradient g:
//   m  = beta * m + (1 - beta) * g          (m starts at 0)
//   p *= 1 - lr * wd                        (only parameters with 2 or more dims)
//   p -= lr * sign(m)
// momentum 0 is plain signSGD, p -= lr * sign(g). sign(0) = 0, so zero entries do not move.
// No lr shape scaling and no Nesterov blend (optim.nesterov is ignored by this kind).
#pragma once
#include "optim/optimizer.h"

namespace muonlab {

struct SignGdOptions {
  double lr = 1e-3;
  double momentum = 0.9;
  double weight_decay = 0.0;
};

class SignGd : public Optimizer {
 public:
  // Throws std::invalid_argument naming optim.momentum when it is outside [0, 1).
  SignGd(std::string group_name, std::vector<NamedParam> params, const SignGdOptions& options);
  std::string kind() const override { return "signgd"; }
  void step() override;

 private:
  SignGdOptions options_;
  std::vector<torch::Tensor> momentum_;  // parallel to groups_[0].params
};

}  // namespace muonlab
