// Loss computation under the configured precision: "fp32" as is, or "bf16" with LibTorch's CPU
// autocast (matmuls in bfloat16, master weights, gradients and optimizer state stay fp32). The
// cross-entropy is always computed in float (from the bf16 logits, by the fused kernel).
#pragma once
#include <string>

#include "data/batch_loader.h"
#include "models/llama.h"

namespace muonlab {

torch::Tensor model_loss(LlamaImpl& model, const Batch& batch, const std::string& precision);
// The logits (B, T, V) for `inputs` (B, T) under the precision (fp32, or bf16 autocast).
torch::Tensor model_logits(LlamaImpl& model, const torch::Tensor& inputs,
                           const std::string& precision);

}  // namespace muonlab
