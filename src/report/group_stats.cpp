// Best lr, plateau, seed statistics and the significance of each group's gap.
#include "src/report/group_stats.h"

#include <algorithm>
#include <map>
#include <set>

namespace muonlab {

Plateau plateau_around(const std::vector<LrPoint>& by_lr, size_t best, double delta,
                       bool relative) {
  Plateau p;
  p.delta = delta;
  if (best >= by_lr.size() || !std::isfinite(by_lr[best].mean)) return p;
  const double limit = relative ? by_lr[best].mean * (1 + delta) : by_lr[best].mean + delta;
  auto inside = [&](size_t i) { return std::isfinite(by_lr[i].mean) && by_lr[i].mean <= limit; };
  size_t lo = best, hi = best;
  while (lo > 0 && inside(lo - 1)) --lo;
  while (hi + 1 < by_lr.size() && inside(hi + 1)) ++hi;
  p.lr_min = by_lr[lo].lr;
  p.lr_max = by_lr[hi].lr;
  p.width = std::log10(p.lr_max / p.lr_min);
  return p;
}

namespace {

GroupStats one_group(const std::string& name, std::vector<RunSummary*>& members) {
  GroupStats g;
  g.name = name;
  g.runs = static_cast<int>(members.size());
  std::map<double, std::vector<RunSummary*>> by_lr;
  for (auto* r : members) {
    g.done += r->status == "done";
    if (std::isfinite(r->lr)) by_lr[r->lr].push_back(r);  // a run without config has no lr
  }
  // The best lr and the plateau compare lrs on the seeds every lr has finished (the stage-1
  // seed of a two-stage sweep), so extra seeds at one lr do not move the choice; mean +- std at
  // the best lr then use all its seeds.
  std::set<int64_t> shared;
  bool first_lr = true;
  for (auto& [lr, runs] : by_lr) {
    std::set<int64_t> seeds;
    for (auto* r : runs)
      if (r->status == "done" && std::isfinite(r->final_val)) seeds.insert(r->seed);
    if (seeds.empty()) continue;
    if (first_lr) shared = seeds, first_lr = false;
    std::set<int64_t> both;
    for (int64_t seed : seeds)
      if (shared.count(seed)) both.insert(seed);
    shared = both;
  }
  g.selection_seeds.assign(shared.begin(), shared.end());
  for (auto& [lr, runs] : by_lr) {
    std::vector<double> finals;
    for (auto* r : runs)
      if (r->status == "done" && std::isfinite(r->final_val) &&
          (shared.empty() || shared.count(r->seed)))
        finals.push_back(r->final_val);
    g.by_lr.push_back({lr, mean_of(finals), std_of(finals), static_cast<int>(finals.size()),
                       static_cast<int>(runs.size())});
  }
  size_t best = g.by_lr.size();
  for (size_t i = 0; i < g.by_lr.size(); ++i)
    if (std::isfinite(g.by_lr[i].mean) &&
        (best == g.by_lr.size() || g.by_lr[i].mean < g.by_lr[best].mean))
      best = i;
  if (best == g.by_lr.size()) return g;
  g.best_lr = g.by_lr[best].lr;
  // At the edge of the lrs that have a loss: unfinished lrs beyond it bracket nothing.
  size_t lowest = 0, highest = g.by_lr.size() - 1;
  while (!std::isfinite(g.by_lr[lowest].mean)) ++lowest;
  while (!std::isfinite(g.by_lr[highest].mean)) --highest;
  g.edge = best == lowest || best == highest;
  g.plateau_nats = plateau_around(g.by_lr, best, kPlateauDeltaNats, false);
  g.plateau_relative = plateau_around(g.by_lr, best, kPlateauDeltaRelative, true);
  for (auto* r : by_lr[g.best_lr]) {
    if (r->status != "done" || !std::isfinite(r->final_val)) continue;
    r->at_best_lr = true;
    g.final_at_best.push_back(r->final_val);
    g.best_at_best.push_back(r->best_val);
  }
  g.final_mean = mean_of(g.final_at_best);
  g.final_std = std_of(g.final_at_best);
  g.best_mean = mean_of(g.best_at_best);
  g.best_std = std_of(g.best_at_best);
  return g;
}

}  // namespace

std::vector<GroupStats> group_statistics(std::vector<RunSummary>& runs) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<RunSummary*>> members;
  for (auto& r : runs) {
    r.at_best_lr = false;
    if (!members.count(r.group)) order.push_back(r.group);
    members[r.group].push_back(&r);
  }
  std::vector<GroupStats> groups;
  for (const auto& name : order) groups.push_back(one_group(name, members[name]));
  GroupStats* best = nullptr;
  for (auto& g : groups)
    if (std::isfinite(g.final_mean) && (!best || g.final_mean < best->final_mean)) best = &g;
  if (!best) return groups;
  best->is_best = true;
  for (auto& g : groups) {
    if (!std::isfinite(g.final_mean)) continue;
    g.gap = g.final_mean - best->final_mean;
    const double n = static_cast<double>(g.final_at_best.size());
    const double nb = static_cast<double>(best->final_at_best.size());
    g.gap_se = std::sqrt(g.final_std * g.final_std / n + best->final_std * best->final_std / nb);
    if (&g != best) g.test = welch_t_test(g.final_at_best, best->final_at_best);
  }
  return groups;
}

}  // namespace muonlab
