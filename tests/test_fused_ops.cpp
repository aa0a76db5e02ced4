// The fused model kernels against their tensor-op references: values and gradients in float32
// and bfloat16, odd sizes, and the same numbers for one and two threads.
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>

#include "models/rms_norm.h"
#include "models/swiglu.h"

using namespace muonlab;

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
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  NormResult one = fused(x, gain, w);
  at::set_num_threads(2);
  NormResult two = fused(x, gain, w);
  at::set_num_threads(threads);
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
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  SwigluResult one = run_swiglu(swiglu, a, b, w);
  at::set_num_threads(2);
  SwigluResult two = run_swiglu(swiglu, a, b, w);
  at::set_num_threads(threads);
  CHECK(torch::equal(one.y, two.y));
  CHECK(torch::equal(one.da, two.da));
}
