// Mean cross-entropy of logits against target classes as one fused autograd function on the CPU:
// the forward pass reads each row of logits once from memory (max and log-sum-exp on the cached
// row) and keeps only each row's maximum and log-sum-exp; backward writes softmax minus one-hot
// straight into the gradient. PyTorch's log_softmax + nll_loss writes and re-reads three (N, V)
// tensors more, and under bf16 autocast a float copy of the logits first. Logits float32 or
// bfloat16 (computed in float, the gradient rounded once to the logits' dtype); the loss is
// float32. Rows are independent and summed in a fixed order, so the same numbers for any thread
// count. No class weights, label smoothing or ignore_index; not twice differentiable. Other devices
// or dtypes use the reference (PyTorch's cross_entropy), which is what the tests compare against.
#pragma once
#include <torch/types.h>

namespace muonlab {

// Mean over rows of -log softmax(logits)[row, targets[row]]; logits (N, V), targets (N) int64 in
// [0, V) (std::invalid_argument names the first one out of range).
torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets);

// PyTorch's cross_entropy (bf16 and fp16 logits are widened to float32 first, float64 stays).
torch::Tensor cross_entropy_reference(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace muonlab
