// LLaMA-style decoder: config validation, closed-form size/FLOP counts, parameter registration
// under stable dotted names, init scheme and the forward pass (embedding -> blocks -> head).
#include "models/llama.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "models/attention.h"
#include "models/kernels/cross_entropy.h"
#include "models/kernels/dense.h"
#include "models/kernels/rms_norm.h"
#include "models/kernels/swiglu.h"

namespace muonlab {
namespace {

[[noreturn]] void fail(const std::string& key, const std::string& message) {
  throw std::invalid_argument("model." + key + ": " + message);
}

template <typename T>
void require_positive(const std::string& key, T value) {
  if (!(value > 0)) {
    std::ostringstream os;
    os << value << " must be > 0";
    fail(key, os.str());
  }
}

// A plain module used only to hold parameters under a name (e.g. "attn", "mlp", "0").
std::shared_ptr<torch::nn::Module> make_holder() { return std::make_shared<torch::nn::Module>(); }

}  // namespace

int64_t LlamaConfig::ffn_dim() const {
  if (ffn_hidden > 0) return ffn_hidden;
  const int64_t raw = 8 * d_model / 3;
  return (raw + 63) / 64 * 64;
}

void LlamaConfig::validate() const {
  if (vocab_size < 2) fail("vocab_size", std::to_string(vocab_size) + " must be >= 2");
  require_positive("d_model", d_model);
  require_positive("n_layers", n_layers);
  require_positive("n_heads", n_heads);
  require_positive("n_kv_heads", n_kv_heads);
  if (ffn_hidden < 0) {
    fail("ffn_hidden",
         std::to_string(ffn_hidden) + " must be >= 0 (0 = round_up(8/3*d_model, 64))");
  }
  if (seq_len < 1) fail("seq_len", std::to_string(seq_len) + " must be >= 1");
  require_positive("rope_theta", rope_theta);
  require_positive("norm_eps", norm_eps);
  require_positive("init_std", init_std);
  if (d_model % n_heads != 0) {
    fail("n_heads", std::to_string(n_heads) + " does not divide model.d_model " +
                        std::to_string(d_model) + "; pick a divisor");
  }
  if (n_heads % n_kv_heads != 0) {
    fail("n_kv_heads", std::to_string(n_kv_heads) + " does not divide model.n_heads " +
                           std::to_string(n_heads) + "; n_heads must be a multiple of n_kv_heads");
  }
  if (head_dim() % 2 != 0) {
    fail("n_heads", "head dim model.d_model/model.n_heads = " + std::to_string(head_dim()) +
                        " must be even for RoPE; pick n_heads so that it is");
  }
}

int64_t llama_param_count(const LlamaConfig& cfg) {
  const int64_t V = cfg.vocab_size, C = cfg.d_model, L = cfg.n_layers;
  const int64_t HD = cfg.n_heads * cfg.head_dim(), KD = cfg.n_kv_heads * cfg.head_dim();
  const int64_t F = cfg.ffn_dim();
  const int64_t per_block = 2 * C + C * HD + 2 * C * KD + HD * C + 3 * C * F;
  return V * C + L * per_block + C + (cfg.tie_embeddings ? 0 : V * C);
}

// 6 FLOPs per matmul weight per token (2 forward + 4 backward) over every matmul weight: the
// block projections and the LM head (V*C, tied or not; the embedding lookup is not a matmul),
// plus attention scores and weighted sum: 2 matmuls * 2 FLOPs * 3 (fwd+bwd) * L * T * C
// = 12*L*T*C with T = seq_len (causal masking is not discounted).
double llama_flops_per_token(const LlamaConfig& cfg) {
  const double V = cfg.vocab_size, C = cfg.d_model, L = cfg.n_layers, T = cfg.seq_len;
  const double HD = static_cast<double>(cfg.n_heads * cfg.head_dim());
  const double KD = static_cast<double>(cfg.n_kv_heads * cfg.head_dim());
  const double F = static_cast<double>(cfg.ffn_dim());
  const double matmul_params = L * (C * HD + 2 * C * KD + HD * C + 3 * C * F) + V * C;
  return 6 * matmul_params + 12 * L * T * C;
}

LlamaImpl::LlamaImpl(const LlamaConfig& cfg) : cfg_(cfg) {
  cfg_.validate();
  const int64_t V = cfg_.vocab_size, C = cfg_.d_model, D = cfg_.head_dim();
  const int64_t HD = cfg_.n_heads * D, KD = cfg_.n_kv_heads * D, F = cfg_.ffn_dim();
  rope_ = Rope(D, cfg_.seq_len, cfg_.rope_theta);

  tok_emb_ = register_parameter("tok_emb", torch::empty({V, C}));
  auto block_list = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg_.n_layers; ++i) {
    auto block = make_holder();
    auto attn = make_holder();
    auto mlp = make_holder();
    Block b;
    b.attn_norm = block->register_parameter("attn_norm", torch::empty({C}));
    b.wq = attn->register_parameter("wq", torch::empty({HD, C}));
    b.wk = attn->register_parameter("wk", torch::empty({KD, C}));
    b.wv = attn->register_parameter("wv", torch::empty({KD, C}));
    b.wo = attn->register_parameter("wo", torch::empty({C, HD}));
    b.mlp_norm = block->register_parameter("mlp_norm", torch::empty({C}));
    b.w1 = mlp->register_parameter("w1", torch::empty({F, C}));
    b.w3 = mlp->register_parameter("w3", torch::empty({F, C}));
    b.w2 = mlp->register_parameter("w2", torch::empty({C, F}));
    block->register_module("attn", attn);
    block->register_module("mlp", mlp);
    block_list->push_back(block);
    blocks_.push_back(b);
  }
  final_norm_ = register_parameter("final_norm", torch::empty({C}));
  if (!cfg_.tie_embeddings) lm_head_ = register_parameter("lm_head", torch::empty({V, C}));
  reset_parameters();
}

void LlamaImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  const double std = cfg_.init_std;
  const double residual_std = std / std::sqrt(2.0 * static_cast<double>(cfg_.n_layers));
  tok_emb_.normal_(0.0, std);
  for (Block& b : blocks_) {
    b.attn_norm.fill_(1.0);
    b.wq.normal_(0.0, std);
    b.wk.normal_(0.0, std);
    b.wv.normal_(0.0, std);
    b.wo.normal_(0.0, residual_std);
    b.mlp_norm.fill_(1.0);
    b.w1.normal_(0.0, std);
    b.w3.normal_(0.0, std);
    b.w2.normal_(0.0, residual_std);
  }
  final_norm_.fill_(1.0);
  if (lm_head_.defined()) lm_head_.normal_(0.0, std);
}

std::vector<std::pair<std::string, torch::Tensor>> LlamaImpl::named_params() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  out.emplace_back("tok_emb", tok_emb_);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    const std::string prefix = "blocks." + std::to_string(i) + ".";
    out.emplace_back(prefix + "attn_norm", b.attn_norm);
    out.emplace_back(prefix + "attn.wq", b.wq);
    out.emplace_back(prefix + "attn.wk", b.wk);
    out.emplace_back(prefix + "attn.wv", b.wv);
    out.emplace_back(prefix + "attn.wo", b.wo);
    out.emplace_back(prefix + "mlp_norm", b.mlp_norm);
    out.emplace_back(prefix + "mlp.w1", b.w1);
    out.emplace_back(prefix + "mlp.w3", b.w3);
    out.emplace_back(prefix + "mlp.w2", b.w2);
  }
  out.emplace_back("final_norm", final_norm_);
  if (lm_head_.defined()) out.emplace_back("lm_head", lm_head_);
  return out;
}

// Pre-norm block: x + attn(norm(x)), then + mlp(norm(.)).  x (B, T, C) -> (B, T, C)
torch::Tensor LlamaImpl::block_forward(const Block& b, const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2);
  const int64_t H = cfg_.n_heads, Hkv = cfg_.n_kv_heads, D = cfg_.head_dim();
  const double eps = cfg_.norm_eps;

  torch::Tensor h = rms_norm(x, b.attn_norm, eps);                        // (B, T, C)
  torch::Tensor q = dense(h, b.wq).view({B, T, H, D}).transpose(1, 2);    // (B, H, T, D)
  torch::Tensor k = dense(h, b.wk).view({B, T, Hkv, D}).transpose(1, 2);  // (B, Hkv, T, D)
  torch::Tensor v = dense(h, b.wv).view({B, T, Hkv, D}).transpose(1, 2);  // (B, Hkv, T, D)
  torch::Tensor y = causal_attention(rope_.apply(q), rope_.apply(k), v);  // (B, H, T, D)
  y = y.transpose(1, 2).reshape({B, T, C});                               // (B, T, H*D)
  torch::Tensor r = x + dense(y, b.wo);                                   // (B, T, C)

  h = rms_norm(r, b.mlp_norm, eps);
  torch::Tensor gate = dense(h, b.w1);       // (B, T, F)
  torch::Tensor up = dense(h, b.w3);         // (B, T, F)
  return r + dense(swiglu(gate, up), b.w2);  // (B, T, C)
}

torch::Tensor LlamaImpl::forward(const torch::Tensor& idx) {
  if (idx.dim() != 2) {
    throw std::invalid_argument("llama forward: idx must be (B, T), got " +
                                std::to_string(idx.dim()) + " dims");
  }
  if (idx.size(1) > cfg_.seq_len || idx.size(1) < 1) {
    throw std::invalid_argument("llama forward: sequence length " + std::to_string(idx.size(1)) +
                                " must be in [1, model.seq_len " + std::to_string(cfg_.seq_len) +
                                "]");
  }
  torch::Tensor x = torch::embedding(tok_emb_, idx);  // (B, T, C)
  for (const Block& b : blocks_) x = block_forward(b, x);
  x = rms_norm(x, final_norm_, cfg_.norm_eps);
  const torch::Tensor& head = lm_head_.defined() ? lm_head_ : tok_emb_;
  return dense(x, head);  // (B, T, V)
}

torch::Tensor LlamaImpl::loss(const torch::Tensor& idx, const torch::Tensor& targets) {
  if (targets.sizes() != idx.sizes()) {
    throw std::invalid_argument("llama loss: targets must have the same (B, T) shape as idx");
  }
  torch::Tensor logits = forward(idx);  // (B, T, V)
  return cross_entropy(logits.reshape({-1, cfg_.vocab_size}), targets.reshape({-1}));
}

}  // namespace muonlab
