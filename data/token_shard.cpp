// Token shard writer and validating mmap reader (format documented in token_shard.h).
#include "data/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <utility>

namespace muonlab {
namespace {

constexpr char kMagic[8] = {'M', 'U', 'O', 'N', 'T', 'O', 'K', '\0'};
constexpr uint64_t kMaxUint16Vocab = 65536;
constexpr const char* kRetokenize = "re-run `muonlab tokenize`";

void put_u32(uint8_t* dst, uint32_t value) {
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<uint8_t>(value >> (8 * i));
}

void put_u64(uint8_t* dst, uint64_t value) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint32_t get_u32(const uint8_t* src) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(src[i]) << (8 * i);
  return value;
}

uint64_t get_u64(const uint8_t* src) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(src[i]) << (8 * i);
  return value;
}

std::runtime_error shard_error(const std::string& path, const std::string& what) {
  return std::runtime_error("shard " + path + ": " + what);
}

// Tokens as little-endian bytes of the given width.
std::vector<uint8_t> encode_tokens(const std::vector<uint32_t>& tokens, uint32_t width) {
  std::vector<uint8_t> bytes(tokens.size() * width);
  for (size_t i = 0; i < tokens.size(); ++i) {
    for (uint32_t b = 0; b < width; ++b) {
      bytes[i * width + b] = static_cast<uint8_t>(tokens[i] >> (8 * b));
    }
  }
  return bytes;
}

// Header fields as read from a mapped file.
struct ShardHeader {
  uint32_t token_bytes = 0;
  uint64_t token_count = 0;
  uint64_t vocab_size = 0;
};

ShardHeader parse_header(const std::string& path, const uint8_t* map) {
  if (std::memcmp(map, kMagic, sizeof(kMagic)) != 0) {
    throw shard_error(path, "bad magic (not a muonlab token shard); " + std::string(kRetokenize));
  }
  const uint32_t version = get_u32(map + 8);
  if (version != kShardVersion) {
    throw shard_error(path, "format version " + std::to_string(version) +
                                " is not supported (this build reads version " +
                                std::to_string(kShardVersion) + "); " + kRetokenize);
  }
  ShardHeader h;
  h.token_bytes = get_u32(map + 12);
  h.token_count = get_u64(map + 16);
  h.vocab_size = get_u64(map + 24);
  if (h.vocab_size == 0 || h.vocab_size > (uint64_t{1} << 32)) {
    throw shard_error(path, "header says vocab size " + std::to_string(h.vocab_size) +
                                ", outside 1..2^32; " + kRetokenize);
  }
  if (h.token_bytes != 2 && h.token_bytes != 4) {
    throw shard_error(path, "token width " + std::to_string(h.token_bytes) +
                                " bytes is invalid (must be 2 or 4); " + kRetokenize);
  }
  if (h.token_bytes != shard_token_bytes(h.vocab_size)) {
    throw shard_error(path, "token width " + std::to_string(h.token_bytes) +
                                " bytes does not match vocab size " + std::to_string(h.vocab_size) +
                                "; " + kRetokenize);
  }
  return h;
}

void validate_file_size(const std::string& path, const ShardHeader& h, uint64_t file_bytes) {
  const uint64_t held_tokens = (file_bytes - kShardHeaderBytes) / h.token_bytes;
  if (held_tokens < h.token_count) {
    throw shard_error(path, "header says " + std::to_string(h.token_count) +
                                " tokens but the file holds " + std::to_string(held_tokens) +
                                " (truncated); " + kRetokenize);
  }
  const uint64_t expected = kShardHeaderBytes + h.token_count * h.token_bytes;
  if (file_bytes != expected) {
    throw shard_error(path, "file is " + std::to_string(file_bytes) +
                                " bytes but the header implies " + std::to_string(expected) +
                                " (trailing bytes); " + kRetokenize);
  }
}

// Little-endian token i of a body with `width`-byte tokens.
inline uint32_t read_token(const uint8_t* body, uint32_t width, uint64_t i) {
  const uint8_t* p = body + i * width;
  if (width == 2) return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8);
  return get_u32(p);
}

void validate_token_ids(const std::string& path, const ShardHeader& h, const uint8_t* body) {
  for (uint64_t i = 0; i < h.token_count; ++i) {
    const uint32_t id = read_token(body, h.token_bytes, i);
    if (id >= h.vocab_size) {
      throw shard_error(path, "token id " + std::to_string(id) + " at position " +
                                  std::to_string(i) + " is >= vocab size " +
                                  std::to_string(h.vocab_size) + "; " + kRetokenize);
    }
  }
}

}  // namespace

uint32_t shard_token_bytes(uint64_t vocab_size) { return vocab_size <= kMaxUint16Vocab ? 2 : 4; }

void write_token_shard(const std::string& path, const std::vector<uint32_t>& tokens,
                       uint64_t vocab_size) {
  if (vocab_size == 0) throw shard_error(path, "vocab size must be positive");
  if (vocab_size > (uint64_t{1} << 32)) {
    throw shard_error(path, "vocab size " + std::to_string(vocab_size) + " exceeds 2^32");
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] >= vocab_size) {
      throw shard_error(path, "token id " + std::to_string(tokens[i]) + " at position " +
                                  std::to_string(i) + " is >= vocab size " +
                                  std::to_string(vocab_size) + "; nothing was written");
    }
  }
  const uint32_t width = shard_token_bytes(vocab_size);
  uint8_t header[kShardHeaderBytes] = {};
  std::memcpy(header, kMagic, sizeof(kMagic));
  put_u32(header + 8, kShardVersion);
  put_u32(header + 12, width);
  put_u64(header + 16, tokens.size());
  put_u64(header + 24, vocab_size);
  const std::vector<uint8_t> body = encode_tokens(tokens, width);

  const std::string tmp_path = path + ".tmp";
  {
    std::ofstream out(tmp_path, std::ios::binary | std::ios::trunc);
    if (!out) throw shard_error(path, "cannot create " + tmp_path + "; check the directory exists");
    out.write(reinterpret_cast<const char*>(header), sizeof(header));
    out.write(reinterpret_cast<const char*>(body.data()),
              static_cast<std::streamsize>(body.size()));
    out.close();
    if (!out) {
      std::remove(tmp_path.c_str());
      throw shard_error(path, "write failed (disk full?)");
    }
  }
  if (std::rename(tmp_path.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp_path.c_str());
    throw shard_error(path, "cannot rename " + tmp_path + " into place: " + reason);
  }
}

TokenShard::TokenShard(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    if (errno == ENOENT) throw shard_error(path, "no such file; run `muonlab tokenize` first");
    throw shard_error(path, std::string("cannot open: ") + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    throw shard_error(path, "cannot stat: " + reason);
  }
  const auto file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes < kShardHeaderBytes) {
    ::close(fd);
    throw shard_error(path, "file is " + std::to_string(file_bytes) +
                                " bytes, smaller than the 64-byte header; " + kRetokenize);
  }
  void* map = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED)
    throw shard_error(path, std::string("mmap failed: ") + std::strerror(errno));
  map_ = static_cast<const uint8_t*>(map);
  map_bytes_ = file_bytes;
  try {
    const ShardHeader h = parse_header(path_, map_);
    validate_file_size(path_, h, file_bytes);
    validate_token_ids(path_, h, map_ + kShardHeaderBytes);
    token_bytes_ = h.token_bytes;
    token_count_ = h.token_count;
    vocab_size_ = h.vocab_size;
  } catch (...) {
    unmap();
    throw;
  }
}

TokenShard::~TokenShard() { unmap(); }

TokenShard::TokenShard(TokenShard&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)),
      token_count_(std::exchange(other.token_count_, 0)),
      vocab_size_(std::exchange(other.vocab_size_, 0)),
      token_bytes_(other.token_bytes_) {}

TokenShard& TokenShard::operator=(TokenShard&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    token_count_ = std::exchange(other.token_count_, 0);
    vocab_size_ = std::exchange(other.vocab_size_, 0);
    token_bytes_ = other.token_bytes_;
  }
  return *this;
}

void TokenShard::unmap() {
  if (map_ != nullptr) ::munmap(const_cast<uint8_t*>(map_), map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
}

uint32_t TokenShard::token(uint64_t i) const {
  if (i >= token_count_) {
    throw std::out_of_range("shard " + path_ + ": token " + std::to_string(i) + " is outside the " +
                            std::to_string(token_count_) + " tokens");
  }
  return read_token(map_ + kShardHeaderBytes, token_bytes_, i);
}

void TokenShard::copy_window(uint64_t start, uint64_t len, int64_t* out) const {
  if (start > token_count_ || len > token_count_ - start) {
    throw std::out_of_range("shard " + path_ + ": window [" + std::to_string(start) + ", " +
                            std::to_string(start) + "+" + std::to_string(len) +
                            ") is outside the " + std::to_string(token_count_) + " tokens");
  }
  const uint8_t* body = map_ + kShardHeaderBytes;
  if (token_bytes_ == 2) {
    for (uint64_t i = 0; i < len; ++i) out[i] = read_token(body, 2, start + i);
  } else {
    for (uint64_t i = 0; i < len; ++i) out[i] = read_token(body, 4, start + i);
  }
}

}  // namespace muonlab
