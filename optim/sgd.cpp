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
  ParamGroup group;
  group.name = std::move(group_name);
  group.params = std::move(params);
  group.base_lr = options.lr;
  group.lr = options.lr;
  group.weight_decay = options.weight_decay;
  for (const auto& named : group.params) {
    momentum_buffer_.push_back(torch::zeros_like(named.param, torch::MemoryFormat::Contiguous));
  }
  groups_.push_back(std::move(group));
}

void Sgd::step() {
  torch::NoGradGuard no_grad;
  ++step_;
  const ParamGroup& group = groups_[0];
  const double lr = group.lr, wd = group.weight_decay, mu = options_.momentum;
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

void Sgd::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "step", torch::tensor(step_, torch::kInt64));
  const auto& params = groups_[0].params;
  for (size_t i = 0; i < params.size(); ++i) {
    archive.write(prefix + params[i].name + ".momentum_buffer", momentum_buffer_[i]);
  }
}

void Sgd::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  const auto& params = groups_[0].params;
  for (size_t i = 0; i < params.size(); ++i) {
    load_state_into(archive, prefix + params[i].name + ".momentum_buffer", momentum_buffer_[i]);
  }
  step_ = read_step_counter(archive, prefix + "step");
}

}  // namespace muonlab
