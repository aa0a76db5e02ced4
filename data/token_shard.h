// Token shard: the binary file that holds a tokenized corpus, and its mmap reader.
// Layout: a fixed 64-byte little-endian header, then `token_count` tokens of `token_bytes` each.
//   bytes 0..7   magic "MUONTOK\0"
//   bytes 8..11  format version (uint32, currently 1)
//   bytes 12..15 token width in bytes (uint32: 2 = uint16 when vocab <= 65536, else 4 = uint32)
//   bytes 16..23 token count (uint64)
//   bytes 24..31 vocab size (uint64)
//   bytes 32..63 zero
// The reader validates every field, the file size and that every token id is < vocab size.
// It does not tokenize text (see tokenizer.h / corpus.h) and does not batch (see batch_loader.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace muonlab {

constexpr uint32_t kShardVersion = 1;
constexpr size_t kShardHeaderBytes = 64;

// Token width the format uses for a vocabulary: 2 bytes up to 65536 ids, else 4.
uint32_t shard_token_bytes(uint64_t vocab_size);

// Writes `tokens` to `path` (via a temporary file renamed into place). Throws std::runtime_error
// if an id is >= vocab_size or the file cannot be written.
void write_token_shard(const std::string& path, const std::vector<uint32_t>& tokens,
                       uint64_t vocab_size);

// Read-only, memory-mapped view of a shard. Move-only.
class TokenShard {
 public:
  // Opens and validates `path`; throws std::runtime_error naming the file and what to do.
  explicit TokenShard(const std::string& path);
  ~TokenShard();
  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&& other) noexcept;
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return token_count_; }
  uint64_t vocab_size() const { return vocab_size_; }
  uint32_t token(uint64_t i) const;
  // Copies tokens [start, start+len) into `out` widened to int64.
  void copy_window(uint64_t start, uint64_t len, int64_t* out) const;

 private:
  void unmap();
  std::string path_;
  const uint8_t* map_ = nullptr;
  size_t map_bytes_ = 0;
  uint64_t token_count_ = 0;
  uint64_t vocab_size_ = 0;
  uint32_t token_bytes_ = 2;
};

}  // namespace muonlab
