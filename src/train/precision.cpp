// bf16 autocast scope for the CPU and the loss computation that uses it.
#include "src/train/precision.h"

#include <ATen/autocast_mode.h>

#include "models/kernels/cross_entropy.h"

namespace muonlab {
namespace {

// Enables CPU autocast to bfloat16 for its lifetime.
class CpuAutocastScope {
 public:
  CpuAutocastScope() : was_enabled_(at::autocast::is_cpu_enabled()) {
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::increment_nesting();
  }
  ~CpuAutocastScope() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_cpu_enabled(was_enabled_);
  }

 private:
  bool was_enabled_;
};

}  // namespace

torch::Tensor model_loss(LlamaImpl& model, const Batch& batch, const std::string& precision) {
  if (precision != "bf16") return model.loss(batch.inputs, batch.targets);
  torch::Tensor logits;
  {
    CpuAutocastScope autocast;
    logits = model.forward(batch.inputs);
  }
  return cross_entropy(logits.flatten(0, 1), batch.targets.flatten());  // bf16 logits, float loss
}

torch::Tensor model_logits(LlamaImpl& model, const torch::Tensor& inputs,
                           const std::string& precision) {
  if (precision != "bf16") return model.forward(inputs);
  CpuAutocastScope autocast;
  return model.forward(inputs).to(torch::kFloat32);
}

}  // namespace muonlab
