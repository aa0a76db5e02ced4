// model.kind -> the Model implementation, with the run settings each kind needs.
#include "src/train/model_factory.h"

#include <stdexcept>

#include "models/assoc_memory.h"
#include "models/matrix_sensing.h"
#include "src/train/llama_model.h"

namespace muonlab {

std::unique_ptr<Model> make_model(const RunConfig& cfg) {
  const auto seed = static_cast<uint64_t>(cfg.seed);
  if (cfg.model.kind == "llama") {
    LlamaData data;
    data.train = cfg.data.train, data.val = cfg.data.val, data.tokenizer = cfg.data.tokenizer;
    data.facts = cfg.data.facts;
    data.probe_every = cfg.data.probe_every > 0 ? cfg.data.probe_every : cfg.train.eval_every;
    data.probe_threshold = cfg.data.probe_threshold;
    data.batch_size = cfg.train.batch_size, data.eval_batches = cfg.train.eval_batches;
    data.precision = cfg.train.precision, data.seed = seed;
    return std::make_unique<LlamaModel>(cfg.model.llama, data);
  }
  if (cfg.model.kind == "assoc_memory")
    return std::make_unique<AssocMemory>(cfg.model.assoc, cfg.train.batch_size, seed);
  if (cfg.model.kind == "matrix_sensing")
    return std::make_unique<MatrixSensing>(cfg.model.sensing, seed);
  throw std::runtime_error("model.kind: unknown '" + cfg.model.kind + "'");
}

}  // namespace muonlab
