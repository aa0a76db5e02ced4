// Tests for the batch loader and validation set. The shards hold token i at position i, so every
// row of a batch reveals the window start it was cut from.
#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <numeric>
#include <set>
#include <vector>

#include "data/batch_loader.h"
#include "tests/test_util.h"

using Catch::Matchers::Contains;
using muonlab::Batch;
using muonlab::BatchLoader;
using muonlab::LoaderCursor;
using muonlab::TokenShard;
using muonlab::ValidationSet;
using muonlab::test::TempDir;

namespace {

// A shard whose token at position i is i (so vocab must exceed n).
std::shared_ptr<const TokenShard> identity_shard(const TempDir& dir, uint32_t n, uint64_t vocab) {
  std::vector<uint32_t> tokens(n);
  std::iota(tokens.begin(), tokens.end(), 0u);
  const std::string path = dir.str("identity-" + std::to_string(vocab) + ".bin");
  muonlab::write_token_shard(path, tokens, vocab);
  return std::make_shared<const TokenShard>(path);
}

std::vector<int64_t> row_starts(const Batch& batch) {
  std::vector<int64_t> starts;
  for (int64_t r = 0; r < batch.inputs.size(0); ++r)
    starts.push_back(batch.inputs[r][0].item<int64_t>());
  return starts;
}

bool same_batch(const Batch& a, const Batch& b) {
  return torch::equal(a.inputs, b.inputs) && torch::equal(a.targets, b.targets);
}

// Every row is a contiguous window of the identity shard, and targets are inputs shifted by one.
void require_valid_windows(const Batch& batch, int64_t n_tokens, int64_t seq_len) {
  REQUIRE(batch.inputs.dtype() == torch::kInt64);
  REQUIRE(batch.targets.dtype() == torch::kInt64);
  REQUIRE(batch.inputs.size(1) == seq_len);
  REQUIRE(batch.targets.sizes() == batch.inputs.sizes());
  const auto expected_offsets = torch::arange(seq_len, torch::kInt64);
  for (int64_t r = 0; r < batch.inputs.size(0); ++r) {
    const int64_t start = batch.inputs[r][0].item<int64_t>();
    REQUIRE(start >= 0);
    REQUIRE(start + seq_len + 1 <= n_tokens);
    REQUIRE(torch::equal(batch.inputs[r], expected_offsets + start));
    REQUIRE(torch::equal(batch.targets[r], expected_offsets + start + 1));
  }
}

}  // namespace

TEST_CASE("batches are pure functions of seed, step and micro-step", "[loader]") {
  TempDir dir("loader");
  const uint32_t n = 5000;
  const int64_t seq_len = 16, batch_size = 8;
  auto shard = identity_shard(dir, n, 70000);  // uint32 tokens
  BatchLoader loader(shard, seq_len, batch_size, 1234);

  const Batch a = loader.batch(3, 1);
  REQUIRE(a.inputs.sizes() == torch::IntArrayRef({batch_size, seq_len}));
  require_valid_windows(a, n, seq_len);
  REQUIRE(same_batch(a, loader.batch(3, 1)));
  REQUIRE(same_batch(a, BatchLoader(shard, seq_len, batch_size, 1234).batch(3, 1)));
  REQUIRE_FALSE(same_batch(a, loader.batch(4, 1)));
  REQUIRE_FALSE(same_batch(a, loader.batch(3, 0)));
  REQUIRE_FALSE(same_batch(a, BatchLoader(shard, seq_len, batch_size, 1235).batch(3, 1)));
  // Rows within a batch are drawn independently.
  const auto starts = row_starts(a);
  REQUIRE(std::set<int64_t>(starts.begin(), starts.end()).size() > 1);
}

TEST_CASE("window starts cover the whole shard uniformly", "[loader]") {
  TempDir dir("loader");
  const uint32_t n = 2000;
  const int64_t seq_len = 32;
  auto shard = identity_shard(dir, n, 4096);  // uint16 tokens
  BatchLoader loader(shard, seq_len, 16, 7);
  const double last_start = n - (seq_len + 1);
  std::vector<int64_t> starts;
  for (int64_t step = 0; step < 200; ++step) {
    const Batch batch = loader.batch(step, 0);
    if (step < 5) require_valid_windows(batch, n, seq_len);
    for (int64_t s : row_starts(batch)) starts.push_back(s);
  }
  const auto [lo, hi] = std::minmax_element(starts.begin(), starts.end());
  REQUIRE(*lo >= 0);
  REQUIRE(*hi <= last_start);
  REQUIRE(*lo < 0.01 * last_start);
  REQUIRE(*hi > 0.99 * last_start);
  const double mean = std::accumulate(starts.begin(), starts.end(), 0.0) / starts.size();
  REQUIRE(mean == Approx(last_start / 2).epsilon(0.05));
}

TEST_CASE("the smallest shards still give valid windows", "[loader]") {
  TempDir dir("loader");
  const int64_t seq_len = 8;
  SECTION("exactly seq_len+1 tokens: every window starts at 0") {
    BatchLoader loader(identity_shard(dir, seq_len + 1, 100), seq_len, 4, 0);
    for (int64_t step = 0; step < 10; ++step) {
      for (int64_t s : row_starts(loader.batch(step, 0))) REQUIRE(s == 0);
    }
  }
  SECTION("seq_len+2 tokens: both starts occur") {
    BatchLoader loader(identity_shard(dir, seq_len + 2, 100), seq_len, 4, 0);
    std::set<int64_t> seen;
    for (int64_t step = 0; step < 20; ++step) {
      for (int64_t s : row_starts(loader.batch(step, 0))) seen.insert(s);
    }
    REQUIRE(seen == std::set<int64_t>{0, 1});
  }
}

TEST_CASE("next() walks micro-steps and wraps to the next step", "[loader]") {
  TempDir dir("loader");
  auto shard = identity_shard(dir, 1000, 1000);
  BatchLoader loader(shard, 8, 2, 99);
  LoaderCursor cursor;
  const int64_t accum = 3;
  const std::vector<std::pair<int64_t, int64_t>> expected = {{0, 0}, {0, 1}, {0, 2}, {1, 0},
                                                             {1, 1}, {1, 2}, {2, 0}};
  for (const auto& [step, micro] : expected) {
    REQUIRE(cursor.step == step);
    REQUIRE(cursor.micro == micro);
    REQUIRE(same_batch(loader.next(cursor, accum), loader.batch(step, micro)));
  }
  REQUIRE(cursor.step == 2);
  REQUIRE(cursor.micro == 1);

  // A saved cursor resumes with exactly the batches an uninterrupted run sees.
  LoaderCursor resumed = cursor;
  const Batch uninterrupted = loader.next(cursor, accum);
  REQUIRE(same_batch(BatchLoader(shard, 8, 2, 99).next(resumed, accum), uninterrupted));
  REQUIRE(resumed.step == cursor.step);
  REQUIRE(resumed.micro == cursor.micro);

  SECTION("accum of one advances the step every call") {
    LoaderCursor single;
    loader.next(single, 1);
    loader.next(single, 1);
    REQUIRE(single.step == 2);
    REQUIRE(single.micro == 0);
  }
  SECTION("bad accumulation settings are refused") {
    LoaderCursor fresh;
    REQUIRE_THROWS_AS(loader.next(fresh, 0), std::invalid_argument);
    LoaderCursor beyond{0, 3};
    REQUIRE_THROWS_WITH(loader.next(beyond, 3), Contains("grad_accum"));
  }
}

TEST_CASE("validation set is fixed and evenly spaced", "[loader]") {
  TempDir dir("loader");
  const uint32_t n = 5000;
  const int64_t seq_len = 16, batch_size = 4, n_batches = 5;
  auto shard = identity_shard(dir, n, 8000);
  ValidationSet val(shard, seq_len, batch_size, n_batches);
  ValidationSet again(shard, seq_len, batch_size, n_batches);
  REQUIRE(val.size() == n_batches);
  REQUIRE(val.tokens() == n_batches * batch_size * seq_len);

  const int64_t last_start = n - (seq_len + 1);
  const int64_t windows = n_batches * batch_size;
  std::vector<int64_t> starts;
  for (int64_t b = 0; b < val.size(); ++b) {
    require_valid_windows(val[b], n, seq_len);
    REQUIRE(same_batch(val[b], again[b]));
    for (int64_t s : row_starts(val[b])) starts.push_back(s);
  }
  REQUIRE(starts.front() == 0);
  REQUIRE(starts.back() == last_start);
  const double spacing = static_cast<double>(last_start) / (windows - 1);
  for (size_t k = 1; k < starts.size(); ++k) {
    REQUIRE(static_cast<double>(starts[k] - starts[k - 1]) == Approx(spacing).margin(1.0));
  }

  SECTION("more windows than distinct starts overlap but stay valid") {
    auto tiny = identity_shard(dir, 20, 100);
    ValidationSet crowded(tiny, 16, 4, 3);
    REQUIRE(crowded.size() == 3);
    for (int64_t b = 0; b < crowded.size(); ++b) require_valid_windows(crowded[b], 20, 16);
  }
}

TEST_CASE("shards shorter than one window are refused", "[loader]") {
  TempDir dir("loader");
  auto shard = identity_shard(dir, 16, 100);
  REQUIRE_THROWS_WITH(BatchLoader(shard, 16, 2, 0),
                      Contains(shard->path()) && Contains("16 tokens") && Contains("seq_len"));
  REQUIRE_THROWS_WITH(ValidationSet(shard, 16, 2, 1),
                      Contains(shard->path()) && Contains("seq_len"));
  REQUIRE_NOTHROW(BatchLoader(shard, 15, 2, 0));
  REQUIRE_THROWS_AS(BatchLoader(shard, 0, 2, 0), std::invalid_argument);
  REQUIRE_THROWS_AS(ValidationSet(shard, 8, 2, 0), std::invalid_argument);
}
