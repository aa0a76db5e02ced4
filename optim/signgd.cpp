// SignGD (signum) update rule: EMA momentum, decoupled decay on >= 2-D params, a step of lr along
// sign(m); plus its state save/load.
#include "optim/signgd.h"

namespace muonlab {

SignGd::SignGd(std::string group_name, std::vector<NamedParam> params, const SignGdOptions& options)
    : options_(options) {
  require_coefficient(options.momentum, "optim.momentum");
  init_group(std::move(group_name), std::move(params), options.lr, options.momentum,
             options.weight_decay);
  momentum_ = zeros_per_param();
  register_state("momentum", &momentum_);
}

void SignGd::step() {
  torch::NoGradGuard no_grad;
  ++step_;
  const ParamGroup& group = groups_[0];
  const double lr = group.lr, wd = group.weight_decay, beta = group.momentum;
  for_each_with_grad([&](size_t i, torch::Tensor& param, const torch::Tensor& grad) {
    momentum_[i].mul_(beta).add_(grad, 1.0 - beta);
    decay_matrix(param, lr, wd);
    param.add_(momentum_[i].sign(), -lr);
  });
}

}  // namespace muonlab
