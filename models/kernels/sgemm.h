// Single-precision GEMM (and oneDNN's bf16 one) on row-major matrices through one of the two
// libraries LibTorch itself loaded, found at run time: the BLAS's Fortran `sgemm_` (OpenBLAS here,
// what torch::mm uses) or oneDNN's `dnnl_sgemm`. The faster one is chosen once per process by a
// fixed rule, never by a timing (so the same run gives the same numbers): oneDNN when its
// instruction set has wider vectors than the BLAS's kernel (e.g. the environment pins OpenBLAS to
// its AVX2 `Haswell` kernel on an AVX-512 CPU: 2x at the model's shapes on Zen 5), otherwise the
// BLAS. MUONLAB_FP32_GEMM=blas or =onednn overrides it (unset or auto: the rule). A process that
// installs signal handlers must keep them off the threads that run dnnl_sgemm (see
// src/stop_signals.h: oneDNN's kernel keeps its stack pointer on the heap, and a handler's frame
// would corrupt it); muonlab's main() does. Called inside at::parallel_for, both
// run single-threaded (OpenMP builds do not nest), so each product stays on the calling thread; at
// top level they use LibTorch's thread count. bf16 products always go to oneDNN; no other dtype.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace muonlab {

enum class SgemmLibrary { blas, onednn };

// Vector width in bits of an OpenBLAS kernel family ("Haswell" 256, "SkylakeX" 512, "Prescott"
// 128; "MKL" 512; unknown names, the reference BLAS's "" among them, 128) and of a oneDNN
// instruction set name ("avx2" 256, "avx512_core*" 512, "sse41" 128, "" 0).
int blas_kernel_width(const std::string& openblas_core);
int onednn_isa_width(const std::string& isa);

// The rule: `setting` is MUONLAB_FP32_GEMM's value ("" and "auto" apply it, "blas" gives the
// BLAS, "onednn" oneDNN); `have_onednn` says dnnl_sgemm exists. Throws std::invalid_argument for
// another value or for "onednn" without oneDNN.
SgemmLibrary choose_sgemm_library(const std::string& setting, const std::string& openblas_core,
                                  const std::string& onednn_isa, bool have_onednn);

// This process's choice (the rule applied to the loaded libraries and the environment, once).
SgemmLibrary sgemm_library();
// For logs and records: "OpenBLAS" or "oneDNN", with the reason when the rule picked oneDNN.
std::string sgemm_library_description();

// The instruction set oneDNN runs on here, e.g. "avx512_core_bf16"; "" without oneDNN.
std::string onednn_isa_name();

// True when this process has the chosen library's sgemm to call.
bool sgemm_available();

// C (m x n) = op(A) op(B) + beta C, all row-major with leading dimensions lda, ldb, ldc; op(X) is
// X or its transpose (A is m x k after op, B is k x n after op). Requires sgemm_available().
void sgemm_row_major(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                     const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                     int64_t ldc);

// The same through a given library (tests compare the two); throws std::logic_error when this
// process lacks it.
void sgemm_row_major(SgemmLibrary library, bool transpose_a, bool transpose_b, int64_t m, int64_t n,
                     int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float beta, float* c, int64_t ldc);
// True when this process can call the given library's sgemm.
bool sgemm_available(SgemmLibrary library);

// bfloat16 operands (raw bits), float32 result: C = op(A) op(B) + beta C, row-major, through
// oneDNN's dnnl_gemm_bf16bf16f32 (float accumulation), the product autocast's bf16 matmuls use.
// Available where oneDNN runs AVX-512 (elsewhere LibTorch bypasses it and so does muonlab).
bool bf16_gemm_available();
void bf16_gemm_row_major(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                         const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                         float* c, int64_t ldc);

// a (m, k) times b (k, n), float32 2-D tensors (each contiguous or a transposed contiguous view),
// or batched (B, m, k) x (B, k, n), through sgemm_row_major: the fp32 product the model's own
// layers use, for benchmarks that time it.
torch::Tensor sgemm_matmul(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace muonlab
