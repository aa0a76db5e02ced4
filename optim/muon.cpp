// Muon update rule: EMA momentum, Nesterov blend, Newton-Schulz on same-shape matrices batched
// together, decoupled weight decay and the shape-dependent lr factor; plus state save/load.
#include "optim/muon.h"

#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace muonlab {

namespace {

void validate_options(const MuonOptions& options) {
  require_coefficient(options.momentum, "optim.momentum");
  muon_lr_scale(options.lr_scale, 1, 1);  // throws on an unknown kind
  if (options.orthogonalizer != "newton_schulz" && options.orthogonalizer != "exact") {
    throw std::invalid_argument("optim.orthogonalizer: unknown '" + options.orthogonalizer +
                                "'; use newton_schulz or exact");
  }
  if (options.neuron_norm) require_coefficient(options.beta2, "optim.betas");
}

void require_matrix(const NamedParam& named) {
  if (named.param.dim() == 2) return;
  std::ostringstream out;
  out << "Muon: parameter '" << named.name << "' has shape " << named.param.sizes()
      << "; Muon takes only 2-D matrices (route it to AdamW)";
  throw std::invalid_argument(out.str());
}

}  // namespace

torch::Tensor exact_polar_factor(const torch::Tensor& g) {
  auto [u, s, vh] = at::linalg_svd(g.to(torch::kDouble), /*full_matrices=*/false);
  // Directions with sigma <= 1e-10 sigma_max are numerically null: drop them rather than give
  // their noise unit weight (a full-rank input keeps every direction, bit for bit).
  torch::Tensor keep = s > std::get<0>(s.max(-1, /*keepdim=*/true)) * kPolarRankTolerance;
  return torch::matmul(u * keep.unsqueeze(-2).to(u.scalar_type()), vh).to(g.scalar_type());
}

double muon_lr_scale(const std::string& kind, int64_t rows, int64_t cols) {
  const double r = static_cast<double>(rows), c = static_cast<double>(cols);
  if (kind == "keller") return std::sqrt(std::max(1.0, r / c));
  if (kind == "match_rms_adamw") return 0.2 * std::sqrt(std::max(r, c));
  if (kind == "none") return 1.0;
  throw std::invalid_argument("optim.lr_scale: unknown '" + kind +
                              "'; use keller, match_rms_adamw or none");
}

Muon::Muon(std::string group_name, std::vector<NamedParam> params, const MuonOptions& options)
    : options_(options), schedule_(ns_schedule(options.ns_coefficients, options.ns_steps)) {
  validate_options(options);
  for (const auto& named : params) require_matrix(named);
  init_group(std::move(group_name), std::move(params), options.lr, options.momentum,
             options.weight_decay);
  for (const auto& named : groups_[0].params)  // fp32, or fp64 for fp64 parameters
    momentum_.push_back(torch::zeros_like(
        named.param, named.param.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat));
  register_state("momentum", &momentum_);
  if (options.neuron_norm) {
    for (const auto& named : groups_[0].params)
      row_variance_.push_back(torch::zeros({named.param.size(0), 1}, torch::kFloat));
    register_state("row_variance", &row_variance_);
  }
}

void Muon::step() {
  torch::NoGradGuard no_grad;
  ++step_;
  const ParamGroup& group = groups_[0];
  const double beta = group.momentum;

  // Momentum update and Nesterov blend; indices grouped by shape for batched orthogonalisation.
  std::vector<torch::Tensor> inputs(group.params.size());
  std::map<std::pair<int64_t, int64_t>, std::vector<size_t>> by_shape;
  for (size_t i = 0; i < group.params.size(); ++i) {
    const torch::Tensor& param = group.params[i].param;
    const torch::Tensor& grad = param.grad();
    if (!grad.defined()) continue;
    torch::Tensor grad32 = grad.to(momentum_[i].scalar_type());
    momentum_[i].lerp_(grad32, 1.0 - beta);
    inputs[i] = options_.nesterov ? grad32.lerp(momentum_[i], beta) : momentum_[i];
    by_shape[{param.size(0), param.size(1)}].push_back(i);
  }

  const double lr = group.lr, wd = group.weight_decay;
  for (const auto& [shape, indices] : by_shape) {
    std::vector<torch::Tensor> batch;
    for (size_t i : indices) batch.push_back(inputs[i]);
    torch::Tensor stacked = batch.size() == 1 ? batch[0] : torch::stack(batch);
    torch::Tensor ortho = options_.orthogonalizer == "exact"
                              ? exact_polar_factor(stacked)
                              : newton_schulz(stacked, schedule_, options_.ns_bf16);
    std::vector<torch::Tensor> updates =
        batch.size() == 1 ? std::vector<torch::Tensor>{ortho} : ortho.unbind(0);
    const double step_size = lr * muon_lr_scale(options_.lr_scale, shape.first, shape.second);
    for (size_t k = 0; k < indices.size(); ++k) {
      torch::Tensor param = group.params[indices[k]].param;
      torch::Tensor update = updates[k].to(param.scalar_type());
      if (options_.neuron_norm) update = normalize_rows(indices[k], update);
      if (wd != 0 && options_.cautious_wd) {
        param.sub_(param * (update * param >= 0), lr * wd);
      } else {
        decay_matrix(param, lr, wd);
      }
      param.add_(update, -step_size);
    }
  }
}

torch::Tensor Muon::normalize_rows(size_t index, const torch::Tensor& update) {
  torch::Tensor& variance = row_variance_[index];  // (rows, 1)
  variance.mul_(options_.beta2).add_(update.square().mean(1, /*keepdim=*/true), 1 - options_.beta2);
  torch::Tensor normalized = update / (variance.sqrt() + 1e-10);
  return normalized * (update.norm() / (normalized.norm() + 1e-10));
}

}  // namespace muonlab
