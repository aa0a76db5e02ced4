// LLaMA-style decoder: token embedding, N pre-norm blocks (RMSNorm -> causal GQA self-attention
// with RoPE -> residual -> RMSNorm -> SwiGLU MLP -> residual), final RMSNorm, LM head (tied or
// untied). No biases. Init N(0, 0.02), residual output projections (wo, w2) scaled by
// 1/sqrt(2*n_layers). Parameter names are stable and readable, e.g. "blocks.3.attn.wq".
// It does not compute losses over data sets or own optimizers.
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "models/rope.h"

namespace muonlab {

struct LlamaConfig {
  int64_t vocab_size = 4096;
  int64_t d_model = 256;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 4;
  int64_t ffn_hidden = 0;  // 0 = round_up(8/3 * d_model, 64)
  int64_t seq_len = 128;
  bool tie_embeddings = false;
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  double init_std = 0.02;

  int64_t head_dim() const { return d_model / n_heads; }
  int64_t ffn_dim() const;  // resolved ffn_hidden
  // Throws std::invalid_argument naming the model.* key that is out of range.
  void validate() const;
};

// Closed-form parameter count of the model described by cfg.
int64_t llama_param_count(const LlamaConfig& cfg);
// Training FLOPs per token (forward + backward): 6*N_matmul + 12*L*T*C (attention), where
// N_matmul = L*(C*H*D + 2*C*Hkv*D + H*D*C + 3*C*F) + V*C counts every matmul weight including
// the LM head (V*C, tied or not) but not the embedding lookup, and T = seq_len (the causal mask
// is not discounted). 6 = 2 (forward multiply-add) + 4 (backward: input and weight gradients).
double llama_flops_per_token(const LlamaConfig& cfg);

class LlamaImpl : public torch::nn::Module {
 public:
  explicit LlamaImpl(const LlamaConfig& cfg);
  // idx (B, T) int64 -> logits (B, T, V)
  torch::Tensor forward(const torch::Tensor& idx);
  // Mean cross-entropy of next-token prediction; targets (B, T) int64.
  torch::Tensor loss(const torch::Tensor& idx, const torch::Tensor& targets);
  // Re-draws every weight from the init scheme using the current torch RNG.
  void reset_parameters();
  const LlamaConfig& config() const { return cfg_; }
  // All parameters with their stable names, in a fixed order.
  std::vector<std::pair<std::string, torch::Tensor>> named_params() const;

 private:
  LlamaConfig cfg_;
  Rope rope_;
  torch::Tensor tok_emb_;     // (V, C)
  torch::Tensor final_norm_;  // (C)
  torch::Tensor lm_head_;     // (V, C), undefined when tied
  struct Block {
    torch::Tensor attn_norm, wq, wk, wv, wo, mlp_norm, w1, w2, w3;
  };
  std::vector<Block> blocks_;
  torch::Tensor block_forward(const Block& b, const torch::Tensor& x);
};
TORCH_MODULE(Llama);

}  // namespace muonlab
