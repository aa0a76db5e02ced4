// RoPE's half rotation (models/rope.h) as one fused autograd function on the CPU: one pass that
// reads x and writes the rotated x, and a backward that is the same pass with the angle negated;
// no narrow/multiply/cat temporaries. float32 and bfloat16 (computed in float, rounded once);
// float32 results equal the tensor-op formula bit for bit. The output keeps x's memory layout
// (a (B, T, H, D) projection seen as (B, H, T, D) stays so), so neither direction copies.
// Not twice differentiable; Rope::apply uses the tensor ops where this does not apply.
#pragma once
#include <torch/types.h>

namespace muonlab {

// True for a 4-D float32/bfloat16 CPU x with unit stride along its last dim.
bool fused_rope_applies(const torch::Tensor& x);

// x (B, H, T, D); cos and sin (>= T, D/2) contiguous float32 tables -> x rotated by position t.
torch::Tensor fused_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin);

}  // namespace muonlab
