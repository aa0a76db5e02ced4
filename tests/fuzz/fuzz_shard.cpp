// libFuzzer target: arbitrary bytes as a token shard file. Opening must either succeed with
// consistent contents or throw std::runtime_error; nothing else.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>

#include "data/token_shard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/muonlab-fuzz-shard-" + std::to_string(getpid()) + ".bin";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    muonlab::TokenShard shard(path);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < shard.size(); ++i) {
      uint32_t id = shard.token(i);
      if (id >= shard.vocab_size()) __builtin_trap();  // validation let a bad id through
      sum += id;
    }
    (void)sum;
  } catch (const std::runtime_error&) {
  }
  return 0;
}
