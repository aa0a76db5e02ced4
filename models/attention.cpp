// Causal scaled-dot-product attention (LibTorch 1.13 has no fused kernel): float32 on the CPU (and
// bfloat16 where oneDNN runs AVX-512) goes to the blocked kernel
// (models/kernels/blocked_attention.h); anything else takes explicit scores,
// the fused causal softmax (models/kernels/causal_softmax.h) and the weighted sum. Grouped-query
// heads share K/V without copies on both paths.
#include "models/attention.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "models/kernels/blocked_attention.h"
#include "models/kernels/causal_softmax.h"

namespace muonlab {
namespace {

void check_shapes(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) {
    throw std::invalid_argument("causal_attention: q, k, v must be 4-D (B, H, T, D)");
  }
  if (k.sizes() != v.sizes()) throw std::invalid_argument("causal_attention: k and v differ");
  const bool same_btd = q.size(0) == k.size(0) && q.size(2) == k.size(2) && q.size(3) == k.size(3);
  if (!same_btd || k.size(1) == 0 || q.size(1) % k.size(1) != 0) {
    throw std::invalid_argument("causal_attention: q heads " + std::to_string(q.size(1)) +
                                " must be a multiple of kv heads " + std::to_string(k.size(1)) +
                                " with matching B, T, D");
  }
}

}  // namespace

torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v) {
  check_shapes(q, k, v);
  if (blocked_attention_applies(q, k, v)) return blocked_causal_attention(q, k, v);
  return causal_attention_tensor_ops(q, k, v);
}

torch::Tensor causal_attention_tensor_ops(const torch::Tensor& q, const torch::Tensor& k,
                                          const torch::Tensor& v) {
  check_shapes(q, k, v);
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), G = H / Hkv;
  // Query heads h = kv * G + g share kv head `kv` (same as repeat_interleave of K/V by G):
  // fold the G query heads of a group into the row dimension instead of copying K/V.
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  torch::Tensor qg = q.reshape({B, Hkv, G * T, D});               // (B, Hkv, G*T, D)
  torch::Tensor scores = torch::matmul(qg, k.transpose(-2, -1));  // (B, Hkv, G*T, T)
  torch::Tensor probs =
      causal_softmax(scores.view({B, Hkv, G, T, T}), scale).view({B, Hkv, G * T, T});
  torch::Tensor out = torch::matmul(probs, v);  // (B, Hkv, G*T, D)
  return out.view({B, H, T, D});
}

}  // namespace muonlab
