// The spectral record: per-matrix figures of weights and updates, by SVD or power iteration.
#include "src/train/spectral_recorder.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <utility>

#include "optim/spectral/power_iteration.h"

namespace muonlab {

using nlohmann::json;

json spectrum_json(const MatrixSpectrum& s) {
  return {{"stable_rank", s.stable_rank}, {"sigma_max", s.sigma_max}, {"fro_norm", s.fro_norm},
          {"eff_rank", s.eff_rank},       {"condition", s.condition}, {"rms", s.rms}};
}

SpectralRecorder::SpectralRecorder(std::string method, int64_t spectrum_every)
    : method_(std::move(method)), spectrum_every_(spectrum_every) {
  if (method_ != "svd" && method_ != "power")
    throw std::invalid_argument("train.spectral_method: unknown '" + method_ +
                                "'; use svd or power");
}

namespace {

// One matrix to measure: a weight, or its update `weight - before` (computed by the job itself, so
// the updates are not all held at once). Its figures go to `out`.
struct Job {
  std::string key;
  torch::Tensor weight, before;
  bool update = false;
  bool exact = false;
  std::vector<double>* values = nullptr;
  json* out = nullptr;
};

// Runs fn(i) for every i in [0, n) on LibTorch's threads, each index whole on one thread, taken in
// order from a shared counter. Whatever runs inside fn runs single-threaded (OpenMP does not nest;
// with one thread there is nothing to nest), so each result is the same whichever thread computed
// it and whatever the thread count. Every thread enters the region even when there are fewer
// jobs, so that a lone job is single-threaded too.
void run_each(int64_t n, const std::function<void(int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::max(at::get_num_threads(), 1), 1, [&](int64_t, int64_t) {
    torch::NoGradGuard no_grad;  // grad mode is per thread
    for (int64_t i = next++; i < n; i = next++) fn(i);
  });
}

}  // namespace

json SpectralRecorder::measure(const std::string& key, const torch::Tensor& matrix, bool exact,
                               std::vector<double>* values) {
  if (exact || method_ == "svd") return spectrum_json(matrix_spectrum(matrix, values));
  // The default tolerance (1e-4), the one `muonlab bench` measures too.
  const MatrixSpectrum s = matrix_spectrum_power(matrix, warm_start_.at(key));
  json figures = spectrum_json(s);
  figures["sigma_max_bound"] = s.sigma_max_bound;
  return figures;
}

json SpectralRecorder::record(const std::vector<NamedParam>& params,
                              const std::map<std::string, torch::Tensor>& before, int64_t step) {
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  const bool with_values = spectrum_every_ > 0 && step % spectrum_every_ == 0;
  std::vector<const NamedParam*> matrices_of;
  for (const auto& p : params) {
    if (p.param.dim() == 2) matrices_of.push_back(&p);
  }
  const size_t n = matrices_of.size();
  std::vector<std::vector<double>> values(n);
  std::vector<json> weight_figures(n), update_figures(n);  // update: null without `before`
  std::vector<Job> jobs;
  for (size_t i = 0; i < n; ++i) {
    const NamedParam& p = *matrices_of[i];
    jobs.push_back({p.name,
                    p.param.detach(),
                    {},
                    false,
                    with_values,
                    with_values ? &values[i] : nullptr,
                    &weight_figures[i]});
    auto it = before.find(p.name);
    if (it != before.end()) {
      jobs.push_back({p.name + ".update", p.param.detach(), it->second, true, with_values, nullptr,
                      &update_figures[i]});
    }
  }
  // Power iteration vectors are created here, not by the threads (the map is not thread-safe).
  if (method_ == "power")
    for (const Job& job : jobs) warm_start_[job.key];
  // Biggest first, so that the threads finish together.
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](const Job& a, const Job& b) { return a.weight.numel() > b.weight.numel(); });
  run_each(static_cast<int64_t>(jobs.size()), [&](int64_t i) {
    Job& job = jobs[i];
    const torch::Tensor matrix = job.update ? job.weight - job.before : job.weight;
    *job.out = measure(job.key, matrix, job.exact, job.values);
  });
  json matrices = json::array();
  for (size_t i = 0; i < n; ++i) {
    const NamedParam& p = *matrices_of[i];
    json m = std::move(weight_figures[i]);
    m["name"] = p.name;
    m["shape"] = {p.param.size(0), p.param.size(1)};
    if (with_values) m["singular_values"] = values[i];
    if (!update_figures[i].is_null()) m["update"] = std::move(update_figures[i]);
    matrices.push_back(std::move(m));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {{"kind", "spectral"},
          {"step", step},
          {"method", method_},
          {"seconds", seconds},
          {"matrices", matrices}};
}

}  // namespace muonlab
