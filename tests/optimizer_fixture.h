// Helpers shared by the optimizer tests: parameters with gradients, the largest element-wise
// difference, and the save/load continuation check every optimizer kind must pass. Test-only and
// header-only (the test binaries link no extra library for it).
#pragma once
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace muonlab::test {

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

inline torch::Tensor make_param(const torch::Tensor& value) {
  return value.clone().set_requires_grad(true);
}

inline void set_grad(torch::Tensor& param, const torch::Tensor& grad) {
  param.mutable_grad() = grad.clone();
}

// Steps a 12x8 matrix "w" 6 times straight, and 4 times + save + load into a new optimizer + 2
// times; the two must end bit-identical, while a fresh optimizer (no load) for the last 2 steps
// must not (the state mattered). Returns the saved archive (state under the prefix "main.").
template <typename Opt, typename Options>
std::string check_resume(const Options& options) {
  torch::manual_seed(21);
  std::vector<torch::Tensor> grads;
  for (int i = 0; i < 6; ++i) grads.push_back(torch::randn({12, 8}));
  torch::Tensor init = torch::randn({12, 8});

  torch::Tensor straight = make_param(init);
  Opt reference("main", {{"w", straight}}, options);
  for (const auto& g : grads) {
    set_grad(straight, g);
    reference.step();
  }

  torch::Tensor first = make_param(init);
  Opt before("main", {{"w", first}}, options);
  for (int i = 0; i < 4; ++i) {
    set_grad(first, grads[i]);
    before.step();
  }
  torch::serialize::OutputArchive out;
  before.save(out, "main.");
  std::stringstream buffer;
  out.save_to(buffer);

  torch::Tensor resumed = make_param(first.detach());
  torch::Tensor fresh = make_param(first.detach());
  Opt after("main", {{"w", resumed}}, options);
  Opt restarted("main", {{"w", fresh}}, options);
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  after.load(in, "main.");
  CHECK(after.steps_taken() == 4);
  for (int i = 4; i < 6; ++i) {
    set_grad(resumed, grads[i]);
    set_grad(fresh, grads[i]);
    after.step();
    restarted.step();
  }
  CHECK(torch::equal(resumed, straight));
  CHECK_FALSE(torch::equal(fresh, straight));
  return buffer.str();
}

}  // namespace muonlab::test
