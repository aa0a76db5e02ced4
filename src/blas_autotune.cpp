// OpenBLAS fallback-kernel detection and the re-execution with a better OPENBLAS_CORETYPE.
#include "src/blas_autotune.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "src/runtime.h"

namespace muonlab {
namespace {

// Set in the re-executed process (and inherited by its children) to the kernel replaced.
constexpr const char* kReplacedVar = "MUONLAB_BLAS_REPLACED";

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

CpuFeatures detect_cpu_features() {
  CpuFeatures cpu;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  cpu.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  cpu.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  cpu.avx512_bf16 = cpu.avx512 && __builtin_cpu_supports("avx512bf16");
#endif
  return cpu;
}

bool is_fallback_blas_kernel(const std::string& core) {
  static const std::array<const char*, 11> kFallbacks = {
      "katmai", "coppermine", "northwood", "prescott", "banias", "core2",
      "penryn", "dunnington", "nehalem",   "atom",     "generic"};
  const std::string name = lower(core);
  return std::any_of(kFallbacks.begin(), kFallbacks.end(),
                     [&](const char* fallback) { return name == fallback; });
}

std::string better_blas_kernel(const std::string& core, const CpuFeatures& cpu) {
  if (!is_fallback_blas_kernel(core)) return "";
  if (cpu.avx512_bf16) return "Cooperlake";
  if (cpu.avx512) return "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  return "";
}

void reexec_with_better_blas(char** argv) {
  const char* opt = std::getenv("MUONLAB_BLAS_AUTOTUNE");
  if (opt && std::string(opt) == "0") return;
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  const BlasInfo blas = detect_blas();
  if (blas.name != "OpenBLAS") return;
  const std::string kernel = better_blas_kernel(blas.core, detect_cpu_features());
  if (kernel.empty()) return;
  setenv("OPENBLAS_CORETYPE", kernel.c_str(), 1);
  setenv(kReplacedVar, blas.core.c_str(), 1);
  execv("/proc/self/exe", argv);
  // Only reached when execv failed: go on with the fallback kernel, and say so.
  const int error = errno;
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(kReplacedVar);
  std::cerr << "muonlab: warning: OpenBLAS runs its slow fallback kernel " << blas.core
            << "; re-running with OPENBLAS_CORETYPE=" << kernel
            << " failed (execv: " << std::strerror(error) << "); set it yourself\n";
}

std::string blas_autotune_note(const std::string& loaded_core) {
  const char* replaced = std::getenv(kReplacedVar);
  const char* requested = std::getenv("OPENBLAS_CORETYPE");
  if (!replaced || !requested) return "";
  if (lower(loaded_core) != lower(requested) || lower(loaded_core) == lower(replaced))
    return std::string("OPENBLAS_CORETYPE=") + requested +
           " chosen by muonlab had no effect: this OpenBLAS lacks that kernel";
  return std::string("chosen by muonlab over OpenBLAS's fallback ") + replaced +
         "; MUONLAB_BLAS_AUTOTUNE=0 opts out";
}

}  // namespace muonlab
