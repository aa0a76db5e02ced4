// Tests for the token shard format: write/read round trips for both token widths, and that every
// kind of damaged or missing file is refused with a message naming the file and the problem.
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/token_shard.h"
#include "tests/test_util.h"

using Catch::Matchers::Contains;
using muonlab::TokenShard;
using muonlab::write_token_shard;
using muonlab::test::read_file;
using muonlab::test::TempDir;
using muonlab::test::write_file;

namespace {

std::vector<uint32_t> pseudo_random_tokens(size_t count, uint32_t vocab, uint64_t seed) {
  std::vector<uint32_t> tokens(count);
  uint64_t state = seed;
  for (auto& token : tokens) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    token = static_cast<uint32_t>((state >> 33) % vocab);
  }
  return tokens;
}

// Overwrites `bytes.size()` bytes of the file at `offset`.
void patch_file(const std::string& path, size_t offset, const std::string& bytes) {
  std::string contents = read_file(path);
  contents.replace(offset, bytes.size(), bytes);
  write_file(path, contents);
}

std::string u32_bytes(uint32_t value) {
  std::string bytes(4, '\0');
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  return bytes;
}

}  // namespace

TEST_CASE("token width follows the vocabulary size", "[shards]") {
  REQUIRE(muonlab::shard_token_bytes(1) == 2);
  REQUIRE(muonlab::shard_token_bytes(65536) == 2);
  REQUIRE(muonlab::shard_token_bytes(65537) == 4);
  REQUIRE(muonlab::shard_token_bytes(1u << 20) == 4);
}

TEST_CASE("shards round-trip through write and mmap read", "[shards]") {
  TempDir dir("shards");
  const std::string path = dir.str("tokens.bin");

  SECTION("uint16 tokens") {
    auto tokens = pseudo_random_tokens(1000, 4096, 1);
    tokens[10] = 4095;
    tokens[11] = 0;
    write_token_shard(path, tokens, 4096);
    REQUIRE(std::filesystem::file_size(path) == 64 + 2 * 1000);
    REQUIRE_FALSE(std::filesystem::exists(path + ".tmp"));
    const std::string raw = read_file(path);
    REQUIRE(raw.substr(0, 8) == std::string("MUONTOK\0", 8));
    REQUIRE(raw.substr(8, 4) == u32_bytes(1));
    REQUIRE(raw.substr(12, 4) == u32_bytes(2));

    TokenShard shard(path);
    REQUIRE(shard.path() == path);
    REQUIRE(shard.size() == 1000);
    REQUIRE(shard.vocab_size() == 4096);
    for (size_t i = 0; i < tokens.size(); ++i) REQUIRE(shard.token(i) == tokens[i]);
    std::vector<int64_t> window(5);
    shard.copy_window(8, 5, window.data());
    for (size_t i = 0; i < 5; ++i) REQUIRE(window[i] == static_cast<int64_t>(tokens[8 + i]));
  }

  SECTION("uint32 tokens above 65535") {
    auto tokens = pseudo_random_tokens(777, 70000, 2);
    tokens[0] = 69999;
    tokens[1] = 65536;
    write_token_shard(path, tokens, 70000);
    REQUIRE(std::filesystem::file_size(path) == 64 + 4 * 777);
    TokenShard shard(path);
    REQUIRE(shard.size() == 777);
    REQUIRE(shard.vocab_size() == 70000);
    REQUIRE(shard.token(0) == 69999);
    REQUIRE(shard.token(1) == 65536);
    std::vector<int64_t> all(777);
    shard.copy_window(0, 777, all.data());
    for (size_t i = 0; i < tokens.size(); ++i) REQUIRE(all[i] == static_cast<int64_t>(tokens[i]));
  }

  SECTION("vocab of exactly 65536 still uses two bytes") {
    write_token_shard(path, {65535, 0, 1}, 65536);
    REQUIRE(std::filesystem::file_size(path) == 64 + 2 * 3);
    REQUIRE(TokenShard(path).token(0) == 65535);
  }

  SECTION("an empty shard is valid") {
    write_token_shard(path, {}, 300);
    TokenShard shard(path);
    REQUIRE(shard.size() == 0);
    REQUIRE(shard.vocab_size() == 300);
  }
}

TEST_CASE("shards move and bound-check windows", "[shards]") {
  TempDir dir("shards");
  const std::string path = dir.str("tokens.bin");
  write_token_shard(path, {5, 6, 7, 8}, 10);
  TokenShard first(path);
  TokenShard second(std::move(first));
  REQUIRE(second.size() == 4);
  REQUIRE(second.token(3) == 8);
  REQUIRE(first.size() == 0);

  std::vector<int64_t> out(4);
  REQUIRE_NOTHROW(second.copy_window(0, 4, out.data()));
  REQUIRE_THROWS_AS(second.copy_window(1, 4, out.data()), std::out_of_range);
  REQUIRE_THROWS_AS(second.copy_window(5, 0, out.data()), std::out_of_range);
  REQUIRE_THROWS_AS(second.token(4), std::out_of_range);
}

TEST_CASE("writing refuses ids outside the vocabulary", "[shards]") {
  TempDir dir("shards");
  const std::string path = dir.str("tokens.bin");
  REQUIRE_THROWS_WITH(write_token_shard(path, {1, 2, 300}, 300),
                      Contains(path) && Contains("position 2"));
  REQUIRE_FALSE(std::filesystem::exists(path));
  REQUIRE_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST_CASE("damaged or missing shards are refused with a telling message", "[shards]") {
  TempDir dir("shards");
  const std::string path = dir.str("train.bin");
  write_token_shard(path, {1, 2, 3, 4, 5, 6}, 1000);
  const std::string good = read_file(path);

  SECTION("missing file") {
    const std::string missing = dir.str("nope.bin");
    REQUIRE_THROWS_WITH(TokenShard(missing),
                        Contains(missing) && Contains("no such file") && Contains("tokenize"));
  }
  SECTION("truncated body") {
    write_file(path, good.substr(0, good.size() - 2));
    REQUIRE_THROWS_WITH(TokenShard(path), Contains(path) && Contains("truncated") &&
                                              Contains("header says 6 tokens") &&
                                              Contains("holds 5"));
  }
  SECTION("trailing bytes") {
    write_file(path, good + "xy");
    REQUIRE_THROWS_WITH(TokenShard(path), Contains(path) && Contains("trailing"));
  }
  SECTION("smaller than the header") {
    write_file(path, good.substr(0, 40));
    REQUIRE_THROWS_WITH(TokenShard(path),
                        Contains(path) && Contains("40 bytes") && Contains("64-byte header"));
  }
  SECTION("wrong magic") {
    patch_file(path, 0, "NOTATOK");
    REQUIRE_THROWS_WITH(TokenShard(path), Contains(path) && Contains("magic"));
  }
  SECTION("wrong version") {
    patch_file(path, 8, u32_bytes(7));
    REQUIRE_THROWS_WITH(TokenShard(path),
                        Contains(path) && Contains("version 7") && Contains("version 1"));
  }
  SECTION("invalid token width") {
    patch_file(path, 12, u32_bytes(3));
    REQUIRE_THROWS_WITH(TokenShard(path), Contains(path) && Contains("token width 3"));
  }
  SECTION("token width inconsistent with vocab") {
    patch_file(path, 12, u32_bytes(4));
    REQUIRE_THROWS_WITH(TokenShard(path), Contains(path) && Contains("does not match vocab"));
  }
  SECTION("zero vocab") {
    patch_file(path, 24, std::string(8, '\0'));
    REQUIRE_THROWS_WITH(TokenShard(path), Contains(path) && Contains("vocab size 0"));
  }
  SECTION("token id >= vocab") {
    patch_file(path, 64 + 2 * 3, std::string("\xE8\x03", 2));  // 1000 at position 3
    REQUIRE_THROWS_WITH(TokenShard(path),
                        Contains(path) && Contains("token id 1000") && Contains("position 3"));
  }
  SECTION("the untouched file still opens") { REQUIRE(TokenShard(path).token(5) == 6); }
}
