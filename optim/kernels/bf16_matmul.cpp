// The CPU check mirrors LibTorch 1.13's own (mkldnn_bf16_device_check: AVX-512 BW, VL and DQ).
#include "optim/kernels/bf16_matmul.h"

namespace muonlab {

bool has_native_bf16_matmul() {
#if defined(__x86_64__)
  static const bool native = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }();
  return native;
#else
  return false;
#endif
}

torch::Tensor bf16_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  const bool both_bf16 = a.scalar_type() == torch::kBFloat16 && b.scalar_type() == torch::kBFloat16;
  if (!both_bf16 || !a.is_cpu() || has_native_bf16_matmul()) return torch::matmul(a, b);
  return torch::matmul(a.to(torch::kFloat), b.to(torch::kFloat)).to(torch::kBFloat16);
}

}  // namespace muonlab
