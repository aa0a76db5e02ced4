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
  ParamGroup group;
  group.name = std::move(group_name);
  group.params = std::move(params);
  group.base_lr = options.lr;
  group.lr = options.lr;
  group.weight_decay = options.weight_decay;
  for (const auto& named : group.params) {
    exp_avg_.push_back(torch::zeros_like(named.param, torch::MemoryFormat::Contiguous));
  }
  groups_.push_back(std::move(group));
}

void Lion::step() {
  torch::NoGradGuard no_grad;
  ++step_;
  const ParamGroup& group = groups_[0];
  const double lr = group.lr, wd = group.weight_decay;
  const double b1 = options_.beta1, b2 = options_.beta2;
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

void Lion::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "step", torch::tensor(step_, torch::kInt64));
  const auto& params = groups_[0].params;
  for (size_t i = 0; i < params.size(); ++i) {
    archive.write(prefix + params[i].name + ".exp_avg", exp_avg_[i]);
  }
}

void Lion::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  const auto& params = groups_[0].params;
  for (size_t i = 0; i < params.size(); ++i) {
    load_state_into(archive, prefix + params[i].name + ".exp_avg", exp_avg_[i]);
  }
  step_ = read_step_counter(archive, prefix + "step");
}

}  // namespace muonlab
