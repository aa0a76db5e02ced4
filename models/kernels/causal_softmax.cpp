// Fused causal softmax: per-row loops the compiler vectorises (cloned per ISA, compiled with
// MUONLAB_KERNEL_FLAGS) over the exp and bf16 conversions of models/kernels/kernel_math.h, rows in
// parallel.
#include "models/kernels/causal_softmax.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <limits>

#include "models/kernels/kernel_math.h"
#include "optim/kernels/isa_clones.h"

namespace muonlab {
namespace {

using kernel::bits;
using kernel::exp_float;
using kernel::store;
using kernel::to_float;

constexpr int kLanes = 16;

// One row: p[j] = exp(scale s[j] - max) / sum for j < n (n = query position + 1), 0 beyond.
template <typename T>
inline void forward_row(const T* __restrict s, T* __restrict p, float* __restrict e, int64_t n,
                        int64_t width, float scale) {
  float lanes[kLanes];
  for (int l = 0; l < kLanes; ++l) lanes[l] = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const float v = to_float(s[j + l]);
      lanes[l] = v > lanes[l] ? v : lanes[l];
    }
  float max = lanes[0];
  for (int l = 1; l < kLanes; ++l) max = lanes[l] > max ? lanes[l] : max;
  for (; j < n; ++j) max = to_float(s[j]) > max ? to_float(s[j]) : max;
  const float shift = scale * max;  // scale > 0, so the largest scaled score
  float sum_lanes[kLanes] = {};
  j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      e[j + l] = exp_float(scale * to_float(s[j + l]) - shift);
      sum_lanes[l] += e[j + l];
    }
  float sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += sum_lanes[l];
  for (; j < n; ++j) {
    e[j] = exp_float(scale * to_float(s[j]) - shift);
    sum += e[j];
  }
  const float inverse = 1.0f / sum;
  for (j = 0; j < n; ++j) store(p + j, e[j] * inverse);
  for (; j < width; ++j) store(p + j, 0.0f);
}

// One row: ds[j] = scale p[j] (dp[j] - sum_k dp[k] p[k]) for j < n, 0 beyond.
template <typename T>
inline void backward_row(const T* __restrict p, const T* __restrict dp, T* __restrict ds, int64_t n,
                         int64_t width, float scale) {
  float lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += to_float(dp[j + l]) * to_float(p[j + l]);
  float dot = 0;
  for (int l = 0; l < kLanes; ++l) dot += lanes[l];
  for (; j < n; ++j) dot += to_float(dp[j]) * to_float(p[j]);
  for (j = 0; j < n; ++j) store(ds + j, scale * to_float(p[j]) * (to_float(dp[j]) - dot));
  for (; j < width; ++j) store(ds + j, 0.0f);
}

// Rows [begin, end) of (rows, T) matrices; row r is query position r % T.
MUONLAB_ISA_CLONES
void forward_rows_f32(const float* s, float* p, int64_t T, float scale, int64_t begin, int64_t end,
                      float* scratch) {
  for (int64_t r = begin; r < end; ++r)
    forward_row(s + r * T, p + r * T, scratch, r % T + 1, T, scale);
}
MUONLAB_ISA_CLONES
void forward_rows_bf16(const uint16_t* s, uint16_t* p, int64_t T, float scale, int64_t begin,
                       int64_t end, float* scratch) {
  for (int64_t r = begin; r < end; ++r)
    forward_row(s + r * T, p + r * T, scratch, r % T + 1, T, scale);
}
MUONLAB_ISA_CLONES
void backward_rows_f32(const float* p, const float* dp, float* ds, int64_t T, float scale,
                       int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r)
    backward_row(p + r * T, dp + r * T, ds + r * T, r % T + 1, T, scale);
}
MUONLAB_ISA_CLONES
void backward_rows_bf16(const uint16_t* p, const uint16_t* dp, uint16_t* ds, int64_t T, float scale,
                        int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r)
    backward_row(p + r * T, dp + r * T, ds + r * T, r % T + 1, T, scale);
}

}  // namespace

// Rows of one block of the blocked attention: row r is query position first_query + r.
MUONLAB_ISA_CLONES
void causal_softmax_block(const float* scores, int64_t ld_scores, float* probs, int64_t ld_probs,
                          int64_t rows, int64_t first_query, int64_t width, float scale,
                          float* scratch) {
  for (int64_t r = 0; r < rows; ++r)
    forward_row(scores + r * ld_scores, probs + r * ld_probs, scratch, first_query + r + 1, width,
                scale);
}
MUONLAB_ISA_CLONES
void causal_softmax_block_backward(const float* probs, int64_t ld_probs, const float* dprobs,
                                   int64_t ld_dprobs, float* dscores, int64_t ld_dscores,
                                   int64_t rows, int64_t first_query, int64_t width, float scale) {
  for (int64_t r = 0; r < rows; ++r)
    backward_row(probs + r * ld_probs, dprobs + r * ld_dprobs, dscores + r * ld_dscores,
                 first_query + r + 1, width, scale);
}

namespace {

constexpr int64_t kRowGrain = 16;

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class CausalSoftmaxFunction : public torch::autograd::Function<CausalSoftmaxFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& scores_in, double scale) {
    RECORD_FUNCTION("muonlab::causal_softmax", std::vector<c10::IValue>());  // named in profiles
    const torch::Tensor scores = scores_in.contiguous();
    const int64_t T = scores.size(-1), rows = scores.numel() / T;
    const float s = static_cast<float>(scale);
    torch::Tensor probs = torch::empty_like(scores);
    at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
      std::vector<float> scratch(static_cast<size_t>(T));
      if (scores.scalar_type() == torch::kFloat)
        forward_rows_f32(scores.data_ptr<float>(), probs.data_ptr<float>(), T, s, begin, end,
                         scratch.data());
      else
        forward_rows_bf16(bits(scores), bits(probs), T, s, begin, end, scratch.data());
    });
    ctx->save_for_backward({probs});
    ctx->saved_data["scale"] = scale;
    return probs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const torch::Tensor probs = ctx->get_saved_variables()[0];
    const float s = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const torch::Tensor dp = grads[0].to(probs.scalar_type()).contiguous();
    const int64_t T = probs.size(-1), rows = probs.numel() / T;
    torch::Tensor ds = torch::empty_like(probs);
    at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
      if (probs.scalar_type() == torch::kFloat)
        backward_rows_f32(probs.data_ptr<float>(), dp.data_ptr<float>(), ds.data_ptr<float>(), T, s,
                          begin, end);
      else
        backward_rows_bf16(bits(probs), bits(dp), bits(ds), T, s, begin, end);
    });
    return {ds, torch::Tensor()};
  }
};

bool fused_applies(const torch::Tensor& scores, double scale) {
  const auto dtype = scores.scalar_type();
  return scores.is_cpu() && (dtype == torch::kFloat || dtype == torch::kBFloat16) &&
         scores.dim() >= 2 && scores.size(-1) == scores.size(-2) && scores.numel() > 0 && scale > 0;
}

}  // namespace

torch::Tensor causal_softmax_reference(const torch::Tensor& scores, double scale) {
  const int64_t T = scores.size(-1);
  auto mask = torch::ones({T, T}, scores.options().dtype(torch::kBool)).triu(1);
  return torch::softmax(
      (scores * scale).masked_fill(mask, -std::numeric_limits<double>::infinity()), -1);
}

torch::Tensor causal_softmax(const torch::Tensor& scores, double scale) {
  if (!fused_applies(scores, scale)) return causal_softmax_reference(scores, scale);
  return CausalSoftmaxFunction::apply(scores, scale);
}

}  // namespace muonlab
