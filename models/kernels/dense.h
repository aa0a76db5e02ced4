// The model's projections, y = x w^T (dense layers without bias), as one autograd function whose
// three products (forward, input gradient, weight gradient) go through models/kernels/sgemm.h when
// that chose oneDNN over the BLAS: torch::linear always runs fp32 on the BLAS, which on some
// machines is a narrower kernel than the CPU can run (2x slower on Zen 5 with OpenBLAS pinned to
// Haswell). Everywhere else (the BLAS chosen, bf16 autocast on, other dtypes or devices) it is
// torch::linear itself, so autocast's bf16 casts and oneDNN's bf16 kernels are unchanged. No bias;
// not twice differentiable.
#pragma once
#include <torch/types.h>

namespace muonlab {

// x (..., K) float32, w (N, K) -> (..., N).
torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& w);

// The fused function regardless of the library choice (for tests).
torch::Tensor sgemm_dense(const torch::Tensor& x, const torch::Tensor& w);

}  // namespace muonlab
