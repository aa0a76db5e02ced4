// AdamW update rule (torch::optim::AdamW semantics, decay only on >= 2-D params) and its state
// save/load. float32 parameters take the single-pass kernel of fused_adamw.h; others (fp64 theory
// runs) the same update in tensor ops.
#include "optim/adamw.h"

#include <cmath>
#include <stdexcept>

#include "optim/kernels/fused_adamw.h"

namespace muonlab {

AdamW::AdamW(std::string group_name, std::vector<NamedParam> params, const AdamWOptions& options)
    : options_(options) {
  init_group(std::move(group_name), std::move(params), options.lr, options.beta1,
             options.weight_decay);
  exp_avg_ = zeros_per_param();
  exp_avg_sq_ = zeros_per_param();
  register_state("exp_avg", &exp_avg_);
  register_state("exp_avg_sq", &exp_avg_sq_);
}

void AdamW::step() {
  torch::NoGradGuard no_grad;
  ++step_;
  const ParamGroup& group = groups_[0];
  const double lr = group.lr;
  const double b1 = group.momentum, b2 = options_.beta2;
  const double bias_correction1 = 1.0 - std::pow(b1, static_cast<double>(step_));
  const double sqrt_bias_correction2 = std::sqrt(1.0 - std::pow(b2, static_cast<double>(step_)));
  for_each_with_grad([&](size_t i, torch::Tensor& param, const torch::Tensor& grad) {
    if (options_.fused && fused_adamw_applies(param, grad, exp_avg_[i], exp_avg_sq_[i])) {
      AdamWCoefficients c;
      c.decay = param.dim() >= 2 ? 1.0 - lr * group.weight_decay : 1.0;
      c.beta1 = b1;
      c.beta2 = b2;
      c.step_size = lr / bias_correction1;
      c.sqrt_bias_correction2 = sqrt_bias_correction2;
      c.eps = options_.eps;
      fused_adamw_update(param, grad, exp_avg_[i], exp_avg_sq_[i], c);
      return;
    }
    decay_matrix(param, lr, group.weight_decay);
    exp_avg_[i].mul_(b1).add_(grad, 1.0 - b1);
    exp_avg_sq_[i].mul_(b2).addcmul_(grad, grad, 1.0 - b2);
    torch::Tensor denom = exp_avg_sq_[i].sqrt().div_(sqrt_bias_correction2).add_(options_.eps);
    param.addcdiv_(exp_avg_[i], denom, -lr / bias_correction1);
  });
}

}  // namespace muonlab
