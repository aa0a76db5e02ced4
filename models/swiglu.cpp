// Fused SwiGLU: element loops the compiler vectorises (cloned per ISA, compiled with
// -ffp-contract=off like optim/fused_adamw.cpp), with an exp written out in plain arithmetic so
// that it vectorises too, parallel over fixed chunks of elements.
#include "models/swiglu.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "optim/isa_clones.h"

namespace muonlab {
namespace {

// e^x to about 2 ulp for x in [-87, 88] (clamped outside): x = n ln2 + r with |r| <= ln2/2,
// e^r by its degree-6 Taylor polynomial, 2^n from the exponent bits. Branch-free, so it
// vectorises: n = floor(x log2(e) + 1/2), taken by truncation after a positive offset.
inline float exp_float(float x) {
  x = x > 88.0f ? 88.0f : x;    // this form of the clamp vectorises to 8x faster code than
  x = x < -87.0f ? -87.0f : x;  // std::min/std::max here (GCC 12, measured)
  const int32_t n = static_cast<int32_t>(x * 1.44269504088896341f + 128.5f) - 128;
  const float nf = static_cast<float>(n);
  const float r = (x - nf * 0.693145751953125f) - nf * 1.428606765330187e-06f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float sigmoid(float a) { return 1.0f / (1.0f + exp_float(-a)); }

// bfloat16 as its raw bits (uint16_t), converted without branches so the loops vectorise; the
// rounding is to nearest even and NaN stays NaN, as c10::BFloat16's.
inline float to_float(float v) { return v; }
inline float to_float(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float v;
  std::memcpy(&v, &wide, sizeof v);
  return v;
}
inline void store(float* out, float v) { *out = v; }
inline void store(uint16_t* out, float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  *out = static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : rounded);
}

template <typename T>
inline void forward_elements(const T* __restrict a, const T* __restrict b, T* __restrict y,
                             int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float av = to_float(a[i]);
    store(y + i, av * sigmoid(av) * to_float(b[i]));
  }
}

// d silu(a) / da = s (1 + a (1 - s)), s = sigmoid(a)
template <typename T>
inline void backward_elements(const T* __restrict a, const T* __restrict b, const T* __restrict dy,
                              T* __restrict da, T* __restrict db, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float av = to_float(a[i]), bv = to_float(b[i]), g = to_float(dy[i]);
    const float s = sigmoid(av);
    store(da + i, g * bv * (s * (1.0f + av * (1.0f - s))));
    store(db + i, g * (av * s));
  }
}

MUONLAB_ISA_CLONES
void forward_f32(const float* a, const float* b, float* y, int64_t n) {
  forward_elements(a, b, y, n);
}
MUONLAB_ISA_CLONES
void forward_bf16(const uint16_t* a, const uint16_t* b, uint16_t* y, int64_t n) {
  forward_elements(a, b, y, n);
}
MUONLAB_ISA_CLONES
void backward_f32(const float* a, const float* b, const float* dy, float* da, float* db,
                  int64_t n) {
  backward_elements(a, b, dy, da, db, n);
}
MUONLAB_ISA_CLONES
void backward_bf16(const uint16_t* a, const uint16_t* b, const uint16_t* dy, uint16_t* da,
                   uint16_t* db, int64_t n) {
  backward_elements(a, b, dy, da, db, n);
}

constexpr int64_t kGrain = 1 << 14;  // elements per parallel task

uint16_t* bits(const torch::Tensor& bf16) {
  return reinterpret_cast<uint16_t*>(bf16.data_ptr<c10::BFloat16>());
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class SwigluFunction : public torch::autograd::Function<SwigluFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a_in,
                               const torch::Tensor& b_in) {
    const torch::Tensor a = a_in.contiguous(), b = b_in.contiguous();
    torch::Tensor y = torch::empty_like(a);
    const int64_t n = a.numel();
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
      if (a.scalar_type() == torch::kFloat)
        forward_f32(a.data_ptr<float>() + begin, b.data_ptr<float>() + begin,
                    y.data_ptr<float>() + begin, end - begin);
      else
        forward_bf16(bits(a) + begin, bits(b) + begin, bits(y) + begin, end - begin);
    });
    ctx->save_for_backward({a, b});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& a = saved[0];
    const torch::Tensor& b = saved[1];
    const torch::Tensor dy = grads[0].to(a.scalar_type()).contiguous();
    torch::Tensor da = torch::empty_like(a), db = torch::empty_like(b);
    const int64_t n = a.numel();
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
      if (a.scalar_type() == torch::kFloat)
        backward_f32(a.data_ptr<float>() + begin, b.data_ptr<float>() + begin,
                     dy.data_ptr<float>() + begin, da.data_ptr<float>() + begin,
                     db.data_ptr<float>() + begin, end - begin);
      else
        backward_bf16(bits(a) + begin, bits(b) + begin, bits(dy) + begin, bits(da) + begin,
                      bits(db) + begin, end - begin);
    });
    return {da, db};
  }
};

bool fused_applies(const torch::Tensor& a, const torch::Tensor& b) {
  const auto dtype = a.scalar_type();
  return a.is_cpu() && b.is_cpu() && (dtype == torch::kFloat || dtype == torch::kBFloat16) &&
         b.scalar_type() == dtype && a.sizes() == b.sizes() && a.numel() > 0;
}

}  // namespace

torch::Tensor swiglu_reference(const torch::Tensor& a, const torch::Tensor& b) {
  return torch::silu(a) * b;
}

torch::Tensor swiglu(const torch::Tensor& a, const torch::Tensor& b) {
  if (!fused_applies(a, b)) return swiglu_reference(a, b);
  return SwigluFunction::apply(a, b);
}

}  // namespace muonlab
