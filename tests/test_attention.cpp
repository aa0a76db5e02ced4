// The blocked causal attention against the tensor-op path and an explicit masked reference:
// values and gradients of q, k, v in float32 for grouped-query heads, sequence lengths that are
// not a multiple of the block, strided inputs as the model passes them, causality, and the same
// bits for one and two threads.
#include <ATen/Parallel.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "models/attention.h"
#include "models/kernels/blocked_attention.h"
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
  // bfloat16 takes the tensor-op path.
  CHECK_FALSE(blocked_attention_applies(q.to(torch::kBFloat16), k.to(torch::kBFloat16),
                                        v.to(torch::kBFloat16)));
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
  AttentionResult one = with_threads(1, run), two = with_threads(2, run);
  CHECK(torch::equal(one.out, two.out));
  CHECK(torch::equal(one.dq, two.dq));
  CHECK(torch::equal(one.dk, two.dk));
  CHECK(torch::equal(one.dv, two.dv));
}
