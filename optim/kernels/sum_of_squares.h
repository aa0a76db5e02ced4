// The sum of squares of a tensor's elements accumulated in float64, for gradient norms: one
// read of a contiguous float32 CPU tensor (no float64 copy), split into fixed chunks whose
// partial sums are added in chunk order, so the result is the same for any thread count. Other
// tensors go through LibTorch's norm in float64.
#pragma once
#include <torch/types.h>

namespace muonlab {

double sum_of_squares(const torch::Tensor& t);

}  // namespace muonlab
