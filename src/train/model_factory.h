// Builds the Model that `model.kind` names from the validated run config (weights drawn from the
// current torch RNG; the trainer seeds it first). The one place that knows every model kind.
#pragma once
#include <memory>

#include "models/model.h"
#include "src/config/config.h"

namespace muonlab {

// Throws std::runtime_error (e.g. a missing shard) naming the file and what to change.
std::unique_ptr<Model> make_model(const RunConfig& cfg);

}  // namespace muonlab
