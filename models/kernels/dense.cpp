// y = x w^T with x flattened to (M, K): forward sgemm(x, w^T); backward dx = dy w and
// dw = dy^T x, each one row-major product on the saved contiguous operands.
#include "models/kernels/dense.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/functional/linear.h>

#include <vector>

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
    // The engine runs backward with grad mode on only for create_graph (a second derivative).
    TORCH_CHECK(!at::GradMode::is_enabled() && !grads[0].requires_grad(),
                "dense: the fused product is not twice differentiable");
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& w = saved[1];
    const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
    const torch::Tensor dy = grads[0].contiguous().view({M, N});
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

torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& w) {
  if (sgemm_library() == SgemmLibrary::onednn && fused_applies(x, w)) {
    return DenseFunction::apply(x, w);
  }
  return torch::linear(x, w);
}

}  // namespace muonlab
