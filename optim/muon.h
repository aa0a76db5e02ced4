// Muon for hidden 2-D matrices: EMA momentum m = beta m + (1-beta) g (in fp32, or fp64 for fp64
// parameters; beta = the group's current, possibly scheduled, momentum), Nesterov blend u =
// (1-beta) g + beta m, orthogonalisation O of u (Newton-Schulz, or the exact polar factor),
// decoupled weight decay W <- W (1 - lr wd) (with cautious_wd only where O * W >= 0), then W <- W -
// lr * scale(shape) * O, with scale "keller" sqrt(max(1, rows/cols)), "match_rms_adamw" 0.2
// sqrt(max(rows, cols)) or "none". With neuron_norm this is NorMuon (kind "normuon"): O is
// normalised per output row by an EMA of its mean square (V = b2 V + (1-b2) mean_cols(O^2), O' = O
// / (sqrt V + 1e-10)) and rescaled to
// ||O||_F before the shape factor.
// Embeddings, head and gains belong to an AdamW group (see registry.h), never here.
#pragma once
#include "optim/newton_schulz.h"
#include "optim/optimizer.h"

namespace muonlab {

struct MuonOptions {
  double lr = 0.02;
  double momentum = 0.95;
  bool nesterov = true;
  double weight_decay = 0.0;
  std::string ns_coefficients = "keller";
  int ns_steps = 5;
  bool ns_bf16 = true;
  std::string lr_scale = "keller";               // keller | match_rms_adamw | none
  std::string orthogonalizer = "newton_schulz";  // newton_schulz | exact (U V^T from an SVD)
  bool cautious_wd = false;                      // decay only entries where update * param >= 0
  // NorMuon: after orthogonalisation, divide each output row by the root of an EMA (beta2) of its
  // mean square, then rescale to the orthogonalised update's Frobenius norm.
  bool neuron_norm = false;
  double beta2 = 0.95;
};

// Singular values at or below this fraction of sigma_max count as zero in exact_polar_factor.
constexpr double kPolarRankTolerance = 1e-10;

// The polar factor U V^T of each matrix in g (..., m, n), via an SVD in fp64, over the singular
// directions above kPolarRankTolerance * sigma_max (for reference runs and theory experiments;
// Newton-Schulz approximates it).
torch::Tensor exact_polar_factor(const torch::Tensor& g);

// The shape factor the update is multiplied by; throws std::invalid_argument on unknown kind.
double muon_lr_scale(const std::string& kind, int64_t rows, int64_t cols);

class Muon : public Optimizer {
 public:
  // Every param must be 2-D; throws std::invalid_argument naming the offender otherwise.
  Muon(std::string group_name, std::vector<NamedParam> params, const MuonOptions& options);
  std::string kind() const override { return options_.neuron_norm ? "normuon" : "muon"; }
  void step() override;

 private:
  MuonOptions options_;
  NsSchedule schedule_;
  torch::Tensor normalize_rows(size_t index, const torch::Tensor& update);
  std::vector<torch::Tensor> momentum_;      // parallel to groups_[0].params
  std::vector<torch::Tensor> row_variance_;  // (rows, 1) each, NorMuon only
};

}  // namespace muonlab
