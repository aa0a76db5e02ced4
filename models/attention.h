// Causal scaled-dot-product attention behind one small shim, so a LibTorch version with a fused
// kernel can be swapped in without touching the model. Handles grouped-query heads.
#pragma once
#include <torch/torch.h>

namespace muonlab {

// q (B, H, T, D), k and v (B, Hkv, T, D) with H % Hkv == 0 -> (B, H, T, D).
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v);

}  // namespace muonlab
