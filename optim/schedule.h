// Learning-rate schedules as a multiplier of the peak lr: linear warmup then cosine decay to
// min_lr_ratio, constant (after warmup), or warmup-stable-decay (linear decay to min_lr_ratio
// over the last decay_fraction of training).
#pragma once
#include <cstdint>
#include <string>

namespace muonlab {

struct ScheduleConfig {
  std::string kind = "cosine";  // cosine | constant | wsd
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.1;
  double decay_fraction = 0.2;  // wsd only
  // Throws std::invalid_argument naming the schedule.* key that is out of range.
  void validate() const;
};

// Multiplier in [0, 1] for optimizer step `step` (0-based) of `total_steps`.
double lr_multiplier(const ScheduleConfig& cfg, int64_t step, int64_t total_steps);

}  // namespace muonlab
