// Batch loader: random contiguous windows of seq_len+1 tokens from a shard, batch B, chosen
// deterministically from (seed, step, micro-step) so that a resumed run sees exactly the batches
// the uninterrupted run would have seen; and a fixed validation set of evenly spaced windows.
// It does not own the shard's lifetime beyond holding it, and does no tokenization.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "data/token_shard.h"

namespace muonlab {

struct Batch {
  torch::Tensor inputs;   // (B, T) int64
  torch::Tensor targets;  // (B, T) int64, inputs shifted by one
};

// Where the loader stands; saved in checkpoints.
struct LoaderCursor {
  int64_t step = 0;   // next optimizer step
  int64_t micro = 0;  // next micro-batch within that step
};

class BatchLoader {
 public:
  // Throws std::runtime_error if the shard holds fewer than seq_len+1 tokens.
  BatchLoader(std::shared_ptr<const TokenShard> shard, int64_t seq_len, int64_t batch_size,
              uint64_t seed);
  // The batch for (step, micro): a pure function of (seed, step, micro).
  Batch batch(int64_t step, int64_t micro) const;
  // Next batch at the cursor; advances it (micro wraps to the next step after `accum`).
  Batch next(LoaderCursor& cursor, int64_t accum) const;

 private:
  std::shared_ptr<const TokenShard> shard_;
  int64_t seq_len_, batch_size_;
  uint64_t seed_;
};

// A fixed list of `n_batches` batches of windows spread evenly over the shard.
class ValidationSet {
 public:
  ValidationSet(std::shared_ptr<const TokenShard> shard, int64_t seq_len, int64_t batch_size,
                int64_t n_batches);
  int64_t size() const { return static_cast<int64_t>(batches_.size()); }
  const Batch& operator[](int64_t i) const { return batches_[i]; }
  int64_t tokens() const;  // tokens scored per full evaluation

 private:
  std::vector<Batch> batches_;
};

}  // namespace muonlab
