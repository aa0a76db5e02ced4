// The attention probabilities softmax(scale * scores) under a causal mask, as one fused autograd
// function on the CPU: row r of the last two dims (query position r) uses keys 0..r only, and
// the rest of the row is exactly 0. No mask tensor, no scaled copy of the scores, no masked_fill
// of them; forward reads the scores once and writes the probabilities (which backward needs, as
// LibTorch's softmax keeps them), backward reads them and the incoming gradient once. float32 and
// bfloat16 (computed in float, results rounded once to the input's dtype). Rows are independent,
// so the same numbers for any thread count. Not twice differentiable. Other devices and dtypes
// use the tensor-op reference, which is also what the tests compare against.
#pragma once
#include <torch/types.h>

namespace muonlab {

// scores (..., T, T) -> probabilities of the same shape and dtype.
torch::Tensor causal_softmax(const torch::Tensor& scores, double scale);

// The same with a boolean mask, masked_fill and softmax.
torch::Tensor causal_softmax_reference(const torch::Tensor& scores, double scale);

}  // namespace muonlab
