// The associative-memory model: its distribution, embeddings, population and minibatch losses,
// the closed-form optimum, and the per-bucket records with steps-to-threshold.
#include "models/assoc_memory.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "data/random_stream.h"

namespace muonlab {
namespace {

[[noreturn]] void fail(const std::string& key, const std::string& message) {
  throw std::invalid_argument("model." + key + ": " + message);
}

void require_one_of(const std::string& key, const std::string& value,
                    const std::vector<std::string>& allowed) {
  for (const auto& a : allowed)
    if (value == a) return;
  std::string list;
  for (size_t i = 0; i < allowed.size(); ++i)
    list += (i == 0 ? "" : i + 1 == allowed.size() ? " or " : ", ") + allowed[i];
  fail(key, "unknown '" + value + "'; use " + list);
}

at::Generator generator_for(uint64_t seed, uint64_t stream) {
  return at::make_generator<at::CPUGeneratorImpl>(splitmix64(splitmix64(seed) ^ stream));
}

torch::ScalarType scalar_type(const std::string& dtype) {
  return dtype == "float32" ? torch::kFloat : torch::kDouble;
}

// d x K embeddings, one column per item, drawn in fp64 from `gen`.
torch::Tensor make_embeddings(const AssocMemoryConfig& c, at::Generator gen) {
  const int64_t d = c.dim(), K = c.K;
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  if (c.embedding == "identity") return torch::eye(d, K, f64);
  torch::Tensor g = at::randn({d, K}, gen, f64);
  if (c.embedding == "random_orthogonal") return std::get<0>(at::linalg_qr(g));  // (d, K)
  if (c.embedding == "gaussian_unit") return g / g.norm(2, {0}, /*keepdim=*/true);
  return g / std::sqrt(static_cast<double>(d));  // gaussian_scaled: N(0, 1/d)
}

// Buckets of item indices, head first: the frequency groups, or octaves of group rank
// ({1}, {2, 3}, {4..7}, ...).
std::vector<std::vector<int64_t>> make_buckets(const AssocMemoryConfig& c) {
  const int64_t M = c.groups, C = c.K / c.groups;
  const bool octaves = c.buckets == "octaves" || (c.buckets == "auto" && M > 32);
  std::vector<std::vector<int64_t>> buckets;
  for (int64_t group = 0; group < M; ++group) {
    const bool new_bucket = !octaves || ((group + 1) & group) == 0;  // rank a power of two
    if (new_bucket) buckets.emplace_back();
    for (int64_t item = group * C; item < (group + 1) * C; ++item) buckets.back().push_back(item);
  }
  return buckets;
}

}  // namespace

void AssocMemoryConfig::validate() const {
  if (K < 2) fail("K", std::to_string(K) + " must be >= 2");
  if (d < 0) fail("d", std::to_string(d) + " must be >= 0 (0 = model.K)");
  if (groups < 1 || K % groups != 0)
    fail("groups", std::to_string(groups) + " must divide model.K " + std::to_string(K));
  if (!(zipf_exponent >= 0)) fail("zipf_exponent", "must be >= 0");
  if (!(label_noise >= 0 && label_noise < 1)) fail("label_noise", "must be in [0, 1)");
  require_one_of("embedding", embedding,
                 {"identity", "random_orthogonal", "gaussian_unit", "gaussian_scaled"});
  require_one_of("init", init, {"zero", "gaussian"});
  require_one_of("grad_mode", grad_mode, {"population", "minibatch"});
  require_one_of("dtype", dtype, {"float64", "float32"});
  require_one_of("coordinates", coordinates, {"embedding", "task"});
  require_one_of("buckets", buckets, {"auto", "groups", "octaves"});
  if (!(threshold > 0)) fail("threshold", "must be > 0");
  if (embedding == "identity" && dim() != K)
    fail("d", std::to_string(dim()) + " must equal model.K for identity embeddings (or be 0)");
  if (embedding == "random_orthogonal" && dim() < K)
    fail("d", std::to_string(dim()) + " must be >= model.K " + std::to_string(K) +
                  " for random_orthogonal embeddings");
  const bool orthonormal_square =
      dim() == K && (embedding == "identity" || embedding == "random_orthogonal");
  if (coordinates == "task" && !orthonormal_square)
    fail("coordinates",
         "task needs orthonormal square embeddings (identity or "
         "random_orthogonal with d = K)");
}

double assoc_optimal_loss(int64_t K, double a) {
  const double k = static_cast<double>(K);
  const double right = 1 - a + a / k, wrong = a / k;
  double h = -right * std::log(right);
  if (wrong > 0) h -= (k - 1) * wrong * std::log(wrong);
  return h + 0.0;  // no "-0" when noiseless
}

AssocMemory::AssocMemory(const AssocMemoryConfig& config, int64_t batch_size, uint64_t seed)
    : config_(config), batch_size_(batch_size), seed_(seed) {
  config_.validate();
  const int64_t K = config_.K, M = config_.groups, C = K / M, d = config_.dim();
  const auto type = scalar_type(config_.dtype);
  at::Generator gen = generator_for(seed, 0);
  E_ = make_embeddings(config_, gen);
  E_answer_ = make_embeddings(config_, gen);

  torch::Tensor rank = torch::arange(1, M + 1, torch::kDouble);
  torch::Tensor group_mass = rank.pow(-config_.zipf_exponent);
  group_mass /= group_mass.sum();
  p_ = group_mass.repeat_interleave(C) / static_cast<double>(C);
  const double a = config_.label_noise;
  P_ = torch::eye(K, torch::kDouble) * (1 - a) + a / static_cast<double>(K);
  optimal_loss_ = assoc_optimal_loss(K, a);

  torch::Tensor w0 = torch::zeros({d, d}, torch::kDouble);
  if (config_.init == "gaussian")
    w0 = at::randn({d, d}, gen, torch::TensorOptions().dtype(torch::kDouble)) /
         std::sqrt(static_cast<double>(d));
  if (config_.coordinates == "task") w0 = E_answer_.t().matmul(w0).matmul(E_);
  E_ = E_.to(type), E_answer_ = E_answer_.to(type), p_ = p_.to(type), P_ = P_.to(type);
  weight_ = w0.to(type).set_requires_grad(true);
  buckets_ = make_buckets(config_);
  steps_to_threshold_.assign(buckets_.size(), -1);
}

std::vector<std::pair<std::string, torch::Tensor>> AssocMemory::named_params() const {
  return {{config_.coordinates == "task" ? "W_task" : "W", weight_}};
}

std::vector<std::string> AssocMemory::describe() const {
  const double ratio = std::pow(static_cast<double>(config_.groups), config_.zipf_exponent);
  return {fmt::format(
      "model: assoc_memory, K {} pairs, d {}, {} groups of {} (zipf {}, p_max/p_min {:.4g}), "
      "label noise {}, {} embeddings, {} init, {} gradient{}, {}, {} coordinates; L* = {:.6g}; "
      "{} buckets",
      config_.K, config_.dim(), config_.groups, config_.K / config_.groups, config_.zipf_exponent,
      ratio, config_.label_noise, config_.embedding, config_.init, config_.grad_mode,
      config_.grad_mode == "minibatch" ? fmt::format(" ({} queries per micro-batch)", batch_size_)
                                       : "",
      config_.dtype, config_.coordinates, optimal_loss_, buckets_.size())};
}

torch::Tensor AssocMemory::task_matrix() const {
  // Identity embeddings: ẼᵀWE is W itself (the two products by I would be exact, and slow).
  if (config_.coordinates == "task" || config_.embedding == "identity") return weight_;
  return E_answer_.t().matmul(weight_).matmul(E_);
}

torch::Tensor AssocMemory::logits() const { return task_matrix(); }

torch::Tensor AssocMemory::per_query_loss() const {
  return -(P_ * torch::log_softmax(logits(), 0)).sum(0);
}

torch::Tensor AssocMemory::population_loss() const { return (p_ * per_query_loss()).sum(); }

torch::Tensor AssocMemory::analytic_gradient() const {
  torch::NoGradGuard no_grad;
  torch::Tensor residual = (torch::softmax(logits(), 0) - P_) * p_.unsqueeze(0);  // (K, K)
  if (config_.coordinates == "task" || config_.embedding == "identity") return residual;
  return E_answer_.matmul(residual).matmul(E_.t());
}

torch::Tensor AssocMemory::minibatch_loss(int64_t step, int64_t micro) const {
  // Stream 0 draws the embeddings; (step, micro) hash to a stream of their own.
  const uint64_t stream =
      splitmix64(splitmix64(static_cast<uint64_t>(step) + 1) ^ static_cast<uint64_t>(micro));
  at::Generator gen = generator_for(seed_, stream == 0 ? 1 : stream);
  torch::Tensor queries = at::multinomial(p_.to(torch::kDouble), batch_size_, true, gen);
  torch::Tensor answers = queries.clone();
  if (config_.label_noise > 0) {
    torch::Tensor noisy = at::rand({batch_size_}, gen, {}, torch::kDouble) < config_.label_noise;
    torch::Tensor uniform = at::randint(config_.K, {batch_size_}, gen);
    answers = torch::where(noisy, uniform, answers);
  }
  torch::Tensor columns = config_.coordinates == "task" || config_.embedding == "identity"
                              ? weight_.index_select(1, queries)
                              : E_answer_.t().matmul(weight_).matmul(E_.index_select(1, queries));
  return torch::nn::functional::cross_entropy(columns.t(), answers);  // (B, K) logits
}

torch::Tensor AssocMemory::step_loss(int64_t step, int64_t micro, int64_t accum) {
  if (config_.grad_mode == "population") return population_loss();
  return minibatch_loss(step, micro);
}

int64_t AssocMemory::items_per_micro() const {
  return config_.grad_mode == "population" ? config_.K : batch_size_;
}

Evaluation AssocMemory::evaluate() {
  torch::NoGradGuard no_grad;
  torch::Tensor z = logits();
  const double loss = (p_ * per_query_loss()).sum().item<double>();
  torch::Tensor wrong = (z.argmax(0) != torch::arange(config_.K)).to(p_.scalar_type());
  const double error = (p_ * wrong).sum().item<double>();
  Evaluation e;
  e.fields = {{"loss", loss}, {"excess", loss - optimal_loss_}, {"error", error}};
  e.summary = fmt::format("excess {:.4e} | error {:.4f}", loss - optimal_loss_, error);
  return e;
}

nlohmann::json AssocMemory::bucket_record(int64_t step) {
  torch::NoGradGuard no_grad;
  torch::Tensor z = logits();
  torch::Tensor losses = per_query_loss();
  torch::Tensor correct = (z.argmax(0) == torch::arange(config_.K)).to(torch::kDouble);
  const auto loss_of = losses.to(torch::kDouble).contiguous();
  const double* L = loss_of.data_ptr<double>();
  const double* acc = correct.data_ptr<double>();
  const auto probs = p_.to(torch::kDouble).contiguous();
  const double* p = probs.data_ptr<double>();

  nlohmann::json list = nlohmann::json::array();
  double total = 0, error = 0;
  for (int64_t j = 0; j < config_.K; ++j) total += p[j] * L[j], error += p[j] * (1 - acc[j]);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    double loss = 0, accuracy = 0, mass = 0;
    for (int64_t j : buckets_[b]) loss += L[j], accuracy += acc[j], mass += p[j];
    const double n = static_cast<double>(buckets_[b].size());
    loss /= n, accuracy /= n;
    const double excess = loss - optimal_loss_;
    if (steps_to_threshold_[b] < 0 && excess < config_.threshold) steps_to_threshold_[b] = step;
    list.push_back({{"items", buckets_[b].size()},
                    {"mass", mass},
                    {"loss", loss},
                    {"excess", excess},
                    {"accuracy", accuracy}});
  }
  return {{"kind", "buckets"},
          {"step", step},
          {"loss", total},
          {"excess", total - optimal_loss_},
          {"error", error},
          {"head_error", 1 - list.front()["accuracy"].get<double>()},
          {"tail_error", 1 - list.back()["accuracy"].get<double>()},
          {"buckets", list}};
}

std::vector<nlohmann::json> AssocMemory::task_records(int64_t step, bool final) {
  nlohmann::json record = bucket_record(step);
  if (final) {
    nlohmann::json steps = nlohmann::json::array();
    for (int64_t s : steps_to_threshold_)
      steps.push_back(s < 0 ? nlohmann::json() : nlohmann::json(s));
    const int64_t head = steps_to_threshold_.front(), tail = steps_to_threshold_.back();
    record["threshold"] = config_.threshold;
    record["threshold_on"] = "excess";
    record["steps_to_threshold"] = steps;
    record["tail_head_ratio"] =
        head > 0 && tail >= 0 ? nlohmann::json(static_cast<double>(tail) / head) : nlohmann::json();
  }
  return {record};
}

std::vector<std::string> AssocMemory::final_summary() const {
  std::string steps;
  for (int64_t s : steps_to_threshold_)
    steps += (steps.empty() ? "" : " ") + (s < 0 ? "-" : std::to_string(s));
  const int64_t head = steps_to_threshold_.front(), tail = steps_to_threshold_.back();
  return {fmt::format(
      "steps to bucket excess < {} (head first; - = not reached): {}; tail/head {}",
      config_.threshold, steps,
      head > 0 && tail >= 0 ? fmt::format("{:.2f}", static_cast<double>(tail) / head) : "n/a")};
}

nlohmann::json AssocMemory::task_state() const {
  return {{"steps_to_threshold", steps_to_threshold_}};
}

void AssocMemory::restore_task_state(const nlohmann::json& state) {
  if (state.is_null()) return;
  auto steps = state.at("steps_to_threshold").get<std::vector<int64_t>>();
  if (steps.size() != steps_to_threshold_.size())
    throw std::runtime_error("checkpoint: assoc_memory state has " + std::to_string(steps.size()) +
                             " buckets, the model has " +
                             std::to_string(steps_to_threshold_.size()));
  steps_to_threshold_ = steps;
}

}  // namespace muonlab
