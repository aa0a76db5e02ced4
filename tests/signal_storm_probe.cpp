// Test helper for test_stop_signals: installs a counting SIGTERM handler, sends the process a
// SIGTERM every 20 us from another thread, and meanwhile runs float32 GEMMs through oneDNN's
// dnnl_sgemm (and the BLAS, and bf16 through oneDNN where available) on 2 threads, checking every
// product, for at least a second and until 2000 signals were handled (at most 10 s). With `routed`
// it first calls route_stop_signals_to_own_thread() as muonlab's main() does; with `unrouted` it
// does not. Prints one line: "handled N signals, M on compute threads", and exits 0 unless a
// product was wrong (3). The heap corruption this guards against ends it with SIGABRT or SIGSEGV
// instead.
#include <ATen/Parallel.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "models/kernels/sgemm.h"
#include "src/stop_signals.h"

namespace {

constexpr int kMaxComputeThreads = 64;
std::atomic<long> g_compute_tids[kMaxComputeThreads];
std::atomic<int> g_compute_count{0};
std::atomic<long> g_handled{0}, g_on_compute{0};

long this_tid() { return static_cast<long>(syscall(SYS_gettid)); }

extern "C" void on_signal(int) {  // async-signal-safe: atomics and gettid only
  g_handled.fetch_add(1);
  const long tid = this_tid();
  for (int i = 0, n = g_compute_count.load(); i < n; ++i) {
    if (g_compute_tids[i].load() == tid) g_on_compute.fetch_add(1);
  }
}

void remember_compute_thread() {
  const long tid = this_tid();
  for (int i = 0, n = g_compute_count.load(); i < n; ++i) {
    if (g_compute_tids[i].load() == tid) return;
  }
  const int slot = g_compute_count.load();
  if (slot < kMaxComputeThreads) g_compute_tids[slot].store(tid), g_compute_count.store(slot + 1);
}

// C = A B^T and C = A^T B at a dense layer's shapes (the backward's long inner dimension makes
// oneDNN keep its kernel's workspace, and its stack pointer, on the heap), checked against the
// exact value of constant inputs.
bool products_right(muonlab::SgemmLibrary library) {
  const int64_t M = 512, N = 176, K = 1024;
  std::vector<float> a(M * K, 1.0f), b(N * K, 0.5f), c(N * K, 0.0f);
  muonlab::sgemm_row_major(library, false, true, M, N, K, a.data(), K, b.data(), K, 0, c.data(), N);
  if (c[0] != 0.5f * K || c[M * N - 1] != 0.5f * K) return false;
  muonlab::sgemm_row_major(library, true, false, N, K, M, b.data(), N, a.data(), K, 0, c.data(), K);
  return c[0] == 0.5f * M && c[N * K - 1] == 0.5f * M;
}

bool bf16_products_right() {
  const int64_t M = 512, N = 176, K = 1024;
  const uint16_t one = 0x3f80, half = 0x3f00;  // 1.0 and 0.5 in bfloat16
  std::vector<uint16_t> a(M * K, one), b(N * K, half);
  std::vector<float> c(M * N, 0.0f);
  muonlab::bf16_gemm_row_major(false, true, M, N, K, a.data(), K, b.data(), K, 0, c.data(), N);
  return c[0] == 0.5f * K && c[M * N - 1] == 0.5f * K;
}

}  // namespace

int main(int argc, char** argv) {
  const bool routed = argc == 2 && std::strcmp(argv[1], "routed") == 0;
  if (argc != 2 || (!routed && std::strcmp(argv[1], "unrouted") != 0)) {
    std::fprintf(stderr, "usage: signal_storm_probe routed|unrouted\n");
    return 2;
  }
  if (routed) muonlab::route_stop_signals_to_own_thread();
  std::signal(SIGTERM, on_signal);
  at::set_num_threads(2);
  remember_compute_thread();
  at::parallel_for(0, 64, 1, [](int64_t, int64_t) { remember_compute_thread(); });

  std::atomic<bool> done{false};
  std::thread sender([&] {
    while (!done.load())
      kill(getpid(), SIGTERM), std::this_thread::sleep_for(std::chrono::microseconds(20));
  });
  const bool onednn = muonlab::sgemm_available(muonlab::SgemmLibrary::onednn);
  const bool bf16 = muonlab::bf16_gemm_available();
  bool right = true;
  const auto start = std::chrono::steady_clock::now();
  const auto busy_for = [&](int ms) {
    return std::chrono::steady_clock::now() - start < std::chrono::milliseconds(ms);
  };
  while (right && (busy_for(1000) || g_handled.load() < 2000) && busy_for(10000)) {
    if (onednn) right = right && products_right(muonlab::SgemmLibrary::onednn);
    right = right && products_right(muonlab::SgemmLibrary::blas);
    if (bf16) right = right && bf16_products_right();
  }
  done.store(true);
  sender.join();
  std::printf("handled %ld signals, %ld on compute threads%s\n", g_handled.load(),
              g_on_compute.load(), onednn ? "" : " (no oneDNN sgemm here)");
  if (!right) std::printf("a product was wrong\n");
  return right ? 0 : 3;
}
