// Causal scaled-dot-product attention behind one small shim, so a LibTorch version with a fused
// kernel can be swapped in without touching the model. Handles grouped-query heads.
#pragma once
#include <torch/torch.h>

namespace muonlab {

// q (B, H, T, D), k and v (B, Hkv, T, D) with H % Hkv == 0 -> (B, H, T, D).
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v);

// The same without the blocked kernel: batched products over the full T x T scores and the fused
// causal softmax. What non-float32 tensors take; tests and benchmarks compare against it.
torch::Tensor causal_attention_tensor_ops(const torch::Tensor& q, const torch::Tensor& k,
                                          const torch::Tensor& v);

}  // namespace muonlab
