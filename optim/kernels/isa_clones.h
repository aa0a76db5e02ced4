// MUONLAB_ISA_CLONES: put before a hot loop function so that GCC compiles it for AVX-512, AVX2 and
// the baseline ISA and the loader picks the best one this CPU supports. Used by the hand-written
// kernels (fused AdamW, sum of squares, fused RMSNorm, SwiGLU, causal softmax and RoPE), which
// CMakeLists.txt compiles with MUONLAB_KERNEL_FLAGS so that every clone rounds alike. Empty off
// x86-64 and under AddressSanitizer, whose start-up the clones' resolver would run before.
#pragma once

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !__has_feature(address_sanitizer)
#define MUONLAB_ISA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MUONLAB_ISA_CLONES
#endif
