// Keeps muonlab off OpenBLAS's generic fallback kernels. OpenBLAS picks its kernel when it loads,
// from the CPU model or from OPENBLAS_CORETYPE; on CPUs it does not recognise it falls back to a
// pre-AVX kernel (e.g. Prescott) that runs fp32 matmuls ~5x slower. At start-up muonlab checks
// the kernel and, when it is such a fallback on a CPU with AVX2 or AVX-512 and neither the user
// nor the environment has set OPENBLAS_CORETYPE, re-executes itself with the best kernel the CPU
// supports. It never overrides a value that is set, and MUONLAB_BLAS_AUTOTUNE=0 opts out.
// It does not tune anything else (threads, oneDNN, OPENBLAS_L2_SIZE).
#pragma once
#include <string>

namespace muonlab {

struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512 = false;  // F, BW, DQ and VL: what OpenBLAS's SkylakeX kernels need
  bool avx512_bf16 = false;
};
CpuFeatures detect_cpu_features();

// True for OpenBLAS's generic pre-AVX kernel families (Prescott, Core2, Nehalem, ...).
bool is_fallback_blas_kernel(const std::string& core);

// The OPENBLAS_CORETYPE to re-execute with, or "" to leave OpenBLAS as it is: "" unless `core`
// is a fallback and the CPU can run Haswell (AVX2+FMA), SkylakeX (AVX-512) or Cooperlake
// (AVX-512 with BF16) kernels.
std::string better_blas_kernel(const std::string& core, const CpuFeatures& cpu);

// Re-executes this process (same arguments) with OPENBLAS_CORETYPE set when better_blas_kernel
// says so, OPENBLAS_CORETYPE is unset and MUONLAB_BLAS_AUTOTUNE is not 0; otherwise (or if the
// re-execution fails, which is reported on stderr) it returns and the caller goes on.
void reexec_with_better_blas(char** argv);

// For the start-up line, when this process (or a parent muonlab) chose the kernel: "chosen by
// muonlab over OpenBLAS's fallback Prescott; MUONLAB_BLAS_AUTOTUNE=0 opts out", or a warning
// when the loaded kernel is not the one chosen; "" otherwise.
std::string blas_autotune_note(const std::string& loaded_core);

}  // namespace muonlab
