// The spectral record (src/train/spectral_recorder.h): matrices in parameter order with their
// updates where a previous weight is given, each figure equal to matrix_spectrum of that weight or
// update, singular values listed on spectrum steps, and the same record, bit for bit, with one
// thread or two (matrices are measured side by side, each whole on one thread).
#include <catch2/catch.hpp>

#include "optim/spectral/spectral.h"
#include "src/train/spectral_recorder.h"
#include "test_util.h"

using namespace muonlab;
using muonlab::test::with_threads;

namespace {

// A small model's worth of matrices of different shapes (big and small, tall and wide, a 1-D gain
// that the record skips), their weights before an update, and the record of both.
struct Fixture {
  std::vector<NamedParam> params;
  std::map<std::string, torch::Tensor> before;
  Fixture() {
    torch::manual_seed(3);
    const std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
        {"embed", {512, 64}}, {"wq", {64, 64}}, {"gain", {64}},     {"w1", {176, 64}},
        {"w2", {64, 176}},    {"wo", {64, 64}}, {"head", {512, 64}}};
    for (const auto& [name, shape] : shapes) {
      params.push_back({name, torch::randn(shape)});
      if (name != "wo") before[name] = params.back().param + 0.01 * torch::randn(shape);
    }
  }
};

}  // namespace

TEST_CASE("the spectral record measures every matrix and update, in parameter order") {
  // One thread, as the references below (the threads' own figures are compared in the next test).
  with_threads(1, [] {
    Fixture f;
    SpectralRecorder recorder("svd", 10);
    const nlohmann::json record = recorder.record(f.params, f.before, 10);
    REQUIRE(record["kind"] == "spectral");
    const auto& matrices = record["matrices"];
    REQUIRE(matrices.size() == 6);  // the 1-D gain is not a matrix
    size_t k = 0;
    for (const auto& p : f.params) {
      if (p.param.dim() != 2) continue;
      const auto& m = matrices[k++];
      INFO(p.name);
      CHECK(m["name"] == p.name);
      CHECK(m["shape"] == nlohmann::json({p.param.size(0), p.param.size(1)}));
      std::vector<double> values;
      const MatrixSpectrum want = matrix_spectrum(p.param, &values);
      CHECK(m["stable_rank"].get<double>() == want.stable_rank);
      CHECK(m["condition"].get<double>() == want.condition);
      CHECK(m["singular_values"].get<std::vector<double>>() == values);  // step 10: listed
      if (p.name == "wo") {
        CHECK_FALSE(m.contains("update"));
      } else {
        const MatrixSpectrum update = matrix_spectrum(p.param - f.before.at(p.name));
        CHECK(m["update"]["sigma_max"].get<double>() == update.sigma_max);
        CHECK(m["update"]["eff_rank"].get<double>() == update.eff_rank);
      }
    }
    CHECK_FALSE(recorder.record(f.params, f.before, 5)["matrices"][0].contains("singular_values"));
    return 0;
  });
}

TEST_CASE("the spectral record is the same with one thread and with two") {
  Fixture f;
  for (const std::string method : {"svd", "power"}) {
    INFO(method);
    SpectralRecorder one(method, 0), two(method, 0);
    for (int64_t step : {1, 2}) {  // power: a cold record, then a warm one
      nlohmann::json a = with_threads(1, [&] { return one.record(f.params, f.before, step); });
      nlohmann::json b = with_threads(2, [&] { return two.record(f.params, f.before, step); });
      a.erase("seconds"), b.erase("seconds");
      CHECK(a.dump() == b.dump());
    }
  }
}
