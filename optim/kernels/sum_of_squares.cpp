// Chunked float64 sum of squares: a lane loop the compiler vectorises (cloned per ISA, compiled
// with -ffp-contract=off like optim/kernels/fused_adamw.cpp), chunks in parallel, partials added in
// order.
#include "optim/kernels/sum_of_squares.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "optim/kernels/isa_clones.h"

namespace muonlab {
namespace {

constexpr int kLanes = 16;
constexpr int64_t kChunk = 1 << 16;  // elements per partial sum

MUONLAB_ISA_CLONES
double chunk_sum_of_squares(const float* __restrict x, int64_t n) {
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const double v = x[i + l];
      lanes[l] += v * v;
    }
  double sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += lanes[l];
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

}  // namespace

double sum_of_squares(const torch::Tensor& t) {
  if (!t.is_cpu() || t.scalar_type() != at::kFloat || !t.is_contiguous()) {
    const double norm =
        at::linalg_vector_norm(t, 2, c10::nullopt, false, at::kDouble).item<double>();
    return norm * norm;
  }
  const float* x = t.data_ptr<float>();
  const int64_t n = t.numel();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) {
      const int64_t begin = c * kChunk, size = std::min(n, begin + kChunk) - begin;
      partial[static_cast<size_t>(c)] = chunk_sum_of_squares(x + begin, size);
    }
  });
  double sum = 0;
  for (double p : partial) sum += p;
  return sum;
}

}  // namespace muonlab
