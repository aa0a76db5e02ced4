// Builds the optimizer set from its validated config. `routes` decide, the same way for every
// kind, which parameters go to the main optimizer `kind` and which to the auxiliary AdamW group
// configured by `adamw` (by default: hidden 2-D matrices "blocks.*" to main; token embedding, LM
// head and 1-D gains to AdamW). So runs that differ only in `kind` treat the rest identically.
// It also gives each group its schedules: lr follows the run's `schedule` and momentum and
// weight decay stay constant, unless optim.schedules / optim.adamw.schedules say otherwise.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "optim/adamw.h"
#include "optim/muon.h"
#include "optim/optimizer.h"
#include "optim/routing.h"
#include "optim/schedule.h"

namespace muonlab {

// Per-group schedule overrides (optim.schedules.{lr,momentum,weight_decay}); unset = default.
struct ScheduleOverrides {
  std::optional<ScheduleConfig> lr, momentum, weight_decay;
};

struct OptimConfig {
  std::string kind = "adamw";  // adamw | muon | normuon | sgd | ngd | signgd | lion
  double lr = 3e-3;
  double weight_decay = 0.0;
  // betas: adamw and lion kinds (lion: b1 blends the sign input, b2 updates m); eps: adamw
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  // muon, sgd and ngd (momentum, nesterov) and signgd (momentum) kinds
  double momentum = 0.95;
  bool nesterov = true;
  // muon kind
  std::string ns_coefficients = "keller";
  int ns_steps = 5;
  bool ns_bf16 = true;
  std::string lr_scale = "keller";
  std::string orthogonalizer = "newton_schulz";
  // shorthand for a momentum schedule of the main group: linear momentum_start -> momentum
  int64_t momentum_warmup_steps = 0;
  double momentum_start = 0.85;
  bool cautious_wd = false;
  // embeddings, head, gains
  AdamWOptions adamw;
  // schedules of the main group and of the AdamW group
  ScheduleOverrides schedules, adamw_schedules;
  // which parameter goes where (main = `kind`, adamw = the group above)
  std::vector<RouteRule> routes = default_routes();
  // Throws std::invalid_argument naming the optim.* key that is out of range.
  void validate() const;
};

// The names of the optimizer kinds the registry knows.
std::vector<std::string> optimizer_kinds();
// True for parameters the main optimizer takes.
bool is_hidden_matrix(const NamedParam& p);
// The schedules of the main group and of the AdamW group, given the run's lr schedule.
GroupSchedules main_schedules(const OptimConfig& cfg, const ScheduleConfig& run_lr_schedule);
GroupSchedules adamw_schedules(const OptimConfig& cfg, const ScheduleConfig& run_lr_schedule);
std::unique_ptr<OptimizerSet> build_optimizer(
    const OptimConfig& cfg, const std::vector<NamedParam>& params,
    const ScheduleConfig& run_lr_schedule = constant_schedule());

}  // namespace muonlab
