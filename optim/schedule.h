// Schedules as a multiplier of a configured peak value (the lr, the momentum or the weight decay
// of a parameter group): linear warmup from start_ratio, then cosine decay to min_ratio, constant,
// or warmup-stable-decay (decay to min_ratio over the last decay_fraction of training, shaped 1-p
// (linear), 1-sqrt(p) (sqrt) or (1+cos(pi p))/2 (cosine) in the decay progress p).
// GroupSchedules bundles the three schedules one parameter group follows. Which group gets which
// schedule is decided from the config (registry.h); this file only computes multipliers.
#pragma once
#include <cstdint>
#include <string>

namespace muonlab {

struct ScheduleConfig {
  std::string kind = "cosine";  // cosine | constant | wsd
  int64_t warmup_steps = 0;
  double start_ratio = 0;              // multiplier the warmup starts from
  double min_ratio = 0.1;              // final multiplier (cosine, wsd)
  double decay_fraction = 0.2;         // wsd only
  std::string decay_shape = "linear";  // wsd only: linear | sqrt | cosine
  // Throws std::invalid_argument naming `prefix` + the key that is out of range; `min_key` is
  // the name the floor has in that section (min_lr_ratio in the run's `schedule`).
  void validate(const std::string& prefix = "schedule.",
                const std::string& min_key = "min_lr_ratio") const;
  // A short description for the run log, e.g. "cosine, warmup 50, floor x0.1".
  std::string describe() const;
};

// A schedule that always gives 1.
ScheduleConfig constant_schedule();

// The schedules of one parameter group; each multiplies the group's configured value.
struct GroupSchedules {
  ScheduleConfig lr = constant_schedule();
  ScheduleConfig momentum = constant_schedule();
  ScheduleConfig weight_decay = constant_schedule();
};

// Multiplier for optimizer step `step` (0-based) of `total_steps`: in [start_ratio, 1] during
// warmup, in [min_ratio, 1] after.
double schedule_multiplier(const ScheduleConfig& cfg, int64_t step, int64_t total_steps);

}  // namespace muonlab
