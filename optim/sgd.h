// SGD for hidden matrices, with optional heavy-ball or Nesterov momentum (torch::optim::SGD with
// dampening 0, but decoupled weight decay). Per parameter, with gradient g:
//   buf = mu * buf + g                      (buf starts at 0, so buf = g on the first step)
//   d   = nesterov ? g + mu * buf : buf
//   p  *= 1 - lr * wd                       (only parameters with 2 or more dims)
//   p  -= lr * d
// momentum 0 is plain gradient descent, p -= lr * g. With `normalize` (kind "ngd": normalised
// gradient descent) each parameter's d is divided by its Frobenius norm first, p -= lr d/||d||_F.
// No lr shape scaling, no gradient clipping.
#pragma once
#include "optim/optimizer.h"

namespace muonlab {

struct SgdOptions {
  double lr = 0.1;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
  bool normalize = false;
};

class Sgd : public Optimizer {
 public:
  // Throws std::invalid_argument naming optim.momentum when it is outside [0, 1).
  Sgd(std::string group_name, std::vector<NamedParam> params, const SgdOptions& options);
  std::string kind() const override { return options_.normalize ? "ngd" : "sgd"; }
  void step() override;

 private:
  SgdOptions options_;
  std::vector<torch::Tensor> momentum_buffer_;  // parallel to groups_[0].params
};

}  // namespace muonlab
