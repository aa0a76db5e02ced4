// One AdamW update of a float32 parameter in a single pass: each element's parameter, gradient
// and both moments are read once and written once, vectorised (AVX-512, AVX2 or SSE, chosen at
// run time) and split over LibTorch's threads. The same update in separate tensor ops reads and
// writes the three state tensors about eight times. Every element is computed with the same
// IEEE operations in the same order (no fused multiply-add), so the result does not depend on
// the thread count or the CPU's vector width. It does not handle other dtypes, strided tensors or
// devices: fused_adamw_applies says when it can be used, and AdamW falls back to tensor ops.
#pragma once
#include <torch/torch.h>

namespace muonlab {

// The per-step scalars of the update, in the order they are applied:
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p = decay p - step_size * m / (sqrt(v) / sqrt_bias_correction2 + eps)
struct AdamWCoefficients {
  double decay = 1;  // 1 - lr * weight_decay for decayed parameters, else 1
  double beta1 = 0.9, beta2 = 0.95;
  double step_size = 0;              // lr / (1 - beta1^t)
  double sqrt_bias_correction2 = 1;  // sqrt(1 - beta2^t)
  double eps = 1e-8;
};

// True when all four are contiguous float32 CPU tensors with the same number of elements.
bool fused_adamw_applies(const torch::Tensor& param, const torch::Tensor& grad,
                         const torch::Tensor& exp_avg, const torch::Tensor& exp_avg_sq);

// Updates param, exp_avg and exp_avg_sq in place; requires fused_adamw_applies.
void fused_adamw_update(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& exp_avg,
                        torch::Tensor& exp_avg_sq, const AdamWCoefficients& c);

}  // namespace muonlab
