// Learning-rate schedules as a multiplier of the peak lr: linear warmup then cosine decay to
// min_lr_ratio, constant (after warmup), or warmup-stable-decay (decay to min_lr_ratio over the
// last decay_fraction of training, shaped 1-p (linear), 1-sqrt(p) (sqrt) or (1+cos(pi p))/2
// (cosine) in the decay progress p).
#pragma once
#include <cstdint>
#include <string>

namespace muonlab {

struct ScheduleConfig {
  std::string kind = "cosine";  // cosine | constant | wsd
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.1;
  double decay_fraction = 0.2;         // wsd only
  std::string decay_shape = "linear";  // wsd only: linear | sqrt | cosine
  // Throws std::invalid_argument naming the schedule.* key that is out of range.
  void validate() const;
};

// Multiplier in [0, 1] for optimizer step `step` (0-based) of `total_steps`.
double lr_multiplier(const ScheduleConfig& cfg, int64_t step, int64_t total_steps);

}  // namespace muonlab
