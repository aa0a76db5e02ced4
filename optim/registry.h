// Builds the optimizer set from its validated config. `routes` decide, the same way for every
// kind, which parameters go to the main optimizer `kind` and which to the auxiliary AdamW group
// configured by `adamw` (by default: hidden 2-D matrices "blocks.*" to main; token embedding, LM
// head and 1-D gains to AdamW). So runs that differ only in `kind` treat the rest identically.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "optim/adamw.h"
#include "optim/muon.h"
#include "optim/optimizer.h"
#include "optim/routing.h"

namespace muonlab {

struct OptimConfig {
  std::string kind = "adamw";  // adamw | muon | sgd | signgd | lion
  double lr = 3e-3;
  double weight_decay = 0.0;
  // betas: adamw and lion kinds (lion: b1 blends the sign input, b2 updates m); eps: adamw
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  // muon, sgd (momentum, nesterov) and signgd (momentum) kinds
  double momentum = 0.95;
  bool nesterov = true;
  // muon kind
  std::string ns_coefficients = "keller";
  int ns_steps = 5;
  bool ns_bf16 = true;
  std::string lr_scale = "keller";
  std::string orthogonalizer = "newton_schulz";
  int64_t momentum_warmup_steps = 0;
  double momentum_start = 0.85;
  bool cautious_wd = false;
  // embeddings, head, gains
  AdamWOptions adamw;
  // which parameter goes where (main = `kind`, adamw = the group above)
  std::vector<RouteRule> routes = default_routes();
  // Throws std::invalid_argument naming the optim.* key that is out of range.
  void validate() const;
};

// The names of the optimizer kinds the registry knows.
std::vector<std::string> optimizer_kinds();
// True for parameters the main optimizer takes.
bool is_hidden_matrix(const NamedParam& p);
std::unique_ptr<OptimizerSet> build_optimizer(const OptimConfig& cfg,
                                              const std::vector<NamedParam>& params);

}  // namespace muonlab
