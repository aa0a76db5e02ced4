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

struct TrainingStep::Data {
  RandomShardFile shard_file;
  BatchLoader loader;
  LoaderCursor cursor;
  Data(const RunConfig& cfg, int64_t tokens)
      : shard_file(tokens, cfg.model.llama.vocab_size, static_cast<uint64_t>(cfg.seed)),
        loader(std::make_shared<const TokenShard>(shard_file.path()), cfg.model.llama.seq_len,
               cfg.train.batch_size, static_cast<uint64_t>(cfg.seed)) {}
};

TrainingStep::TrainingStep(const RunConfig& cfg, LlamaImpl& model,
                           const std::vector<NamedParam>& params, OptimizerSet& optimizer)
    : cfg_(cfg), model_(model), params_(params), optimizer_(optimizer) {
  const int64_t window = cfg.train.batch_size * (cfg.model.llama.seq_len + 1);
  data_ = std::make_unique<Data>(cfg, std::max<int64_t>(1 << 20, 8 * window));
}

TrainingStep::~TrainingStep() = default;

PhaseSeconds TrainingStep::run() {
  PhaseSeconds s;
  auto start = Clock::now();
  Batch batch = data_->loader.next(data_->cursor, 1);
  s.data = seconds_since(start);
  start = Clock::now();
  torch::Tensor loss = model_loss(model_, batch, cfg_.train.precision);
  s.forward = seconds_since(start);
  start = Clock::now();
  loss.backward();
  s.backward = seconds_since(start);
  start = Clock::now();
  clip_grad_norm(params_, cfg_.train.grad_clip);
  optimizer_.step();
  optimizer_.zero_grad();
  s.optimizer = seconds_since(start);
  return s;
}

StepTiming time_training_step(TrainingStep& step, int repeats, int warmup) {
  StepTiming timing;
  timing.repeats = repeats;
  timing.warmup = warmup;
  std::vector<double> data, forward, backward, update, total;
  for (int i = 0; i < warmup + repeats; ++i) {
    const PhaseSeconds s = step.run();
    if (i < warmup) continue;
    data.push_back(s.data);
    forward.push_back(s.forward);
    backward.push_back(s.backward);
    update.push_back(s.optimizer);
    total.push_back(s.data + s.forward + s.backward + s.optimizer);
  }
  timing.step_s = median(total);
  timing.data_s = median(data);
  timing.forward_s = median(forward);
  timing.backward_s = median(backward);
  timing.optimizer_s = median(update);
  return timing;
}

}  // namespace muonlab
