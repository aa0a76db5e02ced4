// RMSNorm over the last dimension, y = x * rsqrt(mean(x^2) + eps) * gain, as one fused autograd
// function on the CPU: the forward pass reads x once per row and keeps only one float per row
// (the reciprocal RMS) for backward, which reads x and dy once to give dx and the gain's gradient.
// float32 and bfloat16 x with a float32 gain, computed in float; the output has the promoted dtype
// (as the tensor-op version's), dx has x's. Same numbers for any thread count. Not twice
// differentiable. Other devices and dtypes use the tensor-op reference, which is also what the
// tests compare against.
#pragma once
#include <torch/types.h>

namespace muonlab {

// x (..., C), gain (C) -> (..., C)
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& gain, double eps);

// The same function as separate tensor operations (what autograd differentiates step by step).
torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& gain, double eps);

}  // namespace muonlab
