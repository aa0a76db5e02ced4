// Parameter routing: rules (from YAML optim.routes) that send every parameter either to the main
// optimizer (optim.kind) or to the AdamW group (optim.adamw), by name pattern and number of
// dimensions. Every parameter must match exactly one rule; none or several is an error.
// It decides only where parameters go; registry.h builds the optimizers.
#pragma once
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace muonlab {

struct RouteRule {
  std::string match = "*";  // glob over the parameter name; '*' also matches dots
  int64_t ndim = 0;         // required number of dimensions; 0 = any
  std::string to = "main";  // main | adamw
};

// The default: hidden 2-D matrices to main; embedding, head and 1-D gains to adamw.
std::vector<RouteRule> default_routes();
// Throws std::invalid_argument naming optim.routes[i].<key> for a malformed rule.
void validate_routes(const std::vector<RouteRule>& rules);
bool rule_matches(const RouteRule& rule, const NamedParam& p);
// The destination ("main" or "adamw") of p; throws std::invalid_argument if no rule or more than
// one rule matches, naming the parameter and the rules.
std::string route_of(const std::vector<RouteRule>& rules, const NamedParam& p);

}  // namespace muonlab
