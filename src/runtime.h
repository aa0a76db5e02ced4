// Process-wide runtime set-up: LibTorch thread count (which defaults to 1 here) and detection of
// the BLAS library actually loaded (OpenBLAS vs the ~15x slower reference BLAS) and of the
// instruction set oneDNN runs on.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace muonlab {

// Keeps freed memory in the process (glibc malloc): blocks up to 1 GiB (32 MiB on glibc that
// refuses more) come from the heap rather than fresh mappings, and the heap is trimmed only past
// 2 GiB free, so the tensors a training step frees are reused by the next step instead of being
// unmapped and faulted in again page by page (two thirds of a bf16 M bench run's page faults on
// Zen 5). Peak memory rises by a few percent. MUONLAB_MALLOC_TUNE=0 keeps glibc's defaults.
// Returns the block size now served from the heap, 0 when nothing changed.
int64_t configure_allocator();

// Sets intra-op threads (0 = all cores) and returns the count now in effect.
int configure_threads(int64_t requested);

struct BlasInfo {
  std::string name;  // "OpenBLAS" or "reference BLAS (slow)"
  std::string core;  // OpenBLAS kernel family, e.g. "Haswell"; empty otherwise
  bool is_reference = false;
};
BlasInfo detect_blas();
// The instruction set oneDNN (bf16 matmuls) uses here, e.g. "avx512_core_amx"; "" when oneDNN's
// library is not loaded.
std::string onednn_isa();
// "" when LibTorch runs bfloat16 matmuls through oneDNN on this CPU (LibTorch 1.13 asks for
// AVX-512 F/BW/DQ/VL); otherwise a one-line warning that they fall back to its scalar reference
// kernel, tens of times slower than float32, and what to do.
std::string bf16_matmul_warning();
// The most memory this process has held resident so far (getrusage's ru_maxrss), in bytes.
int64_t peak_resident_bytes();
// The fields records share about where they computed: threads, blas, blas_kernel, onednn_isa,
// libtorch.
nlohmann::json runtime_fields();
// One line for logs: "threads 2 | BLAS OpenBLAS (Haswell) | LibTorch 1.13.0".
std::string runtime_summary();

}  // namespace muonlab
