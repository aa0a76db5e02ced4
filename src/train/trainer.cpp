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

#include "optim/grad_clip.h"
#include "src/config/number_text.h"
#include "src/gemm_peak.h"
#include "src/runtime.h"
#include "src/train/checkpoint.h"
#include "src/train/metrics.h"
#include "src/train/model_factory.h"
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
// also when training throws. The muonlab binary runs these handlers on a thread that never
// computes (src/stop_signals.h): on a thread inside oneDNN's fp32 GEMM one would corrupt the heap.
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

// A loss for the console: 4 decimals, or scientific notation below 1e-3 (theory models get there).
std::string loss_text(double loss) {
  return std::abs(loss) >= 1e-3 || loss == 0 || !std::isfinite(loss) ? fmt::format("{:.4f}", loss)
                                                                     : fmt::format("{:.4e}", loss);
}

// Keys whose change makes a checkpoint unusable.
bool is_structural_key(const std::string& key) {
  return key.rfind("model.", 0) == 0 || key == "optim.kind" || key == "seed" ||
         key == "train.batch_size" || key == "train.grad_accum" || key == "data.train" ||
         key == "data.facts" || key == "data.probe_threshold";
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
  void build_model_and_optimizer();
  int64_t resume_if_asked();
  void check_resume_config(const fs::path& checkpoint);
  double train_step(bool measure_spectra);
  double evaluate();
  void record_spectra(const std::map<std::string, torch::Tensor>& before);
  void log_train(double loss, double compute_seconds);
  void write_task_records(bool final);
  void choose_gemm_peak();
  void write_run_record(int64_t resumed_at);
  void save_checkpoint();
  int64_t items_per_step() const;

  const RunConfig& cfg_;
  TrainOptions options_;
  fs::path run_dir_;
  CheckpointStore store_;
  std::unique_ptr<RunLock> lock_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<Model> model_;
  std::vector<NamedParam> params_;
  std::unique_ptr<OptimizerSet> optimizer_;
  SpectralRecorder spectral_;
  TrainState state_;
  double last_val_loss_ = NAN;
  double last_grad_norm_ = 0;
  Clock::time_point run_start_;
  int64_t start_step_ = 0;
  // Throughput figures count compute only: spectral measurement and evaluation are timed apart.
  double measure_seconds_ = 0;  // spectral measurement inside the current step
  double peak_gflops_ = 0;      // what mfu is relative to (0: the model has no FLOP count)
  std::string peak_source_;     // "measured" or "train.peak_gflops"
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

void Trainer::build_model_and_optimizer() {
  torch::manual_seed(static_cast<uint64_t>(cfg_.seed));
  model_ = make_model(cfg_);
  for (auto& [name, tensor] : model_->named_params()) params_.push_back({name, tensor});
  optimizer_ = build_optimizer(cfg_.optim, params_, cfg_.schedule);
  for (const auto& line : model_->describe()) log_->info("{}", line);
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
  state_ = CheckpointStore::load(checkpoint, model_->named_params(), *optimizer_);
  model_->restore_task_state(state_.task_state);
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
    torch::Tensor loss = model_->step_loss(state_.step, micro, t.grad_accum);
    (loss / static_cast<double>(t.grad_accum)).backward();
    loss_sum += loss.item<double>();
  }
  state_.cursor = {state_.step + 1, 0};
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
  state_.tokens_seen += items_per_step();
  return loss;
}

int64_t Trainer::items_per_step() const {
  return model_->items_per_micro() * cfg_.train.grad_accum;
}

void Trainer::record_spectra(const std::map<std::string, torch::Tensor>& before) {
  // The record describes the weights after `step` updates (state_.step is incremented after).
  const auto start = Clock::now();
  int64_t step = before.empty() ? state_.step : state_.step + 1;
  metrics_->write(spectral_.record(params_, before, step));
  measure_seconds_ += std::chrono::duration<double>(Clock::now() - start).count();
}

double Trainer::evaluate() {
  Evaluation evaluation = model_->evaluate();
  json record = {{"kind", "val"}, {"step", state_.step}};
  record.update(evaluation.fields);
  const double loss = record.at("loss").get<double>();
  metrics_->write(record);
  if (std::isfinite(loss) && loss < state_.best_val_loss) state_.best_val_loss = loss;
  log_->info("step {:>6}/{} | val loss {}{}", state_.step, cfg_.train.steps, loss_text(loss),
             evaluation.summary.empty() ? "" : " | " + evaluation.summary);
  last_val_loss_ = loss;
  return loss;
}

// The GEMM peak mfu is relative to: train.peak_gflops when set, else measured now at the run's
// precision and thread count (a new machine gets its own figure).
void Trainer::choose_gemm_peak() {
  if (model_->flops_per_item() <= 0) return;
  if (cfg_.train.peak_gflops > 0) {
    peak_gflops_ = cfg_.train.peak_gflops, peak_source_ = "train.peak_gflops";
  } else {
    const GemmPeak peak = measure_gemm_peak(cfg_.train.precision);
    peak_gflops_ = peak.gflops, peak_source_ = "measured";
    log_->info(
        "mfu is relative to {:.0f} GFLOP/s: a {}x{} {} matmul on {} threads, measured now "
        "(set train.peak_gflops to fix it)",
        peak.gflops, peak.n, peak.n, peak.precision, at::get_num_threads());
  }
}

// One `run` record per invocation: where and how this stretch of the run computed.
void Trainer::write_run_record(int64_t resumed_at) {
  json record = {{"kind", "run"}, {"step", state_.step}, {"resumed", resumed_at >= 0}};
  record.update(runtime_fields());
  record["precision"] = cfg_.train.precision;
  record["gemm_peak_gflops"] = peak_gflops_ > 0 ? json(peak_gflops_) : json();
  record["gemm_peak_source"] = peak_source_;
  metrics_->write(record);
}

void Trainer::write_task_records(bool final) {
  for (const auto& record : model_->task_records(state_.step, final)) metrics_->write(record);
  state_.task_state = model_->task_state();
}

// `compute_seconds`: the step without its spectral measurement. tok/s and mfu in the record
// are this step's; on the console both are over the steps since the previous line, with the
// time spent evaluating and measuring spectra in that window shown on its own.
void Trainer::log_train(double loss, double compute_seconds) {
  const auto& t = cfg_.train;
  const double tokens = static_cast<double>(items_per_step());
  const double flops_per_token = peak_gflops_ > 0 ? model_->flops_per_item() : 0;
  auto mfu_of = [&](double tok_per_s) {
    return tok_per_s * flops_per_token / (peak_gflops_ * 1e9);
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
                   {"mfu", flops_per_token > 0 ? json(mfu_of(tok_per_s)) : json()},
                   {"groups", groups}});
  window_.tokens += tokens;
  window_.compute_seconds += compute_seconds;
  if (state_.step % t.log_every != 0 && state_.step != t.steps) return;
  const double window_tok_per_s = window_.tokens / std::max(window_.compute_seconds, 1e-9);
  const double other = window_.eval_seconds + window_.measure_seconds;
  const double wall = std::chrono::duration<double>(Clock::now() - run_start_).count();
  const double wall_per_step = wall / static_cast<double>(state_.step - start_step_);
  log_->info(
      "step {:>6}/{} | loss {} | lr {:.3e} | grad {:.3f} | {:.0f} {}/s{}{} | ETA {}", state_.step,
      t.steps, loss_text(loss), lr, last_grad_norm_, window_tok_per_s, model_->item_unit(),
      flops_per_token > 0 ? fmt::format(" | mfu {:.1f}%", 100 * mfu_of(window_tok_per_s)) : "",
      other > 0 ? fmt::format(" | eval {:.1f}s spectral {:.1f}s", window_.eval_seconds,
                              window_.measure_seconds)
                : "",
      format_duration(wall_per_step * static_cast<double>(t.steps - state_.step)));
  window_ = Window{};
}

void Trainer::save_checkpoint() {
  auto start = Clock::now();
  auto dir = store_.save(state_, model_->named_params(), *optimizer_, cfg_.resolved_yaml,
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
  if (cfg_.train.precision == "bf16" && !bf16_matmul_warning().empty())
    log_->warn("{}", bf16_matmul_warning());
  log_->info("resolved config:\n{}", cfg_.resolved_yaml);
  build_model_and_optimizer();
  int64_t resumed_at = resume_if_asked();
  metrics_ = std::make_unique<MetricsWriter>((run_dir_ / "metrics.jsonl").string(), resumed_at);
  choose_gemm_peak();
  write_run_record(resumed_at);
  {
    std::ofstream out(run_dir_ / "config.yaml");
    out << cfg_.resolved_yaml;
  }

  const auto& t = cfg_.train;
  start_step_ = state_.step;
  if (resumed_at < 0) {
    evaluate();
    if (t.spectral_every > 0) record_spectra({});
    write_task_records(false);
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
    write_task_records(last);
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
  summary.tokens_per_second =
      static_cast<double>((state_.step - start_step_) * items_per_step()) / std::max(elapsed, 1e-9);
  if (state_.step == t.steps)
    for (const auto& line : model_->final_summary()) log_->info("{}", line);
  log_->info("done: {} steps, final val loss {}, best {}, {:.0f} {}/s", state_.step,
             loss_text(summary.final_val_loss), loss_text(summary.best_val_loss),
             summary.tokens_per_second, model_->item_unit());
  return summary;
}

}  // namespace

TrainSummary run_training(const RunConfig& cfg, const TrainOptions& options) {
  Trainer trainer(cfg, options);
  return trainer.run();
}

}  // namespace muonlab
