// Blocked causal attention: per (batch, kv head) pair, for query head h = kv * G + g and query
// block [r0, r0 + rows), with keys = r0 + rows:
//   forward   S = Q_blk K[:keys]^T, P_blk = causal softmax(scale S), O_blk = P_blk V[:keys]
//   backward  dP = dO_blk V[:keys]^T, dS_blk = softmax backward, dQ_blk = dS_blk K[:keys],
//             then per key block [c0, c0 + w): dK_blk (+)= dS[c0:, blk]^T Q[c0:],
//             dV_blk (+)= P[c0:, blk]^T dO[c0:] (rows above c0 are masked there), summed over g.
// P is kept for backward as (B, Hkv, G, T, T) with only the causal blocks written. Every pair is
// computed by one thread in a fixed order, so the numbers do not depend on the thread count.
#include "models/kernels/blocked_attention.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "models/kernels/causal_softmax.h"
#include "models/kernels/sgemm.h"

namespace muonlab {
namespace {

constexpr int64_t kBlock = 64;

// The (T, D) matrices of a (B, heads, T, D) float tensor with unit stride along D.
struct Heads {
  float* base;
  int64_t batch_stride, head_stride, ld;
  explicit Heads(const torch::Tensor& x)
      : base(x.data_ptr<float>()),
        batch_stride(x.stride(0)),
        head_stride(x.stride(1)),
        ld(std::max(x.stride(2), x.size(3))) {}  // T == 1 may have any row stride
  float* at(int64_t b, int64_t h) const { return base + b * batch_stride + h * head_stride; }
};

struct Dims {
  int64_t B, Hkv, G, T, D;
  float scale;
};

Dims dims_of(const torch::Tensor& q, const torch::Tensor& k) {
  const int64_t D = q.size(3);
  return {q.size(0), k.size(1), q.size(1) / k.size(1),
          q.size(2), D,         static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)))};
}

// Unit stride along D and rows at least D apart, as the BLAS calls need; else a contiguous copy.
torch::Tensor blas_ready(const torch::Tensor& x) {
  const bool ready =
      x.stride(3) == 1 && x.stride(2) >= x.size(3) && x.stride(1) >= 0 && x.stride(0) >= 0;
  return ready ? x : x.contiguous();
}

// Forward of pair (b, kv): writes O for its G query heads and their probabilities.
void forward_pair(const Heads& q, const Heads& k, const Heads& v, const Heads& out, float* probs,
                  int64_t b, int64_t kv, const Dims& d, float* scores, float* scratch) {
  const float* K = k.at(b, kv);
  const float* V = v.at(b, kv);
  const int64_t T = d.T;
  for (int64_t g = 0; g < d.G; ++g) {
    const float* Q = q.at(b, kv * d.G + g);
    float* O = out.at(b, kv * d.G + g);
    float* P = probs + g * T * T;
    for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
      const int64_t rows = std::min(kBlock, T - r0), keys = r0 + rows;
      sgemm_row_major(false, true, rows, keys, d.D, Q + r0 * q.ld, q.ld, K, k.ld, 0, scores, T);
      causal_softmax_block(scores, T, P + r0 * T, T, rows, r0, keys, d.scale, scratch);
      sgemm_row_major(false, false, rows, d.D, keys, P + r0 * T, T, V, v.ld, 0, O + r0 * out.ld,
                      out.ld);
    }
  }
}

struct Grads {
  Heads dq, dk, dv;
};

// Backward of pair (b, kv): dQ of its G query heads, dK and dV of kv head kv.
void backward_pair(const Heads& q, const Heads& k, const Heads& v, const Heads& dout,
                   const float* probs, const Grads& grads, int64_t b, int64_t kv, const Dims& d,
                   float* dprobs, float* dscores) {
  const float* K = k.at(b, kv);
  const float* V = v.at(b, kv);
  float* dK = grads.dk.at(b, kv);
  float* dV = grads.dv.at(b, kv);
  const int64_t T = d.T;
  for (int64_t g = 0; g < d.G; ++g) {
    const float* Q = q.at(b, kv * d.G + g);
    const float* dO = dout.at(b, kv * d.G + g);
    float* dQ = grads.dq.at(b, kv * d.G + g);
    const float* P = probs + g * T * T;
    for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
      const int64_t rows = std::min(kBlock, T - r0), keys = r0 + rows;
      sgemm_row_major(false, true, rows, keys, d.D, dO + r0 * dout.ld, dout.ld, V, v.ld, 0, dprobs,
                      T);
      causal_softmax_block_backward(P + r0 * T, T, dprobs, T, dscores + r0 * T, T, rows, r0, keys,
                                    d.scale);
      sgemm_row_major(false, false, rows, d.D, keys, dscores + r0 * T, T, K, k.ld, 0,
                      dQ + r0 * grads.dq.ld, grads.dq.ld);
    }
    const float beta = g == 0 ? 0.0f : 1.0f;
    for (int64_t c0 = 0; c0 < T; c0 += kBlock) {
      const int64_t width = std::min(kBlock, T - c0), below = T - c0;
      sgemm_row_major(true, false, width, d.D, below, dscores + c0 * T + c0, T, Q + c0 * q.ld, q.ld,
                      beta, dK + c0 * grads.dk.ld, grads.dk.ld);
      sgemm_row_major(true, false, width, d.D, below, P + c0 * T + c0, T, dO + c0 * dout.ld,
                      dout.ld, beta, dV + c0 * grads.dv.ld, grads.dv.ld);
    }
  }
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class BlockedAttentionFunction : public torch::autograd::Function<BlockedAttentionFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in,
                               const torch::Tensor& k_in, const torch::Tensor& v_in) {
    RECORD_FUNCTION("muonlab::blocked_attention", std::vector<c10::IValue>());  // named in profiles
    const torch::Tensor q = blas_ready(q_in), k = blas_ready(k_in), v = blas_ready(v_in);
    const Dims d = dims_of(q, k);
    torch::Tensor out = torch::empty({d.B, d.T, d.Hkv * d.G, d.D}, q.options()).transpose(1, 2);
    torch::Tensor probs = torch::empty({d.B, d.Hkv, d.G, d.T, d.T}, q.options());
    const Heads hq(q), hk(k), hv(v), hout(out);
    float* p = probs.data_ptr<float>();
    at::parallel_for(0, d.B * d.Hkv, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> scores(static_cast<size_t>(kBlock * d.T)), scratch(d.T);
      for (int64_t pair = begin; pair < end; ++pair)
        forward_pair(hq, hk, hv, hout, p + pair * d.G * d.T * d.T, pair / d.Hkv, pair % d.Hkv, d,
                     scores.data(), scratch.data());
    });
    ctx->save_for_backward({q, k, v, probs});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3];
    const torch::Tensor dout = blas_ready(grads[0].to(torch::kFloat));
    const Dims d = dims_of(q, k);
    torch::Tensor dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    const Heads hq(q), hk(k), hv(v), hdout(dout);
    const Grads hgrads{Heads(dq), Heads(dk), Heads(dv)};
    const float* p = probs.data_ptr<float>();
    at::parallel_for(0, d.B * d.Hkv, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> dprobs(static_cast<size_t>(kBlock * d.T)), dscores(d.T * d.T);
      for (int64_t pair = begin; pair < end; ++pair)
        backward_pair(hq, hk, hv, hdout, p + pair * d.G * d.T * d.T, hgrads, pair / d.Hkv,
                      pair % d.Hkv, d, dprobs.data(), dscores.data());
    });
    return {dq, dk, dv};
  }
};

// Every leading dimension and size the BLAS sees must fit its 32-bit integers.
bool fits_blas_ints(const torch::Tensor& x) {
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  return x.size(2) <= kMax && x.size(3) <= kMax && x.stride(2) <= kMax &&
         x.size(2) * x.size(2) <= kMax;
}

}  // namespace

bool blocked_attention_applies(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v) {
  for (const torch::Tensor* x : {&q, &k, &v}) {
    if (!x->is_cpu() || x->scalar_type() != torch::kFloat || x->numel() == 0 || !fits_blas_ints(*x))
      return false;
  }
  return sgemm_available();
}

torch::Tensor blocked_causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v) {
  return BlockedAttentionFunction::apply(q, k, v);
}

}  // namespace muonlab
