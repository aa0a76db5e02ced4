// Lion update rule: sign of the b1-interpolation, decoupled decay on >= 2-D params, then the b2
// momentum update; plus its state save/load.
#include "optim/lion.h"

namespace muonlab {

Lion::Lion(std::string group_name, std::vector<NamedParam> params, const LionOptions& options)
    : options_(options) {
  require_coefficient(options.beta1, "optim.betas");
  require_coefficient(options.beta2, "optim.betas");
  init_group(std::move(group_name), std::move(params), options.lr, options.beta2,
             options.weight_decay);
  exp_avg_ = zeros_per_param();
  register_state("exp_avg", &exp_avg_);
}

void Lion::step() {
  torch::NoGradGuard no_grad;
  ++step_;
  const ParamGroup& group = groups_[0];
  const double lr = group.lr, wd = group.weight_decay;
  const double b1 = options_.beta1, b2 = group.momentum;
  for_each_with_grad([&](size_t i, torch::Tensor& param, const torch::Tensor& grad) {
    torch::Tensor& m = exp_avg_[i];
    torch::Tensor direction = m.mul(b1).add_(grad, 1.0 - b1).sign_();
    decay_matrix(param, lr, wd);
    param.add_(direction, -lr);
    m.mul_(b2).add_(grad, 1.0 - b2);
  });
}

}  // namespace muonlab
