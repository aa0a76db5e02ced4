// The training loop: run-directory set-up, resume, steps with accumulation and clipping,
// evaluation, spectral measurement, logging and checkpoints.
#include "src/train/trainer.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "data/batch_loader.h"
#include "data/tokenizer.h"
#include "optim/grad_clip.h"
#include "src/config/number_text.h"
#include "src/runtime.h"
#include "src/train/checkpoint.h"
#include "src/train/metrics.h"
#include "src/train/precision.h"
#include "src/train/run_lock.h"
#include "src/train/spectral_recorder.h"

namespace muonlab {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int signal) { g_stop_signal = signal; }

// Routes SIGINT/SIGTERM to g_stop_signal while alive; restores the previous handlers on exit,
// also when training throws.
class StopSignalScope {
 public:
  StopSignalScope()
      : previous_int_(std::signal(SIGINT, on_stop_signal)),
        previous_term_(std::signal(SIGTERM, on_stop_signal)) {
    g_stop_signal = 0;
  }
  ~StopSignalScope() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;

 private:
  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

std::shared_ptr<spdlog::logger> make_logger(const fs::path& log_file, bool quiet) {
  std::vector<spdlog::sink_ptr> sinks;
  if (!quiet) sinks.push_back(std::make_shared<spdlog::sinks::stdout_color_sink_mt>());
  sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file.string()));
  auto logger = std::make_shared<spdlog::logger>("train", sinks.begin(), sinks.end());
  logger->set_pattern("[%H:%M:%S] %v");
  logger->flush_on(spdlog::level::info);
  return logger;
}

// Keys whose change makes a checkpoint unusable.
bool is_structural_key(const std::string& key) {
  return key.rfind("model.", 0) == 0 || key == "optim.kind" || key == "seed" ||
         key == "train.batch_size" || key == "train.grad_accum" || key == "data.train";
}

class Trainer {
 public:
  Trainer(const RunConfig& cfg, const TrainOptions& options)
      : cfg_(cfg),
        options_(options),
        run_dir_(cfg.train.out_dir),
        store_(run_dir_),
        spectral_(cfg.train.spectral_method, cfg.train.spectrum_every) {}

  TrainSummary run();

 private:
  void prepare_run_directory();
  void load_data();
  void build_model_and_optimizer();
  int64_t resume_if_asked();
  void check_resume_config(const fs::path& checkpoint);
  double train_step(bool measure_spectra);
  double evaluate();
  void record_spectra(const std::map<std::string, torch::Tensor>& before);
  void log_train(double loss, double compute_seconds);
  void save_checkpoint();
  double bytes_per_val_token() const;

  const RunConfig& cfg_;
  TrainOptions options_;
  fs::path run_dir_;
  CheckpointStore store_;
  std::unique_ptr<RunLock> lock_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<MetricsWriter> metrics_;
  std::shared_ptr<const TokenShard> train_shard_, val_shard_;
  std::unique_ptr<BatchLoader> loader_;
  std::unique_ptr<ValidationSet> val_set_;
  Llama model_{nullptr};
  std::vector<NamedParam> params_;
  std::unique_ptr<OptimizerSet> optimizer_;
  SpectralRecorder spectral_;
  TrainState state_;
  double last_val_loss_ = NAN;
  double last_grad_norm_ = 0;
  double bytes_per_token_ = 0;
  Clock::time_point run_start_;
  int64_t start_step_ = 0;
  // Throughput figures count compute only: spectral measurement and evaluation are timed apart.
  double measure_seconds_ = 0;  // spectral measurement inside the current step
  struct Window {               // since the last console line
    double tokens = 0, compute_seconds = 0, eval_seconds = 0, measure_seconds = 0;
  } window_;
};

void Trainer::prepare_run_directory() {
  fs::create_directories(run_dir_);
  lock_ = std::make_unique<RunLock>(run_dir_.string());
  bool has_checkpoints = !store_.list().empty();
  if (!options_.resume && has_checkpoints && !options_.overwrite)
    throw std::runtime_error("run directory " + run_dir_.string() +
                             " already holds checkpoints; pass --resume to continue it or "
                             "--overwrite to start over (this deletes them)");
  if (options_.overwrite && !options_.resume) {
    fs::remove_all(run_dir_ / "checkpoints");
    fs::remove(run_dir_ / "metrics.jsonl");
    fs::remove(run_dir_ / "train.log");
  }
  log_ = make_logger(run_dir_ / "train.log", options_.quiet);
}

void Trainer::load_data() {
  train_shard_ = std::make_shared<TokenShard>(cfg_.data.train);
  val_shard_ = std::make_shared<TokenShard>(cfg_.data.val);
  for (const auto& shard : {train_shard_, val_shard_}) {
    if (static_cast<int64_t>(shard->vocab_size()) > cfg_.model.vocab_size)
      throw std::runtime_error("shard " + shard->path() + " has vocabulary " +
                               std::to_string(shard->vocab_size()) + " but model.vocab_size is " +
                               std::to_string(cfg_.model.vocab_size) +
                               "; set model.vocab_size to at least the shard's");
  }
  loader_ = std::make_unique<BatchLoader>(train_shard_, cfg_.model.seq_len, cfg_.train.batch_size,
                                          static_cast<uint64_t>(cfg_.seed));
  val_set_ = std::make_unique<ValidationSet>(val_shard_, cfg_.model.seq_len, cfg_.train.batch_size,
                                             cfg_.train.eval_batches);
  bytes_per_token_ = bytes_per_val_token();
  log_->info("data: train {} tokens ({}), val {} tokens ({}), {} val tokens per eval",
             train_shard_->size(), cfg_.data.train, val_shard_->size(), cfg_.data.val,
             val_set_->tokens());
}

double Trainer::bytes_per_val_token() const {
  if (cfg_.data.tokenizer.empty()) return 0;
  Tokenizer tokenizer(cfg_.data.tokenizer);
  if (tokenizer.vocab_size() != static_cast<int>(val_shard_->vocab_size()))
    throw std::runtime_error("tokenizer " + cfg_.data.tokenizer + " has vocabulary " +
                             std::to_string(tokenizer.vocab_size()) + " but shard " +
                             val_shard_->path() + " was written with " +
                             std::to_string(val_shard_->vocab_size()) +
                             "; point data.tokenizer at the model that made the shards");
  double bytes = 0, tokens = 0;
  for (int64_t i = 0; i < val_set_->size(); ++i) {
    auto targets = (*val_set_)[i].targets;
    for (int64_t row = 0; row < targets.size(0); ++row) {
      auto ids_tensor = targets[row].to(torch::kInt64).contiguous();
      std::vector<uint32_t> ids(ids_tensor.data_ptr<int64_t>(),
                                ids_tensor.data_ptr<int64_t>() + ids_tensor.numel());
      bytes += static_cast<double>(tokenizer.decode(ids).size());
      tokens += static_cast<double>(ids.size());
    }
  }
  return bytes > 0 ? bytes / tokens : 0;
}

void Trainer::build_model_and_optimizer() {
  torch::manual_seed(static_cast<uint64_t>(cfg_.seed));
  model_ = Llama(cfg_.model);
  for (auto& [name, tensor] : model_->named_params()) params_.push_back({name, tensor});
  optimizer_ = build_optimizer(cfg_.optim, params_, cfg_.schedule);
  log_->info("model: {} parameters ({} layers, d_model {}, heads {}/{} kv, ffn {}, seq_len {})",
             llama_param_count(cfg_.model), cfg_.model.n_layers, cfg_.model.d_model,
             cfg_.model.n_heads, cfg_.model.n_kv_heads, cfg_.model.ffn_dim(), cfg_.model.seq_len);
  for (const auto& line : optimizer_->describe()) log_->info("optimizer: {}", line);
}

void Trainer::check_resume_config(const fs::path& checkpoint) {
  std::map<std::string, std::string> saved, now;
  saved = flatten_yaml(YAML::Load(CheckpointStore::saved_config(checkpoint)));
  now = flatten_yaml(YAML::Load(cfg_.resolved_yaml));
  std::set<std::string> keys;
  for (const auto& kv : saved) keys.insert(kv.first);
  for (const auto& kv : now) keys.insert(kv.first);
  std::string refused, allowed;
  for (const auto& key : keys) {
    auto a = saved.count(key) ? saved[key] : "(unset)";
    auto b = now.count(key) ? now[key] : "(unset)";
    if (a == b) continue;
    std::string change = key + ": " + a + " -> " + b;
    std::string& list = is_structural_key(key) ? refused : allowed;
    list += (list.empty() ? "" : ", ") + change;
  }
  if (!refused.empty())
    throw std::runtime_error("checkpoint " + checkpoint.string() +
                             " was written with a different config (" + refused +
                             "); resume with the original config or start a new out_dir");
  if (!allowed.empty()) log_->warn("resume: config changed since the checkpoint: {}", allowed);
}

int64_t Trainer::resume_if_asked() {
  if (!options_.resume) return -1;
  fs::path checkpoint;
  if (!options_.resume_from.empty()) {
    checkpoint = options_.resume_from;
  } else {
    auto found = store_.latest_valid([&](const std::string& why) { log_->warn("{}", why); });
    if (!found)
      throw std::runtime_error("--resume: no complete checkpoint in " +
                               (run_dir_ / "checkpoints").string() +
                               "; train without --resume to start a new run");
    checkpoint = *found;
  }
  check_resume_config(checkpoint);
  state_ = CheckpointStore::load(checkpoint, model_, *optimizer_);
  log_->info("resumed from {} at step {} ({} tokens seen)", checkpoint.string(), state_.step,
             state_.tokens_seen);
  return state_.step;
}

double Trainer::train_step(bool measure_spectra) {
  const auto& t = cfg_.train;
  optimizer_->apply_schedules(state_.step, t.steps);
  optimizer_->zero_grad();
  double loss_sum = 0;
  for (int64_t micro = 0; micro < t.grad_accum; ++micro) {
    Batch batch = loader_->next(state_.cursor, t.grad_accum);
    torch::Tensor loss = model_loss(*model_, batch, t.precision);
    (loss / static_cast<double>(t.grad_accum)).backward();
    loss_sum += loss.item<double>();
  }
  double loss = loss_sum / static_cast<double>(t.grad_accum);
  last_grad_norm_ = clip_grad_norm(params_, t.grad_clip);
  if (!std::isfinite(loss) || !std::isfinite(last_grad_norm_)) {
    std::string culprit = first_nonfinite_grad(params_);
    std::string what = "step " + std::to_string(state_.step + 1) + ": loss " +
                       std::to_string(loss) + ", gradient norm " + std::to_string(last_grad_norm_) +
                       (culprit.empty() ? "" : "; first non-finite gradient in " + culprit);
    if (t.on_nonfinite == "stop")
      throw std::runtime_error(what +
                               "; lower the learning rate or set train.on_nonfinite: skip_step");
    log_->warn("{}; skipping the update", what);
    optimizer_->zero_grad();
  } else {
    std::map<std::string, torch::Tensor> before;
    if (measure_spectra)
      for (const auto& p : params_)
        if (p.param.dim() == 2) before[p.name] = p.param.detach().clone();
    optimizer_->step();
    if (measure_spectra) record_spectra(before);
  }
  state_.step += 1;
  state_.tokens_seen += t.batch_size * t.grad_accum * cfg_.model.seq_len;
  return loss;
}

void Trainer::record_spectra(const std::map<std::string, torch::Tensor>& before) {
  // The record describes the weights after `step` updates (state_.step is incremented after).
  const auto start = Clock::now();
  int64_t step = before.empty() ? state_.step : state_.step + 1;
  metrics_->write(spectral_.record(params_, before, step));
  measure_seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
}

double Trainer::evaluate() {
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (int64_t i = 0; i < val_set_->size(); ++i)
    sum += model_loss(*model_, (*val_set_)[i], cfg_.train.precision).item<double>();
  double loss = sum / static_cast<double>(val_set_->size());
  json record = {{"kind", "val"}, {"step", state_.step}, {"loss", loss}, {"ppl", std::exp(loss)}};
  if (bytes_per_token_ > 0) record["bpb"] = loss / std::log(2.0) / bytes_per_token_;
  metrics_->write(record);
  if (std::isfinite(loss) && loss < state_.best_val_loss) state_.best_val_loss = loss;
  log_->info("step {:>6}/{} | val loss {:.4f} | ppl {:.2f}{}", state_.step, cfg_.train.steps, loss,
             std::exp(loss),
             bytes_per_token_ > 0 ? fmt::format(" | bpb {:.4f}", record["bpb"].get<double>()) : "");
  last_val_loss_ = loss;
  return loss;
}

// `compute_seconds`: the step without its spectral measurement. tok/s and mfu in the record
// are this step's; on the console both are over the steps since the previous line, with the
// time spent evaluating and measuring spectra in that window shown on its own.
void Trainer::log_train(double loss, double compute_seconds) {
  const auto& t = cfg_.train;
  const double tokens = static_cast<double>(t.batch_size * t.grad_accum * cfg_.model.seq_len);
  const double flops_per_token = llama_flops_per_token(cfg_.model);
  auto mfu_of = [&](double tok_per_s) {
    return tok_per_s * flops_per_token / (t.peak_gflops * 1e9);
  };
  const double tok_per_s = tokens / std::max(compute_seconds, 1e-9);
  double lr = optimizer_->parts().front()->groups().front().lr;
  json groups = json::object();
  for (const auto& part : optimizer_->parts())
    for (const auto& g : part->groups())
      groups[g.name] = {{"lr", g.lr}, {"momentum", g.momentum}, {"weight_decay", g.weight_decay}};
  metrics_->write({{"kind", "train"},
                   {"step", state_.step},
                   {"loss", loss},
                   {"lr", lr},
                   {"grad_norm", last_grad_norm_},
                   {"tokens", state_.tokens_seen},
                   {"tok_per_s", tok_per_s},
                   {"mfu", mfu_of(tok_per_s)},
                   {"groups", groups}});
  window_.tokens += tokens;
  window_.compute_seconds += compute_seconds;
  if (state_.step % t.log_every != 0 && state_.step != t.steps) return;
  const double window_tok_per_s = window_.tokens / std::max(window_.compute_seconds, 1e-9);
  const double other = window_.eval_seconds + window_.measure_seconds;
  const double wall = std::chrono::duration<double>(Clock::now() - run_start_).count();
  const double wall_per_step = wall / static_cast<double>(state_.step - start_step_);
  log_->info(
      "step {:>6}/{} | loss {:.4f} | lr {:.3e} | grad {:.3f} | {:.0f} tok/s | mfu {:.1f}%{} | "
      "ETA {}",
      state_.step, t.steps, loss, lr, last_grad_norm_, window_tok_per_s,
      100 * mfu_of(window_tok_per_s),
      other > 0 ? fmt::format(" | eval {:.1f}s spectral {:.1f}s", window_.eval_seconds,
                              window_.measure_seconds)
                : "",
      format_duration(wall_per_step * static_cast<double>(t.steps - state_.step)));
  window_ = Window{};
}

void Trainer::save_checkpoint() {
  auto start = Clock::now();
  auto dir = store_.save(state_, model_, *optimizer_, cfg_.resolved_yaml,
                         {cfg_.train.keep_last, cfg_.train.keep_every});
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  log_->info("checkpoint {} ({:.2f}s)", dir.string(), seconds);
}

TrainSummary Trainer::run() {
  prepare_run_directory();
  configure_threads(cfg_.threads);
  log_->info("muonlab train | {} | out_dir {}", runtime_summary(), run_dir_.string());
  if (detect_blas().is_reference)
    log_->warn(
        "LibTorch is using the reference BLAS (about 15x slower); install "
        "libopenblas0-openmp (tools/setup.sh does)");
  log_->info("resolved config:\n{}", cfg_.resolved_yaml);
  load_data();
  build_model_and_optimizer();
  int64_t resumed_at = resume_if_asked();
  metrics_ = std::make_unique<MetricsWriter>((run_dir_ / "metrics.jsonl").string(), resumed_at);
  {
    std::ofstream out(run_dir_ / "config.yaml");
    out << cfg_.resolved_yaml;
  }

  const auto& t = cfg_.train;
  start_step_ = state_.step;
  if (resumed_at < 0) {
    evaluate();
    if (t.spectral_every > 0) record_spectra({});
  }
  StopSignalScope stop_signals;
  TrainSummary summary;
  double loss = NAN;
  run_start_ = Clock::now();
  while (state_.step < t.steps) {
    bool spectra = t.spectral_every > 0 && (state_.step + 1) % t.spectral_every == 0;
    auto step_start = Clock::now();
    measure_seconds_ = 0;
    loss = train_step(spectra);
    double seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
    window_.measure_seconds += measure_seconds_;
    log_train(loss, seconds - measure_seconds_);
    bool last = state_.step == t.steps;
    if (state_.step % t.eval_every == 0 || last) {
      auto eval_start = Clock::now();
      evaluate();
      window_.eval_seconds += std::chrono::duration<double>(Clock::now() - eval_start).count();
    }
    bool stop = g_stop_signal != 0;
    bool pause = options_.stop_after > 0 && state_.step - start_step_ >= options_.stop_after;
    bool periodic = t.ckpt_every > 0 && state_.step % t.ckpt_every == 0;
    if (periodic || last || stop || pause) save_checkpoint();
    if (pause && !last) {
      log_->info("paused after {} steps (--stop-after); continue with --resume",
                 options_.stop_after);
      summary.paused = true;
      break;
    }
    if (stop) {
      log_->warn("stopped by signal {} at step {}; resume with --resume", g_stop_signal.load(),
                 state_.step);
      summary.interrupted = true;
      break;
    }
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - run_start_).count();
  summary.steps = state_.step;
  summary.final_train_loss = loss;
  summary.final_val_loss = last_val_loss_;
  summary.best_val_loss = state_.best_val_loss;
  summary.tokens_per_second = static_cast<double>((state_.step - start_step_) * t.batch_size *
                                                  t.grad_accum * cfg_.model.seq_len) /
                              std::max(elapsed, 1e-9);
  log_->info("done: {} steps, final val loss {:.4f}, best {:.4f}, {:.0f} tok/s", state_.step,
             summary.final_val_loss, summary.best_val_loss, summary.tokens_per_second);
  return summary;
}

}  // namespace

TrainSummary run_training(const RunConfig& cfg, const TrainOptions& options) {
  Trainer trainer(cfg, options);
  return trainer.run();
}

}  // namespace muonlab
