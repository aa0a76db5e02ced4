// Test helper for test_blas_autotune: one fp32 matmul through LibTorch (so through the loaded
// BLAS, under whatever OPENBLAS_CORETYPE the caller set) on fixed inputs. Prints the OpenBLAS
// kernel name, then writes A (m x k), B (k x n) and A @ B as raw floats to the file argv[1].
#include <torch/torch.h>

#include <fstream>
#include <iostream>

#include "src/runtime.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: blas_gemm_probe OUT_FILE\n";
    return 2;
  }
  at::set_num_threads(1);
  torch::manual_seed(7);
  const auto a = torch::randn({301, 257});
  const auto b = torch::randn({257, 263});
  const auto c = torch::matmul(a, b).contiguous();
  std::cout << muonlab::detect_blas().core << "\n";
  std::ofstream out(argv[1], std::ios::binary);
  for (const auto& t : {a.contiguous(), b.contiguous(), c}) {
    out.write(reinterpret_cast<const char*>(t.data_ptr<float>()),
              static_cast<std::streamsize>(t.numel() * sizeof(float)));
  }
  return out ? 0 : 1;
}
