// Rotary position embedding: builds the cos/sin tables once and rotates query/key tensors in the
// half-rotation layout (first half of the head dim paired with the second half): float32 and
// bfloat16 4-D tensors through the fused kernel (models/kernels/fused_rope.h), others by tensor
// ops.
#include "models/rope.h"

#include <stdexcept>
#include <string>

#include "models/kernels/fused_rope.h"

namespace muonlab {

Rope::Rope(int64_t head_dim, int64_t max_seq_len, double theta) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    throw std::invalid_argument("rope: head_dim " + std::to_string(head_dim) +
                                " must be positive and even");
  }
  if (max_seq_len < 1) throw std::invalid_argument("rope: max_seq_len must be >= 1");
  if (theta <= 0) throw std::invalid_argument("rope: theta must be > 0");
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // freq_j = theta^(-2j/D), j < D/2
  torch::Tensor j = torch::arange(head_dim / 2, f64);
  torch::Tensor freqs = torch::pow(theta, -2.0 * j / static_cast<double>(head_dim));  // (D/2)
  torch::Tensor pos = torch::arange(max_seq_len, f64);                                // (T)
  torch::Tensor angles = torch::outer(pos, freqs);                                    // (T, D/2)
  cos64_ = torch::cos(angles);
  sin64_ = torch::sin(angles);
  cos_ = cos64_.to(torch::kFloat32);
  sin_ = sin64_.to(torch::kFloat32);
}

void Rope::check_shape(const torch::Tensor& x) const {
  if (!cos_.defined()) throw std::logic_error("rope: apply called on a default-constructed Rope");
  const int64_t T = x.size(-2);
  const int64_t D = x.size(-1);
  if (T > cos_.size(0)) {
    throw std::invalid_argument("rope: sequence length " + std::to_string(T) +
                                " exceeds the table size " + std::to_string(cos_.size(0)));
  }
  if (D != 2 * cos_.size(1)) {
    throw std::invalid_argument("rope: head dim " + std::to_string(D) +
                                " does not match the table (" + std::to_string(2 * cos_.size(1)) +
                                ")");
  }
}

torch::Tensor Rope::apply(const torch::Tensor& x) const {
  check_shape(x);
  if (fused_rope_applies(x)) return fused_rope(x, cos_, sin_);
  return apply_tensor_ops(x);
}

torch::Tensor Rope::apply_tensor_ops(const torch::Tensor& x) const {
  check_shape(x);
  const int64_t T = x.size(-2);
  const int64_t D = x.size(-1);
  const bool is_double = x.scalar_type() == torch::kFloat64;
  const torch::Tensor& cos_table = is_double ? cos64_ : cos_;
  const torch::Tensor& sin_table = is_double ? sin64_ : sin_;
  auto opts = x.options();
  torch::Tensor cos = cos_table.narrow(0, 0, T).to(opts);  // (T, D/2), broadcast over (B, H)
  torch::Tensor sin = sin_table.narrow(0, 0, T).to(opts);
  torch::Tensor x1 = x.narrow(-1, 0, D / 2);  // (..., T, D/2)
  torch::Tensor x2 = x.narrow(-1, D / 2, D / 2);
  return torch::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin}, -1);  // (..., T, D)
}

}  // namespace muonlab
