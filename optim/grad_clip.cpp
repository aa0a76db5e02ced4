// Gradient utilities: global norm (fp64 accumulation), clipping by global norm, NaN/Inf lookup.
#include "optim/grad_clip.h"

#include <cmath>

#include "optim/kernels/sum_of_squares.h"

namespace muonlab {

double global_grad_norm(const std::vector<NamedParam>& params) {
  torch::NoGradGuard no_grad;
  double total = 0;
  for (const auto& named : params) {
    const torch::Tensor& grad = named.param.grad();
    if (!grad.defined()) continue;
    total += sum_of_squares(grad);
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<NamedParam>& params, double max_norm) {
  const double norm = global_grad_norm(params);
  if (max_norm <= 0 || !std::isfinite(norm) || norm <= max_norm) return norm;
  torch::NoGradGuard no_grad;
  const double scale = max_norm / (norm + 1e-6);
  for (const auto& named : params) {
    torch::Tensor grad = named.param.grad();
    if (grad.defined()) grad.mul_(scale);
  }
  return norm;
}

std::string first_nonfinite_grad(const std::vector<NamedParam>& params) {
  torch::NoGradGuard no_grad;
  for (const auto& named : params) {
    const torch::Tensor& grad = named.param.grad();
    if (grad.defined() && !torch::isfinite(grad).all().item<bool>()) return named.name;
  }
  return "";
}

}  // namespace muonlab
