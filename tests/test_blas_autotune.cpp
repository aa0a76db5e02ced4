// BLAS kernel auto-selection: the choice for each CPU class and kernel name, that the CLI
// re-runs itself with the chosen kernel only when OPENBLAS_CORETYPE is unset, that a set value
// and MUONLAB_BLAS_AUTOTUNE=0 are respected, and that the chosen kernel's fp32 matmul equals
// the fallback's to fp32 rounding; the fp32 GEMM library rule (BLAS or oneDNN) and
// MUONLAB_FP32_GEMM; the allocator settings that keep freed memory. The environment's own
// OPENBLAS_* values are never changed for the test process; only child processes get other values.
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "models/kernels/sgemm.h"
#include "src/blas_autotune.h"
#include "src/runtime.h"
#include "test_util.h"

using namespace muonlab;
using muonlab::test::run_muonlab;
using muonlab::test::run_shell;

namespace {

// The text between "BLAS OpenBLAS (" and the next ',', ':' or ')' of `muonlab version`.
std::string reported_kernel(const std::string& output) {
  const std::string marker = "BLAS OpenBLAS (";
  const auto at = output.find(marker);
  if (at == std::string::npos) return "";
  const auto start = at + marker.size();
  return output.substr(start, output.find_first_of(",:)", start) - start);
}

// `muonlab version` with `assignment` (may be empty) set for it alone, and without any
// autotune setting this shell may have exported.
muonlab::test::CommandResult run_with_env(const std::string& assignment) {
  return run_shell("env -u MUONLAB_BLAS_AUTOTUNE -u MUONLAB_BLAS_REPLACED " + assignment + " " +
                   std::string(MUONLAB_BINARY) + " version");
}

std::vector<float> read_floats(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::vector<float> values(static_cast<size_t>(in.tellg()) / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(values.data()),
          static_cast<std::streamsize>(values.size() * sizeof(float)));
  return values;
}

}  // namespace

TEST_CASE("the better kernel is chosen only over a fallback, by the CPU's vector extensions") {
  const CpuFeatures none{}, avx2{true, false, false}, avx512{true, true, false},
      bf16{true, true, true};
  CHECK(better_blas_kernel("Prescott", bf16) == "Cooperlake");
  CHECK(better_blas_kernel("Prescott", avx512) == "SkylakeX");
  CHECK(better_blas_kernel("Core2", avx2) == "Haswell");
  CHECK(better_blas_kernel("NEHALEM", avx2) == "Haswell");
  CHECK(better_blas_kernel("Prescott", none).empty());
  // A kernel OpenBLAS chose for a CPU it knows is never replaced.
  for (const char* known : {"Haswell", "SkylakeX", "Cooperlake", "Zen", "SapphireRapids"}) {
    CHECK_FALSE(is_fallback_blas_kernel(known));
    CHECK(better_blas_kernel(known, bf16).empty());
  }
}

TEST_CASE("the CLI runs on the chosen kernel unless OPENBLAS_CORETYPE is set or autotune is off") {
  const char* set_by_env = std::getenv("OPENBLAS_CORETYPE");
  if (set_by_env) {
    // This machine's environment chose a kernel: it must stay in force, with no note.
    const auto as_is = run_muonlab("version");
    REQUIRE(as_is.exit_code == 0);
    CHECK(as_is.output.find("chosen by muonlab") == std::string::npos);
    WARN("OPENBLAS_CORETYPE=" << set_by_env << " is set here; kernel "
                              << reported_kernel(as_is.output));
    return;
  }
  const auto off = run_with_env("MUONLAB_BLAS_AUTOTUNE=0");
  REQUIRE(off.exit_code == 0);
  const std::string loaded = reported_kernel(off.output);
  if (loaded.empty()) {
    WARN("LibTorch does not use OpenBLAS here: " << off.output);
    return;
  }
  CHECK(off.output.find("chosen by muonlab") == std::string::npos);
  const std::string better = better_blas_kernel(loaded, detect_cpu_features());

  const auto automatic = run_with_env("");
  REQUIRE(automatic.exit_code == 0);
  if (better.empty()) {
    CHECK(reported_kernel(automatic.output) == loaded);
    CHECK(automatic.output.find("chosen by muonlab") == std::string::npos);
  } else {
    CHECK(is_fallback_blas_kernel(loaded));
    CHECK(off.output.find("slow generic fallback kernel") != std::string::npos);
    CHECK(reported_kernel(automatic.output) == better);
    CHECK(automatic.output.find("chosen by muonlab over OpenBLAS's fallback " + loaded) !=
          std::string::npos);
  }
  // A value the user sets is left alone, even a fallback one.
  const auto user = run_with_env("OPENBLAS_CORETYPE=Prescott");
  CHECK(reported_kernel(user.output) == "Prescott");
  CHECK(user.output.find("chosen by muonlab") == std::string::npos);
}

TEST_CASE("the chosen kernel's fp32 matmul equals the fallback's to fp32 rounding") {
  const std::string better = better_blas_kernel("Prescott", detect_cpu_features());
  if (better.empty()) {
    WARN("this CPU has no kernel better than Prescott; nothing to compare");
    return;
  }
  muonlab::test::TempDir dir("blas");
  const std::string probe = MUONLAB_GEMM_PROBE;
  if (run_shell(probe + " " + dir.str("any.bin")).output.find_first_not_of(" \n") ==
      std::string::npos) {
    WARN("LibTorch does not use OpenBLAS here; no kernels to compare");
    return;
  }
  const auto slow = run_shell("OPENBLAS_CORETYPE=Prescott " + probe + " " + dir.str("slow.bin"));
  const auto fast =
      run_shell("OPENBLAS_CORETYPE=" + better + " " + probe + " " + dir.str("fast.bin"));
  REQUIRE(slow.exit_code == 0);
  REQUIRE(fast.exit_code == 0);
  CHECK(slow.output.find("Prescott") == 0);
  CHECK(fast.output.find(better) == 0);

  const int64_t m = 301, k = 257, n = 263;
  const auto a = read_floats(dir.str("slow.bin")), b = read_floats(dir.str("fast.bin"));
  REQUIRE(a.size() == static_cast<size_t>(m * k + k * n + m * n));
  REQUIRE(b.size() == a.size());
  const float* lhs = a.data();
  const float* rhs = a.data() + m * k;
  const float* c_slow = rhs + k * n;
  const float* c_fast = b.data() + m * k + k * n;
  // Same inputs; every entry within k * eps * sum_l |a_il * b_lj| of each other (the bound on
  // either result's rounding error), and the two kernels are not simply the same code.
  int64_t differing = 0;
  double worst = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double scale = 0;
      for (int64_t l = 0; l < k; ++l) scale += std::fabs(double(lhs[i * k + l]) * rhs[l * n + j]);
      const double diff = std::fabs(double(c_slow[i * n + j]) - c_fast[i * n + j]);
      worst = std::max(worst, diff / (k * 1.19e-7 * scale));
      differing += diff != 0;
    }
  }
  INFO("worst difference / bound " << worst << ", entries differing " << differing);
  CHECK(std::equal(a.begin(), a.begin() + m * k + k * n, b.begin()));
  CHECK(worst <= 1.0);
  CHECK(differing > 0);
}

TEST_CASE("fp32 GEMM goes to oneDNN only when its vectors are wider than the BLAS kernel's") {
  const auto onednn = SgemmLibrary::onednn, blas = SgemmLibrary::blas;
  // The environment pins OpenBLAS to AVX2 on an AVX-512 CPU: oneDNN is twice as wide.
  CHECK(choose_sgemm_library("auto", "Haswell", "avx512_core_bf16", true) == onednn);
  // Unset applies the rule too.
  CHECK(choose_sgemm_library("", "Haswell", "avx512_core_bf16", true) == onednn);
  CHECK(choose_sgemm_library("", "SkylakeX", "avx512_core", true) == blas);
  CHECK(choose_sgemm_library("auto", "Zen", "avx512_core", true) == onednn);
  CHECK(choose_sgemm_library("auto", "Prescott", "avx2", true) == onednn);
  // OpenBLAS already runs AVX-512 (or both are AVX2): the BLAS, as torch::linear.
  CHECK(choose_sgemm_library("auto", "SkylakeX", "avx512_core", true) == blas);
  CHECK(choose_sgemm_library("auto", "Cooperlake", "avx512_core_amx", true) == blas);
  CHECK(choose_sgemm_library("auto", "Zen", "avx2", true) == blas);
  CHECK(choose_sgemm_library("auto", "Haswell", "avx512_core", false) == blas);
  CHECK(choose_sgemm_library("auto", "MKL", "avx512_core", true) == blas);
  CHECK(choose_sgemm_library("auto", "", "avx2", true) == onednn);  // over the reference BLAS
  CHECK(choose_sgemm_library("auto", "", "", false) == blas);
  // MUONLAB_FP32_GEMM forces either, and anything else is refused with what to write.
  CHECK(choose_sgemm_library("blas", "Haswell", "avx512_core", true) == blas);
  CHECK(choose_sgemm_library("onednn", "SkylakeX", "avx512_core", true) == onednn);
  CHECK_THROWS_WITH(choose_sgemm_library("onednn", "Haswell", "", false),
                    Catch::Contains("no oneDNN"));
  CHECK_THROWS_WITH(choose_sgemm_library("mkl", "Haswell", "avx2", true),
                    Catch::Contains("MUONLAB_FP32_GEMM=mkl") && Catch::Contains("blas or onednn"));
  CHECK(blas_kernel_width("SKYLAKEX") == 512);
  CHECK(blas_kernel_width("Katmai") == 128);
  CHECK(onednn_isa_width("avx2_vnni") == 256);
}

TEST_CASE("the CLI states the fp32 GEMM library and refuses a bad MUONLAB_FP32_GEMM") {
  const auto run = [](const std::string& value) {
    return run_shell("env MUONLAB_FP32_GEMM=" + value + " " + std::string(MUONLAB_BINARY) +
                     " version");
  };
  const auto bad = run("fastest");
  CHECK(bad.exit_code != 0);
  CHECK(bad.output.find("MUONLAB_FP32_GEMM=fastest: use auto") != std::string::npos);
  const auto blas = run("blas");
  REQUIRE(blas.exit_code == 0);
  CHECK(blas.output.find("fp32 GEMM") == std::string::npos);
  if (onednn_isa_name().empty()) {
    WARN("LibTorch has no oneDNN here");
    return;
  }
  const auto onednn = run("onednn");
  REQUIRE(onednn.exit_code == 0);
  CHECK(onednn.output.find("fp32 GEMM oneDNN (MUONLAB_FP32_GEMM)") != std::string::npos);
  const auto automatic = run("auto");
  REQUIRE(automatic.exit_code == 0);
  const std::string kernel = reported_kernel(automatic.output);
  const bool wider = onednn_isa_width(onednn_isa_name()) > blas_kernel_width(kernel);
  CHECK((automatic.output.find("fp32 GEMM oneDNN (" + onednn_isa_name() + ", wider than") !=
         std::string::npos) == wider);
  // Unset is the rule as well: the same start-up line as auto.
  const auto unset =
      run_shell("env -u MUONLAB_FP32_GEMM " + std::string(MUONLAB_BINARY) + " version");
  REQUIRE(unset.exit_code == 0);
  CHECK((unset.output.find("fp32 GEMM oneDNN (" + onednn_isa_name() + ", wider than") !=
         std::string::npos) == wider);
  WARN("fp32 GEMM here: " << (wider ? "oneDNN" : "BLAS") << " (OpenBLAS " << kernel << ", oneDNN "
                          << onednn_isa_name() << ")");
}

#ifndef __has_feature
#define __has_feature(x) 0
#endif

TEST_CASE("the allocator keeps freed memory, so a step's big tensors are not faulted in again") {
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
  WARN("AddressSanitizer replaces malloc: nothing to check");
  return;
#endif
  // 64 MiB is above glibc's largest dynamic mmap threshold (32 MiB): by default every such block
  // is mapped fresh and each page faults when first written, on every allocation.
  auto faults_of_one_block = [] {
    constexpr size_t kBytes = size_t{64} << 20;
    auto touch = [] {
      char* p = static_cast<char*>(std::malloc(kBytes));
      REQUIRE(p != nullptr);
      for (size_t i = 0; i < kBytes; i += 4096) p[i] = static_cast<char>(i);
      volatile char sink = p[kBytes / 2];
      (void)sink;
      std::free(p);
    };
    touch();  // first use: faults whatever the settings
    struct rusage before {
    }, after{};
    getrusage(RUSAGE_SELF, &before);
    touch();
    getrusage(RUSAGE_SELF, &after);
    return after.ru_minflt - before.ru_minflt;
  };
  const long default_faults = faults_of_one_block();
  const int64_t threshold = configure_allocator();
  if (threshold < (int64_t{64} << 20)) {
    WARN("this malloc keeps only blocks up to " << (threshold >> 20) << " MiB; nothing to check");
    return;
  }
  faults_of_one_block();  // the first block served from the heap
  const long tuned_faults = faults_of_one_block();
  // 16384 faults with 4 KiB pages by default (tens with transparent huge pages), ~none tuned.
  CHECK(default_faults >= 16);
  CHECK(tuned_faults * 20 < default_faults);
}
