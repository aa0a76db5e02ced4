// Newton-Schulz orthogonalisation: coefficient schedules (Keller, Polar Express) and the batched
// quintic iteration. The Frobenius normalisation is always done in fp32 (also in bf16 mode) and
// only then cast to the iteration dtype: it avoids bf16 rounding in the norm and never aliases or
// modifies the caller's tensor. bf16 products go through optim/kernels/bf16_matmul.h (fast on every
// CPU).
#include "optim/newton_schulz.h"

#include <stdexcept>

#include "optim/kernels/bf16_matmul.h"

namespace muonlab {

namespace {

// Polar Express 5-step schedule (arXiv 2505.16932; l0 = 1e-3, safety 1.02, cushion 0.02).
const std::vector<QuinticCoefficients> kPolarExpressCoefficients = {
    {8.156554524902461, -22.48329292557795, 15.878769915207462},
    {4.042929935166739, -2.808917465908714, 0.5000178451051316},
    {3.8916678022926607, -2.772484153217685, 0.5060648178503393},
    {3.285753657755655, -2.3681294933425376, 0.46449024233003106},
    {2.3465413258596377, -1.7097828382687081, 0.42323551169305323},
};
constexpr double kPolarExpressNormScale = 1.02;

torch::Tensor transpose_last2(const torch::Tensor& x) { return x.transpose(-2, -1); }

// One quintic step: X <- a X + (b A + c A A) X with A = X X^T.
torch::Tensor quintic_step(const torch::Tensor& x, const QuinticCoefficients& abc) {
  const auto [a, b, c] = abc;
  torch::Tensor gram = bf16_matmul(x, transpose_last2(x));
  torch::Tensor poly = bf16_matmul(gram, gram).mul_(c).add_(gram, b);
  return bf16_matmul(poly, x).add_(x, a);
}

}  // namespace

NsSchedule ns_schedule(const std::string& name, int steps) {
  if (steps < 1) {
    throw std::invalid_argument("optim.ns_steps: must be >= 1, got " + std::to_string(steps));
  }
  NsSchedule schedule;
  if (name == "keller") {
    schedule.coefficients.assign(steps, kKellerCoefficients);
    schedule.norm_scale = 1.0;
  } else if (name == "polar_express") {
    const auto& table = kPolarExpressCoefficients;
    for (int i = 0; i < steps; ++i) {
      schedule.coefficients.push_back(table[std::min<size_t>(i, table.size() - 1)]);
    }
    schedule.norm_scale = kPolarExpressNormScale;
  } else {
    throw std::invalid_argument("optim.ns_coefficients: unknown '" + name +
                                "'; use keller or polar_express");
  }
  return schedule;
}

torch::Tensor newton_schulz(const torch::Tensor& g, const NsSchedule& schedule, bool bf16,
                            double eps) {
  if (g.dim() < 2) {
    throw std::invalid_argument("newton_schulz: input must have >= 2 dims, got " +
                                std::to_string(g.dim()));
  }
  torch::NoGradGuard no_grad;
  const bool tall = g.size(-2) > g.size(-1);
  torch::Tensor x = g.to(torch::kFloat);
  if (tall) x = transpose_last2(x);
  torch::Tensor norm = at::linalg_vector_norm(x, 2, std::vector<int64_t>{-2, -1}, true);
  x = x / (norm * schedule.norm_scale + eps);
  if (bf16) x = x.to(torch::kBFloat16);
  for (const auto& abc : schedule.coefficients) x = quintic_step(x, abc);
  if (tall) x = transpose_last2(x);
  return x.to(g.scalar_type());
}

}  // namespace muonlab
