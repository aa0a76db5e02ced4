// SGD update rule (heavy-ball / Nesterov momentum, decoupled decay on >= 2-D params) and its
// state save/load.
#include "optim/sgd.h"

namespace muonlab {

Sgd::Sgd(std::string group_name, std::vector<NamedParam> params, const SgdOptions& options)
    : options_(options) {
  require_coefficient(options.momentum, "optim.momentum");
  init_group(std::move(group_name), std::move(params), options.lr, options.momentum,
             options.weight_decay);
  momentum_buffer_ = zeros_per_param();
  register_state("momentum_buffer", &momentum_buffer_);
}

void Sgd::step() {
  torch::NoGradGuard no_grad;
  ++step_;
  const ParamGroup& group = groups_[0];
  const double lr = group.lr, wd = group.weight_decay, mu = group.momentum;
  for_each_with_grad([&](size_t i, torch::Tensor& param, const torch::Tensor& grad) {
    torch::Tensor& buf = momentum_buffer_[i];
    buf.mul_(mu).add_(grad);  // a zero buffer makes the first step buf = g exactly
    torch::Tensor direction = options_.nesterov ? grad.add(buf, mu) : buf;
    if (options_.normalize) direction = direction / direction.norm().clamp_min(1e-30);
    decay_matrix(param, lr, wd);
    param.add_(direction, -lr);
  });
}

}  // namespace muonlab
