// Fused RoPE: rows of D elements, row (b, h, t) rotated by the angles of position t; loops the
// compiler vectorises (cloned per ISA, compiled with MUONLAB_KERNEL_FLAGS), rows in parallel.
#include "models/kernels/fused_rope.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>

#include "models/kernels/kernel_math.h"
#include "optim/kernels/isa_clones.h"

namespace muonlab {
namespace {

using kernel::bits;
using kernel::store;
using kernel::to_float;

// Element strides of a (B, H, T, D) tensor along B, H and T (D has unit stride).
struct RowLayout {
  int64_t b, h, t;
  explicit RowLayout(const torch::Tensor& x) : b(x.stride(0)), h(x.stride(1)), t(x.stride(2)) {}
};

struct RotateArgs {
  RowLayout in, out;
  int64_t H, T, half;
  const float* cos;
  const float* sin;
  float sign;  // +1 forward, -1 backward (the inverse rotation)
};

// y1 = x1 cos - x2 (sign sin), y2 = x2 cos + x1 (sign sin) for rows [begin, end) in (b, h, t)
// order.
template <typename T>
inline void rotate_rows(const T* x, T* y, const RotateArgs& a, int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const int64_t t = row % a.T, h = (row / a.T) % a.H, b = row / (a.T * a.H);
    const T* __restrict in = x + b * a.in.b + h * a.in.h + t * a.in.t;
    T* __restrict out = y + b * a.out.b + h * a.out.h + t * a.out.t;
    const float* __restrict c = a.cos + t * a.half;
    const float* __restrict s = a.sin + t * a.half;
    for (int64_t j = 0; j < a.half; ++j) {
      const float x1 = to_float(in[j]), x2 = to_float(in[j + a.half]);
      const float sj = a.sign * s[j];
      store(out + j, x1 * c[j] - x2 * sj);
      store(out + j + a.half, x2 * c[j] + x1 * sj);
    }
  }
}

MUONLAB_ISA_CLONES
void rotate_rows_f32(const float* x, float* y, const RotateArgs& a, int64_t begin, int64_t end) {
  rotate_rows(x, y, a, begin, end);
}
MUONLAB_ISA_CLONES
void rotate_rows_bf16(const uint16_t* x, uint16_t* y, const RotateArgs& a, int64_t begin,
                      int64_t end) {
  rotate_rows(x, y, a, begin, end);
}

constexpr int64_t kRowGrain = 256;

// y = x rotated by sign * angle, in x's layout (unit stride along D assumed).
torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                     float sign) {
  torch::Tensor y = torch::empty_like(x);
  if (y.stride(3) != 1) y = torch::empty(x.sizes(), x.options());
  const RotateArgs args{
      RowLayout(x),          RowLayout(y),          x.size(1), x.size(2), x.size(3) / 2,
      cos.data_ptr<float>(), sin.data_ptr<float>(), sign};
  const int64_t rows = x.size(0) * x.size(1) * x.size(2);
  at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
    if (x.scalar_type() == torch::kFloat)
      rotate_rows_f32(x.data_ptr<float>(), y.data_ptr<float>(), args, begin, end);
    else
      rotate_rows_bf16(bits(x), bits(y), args, begin, end);
  });
  return y;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class FusedRopeFunction : public torch::autograd::Function<FusedRopeFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& cos, const torch::Tensor& sin) {
    RECORD_FUNCTION("muonlab::fused_rope", std::vector<c10::IValue>());  // named in profiles
    ctx->saved_data["cos"] = cos;
    ctx->saved_data["sin"] = sin;
    return rotate(x, cos, sin, 1.0f);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const torch::Tensor cos = ctx->saved_data["cos"].toTensor();
    const torch::Tensor sin = ctx->saved_data["sin"].toTensor();
    torch::Tensor dy = grads[0];
    if (dy.stride(3) != 1) dy = dy.contiguous();
    return {rotate(dy, cos, sin, -1.0f), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool fused_rope_applies(const torch::Tensor& x) {
  const auto dtype = x.scalar_type();
  return x.is_cpu() && (dtype == torch::kFloat || dtype == torch::kBFloat16) && x.dim() == 4 &&
         x.numel() > 0 && x.stride(3) == 1;
}

torch::Tensor fused_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin) {
  return FusedRopeFunction::apply(x, cos, sin);
}

}  // namespace muonlab
