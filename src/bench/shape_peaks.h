// The GEMM throughput this machine reaches at a LLaMA model's own matrix shapes: every distinct
// matmul of a training step (the block projections, the LM head and the two attention products),
// each in its three orientations (forward, input gradient, weight gradient), timed in fp32 and in
// bf16 at the current thread count, best of a few after a warm-up. The model's peak is the
// FLOP-weighted harmonic mean over the step's matmuls: the rate of a step whose every matmul ran
// at its measured speed. MFU against it says how far the rest of the step (norms, attention's
// softmax, the optimizer, framework overhead) keeps the model from its own matmuls' speed.
// It does not run the model.
#pragma once
#include <string>
#include <vector>

#include "models/llama.h"

namespace muonlab {

// One matmul shape of a step: `batch` products of (m x k) by (k x n), `count` times per step.
struct MatmulShape {
  std::string name;  // e.g. "w1/w3", "lm_head", "attn scores"
  int64_t batch = 1, m = 0, k = 0, n = 0;
  int64_t count = 0;       // per training step, summed over layers
  double fp32_gflops = 0;  // measured, mean over the three orientations (time-weighted)
  double bf16_gflops = 0;
  double flops() const { return 2.0 * static_cast<double>(batch * m * k * n); }  // one product
};

struct ModelGemmPeaks {
  std::vector<MatmulShape> shapes;
  double fp32_gflops = 0, bf16_gflops = 0;  // FLOP-weighted harmonic means over the step
};

// The forward matmuls of one micro-batch of `batch_size` sequences of the model.
std::vector<MatmulShape> llama_matmul_shapes(const LlamaConfig& cfg, int64_t batch_size);

// Measures every shape in fp32 and bf16 (`repeats` timed calls per orientation after one warm-up;
// inputs from a private generator, so the global RNG is untouched).
ModelGemmPeaks measure_model_gemm_peaks(const LlamaConfig& cfg, int64_t batch_size, int repeats);

}  // namespace muonlab
