// The model's projections, y = x w^T (dense layers without bias), as autograd functions whose
// three products (forward, input gradient, weight gradient) are called directly:
// - float32, where models/kernels/sgemm.h chose oneDNN over the BLAS (torch::linear always runs
//   fp32 on the BLAS, on some machines a narrower kernel than the CPU can run: 2x slower on Zen 5
//   with OpenBLAS pinned to Haswell);
// - under bf16 CPU autocast where oneDNN has its AVX-512 bf16 GEMM: the forward is autocast's
//   (bf16 operands, bf16 output), but the weight gradient, and the input gradient of a float32
//   input, come from oneDNN's bf16 x bf16 -> float GEMM in float32, neither rounded to bf16 nor
//   cast back as autocast's linear does (less memory traffic, and more precise).
// Everywhere else it is torch::linear itself. No bias; not twice differentiable.
#pragma once
#include <torch/types.h>

namespace muonlab {

// x (..., K) float32, w (N, K) -> (..., N).
torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& w);

// The fused function regardless of the library choice (for tests).
torch::Tensor sgemm_dense(const torch::Tensor& x, const torch::Tensor& w);

// The bf16 autocast function (for tests and benchmarks): requires bf16 CPU autocast on, x float32
// or bf16, w float32, and bf16_gemm_available().
torch::Tensor bf16_dense(const torch::Tensor& x, const torch::Tensor& w);

}  // namespace muonlab
