// Fused RMSNorm: row loops the compiler vectorises (cloned per ISA like
// optim/kernels/fused_adamw.cpp and compiled with -ffp-contract=off, so every clone rounds the
// same), parallel over rows.
#include "models/kernels/rms_norm.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

#include "optim/kernels/isa_clones.h"

namespace muonlab {
namespace {

constexpr int kLanes = 16;            // independent partial sums per row reduction
constexpr int64_t kRowsPerTask = 32;  // rows per parallel task and per gain-gradient partial

// sum_i a[i] * b[i] in a fixed order: kLanes interleaved partial sums, then the tail.
MUONLAB_ISA_CLONES
float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += a[i + l] * b[i + l];
  float sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += lanes[l];
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// Rows [begin, end): y = x * rstd * gain, rstd[row] = 1 / sqrt(mean(x^2) + eps).
MUONLAB_ISA_CLONES
void forward_rows(const float* __restrict x, const float* __restrict gain, float* __restrict y,
                  float* __restrict rstd, int64_t C, float eps, int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const float* xr = x + row * C;
    float* yr = y + row * C;
    const float r = 1.0f / std::sqrt(dot(xr, xr, C) / static_cast<float>(C) + eps);
    rstd[row] = r;
    for (int64_t i = 0; i < C; ++i) yr[i] = xr[i] * r * gain[i];
  }
}

// Rows [begin, end) of dx = r * (dy*g) - x * r^3 * mean(dy*g*x), and their share of the gain's
// gradient sum(dy * x * r) into dgain_partial (C floats, overwritten).
MUONLAB_ISA_CLONES
void backward_rows(const float* __restrict x, const float* __restrict gain,
                   const float* __restrict rstd, const float* __restrict dy, float* __restrict dx,
                   float* __restrict dgain_partial, int64_t C, int64_t begin, int64_t end) {
  for (int64_t i = 0; i < C; ++i) dgain_partial[i] = 0;
  for (int64_t row = begin; row < end; ++row) {
    const float* xr = x + row * C;
    const float* dyr = dy + row * C;
    float* dxr = dx + row * C;
    const float r = rstd[row];
    for (int64_t i = 0; i < C; ++i) dxr[i] = dyr[i] * gain[i];  // dy*g, scratch in dx
    const float coefficient = r * r * r * dot(dxr, xr, C) / static_cast<float>(C);
    for (int64_t i = 0; i < C; ++i) {
      dgain_partial[i] += dyr[i] * xr[i] * r;
      dxr[i] = r * dxr[i] - coefficient * xr[i];
    }
  }
}

// Column sums of partials (tasks, C) in task order: the same for any thread count.
torch::Tensor sum_partials(const torch::Tensor& partials) {
  const int64_t tasks = partials.size(0), C = partials.size(1);
  torch::Tensor out = torch::zeros({C}, partials.options());
  float* o = out.data_ptr<float>();
  const float* p = partials.data_ptr<float>();
  for (int64_t t = 0; t < tasks; ++t)
    for (int64_t i = 0; i < C; ++i) o[i] += p[t * C + i];
  return out;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& gain, double eps) {
    RECORD_FUNCTION("muonlab::rms_norm", std::vector<c10::IValue>());  // named in profiles
    const torch::Tensor x32 = x.to(torch::kFloat).contiguous();
    const torch::Tensor g32 = gain.to(torch::kFloat).contiguous();
    const int64_t C = x.size(-1), rows = x32.numel() / C;
    torch::Tensor y = torch::empty_like(x32);
    torch::Tensor rstd = torch::empty({rows}, x32.options());
    const float* xp = x32.data_ptr<float>();
    const float* gp = g32.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    float* rp = rstd.data_ptr<float>();
    at::parallel_for(0, rows, kRowsPerTask, [&](int64_t begin, int64_t end) {
      forward_rows(xp, gp, yp, rp, C, static_cast<float>(eps), begin, end);
    });
    ctx->save_for_backward({x, gain, rstd});
    return y.to(torch::promote_types(x.scalar_type(), gain.scalar_type()));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor x32 = x.to(torch::kFloat).contiguous();
    const torch::Tensor g32 = saved[1].to(torch::kFloat).contiguous();
    const torch::Tensor& rstd = saved[2];
    const torch::Tensor dy = grads[0].to(torch::kFloat).contiguous();
    const int64_t C = x.size(-1), rows = x32.numel() / C;
    const int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
    torch::Tensor dx = torch::empty_like(x32);
    // fused_applies() admits no empty input, so there is at least one row and one task.
    torch::Tensor partials = torch::empty({tasks, C}, x32.options());
    const float* xp = x32.data_ptr<float>();
    const float* gp = g32.data_ptr<float>();
    const float* rp = rstd.data_ptr<float>();
    const float* dyp = dy.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    float* pp = partials.data_ptr<float>();
    // One task per kRowsPerTask rows (grain 1 task), so the partials do not depend on threads.
    at::parallel_for(0, tasks, 1, [&](int64_t first, int64_t last) {
      for (int64_t t = first; t < last; ++t) {
        const int64_t begin = t * kRowsPerTask, end = std::min(rows, begin + kRowsPerTask);
        backward_rows(xp, gp, rp, dyp, dxp, pp + t * C, C, begin, end);
      }
    });
    return {dx.to(x.scalar_type()), sum_partials(partials).to(saved[1].scalar_type()),
            torch::Tensor()};
  }
};

bool fused_applies(const torch::Tensor& x, const torch::Tensor& gain) {
  const bool dtype_ok = x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16;
  return x.is_cpu() && gain.is_cpu() && dtype_ok && gain.scalar_type() == torch::kFloat &&
         x.dim() >= 1 && gain.dim() == 1 && gain.size(0) == x.size(-1) && x.numel() > 0;
}

}  // namespace

torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& gain, double eps) {
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * gain;
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& gain, double eps) {
  if (!fused_applies(x, gain)) return rms_norm_reference(x, gain, eps);
  return RmsNormFunction::apply(x, gain, eps);
}

}  // namespace muonlab
