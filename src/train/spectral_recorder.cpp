// The spectral record: per-matrix figures of weights and updates, by SVD or power iteration.
#include "src/train/spectral_recorder.h"

#include <chrono>
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

json SpectralRecorder::measure(const std::string& key, const torch::Tensor& matrix, bool exact,
                               std::vector<double>* values) {
  if (exact || method_ == "svd") return spectrum_json(matrix_spectrum(matrix, values));
  // The default tolerance (1e-4), the one `muonlab bench` measures too.
  const MatrixSpectrum s = matrix_spectrum_power(matrix, warm_start_[key]);
  json figures = spectrum_json(s);
  figures["sigma_max_bound"] = s.sigma_max_bound;
  return figures;
}

json SpectralRecorder::record(const std::vector<NamedParam>& params,
                              const std::map<std::string, torch::Tensor>& before, int64_t step) {
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  const bool with_values = spectrum_every_ > 0 && step % spectrum_every_ == 0;
  json matrices = json::array();
  for (const auto& p : params) {
    if (p.param.dim() != 2) continue;
    const torch::Tensor weight = p.param.detach();
    std::vector<double> values;
    json m = measure(p.name, weight, with_values, with_values ? &values : nullptr);
    m["name"] = p.name;
    m["shape"] = {p.param.size(0), p.param.size(1)};
    if (with_values) m["singular_values"] = values;
    auto it = before.find(p.name);
    if (it != before.end())
      m["update"] = measure(p.name + ".update", weight - it->second, with_values, nullptr);
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
