// Resolves `sgemm_` and `dnnl_sgemm` once with dlsym and applies the library rule. The BLAS is
// called with the row-major -> column-major swap: row-major C = op(A) op(B) is column-major
// C^T = op(B)^T op(A)^T, the same call with A and B exchanged; oneDNN takes row-major directly.
#include "models/kernels/sgemm.h"

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace muonlab {
namespace {

using BlasSgemmFn = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                             const int* k, const float* alpha, const float* a, const int* lda,
                             const float* b, const int* ldb, const float* beta, float* c,
                             const int* ldc);
using OnednnSgemmFn = int (*)(char transa, char transb, int64_t m, int64_t n, int64_t k,
                              float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                              float beta, float* c, int64_t ldc);

using OnednnBf16GemmFn = int (*)(char transa, char transb, int64_t m, int64_t n, int64_t k,
                                 float alpha, const uint16_t* a, int64_t lda, const uint16_t* b,
                                 int64_t ldb, float beta, float* c, int64_t ldc);

BlasSgemmFn blas_sgemm() {
  static const auto fn = reinterpret_cast<BlasSgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return fn;
}

OnednnSgemmFn onednn_sgemm() {
  static const auto fn = reinterpret_cast<OnednnSgemmFn>(dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
  return fn;
}

OnednnBf16GemmFn onednn_bf16_gemm() {
  static const auto fn =
      reinterpret_cast<OnednnBf16GemmFn>(dlsym(RTLD_DEFAULT, "dnnl_gemm_bf16bf16f32"));
  return fn;
}

// OpenBLAS's kernel family, "MKL" for Intel's library (AVX-512 where the CPU has it), "" for
// another BLAS (the reference one).
std::string loaded_blas_kernel() {
  using CoreNameFn = const char* (*)();
  auto core = reinterpret_cast<CoreNameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (core) return core();
  if (dlsym(RTLD_DEFAULT, "MKL_Get_Max_Threads") || dlsym(RTLD_DEFAULT, "mkl_get_max_threads")) {
    return "MKL";
  }
  return "";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool one_of(const std::string& s, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return s == n; });
}

void blas_call(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
               int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const BlasSgemmFn fn = blas_sgemm();
  if (fn == nullptr) throw std::logic_error("sgemm_row_major: no BLAS sgemm_ in this process");
  for (int64_t v : {m, n, k, lda, ldb, ldc}) {
    TORCH_CHECK(v <= std::numeric_limits<int>::max(), "sgemm_row_major: size or leading dimension ",
                v, " exceeds the BLAS's int");
  }
  const char ta = transpose_b ? 'T' : 'N', tb = transpose_a ? 'T' : 'N';
  const int im = static_cast<int>(n), in = static_cast<int>(m), ik = static_cast<int>(k);
  const int ia = static_cast<int>(ldb), ib = static_cast<int>(lda), ic = static_cast<int>(ldc);
  const float alpha = 1.0f;
  fn(&ta, &tb, &im, &in, &ik, &alpha, b, &ia, a, &ib, &beta, c, &ic);
}

void onednn_call(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc) {
  const OnednnSgemmFn fn = onednn_sgemm();
  if (fn == nullptr)
    throw std::logic_error("sgemm_row_major: no oneDNN dnnl_sgemm in this process");
  const int status = fn(transpose_a ? 'T' : 'N', transpose_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b,
                        ldb, beta, c, ldc);
  if (status != 0) {
    throw std::runtime_error("sgemm_row_major: dnnl_sgemm failed with status " +
                             std::to_string(status));
  }
}

// A 2-D float32 operand as (pointer, transposed, leading dimension), copying it when it is
// neither row-major contiguous nor a transposed contiguous view.
struct Operand {
  torch::Tensor keep;
  bool transposed = false;
  int64_t ld = 0;
};
Operand operand(const torch::Tensor& t) {
  if (t.stride(1) == 1 && t.stride(0) >= std::max<int64_t>(1, t.size(1))) {
    return {t, false, t.stride(0)};
  }
  if (t.stride(0) == 1 && t.stride(1) >= std::max<int64_t>(1, t.size(0))) {
    return {t, true, t.stride(1)};
  }
  torch::Tensor c = t.contiguous();
  return {c, false, std::max<int64_t>(1, c.size(1))};
}

}  // namespace

int blas_kernel_width(const std::string& openblas_core) {
  const std::string c = lower(openblas_core);
  if (one_of(c, {"skylakex", "cooperlake", "sapphirerapids", "mkl"})) return 512;
  if (one_of(c, {"haswell", "zen", "sandybridge", "excavator", "steamroller", "piledriver",
                 "bulldozer"})) {
    return 256;
  }
  return 128;
}

int onednn_isa_width(const std::string& isa) {
  if (isa.empty()) return 0;
  if (isa.rfind("avx512", 0) == 0) return 512;
  if (isa.rfind("avx", 0) == 0) return 256;
  return 128;
}

SgemmLibrary choose_sgemm_library(const std::string& setting, const std::string& openblas_core,
                                  const std::string& onednn_isa, bool have_onednn) {
  if (setting == "blas") return SgemmLibrary::blas;
  if (setting == "onednn") {
    if (!have_onednn) {
      throw std::invalid_argument(
          "MUONLAB_FP32_GEMM=onednn: this LibTorch has no oneDNN (dnnl_sgemm); use blas or auto");
    }
    return SgemmLibrary::onednn;
  }
  if (!setting.empty() && setting != "auto") {
    throw std::invalid_argument("MUONLAB_FP32_GEMM=" + setting +
                                ": use auto (the default), blas or onednn");
  }
  const bool wider = onednn_isa_width(onednn_isa) > blas_kernel_width(openblas_core);
  return have_onednn && wider ? SgemmLibrary::onednn : SgemmLibrary::blas;
}

SgemmLibrary sgemm_library() {
  static const SgemmLibrary library = [] {
    const char* setting = std::getenv("MUONLAB_FP32_GEMM");
    return choose_sgemm_library(setting ? setting : "", loaded_blas_kernel(), onednn_isa_name(),
                                onednn_sgemm() != nullptr);
  }();
  return library;
}

std::string sgemm_library_description() {
  const char* setting = std::getenv("MUONLAB_FP32_GEMM");
  const bool forced =
      setting != nullptr && (std::string(setting) == "blas" || std::string(setting) == "onednn");
  const std::string core = loaded_blas_kernel();
  const std::string blas = core.empty() ? "the reference BLAS" : core == "MKL" ? "MKL" : "OpenBLAS";
  if (sgemm_library() == SgemmLibrary::blas) return forced ? blas + " (MUONLAB_FP32_GEMM)" : blas;
  if (forced) return "oneDNN (MUONLAB_FP32_GEMM)";
  return "oneDNN (" + onednn_isa_name() + ", wider than " +
         (core.empty() ? blas : blas + "'s " + core) + "; MUONLAB_FP32_GEMM=blas opts out)";
}

std::string onednn_isa_name() {
  using IsaFn = int (*)();
  auto isa = reinterpret_cast<IsaFn>(dlsym(RTLD_DEFAULT, "dnnl_get_effective_cpu_isa"));
  if (!isa) return "";
  switch (isa()) {  // oneDNN 2.x's dnnl_cpu_isa_t values
    case 0x1:
      return "sse41";
    case 0x3:
      return "avx";
    case 0x7:
      return "avx2";
    case 0xf:
      return "avx512_mic";
    case 0x1f:
      return "avx512_mic_4ops";
    case 0x27:
      return "avx512_core";
    case 0x67:
      return "avx512_core_vnni";
    case 0xe7:
      return "avx512_core_bf16";
    case 0x3e7:
      return "avx512_core_amx";
    case 0x407:
      return "avx2_vnni";
    default: {  // a newer oneDNN: its bits say the vector width (0x20 AVX-512, 0x4 AVX2)
      const int value = isa();
      const std::string family = value & 0x20 ? "avx512" : value & 0x4 ? "avx2" : "sse";
      return family + " (isa " + std::to_string(value) + ")";
    }
  }
}

bool sgemm_available(SgemmLibrary library) {
  return library == SgemmLibrary::onednn ? onednn_sgemm() != nullptr : blas_sgemm() != nullptr;
}

bool sgemm_available() { return sgemm_available(sgemm_library()); }

void sgemm_row_major(SgemmLibrary library, bool transpose_a, bool transpose_b, int64_t m, int64_t n,
                     int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float beta, float* c, int64_t ldc) {
  if (library == SgemmLibrary::onednn) {
    onednn_call(transpose_a, transpose_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
  } else {
    blas_call(transpose_a, transpose_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
  }
}

void sgemm_row_major(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                     const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                     int64_t ldc) {
  sgemm_row_major(sgemm_library(), transpose_a, transpose_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
}

bool bf16_gemm_available() {
  static const bool available =
      onednn_bf16_gemm() != nullptr && onednn_isa_width(onednn_isa_name()) >= 512;
  return available;
}

void bf16_gemm_row_major(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                         const uint16_t* a, int64_t lda, const uint16_t* b, int64_t ldb, float beta,
                         float* c, int64_t ldc) {
  if (!bf16_gemm_available()) {
    throw std::logic_error("bf16_gemm_row_major: no AVX-512 oneDNN bf16 GEMM in this process");
  }
  const int status = onednn_bf16_gemm()(transpose_a ? 'T' : 'N', transpose_b ? 'T' : 'N', m, n, k,
                                        1.0f, a, lda, b, ldb, beta, c, ldc);
  if (status != 0) {
    throw std::runtime_error("bf16_gemm_row_major: dnnl_gemm_bf16bf16f32 failed with status " +
                             std::to_string(status));
  }
}

torch::Tensor sgemm_matmul(const torch::Tensor& a, const torch::Tensor& b) {
  TORCH_CHECK(a.scalar_type() == torch::kFloat && b.scalar_type() == torch::kFloat,
              "sgemm_matmul: float32 operands only");
  const bool batched = a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0);
  TORCH_CHECK((batched || (a.dim() == 2 && b.dim() == 2)) && a.size(-1) == b.size(-2),
              "sgemm_matmul: (m, k) x (k, n) or batched (B, m, k) x (B, k, n) operands");
  const int64_t batch = batched ? a.size(0) : 1, m = a.size(-2), n = b.size(-1), k = a.size(-1);
  torch::Tensor c = torch::empty({batch, m, n}, a.options());
  for (int64_t i = 0; i < batch; ++i) {
    const Operand x = operand(batched ? a[i] : a), y = operand(batched ? b[i] : b);
    sgemm_row_major(x.transposed, y.transposed, m, n, k, x.keep.data_ptr<float>(), x.ld,
                    y.keep.data_ptr<float>(), y.ld, 0, c[i].data_ptr<float>(),
                    std::max<int64_t>(1, n));
  }
  return batched ? c : c[0];
}

}  // namespace muonlab
