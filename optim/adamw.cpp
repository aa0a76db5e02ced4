// AdamW update rule (torch::optim::AdamW semantics, decay only on >= 2-D params) and its state
// save/load.
#include "optim/adamw.h"

#include <cmath>
#include <stdexcept>

namespace muonlab {

AdamW::AdamW(std::string group_name, std::vector<NamedParam> params, const AdamWOptions& options)
    : options_(options) {
  ParamGroup group;
  group.name = std::move(group_name);
  group.params = std::move(params);
  group.base_lr = options.lr;
  group.lr = options.lr;
  group.weight_decay = options.weight_decay;
  for (const auto& named : group.params) {
    exp_avg_.push_back(torch::zeros_like(named.param, torch::MemoryFormat::Contiguous));
    exp_avg_sq_.push_back(torch::zeros_like(named.param, torch::MemoryFormat::Contiguous));
  }
  groups_.push_back(std::move(group));
}

void AdamW::step() {
  torch::NoGradGuard no_grad;
  ++step_;
  const ParamGroup& group = groups_[0];
  const double lr = group.lr;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double bias_correction1 = 1.0 - std::pow(b1, static_cast<double>(step_));
  const double sqrt_bias_correction2 = std::sqrt(1.0 - std::pow(b2, static_cast<double>(step_)));
  for (size_t i = 0; i < group.params.size(); ++i) {
    torch::Tensor param = group.params[i].param;
    const torch::Tensor& grad = param.grad();
    if (!grad.defined()) continue;
    if (param.dim() >= 2 && group.weight_decay != 0) param.mul_(1.0 - lr * group.weight_decay);
    exp_avg_[i].mul_(b1).add_(grad, 1.0 - b1);
    exp_avg_sq_[i].mul_(b2).addcmul_(grad, grad, 1.0 - b2);
    torch::Tensor denom = exp_avg_sq_[i].sqrt().div_(sqrt_bias_correction2).add_(options_.eps);
    param.addcdiv_(exp_avg_[i], denom, -lr / bias_correction1);
  }
}

void AdamW::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "step", torch::tensor(step_, torch::kInt64));
  const auto& params = groups_[0].params;
  for (size_t i = 0; i < params.size(); ++i) {
    archive.write(prefix + params[i].name + ".exp_avg", exp_avg_[i]);
    archive.write(prefix + params[i].name + ".exp_avg_sq", exp_avg_sq_[i]);
  }
}

void AdamW::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  const auto& params = groups_[0].params;
  for (size_t i = 0; i < params.size(); ++i) {
    load_state_into(archive, prefix + params[i].name + ".exp_avg", exp_avg_[i]);
    load_state_into(archive, prefix + params[i].name + ".exp_avg_sq", exp_avg_sq_[i]);
  }
  step_ = read_step_counter(archive, prefix + "step");
}

}  // namespace muonlab
