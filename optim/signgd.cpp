// SignGD (signum) update rule: EMA momentum, decoupled decay on >= 2-D params, a step of lr along
// sign(m); plus its state save/load.
#include "optim/signgd.h"

#include <stdexcept>

namespace muonlab {

SignGd::SignGd(std::string group_name, std::vector<NamedParam> params, const SignGdOptions& options)
    : options_(options) {
  if (!(options.momentum >= 0 && options.momentum < 1)) {
    throw std::invalid_argument("optim.momentum: must be in [0, 1), got " +
                                std::to_string(options.momentum));
  }
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
  for (size_t i = 0; i < group.params.size(); ++i) {
    torch::Tensor param = group.params[i].param;
    const torch::Tensor& grad = param.grad();
    if (!grad.defined()) continue;
    momentum_[i].mul_(beta).add_(grad, 1.0 - beta);
    if (param.dim() >= 2 && wd != 0) param.mul_(1.0 - lr * wd);
    param.add_(momentum_[i].sign(), -lr);
  }
}

}  // namespace muonlab
