// Multiplier schedules: linear warmup, then cosine / constant / warmup-stable-decay.
#include "optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace muonlab {

namespace {

constexpr double kPi = 3.14159265358979323846;

std::string number(double value) {
  std::string text = std::to_string(value);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

// Cosine from 1 (first step after warmup) to min_ratio (last step).
double cosine_multiplier(const ScheduleConfig& cfg, int64_t step, int64_t total_steps) {
  const int64_t span = std::max<int64_t>(1, total_steps - 1 - cfg.warmup_steps);
  const double progress = std::clamp(
      static_cast<double>(step - cfg.warmup_steps) / static_cast<double>(span), 0.0, 1.0);
  return cfg.min_ratio + (1 - cfg.min_ratio) * 0.5 * (1 + std::cos(kPi * progress));
}

// Remaining share (1 -> 0) of the decay at progress p in (0, 1] for a wsd decay shape.
double decay_remaining(const std::string& shape, double p) {
  if (shape == "sqrt") return 1.0 - std::sqrt(p);
  if (shape == "cosine") return 0.5 * (1 + std::cos(kPi * p));
  return 1.0 - p;
}

// 1 until the decay phase (the last round(decay_fraction * total) steps), then down to
// min_ratio in the configured shape, reached at the last step.
double wsd_multiplier(const ScheduleConfig& cfg, int64_t step, int64_t total_steps) {
  const int64_t decay_steps = std::max<int64_t>(
      1, static_cast<int64_t>(std::llround(cfg.decay_fraction * static_cast<double>(total_steps))));
  const int64_t decay_start = total_steps - decay_steps;
  if (step < decay_start) return 1.0;
  const double progress =
      std::min(1.0, static_cast<double>(step - decay_start + 1) / static_cast<double>(decay_steps));
  return cfg.min_ratio + (1.0 - cfg.min_ratio) * decay_remaining(cfg.decay_shape, progress);
}

}  // namespace

void ScheduleConfig::validate(const std::string& prefix, const std::string& min_key) const {
  auto fail = [&](const std::string& key, const std::string& problem) {
    throw std::invalid_argument(prefix + key + ": " + problem);
  };
  if (kind != "cosine" && kind != "constant" && kind != "wsd")
    fail("kind", "unknown '" + kind + "'; use cosine, constant or wsd");
  if (warmup_steps < 0) fail("warmup_steps", "must be >= 0, got " + std::to_string(warmup_steps));
  if (!(start_ratio >= 0)) fail("start_ratio", "must be >= 0, got " + number(start_ratio));
  if (!(min_ratio >= 0 && min_ratio <= 1))
    fail(min_key, "must be in [0, 1], got " + number(min_ratio));
  if (decay_shape != "linear" && decay_shape != "sqrt" && decay_shape != "cosine")
    fail("decay_shape", "unknown '" + decay_shape + "'; use linear, sqrt or cosine");
  if (!(decay_fraction > 0 && decay_fraction <= 1))
    fail("decay_fraction", "must be in (0, 1], got " + number(decay_fraction));
}

std::string ScheduleConfig::describe() const {
  std::string text = kind;
  if (warmup_steps > 0) {
    text += ", warmup " + std::to_string(warmup_steps);
    if (start_ratio != 0) text += " from x" + number(start_ratio);
  }
  if (kind == "wsd") text += ", " + decay_shape + " decay over the last " + number(decay_fraction);
  if (kind != "constant") text += ", floor x" + number(min_ratio);
  return text;
}

ScheduleConfig constant_schedule() {
  ScheduleConfig cfg;
  cfg.kind = "constant";
  return cfg;
}

double schedule_multiplier(const ScheduleConfig& cfg, int64_t step, int64_t total_steps) {
  if (total_steps > 0) step = std::min(step, total_steps - 1);
  step = std::max<int64_t>(step, 0);
  if (cfg.warmup_steps > 0 && step < cfg.warmup_steps) {
    const double progress = static_cast<double>(step + 1) / static_cast<double>(cfg.warmup_steps);
    return cfg.start_ratio + (1.0 - cfg.start_ratio) * progress;
  }
  if (cfg.kind == "cosine") return cosine_multiplier(cfg, step, total_steps);
  if (cfg.kind == "wsd") return wsd_multiplier(cfg, step, total_steps);
  return 1.0;
}

}  // namespace muonlab
