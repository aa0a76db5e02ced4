// bfloat16 matrix products that are fast on every CPU. LibTorch 1.13 sends bf16 matmuls to oneDNN
// only on CPUs with AVX-512 (F/BW/DQ/VL); elsewhere (e.g. AVX2-only Zen 3) it runs a scalar
// reference GEMM tens of times slower than fp32, with bf16 accumulation in places. There the
// product here widens both operands to fp32, multiplies through the BLAS and rounds the result
// once to bf16: the numbers oneDNN gives (bf16 inputs, fp32 accumulation, one rounding), at fp32
// speed. It does not change autocast's matmuls inside the model.
#pragma once
#include <torch/types.h>

namespace muonlab {

// True when LibTorch runs bf16 matmuls through oneDNN on this CPU.
bool has_native_bf16_matmul();

// torch::matmul(a, b) for bf16 a and b (any batch dims), as described above; other dtypes go to
// torch::matmul unchanged.
torch::Tensor bf16_matmul(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace muonlab
