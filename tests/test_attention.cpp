// The blocked causal attention against the tensor-op path and an explicit masked reference:
// values and gradients of q, k, v in float32 and bfloat16 for grouped-query heads, sequence
// lengths that are not a multiple of the block, strided inputs as the model passes them,
// causality, and the same bits for one and two threads.
#include <ATen/Parallel.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "models/attention.h"
#include "models/kernels/blocked_attention.h"
#include "models/kernels/sgemm.h"
#include "tests/test_util.h"

using namespace muonlab;
using muonlab::test::with_threads;

namespace {

struct AttentionResult {
  torch::Tensor out, dq, dk, dv;
};

// out = f(q, k, v) and the gradients of sum(out * weights).
template <typename F>
AttentionResult run_attention(F f, const torch::Tensor& q0, const torch::Tensor& k0,
                              const torch::Tensor& v0, const torch::Tensor& weights) {
  torch::Tensor q = q0.detach().clone().requires_grad_(true);
  torch::Tensor k = k0.detach().clone().requires_grad_(true);
  torch::Tensor v = v0.detach().clone().requires_grad_(true);
  torch::Tensor out = f(q, k, v);
  (out * weights).sum().backward();
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

// K/V heads expanded with repeat_interleave, an explicit mask, softmax, in float64.
torch::Tensor masked_reference(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v) {
  const int64_t G = q.size(1) / k.size(1), T = q.size(2), D = q.size(3);
  torch::Tensor kr = k.to(torch::kDouble).repeat_interleave(G, 1);
  torch::Tensor vr = v.to(torch::kDouble).repeat_interleave(G, 1);
  torch::Tensor scores =
      torch::matmul(q.to(torch::kDouble), kr.transpose(-2, -1)) / std::sqrt(double(D));
  torch::Tensor future = torch::ones({T, T}, torch::kBool).triu(1);
  return torch::matmul(torch::softmax(scores.masked_fill(future, -INFINITY), -1), vr);
}

// max |x - ref| / max |ref| (0 when both are 0: with T = 1 dq and dk vanish).
double rel_diff(const torch::Tensor& x, const torch::Tensor& ref) {
  torch::Tensor r = ref.to(torch::kDouble);
  const double scale = std::max(r.abs().max().item<double>(), 1e-30);
  return (x.to(torch::kDouble) - r).abs().max().item<double>() / scale;
}

void check_close(const AttentionResult& a, const AttentionResult& b, double tolerance) {
  CHECK(rel_diff(a.out, b.out) < tolerance);
  CHECK(rel_diff(a.dq, b.dq) < tolerance);
  CHECK(rel_diff(a.dk, b.dk) < tolerance);
  CHECK(rel_diff(a.dv, b.dv) < tolerance);
}

void check_same_bits(const AttentionResult& a, const AttentionResult& b) {
  CHECK(torch::equal(a.out, b.out));
  CHECK(torch::equal(a.dq, b.dq));
  CHECK(torch::equal(a.dk, b.dk));
  CHECK(torch::equal(a.dv, b.dv));
}

}  // namespace

TEST_CASE("blocked attention matches the masked reference and the tensor-op path", "[attention]") {
  torch::manual_seed(21);
  struct Shape {
    int64_t B, H, Hkv, T, D;
  };
  // T = 1, one block, a partial last block, several blocks with a partial one; GQA 1, 2 and 4.
  for (const Shape s : {Shape{1, 1, 1, 1, 4}, Shape{2, 4, 4, 37, 8}, Shape{2, 4, 2, 64, 16},
                        Shape{1, 4, 1, 150, 12}, Shape{2, 2, 1, 129, 32}}) {
    INFO("B " << s.B << " H " << s.H << " Hkv " << s.Hkv << " T " << s.T << " D " << s.D);
    torch::Tensor q = torch::randn({s.B, s.H, s.T, s.D}) * 2;
    torch::Tensor k = torch::randn({s.B, s.Hkv, s.T, s.D}) * 2;
    torch::Tensor v = torch::randn({s.B, s.Hkv, s.T, s.D});
    torch::Tensor w = torch::randn({s.B, s.H, s.T, s.D});
    REQUIRE(blocked_attention_applies(q, k, v));
    AttentionResult blocked = run_attention(blocked_causal_attention, q, k, v, w);
    AttentionResult ops = run_attention(causal_attention_tensor_ops, q, k, v, w);
    AttentionResult exact = run_attention(masked_reference, q, k, v, w);
    CHECK(blocked.out.scalar_type() == torch::kFloat);
    CHECK(blocked.out.sizes() == q.sizes());
    check_close(blocked, exact, 2e-6);
    check_close(ops, exact, 2e-6);
  }
}

TEST_CASE("blocked attention takes the model's strided views and is what float32 runs",
          "[attention]") {
  torch::manual_seed(22);
  const int64_t B = 2, T = 70, H = 4, Hkv = 2, D = 8;
  // As models/llama.cpp passes them: projections viewed (B, T, heads, D), transposed.
  torch::Tensor q = torch::randn({B, T, H, D}).transpose(1, 2);
  torch::Tensor k = torch::randn({B, T, Hkv, D}).transpose(1, 2);
  torch::Tensor v = torch::randn({B, T, Hkv, D}).transpose(1, 2);
  // The incoming gradient too, as the head merge's backward hands it over.
  torch::Tensor w = torch::randn({B, T, H, D}).transpose(1, 2);
  AttentionResult blocked = run_attention(causal_attention, q, k, v, w);
  AttentionResult exact = run_attention(masked_reference, q, k, v, w);
  check_close(blocked, exact, 2e-6);
  // The output is laid out (B, T, H, D), so merging the heads is a view.
  CHECK(blocked.out.transpose(1, 2).is_contiguous());
  torch::Tensor qg = q.detach().requires_grad_(true);
  CHECK_THAT(causal_attention(qg, k, v).grad_fn()->name(), Catch::Contains("BlockedAttention"));
  // bfloat16 takes the blocked kernel where oneDNN has its AVX-512 bf16 GEMM, else the tensor ops;
  // mixed dtypes always take the tensor ops.
  CHECK(blocked_attention_applies(q.to(torch::kBFloat16), k.to(torch::kBFloat16),
                                  v.to(torch::kBFloat16)) == bf16_gemm_available());
  CHECK_FALSE(blocked_attention_applies(q, k.to(torch::kBFloat16), v));
}

TEST_CASE("blocked attention is causal: later keys and values change no earlier output",
          "[attention]") {
  torch::manual_seed(23);
  const int64_t T = 100, cut = 65;  // the cut falls inside the second block
  torch::Tensor q = torch::randn({1, 2, T, 8}), k = torch::randn({1, 2, T, 8});
  torch::Tensor v = torch::randn({1, 2, T, 8});
  torch::Tensor k2 = k.clone(), v2 = v.clone();
  k2.narrow(2, cut, T - cut).normal_();
  v2.narrow(2, cut, T - cut).normal_();
  torch::Tensor a = blocked_causal_attention(q, k, v), b = blocked_causal_attention(q, k2, v2);
  CHECK(torch::equal(a.narrow(2, 0, cut), b.narrow(2, 0, cut)));
  CHECK_FALSE(torch::equal(a.narrow(2, cut, T - cut), b.narrow(2, cut, T - cut)));
}

TEST_CASE("blocked attention gives the same bits for one and two threads", "[attention]") {
  torch::manual_seed(24);
  torch::Tensor q = torch::randn({3, 4, 90, 16}), k = torch::randn({3, 2, 90, 16});
  torch::Tensor v = torch::randn({3, 2, 90, 16}), w = torch::randn({3, 4, 90, 16});
  auto run = [&] { return run_attention(blocked_causal_attention, q, k, v, w); };
  check_same_bits(with_threads(1, run), with_threads(2, run));
}

TEST_CASE(
    "blocked attention in bfloat16 is within bf16 rounding of the exact result, and no "
    "further from it than the tensor-op path it replaces",
    "[attention]") {
  if (!bf16_gemm_available()) {
    WARN("no AVX-512 oneDNN bf16 GEMM here: bf16 attention takes the tensor ops");
    return;
  }
  torch::manual_seed(25);
  struct Shape {
    int64_t B, H, Hkv, T, D;
  };
  for (const Shape s : {Shape{1, 1, 1, 1, 4}, Shape{2, 4, 2, 64, 16}, Shape{1, 4, 1, 150, 12},
                        Shape{2, 2, 2, 129, 32}}) {
    INFO("B " << s.B << " H " << s.H << " Hkv " << s.Hkv << " T " << s.T << " D " << s.D);
    // As the model passes them: (B, T, heads, D) projections viewed transposed.
    auto input = [&](int64_t heads, double scale) {
      return (torch::randn({s.B, s.T, heads, s.D}) * scale).to(torch::kBFloat16).transpose(1, 2);
    };
    torch::Tensor q = input(s.H, 2), k = input(s.Hkv, 2), v = input(s.Hkv, 1);
    torch::Tensor w = torch::randn({s.B, s.H, s.T, s.D}).to(torch::kBFloat16);
    REQUIRE(blocked_attention_applies(q, k, v));
    AttentionResult blocked = run_attention(causal_attention, q, k, v, w);
    AttentionResult ops = run_attention(causal_attention_tensor_ops, q, k, v, w);
    // The exact result of the same bf16 values, in float64.
    AttentionResult exact =
        run_attention(masked_reference, q.to(torch::kFloat), k.to(torch::kFloat),
                      v.to(torch::kFloat), w.to(torch::kFloat));
    for (const torch::Tensor* t : {&blocked.out, &blocked.dq, &blocked.dk, &blocked.dv})
      CHECK(t->scalar_type() == torch::kBFloat16);
    check_close(blocked, exact, 1.0 / 64);
    // Scores and softmax in float round less than bf16 scores do.
    CHECK(rel_diff(blocked.out, exact.out) <= rel_diff(ops.out, exact.out) * 1.25 + 1e-3);
    CHECK(rel_diff(blocked.dq, exact.dq) <= rel_diff(ops.dq, exact.dq) * 1.25 + 1e-3);
  }
  torch::Tensor q = torch::randn({1, 2, 80, 8}).to(torch::kBFloat16).requires_grad_(true);
  torch::Tensor kv = torch::randn({1, 2, 80, 8}).to(torch::kBFloat16);
  CHECK_THAT(causal_attention(q, kv, kv).grad_fn()->name(), Catch::Contains("BlockedAttention"));
}

TEST_CASE("blocked attention in bfloat16 gives the same bits for one and two threads",
          "[attention]") {
  if (!bf16_gemm_available()) {
    WARN("no AVX-512 oneDNN bf16 GEMM here");
    return;
  }
  torch::manual_seed(26);
  auto bf16 = [](torch::Tensor t) { return t.to(torch::kBFloat16); };
  torch::Tensor q = bf16(torch::randn({3, 4, 90, 16})), k = bf16(torch::randn({3, 2, 90, 16}));
  torch::Tensor v = bf16(torch::randn({3, 2, 90, 16})), w = bf16(torch::randn({3, 4, 90, 16}));
  auto run = [&] { return run_attention(blocked_causal_attention, q, k, v, w); };
  check_same_bits(with_threads(1, run), with_threads(2, run));
}
