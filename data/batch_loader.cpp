// Batch loader and validation set: windows of seq_len+1 tokens cut from a shard. Training window
// starts are a pure hash of (seed, step, micro, row), so any batch can be recomputed on resume.
#include "data/batch_loader.h"

#include <stdexcept>
#include <string>
#include <utility>

#include "data/random_stream.h"

namespace muonlab {
namespace {

// A 64-bit value that depends on every input; chaining splitmix64 keeps (a, b) and (b, a) apart.
uint64_t hash_window(uint64_t seed, uint64_t step, uint64_t micro, uint64_t row) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ step);
  h = splitmix64(h ^ micro);
  return splitmix64(h ^ row);
}

// Largest valid window start; throws if the shard cannot hold one window of seq_len+1 tokens.
uint64_t max_window_start(const TokenShard& shard, int64_t seq_len) {
  const uint64_t window = static_cast<uint64_t>(seq_len) + 1;
  if (shard.size() < window) {
    throw std::runtime_error("shard " + shard.path() + ": holds " + std::to_string(shard.size()) +
                             " tokens, fewer than seq_len+1 = " + std::to_string(window) +
                             "; use a larger corpus or a smaller model.seq_len");
  }
  return shard.size() - window;
}

void check_shape(const std::shared_ptr<const TokenShard>& shard, int64_t seq_len,
                 int64_t batch_size, const char* who) {
  if (!shard) throw std::invalid_argument(std::string(who) + ": no shard given");
  if (seq_len <= 0) {
    throw std::invalid_argument(std::string(who) + ": seq_len must be positive, got " +
                                std::to_string(seq_len));
  }
  if (batch_size <= 0) {
    throw std::invalid_argument(std::string(who) + ": batch_size must be positive, got " +
                                std::to_string(batch_size));
  }
}

// Cuts windows starting at `starts` into a batch: inputs [s, s+T), targets [s+1, s+T+1).
Batch make_batch(const TokenShard& shard, const std::vector<uint64_t>& starts, int64_t seq_len) {
  const auto rows = static_cast<int64_t>(starts.size());
  torch::Tensor windows = torch::empty({rows, seq_len + 1}, torch::kInt64);  // (B, T+1)
  int64_t* data = windows.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    shard.copy_window(starts[r], static_cast<uint64_t>(seq_len) + 1, data + r * (seq_len + 1));
  }
  Batch batch;
  batch.inputs = windows.narrow(1, 0, seq_len).contiguous();   // (B, T)
  batch.targets = windows.narrow(1, 1, seq_len).contiguous();  // (B, T)
  return batch;
}

}  // namespace

BatchLoader::BatchLoader(std::shared_ptr<const TokenShard> shard, int64_t seq_len,
                         int64_t batch_size, uint64_t seed)
    : shard_(std::move(shard)), seq_len_(seq_len), batch_size_(batch_size), seed_(seed) {
  check_shape(shard_, seq_len_, batch_size_, "BatchLoader");
  max_window_start(*shard_, seq_len_);
}

Batch BatchLoader::batch(int64_t step, int64_t micro) const {
  if (step < 0 || micro < 0) {
    throw std::invalid_argument("BatchLoader: step and micro must be >= 0, got step " +
                                std::to_string(step) + " micro " + std::to_string(micro));
  }
  const uint64_t start_count = max_window_start(*shard_, seq_len_) + 1;
  std::vector<uint64_t> starts(static_cast<size_t>(batch_size_));
  for (int64_t row = 0; row < batch_size_; ++row) {
    const uint64_t h = hash_window(seed_, static_cast<uint64_t>(step), static_cast<uint64_t>(micro),
                                   static_cast<uint64_t>(row));
    starts[row] = scale_to_range(h, start_count);
  }
  return make_batch(*shard_, starts, seq_len_);
}

Batch BatchLoader::next(LoaderCursor& cursor, int64_t accum) const {
  if (accum <= 0) {
    throw std::invalid_argument("BatchLoader: grad_accum must be positive, got " +
                                std::to_string(accum));
  }
  if (cursor.micro >= accum) {
    throw std::invalid_argument("BatchLoader: cursor micro-step " + std::to_string(cursor.micro) +
                                " is not below grad_accum " + std::to_string(accum) +
                                "; resume with the grad_accum the run was saved with");
  }
  Batch result = batch(cursor.step, cursor.micro);
  if (++cursor.micro == accum) {
    cursor.micro = 0;
    ++cursor.step;
  }
  return result;
}

ValidationSet::ValidationSet(std::shared_ptr<const TokenShard> shard, int64_t seq_len,
                             int64_t batch_size, int64_t n_batches) {
  check_shape(shard, seq_len, batch_size, "ValidationSet");
  if (n_batches <= 0) {
    throw std::invalid_argument("ValidationSet: n_batches must be positive, got " +
                                std::to_string(n_batches));
  }
  const uint64_t last_start = max_window_start(*shard, seq_len);
  const auto windows = static_cast<uint64_t>(n_batches) * static_cast<uint64_t>(batch_size);
  // Window k starts at round-down(k * last_start / (windows - 1)): first at 0, last at the end.
  auto start_of = [&](uint64_t k) -> uint64_t {
    if (windows == 1) return 0;
    return static_cast<uint64_t>(static_cast<unsigned __int128>(k) * last_start / (windows - 1));
  };
  batches_.reserve(static_cast<size_t>(n_batches));
  for (int64_t b = 0; b < n_batches; ++b) {
    std::vector<uint64_t> starts(static_cast<size_t>(batch_size));
    for (int64_t r = 0; r < batch_size; ++r) {
      starts[r] = start_of(static_cast<uint64_t>(b * batch_size + r));
    }
    batches_.push_back(make_batch(*shard, starts, seq_len));
  }
}

int64_t ValidationSet::tokens() const {
  int64_t total = 0;
  for (const auto& batch : batches_) total += batch.targets.numel();
  return total;
}

}  // namespace muonlab
