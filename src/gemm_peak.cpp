// Timing an n × n product: inputs from a private generator, one warm-up call (oneDNN compiles its
// kernel there), then the fastest of the timed calls.
#include "src/gemm_peak.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "models/kernels/sgemm.h"

namespace muonlab {

GemmPeak measure_gemm_peak(const std::string& precision) {
  constexpr int64_t kN = 1024;
  constexpr int kRepeats = 5;
  torch::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(12345);
  const auto dtype = precision == "bf16" ? torch::kBFloat16 : torch::kFloat;
  const torch::Tensor a = at::randn({kN, kN}, gen).to(dtype);
  const torch::Tensor b = at::randn({kN, kN}, gen).to(dtype);
  return {2.0 * kN * kN * kN / best_matmul_seconds(a, b, kRepeats) / 1e9, kN, precision};
}

double best_matmul_seconds(const torch::Tensor& a, const torch::Tensor& b, int repeats) {
  // float32 through the library the model's layers use (the BLAS or oneDNN).
  const bool fp32 = a.scalar_type() == torch::kFloat && sgemm_available();
  auto product = [&] { return fp32 ? sgemm_matmul(a, b) : torch::matmul(a, b); };
  torch::Tensor c = product();  // warm-up
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    c = product();
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return std::max(best, 1e-9);
}

}  // namespace muonlab
