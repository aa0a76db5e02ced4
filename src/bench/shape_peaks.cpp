// Timing a model's matmul shapes in their forward and backward orientations, fp32 and bf16.
#include "src/bench/shape_peaks.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "src/gemm_peak.h"

namespace muonlab {
namespace {

// Time of the three products a training step runs for a (m x k) by (k x n) forward product:
// y = x w (m,k)(k,n); dx = dy w^T (m,n)(n,k); dw = x^T dy (k,m)(m,n). Operands are laid out as
// the model's are: the weight is stored (n, k) and used transposed, like torch::linear's.
double three_orientations_seconds(const MatmulShape& s, torch::ScalarType dtype, int repeats,
                                  at::Generator& gen) {
  auto make = [&](int64_t rows, int64_t cols) {
    return at::randn({s.batch, rows, cols}, gen).to(dtype);
  };
  const torch::Tensor x = make(s.m, s.k), w = make(s.n, s.k), dy = make(s.m, s.n);
  return best_matmul_seconds(x, w.transpose(-2, -1), repeats) +
         best_matmul_seconds(dy, w, repeats) +
         best_matmul_seconds(x.transpose(-2, -1), dy, repeats);
}

double weighted_harmonic_mean(const std::vector<MatmulShape>& shapes, bool bf16) {
  double flops = 0, seconds = 0;
  for (const MatmulShape& s : shapes) {
    const double f = s.flops() * static_cast<double>(s.count);
    flops += f;
    seconds += f / ((bf16 ? s.bf16_gflops : s.fp32_gflops) * 1e9);
  }
  return seconds > 0 ? flops / seconds / 1e9 : 0;
}

}  // namespace

std::vector<MatmulShape> llama_matmul_shapes(const LlamaConfig& cfg, int64_t batch_size) {
  const int64_t M = batch_size * cfg.seq_len, C = cfg.d_model, L = cfg.n_layers;
  const int64_t D = cfg.head_dim(), HD = cfg.n_heads * D, KD = cfg.n_kv_heads * D;
  const int64_t F = cfg.ffn_dim(), T = cfg.seq_len;
  const int64_t groups = cfg.n_heads / cfg.n_kv_heads;  // query heads folded into rows
  std::vector<MatmulShape> shapes = {
      {"wq", 1, M, C, HD, L},
      {"wk/wv", 1, M, C, KD, 2 * L},
      {"wo", 1, M, HD, C, L},
      {"w1/w3", 1, M, C, F, 2 * L},
      {"w2", 1, M, F, C, L},
      {"lm_head", 1, M, C, cfg.vocab_size, 1},
      {"attn scores", batch_size * cfg.n_kv_heads, groups * T, D, T, L},
      {"attn values", batch_size * cfg.n_kv_heads, groups * T, T, D, L},
  };
  // Projections of equal shape share a measurement (e.g. wq with wk/wv when n_kv_heads = n_heads).
  std::vector<MatmulShape> merged;
  for (const MatmulShape& s : shapes) {
    auto same = std::find_if(merged.begin(), merged.end(), [&](const MatmulShape& o) {
      return o.batch == s.batch && o.m == s.m && o.k == s.k && o.n == s.n;
    });
    if (same == merged.end()) {
      merged.push_back(s);
    } else {
      same->name += "/" + s.name;
      same->count += s.count;
    }
  }
  return merged;
}

ModelGemmPeaks measure_model_gemm_peaks(const LlamaConfig& cfg, int64_t batch_size, int repeats) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(4321);
  ModelGemmPeaks peaks;
  peaks.shapes = llama_matmul_shapes(cfg, batch_size);
  for (MatmulShape& s : peaks.shapes) {
    const double flops = 3 * s.flops();
    s.fp32_gflops = flops / three_orientations_seconds(s, torch::kFloat, repeats, gen) / 1e9;
    s.bf16_gflops = flops / three_orientations_seconds(s, torch::kBFloat16, repeats, gen) / 1e9;
  }
  peaks.fp32_gflops = weighted_harmonic_mean(peaks.shapes, false);
  peaks.bf16_gflops = weighted_harmonic_mean(peaks.shapes, true);
  return peaks;
}

}  // namespace muonlab
