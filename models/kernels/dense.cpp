// y = x w^T with x flattened to (M, K): forward sgemm(x, w^T); backward dx = dy w and
// dw = dy^T x, each one row-major product on the saved contiguous operands. The bf16 function
// saves the bf16 copies of x and w and takes its gradients from the bf16 -> float GEMM.
#include "models/kernels/dense.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/functional/linear.h>

#include <cstdint>
#include <vector>

#include "models/kernels/kernel_math.h"
#include "models/kernels/sgemm.h"

namespace muonlab {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::vector<int64_t> with_last(const torch::Tensor& x, int64_t last) {
  std::vector<int64_t> sizes(x.sizes().begin(), x.sizes().end());
  sizes.back() = last;
  return sizes;
}

// What a backward needs: the saved 2-D input (M, K) and weight (N, K), and the incoming gradient
// as (M, N) in `dtype`, after refusing a second derivative (the engine runs backward with grad
// mode on only for create_graph).
struct BackwardOperands {
  torch::Tensor x, w, dy;
  int64_t M, K, N;
};
BackwardOperands backward_operands(AutogradContext* ctx, const variable_list& grads,
                                   torch::ScalarType dtype) {
  TORCH_CHECK(!at::GradMode::is_enabled() && !grads[0].requires_grad(),
              "dense: the fused product is not twice differentiable");
  const auto saved = ctx->get_saved_variables();
  const int64_t M = saved[0].size(0), K = saved[0].size(1), N = saved[1].size(0);
  return {saved[0], saved[1], grads[0].to(dtype).contiguous().view({M, N}), M, K, N};
}

class DenseFunction : public torch::autograd::Function<DenseFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& w_in) {
    RECORD_FUNCTION("muonlab::dense", std::vector<c10::IValue>());  // named in profiles
    const int64_t K = x_in.size(-1), N = w_in.size(0);
    const torch::Tensor x = x_in.contiguous().view({-1, K}), w = w_in.contiguous();
    const int64_t M = x.size(0);
    // Outputs are allocated in their final shape, not views of a 2-D result, so callers may
    // modify them in place as they may torch::linear's.
    torch::Tensor y = torch::empty(with_last(x_in, N), x.options());
    if (M > 0 && N > 0) {
      sgemm_row_major(false, true, M, N, K, x.data_ptr<float>(), K, w.data_ptr<float>(), K, 0,
                      y.data_ptr<float>(), N);
    }
    ctx->save_for_backward({x, w});
    ctx->saved_data["x_sizes"] = x_in.sizes();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    RECORD_FUNCTION("muonlab::dense_backward", std::vector<c10::IValue>());
    const auto [x, w, dy, M, K, N] = backward_operands(ctx, grads, torch::kFloat);
    torch::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) {
      dx = torch::empty(ctx->saved_data["x_sizes"].toIntVector(), x.options());
      sgemm_row_major(false, false, M, K, N, dy.data_ptr<float>(), N, w.data_ptr<float>(), K, 0,
                      dx.data_ptr<float>(), K);
    }
    if (ctx->needs_input_grad(1)) {
      dw = torch::empty({N, K}, w.options());
      sgemm_row_major(true, false, N, K, M, dy.data_ptr<float>(), N, x.data_ptr<float>(), K, 0,
                      dw.data_ptr<float>(), K);
    }
    return {dx, dw};
  }
};

// Under bf16 autocast: y = bf16(x) bf16(w)^T in bf16, as autocast's linear; backward takes the
// float32 gradients straight from oneDNN's bf16 x bf16 -> float GEMM: dW (and dx for a float32
// input) are never rounded to bf16 and never cast back, which autocast's linear does.
class DenseBf16Function : public torch::autograd::Function<DenseBf16Function> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& w_in) {
    RECORD_FUNCTION("muonlab::dense_bf16", std::vector<c10::IValue>());  // named in profiles
    const int64_t K = x_in.size(-1), N = w_in.size(0);
    const torch::Tensor x = x_in.to(torch::kBFloat16).contiguous().view({-1, K});
    const torch::Tensor w = w_in.to(torch::kBFloat16).contiguous();
    torch::Tensor y = torch::empty(with_last(x_in, N), x.options());
    torch::Tensor y2 = y.view({-1, N});
    torch::mm_out(y2, x, w.t());
    ctx->save_for_backward({x, w});
    ctx->saved_data["x_sizes"] = x_in.sizes();
    ctx->saved_data["x_float"] = x_in.scalar_type() == torch::kFloat;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    RECORD_FUNCTION("muonlab::dense_bf16_backward", std::vector<c10::IValue>());
    const auto [x, w, dy, M, K, N] = backward_operands(ctx, grads, torch::kBFloat16);
    torch::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) {
      const auto sizes = ctx->saved_data["x_sizes"].toIntVector();
      if (ctx->saved_data["x_float"].toBool()) {
        dx = torch::empty(sizes, x.options().dtype(torch::kFloat));
        bf16_gemm_row_major(false, false, M, K, N, kernel::bits(dy), N, kernel::bits(w), K, 0,
                            dx.data_ptr<float>(), K);
      } else {
        dx = torch::empty(sizes, x.options());  // not a view, as the float32 case
        torch::Tensor dx2 = dx.view({M, K});
        torch::mm_out(dx2, dy, w);
      }
    }
    if (ctx->needs_input_grad(1)) {
      dw = torch::empty({N, K}, w.options().dtype(torch::kFloat));
      bf16_gemm_row_major(true, false, N, K, M, kernel::bits(dy), N, kernel::bits(x), K, 0,
                          dw.data_ptr<float>(), K);
    }
    return {dx, dw};
  }
};

bool bf16_applies(const torch::Tensor& x, const torch::Tensor& w) {
  const auto dtype = x.scalar_type();
  return x.is_cpu() && w.is_cpu() && (dtype == torch::kFloat || dtype == torch::kBFloat16) &&
         w.scalar_type() == torch::kFloat && x.dim() >= 1 && w.dim() == 2 &&
         x.size(-1) == w.size(1) && x.size(-1) > 0 && x.numel() > 0 && w.size(0) > 0 &&
         at::autocast::is_cpu_enabled() &&
         at::autocast::get_autocast_cpu_dtype() == at::kBFloat16 && bf16_gemm_available();
}

bool fused_applies(const torch::Tensor& x, const torch::Tensor& w) {
  return x.is_cpu() && w.is_cpu() && x.scalar_type() == torch::kFloat &&
         w.scalar_type() == torch::kFloat && x.dim() >= 1 && w.dim() == 2 &&
         x.size(-1) == w.size(1) && x.size(-1) > 0 && !at::autocast::is_cpu_enabled();
}

}  // namespace

torch::Tensor sgemm_dense(const torch::Tensor& x, const torch::Tensor& w) {
  TORCH_CHECK(fused_applies(x, w), "sgemm_dense: float32 CPU x (..., K) and w (N, K), no autocast");
  return DenseFunction::apply(x, w);
}

torch::Tensor bf16_dense(const torch::Tensor& x, const torch::Tensor& w) {
  TORCH_CHECK(bf16_applies(x, w),
              "bf16_dense: float32 or bf16 CPU x (..., K), float32 w (N, K), under bf16 autocast, "
              "with oneDNN's AVX-512 bf16 GEMM");
  return DenseBf16Function::apply(x, w);
}

torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& w) {
  if (sgemm_library() == SgemmLibrary::onednn && fused_applies(x, w)) {
    return DenseFunction::apply(x, w);
  }
  if (bf16_applies(x, w)) return DenseBf16Function::apply(x, w);
  return torch::linear(x, w);
}

}  // namespace muonlab
