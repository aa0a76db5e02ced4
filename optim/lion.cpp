// Lion update rule: sign of the b1-interpolation, decoupled decay on >= 2-D params, then the b2
// momentum update; plus its state save/load.
#include "optim/lion.h"

#include <stdexcept>

namespace muonlab {

namespace {

void require_beta(double beta) {
  if (beta >= 0 && beta < 1) return;
  throw std::invalid_argument("optim.betas: must be in [0, 1), got " + std::to_string(beta));
}

}  // namespace

Lion::Lion(std::string group_name, std::vector<NamedParam> params, const LionOptions& options)
    : options_(options) {
  require_beta(options.beta1);
  require_beta(options.beta2);
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
  for (size_t i = 0; i < group.params.size(); ++i) {
    torch::Tensor param = group.params[i].param;
    const torch::Tensor& grad = param.grad();
    if (!grad.defined()) continue;
    torch::Tensor& m = exp_avg_[i];
    torch::Tensor direction = m.mul(b1).add_(grad, 1.0 - b1).sign_();
    if (param.dim() >= 2 && wd != 0) param.mul_(1.0 - lr * wd);
    param.add_(direction, -lr);
    m.mul_(b2).add_(grad, 1.0 - b2);
  }
}

}  // namespace muonlab
