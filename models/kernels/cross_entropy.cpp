// Fused cross-entropy: per-row loops the compiler vectorises (cloned per ISA, compiled with
// MUONLAB_KERNEL_FLAGS) over the exp and bf16 conversions of models/kernels/kernel_math.h, rows in
// parallel; a bf16 row is widened into a float buffer first.
#include "models/kernels/cross_entropy.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <c10/util/BFloat16.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/functional/loss.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/kernels/kernel_math.h"
#include "optim/kernels/isa_clones.h"

namespace muonlab {
namespace {

using kernel::bits;
using kernel::exp_float;
using kernel::narrow;
using kernel::store;
using kernel::to_float;
using kernel::widen;

constexpr int kLanes = 16;

// log(sum_j exp(x[j])) of one row, shifted by its maximum.
inline float row_log_sum_exp(const float* __restrict x, int64_t n) {
  float lanes[kLanes];
  for (int l = 0; l < kLanes; ++l) lanes[l] = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] = x[j + l] > lanes[l] ? x[j + l] : lanes[l];
  float max = lanes[0];
  for (int l = 1; l < kLanes; ++l) max = lanes[l] > max ? lanes[l] : max;
  for (; j < n; ++j) max = x[j] > max ? x[j] : max;
  float sums[kLanes] = {};
  j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) sums[l] += exp_float(x[j + l] - max);
  float sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += sums[l];
  for (; j < n; ++j) sum += exp_float(x[j] - max);
  return max + std::log(sum);
}

// g[j] = scale (exp(x[j] - lse) - [j == target]) of one row.
inline void row_gradient(const float* __restrict x, float* __restrict g, int64_t n, float lse,
                         int64_t target, float scale) {
  for (int64_t j = 0; j < n; ++j) g[j] = scale * exp_float(x[j] - lse);
  g[target] = scale * (exp_float(x[target] - lse) - 1.0f);
}

// Rows [begin, end) of (N, V) logits: lse[r] and loss[r] = lse[r] - x[r, t[r]].
MUONLAB_ISA_CLONES
void forward_rows_f32(const float* x, const int64_t* t, float* lse, float* loss, int64_t V,
                      int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const float* row = x + r * V;
    lse[r] = row_log_sum_exp(row, V);
    loss[r] = lse[r] - row[t[r]];
  }
}
MUONLAB_ISA_CLONES
void forward_rows_bf16(const uint16_t* x, const int64_t* t, float* lse, float* loss, int64_t V,
                       int64_t begin, int64_t end, float* scratch) {
  for (int64_t r = begin; r < end; ++r) {
    widen(x + r * V, scratch, V);
    lse[r] = row_log_sum_exp(scratch, V);
    loss[r] = lse[r] - scratch[t[r]];
  }
}
MUONLAB_ISA_CLONES
void backward_rows_f32(const float* x, const int64_t* t, const float* lse, float scale, float* dx,
                       int64_t V, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) row_gradient(x + r * V, dx + r * V, V, lse[r], t[r], scale);
}
MUONLAB_ISA_CLONES
void backward_rows_bf16(const uint16_t* x, const int64_t* t, const float* lse, float scale,
                        uint16_t* dx, int64_t V, int64_t begin, int64_t end, float* scratch) {
  float* row = scratch;
  float* grad = scratch + V;
  for (int64_t r = begin; r < end; ++r) {
    widen(x + r * V, row, V);
    row_gradient(row, grad, V, lse[r], t[r], scale);
    narrow(grad, dx + r * V, V);
  }
}

// Rows per parallel task: at least ~32k logits each.
int64_t row_grain(int64_t V) { return std::max<int64_t>(1, (int64_t{1} << 15) / V); }

void check_targets(const torch::Tensor& targets, int64_t V) {
  const int64_t* t = targets.data_ptr<int64_t>();
  for (int64_t r = 0; r < targets.numel(); ++r) {
    if (t[r] < 0 || t[r] >= V) {
      throw std::invalid_argument("cross_entropy: target " + std::to_string(t[r]) + " at row " +
                                  std::to_string(r) + " is outside [0, " + std::to_string(V) +
                                  ") (the vocabulary)");
    }
  }
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class CrossEntropyFunction : public torch::autograd::Function<CrossEntropyFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits_in,
                               const torch::Tensor& targets_in) {
    RECORD_FUNCTION("muonlab::cross_entropy", std::vector<c10::IValue>());  // named in profiles
    const torch::Tensor logits = logits_in.contiguous(), targets = targets_in.contiguous();
    const int64_t N = logits.size(0), V = logits.size(1);
    check_targets(targets, V);
    torch::Tensor lse = torch::empty({N}, logits.options().dtype(torch::kFloat));
    std::vector<float> row_loss(static_cast<size_t>(N));
    const int64_t* t = targets.data_ptr<int64_t>();
    at::parallel_for(0, N, row_grain(V), [&](int64_t begin, int64_t end) {
      if (logits.scalar_type() == torch::kFloat) {
        forward_rows_f32(logits.data_ptr<float>(), t, lse.data_ptr<float>(), row_loss.data(), V,
                         begin, end);
      } else {
        std::vector<float> scratch(static_cast<size_t>(V));
        forward_rows_bf16(bits(logits), t, lse.data_ptr<float>(), row_loss.data(), V, begin, end,
                          scratch.data());
      }
    });
    double sum = 0;  // in row order, whatever the thread count
    for (float l : row_loss) sum += l;
    ctx->save_for_backward({logits, targets, lse});
    return torch::full({}, static_cast<float>(sum / static_cast<double>(N)),
                       logits.options().dtype(torch::kFloat));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& logits = saved[0];
    const torch::Tensor& targets = saved[1];
    const torch::Tensor& lse = saved[2];
    const int64_t N = logits.size(0), V = logits.size(1);
    const float scale = grads[0].item<float>() / static_cast<float>(N);
    torch::Tensor dx = torch::empty_like(logits);
    const int64_t* t = targets.data_ptr<int64_t>();
    at::parallel_for(0, N, row_grain(V), [&](int64_t begin, int64_t end) {
      if (logits.scalar_type() == torch::kFloat) {
        backward_rows_f32(logits.data_ptr<float>(), t, lse.data_ptr<float>(), scale,
                          dx.data_ptr<float>(), V, begin, end);
      } else {
        std::vector<float> scratch(static_cast<size_t>(2 * V));
        backward_rows_bf16(bits(logits), t, lse.data_ptr<float>(), scale, bits(dx), V, begin, end,
                           scratch.data());
      }
    });
    return {dx, torch::Tensor()};
  }
};

bool fused_applies(const torch::Tensor& logits, const torch::Tensor& targets) {
  const auto dtype = logits.scalar_type();
  return logits.is_cpu() && targets.is_cpu() && logits.dim() == 2 && targets.dim() == 1 &&
         (dtype == torch::kFloat || dtype == torch::kBFloat16) &&
         targets.scalar_type() == torch::kLong && targets.size(0) == logits.size(0) &&
         logits.size(0) > 0 && logits.size(1) > 0;
}

}  // namespace

torch::Tensor cross_entropy_reference(const torch::Tensor& logits, const torch::Tensor& targets) {
  const bool reduced =
      logits.scalar_type() == torch::kBFloat16 || logits.scalar_type() == torch::kHalf;
  return torch::nn::functional::cross_entropy(reduced ? logits.to(torch::kFloat) : logits, targets);
}

torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  if (!fused_applies(logits, targets)) return cross_entropy_reference(logits, targets);
  return CrossEntropyFunction::apply(logits, targets);
}

}  // namespace muonlab
