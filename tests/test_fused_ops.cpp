// The fused model kernels (RMSNorm, SwiGLU, causal softmax, RoPE, cross-entropy, dense layer, fp32
// GEMM) against their tensor-op references: values and gradients in float32 and bfloat16, odd
// sizes, and the same numbers for one and two threads.
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "models/kernels/causal_softmax.h"
#include "models/kernels/cross_entropy.h"
#include "models/kernels/dense.h"
#include "models/kernels/rms_norm.h"
#include "models/kernels/sgemm.h"
#include "models/kernels/swiglu.h"
#include "models/rope.h"
#include "tests/test_util.h"

using namespace muonlab;
using muonlab::test::with_threads;

namespace {

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

double max_abs(const torch::Tensor& a) { return a.to(torch::kDouble).abs().max().item<double>(); }

struct SwigluResult {
  torch::Tensor y, da, db;
};

// y = f(a, b) and the gradients of sum(y * weights).
template <typename F>
SwigluResult run_swiglu(F f, const torch::Tensor& a0, const torch::Tensor& b0,
                        const torch::Tensor& weights) {
  torch::Tensor a = a0.detach().clone().requires_grad_(true);
  torch::Tensor b = b0.detach().clone().requires_grad_(true);
  torch::Tensor y = f(a, b);
  y.backward(weights.to(y.scalar_type()));
  return {y.detach(), a.grad(), b.grad()};
}

// Largest |x - ref| relative to max(|ref|, floor) elementwise.
double max_rel_diff(const torch::Tensor& x, const torch::Tensor& ref, double floor) {
  torch::Tensor r = ref.to(torch::kDouble);
  return ((x.to(torch::kDouble) - r).abs() / r.abs().clamp_min(floor)).max().item<double>();
}

struct NormResult {
  torch::Tensor y, dx, dgain;
};

// y = norm(x, gain) and the gradients of sum(y * weights).
template <typename Norm>
NormResult run_norm(Norm norm, const torch::Tensor& x0, const torch::Tensor& gain0,
                    const torch::Tensor& weights) {
  torch::Tensor x = x0.detach().clone().requires_grad_(true);
  torch::Tensor gain = gain0.detach().clone().requires_grad_(true);
  torch::Tensor y = norm(x, gain, 1e-5);
  (y.to(torch::kFloat) * weights).sum().backward();
  return {y.detach(), x.grad(), gain.grad()};
}

NormResult fused(const torch::Tensor& x, const torch::Tensor& gain, const torch::Tensor& w) {
  return run_norm(rms_norm, x, gain, w);
}
NormResult reference(const torch::Tensor& x, const torch::Tensor& gain, const torch::Tensor& w) {
  return run_norm(rms_norm_reference, x, gain, w);
}

}  // namespace

TEST_CASE("at::parallel_for in muonlab code runs on the threads it is given", "[fused]") {
  // LibTorch's parallel_for is inline OpenMP: compiled without -fopenmp it would run serially.
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  std::atomic<int> mask{0};
  at::parallel_for(0, 2, 1, [&](int64_t, int64_t) { mask |= 1 << at::get_thread_num(); });
  at::set_num_threads(threads);
  CHECK(mask.load() == 3);
}

TEST_CASE("fused RMSNorm matches the tensor-op version in float32", "[fused][rms_norm]") {
  torch::manual_seed(1);
  for (int64_t C : {37, 64, 512}) {                  // 37: a tail after the vector lanes
    torch::Tensor x = torch::randn({3, 45, C}) * 3;  // 135 rows: several tasks and a short last one
    torch::Tensor gain = torch::rand({C}) + 0.5;
    torch::Tensor w = torch::randn({3, 45, C});
    NormResult f = fused(x, gain, w), r = reference(x, gain, w);
    CHECK(f.y.scalar_type() == torch::kFloat);
    CHECK(max_abs_diff(f.y, r.y) <= 2e-6 * max_abs(r.y));
    CHECK(max_abs_diff(f.dx, r.dx) <= 2e-6 * max_abs(r.dx));
    CHECK(max_abs_diff(f.dgain, r.dgain) <= 2e-6 * max_abs(r.dgain));
  }
}

TEST_CASE("fused RMSNorm is the one autograd node and takes strided input", "[fused][rms_norm]") {
  torch::manual_seed(2);
  torch::Tensor x = torch::randn({64, 32}).t();  // (32, 64), not contiguous
  torch::Tensor gain = torch::rand({64}) + 0.5;
  torch::Tensor w = torch::randn({32, 64});
  torch::Tensor xg = x.detach().requires_grad_(true);
  torch::Tensor y = rms_norm(xg, gain, 1e-5);
  REQUIRE(y.grad_fn());
  CHECK_THAT(y.grad_fn()->name(), Catch::Contains("RmsNorm"));
  NormResult f = fused(x, gain, w), r = reference(x, gain, w);
  CHECK(max_abs_diff(f.y, r.y) <= 2e-6 * max_abs(r.y));
  CHECK(max_abs_diff(f.dx, r.dx) <= 2e-6 * max_abs(r.dx));
}

TEST_CASE("fused RMSNorm in bfloat16 matches the float32 reference to bf16 rounding",
          "[fused][rms_norm]") {
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({40, 256}).to(torch::kBFloat16);
  torch::Tensor gain = torch::rand({256}) + 0.5;
  torch::Tensor w = torch::randn({40, 256});
  NormResult f = fused(x, gain, w);
  NormResult r = reference(x.to(torch::kFloat), gain, w);
  CHECK(f.y.scalar_type() == torch::kFloat);                // bf16 x with a float32 gain promotes
  CHECK(f.dx.scalar_type() == torch::kBFloat16);            // the gradient has x's dtype
  CHECK(max_abs_diff(f.y, r.y) <= 1e-5 * max_abs(r.y));     // computed in float from the same x
  CHECK(max_abs_diff(f.dx, r.dx) <= 1e-2 * max_abs(r.dx));  // rounded to bf16 once
  CHECK(max_abs_diff(f.dgain, r.dgain) <= 1e-5 * max_abs(r.dgain));
}

TEST_CASE("fused RMSNorm gives the same bits for one and two threads", "[fused][rms_norm]") {
  torch::manual_seed(4);
  torch::Tensor x = torch::randn({4, 100, 96});
  torch::Tensor gain = torch::rand({96}) + 0.5;
  torch::Tensor w = torch::randn({4, 100, 96});
  auto run = [&] { return fused(x, gain, w); };
  NormResult one = with_threads(1, run), two = with_threads(2, run);
  CHECK(torch::equal(one.y, two.y));
  CHECK(torch::equal(one.dx, two.dx));
  CHECK(torch::equal(one.dgain, two.dgain));
}

TEST_CASE("fused SwiGLU matches silu(a) * b in float32 over a wide range", "[fused][swiglu]") {
  torch::manual_seed(5);
  // Values from -90 to 90 reach the clamped ends of the exp; 70001 elements leave a tail.
  torch::Tensor a = torch::cat({torch::linspace(-90, 90, 1001), torch::randn({69000}) * 4});
  torch::Tensor b = torch::randn({70001});
  torch::Tensor w = torch::randn({70001});
  SwigluResult f = run_swiglu(swiglu, a, b, w), r = run_swiglu(swiglu_reference, a, b, w);
  SwigluResult exact = run_swiglu(swiglu_reference, a.to(torch::kDouble), b.to(torch::kDouble),
                                  w.to(torch::kDouble));
  CHECK(f.y.scalar_type() == torch::kFloat);
  CHECK(max_rel_diff(f.y, r.y, 1e-3) < 1e-5);
  CHECK(max_rel_diff(f.db, r.db, 1e-3) < 1e-5);
  // The derivative of silu crosses zero near a = -1.28, where float rounding is relatively large
  // for any implementation: measure both against float64 instead.
  const double fused_error = max_abs_diff(f.da, exact.da);
  const double torch_error = max_abs_diff(r.da, exact.da);
  CHECK(fused_error <= std::max(2 * torch_error, 1e-6 * max_abs(exact.da)));
}

TEST_CASE("fused SwiGLU is the one autograd node and takes 3-D and strided input",
          "[fused][swiglu]") {
  torch::manual_seed(6);
  torch::Tensor a = torch::randn({4, 50, 30}).transpose(1, 2);  // (4, 30, 50), not contiguous
  torch::Tensor b = torch::randn({4, 30, 50});
  torch::Tensor w = torch::randn({4, 30, 50});
  torch::Tensor ag = a.detach().requires_grad_(true);
  torch::Tensor y = swiglu(ag, b);
  REQUIRE(y.grad_fn());
  CHECK_THAT(y.grad_fn()->name(), Catch::Contains("Swiglu"));
  SwigluResult f = run_swiglu(swiglu, a, b, w), r = run_swiglu(swiglu_reference, a, b, w);
  CHECK(max_rel_diff(f.y, r.y, 1e-3) < 1e-5);
  CHECK(max_rel_diff(f.da, r.da, 1e-3) < 1e-5);
}

TEST_CASE("fused SwiGLU in bfloat16 is within bf16 rounding of the float32 result",
          "[fused][swiglu]") {
  torch::manual_seed(7);
  torch::Tensor a = (torch::randn({3000}) * 3).to(torch::kBFloat16);
  torch::Tensor b = torch::randn({3000}).to(torch::kBFloat16);
  torch::Tensor w = torch::randn({3000}).to(torch::kBFloat16);
  SwigluResult f = run_swiglu(swiglu, a, b, w);
  SwigluResult exact =
      run_swiglu(swiglu_reference, a.to(torch::kFloat), b.to(torch::kFloat), w.to(torch::kFloat));
  SwigluResult unfused = run_swiglu(swiglu_reference, a, b, w);
  CHECK(f.y.scalar_type() == torch::kBFloat16);
  CHECK(f.da.scalar_type() == torch::kBFloat16);
  // One rounding to bf16 (2^-8 relative) against the float result from the same inputs...
  CHECK(max_rel_diff(f.y, exact.y, 1e-2) <= 1.0 / 256);
  CHECK(max_rel_diff(f.da, exact.da, 1e-2) <= 1.0 / 256);
  CHECK(max_rel_diff(f.db, exact.db, 1e-2) <= 1.0 / 256);
  // ...and no further from it than the unfused bf16 ops, which round after every operation.
  CHECK(max_abs_diff(f.y, exact.y) <= max_abs_diff(unfused.y, exact.y));
}

TEST_CASE("fused SwiGLU gives the same bits for one and two threads", "[fused][swiglu]") {
  torch::manual_seed(8);
  torch::Tensor a = torch::randn({100000}), b = torch::randn({100000}), w = torch::randn({100000});
  auto run = [&] { return run_swiglu(swiglu, a, b, w); };
  SwigluResult one = with_threads(1, run), two = with_threads(2, run);
  CHECK(torch::equal(one.y, two.y));
  CHECK(torch::equal(one.da, two.da));
}

namespace {

struct SoftmaxResult {
  torch::Tensor p, ds;
};

// p = f(scores, scale) and the gradient of sum(p * weights).
template <typename F>
SoftmaxResult run_softmax(F f, const torch::Tensor& scores0, double scale,
                          const torch::Tensor& weights) {
  torch::Tensor scores = scores0.detach().clone().requires_grad_(true);
  torch::Tensor p = f(scores, scale);
  p.backward(weights.to(p.scalar_type()));
  return {p.detach(), scores.grad()};
}

}  // namespace

TEST_CASE("fused causal softmax matches masked_fill + softmax in float32", "[fused][softmax]") {
  torch::manual_seed(9);
  for (int64_t T : {1, 7, 37, 128}) {  // 37: rows longer than the lanes with a tail
    torch::Tensor scores = torch::randn({2, 3, T, T}) * 4;
    torch::Tensor w = torch::randn({2, 3, T, T});
    const double scale = 0.125;
    SoftmaxResult f = run_softmax(causal_softmax, scores, scale, w);
    SoftmaxResult r = run_softmax(causal_softmax_reference, scores, scale, w);
    CHECK(max_abs_diff(f.p, r.p) < 1e-6);
    CHECK(max_abs_diff(f.ds, r.ds) <= 1e-5 * max_abs(r.ds));
    // Above the diagonal the probabilities and gradients are exactly zero.
    torch::Tensor future = torch::ones({T, T}, torch::kBool).triu(1);
    CHECK(f.p.masked_select(future).abs().sum().item<double>() == 0);
    CHECK(f.ds.masked_select(future).abs().sum().item<double>() == 0);
    CHECK(f.p.sum(-1).sub(1).abs().max().item<double>() < 1e-6);
  }
}

TEST_CASE("fused causal softmax in bfloat16 is within bf16 rounding of float32",
          "[fused][softmax]") {
  torch::manual_seed(10);
  torch::Tensor scores = (torch::randn({4, 64, 64}) * 4).to(torch::kBFloat16);
  torch::Tensor w = torch::randn({4, 64, 64});
  SoftmaxResult f = run_softmax(causal_softmax, scores, 0.125, w);
  SoftmaxResult exact = run_softmax(causal_softmax_reference, scores.to(torch::kFloat), 0.125, w);
  CHECK(f.p.scalar_type() == torch::kBFloat16);
  CHECK(max_rel_diff(f.p, exact.p, 1e-2) <= 1.0 / 256);
  // The gradient uses the rounded probabilities and a bf16 incoming gradient.
  CHECK(max_abs_diff(f.ds, exact.ds) <= 2e-2 * max_abs(exact.ds));
}

TEST_CASE("fused causal softmax is one autograd node and thread-count invariant",
          "[fused][softmax]") {
  torch::manual_seed(11);
  torch::Tensor scores = torch::randn({2, 4, 2, 50, 50});  // the (B, Hkv, G, T, T) layout
  torch::Tensor w = torch::randn({2, 4, 2, 50, 50});
  torch::Tensor sg = scores.detach().requires_grad_(true);
  torch::Tensor p = causal_softmax(sg, 0.5);
  REQUIRE(p.grad_fn());
  CHECK_THAT(p.grad_fn()->name(), Catch::Contains("CausalSoftmax"));
  auto run = [&] { return run_softmax(causal_softmax, scores, 0.5, w); };
  SoftmaxResult one = with_threads(1, run), two = with_threads(2, run);
  CHECK(torch::equal(one.p, two.p));
  CHECK(torch::equal(one.ds, two.ds));
}

namespace {

struct RopeResult {
  torch::Tensor y, dx;
};

// y = f(x) and the gradient of sum(y * weights).
template <typename F>
RopeResult run_rope(F f, const torch::Tensor& x0, const torch::Tensor& weights) {
  torch::Tensor x = x0.detach().clone().requires_grad_(true);
  torch::Tensor y = f(x);
  (y.to(torch::kFloat) * weights).sum().backward();
  return {y.detach(), x.grad()};
}

}  // namespace

TEST_CASE("fused RoPE equals the tensor-op rotation bit for bit in float32", "[fused][rope]") {
  torch::manual_seed(31);
  const Rope rope(16, 40, 10000.0);
  // Contiguous, and the model's (B, T, H, D) projection seen as (B, H, T, D); T below the table.
  for (const torch::Tensor& x :
       {torch::randn({2, 3, 40, 16}) * 3, torch::randn({2, 33, 3, 16}).transpose(1, 2)}) {
    torch::Tensor w = torch::randn(x.sizes());
    RopeResult fused = run_rope([&](const torch::Tensor& t) { return rope.apply(t); }, x, w);
    RopeResult ops =
        run_rope([&](const torch::Tensor& t) { return rope.apply_tensor_ops(t); }, x, w);
    CHECK(torch::equal(fused.y, ops.y));
    CHECK(torch::equal(fused.dx, ops.dx));
    // The output keeps the input's layout, so neither direction copies.
    CHECK(fused.y.strides() == x.strides());
  }
  torch::Tensor x = torch::randn({1, 2, 8, 16}).requires_grad_(true);
  CHECK_THAT(rope.apply(x).grad_fn()->name(), Catch::Contains("FusedRope"));
  CHECK_THROWS_AS(rope.apply(torch::randn({1, 1, 41, 16})), std::invalid_argument);
  CHECK_THROWS_AS(rope.apply(torch::randn({1, 1, 8, 12})), std::invalid_argument);
}

TEST_CASE("fused RoPE in bfloat16 is within bf16 rounding of float32", "[fused][rope]") {
  torch::manual_seed(32);
  const Rope rope(32, 64, 10000.0);
  torch::Tensor x = (torch::randn({2, 4, 64, 32}) * 2).to(torch::kBFloat16);
  torch::Tensor w = torch::randn({2, 4, 64, 32});
  RopeResult fused = run_rope([&](const torch::Tensor& t) { return rope.apply(t); }, x, w);
  RopeResult exact = run_rope([&](const torch::Tensor& t) { return rope.apply_tensor_ops(t); },
                              x.to(torch::kFloat), w);
  CHECK(fused.y.scalar_type() == torch::kBFloat16);
  CHECK(max_abs_diff(fused.y, exact.y) <= max_abs(exact.y) / 256);
  CHECK(max_abs_diff(fused.dx, exact.dx) <= max_abs(exact.dx) / 128);
}

TEST_CASE("fused RoPE gives the same bits for one and two threads", "[fused][rope]") {
  torch::manual_seed(33);
  const Rope rope(8, 100, 500.0);
  torch::Tensor x = torch::randn({3, 5, 100, 8}), w = torch::randn({3, 5, 100, 8});
  auto f = [&](const torch::Tensor& t) { return rope.apply(t); };
  auto run = [&] { return run_rope(f, x, w); };
  RopeResult one = with_threads(1, run), two = with_threads(2, run);
  CHECK(torch::equal(one.y, two.y));
  CHECK(torch::equal(one.dx, two.dx));
}

namespace {

struct LossResult {
  torch::Tensor loss, dlogits;
};

// loss = f(logits, targets) and the gradient of 3 * loss.
template <typename F>
LossResult run_loss(F f, const torch::Tensor& logits0, const torch::Tensor& targets) {
  torch::Tensor logits = logits0.detach().clone().requires_grad_(true);
  torch::Tensor loss = f(logits, targets);
  (3 * loss).backward();
  return {loss.detach(), logits.grad()};
}

// Logits with a tail past a multiple of 16 and rows far from zero (the max shift matters).
torch::Tensor test_logits(int64_t N, int64_t V) {
  torch::Tensor logits = torch::randn({N, V}) * 4;
  logits[0] += 1000;
  logits[1] *= 20;
  logits[2] -= 500;
  return logits;
}

}  // namespace

TEST_CASE("fused cross-entropy matches PyTorch's in float32, loss and gradient",
          "[fused][cross_entropy]") {
  torch::manual_seed(40);
  const int64_t N = 300, V = 1003;
  torch::Tensor logits = test_logits(N, V);
  torch::Tensor targets = torch::randint(V, {N}, torch::kLong);
  LossResult f = run_loss(cross_entropy, logits, targets);
  LossResult r = run_loss(cross_entropy_reference, logits, targets);
  const double exact =
      torch::nn::functional::cross_entropy(logits.to(torch::kDouble), targets).item<double>();
  CHECK(f.loss.scalar_type() == torch::kFloat);
  CHECK(f.loss.dim() == 0);
  CHECK(std::abs(f.loss.item<double>() - exact) <= 1e-5 * exact);
  CHECK(std::abs(f.loss.item<double>() - r.loss.item<double>()) <= 1e-5 * exact);
  CHECK(max_abs_diff(f.dlogits, r.dlogits) <= 1e-5 * max_abs(r.dlogits));
  // The gradient's rows sum to zero: softmax minus one-hot, scaled by 3 / N.
  CHECK(f.dlogits.sum(1).abs().max().item<double>() < 1e-6);
  CHECK(f.dlogits[5][targets[5].item<int64_t>()].item<double>() < 0);
}

TEST_CASE("fused cross-entropy in bfloat16 reads the bf16 logits and returns a float loss",
          "[fused][cross_entropy]") {
  torch::manual_seed(41);
  const int64_t N = 64, V = 517;
  torch::Tensor logits = test_logits(N, V).to(torch::kBFloat16);
  torch::Tensor targets = torch::randint(V, {N}, torch::kLong);
  LossResult f = run_loss(cross_entropy, logits, targets);
  LossResult exact = run_loss(cross_entropy_reference, logits.to(torch::kFloat), targets);
  torch::Tensor node = cross_entropy(logits.clone().requires_grad_(true), targets);
  REQUIRE(node.grad_fn());
  CHECK_THAT(node.grad_fn()->name(), Catch::Contains("CrossEntropy"));  // not the fallback
  CHECK(f.loss.scalar_type() == torch::kFloat);
  CHECK(f.dlogits.scalar_type() == torch::kBFloat16);
  // The same bf16 inputs, computed in float: the loss agrees to float rounding...
  CHECK(std::abs(f.loss.item<double>() - exact.loss.item<double>()) <=
        1e-5 * exact.loss.item<double>());
  // ...and the gradient to one bf16 rounding.
  CHECK(max_rel_diff(f.dlogits, exact.dlogits, 1e-3 * max_abs(exact.dlogits)) <= 1.0 / 256);
}

TEST_CASE("fused cross-entropy is one autograd node and thread-count invariant",
          "[fused][cross_entropy]") {
  torch::manual_seed(42);
  torch::Tensor logits = test_logits(1000, 257);
  torch::Tensor targets = torch::randint(257, {1000}, torch::kLong);
  torch::Tensor leaf = logits.clone().requires_grad_(true);
  torch::Tensor loss = cross_entropy(leaf, targets);
  REQUIRE(loss.grad_fn());
  CHECK_THAT(loss.grad_fn()->name(), Catch::Contains("CrossEntropy"));
  auto run = [&] { return run_loss(cross_entropy, logits, targets); };
  LossResult one = with_threads(1, run), two = with_threads(2, run);
  CHECK(torch::equal(one.loss, two.loss));
  CHECK(torch::equal(one.dlogits, two.dlogits));
}

TEST_CASE("fused cross-entropy keeps its precision on rows far from zero",
          "[fused][cross_entropy]") {
  // Logits near 1e5 with a spread of a few units: a log-sum-exp rounded to one float there is
  // off by up to 4e-3, which the loss (about log V) would show at the 1e-4 level.
  torch::manual_seed(43);
  const int64_t N = 50, V = 300;
  torch::Tensor logits = torch::randn({N, V}) * 3 + 1e5;
  torch::Tensor targets = torch::randint(V, {N}, torch::kLong);
  LossResult f = run_loss(cross_entropy, logits, targets);
  LossResult exact = run_loss(cross_entropy_reference, logits.to(torch::kDouble), targets);
  CHECK(std::abs(f.loss.item<double>() - exact.loss.item<double>()) <=
        2e-6 * exact.loss.item<double>());
  CHECK(max_abs_diff(f.dlogits.to(torch::kDouble), exact.dlogits) <= 1e-5 * max_abs(exact.dlogits));
}

TEST_CASE("fused cross-entropy handles one row, short rows, -inf and NaN logits",
          "[fused][cross_entropy]") {
  torch::manual_seed(44);
  for (int64_t V : {1, 2, 5, 15, 17}) {
    for (int64_t N : {1, 3}) {
      torch::Tensor logits = torch::randn({N, V}) * 2;
      torch::Tensor targets = torch::randint(V, {N}, torch::kLong);
      LossResult f = run_loss(cross_entropy, logits, targets);
      LossResult r = run_loss(cross_entropy_reference, logits, targets);
      INFO("N " << N << " V " << V);
      CHECK(std::abs(f.loss.item<double>() - r.loss.item<double>()) <=
            1e-6 * std::max(1.0, r.loss.item<double>()));
      CHECK(max_abs_diff(f.dlogits, r.dlogits) <= 1e-6);
    }
  }
  // A masked-out logit (-inf) takes no probability; the loss stays finite.
  torch::Tensor masked = torch::randn({2, 40});
  masked[0][3] = -std::numeric_limits<float>::infinity();
  masked[1][39] = -std::numeric_limits<float>::infinity();
  torch::Tensor targets = torch::tensor({0, 1}, torch::kLong);
  LossResult f = run_loss(cross_entropy, masked, targets);
  LossResult r = run_loss(cross_entropy_reference, masked, targets);
  CHECK(std::isfinite(f.loss.item<double>()));
  CHECK(std::abs(f.loss.item<double>() - r.loss.item<double>()) <= 1e-5 * r.loss.item<double>());
  CHECK(std::abs(f.dlogits[0][3].item<double>()) < 1e-30);
  CHECK(max_abs_diff(f.dlogits, r.dlogits) <= 1e-6);
  // A NaN logit, a +inf one, or a row of -inf makes the loss NaN, as PyTorch's: a diverged model
  // must not report a finite loss.
  for (int kind = 0; kind < 3; ++kind) {
    torch::Tensor bad = torch::randn({3, 40});
    if (kind == 0) bad[1][7] = std::numeric_limits<float>::quiet_NaN();
    if (kind == 1) bad[1][7] = std::numeric_limits<float>::infinity();
    if (kind == 2) bad[1].fill_(-std::numeric_limits<float>::infinity());
    torch::Tensor t = torch::tensor({0, 1, 2}, torch::kLong);
    INFO("kind " << kind);
    CHECK(std::isnan(cross_entropy(bad, t).item<double>()));
    CHECK(std::isnan(cross_entropy(bad.to(torch::kBFloat16), t).item<double>()));
    CHECK(std::isnan(cross_entropy_reference(bad, t).item<double>()));
  }
}

TEST_CASE("fused cross-entropy refuses a second derivative", "[fused][cross_entropy]") {
  torch::Tensor logits = torch::randn({4, 10}).requires_grad_(true);
  torch::Tensor weight = torch::tensor(2.0f).requires_grad_(true);
  torch::Tensor loss = cross_entropy(logits, torch::tensor({1, 2, 3, 4}, torch::kLong)) * weight;
  CHECK_THROWS_WITH(torch::autograd::grad({loss}, {logits}, {}, true, true),
                    Catch::Contains("not twice differentiable"));
}

TEST_CASE("fused cross-entropy names a target outside the vocabulary", "[fused][cross_entropy]") {
  torch::Tensor logits = torch::randn({4, 10});
  torch::Tensor targets = torch::tensor({1, 2, 10, 3}, torch::kLong);
  CHECK_THROWS_WITH(cross_entropy(logits, targets),
                    Catch::Contains("target 10 at row 2") && Catch::Contains("[0, 10)"));
  CHECK_THROWS_WITH(cross_entropy(logits, torch::tensor({0, -1, 0, 0}, torch::kLong)),
                    Catch::Contains("target -1 at row 1"));
}

TEST_CASE("both fp32 GEMM libraries give the product to fp32 rounding in every orientation",
          "[fused][sgemm]") {
  torch::manual_seed(50);
  const int64_t m = 67, k = 131, n = 45;
  for (SgemmLibrary library : {SgemmLibrary::blas, SgemmLibrary::onednn}) {
    if (!sgemm_available(library)) {
      WARN("no " << (library == SgemmLibrary::blas ? "BLAS" : "oneDNN") << " sgemm here");
      continue;
    }
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        // Stored as the call reads them, with leading dimensions wider than a row.
        torch::Tensor a_store = torch::randn({ta ? k : m, (ta ? m : k) + 3});
        torch::Tensor b_store = torch::randn({tb ? n : k, (tb ? k : n) + 5});
        torch::Tensor a = a_store.narrow(1, 0, ta ? m : k), b = b_store.narrow(1, 0, tb ? k : n);
        torch::Tensor c = torch::full({m, n + 2}, 7.0f);
        sgemm_row_major(library, ta, tb, m, n, k, a_store.data_ptr<float>(), a_store.size(1),
                        b_store.data_ptr<float>(), b_store.size(1), 0.5f, c.data_ptr<float>(),
                        n + 2);
        torch::Tensor A = (ta ? a.t() : a).to(torch::kDouble);
        torch::Tensor B = (tb ? b.t() : b).to(torch::kDouble);
        torch::Tensor expected = A.matmul(B) + 3.5;  // beta 0.5 times the 7s
        torch::Tensor bound = A.abs().matmul(B.abs()) * (k * 1.2e-7) + 1e-6;
        INFO("library " << static_cast<int>(library) << " ta " << ta << " tb " << tb);
        CHECK(
            ((c.narrow(1, 0, n).to(torch::kDouble) - expected).abs() <= bound).all().item<bool>());
        CHECK((c.narrow(1, n, 2) == 7.0f).all().item<bool>());  // past n: untouched
      }
    }
  }
}

TEST_CASE("the fused dense layer matches torch::linear, values and gradients", "[fused][dense]") {
  if (!sgemm_available()) {
    WARN("no fp32 GEMM library to call here");
    return;
  }
  torch::manual_seed(51);
  torch::Tensor x0 = torch::randn({3, 17, 40}), w0 = torch::randn({24, 40}) * 0.2;
  torch::Tensor dy = torch::randn({3, 17, 24});
  auto run = [&](auto f) {
    torch::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
    torch::Tensor y = f(x, w);
    y.backward(dy);
    return std::vector<torch::Tensor>{y.detach(), x.grad(), w.grad()};
  };
  auto fused =
      run([](const torch::Tensor& x, const torch::Tensor& w) { return sgemm_dense(x, w); });
  auto exact = run([](const torch::Tensor& x, const torch::Tensor& w) {
    return torch::linear(x.to(torch::kDouble), w.to(torch::kDouble)).to(torch::kFloat);
  });
  for (size_t i = 0; i < 3; ++i) {
    INFO("output " << i);
    CHECK(fused[i].sizes() == exact[i].sizes());
    CHECK(max_abs_diff(fused[i], exact[i]) <= 1e-5 * max_abs(exact[i]));
  }
  // A frozen weight: only the input gradient is formed, and it is the same.
  torch::Tensor x = x0.clone().requires_grad_(true);
  sgemm_dense(x, w0).backward(dy);
  CHECK(max_abs_diff(x.grad(), exact[1]) <= 1e-5 * max_abs(exact[1]));
  // Under bf16 autocast the layer gives bf16, as autocast's linear does.
  {
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    torch::Tensor y = dense(x0, w0);
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
    CHECK(y.scalar_type() == torch::kBFloat16);
  }
  CHECK(dense(x0, w0).scalar_type() == torch::kFloat);
  CHECK(max_abs_diff(dense(x0, w0), exact[0]) <= 1e-5 * max_abs(exact[0]));
  // A 2-D input given as a transposed view, and the output modified in place afterwards.
  torch::Tensor xt = torch::randn({40, 9}).requires_grad_(true).t();
  torch::Tensor y = sgemm_dense(xt, w0);
  CHECK(max_abs_diff(y, torch::linear(xt, w0)) <= 1e-5 * max_abs(y));
  y.mul_(2);  // a view output of a custom function would refuse this
  CHECK(y.requires_grad());
}

TEST_CASE("the fused dense layer shares a weight with an embedding, as the tied LM head does",
          "[fused][dense]") {
  if (!sgemm_available()) {
    WARN("no fp32 GEMM library to call here");
    return;
  }
  torch::manual_seed(52);
  torch::Tensor table0 = torch::randn({30, 16});
  torch::Tensor idx = torch::randint(30, {2, 7}, torch::kLong);
  torch::Tensor dy = torch::randn({2, 7, 30});
  auto run = [&](auto head) {
    torch::Tensor table = table0.clone().requires_grad_(true);
    torch::Tensor logits = head(torch::embedding(table, idx) * 1.5, table);
    logits.backward(dy);
    return table.grad();
  };
  torch::Tensor fused =
      run([](const torch::Tensor& x, const torch::Tensor& w) { return sgemm_dense(x, w); });
  torch::Tensor exact =
      run([](const torch::Tensor& x, const torch::Tensor& w) { return torch::linear(x, w); });
  CHECK(max_abs_diff(fused, exact) <= 1e-5 * max_abs(exact));
}

TEST_CASE("the bf16 dense layer is autocast's linear forward, with float32 gradients",
          "[fused][dense]") {
  if (!bf16_gemm_available()) {
    WARN("no AVX-512 oneDNN bf16 GEMM here: bf16 layers are autocast's linear");
    return;
  }
  torch::manual_seed(53);
  torch::Tensor x0 = torch::randn({4, 33, 48}), w0 = torch::randn({40, 48}) * 0.2;
  torch::Tensor dy = torch::randn({4, 33, 40}).to(torch::kBFloat16);
  auto run = [&](auto f, const torch::Tensor& x_start) {
    torch::Tensor x = x_start.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    torch::Tensor y = f(x, w);
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
    y.backward(dy);
    return std::vector<torch::Tensor>{y.detach(), x.grad(), w.grad()};
  };
  auto ours = run([](const torch::Tensor& x, const torch::Tensor& w) { return dense(x, w); }, x0);
  auto autocast =
      run([](const torch::Tensor& x, const torch::Tensor& w) { return torch::linear(x, w); }, x0);
  // The product of the same bf16 operands, in float64.
  torch::Tensor xb = x0.to(torch::kBFloat16).to(torch::kDouble);
  torch::Tensor wb = w0.to(torch::kBFloat16).to(torch::kDouble);
  torch::Tensor g = dy.to(torch::kDouble);
  torch::Tensor exact_dx = g.matmul(wb), exact_dw = g.flatten(0, 1).t().matmul(xb.flatten(0, 1));
  CHECK(ours[0].scalar_type() == torch::kBFloat16);
  CHECK(ours[1].scalar_type() == torch::kFloat);
  CHECK(ours[2].scalar_type() == torch::kFloat);
  CHECK(max_abs_diff(ours[0], autocast[0]) <= max_abs(autocast[0]) / 128);
  // Float32 gradients to fp32 rounding, where autocast's carry a bf16 rounding.
  auto rel = [](const torch::Tensor& a, const torch::Tensor& exact) {
    return max_abs_diff(a.to(torch::kDouble), exact) / max_abs(exact);
  };
  CHECK(rel(ours[1], exact_dx) < 1e-5);
  CHECK(rel(ours[2], exact_dw) < 1e-5);
  CHECK(rel(autocast[2], exact_dw) > 1e-4);
  // A bf16 input gets its gradient in bf16.
  auto from_bf16 = run([](const torch::Tensor& x, const torch::Tensor& w) { return dense(x, w); },
                       x0.to(torch::kBFloat16));
  CHECK(from_bf16[1].scalar_type() == torch::kBFloat16);
  CHECK(max_abs_diff(from_bf16[1], exact_dx) <= max_abs(exact_dx) / 128);
}
