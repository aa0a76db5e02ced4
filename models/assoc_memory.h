// `model.kind: assoc_memory`: the linear softmax associative memory of the Muon theory paper.
// K query-answer pairs with fixed embeddings E, Ẽ (d x K, one column per item); queries fall into
// M frequency groups of C = K/M items with group mass ∝ i^-β; answers follow
// p(i|j) = (1-a)·1[i=j] + a/K. The trainable W (d x d) gives logits Z = ẼᵀWE (K x K, column j for
// query j) and p̂(·|j) = softmax(Z_·j). The loss is the p-weighted cross-entropy, either exactly
// (population: its gradient is Ẽ(Q-P)diag(p)Eᵀ) or on B queries drawn from p per micro-batch.
// Every step it reports per-bucket loss, excess loss over the closed-form optimum L* and accuracy,
// and at the end each bucket's steps to excess < τ and the tail/head ratio.
// With `coordinates: task` the trainable tensor is Ŵ = ẼᵀWE itself, so coordinate-wise optimizers
// (SignGD, Adam) act in the task basis: the reference's oracle "task-aligned SignGD".
// It does not implement optimizers, and its data is generated, never read from files.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/model.h"

namespace muonlab {

struct AssocMemoryConfig {
  int64_t K = 256;                              // query-answer pairs
  int64_t d = 0;                                // embedding dimension; 0 = K
  int64_t groups = 16;                          // M frequency groups of K/M items
  double zipf_exponent = 1.5;                   // β: group mass ∝ i^-β
  double label_noise = 0.0;                     // a
  std::string embedding = "random_orthogonal";  // identity | random_orthogonal | gaussian_unit |
                                                // gaussian_scaled
  std::string init = "zero";                    // zero | gaussian (N(0, 1/d))
  std::string grad_mode = "population";         // population | minibatch
  std::string dtype = "float64";                // float64 | float32
  std::string coordinates = "embedding";        // embedding (train W) | task (train ẼᵀWE)
  std::string buckets = "auto";  // groups | octaves (of group rank) | auto (groups if M <= 32)
  double threshold = 0.1;        // τ of steps-to-threshold, on bucket-mean excess loss

  int64_t dim() const { return d > 0 ? d : K; }
  // Throws std::invalid_argument naming the model.* key that is out of range.
  void validate() const;
};

// The optimum p-weighted cross-entropy: Σ_j p_j H(p(·|j)) = H for uniform label noise.
double assoc_optimal_loss(int64_t K, double label_noise);

class AssocMemory : public Model {
 public:
  // `batch_size`: queries per micro-batch in minibatch mode. Embeddings (and a gaussian init) are
  // drawn from `seed`.
  AssocMemory(const AssocMemoryConfig& config, int64_t batch_size, uint64_t seed);

  std::vector<std::pair<std::string, torch::Tensor>> named_params() const override;
  std::vector<std::string> describe() const override;
  torch::Tensor step_loss(int64_t step, int64_t micro, int64_t accum) override;
  int64_t items_per_micro() const override;
  std::string item_unit() const override { return "queries"; }
  Evaluation evaluate() override;
  std::vector<nlohmann::json> task_records(int64_t step, bool final) override;
  std::vector<std::string> final_summary() const override;
  nlohmann::json task_state() const override;
  void restore_task_state(const nlohmann::json& state) override;

  // The pieces, for tests and studies.
  torch::Tensor logits() const;             // Z = ẼᵀWE (K, K), column j = query j
  torch::Tensor population_loss() const;    // Σ_j p_j L_j (differentiable)
  torch::Tensor per_query_loss() const;     // L_j (K)
  torch::Tensor analytic_gradient() const;  // Ẽ(Q-P)diag(p)Eᵀ: d/dW of population_loss
  torch::Tensor task_matrix() const;        // ẼᵀWE, whichever tensor is trained
  const torch::Tensor& query_probs() const { return p_; }               // p_j (K)
  const torch::Tensor& embeddings() const { return E_; }                // E (d, K)
  const torch::Tensor& answer_embeddings() const { return E_answer_; }  // Ẽ (d, K)
  double optimal_loss() const { return optimal_loss_; }
  // The items of each bucket, head first.
  const std::vector<std::vector<int64_t>>& bucket_items() const { return buckets_; }

 private:
  torch::Tensor minibatch_loss(int64_t step, int64_t micro) const;
  nlohmann::json bucket_record(int64_t step);

  AssocMemoryConfig config_;
  int64_t batch_size_;
  uint64_t seed_;
  torch::Tensor E_, E_answer_;  // (d, K)
  torch::Tensor p_;             // (K) query probabilities
  torch::Tensor P_;             // (K, K) answer distribution, column j = p(·|j)
  torch::Tensor weight_;        // W (d, d), or Ŵ (K, K) in task coordinates
  double optimal_loss_ = 0;
  std::vector<std::vector<int64_t>> buckets_;
  std::vector<int64_t> steps_to_threshold_;  // per bucket; -1 = not reached yet
};

}  // namespace muonlab
