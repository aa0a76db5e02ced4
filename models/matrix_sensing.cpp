// The matrix-sensing model: target, measurements, loss and the per-step spectrum record.
#include "models/matrix_sensing.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace muonlab {
namespace {

[[noreturn]] void fail(const std::string& key, const std::string& message) {
  throw std::invalid_argument("model." + key + ": " + message);
}

// Q of the QR of a rows x cols Gaussian: cols orthonormal columns.
torch::Tensor random_orthonormal(int64_t rows, int64_t cols, at::Generator& gen) {
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  return std::get<0>(at::linalg_qr(at::randn({rows, cols}, gen, f64)));
}

}  // namespace

void MatrixSensingConfig::validate() const {
  if (m < 1) fail("m", std::to_string(m) + " must be >= 1");
  if (n < 1) fail("n", std::to_string(n) + " must be >= 1");
  if (rank < 1 || rank > std::min(m, n))
    fail("rank", std::to_string(rank) + " must be in [1, min(model.m, model.n)]");
  if (measurements < 1) fail("measurements", std::to_string(measurements) + " must be >= 1");
  if (!(init_scale >= 0)) fail("init_scale", "must be >= 0");
  if (dtype != "float64" && dtype != "float32")
    fail("dtype", "unknown '" + dtype + "'; use float64 or float32");
}

namespace {

// H(s / sum s) / ln(length) of singular values s (0 if they are all zero).
double entropy_of_singular_values(const torch::Tensor& s, int64_t length) {
  const double total = s.sum().item<double>();
  if (!(total > 0)) return 0;
  torch::Tensor q = s / total;
  q = q.masked_select(q > 1e-300);
  const double entropy = -(q * q.log()).sum().item<double>();
  return entropy / std::log(static_cast<double>(length));
}

}  // namespace

double normalised_spectral_entropy(const torch::Tensor& w) {
  return entropy_of_singular_values(at::linalg_svdvals(w.detach().to(torch::kDouble)),
                                    std::min(w.size(0), w.size(1)));
}

MatrixSensing::MatrixSensing(const MatrixSensingConfig& config, uint64_t seed) : config_(config) {
  config_.validate();
  const auto type = config_.dtype == "float32" ? torch::kFloat : torch::kDouble;
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t m = config_.m, n = config_.n, p = config_.measurements;
  torch::Tensor u = random_orthonormal(m, config_.rank, gen);
  torch::Tensor v = random_orthonormal(n, config_.rank, gen);
  target_ = u.matmul(v.t());  // singular values all 1
  A_ = at::randn({p, m * n}, gen, f64) / std::sqrt(static_cast<double>(p));
  b_ = A_.matmul(target_.reshape({m * n}));
  torch::Tensor w0 = at::randn({m, n}, gen, f64) * config_.init_scale;
  A_ = A_.to(type), b_ = b_.to(type), target_ = target_.to(type);
  weight_ = w0.to(type).set_requires_grad(true);
}

std::vector<std::pair<std::string, torch::Tensor>> MatrixSensing::named_params() const {
  return {{"W", weight_}};
}

std::vector<std::string> MatrixSensing::describe() const {
  const double unknowns = static_cast<double>(config_.m * config_.n);
  return {
      fmt::format("model: matrix_sensing, W {} x {}, target rank {}, {} measurements ({} "
                  "unknowns: {}), init scale {}, {}",
                  config_.m, config_.n, config_.rank, config_.measurements, unknowns,
                  config_.measurements < unknowns ? "underdetermined" : "determined",
                  config_.init_scale, config_.dtype)};
}

torch::Tensor MatrixSensing::loss() const {
  torch::Tensor residual = A_.matmul(weight_.reshape({-1})) - b_;
  return residual.square().sum() / (2.0 * static_cast<double>(config_.measurements));
}

torch::Tensor MatrixSensing::step_loss(int64_t, int64_t, int64_t) { return loss(); }

Evaluation MatrixSensing::evaluate() {
  torch::NoGradGuard no_grad;
  const double value = loss().item<double>();
  const double distance = ((weight_ - target_).norm() / target_.norm()).item<double>();
  return {{{"loss", value}, {"distance", distance}},
          fmt::format("||W - W*|| / ||W*|| {:.4f}", distance)};
}

std::vector<nlohmann::json> MatrixSensing::task_records(int64_t step, bool) {
  torch::NoGradGuard no_grad;
  torch::Tensor s = at::linalg_svdvals(weight_.detach().to(torch::kDouble));
  const double top = s.max().item<double>();
  const double stable_rank = top > 0 ? s.square().sum().item<double>() / (top * top) : 0;
  return {{{"kind", "sensing"},
           {"step", step},
           {"loss", loss().item<double>()},
           {"entropy", entropy_of_singular_values(s, std::min(config_.m, config_.n))},
           {"stable_rank", stable_rank},
           {"distance", ((weight_ - target_).norm() / target_.norm()).item<double>()}}};
}

}  // namespace muonlab
