// Tests of the LLaMA model: causality, parameter count and names, autograd vs finite
// differences, init statistics, config validation, loss at init, RoPE and GQA attention.
#include <catch2/catch.hpp>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "models/attention.h"
#include "models/llama.h"
#include "models/rope.h"

using muonlab::Llama;
using muonlab::LlamaConfig;

namespace {

LlamaConfig tiny_config() {
  LlamaConfig cfg;
  cfg.vocab_size = 17;
  cfg.d_model = 16;
  cfg.n_layers = 2;
  cfg.n_heads = 4;
  cfg.n_kv_heads = 2;
  cfg.ffn_hidden = 24;
  cfg.seq_len = 8;
  return cfg;
}

torch::Tensor random_tokens(int64_t B, int64_t T, int64_t V) {
  return torch::randint(V, {B, T}, torch::TensorOptions().dtype(torch::kInt64));
}

torch::Tensor find_param(Llama& model, const std::string& name) {
  for (auto& [n, p] : model->named_params()) {
    if (n == name) return p;
  }
  FAIL("no parameter named " << name);
  return {};
}

// Reference attention that expands K/V heads with repeat_interleave and masks explicitly.
torch::Tensor naive_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v) {
  const int64_t G = q.size(1) / k.size(1), T = q.size(2), D = q.size(3);
  torch::Tensor kr = k.repeat_interleave(G, 1), vr = v.repeat_interleave(G, 1);
  torch::Tensor scores = torch::matmul(q, kr.transpose(-2, -1)) / std::sqrt(double(D));
  torch::Tensor future = torch::ones({T, T}, torch::kBool).triu(1);
  scores = scores.masked_fill(future, -INFINITY);
  return torch::matmul(torch::softmax(scores, -1), vr);
}

}  // namespace

TEST_CASE("logits at a position do not depend on later tokens", "[model]") {
  torch::manual_seed(1);
  LlamaConfig cfg = tiny_config();
  Llama model(cfg);
  torch::NoGradGuard no_grad;
  torch::Tensor idx = random_tokens(2, cfg.seq_len, cfg.vocab_size);
  torch::Tensor base = model->forward(idx);  // (B, T, V)
  REQUIRE(base.sizes() == torch::IntArrayRef({2, cfg.seq_len, cfg.vocab_size}));
  for (int64_t t = 0; t + 1 < cfg.seq_len; ++t) {
    torch::Tensor changed = idx.clone();
    changed.select(1, t + 1).add_(1).remainder_(cfg.vocab_size);
    torch::Tensor logits = model->forward(changed);
    torch::Tensor diff = (logits - base).abs().amax({0, 2});  // (T)
    for (int64_t s = 0; s < cfg.seq_len; ++s) {
      INFO("changed token " << t + 1 << ", position " << s);
      if (s <= t) {
        REQUIRE(diff[s].item<double>() <= 1e-6);
      } else {
        REQUIRE(diff[s].item<double>() > 1e-6);
      }
    }
  }
}

TEST_CASE("parameter count matches the closed form", "[model]") {
  LlamaConfig base = tiny_config();
  std::vector<LlamaConfig> configs;
  for (bool tied : {false, true}) {
    for (int64_t kv : {4, 2, 1}) {
      for (int64_t ffn : {0, 24}) {
        LlamaConfig cfg = base;
        cfg.tie_embeddings = tied;
        cfg.n_kv_heads = kv;
        cfg.ffn_hidden = ffn;
        configs.push_back(cfg);
      }
    }
  }
  for (const LlamaConfig& cfg : configs) {
    Llama model(cfg);
    int64_t total = 0;
    for (auto& p : model->parameters()) total += p.numel();
    INFO("tied " << cfg.tie_embeddings << " kv " << cfg.n_kv_heads << " ffn " << cfg.ffn_hidden);
    REQUIRE(total == muonlab::llama_param_count(cfg));
  }
  LlamaConfig cfg;
  cfg.d_model = 256;
  cfg.ffn_hidden = 0;
  REQUIRE(cfg.ffn_dim() == 704);  // 8/3*256 = 682.7 rounded up to a multiple of 64
  cfg.ffn_hidden = 100;
  REQUIRE(cfg.ffn_dim() == 100);
}

TEST_CASE("FLOPs per token follow 6*N_matmul + 12*L*T*C", "[model]") {
  LlamaConfig cfg = tiny_config();  // V17 C16 L2 H4 Hkv2 D4 F24 T8
  const double per_block = 16 * 16 + 2 * 16 * 8 + 16 * 16 + 3 * 16 * 24;
  const double expected = 6 * (2 * per_block + 17 * 16) + 12 * 2 * 8 * 16;
  REQUIRE(muonlab::llama_flops_per_token(cfg) == Approx(expected));
  cfg.tie_embeddings = true;  // the head is still a matmul
  REQUIRE(muonlab::llama_flops_per_token(cfg) == Approx(expected));
}

TEST_CASE("parameter names are stable and match named_parameters", "[model]") {
  LlamaConfig cfg = tiny_config();
  std::vector<std::string> expected = {"tok_emb"};
  for (int i = 0; i < 2; ++i) {
    std::string p = "blocks." + std::to_string(i) + ".";
    for (const char* leaf : {"attn_norm", "attn.wq", "attn.wk", "attn.wv", "attn.wo", "mlp_norm",
                             "mlp.w1", "mlp.w3", "mlp.w2"}) {
      expected.push_back(p + leaf);
    }
  }
  expected.push_back("final_norm");

  for (bool tied : {false, true}) {
    cfg.tie_embeddings = tied;
    Llama model(cfg);
    std::vector<std::string> want = expected;
    if (!tied) want.push_back("lm_head");
    std::vector<std::string> names;
    for (auto& [name, tensor] : model->named_params()) names.push_back(name);
    REQUIRE(names == want);

    auto registered = model->named_parameters();
    REQUIRE(registered.size() == want.size());
    for (auto& [name, tensor] : model->named_params()) {
      INFO(name);
      REQUIRE(registered.contains(name));
      REQUIRE(registered[name].data_ptr() == tensor.data_ptr());
    }
    REQUIRE(model->buffers().empty());
  }
  cfg.tie_embeddings = false;
  Llama model(cfg);
  REQUIRE(find_param(model, "blocks.1.attn.wk").sizes() == torch::IntArrayRef({8, 16}));
  REQUIRE(find_param(model, "blocks.1.attn.wo").sizes() == torch::IntArrayRef({16, 16}));
  REQUIRE(find_param(model, "blocks.0.mlp.w2").sizes() == torch::IntArrayRef({16, 24}));
  REQUIRE(find_param(model, "blocks.0.mlp.w3").sizes() == torch::IntArrayRef({24, 16}));
  REQUIRE(find_param(model, "lm_head").sizes() == torch::IntArrayRef({17, 16}));
}

TEST_CASE("autograd matches central finite differences in double precision", "[model]") {
  for (bool tied : {false, true}) {
    torch::manual_seed(7);
    LlamaConfig cfg;
    cfg.vocab_size = 11;
    cfg.d_model = 8;
    cfg.n_layers = 2;
    cfg.n_heads = 2;
    cfg.n_kv_heads = 1;
    cfg.ffn_hidden = 12;
    cfg.seq_len = 5;
    cfg.tie_embeddings = tied;
    cfg.init_std = 0.3;  // large enough that gradients stand well above rounding noise
    Llama model(cfg);
    model->to(torch::kFloat64);
    torch::Tensor idx = random_tokens(2, 5, cfg.vocab_size);
    torch::Tensor targets = random_tokens(2, 5, cfg.vocab_size);

    model->zero_grad();
    model->loss(idx, targets).backward();

    std::vector<std::string> names = {"blocks.0.attn.wq", "blocks.1.attn.wk", "blocks.1.mlp.w2",
                                      "tok_emb",          "final_norm",       "blocks.0.attn_norm"};
    if (!tied) names.push_back("lm_head");
    const double h = 1e-6;
    for (const std::string& name : names) {
      torch::Tensor param = find_param(model, name);
      REQUIRE(param.scalar_type() == torch::kFloat64);
      torch::Tensor flat = param.detach().view(-1);
      torch::Tensor grad = param.grad().view(-1);
      torch::Tensor picks = torch::randint(flat.numel(), {4}, torch::kInt64);
      for (int64_t k = 0; k < picks.numel(); ++k) {
        const int64_t i = picks[k].item<int64_t>();
        torch::NoGradGuard no_grad;
        const double saved = flat[i].item<double>();
        flat[i] = saved + h;
        const double up = model->loss(idx, targets).item<double>();
        flat[i] = saved - h;
        const double down = model->loss(idx, targets).item<double>();
        flat[i] = saved;
        const double numeric = (up - down) / (2 * h);
        INFO("tied " << tied << " " << name << "[" << i << "]");
        REQUIRE(numeric == Approx(grad[i].item<double>()).epsilon(1e-5).margin(1e-9));
      }
    }
  }
}

TEST_CASE("init draws N(0, 0.02) with residual projections scaled and unit gains", "[model]") {
  torch::manual_seed(3);
  LlamaConfig cfg;
  cfg.vocab_size = 512;
  cfg.d_model = 256;
  cfg.n_layers = 4;
  cfg.n_heads = 4;
  cfg.n_kv_heads = 2;
  cfg.seq_len = 16;
  Llama model(cfg);
  const double residual = 0.02 / std::sqrt(2.0 * cfg.n_layers);
  REQUIRE(find_param(model, "blocks.0.attn.wq").std().item<double>() == Approx(0.02).epsilon(0.03));
  REQUIRE(find_param(model, "blocks.2.mlp.w1").std().item<double>() == Approx(0.02).epsilon(0.03));
  REQUIRE(find_param(model, "tok_emb").std().item<double>() == Approx(0.02).epsilon(0.03));
  REQUIRE(find_param(model, "lm_head").std().item<double>() == Approx(0.02).epsilon(0.03));
  REQUIRE(find_param(model, "blocks.3.attn.wo").std().item<double>() ==
          Approx(residual).epsilon(0.03));
  REQUIRE(find_param(model, "blocks.1.mlp.w2").std().item<double>() ==
          Approx(residual).epsilon(0.03));
  REQUIRE(std::abs(find_param(model, "blocks.0.attn.wq").mean().item<double>()) < 1e-3);
  for (auto& [name, p] : model->named_params()) {
    if (p.dim() == 1) {
      INFO(name);
      REQUIRE(torch::equal(p, torch::ones_like(p)));
    }
  }
  // reset_parameters redraws from the current RNG
  torch::Tensor before = find_param(model, "blocks.0.attn.wq").clone();
  model->reset_parameters();
  REQUIRE_FALSE(torch::equal(before, find_param(model, "blocks.0.attn.wq")));
}

TEST_CASE("validate names the offending model key", "[model]") {
  LlamaConfig cfg = tiny_config();
  REQUIRE_NOTHROW(cfg.validate());

  LlamaConfig bad = cfg;
  bad.n_heads = 6;  // does not divide 16
  REQUIRE_THROWS_AS(bad.validate(), std::invalid_argument);
  REQUIRE_THROWS_WITH(bad.validate(),
                      Catch::Contains("model.n_heads") && Catch::Contains("model.d_model"));
  REQUIRE_THROWS_WITH(Llama(bad), Catch::Contains("model.n_heads"));

  bad = cfg;
  bad.n_kv_heads = 3;  // 4 heads are not a multiple of 3
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("model.n_kv_heads"));

  bad = cfg;
  bad.d_model = 24;
  bad.n_heads = 8;  // head dim 3 is odd
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("RoPE"));

  bad = cfg;
  bad.vocab_size = 1;
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("model.vocab_size"));
  bad = cfg;
  bad.n_heads = 0;
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("model.n_heads"));
  bad = cfg;
  bad.norm_eps = 0;
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("model.norm_eps"));
  bad = cfg;
  bad.seq_len = 0;
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("model.seq_len"));

  Llama model(cfg);
  REQUIRE_THROWS_AS(model->forward(random_tokens(1, cfg.seq_len + 1, cfg.vocab_size)),
                    std::invalid_argument);
}

TEST_CASE("loss at init is close to log(vocab_size)", "[model]") {
  torch::manual_seed(5);
  LlamaConfig cfg;
  cfg.vocab_size = 1000;
  cfg.d_model = 64;
  cfg.n_layers = 2;
  cfg.n_heads = 4;
  cfg.n_kv_heads = 4;
  cfg.seq_len = 32;
  Llama model(cfg);
  torch::NoGradGuard no_grad;
  torch::Tensor idx = random_tokens(4, 32, cfg.vocab_size);
  torch::Tensor targets = random_tokens(4, 32, cfg.vocab_size);
  const double loss = model->loss(idx, targets).item<double>();
  REQUIRE(loss == Approx(std::log(1000.0)).margin(0.1));
  // Shorter sequences than seq_len work too and give float32 logits.
  torch::Tensor logits = model->forward(idx.narrow(1, 0, 7));
  REQUIRE(logits.scalar_type() == torch::kFloat32);
  REQUIRE(logits.sizes() == torch::IntArrayRef({4, 7, 1000}));
}

TEST_CASE("RoPE scores depend only on the relative position", "[model][rope]") {
  torch::manual_seed(11);
  const int64_t D = 8, T = 16;
  muonlab::Rope rope(D, T, 10000.0);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // The same query / key vector at every position, so only the rotation differs.
  torch::Tensor q = torch::randn({1, 1, 1, D}, f64).expand({1, 1, T, D});
  torch::Tensor k = torch::randn({1, 1, 1, D}, f64).expand({1, 1, T, D});
  torch::Tensor rq = rope.apply(q)[0][0];  // (T, D)
  torch::Tensor rk = rope.apply(k)[0][0];
  auto score = [&](int64_t m, int64_t n) { return rq[m].dot(rk[n]).item<double>(); };
  REQUIRE(score(5, 2) == Approx(score(12, 9)).epsilon(1e-12));
  REQUIRE(score(3, 7) == Approx(score(8, 12)).epsilon(1e-12));
  REQUIRE(score(5, 2) != Approx(score(5, 3)).epsilon(1e-6));
  // Rotations keep norms, and position 0 is the identity.
  REQUIRE(rq[9].norm().item<double>() == Approx(q[0][0][0].norm().item<double>()));
  REQUIRE(torch::allclose(rq[0], q[0][0][0]));
  // Half-rotation layout: pair j is (x[j], x[j + D/2]) rotated by pos * theta^(-2j/D).
  const double angle = 3 * std::pow(10000.0, -2.0 * 1 / D);
  const double x1 = q[0][0][0][1].item<double>(), x2 = q[0][0][0][1 + D / 2].item<double>();
  REQUIRE(rq[3][1].item<double>() == Approx(x1 * std::cos(angle) - x2 * std::sin(angle)));
  REQUIRE(rq[3][1 + D / 2].item<double>() == Approx(x2 * std::cos(angle) + x1 * std::sin(angle)));
  // float32 inputs get float32 outputs
  REQUIRE(rope.apply(q.to(torch::kFloat32)).scalar_type() == torch::kFloat32);
}

TEST_CASE("grouped-query attention matches repeat_interleave of K/V heads", "[model][attention]") {
  torch::manual_seed(13);
  for (int64_t kv_heads : {4, 2, 1}) {
    torch::Tensor q = torch::randn({2, 4, 6, 8});
    torch::Tensor k = torch::randn({2, kv_heads, 6, 8});
    torch::Tensor v = torch::randn({2, kv_heads, 6, 8});
    torch::Tensor out = muonlab::causal_attention(q, k, v);
    INFO("kv heads " << kv_heads);
    REQUIRE(out.sizes() == torch::IntArrayRef({2, 4, 6, 8}));
    REQUIRE(torch::allclose(out, naive_attention(q, k, v), 1e-5, 1e-6));
  }
  // The first position attends only to itself.
  torch::Tensor q = torch::randn({1, 2, 3, 4}), k = torch::randn({1, 1, 3, 4});
  torch::Tensor v = torch::randn({1, 1, 3, 4});
  torch::Tensor out = muonlab::causal_attention(q, k, v);
  REQUIRE(torch::allclose(out[0][1][0], v[0][0][0]));
  REQUIRE_THROWS_AS(
      muonlab::causal_attention(q, torch::randn({1, 3, 3, 4}), torch::randn({1, 3, 3, 4})),
      std::invalid_argument);
}
