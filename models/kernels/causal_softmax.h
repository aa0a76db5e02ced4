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

// One block of rows for the blocked attention (models/kernels/blocked_attention.h), float32, no
// autograd: row r (r < rows) holds the scale-free scores of query position first_query + r against
// keys 0..width-1 (width > first_query + rows - 1); probs gets the causal softmax, exactly 0 past
// the diagonal up to width. scratch holds width floats. Backward writes dscores =
// d(probs)/d(scores) applied to dprobs (the scale included). Buffers must not overlap.
void causal_softmax_block(const float* scores, int64_t ld_scores, float* probs, int64_t ld_probs,
                          int64_t rows, int64_t first_query, int64_t width, float scale,
                          float* scratch);
void causal_softmax_block_backward(const float* probs, int64_t ld_probs, const float* dprobs,
                                   int64_t ld_dprobs, float* dscores, int64_t ld_dscores,
                                   int64_t rows, int64_t first_query, int64_t width, float scale);

// The same with a boolean mask, masked_fill and softmax.
torch::Tensor causal_softmax_reference(const torch::Tensor& scores, double scale);

}  // namespace muonlab
