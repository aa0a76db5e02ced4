// Benchmark of the training step, optimizer steps, Newton-Schulz and the spectral record for
// one config, as text and as one JSON object.
#include "src/bench/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <utility>

#include "optim/adamw.h"
#include "optim/newton_schulz.h"
#include "optim/registry.h"
#include "optim/spectral/power_iteration.h"
#include "optim/spectral/spectral.h"
#include "src/bench/op_profile.h"
#include "src/bench/shape_peaks.h"
#include "src/bench/step_bench.h"
#include "src/runtime.h"
#include "src/train/precision.h"
#include "src/train/spectral_recorder.h"

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

// One forward+backward of a random micro-batch: fills every parameter's gradient.
void fill_gradients(const RunConfig& cfg, Llama& model) {
  auto shape = std::vector<int64_t>{cfg.train.batch_size, cfg.model.llama.seq_len};
  Batch batch{torch::randint(0, cfg.model.llama.vocab_size, shape, torch::kLong),
              torch::randint(0, cfg.model.llama.vocab_size, shape, torch::kLong)};
  model->zero_grad();
  model_loss(*model, batch, cfg.train.precision).backward();
}

int64_t element_count(const std::vector<NamedParam>& params) {
  int64_t n = 0;
  for (const auto& p : params) n += p.param.numel();
  return n;
}

std::string bench_optimizers(const RunConfig& cfg, const std::vector<NamedParam>& params,
                             double fwd_bwd, int repeats, nlohmann::json& out_json) {
  std::string out = line("%-10s %10s %12s %10s", "optimizer", "step ms", "vs fwd+bwd", "ns/param");
  const double elements = static_cast<double>(element_count(params));
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
    out += line("%-10s %10.2f %11.1f%% %10.2f", kind.c_str(), 1e3 * seconds,
                100 * seconds / fwd_bwd, 1e9 * seconds / elements);
    out_json[kind] = {{"step_s", seconds}, {"ns_per_param", 1e9 * seconds / elements}};
  }
  // The same AdamW update in separate tensor ops, the baseline of the single-pass kernel.
  AdamWOptions unfused;
  unfused.fused = false;
  AdamW reference("adamw", params, unfused);
  std::vector<torch::Tensor> saved;
  for (const auto& p : params) saved.push_back(p.param.detach().clone());
  const double seconds = median_seconds(repeats, [&] { reference.step(); });
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) params[i].param.copy_(saved[i]);
  }
  out += line("%-10s %10.2f %11.1f%% %10.2f", "adamw-ops", 1e3 * seconds, 100 * seconds / fwd_bwd,
              1e9 * seconds / elements);
  out_json["adamw_tensor_ops"] = {{"step_s", seconds}, {"ns_per_param", 1e9 * seconds / elements}};
  return out;
}

double ns_flops(int64_t rows, int64_t cols, int64_t count, int steps) {
  const double m = static_cast<double>(std::min(rows, cols));
  const double n = static_cast<double>(std::max(rows, cols));
  return static_cast<double>(count) * steps * (4 * m * m * n + 2 * m * m * m);
}

std::string bench_newton_schulz(const RunConfig& cfg, const std::vector<NamedParam>& params,
                                double fwd_bwd, int repeats, nlohmann::json& out_json) {
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
    out_json["shapes"].push_back({{"shape", name},
                                  {"count", count},
                                  {"bf16_batched_s", bf16_batched},
                                  {"bf16_one_by_one_s", bf16_single},
                                  {"fp32_batched_s", fp32_batched},
                                  {"flops", flops}});
    out += line("%-12s %5lld %9.2fms %9.2fms %9.2fms %9.0f %9.0f", name.c_str(),
                static_cast<long long>(count), 1e3 * bf16_batched, 1e3 * bf16_single,
                1e3 * fp32_batched, flops / bf16_batched / 1e9, flops / fp32_batched / 1e9);
  }
  out_json["total_bf16_batched_s"] = total_bf16;
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

// Cost of one spectral record of the weights: exact figures (matrix_spectrum: Gram eigenvalues or
// SVD) against power iteration from cold starts and from the vectors of the previous record (warm,
// after a small perturbation of the weights). The warm timing restarts from the same vectors on
// every repeat.
std::string bench_spectral_record(const std::vector<NamedParam>& params, double fwd_bwd,
                                  int repeats, nlohmann::json& out_json) {
  const std::vector<torch::Tensor> matrices = spectral_matrices(params);
  const std::vector<torch::Tensor> next = perturbed(matrices);
  const size_t n = matrices.size();
  std::vector<torch::Tensor> previous(n);
  const std::pair<int, int> cold_iterations = power_iterations(matrices, previous);
  const double exact = median_seconds(repeats, [&] {
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
  // The trainer's whole exact record: weights and this step's updates, side by side on the threads.
  std::vector<NamedParam> next_params;
  std::map<std::string, torch::Tensor> before;
  for (size_t i = 0, k = 0; i < params.size(); ++i) {
    if (params[i].param.dim() != 2) continue;
    next_params.push_back({params[i].name, next[k]});
    before[params[i].name] = matrices[k++];
  }
  SpectralRecorder recorder("svd", 0);
  const double record = median_seconds(repeats, [&] { recorder.record(next_params, before, 1); });
  out_json = {{"matrices", n},
              {"exact_s", exact},
              {"power_cold_s", cold},
              {"power_warm_s", warm},
              {"record_exact_s", record}};
  std::vector<torch::Tensor> warm_vectors = previous;
  const std::pair<int, int> warm_iterations = power_iterations(next, warm_vectors);
  std::string out = line(
      "spectral record (%zu matrices): exact %.2f ms, power cold %.2f ms, "
      "power warm %.2f ms (median of %d)",
      n, 1e3 * exact, 1e3 * cold, 1e3 * warm, repeats);
  out += line(
      "  vs fwd+bwd: %.1f%% / %.1f%% / %.1f%%; power iterations: cold %d (%d unconverged), "
      "warm %d (%d unconverged)",
      100 * exact / fwd_bwd, 100 * cold / fwd_bwd, 100 * warm / fwd_bwd, cold_iterations.first,
      cold_iterations.second, warm_iterations.first, warm_iterations.second);
  out += line("  warm power sigma_max vs exact: largest relative deviation %.1e",
              largest_sigma_deviation(next, previous));
  out += line(
      "  the trainer's exact record (weights and updates, matrices side by side on %d "
      "threads): %.2f ms = %.1f%% of fwd+bwd",
      at::get_num_threads(), 1e3 * record, 100 * record / fwd_bwd);
  return out;
}

void progress(const std::string& what) { std::cerr << "bench: " << what << "\n" << std::flush; }

nlohmann::json runtime_json(const RunConfig& cfg) {
  nlohmann::json j = {{"kind", "bench"}};
  j.update(runtime_fields());
  j["precision"] = cfg.train.precision;
  j["optimizer"] = cfg.optim.kind;
  return j;
}

nlohmann::json model_json(const RunConfig& cfg) {
  const LlamaConfig& m = cfg.model.llama;
  return {{"vocab_size", m.vocab_size},    {"d_model", m.d_model},
          {"n_layers", m.n_layers},        {"n_heads", m.n_heads},
          {"n_kv_heads", m.n_kv_heads},    {"ffn_dim", m.ffn_dim()},
          {"seq_len", m.seq_len},          {"batch_size", cfg.train.batch_size},
          {"params", llama_param_count(m)}};
}

void add_step_json(nlohmann::json& j, const RunConfig& cfg, const StepTiming& step,
                   const ModelGemmPeaks& peaks, int64_t peak_rss, int64_t state_bytes) {
  const double tokens = static_cast<double>(cfg.train.batch_size * cfg.model.llama.seq_len);
  const double flops_per_token = llama_flops_per_token(cfg.model.llama);
  const double gflops = tokens * flops_per_token / step.step_s / 1e9;
  j["repeats"] = step.repeats;
  j["warmup"] = step.warmup;
  j["tokens_per_step"] = tokens;
  j["step_s"] = step.step_s;
  j["tokens_per_s"] = tokens / step.step_s;
  j["split_s"] = {{"data", step.data_s},
                  {"forward", step.forward_s},
                  {"backward", step.backward_s},
                  {"optimizer", step.optimizer_s}};
  j["flops_per_token"] = flops_per_token;
  j["gflops"] = gflops;
  j["gemm_peak_gflops"] = {{"fp32", peaks.fp32_gflops}, {"bf16", peaks.bf16_gflops}};
  j["mfu"] = {{"fp32", gflops / peaks.fp32_gflops}, {"bf16", gflops / peaks.bf16_gflops}};
  nlohmann::json shapes = nlohmann::json::array();
  for (const MatmulShape& s : peaks.shapes)
    shapes.push_back({{"name", s.name},
                      {"batch", s.batch},
                      {"m", s.m},
                      {"k", s.k},
                      {"n", s.n},
                      {"count", s.count},
                      {"fp32_gflops", s.fp32_gflops},
                      {"bf16_gflops", s.bf16_gflops}});
  j["gemm_shapes"] = shapes;
  j["peak_rss_bytes"] = peak_rss;
  j["optimizer_state_bytes"] = state_bytes;
  j["param_bytes"] = llama_param_count(cfg.model.llama) * 4;
}

std::string step_text(const nlohmann::json& j, const ModelGemmPeaks& peaks) {
  const nlohmann::json& m = j["model"];
  const nlohmann::json& split = j["split_s"];
  const double step = j["step_s"];
  auto ms = [](const nlohmann::json& v) { return 1e3 * v.get<double>(); };
  auto share = [&](const char* key) { return 100 * split[key].get<double>() / step; };
  std::string out = "muonlab bench | " + runtime_summary() + "\n";
  out += line("model: %lld parameters, micro-batch %lld x %lld tokens, precision %s, %s",
              static_cast<long long>(m["params"]), static_cast<long long>(m["batch_size"]),
              static_cast<long long>(m["seq_len"]), j["precision"].get<std::string>().c_str(),
              j["optimizer"].get<std::string>().c_str());
  out +=
      line("training step: %.1f ms, %.0f tok/s (median of %d after %d warm-up steps)", 1e3 * step,
           j["tokens_per_s"].get<double>(), j["repeats"].get<int>(), j["warmup"].get<int>());
  out += line(
      "  data %.2f ms (%.1f%%) | forward %.1f ms (%.1f%%) | backward %.1f ms (%.1f%%) | "
      "optimizer %.1f ms (%.1f%%)",
      ms(split["data"]), share("data"), ms(split["forward"]), share("forward"),
      ms(split["backward"]), share("backward"), ms(split["optimizer"]), share("optimizer"));
  out += line(
      "  %.3g model FLOPs/token, %.1f GFLOP/s; MFU %.1f%% of fp32 GEMM peak %.0f, "
      "%.1f%% of bf16 peak %.0f (at the model's shapes)",
      j["flops_per_token"].get<double>(), j["gflops"].get<double>(),
      100 * j["mfu"]["fp32"].get<double>(), peaks.fp32_gflops, 100 * j["mfu"]["bf16"].get<double>(),
      peaks.bf16_gflops);
  out += line("  peak resident memory %.1f MiB; optimizer state %.1f MiB; parameters %.1f MiB",
              j["peak_rss_bytes"].get<double>() / (1 << 20),
              j["optimizer_state_bytes"].get<double>() / (1 << 20),
              j["param_bytes"].get<double>() / (1 << 20));
  out += line("%-22s %16s %6s %10s %10s", "matmul (batch x m,k,n)", "", "count", "fp32 GF/s",
              "bf16 GF/s");
  for (const MatmulShape& s : peaks.shapes) {
    const std::string dims = std::to_string(s.batch) + " x " + std::to_string(s.m) + "," +
                             std::to_string(s.k) + "," + std::to_string(s.n);
    out += line("  %-20s %16s %6lld %10.0f %10.0f", s.name.c_str(), dims.c_str(),
                static_cast<long long>(s.count), s.fp32_gflops, s.bf16_gflops);
  }
  return out;
}

// "autograd::engine::evaluate_function: MmBackward0" -> "backward MmBackward0".
std::string short_op_name(const std::string& name) {
  const std::string engine = "autograd::engine::evaluate_function: ";
  if (name.rfind(engine, 0) == 0) return "backward " + name.substr(engine.size());
  return name;
}

// The per-operator profile of `runs` training steps: the top rows as text, every row as JSON.
std::string profile_section(TrainingStep& step, int runs, int top, nlohmann::json& out) {
  const OpProfile profile = profile_ops([&] { step.run(); }, runs);
  const double per_run = 1.0 / profile.runs;
  double self_sum = 0;
  out = {{"runs", profile.runs},
         {"wall_s", profile.wall_s * per_run},
         {"ops", nlohmann::json::array()}};
  for (const OpProfileRow& r : profile.rows) {
    self_sum += r.self_s;
    out["ops"].push_back({{"name", r.name},
                          {"calls", static_cast<double>(r.calls) * per_run},
                          {"self_s", r.self_s * per_run},
                          {"total_s", r.total_s * per_run}});
  }
  std::string text = line(
      "where the time goes: %.1f ms per step (profiled, %d step%s); %.1f%% of it inside "
      "operators; top %d by self time:",
      1e3 * profile.wall_s * per_run, profile.runs, profile.runs == 1 ? "" : "s",
      100 * self_sum / profile.wall_s, top);
  text += line("  %9s %6s %7s  %s", "self ms", "share", "calls", "operator");
  for (size_t i = 0; i < profile.rows.size() && static_cast<int>(i) < top; ++i) {
    const OpProfileRow& r = profile.rows[i];
    text +=
        line("  %9.2f %5.1f%% %7.0f  %s", 1e3 * r.self_s * per_run, 100 * r.self_s / profile.wall_s,
             static_cast<double>(r.calls) * per_run, short_op_name(r.name).c_str());
  }
  return text;
}

}  // namespace

BenchReport run_bench(const RunConfig& cfg, const BenchOptions& options) {
  configure_threads(cfg.threads);
  torch::manual_seed(static_cast<uint64_t>(cfg.seed));
  if (cfg.model.kind != "llama")
    throw std::runtime_error("bench: measures llama models; model.kind is " + cfg.model.kind);
  const LlamaConfig& mc = cfg.model.llama;
  Llama model(mc);
  std::vector<NamedParam> params;
  for (auto& [name, t] : model->named_params()) params.push_back({name, t});
  auto optimizer = build_optimizer(cfg.optim, params);

  BenchReport report;
  nlohmann::json& j = report.json;
  j = runtime_json(cfg);
  j["model"] = model_json(cfg);
  if (cfg.train.precision == "bf16" && !bf16_matmul_warning().empty())
    progress("warning: " + bf16_matmul_warning());
  progress("timing " + std::to_string(options.warmup) + " + " + std::to_string(options.repeats) +
           " training steps");
  TrainingStep training_step(cfg, *model, params, *optimizer);
  const StepTiming step = time_training_step(training_step, options.repeats, options.warmup);
  const int64_t peak_rss = peak_resident_bytes();  // before the other sections allocate
  progress("timing the model's matmul shapes in fp32 and bf16");
  const ModelGemmPeaks peaks = measure_model_gemm_peaks(mc, cfg.train.batch_size, 3);
  add_step_json(j, cfg, step, peaks, peak_rss, optimizer->state_bytes());
  report.text = step_text(j, peaks);
  if (options.profile_steps > 0) {
    progress("profiling " + std::to_string(options.profile_steps) + " training step(s)");
    report.text += "\n" + profile_section(training_step, options.profile_steps, options.profile_top,
                                          j["profile"]);
  }
  if (options.step_only) return report;

  const double fwd_bwd = step.forward_s + step.backward_s;
  progress("timing every optimizer kind");
  fill_gradients(cfg, model);
  report.text += "\n" + bench_optimizers(cfg, params, fwd_bwd, options.repeats, j["optimizers"]);
  progress("timing Newton-Schulz");
  report.text +=
      "\n" + bench_newton_schulz(cfg, params, fwd_bwd, options.repeats, j["newton_schulz"]);
  progress("timing the spectral record");
  report.text += "\n" + bench_spectral_record(params, fwd_bwd, options.repeats, j["spectral"]);
  return report;
}

}  // namespace muonlab
