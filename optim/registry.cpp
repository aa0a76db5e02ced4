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
  options.momentum_warmup_steps = cfg.momentum_warmup_steps;
  options.momentum_start = cfg.momentum_start;
  options.cautious_wd = cfg.cautious_wd;
  options.neuron_norm = cfg.kind == "normuon";
  options.beta2 = cfg.beta2;
  return options;
}

SgdOptions sgd_options(const OptimConfig& cfg) {
  return SgdOptions{cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay};
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
  if (cfg.kind == "sgd")
    return std::make_unique<Sgd>(cfg.kind, std::move(params), sgd_options(cfg));
  if (cfg.kind == "signgd")
    return std::make_unique<SignGd>(cfg.kind, std::move(params), signgd_options(cfg));
  if (cfg.kind == "lion")
    return std::make_unique<Lion>(cfg.kind, std::move(params), lion_options(cfg));
  return std::make_unique<AdamW>(cfg.kind, std::move(params), main_adamw_options(cfg));
}

}  // namespace

std::vector<std::string> optimizer_kinds() {
  return {"adamw", "muon", "normuon", "sgd", "signgd", "lion"};
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
}

bool is_hidden_matrix(const NamedParam& p) {
  return p.name.rfind("blocks.", 0) == 0 && p.param.dim() == 2;
}

std::unique_ptr<OptimizerSet> build_optimizer(const OptimConfig& cfg,
                                              const std::vector<NamedParam>& params) {
  cfg.validate();
  std::vector<NamedParam> hidden, rest;
  for (const auto& p : params) (route_of(cfg.routes, p) == "main" ? hidden : rest).push_back(p);
  auto set = std::make_unique<OptimizerSet>();
  if (!hidden.empty()) set->add(make_main(cfg, std::move(hidden)));
  if (!rest.empty()) set->add(std::make_unique<AdamW>("aux_adamw", std::move(rest), cfg.adamw));
  return set;
}

}  // namespace muonlab
