// The shared optimizer plumbing: zero_grad, the OptimizerSet that steps several optimizers
// together, its checkpoint layout ("<group name>.<param name>.<state>") and the state readers.
#include "optim/optimizer.h"

#include <sstream>
#include <stdexcept>

namespace muonlab {

namespace {

// Archive prefix of one part: its group name (unique per set), or "<index>.<kind>" without one.
std::string part_prefix(const Optimizer& part, size_t index) {
  if (!part.groups().empty() && !part.groups()[0].name.empty()) {
    return part.groups()[0].name + ".";
  }
  return std::to_string(index) + "." + part.kind() + ".";
}

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

std::string describe_group(const ParamGroup& group, const std::string& kind) {
  const GroupSchedules& s = group.schedules;
  std::ostringstream out;
  out << group.name << " (" << kind << "): lr " << group.base_lr << " (" << s.lr.describe()
      << "), momentum " << group.base_momentum << " (" << s.momentum.describe() << "), wd "
      << group.base_weight_decay << " (" << s.weight_decay.describe() << "), "
      << group.params.size() << " params (";
  for (size_t i = 0; i < group.params.size(); ++i) {
    out << (i ? ", " : "") << group.params[i].name;
  }
  out << ")";
  return out.str();
}

}  // namespace

torch::Tensor read_state_tensor(torch::serialize::InputArchive& archive, const std::string& key) {
  torch::Tensor value;
  if (!archive.try_read(key, value)) {
    throw std::runtime_error("optimizer state: checkpoint has no '" + key +
                             "' (was it written by another optimizer kind or model?)");
  }
  return value;
}

void load_state_into(torch::serialize::InputArchive& archive, const std::string& key,
                     torch::Tensor& target) {
  torch::Tensor value = read_state_tensor(archive, key);
  if (!value.sizes().equals(target.sizes())) {
    throw std::runtime_error("optimizer state: '" + key + "' has shape " + shape_text(value) +
                             " in the checkpoint but " + shape_text(target) + " in the model");
  }
  torch::NoGradGuard no_grad;
  target.copy_(value);
}

void decay_matrix(torch::Tensor& param, double lr, double weight_decay) {
  if (param.dim() >= 2 && weight_decay != 0) param.mul_(1.0 - lr * weight_decay);
}

void require_coefficient(double value, const std::string& key) {
  if (value >= 0 && value < 1) return;
  throw std::invalid_argument(key + ": must be in [0, 1), got " + std::to_string(value));
}

int64_t read_step_counter(torch::serialize::InputArchive& archive, const std::string& key) {
  return read_state_tensor(archive, key).item<int64_t>();
}

void Optimizer::init_group(std::string name, std::vector<NamedParam> params, double lr,
                           double momentum, double weight_decay) {
  ParamGroup group;
  group.name = std::move(name);
  group.params = std::move(params);
  group.base_lr = group.lr = lr;
  group.base_momentum = group.momentum = momentum;
  group.base_weight_decay = group.weight_decay = weight_decay;
  groups_.push_back(std::move(group));
}

std::vector<torch::Tensor> Optimizer::zeros_per_param(c10::optional<at::ScalarType> dtype) const {
  std::vector<torch::Tensor> zeros;
  for (const auto& named : groups_.at(0).params) {
    auto options = named.param.options();
    if (dtype) options = options.dtype(*dtype);
    zeros.push_back(torch::zeros(named.param.sizes(), options));
  }
  return zeros;
}

void Optimizer::register_state(const std::string& name, std::vector<torch::Tensor>* tensors) {
  state_.emplace_back(name, tensors);
}

void Optimizer::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "step", torch::tensor(step_, torch::kInt64));
  const auto& params = groups_.at(0).params;
  for (const auto& [name, tensors] : state_)
    for (size_t i = 0; i < params.size(); ++i)
      archive.write(prefix + params[i].name + "." + name, (*tensors)[i]);
}

void Optimizer::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  const auto& params = groups_.at(0).params;
  for (const auto& [name, tensors] : state_)
    for (size_t i = 0; i < params.size(); ++i)
      load_state_into(archive, prefix + params[i].name + "." + name, (*tensors)[i]);
  step_ = read_step_counter(archive, prefix + "step");
}

int64_t Optimizer::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& entry : state_)
    for (const torch::Tensor& t : *entry.second)
      if (t.defined()) bytes += static_cast<int64_t>(t.nbytes());
  return bytes;
}

void Optimizer::zero_grad() {
  for (auto& group : groups_)
    for (auto& named : group.params) named.param.mutable_grad().reset();
}

void OptimizerSet::add(std::unique_ptr<Optimizer> optimizer) {
  if (!optimizer) throw std::invalid_argument("OptimizerSet::add: null optimizer");
  parts_.push_back(std::move(optimizer));
}

void OptimizerSet::step() {
  for (auto& part : parts_) part->step();
}

int64_t OptimizerSet::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& part : parts_) bytes += part->state_bytes();
  return bytes;
}

void OptimizerSet::zero_grad() {
  for (auto& part : parts_) part->zero_grad();
}

void OptimizerSet::apply_schedules(int64_t step, int64_t total_steps) {
  for (auto& part : parts_) {
    for (auto& group : part->groups()) {
      const GroupSchedules& s = group.schedules;
      group.lr = group.base_lr * schedule_multiplier(s.lr, step, total_steps);
      group.momentum = group.base_momentum * schedule_multiplier(s.momentum, step, total_steps);
      group.weight_decay =
          group.base_weight_decay * schedule_multiplier(s.weight_decay, step, total_steps);
    }
  }
}

void OptimizerSet::save(torch::serialize::OutputArchive& archive) const {
  for (size_t i = 0; i < parts_.size(); ++i) parts_[i]->save(archive, part_prefix(*parts_[i], i));
}

void OptimizerSet::load(torch::serialize::InputArchive& archive) {
  for (size_t i = 0; i < parts_.size(); ++i) parts_[i]->load(archive, part_prefix(*parts_[i], i));
}

std::vector<std::string> OptimizerSet::describe() const {
  std::vector<std::string> lines;
  for (const auto& part : parts_) {
    for (const auto& group : part->groups()) lines.push_back(describe_group(group, part->kind()));
  }
  return lines;
}

}  // namespace muonlab
