// Parameter routing: the default rules, custom rules by pattern and dimension, and the errors
// for a parameter matched by no rule or by two.
#include <catch2/catch.hpp>

#include "optim/registry.h"
#include "optim/routing.h"

using namespace muonlab;
using Catch::Matchers::Contains;

namespace {

std::vector<NamedParam> llama_like_params() {
  return {{"tok_emb", torch::zeros({16, 8})},         {"blocks.0.attn_norm", torch::zeros({8})},
          {"blocks.0.attn.wq", torch::zeros({8, 8})}, {"blocks.0.mlp.w1", torch::zeros({12, 8})},
          {"blocks.0.mlp_norm", torch::zeros({8})},   {"final_norm", torch::zeros({8})},
          {"lm_head", torch::zeros({16, 8})}};
}

std::vector<std::string> routed(const std::vector<RouteRule>& rules, const std::string& to) {
  std::vector<std::string> names;
  for (const auto& p : llama_like_params())
    if (route_of(rules, p) == to) names.push_back(p.name);
  return names;
}

}  // namespace

TEST_CASE("default routes: hidden matrices to main, the rest to adamw") {
  auto rules = default_routes();
  CHECK(routed(rules, "main") == std::vector<std::string>{"blocks.0.attn.wq", "blocks.0.mlp.w1"});
  CHECK(routed(rules, "adamw") == std::vector<std::string>{"tok_emb", "blocks.0.attn_norm",
                                                           "blocks.0.mlp_norm", "final_norm",
                                                           "lm_head"});
}

TEST_CASE("custom routes by pattern and number of dimensions") {
  std::vector<RouteRule> rules{{"blocks.*.attn.*", 2, "main"},
                               {"blocks.*.mlp.*", 2, "adamw"},
                               {"*", 1, "adamw"},
                               {"tok_emb", 0, "adamw"},
                               {"lm_head", 0, "adamw"}};
  CHECK(routed(rules, "main") == std::vector<std::string>{"blocks.0.attn.wq"});

  OptimConfig cfg;
  cfg.kind = "muon";
  cfg.routes = rules;
  auto set = build_optimizer(cfg, llama_like_params());
  REQUIRE(set->parts().size() == 2);
  CHECK(set->parts()[0]->groups()[0].params.size() == 1);
  CHECK(set->parts()[1]->groups()[0].params.size() == 6);
}

TEST_CASE("a parameter matched by no rule or by two is an error naming it") {
  std::vector<RouteRule> gap{{"blocks.*", 2, "main"}, {"*", 1, "adamw"}};
  CHECK_THROWS_WITH(route_of(gap, {"tok_emb", torch::zeros({4, 2})}),
                    Contains("'tok_emb' (2-D) matches no rule"));
  std::vector<RouteRule> overlap{{"blocks.*", 0, "main"}, {"*", 1, "adamw"}};
  CHECK_THROWS_WITH(route_of(overlap, {"blocks.0.attn_norm", torch::zeros({4})}),
                    Contains("matches optim.routes[0] (blocks.*), optim.routes[1] (*)"));
  OptimConfig cfg;
  cfg.kind = "muon";
  cfg.routes = overlap;
  cfg.routes.push_back({"tok_emb", 0, "adamw"});
  cfg.routes.push_back({"lm_head", 0, "adamw"});
  CHECK_THROWS_WITH(
      build_optimizer(cfg, llama_like_params()),
      Contains("'blocks.0.attn_norm' matches") && Contains("make the rules disjoint"));
}

TEST_CASE("malformed rules name their index and key") {
  CHECK_THROWS_WITH(validate_routes({{"*", 0, "muon"}}), Contains("optim.routes[0].to: unknown"));
  CHECK_THROWS_WITH(validate_routes({{"*", 0, "main"}, {"", 0, "main"}}),
                    Contains("optim.routes[1].match"));
  CHECK_THROWS_WITH(validate_routes({}), Contains("at least one rule"));
  // Muon takes matrices only: routing a gain to it is refused by name.
  OptimConfig cfg;
  cfg.kind = "muon";
  cfg.routes = {{"*", 0, "main"}};
  CHECK_THROWS_WITH(build_optimizer(cfg, llama_like_params()),
                    Contains("tok_emb") || Contains("attn_norm"));
}
