// Rotary position embedding (half-rotation layout): precomputed cos/sin tables and their
// application to query/key tensors. It does not know about attention heads beyond the shape.
#pragma once
#include <torch/torch.h>

namespace muonlab {

class Rope {
 public:
  Rope() = default;
  Rope(int64_t head_dim, int64_t max_seq_len, double theta);
  // x (B, H, T, D) -> x rotated by position; T <= max_seq_len.
  torch::Tensor apply(const torch::Tensor& x) const;
  // The same by narrow, multiply and cat (what float64 takes; tests compare the fused kernel).
  torch::Tensor apply_tensor_ops(const torch::Tensor& x) const;

 private:
  void check_shape(const torch::Tensor& x) const;  // throws std::invalid_argument
  torch::Tensor cos_, sin_;                        // (max_seq_len, D/2) float32, the hot-path dtype
  torch::Tensor cos64_, sin64_;  // (max_seq_len, D/2) float64, for double-precision models
};

}  // namespace muonlab
