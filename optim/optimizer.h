// The one optimizer interface: named parameter groups, step(), zero_grad(), and state save/load
// keyed by parameter name (so checkpoints stay readable and order-independent). OptimizerSet
// combines several optimizers (e.g. Muon for hidden matrices + AdamW for the rest) behind the
// same calls. Concrete update rules live in adamw.h, muon.h, sgd.h, signgd.h, lion.h; construction
// from config in registry.h.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "optim/schedule.h"

namespace muonlab {

struct NamedParam {
  std::string name;
  torch::Tensor param;
};

// The configured ("base_") values of a group and their current, scheduled values. "momentum" is
// the EMA coefficient of the group's momentum buffer: momentum (muon, normuon, sgd, signgd),
// beta1 (adamw), beta2 (lion).
struct ParamGroup {
  std::string name;  // e.g. "muon", "aux_adamw"
  std::vector<NamedParam> params;
  double base_lr = 0, lr = 0;
  double base_momentum = 0, momentum = 0;
  double base_weight_decay = 0, weight_decay = 0;
  GroupSchedules schedules;  // all constant unless set (see OptimizerSet::apply_schedules)
};

class Optimizer {
 public:
  Optimizer() = default;
  virtual ~Optimizer() = default;
  // Registered state is held by pointer (register_state), so optimizers stay where they are made.
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual std::string kind() const = 0;
  // Applies one update to every parameter with a defined gradient.
  virtual void step() = 0;
  // Writes/reads the step counter "<prefix>step" and every registered state tensor under
  // "<prefix><param name>.<state name>"; load throws naming a missing or misshapen key.
  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);
  int64_t steps_taken() const { return step_; }
  // Bytes held by the registered state tensors (moments, momentum buffers).
  int64_t state_bytes() const;

  // Releases every gradient (leaves it undefined): the next backward then hands its result over
  // instead of adding it into zeros (one pass less over every gradient) and the memory is free
  // during the forward pass. Values are the same as zeroing: 0 + g == g.
  void zero_grad();
  std::vector<ParamGroup>& groups() { return groups_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

 protected:
  // Makes the single parameter group; current values start at the configured ones.
  void init_group(std::string name, std::vector<NamedParam> params, double lr, double momentum,
                  double weight_decay);
  // One zero tensor per parameter of the group, like the parameter (in `dtype` if given).
  std::vector<torch::Tensor> zeros_per_param(c10::optional<at::ScalarType> dtype = {}) const;
  // Adds `tensors` (one per parameter, owned by the subclass) to what save/load handle.
  void register_state(const std::string& name, std::vector<torch::Tensor>* tensors);
  // Calls fn(index, param, grad) for every parameter of the group whose gradient is defined.
  template <typename Fn>
  void for_each_with_grad(Fn&& fn) {
    const auto& params = groups_.at(0).params;
    for (size_t i = 0; i < params.size(); ++i) {
      torch::Tensor param = params[i].param;
      const torch::Tensor& grad = param.grad();
      if (grad.defined()) fn(i, param, grad);
    }
  }

  std::vector<ParamGroup> groups_;
  int64_t step_ = 0;  // optimizer steps taken

 private:
  std::vector<std::pair<std::string, std::vector<torch::Tensor>*>> state_;
};

// Helpers for Optimizer::load implementations. Each throws std::runtime_error naming `key` when
// the archive lacks it (e.g. a checkpoint from another optimizer kind) or its shape differs.
torch::Tensor read_state_tensor(torch::serialize::InputArchive& archive, const std::string& key);
void load_state_into(torch::serialize::InputArchive& archive, const std::string& key,
                     torch::Tensor& target);
int64_t read_step_counter(torch::serialize::InputArchive& archive, const std::string& key);

// Decoupled weight decay W <- W (1 - lr wd), applied only to parameters with 2 or more dimensions.
void decay_matrix(torch::Tensor& param, double lr, double weight_decay);
// Throws std::invalid_argument("<key>: must be in [0, 1), got <value>") otherwise.
void require_coefficient(double value, const std::string& key);

// Several optimizers stepped together; each owns disjoint parameters.
class OptimizerSet {
 public:
  void add(std::unique_ptr<Optimizer> optimizer);
  void step();
  void zero_grad();
  // Sets every group's lr, momentum and weight decay to its base value times its schedule's
  // multiplier at `step` (0-based) of `total_steps`.
  void apply_schedules(int64_t step, int64_t total_steps);
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);
  const std::vector<std::unique_ptr<Optimizer>>& parts() const { return parts_; }
  int64_t state_bytes() const;  // over all parts
  // One line per group: "muon (muon): lr 0.02 (cosine, ...), momentum 0.95 (constant), ...".
  std::vector<std::string> describe() const;

 private:
  std::vector<std::unique_ptr<Optimizer>> parts_;
};

}  // namespace muonlab
