// The timed training step: a random-token shard on disk, the trainer's phases, medians.
#include "src/bench/step_bench.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>

#include "data/batch_loader.h"
#include "optim/grad_clip.h"
#include "src/train/precision.h"

namespace muonlab {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// A shard of uniformly random tokens in the temporary directory, removed when this goes away.
class RandomShardFile {
 public:
  RandomShardFile(int64_t tokens, int64_t vocab_size, uint64_t seed)
      : path_((std::filesystem::temp_directory_path() /
               ("muonlab-bench-" + std::to_string(getpid()) + ".bin"))
                  .string()) {
    std::mt19937_64 gen(seed);
    std::uniform_int_distribution<uint32_t> id(0, static_cast<uint32_t>(vocab_size - 1));
    std::vector<uint32_t> ids(static_cast<size_t>(tokens));
    for (auto& t : ids) t = id(gen);
    write_token_shard(path_, ids, static_cast<uint64_t>(vocab_size));
  }
  ~RandomShardFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  RandomShardFile(const RandomShardFile&) = delete;
  RandomShardFile& operator=(const RandomShardFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

StepTiming time_training_step(const RunConfig& cfg, LlamaImpl& model,
                              const std::vector<NamedParam>& params, OptimizerSet& optimizer,
                              int repeats, int warmup) {
  const auto& t = cfg.train;
  const int64_t window = t.batch_size * (cfg.model.llama.seq_len + 1);
  RandomShardFile shard_file(std::max<int64_t>(1 << 20, 8 * window), cfg.model.llama.vocab_size,
                             static_cast<uint64_t>(cfg.seed));
  auto shard = std::make_shared<const TokenShard>(shard_file.path());
  BatchLoader loader(shard, cfg.model.llama.seq_len, t.batch_size, static_cast<uint64_t>(cfg.seed));
  LoaderCursor cursor;

  StepTiming timing;
  timing.repeats = repeats;
  timing.warmup = warmup;
  std::vector<double> data, forward, backward, update, total;
  for (int i = 0; i < warmup + repeats; ++i) {
    auto start = Clock::now();
    Batch batch = loader.next(cursor, 1);
    const double d = seconds_since(start);
    start = Clock::now();
    torch::Tensor loss = model_loss(model, batch, t.precision);
    const double f = seconds_since(start);
    start = Clock::now();
    loss.backward();
    const double b = seconds_since(start);
    start = Clock::now();
    clip_grad_norm(params, t.grad_clip);
    optimizer.step();
    optimizer.zero_grad();
    const double o = seconds_since(start);
    if (i < warmup) continue;
    data.push_back(d);
    forward.push_back(f);
    backward.push_back(b);
    update.push_back(o);
    total.push_back(d + f + b + o);
  }
  timing.step_s = median(total);
  timing.data_s = median(data);
  timing.forward_s = median(forward);
  timing.backward_s = median(backward);
  timing.optimizer_s = median(update);
  return timing;
}

}  // namespace muonlab
