// Gradient utilities: global L2 norm, clipping by global norm, and locating the first
// parameter whose gradient holds NaN/Inf.
#pragma once
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace muonlab {

// Global L2 norm of all defined gradients (computed in fp64 accumulation).
double global_grad_norm(const std::vector<NamedParam>& params);
// Scales gradients so their global norm is <= max_norm (no-op if max_norm <= 0).
// Returns the norm before clipping.
double clip_grad_norm(const std::vector<NamedParam>& params, double max_norm);
// Name of the first parameter whose gradient is not finite, or "" if all are finite.
std::string first_nonfinite_grad(const std::vector<NamedParam>& params);

}  // namespace muonlab
