// Thread configuration and BLAS detection through the symbols the loaded BLAS exports.
#include "src/runtime.h"

#include <dlfcn.h>
#include <malloc.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <cstdlib>
#include <limits>
#include <thread>

#include "models/kernels/sgemm.h"
#include "optim/kernels/bf16_matmul.h"
#include "src/blas_autotune.h"

namespace muonlab {

int64_t configure_allocator() {
  const char* setting = std::getenv("MUONLAB_MALLOC_TUNE");
  if (setting != nullptr && std::string(setting) == "0") return 0;
  // Older glibc refuses a threshold above 32 MiB: then that.
  int64_t threshold = int64_t{1} << 30;
  if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(threshold)) != 1) {
    threshold = int64_t{32} << 20;
    if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(threshold)) != 1) return 0;
  }
  return mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1 ? threshold : 0;
}

int configure_threads(int64_t requested) {
  int n = requested > 0 ? static_cast<int>(requested)
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  return at::get_num_threads();
}

int64_t peak_resident_bytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

nlohmann::json runtime_fields() {
  const BlasInfo blas = detect_blas();
  return {{"threads", at::get_num_threads()},
          {"blas", blas.name},
          {"blas_kernel", blas.core},
          {"onednn_isa", onednn_isa()},
          {"fp32_gemm", sgemm_library_description()},
          {"libtorch", TORCH_VERSION}};
}

BlasInfo detect_blas() {
  BlasInfo info;
  using CoreNameFn = const char* (*)();
  auto core = reinterpret_cast<CoreNameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (core) {
    info.name = "OpenBLAS";
    info.core = core();
    return info;
  }
  if (dlsym(RTLD_DEFAULT, "MKL_Get_Max_Threads") || dlsym(RTLD_DEFAULT, "mkl_get_max_threads")) {
    info.name = "MKL";
    return info;
  }
  info.name = "reference BLAS (slow)";
  info.is_reference = true;
  return info;
}

std::string onednn_isa() { return onednn_isa_name(); }

std::string bf16_matmul_warning() {
  if (has_native_bf16_matmul()) return "";
  return "bf16 matmuls have no fast kernel on this CPU (no AVX-512, so LibTorch bypasses oneDNN "
         "and runs its scalar reference GEMM, tens of times slower than fp32; `muonlab bench` "
         "measures both): use train.precision: fp32 here (Muon's bf16 Newton-Schulz is unaffected)";
}

std::string runtime_summary() {
  BlasInfo blas = detect_blas();
  std::string line = "threads " + std::to_string(at::get_num_threads()) + " | BLAS " + blas.name;
  if (!blas.core.empty()) {
    const std::string note = blas_autotune_note(blas.core);
    const std::string better = better_blas_kernel(blas.core, detect_cpu_features());
    if (!note.empty()) {
      line += " (" + blas.core + ", " + note + ")";
    } else if (!better.empty()) {
      line += " (" + blas.core + ": a slow generic fallback kernel; OPENBLAS_CORETYPE=" + better +
              " is faster)";
    } else {
      line += " (" + blas.core + ")";
    }
  }
  if (sgemm_library() == SgemmLibrary::onednn)
    line += " | fp32 GEMM " + sgemm_library_description();
  line += " | LibTorch " + std::string(TORCH_VERSION);
  return line;
}

}  // namespace muonlab
