// Matching parameters against routing rules (fnmatch globs plus a dimension filter).
#include "optim/routing.h"

#include <fnmatch.h>

#include <stdexcept>

namespace muonlab {

namespace {

std::string describe(const std::vector<RouteRule>& rules, const std::vector<size_t>& indices) {
  std::string text;
  for (size_t i : indices)
    text += (text.empty() ? "" : ", ") + std::string("optim.routes[") + std::to_string(i) + "] (" +
            rules[i].match + ")";
  return text;
}

}  // namespace

std::vector<RouteRule> default_routes() {
  return {
      {"blocks.*", 2, "main"}, {"tok_emb", 0, "adamw"}, {"lm_head", 0, "adamw"}, {"*", 1, "adamw"}};
}

void validate_routes(const std::vector<RouteRule>& rules) {
  if (rules.empty()) throw std::invalid_argument("optim.routes: needs at least one rule");
  for (size_t i = 0; i < rules.size(); ++i) {
    std::string key = "optim.routes[" + std::to_string(i) + "].";
    if (rules[i].match.empty()) throw std::invalid_argument(key + "match: must not be empty");
    if (rules[i].ndim < 0) throw std::invalid_argument(key + "ndim: must be >= 0 (0 = any)");
    if (rules[i].to != "main" && rules[i].to != "adamw")
      throw std::invalid_argument(key + "to: unknown '" + rules[i].to + "'; use main or adamw");
  }
}

bool rule_matches(const RouteRule& rule, const NamedParam& p) {
  if (rule.ndim != 0 && rule.ndim != p.param.dim()) return false;
  return fnmatch(rule.match.c_str(), p.name.c_str(), 0) == 0;
}

std::string route_of(const std::vector<RouteRule>& rules, const NamedParam& p) {
  std::vector<size_t> hits;
  for (size_t i = 0; i < rules.size(); ++i)
    if (rule_matches(rules[i], p)) hits.push_back(i);
  if (hits.empty())
    throw std::invalid_argument(
        "optim.routes: parameter '" + p.name + "' (" + std::to_string(p.param.dim()) +
        "-D) matches no rule; add one, e.g. {match: \"" + p.name + "\", to: adamw}");
  if (hits.size() > 1)
    throw std::invalid_argument("optim.routes: parameter '" + p.name + "' matches " +
                                describe(rules, hits) + "; make the rules disjoint");
  return rules[hits[0]].to;
}

}  // namespace muonlab
