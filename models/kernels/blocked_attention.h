// Causal attention for float32 and bfloat16 CPU tensors, one autograd function computed block by
// block: each (batch, kv head) pair runs on one thread, and for each block of kBlock query rows
// only the keys up to that block are multiplied, so the products against masked keys (almost half
// of the T x T scores) are never formed, in forward or backward. The small products go straight
// to the GEMM shim (models/kernels/sgemm.h: fp32 on the BLAS or oneDNN, bf16 on oneDNN with float
// accumulation, where oneDNN runs AVX-512); the softmax is the fused causal one
// (models/kernels/causal_softmax.h), in float for both dtypes. Grouped-query heads share K/V
// without copies. The output is a transposed view of a (B, T, H, D) tensor, so merging heads
// afterwards is free. Not twice differentiable; other dtypes and devices, and bf16 without
// oneDNN's AVX-512 GEMM, use the tensor-op path in models/attention.cpp.
#pragma once
#include <torch/types.h>

namespace muonlab {

// True when blocked_causal_attention can run these (shape-checked) tensors here.
bool blocked_attention_applies(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v);

// q (B, H, T, D), k and v (B, Hkv, T, D) with H % Hkv == 0 -> (B, H, T, D).
torch::Tensor blocked_causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v);

}  // namespace muonlab
