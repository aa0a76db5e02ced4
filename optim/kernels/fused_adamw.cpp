// The single-pass AdamW kernel: a plain element loop the compiler vectorises, cloned for AVX-512,
// AVX2 and the baseline ISA (the loader picks one per CPU), run over chunks by at::parallel_for.
// This file is compiled with MUONLAB_KERNEL_FLAGS (CMakeLists.txt): no clone may fuse a multiply
// and an add, and sqrt vectorises without an errno check.
#include "optim/kernels/fused_adamw.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>

#include "optim/kernels/isa_clones.h"

namespace muonlab {
namespace {

struct FloatCoefficients {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, neg_step_size, sqrt_bc2, eps;
};

FloatCoefficients to_float(const AdamWCoefficients& c) {
  return {static_cast<float>(c.decay),
          static_cast<float>(c.beta1),
          static_cast<float>(1.0 - c.beta1),
          static_cast<float>(c.beta2),
          static_cast<float>(1.0 - c.beta2),
          static_cast<float>(-c.step_size),
          static_cast<float>(c.sqrt_bias_correction2),
          static_cast<float>(c.eps)};
}

// Elements [begin, end) of the update.
MUONLAB_ISA_CLONES
void adamw_range(float* __restrict p, const float* __restrict g, float* __restrict m,
                 float* __restrict v, int64_t begin, int64_t end, FloatCoefficients c) {
  for (int64_t i = begin; i < end; ++i) {
    const float grad = g[i];
    const float m_new = c.beta1 * m[i] + c.one_minus_beta1 * grad;
    const float v_new = c.beta2 * v[i] + c.one_minus_beta2 * (grad * grad);
    const float denom = std::sqrt(v_new) / c.sqrt_bc2 + c.eps;
    m[i] = m_new;
    v[i] = v_new;
    p[i] = c.decay * p[i] + c.neg_step_size * (m_new / denom);
  }
}

// Elements per parallel task: large enough that thread start-up stays small against the work.
constexpr int64_t kGrain = 1 << 15;

}  // namespace

bool fused_adamw_applies(const torch::Tensor& param, const torch::Tensor& grad,
                         const torch::Tensor& exp_avg, const torch::Tensor& exp_avg_sq) {
  const int64_t n = param.numel();
  for (const torch::Tensor* t : {&param, &grad, &exp_avg, &exp_avg_sq}) {
    if (!t->defined() || t->scalar_type() != torch::kFloat || !t->is_cpu() || !t->is_contiguous() ||
        t->numel() != n)
      return false;
  }
  return true;
}

void fused_adamw_update(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& exp_avg,
                        torch::Tensor& exp_avg_sq, const AdamWCoefficients& coefficients) {
  TORCH_CHECK(fused_adamw_applies(param, grad, exp_avg, exp_avg_sq),
              "fused_adamw_update: needs contiguous float32 CPU tensors of one size");
  float* p = param.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* m = exp_avg.data_ptr<float>();
  float* v = exp_avg_sq.data_ptr<float>();
  const FloatCoefficients c = to_float(coefficients);
  at::parallel_for(0, param.numel(), kGrain,
                   [&](int64_t begin, int64_t end) { adamw_range(p, g, m, v, begin, end, c); });
}

}  // namespace muonlab
