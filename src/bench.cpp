// Benchmark of fwd+bwd, optimizer steps, Newton-Schulz and the spectral record for one config.
#include "src/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>
#include <utility>

#include "optim/newton_schulz.h"
#include "optim/power_iteration.h"
#include "optim/registry.h"
#include "optim/spectral.h"
#include "src/runtime.h"
#include "src/train/precision.h"

namespace muonlab {
namespace {

// Median wall time in seconds of `fn` over `repeats` runs, after one warm-up run.
double median_seconds(int repeats, const std::function<void()>& fn) {
  fn();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    fn();
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::string line(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string line(const char* format, ...) {
  char buffer[256];
  va_list args;
  va_start(args, format);
  vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  return std::string(buffer) + "\n";
}

Batch random_batch(const RunConfig& cfg) {
  auto shape = std::vector<int64_t>{cfg.train.batch_size, cfg.model.llama.seq_len};
  return {torch::randint(0, cfg.model.llama.vocab_size, shape, torch::kLong),
          torch::randint(0, cfg.model.llama.vocab_size, shape, torch::kLong)};
}

// Fills every parameter's gradient with one backward pass; returns the fwd+bwd median.
double bench_forward_backward(const RunConfig& cfg, Llama& model, int repeats) {
  Batch batch = random_batch(cfg);
  return median_seconds(repeats, [&] {
    model->zero_grad();
    model_loss(*model, batch, cfg.train.precision).backward();
  });
}

std::string bench_optimizers(const RunConfig& cfg, const std::vector<NamedParam>& params,
                             double fwd_bwd, int repeats) {
  std::string out = line("%-10s %10s %12s", "optimizer", "step ms", "vs fwd+bwd");
  for (const auto& kind : optimizer_kinds()) {
    OptimConfig optim = cfg.optim;
    optim.kind = kind;
    // Parameters are restored after timing so each optimizer sees the same weights.
    std::vector<torch::Tensor> saved;
    for (const auto& p : params) saved.push_back(p.param.detach().clone());
    auto optimizer = build_optimizer(optim, params);
    double seconds = median_seconds(repeats, [&] { optimizer->step(); });
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) params[i].param.copy_(saved[i]);
    out += line("%-10s %10.2f %11.1f%%", kind.c_str(), 1e3 * seconds, 100 * seconds / fwd_bwd);
  }
  return out;
}

double ns_flops(int64_t rows, int64_t cols, int64_t count, int steps) {
  const double m = static_cast<double>(std::min(rows, cols));
  const double n = static_cast<double>(std::max(rows, cols));
  return static_cast<double>(count) * steps * (4 * m * m * n + 2 * m * m * m);
}

std::string bench_newton_schulz(const RunConfig& cfg, const std::vector<NamedParam>& params,
                                double fwd_bwd, int repeats) {
  std::map<std::pair<int64_t, int64_t>, int64_t> shapes;
  for (const auto& p : params)
    if (route_of(cfg.optim.routes, p) == "main" && p.param.dim() == 2)
      shapes[{p.param.size(0), p.param.size(1)}] += 1;
  NsSchedule schedule = ns_schedule(cfg.optim.ns_coefficients, cfg.optim.ns_steps);
  std::string out = line("%-12s %5s %11s %11s %11s %9s %9s", "shape", "count", "bf16 batch",
                         "bf16 1-by-1", "fp32 batch", "bf16 GF/s", "fp32 GF/s");
  double total_bf16 = 0;
  for (const auto& entry : shapes) {
    const std::pair<int64_t, int64_t> shape = entry.first;  // named: lambdas below capture them
    const int64_t count = entry.second;
    torch::Tensor batch = torch::randn({count, shape.first, shape.second});
    auto time = [&](bool bf16, bool batched) {
      return median_seconds(repeats, [&] {
        if (batched) {
          newton_schulz(batch, schedule, bf16);
        } else {
          for (int64_t i = 0; i < count; ++i) newton_schulz(batch[i], schedule, bf16);
        }
      });
    };
    double bf16_batched = time(true, true), bf16_single = time(true, false);
    double fp32_batched = time(false, true);
    double flops = ns_flops(shape.first, shape.second, count, cfg.optim.ns_steps);
    total_bf16 += bf16_batched;
    std::string name = std::to_string(shape.first) + "x" + std::to_string(shape.second);
    out += line("%-12s %5lld %9.2fms %9.2fms %9.2fms %9.0f %9.0f", name.c_str(),
                static_cast<long long>(count), 1e3 * bf16_batched, 1e3 * bf16_single,
                1e3 * fp32_batched, flops / bf16_batched / 1e9, flops / fp32_batched / 1e9);
  }
  out += line("Newton-Schulz total (bf16, batched): %.2f ms = %.1f%% of fwd+bwd", 1e3 * total_bf16,
              100 * total_bf16 / fwd_bwd);
  return out;
}

// The weights the trainer's spectral record measures: every 2-D parameter.
std::vector<torch::Tensor> spectral_matrices(const std::vector<NamedParam>& params) {
  std::vector<torch::Tensor> matrices;
  for (const auto& p : params)
    if (p.param.dim() == 2) matrices.push_back(p.param.detach());
  return matrices;
}

// Each matrix plus 1e-3 of its RMS in Gaussian noise: a stand-in for the next training step.
std::vector<torch::Tensor> perturbed(const std::vector<torch::Tensor>& matrices) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (const auto& m : matrices)
    out.push_back(m + 1e-3 * m.square().mean().sqrt() * torch::randn_like(m));
  return out;
}

// Power iterations over all matrices from the given start vectors (updated), and how many of
// them did not converge.
std::pair<int, int> power_iterations(const std::vector<torch::Tensor>& matrices,
                                     std::vector<torch::Tensor>& vectors) {
  int total = 0, unconverged = 0;
  for (size_t i = 0; i < matrices.size(); ++i) {
    const PowerIterationResult r = power_sigma_max(matrices[i], vectors[i]);
    total += r.iterations;
    unconverged += r.converged ? 0 : 1;
  }
  return {total, unconverged};
}

// Largest relative deviation of the power-iteration sigma_max from the SVD's over the matrices.
double largest_sigma_deviation(const std::vector<torch::Tensor>& matrices,
                               std::vector<torch::Tensor> vectors) {
  double largest = 0;
  for (size_t i = 0; i < matrices.size(); ++i) {
    const double svd = matrix_spectrum(matrices[i]).sigma_max;
    const double power = matrix_spectrum_power(matrices[i], vectors[i]).sigma_max;
    largest = std::max(largest, std::abs(power - svd) / svd);
  }
  return largest;
}

// Cost of one spectral record of the weights: full svdvals (matrix_spectrum) against power
// iteration from cold starts and from the vectors of the previous record (warm, after a small
// perturbation of the weights). The warm timing restarts from the same vectors on every repeat.
std::string bench_spectral_record(const std::vector<NamedParam>& params, double fwd_bwd,
                                  int repeats) {
  const std::vector<torch::Tensor> matrices = spectral_matrices(params);
  const std::vector<torch::Tensor> next = perturbed(matrices);
  const size_t n = matrices.size();
  std::vector<torch::Tensor> previous(n);
  const std::pair<int, int> cold_iterations = power_iterations(matrices, previous);
  const double svd = median_seconds(repeats, [&] {
    for (const auto& m : next) matrix_spectrum(m);
  });
  const double cold = median_seconds(repeats, [&] {
    std::vector<torch::Tensor> vectors(n);
    for (size_t i = 0; i < n; ++i) matrix_spectrum_power(next[i], vectors[i]);
  });
  const double warm = median_seconds(repeats, [&] {
    std::vector<torch::Tensor> vectors = previous;  // handles: the calls rebind, never write
    for (size_t i = 0; i < n; ++i) matrix_spectrum_power(next[i], vectors[i]);
  });
  std::vector<torch::Tensor> warm_vectors = previous;
  const std::pair<int, int> warm_iterations = power_iterations(next, warm_vectors);
  std::string out = line(
      "spectral record (%zu matrices): svdvals %.2f ms, power cold %.2f ms, "
      "power warm %.2f ms (median of %d)",
      n, 1e3 * svd, 1e3 * cold, 1e3 * warm, repeats);
  out += line(
      "  vs fwd+bwd: %.1f%% / %.1f%% / %.1f%%; power iterations: cold %d (%d unconverged), "
      "warm %d (%d unconverged)",
      100 * svd / fwd_bwd, 100 * cold / fwd_bwd, 100 * warm / fwd_bwd, cold_iterations.first,
      cold_iterations.second, warm_iterations.first, warm_iterations.second);
  out += line("  warm power sigma_max vs svdvals: largest relative deviation %.1e",
              largest_sigma_deviation(next, previous));
  return out;
}

}  // namespace

std::string run_bench(const RunConfig& cfg, const BenchOptions& options) {
  configure_threads(cfg.threads);
  torch::manual_seed(static_cast<uint64_t>(cfg.seed));
  if (cfg.model.kind != "llama")
    throw std::runtime_error("bench: measures llama models; model.kind is " + cfg.model.kind);
  Llama model(cfg.model.llama);
  std::vector<NamedParam> params;
  for (auto& [name, t] : model->named_params()) params.push_back({name, t});

  std::string out = "muonlab bench | " + runtime_summary() + "\n";
  out += line("model: %lld parameters, micro-batch %lld x %lld tokens, precision %s, median of %d",
              static_cast<long long>(llama_param_count(cfg.model.llama)),
              static_cast<long long>(cfg.train.batch_size),
              static_cast<long long>(cfg.model.llama.seq_len), cfg.train.precision.c_str(),
              options.repeats);
  double fwd_bwd = bench_forward_backward(cfg, model, options.repeats);
  double tokens = static_cast<double>(cfg.train.batch_size * cfg.model.llama.seq_len);
  out += line("forward+backward: %.1f ms, %.0f tok/s, %.1f GFLOP/s (model FLOPs)\n", 1e3 * fwd_bwd,
              tokens / fwd_bwd, tokens * llama_flops_per_token(cfg.model.llama) / fwd_bwd / 1e9);
  out += bench_optimizers(cfg, params, fwd_bwd, options.repeats) + "\n";
  out += bench_newton_schulz(cfg, params, fwd_bwd, options.repeats);
  out += "\n" + bench_spectral_record(params, fwd_bwd, options.repeats);
  return out;
}

}  // namespace muonlab
