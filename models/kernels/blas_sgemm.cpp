// Resolves `sgemm_` once with dlsym and calls it with the row-major -> column-major swap:
// row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, the same call with A and B
// exchanged.
#include "models/kernels/blas_sgemm.h"

#include <dlfcn.h>

#include <stdexcept>

namespace muonlab {
namespace {

using SgemmFn = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                         const int* k, const float* alpha, const float* a, const int* lda,
                         const float* b, const int* ldb, const float* beta, float* c,
                         const int* ldc);

SgemmFn sgemm_function() {
  static const SgemmFn fn = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return fn;
}

}  // namespace

bool blas_sgemm_available() { return sgemm_function() != nullptr; }

void sgemm_row_major(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                     const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                     int64_t ldc) {
  const SgemmFn fn = sgemm_function();
  if (fn == nullptr) throw std::logic_error("sgemm_row_major: no BLAS sgemm_ in this process");
  const char ta = transpose_b ? 'T' : 'N', tb = transpose_a ? 'T' : 'N';
  const int im = static_cast<int>(n), in = static_cast<int>(m), ik = static_cast<int>(k);
  const int ia = static_cast<int>(ldb), ib = static_cast<int>(lda), ic = static_cast<int>(ldc);
  const float alpha = 1.0f;
  fn(&ta, &tb, &im, &in, &ik, &alpha, b, &ia, a, &ib, &beta, c, &ic);
}

}  // namespace muonlab
