// The SwiGLU product silu(a) * b of the LLaMA MLP as one fused autograd function on the CPU: the
// forward pass reads a and b once and writes the product (no silu(a) tensor is kept), backward
// reads a, b and the incoming gradient once and writes both gradients. float32 and bfloat16 (a and
// b of one dtype, computed in float, results rounded once to that dtype). Elementwise, so the
// same numbers for any thread count. Not twice differentiable. Other devices, dtypes and mixed or
// broadcast shapes use the tensor-op reference, which is also what the tests compare against.
#pragma once
#include <torch/types.h>

namespace muonlab {

// silu(a) * b for a and b of one shape.
torch::Tensor swiglu(const torch::Tensor& a, const torch::Tensor& b);

// The same as separate tensor operations.
torch::Tensor swiglu_reference(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace muonlab
