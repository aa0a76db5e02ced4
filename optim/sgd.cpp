// SGD update rule (heavy-ball / Nesterov momentum, decoupled decay on >= 2-D params) and its
// state save/load.
#include "optim/sgd.h"

#include <stdexcept>

namespace muonlab {

Sgd::Sgd(std::string group_name, std::vector<NamedParam> params, const SgdOptions& options)
    : options_(options) {
  if (!(options.momentum >= 0 && options.momentum < 1)) {
    throw std::invalid_argument("optim.momentum: must be in [0, 1), got " +
                                std::to_string(options.momentum));
  }
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
  for (size_t i = 0; i < group.params.size(); ++i) {
    torch::Tensor param = group.params[i].param;
    const torch::Tensor& grad = param.grad();
    if (!grad.defined()) continue;
    torch::Tensor& buf = momentum_buffer_[i];
    buf.mul_(mu).add_(grad);  // a zero buffer makes the first step buf = g exactly
    torch::Tensor direction = options_.nesterov ? grad.add(buf, mu) : buf;
    if (param.dim() >= 2 && wd != 0) param.mul_(1.0 - lr * wd);
    param.add_(direction, -lr);
  }
}

}  // namespace muonlab
