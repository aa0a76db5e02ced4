// Scalar building blocks for the hand-written model kernels, written so that loops over them
// vectorise (no branches, no library calls): an exp for float, bfloat16 loads and stores through
// the raw bits (one value or a buffer), and the raw bits of a bfloat16 tensor. Header only.
#pragma once
#include <c10/util/BFloat16.h>
#include <torch/types.h>

#include <cstdint>
#include <cstring>

namespace muonlab {
namespace kernel {

// e^x to about 2 ulp for x in [-87, 88] (clamped outside): x = n ln2 + r with |r| <= ln2/2,
// e^r by its degree-6 Taylor polynomial, 2^n from the exponent bits. Branch-free, so it
// vectorises: n = floor(x log2(e) + 1/2), taken by truncation after a positive offset.
inline float exp_float(float in) {
  float x = in > 88.0f ? 88.0f : in;  // this form of the clamp vectorises to 8x faster code than
  x = x > -87.0f ? x : -87.0f;        // std::min/std::max here (GCC 12, measured); NaN becomes
                                      // -87 so the integer conversion below stays defined
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
  return in == in ? p * scale : in;  // NaN in, NaN out
}

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

// n bfloat16 values (raw bits) to float and back, for kernels that work on float buffers.
inline void widen(const uint16_t* __restrict in, float* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = to_float(in[i]);
}
inline void narrow(const float* __restrict in, uint16_t* __restrict out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) store(out + i, in[i]);
}

// A bfloat16 tensor's data as raw bits, for the loops above.
inline uint16_t* bits(const torch::Tensor& bf16) {
  return reinterpret_cast<uint16_t*>(bf16.data_ptr<c10::BFloat16>());
}

}  // namespace kernel
}  // namespace muonlab
