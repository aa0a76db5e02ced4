// Newton-Schulz orthogonalisation: the quintic iteration that maps G = U S V^T to roughly
// U V^T. Input is Frobenius-normalised (eps 1e-7), transposed when tall, iterated in bf16 (or
// fp32) and returned in the input's dtype and shape. Works on batches (leading dims).
// Singular values land in about [0.68, 1.13] after 5 Keller steps; that is intended.
#pragma once
#include <torch/torch.h>

#include <array>
#include <string>
#include <vector>

namespace muonlab {

using QuinticCoefficients = std::array<double, 3>;  // (a, b, c): a X + b (XX^T) X + c (XX^T)^2 X

// The per-iteration coefficient schedule for `name` ("keller" or "polar_express") and `steps`
// iterations, plus the factor the Frobenius norm is multiplied by before dividing (1 for keller,
// 1.02 for polar_express). Throws std::invalid_argument for an unknown name.
struct NsSchedule {
  std::vector<QuinticCoefficients> coefficients;
  double norm_scale = 1.0;
};
NsSchedule ns_schedule(const std::string& name, int steps);

constexpr QuinticCoefficients kKellerCoefficients{3.4445, -4.7750, 2.0315};

// g (..., m, n) -> approximately orthogonalised (..., m, n), same dtype as g.
torch::Tensor newton_schulz(const torch::Tensor& g, const NsSchedule& schedule, bool bf16 = true,
                            double eps = 1e-7);

}  // namespace muonlab
