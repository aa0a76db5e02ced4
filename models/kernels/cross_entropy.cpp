// Fused cross-entropy: per-row loops the compiler vectorises (cloned per ISA, compiled with
// MUONLAB_KERNEL_FLAGS) over the exp and bf16 conversions of models/kernels/kernel_math.h, rows in
// parallel; a bf16 row is widened into a float buffer first.
#include "models/kernels/cross_entropy.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
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

// A row's log-sum-exp as its maximum and log(sum_j exp(x[j] - max)), kept apart: their sum
// would round away the small terms of a row far from zero (logits near 1e5 keep only a few bits
// of fraction in one float).
struct RowShift {
  float max;
  float log_sum;
};

inline RowShift row_shift(const float* __restrict x, int64_t n) {
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
  // A NaN logit makes its difference NaN and so the sum; a +inf maximum (inf - inf) or a row of
  // -inf does too: such rows give NaN, as PyTorch's, and the trainer stops on a non-finite loss.
  return {max, std::log(sum)};
}

// g[j] = scale (exp(x[j] - max - log_sum) - [j == target]) of one row.
inline void row_gradient(const float* __restrict x, float* __restrict g, int64_t n, RowShift s,
                         int64_t target, float scale) {
  for (int64_t j = 0; j < n; ++j) g[j] = scale * exp_float((x[j] - s.max) - s.log_sum);
  g[target] = scale * (exp_float((x[target] - s.max) - s.log_sum) - 1.0f);
}

inline float row_loss(const float* x, RowShift s, int64_t target) {
  return (s.max - x[target]) + s.log_sum;
}

// Rows [begin, end) of (N, V) logits: their shifts and losses.
MUONLAB_ISA_CLONES
void forward_rows_f32(const float* x, const int64_t* t, RowShift* shift, float* loss, int64_t V,
                      int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const float* row = x + r * V;
    shift[r] = row_shift(row, V);
    loss[r] = row_loss(row, shift[r], t[r]);
  }
}
MUONLAB_ISA_CLONES
void forward_rows_bf16(const uint16_t* x, const int64_t* t, RowShift* shift, float* loss, int64_t V,
                       int64_t begin, int64_t end, float* scratch) {
  for (int64_t r = begin; r < end; ++r) {
    widen(x + r * V, scratch, V);
    shift[r] = row_shift(scratch, V);
    loss[r] = row_loss(scratch, shift[r], t[r]);
  }
}
MUONLAB_ISA_CLONES
void backward_rows_f32(const float* x, const int64_t* t, const RowShift* shift, float scale,
                       float* dx, int64_t V, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r)
    row_gradient(x + r * V, dx + r * V, V, shift[r], t[r], scale);
}
MUONLAB_ISA_CLONES
void backward_rows_bf16(const uint16_t* x, const int64_t* t, const RowShift* shift, float scale,
                        uint16_t* dx, int64_t V, int64_t begin, int64_t end, float* scratch) {
  float* row = scratch;
  float* grad = scratch + V;
  for (int64_t r = begin; r < end; ++r) {
    widen(x + r * V, row, V);
    row_gradient(row, grad, V, shift[r], t[r], scale);
    narrow(grad, dx + r * V, V);
  }
}

static_assert(sizeof(RowShift) == 2 * sizeof(float), "RowShift is a row of the (N, 2) tensor");

// The (N, 2) float tensor of row shifts, saved between forward and backward.
RowShift* shifts(const torch::Tensor& t) {
  return reinterpret_cast<RowShift*>(t.data_ptr<float>());
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
    torch::Tensor shift = torch::empty({N, 2}, logits.options().dtype(torch::kFloat));
    std::vector<float> losses(static_cast<size_t>(N));
    const int64_t* t = targets.data_ptr<int64_t>();
    at::parallel_for(0, N, row_grain(V), [&](int64_t begin, int64_t end) {
      if (logits.scalar_type() == torch::kFloat) {
        forward_rows_f32(logits.data_ptr<float>(), t, shifts(shift), losses.data(), V, begin, end);
      } else {
        std::vector<float> scratch(static_cast<size_t>(V));
        forward_rows_bf16(bits(logits), t, shifts(shift), losses.data(), V, begin, end,
                          scratch.data());
      }
    });
    double sum = 0;  // in row order, whatever the thread count
    for (float l : losses) sum += l;
    ctx->save_for_backward({logits, targets, shift});
    return torch::full({}, static_cast<float>(sum / static_cast<double>(N)),
                       logits.options().dtype(torch::kFloat));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& logits = saved[0];
    const torch::Tensor& targets = saved[1];
    const torch::Tensor& shift = saved[2];
    const int64_t N = logits.size(0), V = logits.size(1);
    TORCH_CHECK(!at::GradMode::is_enabled() && !grads[0].requires_grad(),
                "cross_entropy: the fused loss is not twice differentiable");
    const float scale = grads[0].item<float>() / static_cast<float>(N);
    torch::Tensor dx = torch::empty_like(logits);
    const int64_t* t = targets.data_ptr<int64_t>();
    at::parallel_for(0, N, row_grain(V), [&](int64_t begin, int64_t end) {
      if (logits.scalar_type() == torch::kFloat) {
        backward_rows_f32(logits.data_ptr<float>(), t, shifts(shift), scale, dx.data_ptr<float>(),
                          V, begin, end);
      } else {
        std::vector<float> scratch(static_cast<size_t>(2 * V));
        backward_rows_bf16(bits(logits), t, shifts(shift), scale, bits(dx), V, begin, end,
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
