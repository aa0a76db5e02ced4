// Optimizer config validation and construction: hidden matrices to the main optimizer `kind`,
// everything else (embeddings, head, gains) to the auxiliary AdamW group "aux_adamw".
#include "optim/registry.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "optim/lion.h"
#include "optim/sgd.h"
#include "optim/signgd.h"

namespace muonlab {

namespace {

std::string number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) text += (i ? separator : "") + items[i];
  return text;
}

void require(bool ok, const std::string& key, const std::string& rule, double value) {
  if (!ok) throw std::invalid_argument(key + ": must be " + rule + ", got " + number(value));
}

void validate_adamw(const AdamWOptions& a, const std::string& prefix) {
  require(a.lr > 0, prefix + "lr", "> 0", a.lr);
  require(a.weight_decay >= 0, prefix + "weight_decay", ">= 0", a.weight_decay);
  require(a.beta1 >= 0 && a.beta1 < 1, prefix + "betas", "in [0, 1)", a.beta1);
  require(a.beta2 >= 0 && a.beta2 < 1, prefix + "betas", "in [0, 1)", a.beta2);
  require(a.eps > 0, prefix + "eps", "> 0", a.eps);
}

AdamWOptions main_adamw_options(const OptimConfig& cfg) {
  AdamWOptions options;
  options.lr = cfg.lr;
  options.beta1 = cfg.beta1;
  options.beta2 = cfg.beta2;
  options.eps = cfg.eps;
  options.weight_decay = cfg.weight_decay;
  return options;
}

MuonOptions muon_options(const OptimConfig& cfg) {
  MuonOptions options;
  options.lr = cfg.lr;
  options.momentum = cfg.momentum;
  options.nesterov = cfg.nesterov;
  options.weight_decay = cfg.weight_decay;
  options.ns_coefficients = cfg.ns_coefficients;
  options.ns_steps = cfg.ns_steps;
  options.ns_bf16 = cfg.ns_bf16;
  options.lr_scale = cfg.lr_scale;
  options.orthogonalizer = cfg.orthogonalizer;
  options.cautious_wd = cfg.cautious_wd;
  options.neuron_norm = cfg.kind == "normuon";
  options.beta2 = cfg.beta2;
  return options;
}

SgdOptions sgd_options(const OptimConfig& cfg) {
  return SgdOptions{cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay, cfg.kind == "ngd"};
}

SignGdOptions signgd_options(const OptimConfig& cfg) {
  return SignGdOptions{cfg.lr, cfg.momentum, cfg.weight_decay};
}

LionOptions lion_options(const OptimConfig& cfg) {
  return LionOptions{cfg.lr, cfg.beta1, cfg.beta2, cfg.weight_decay};
}

std::unique_ptr<Optimizer> make_main(const OptimConfig& cfg, std::vector<NamedParam> params) {
  if (cfg.kind == "muon" || cfg.kind == "normuon")
    return std::make_unique<Muon>(cfg.kind, std::move(params), muon_options(cfg));
  if (cfg.kind == "sgd" || cfg.kind == "ngd")
    return std::make_unique<Sgd>(cfg.kind, std::move(params), sgd_options(cfg));
  if (cfg.kind == "signgd")
    return std::make_unique<SignGd>(cfg.kind, std::move(params), signgd_options(cfg));
  if (cfg.kind == "lion")
    return std::make_unique<Lion>(cfg.kind, std::move(params), lion_options(cfg));
  return std::make_unique<AdamW>(cfg.kind, std::move(params), main_adamw_options(cfg));
}

// The coefficient the main group's momentum schedule multiplies (see ParamGroup).
double main_momentum(const OptimConfig& cfg) {
  if (cfg.kind == "adamw") return cfg.beta1;
  if (cfg.kind == "lion") return cfg.beta2;
  return cfg.momentum;
}

// The config key that sets main_momentum.
std::string main_momentum_key(const OptimConfig& cfg) {
  return cfg.kind == "adamw" || cfg.kind == "lion" ? "optim.betas" : "optim.momentum";
}

void validate_overrides(const ScheduleOverrides& o, const std::string& prefix, double momentum) {
  if (o.lr) o.lr->validate(prefix + "lr.", "min_ratio");
  if (o.weight_decay) o.weight_decay->validate(prefix + "weight_decay.", "min_ratio");
  if (!o.momentum) return;
  o.momentum->validate(prefix + "momentum.", "min_ratio");
  require(momentum * std::max(1.0, o.momentum->start_ratio) < 1, prefix + "momentum.start_ratio",
          "such that the momentum stays below 1", o.momentum->start_ratio);
}

void validate_momentum_warmup(const OptimConfig& cfg) {
  require(cfg.momentum_warmup_steps >= 0, "optim.momentum_warmup_steps", ">= 0",
          static_cast<double>(cfg.momentum_warmup_steps));
  require(cfg.momentum_start >= 0 && cfg.momentum_start < 1, "optim.momentum_start", "in [0, 1)",
          cfg.momentum_start);
  if (cfg.momentum_warmup_steps == 0) return;
  if (cfg.schedules.momentum)
    throw std::invalid_argument(
        "optim.momentum_warmup_steps: set either it or optim.schedules.momentum, not both");
  require(main_momentum(cfg) > 0, main_momentum_key(cfg), "> 0 for a momentum warmup",
          main_momentum(cfg));
}

GroupSchedules resolve(const ScheduleOverrides& o, const ScheduleConfig& run_lr_schedule) {
  GroupSchedules s;
  s.lr = o.lr.value_or(run_lr_schedule);
  if (o.momentum) s.momentum = *o.momentum;
  if (o.weight_decay) s.weight_decay = *o.weight_decay;
  return s;
}

}  // namespace

GroupSchedules main_schedules(const OptimConfig& cfg, const ScheduleConfig& run_lr_schedule) {
  GroupSchedules s = resolve(cfg.schedules, run_lr_schedule);
  if (cfg.momentum_warmup_steps > 0) {
    s.momentum.warmup_steps = cfg.momentum_warmup_steps;
    s.momentum.start_ratio = cfg.momentum_start / main_momentum(cfg);
  }
  return s;
}

GroupSchedules adamw_schedules(const OptimConfig& cfg, const ScheduleConfig& run_lr_schedule) {
  return resolve(cfg.adamw_schedules, run_lr_schedule);
}

std::vector<std::string> optimizer_kinds() {
  return {"adamw", "muon", "normuon", "sgd", "ngd", "signgd", "lion"};
}

void OptimConfig::validate() const {
  const auto kinds = optimizer_kinds();
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
    throw std::invalid_argument("optim.kind: unknown '" + kind + "'; use one of " +
                                join(kinds, ", "));
  }
  // Every kind reads optim.lr and optim.weight_decay; adamw and lion read optim.betas.
  validate_adamw(main_adamw_options(*this), "optim.");
  // muon, sgd and signgd read optim.momentum.
  require(momentum >= 0 && momentum < 1, "optim.momentum", "in [0, 1)", momentum);
  ns_schedule(ns_coefficients, ns_steps);  // throws optim.ns_steps / optim.ns_coefficients
  muon_lr_scale(lr_scale, 1, 1);           // throws optim.lr_scale
  if (kind == "muon" || kind == "normuon") Muon("validate", {}, muon_options(*this));
  validate_adamw(adamw, "optim.adamw.");
  validate_routes(routes);
  validate_momentum_warmup(*this);
  validate_overrides(schedules, "optim.schedules.", main_momentum(*this));
  validate_overrides(adamw_schedules, "optim.adamw.schedules.", adamw.beta1);
}

bool is_hidden_matrix(const NamedParam& p) {
  return p.name.rfind("blocks.", 0) == 0 && p.param.dim() == 2;
}

std::unique_ptr<OptimizerSet> build_optimizer(const OptimConfig& cfg,
                                              const std::vector<NamedParam>& params,
                                              const ScheduleConfig& run_lr_schedule) {
  cfg.validate();
  std::vector<NamedParam> hidden, rest;
  for (const auto& p : params) (route_of(cfg.routes, p) == "main" ? hidden : rest).push_back(p);
  auto set = std::make_unique<OptimizerSet>();
  if (!hidden.empty()) {
    auto main = make_main(cfg, std::move(hidden));
    main->groups()[0].schedules = main_schedules(cfg, run_lr_schedule);
    set->add(std::move(main));
  }
  if (!rest.empty()) {
    auto aux = std::make_unique<AdamW>("aux_adamw", std::move(rest), cfg.adamw);
    aux->groups()[0].schedules = adamw_schedules(cfg, run_lr_schedule);
    set->add(std::move(aux));
  }
  return set;
}

}  // namespace muonlab
