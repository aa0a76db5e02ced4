// Blocked causal attention: per (batch, kv head) pair, for query head h = kv * G + g and query
// block [r0, r0 + rows), with keys = r0 + rows:
//   forward   S = Q_blk K[:keys]^T, P_blk = causal softmax(scale S), O_blk = P_blk V[:keys]
//   backward  dP = dO_blk V[:keys]^T, dS_blk = softmax backward, dQ_blk = dS_blk K[:keys],
//             then per key block [c0, c0 + w): dK_blk (+)= dS[c0:, blk]^T Q[c0:],
//             dV_blk (+)= P[c0:, blk]^T dO[c0:] (rows above c0 are masked there), summed over g.
// P is kept for backward as (B, Hkv, G, T, T) with only the causal blocks written. Every pair is
// computed by one thread in a fixed order, so the numbers do not depend on the thread count
// (except with a single pair, B * Hkv = 1: its products then run outside a parallel region and the
// GEMM library may split them across threads).
// bfloat16: the same products on bf16 operands with float accumulation (oneDNN), scores, softmax
// and its backward in float; P, dS and each output block are rounded to bf16 once, dK and dV
// summed over the group's heads in float first.
#include "models/kernels/blocked_attention.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "models/kernels/causal_softmax.h"
#include "models/kernels/kernel_math.h"
#include "models/kernels/sgemm.h"
#include "optim/kernels/isa_clones.h"

namespace muonlab {
namespace {

constexpr int64_t kBlock = 64;

using kernel::narrow;
using kernel::widen;

// Elements as the products take them: float, or bfloat16 as its raw bits.
template <typename E>
E* elements(const torch::Tensor& x) {
  if constexpr (std::is_same_v<E, float>) {
    return x.data_ptr<float>();
  } else {
    return kernel::bits(x);
  }
}

// The (T, D) matrices of a (B, heads, T, D) tensor with unit stride along D.
template <typename E>
struct Heads {
  E* base;
  int64_t batch_stride, head_stride, ld;
  explicit Heads(const torch::Tensor& x)
      : base(elements<E>(x)),
        batch_stride(x.stride(0)),
        head_stride(x.stride(1)),
        ld(std::max(x.stride(2), x.size(3))) {}  // T == 1 may have any row stride
  E* at(int64_t b, int64_t h) const { return base + b * batch_stride + h * head_stride; }
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

// Unit stride along D and rows at least D apart, as the GEMM calls need; else a contiguous copy.
torch::Tensor gemm_ready(const torch::Tensor& x) {
  const bool ready =
      x.stride(3) == 1 && x.stride(2) >= x.size(3) && x.stride(1) >= 0 && x.stride(0) >= 0;
  return ready ? x : x.contiguous();
}

// C (float) = op(A) op(B) + beta C through the shim: fp32 products, or bf16 ones accumulated in
// float.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  sgemm_row_major(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const uint16_t* a, int64_t lda,
          const uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  bf16_gemm_row_major(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

// Rows of `cols` floats (row stride ld_in) rounded to bf16 rows (row stride ld_out), and back.
MUONLAB_ISA_CLONES
void narrow_rows(const float* in, int64_t ld_in, uint16_t* out, int64_t ld_out, int64_t rows,
                 int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) narrow(in + r * ld_in, out + r * ld_out, cols);
}
MUONLAB_ISA_CLONES
void widen_rows(const uint16_t* in, int64_t ld_in, float* out, int64_t ld_out, int64_t rows,
                int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) widen(in + r * ld_in, out + r * ld_out, cols);
}

// One pair's working memory: float blocks for the scores and products; for bf16 also the float
// accumulators that are rounded once at the end.
struct Scratch {
  std::vector<float> block, block2, row, square, dk, dv;
  std::vector<uint16_t> square16;
  Scratch(const Dims& d, bool backward, bool bf16) {
    block.resize(static_cast<size_t>(kBlock * std::max(d.T, d.D)));
    row.resize(static_cast<size_t>(d.T));
    if (backward) square.resize(static_cast<size_t>(d.T * d.T));
    if (bf16) block2.resize(static_cast<size_t>(kBlock * std::max(d.T, d.D)));
    if (backward && bf16) {
      square16.resize(static_cast<size_t>(d.T * d.T));
      dk.resize(static_cast<size_t>(d.T * d.D));
      dv.resize(static_cast<size_t>(d.T * d.D));
    }
  }
};

// Forward of pair (b, kv): writes O for its G query heads and their probabilities (T x T each,
// only the causal blocks).
template <typename E>
void forward_pair(const Heads<E>& q, const Heads<E>& k, const Heads<E>& v, const Heads<E>& out,
                  E* probs, int64_t b, int64_t kv, const Dims& d, Scratch& s) {
  constexpr bool kFloat = std::is_same_v<E, float>;
  const E* K = k.at(b, kv);
  const E* V = v.at(b, kv);
  const int64_t T = d.T;
  float* scores = s.block.data();
  for (int64_t g = 0; g < d.G; ++g) {
    const E* Q = q.at(b, kv * d.G + g);
    E* O = out.at(b, kv * d.G + g);
    E* P = probs + g * T * T;
    for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
      const int64_t rows = std::min(kBlock, T - r0), keys = r0 + rows;
      gemm(false, true, rows, keys, d.D, Q + r0 * q.ld, q.ld, K, k.ld, 0, scores, T);
      if constexpr (kFloat) {
        causal_softmax_block(scores, T, P + r0 * T, T, rows, r0, keys, d.scale, s.row.data());
        gemm(false, false, rows, d.D, keys, P + r0 * T, T, V, v.ld, 0, O + r0 * out.ld, out.ld);
      } else {
        float* p = s.block2.data();  // the float probabilities, rounded once for the product
        causal_softmax_block(scores, T, p, T, rows, r0, keys, d.scale, s.row.data());
        narrow_rows(p, T, P + r0 * T, T, rows, keys);
        gemm(false, false, rows, d.D, keys, P + r0 * T, T, V, v.ld, 0, scores, d.D);
        narrow_rows(scores, d.D, O + r0 * out.ld, out.ld, rows, d.D);
      }
    }
  }
}

template <typename E>
struct Grads {
  Heads<E> dq, dk, dv;
};

// dK and dV of one key block (rows c0..c0+width of K, V) for query head Q's contribution, added
// to what the earlier heads of the group left there when beta is 1.
template <typename E>
void key_block_grads(const E* dS, const E* P, const E* Q, int64_t ldq, const E* dO, int64_t lddo,
                     float* dK, int64_t lddk, float* dV, int64_t lddv, int64_t T, int64_t c0,
                     int64_t width, int64_t D, float beta) {
  const int64_t below = T - c0;  // rows above c0 are masked for these keys
  gemm(true, false, width, D, below, dS + c0 * T + c0, T, Q + c0 * ldq, ldq, beta, dK + c0 * lddk,
       lddk);
  gemm(true, false, width, D, below, P + c0 * T + c0, T, dO + c0 * lddo, lddo, beta, dV + c0 * lddv,
       lddv);
}

// Backward of pair (b, kv): dQ of its G query heads, dK and dV of kv head kv.
template <typename E>
void backward_pair(const Heads<E>& q, const Heads<E>& k, const Heads<E>& v, const Heads<E>& dout,
                   const E* probs, const Grads<E>& grads, int64_t b, int64_t kv, const Dims& d,
                   Scratch& s) {
  constexpr bool kFloat = std::is_same_v<E, float>;
  const E* K = k.at(b, kv);
  const E* V = v.at(b, kv);
  const int64_t T = d.T, D = d.D;
  // float32 accumulates dK and dV in place; bf16 in float scratch, rounded once at the end.
  float* dK = kFloat ? reinterpret_cast<float*>(grads.dk.at(b, kv)) : s.dk.data();
  float* dV = kFloat ? reinterpret_cast<float*>(grads.dv.at(b, kv)) : s.dv.data();
  const int64_t lddk = kFloat ? grads.dk.ld : D, lddv = kFloat ? grads.dv.ld : D;
  float* dprobs = s.block.data();
  float* dscores = s.square.data();
  for (int64_t g = 0; g < d.G; ++g) {
    const E* Q = q.at(b, kv * d.G + g);
    const E* dO = dout.at(b, kv * d.G + g);
    E* dQ = grads.dq.at(b, kv * d.G + g);
    const E* P = probs + g * T * T;
    for (int64_t r0 = 0; r0 < T; r0 += kBlock) {
      const int64_t rows = std::min(kBlock, T - r0), keys = r0 + rows;
      gemm(false, true, rows, keys, D, dO + r0 * dout.ld, dout.ld, V, v.ld, 0, dprobs, T);
      if constexpr (kFloat) {
        causal_softmax_block_backward(P + r0 * T, T, dprobs, T, dscores + r0 * T, T, rows, r0, keys,
                                      d.scale);
        gemm(false, false, rows, D, keys, dscores + r0 * T, T, K, k.ld, 0, dQ + r0 * grads.dq.ld,
             grads.dq.ld);
      } else {
        float* p = s.block2.data();
        widen_rows(P + r0 * T, T, p, T, rows, keys);
        causal_softmax_block_backward(p, T, dprobs, T, dscores + r0 * T, T, rows, r0, keys,
                                      d.scale);
        uint16_t* dS = s.square16.data();
        narrow_rows(dscores + r0 * T, T, dS + r0 * T, T, rows, keys);
        gemm(false, false, rows, D, keys, dS + r0 * T, T, K, k.ld, 0, p, D);
        narrow_rows(p, D, dQ + r0 * grads.dq.ld, grads.dq.ld, rows, D);
      }
    }
    const float beta = g == 0 ? 0.0f : 1.0f;
    const E* dS;
    if constexpr (kFloat) {
      dS = dscores;
    } else {
      dS = s.square16.data();
    }
    for (int64_t c0 = 0; c0 < T; c0 += kBlock) {
      key_block_grads(dS, P, Q, q.ld, dO, dout.ld, dK, lddk, dV, lddv, T, c0,
                      std::min(kBlock, T - c0), D, beta);
    }
  }
  if constexpr (!kFloat) {
    narrow_rows(dK, D, grads.dk.at(b, kv), grads.dk.ld, T, D);
    narrow_rows(dV, D, grads.dv.at(b, kv), grads.dv.ld, T, D);
  }
}

template <typename E>
void forward_all(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                 const torch::Tensor& out, const torch::Tensor& probs, const Dims& d) {
  const Heads<E> hq(q), hk(k), hv(v), hout(out);
  E* p = elements<E>(probs);
  at::parallel_for(0, d.B * d.Hkv, 1, [&](int64_t begin, int64_t end) {
    Scratch s(d, false, !std::is_same_v<E, float>);
    for (int64_t pair = begin; pair < end; ++pair)
      forward_pair(hq, hk, hv, hout, p + pair * d.G * d.T * d.T, pair / d.Hkv, pair % d.Hkv, d, s);
  });
}

template <typename E>
void backward_all(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                  const torch::Tensor& dout, const torch::Tensor& probs, const torch::Tensor& dq,
                  const torch::Tensor& dk, const torch::Tensor& dv, const Dims& d) {
  const Heads<E> hq(q), hk(k), hv(v), hdout(dout);
  const Grads<E> hgrads{Heads<E>(dq), Heads<E>(dk), Heads<E>(dv)};
  const E* p = elements<E>(probs);
  at::parallel_for(0, d.B * d.Hkv, 1, [&](int64_t begin, int64_t end) {
    Scratch s(d, true, !std::is_same_v<E, float>);
    for (int64_t pair = begin; pair < end; ++pair)
      backward_pair(hq, hk, hv, hdout, p + pair * d.G * d.T * d.T, hgrads, pair / d.Hkv,
                    pair % d.Hkv, d, s);
  });
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class BlockedAttentionFunction : public torch::autograd::Function<BlockedAttentionFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in,
                               const torch::Tensor& k_in, const torch::Tensor& v_in) {
    RECORD_FUNCTION("muonlab::blocked_attention", std::vector<c10::IValue>());  // named in profiles
    const torch::Tensor q = gemm_ready(q_in), k = gemm_ready(k_in), v = gemm_ready(v_in);
    const Dims d = dims_of(q, k);
    torch::Tensor out = torch::empty({d.B, d.T, d.Hkv * d.G, d.D}, q.options()).transpose(1, 2);
    torch::Tensor probs = torch::empty({d.B, d.Hkv, d.G, d.T, d.T}, q.options());
    if (q.scalar_type() == torch::kFloat) {
      forward_all<float>(q, k, v, out, probs, d);
    } else {
      forward_all<uint16_t>(q, k, v, out, probs, d);
    }
    ctx->save_for_backward({q, k, v, probs});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(!at::GradMode::is_enabled() && !grads[0].requires_grad(),
                "blocked attention is not twice differentiable");
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3];
    const torch::Tensor dout = gemm_ready(grads[0].to(q.scalar_type()));
    const Dims d = dims_of(q, k);
    torch::Tensor dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    if (q.scalar_type() == torch::kFloat) {
      backward_all<float>(q, k, v, dout, probs, dq, dk, dv, d);
    } else {
      backward_all<uint16_t>(q, k, v, dout, probs, dq, dk, dv, d);
    }
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
  const auto dtype = q.scalar_type();
  for (const torch::Tensor* x : {&q, &k, &v}) {
    if (!x->is_cpu() || x->scalar_type() != dtype || x->numel() == 0 || !fits_blas_ints(*x))
      return false;
  }
  if (dtype == torch::kFloat) return sgemm_available();
  return dtype == torch::kBFloat16 && bf16_gemm_available();
}

torch::Tensor blocked_causal_attention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v) {
  return BlockedAttentionFunction::apply(q, k, v);
}

}  // namespace muonlab
