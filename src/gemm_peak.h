// The GEMM throughput this machine reaches right now, for the trainer's MFU figure: a square
// matrix product in the run's precision (fp32 through the model's GEMM, BLAS or oneDNN; bf16
// through oneDNN, AMX where the CPU has it) at the current thread count, best of a few repetitions
// after a warm-up. It takes well under a second and touches no global RNG (the run's numbers stay
// the same). It is not the benchmark (`muonlab bench` measures the model's own shapes).
#pragma once
#include <torch/torch.h>

#include <string>

namespace muonlab {

struct GemmPeak {
  double gflops = 0;  // 2·n³ / best time
  int64_t n = 0;      // the product is (n × n) · (n × n)
  std::string precision;
};

// `precision`: "fp32" or "bf16".
GemmPeak measure_gemm_peak(const std::string& precision);

// Fastest of `repeats` calls of a times b (float32 through models/kernels/sgemm.h, as the model's
// layers, other dtypes torch::matmul) after one warm-up call (where oneDNN
// compiles its kernel), in seconds (at least 1e-9).
double best_matmul_seconds(const torch::Tensor& a, const torch::Tensor& b, int repeats);

}  // namespace muonlab
