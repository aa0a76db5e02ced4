// Single-precision GEMM on row-major matrices through the BLAS that LibTorch itself loaded (its
// Fortran `sgemm_`, found at run time), for kernels that multiply many small blocks and cannot
// afford a tensor per product. Called inside at::parallel_for, an OpenMP build of OpenBLAS runs
// single-threaded, so each product stays on the calling thread. No other dtype here.
#pragma once
#include <cstdint>

namespace muonlab {

// True when LibTorch's process has a BLAS `sgemm_` to call.
bool blas_sgemm_available();

// C (m x n) = op(A) op(B) + beta C, all row-major with leading dimensions lda, ldb, ldc; op(X) is
// X or its transpose (A is m x k after op, B is k x n after op). Requires blas_sgemm_available().
void sgemm_row_major(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                     const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                     int64_t ldc);

}  // namespace muonlab
