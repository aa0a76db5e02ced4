// Checkpoint store: exact save/load round trip, manifest contents, detection of every kind of
// damage (truncated file, flipped byte, missing manifest, other format version) with fallback to
// the previous checkpoint, retention (keep_last + keep_every), and a failed write (file size
// limit, standing in for a full disk) that leaves earlier checkpoints intact.
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/llama.h"
#include "optim/registry.h"
#include "src/train/checkpoint.h"
#include "tests/test_util.h"

using namespace muonlab;
using Catch::Matchers::Contains;
using muonlab::test::TempDir;
namespace fs = std::filesystem;

namespace {

LlamaConfig tiny_model() {
  LlamaConfig c;
  c.vocab_size = 64;
  c.d_model = 32;
  c.n_layers = 1;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.seq_len = 8;
  return c;
}

// A model and a Muon+AdamW optimizer that has taken `steps` steps on random data.
struct Trained {
  Llama model{tiny_model()};
  std::vector<NamedParam> params;
  std::unique_ptr<OptimizerSet> optimizer;

  explicit Trained(int steps, uint64_t seed = 1) {
    torch::manual_seed(seed);
    model = Llama(tiny_model());
    for (auto& [name, t] : model->named_params()) params.push_back({name, t});
    OptimConfig cfg;
    cfg.kind = "muon";
    cfg.lr = 0.02;
    optimizer = build_optimizer(cfg, params);
    for (int i = 0; i < steps; ++i) {
      auto x = torch::randint(0, 64, {2, 8}, torch::kLong);
      optimizer->zero_grad();
      model->loss(x, x).backward();
      optimizer->step();
    }
  }
};

TrainState state_at(int64_t step) {
  TrainState s;
  s.step = step;
  s.tokens_seen = step * 16;
  s.cursor = {step, 0};
  s.best_val_loss = 3.5;
  return s;
}

void flip_byte(const fs::path& file, size_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

}  // namespace

TEST_CASE("save then load restores weights, optimizer state and train state exactly") {
  TempDir dir;
  CheckpointStore store(dir.path());
  Trained a(3);
  auto path = store.save(state_at(3), a.model->named_params(), *a.optimizer, "seed: 1\n", {});
  CHECK(path.filename() == "step_0000003");

  auto manifest = nlohmann::json::parse(muonlab::test::read_file(path / "manifest.json"));
  CHECK(manifest["format_version"] == kCheckpointFormat);
  CHECK(manifest["step"] == 3);
  CHECK(manifest["tokens_seen"] == 48);
  CHECK(manifest["config_hash"] == text_xxh64("seed: 1\n"));
  for (auto name : {"model.pt", "optim.pt", "rng.pt", "state.json", "config.yaml"})
    CHECK(manifest["files"].contains(name));

  Trained b(0, /*seed=*/99);  // different weights, empty optimizer state
  TrainState restored = CheckpointStore::load(path, b.model->named_params(), *b.optimizer);
  CHECK(restored.step == 3);
  CHECK(restored.cursor.step == 3);
  CHECK(restored.best_val_loss == 3.5);
  CHECK(CheckpointStore::saved_config(path) == "seed: 1\n");
  for (size_t i = 0; i < a.params.size(); ++i)
    CHECK(torch::equal(a.params[i].param, b.params[i].param));

  // One more identical step on both gives identical weights: the optimizer state came back too.
  torch::manual_seed(5);
  auto x = torch::randint(0, 64, {2, 8}, torch::kLong);
  for (auto* t : {&a, &b}) {
    t->optimizer->zero_grad();
    t->model->loss(x, x).backward();
    t->optimizer->step();
  }
  for (size_t i = 0; i < a.params.size(); ++i)
    CHECK(torch::equal(a.params[i].param, b.params[i].param));
}

TEST_CASE("damaged checkpoints are named, explained and skipped") {
  TempDir dir;
  CheckpointStore store(dir.path());
  Trained t(1);
  store.save(state_at(1), t.model->named_params(), *t.optimizer, "", {5, 0});
  auto newest = store.save(state_at(2), t.model->named_params(), *t.optimizer, "", {5, 0});
  std::vector<std::string> skipped;
  auto remember = [&](const std::string& why) { skipped.push_back(why); };

  SECTION("truncated tensor file") {
    fs::resize_file(newest / "model.pt", fs::file_size(newest / "model.pt") - 7);
    CHECK_THROWS_WITH(CheckpointStore::verify(newest), Contains("model.pt has the wrong size"));
  }
  SECTION("flipped byte") {
    flip_byte(newest / "optim.pt", fs::file_size(newest / "optim.pt") / 2);
    CHECK_THROWS_WITH(CheckpointStore::verify(newest), Contains("optim.pt fails its checksum"));
  }
  SECTION("missing manifest") {
    fs::remove(newest / "manifest.json");
    CHECK_THROWS_WITH(CheckpointStore::verify(newest), Contains("no manifest.json"));
  }
  SECTION("manifest from another format version") {
    auto manifest = nlohmann::json::parse(muonlab::test::read_file(newest / "manifest.json"));
    manifest["format_version"] = kCheckpointFormat + 1;
    muonlab::test::write_file(newest / "manifest.json", manifest.dump());
    CHECK_THROWS_WITH(CheckpointStore::verify(newest), Contains("format version"));
  }
  SECTION("manifest that leaves out a file") {
    auto manifest = nlohmann::json::parse(muonlab::test::read_file(newest / "manifest.json"));
    manifest["files"].erase("optim.pt");
    muonlab::test::write_file(newest / "manifest.json", manifest.dump());
    CHECK_THROWS_WITH(CheckpointStore::verify(newest), Contains("does not list optim.pt"));
  }
  SECTION("manifest naming a file outside the checkpoint") {
    auto manifest = nlohmann::json::parse(muonlab::test::read_file(newest / "manifest.json"));
    manifest["files"]["../escape"] = manifest["files"]["model.pt"];
    muonlab::test::write_file(newest / "manifest.json", manifest.dump());
    CHECK_THROWS_WITH(CheckpointStore::verify(newest), Contains("invalid file name"));
  }
  SECTION("manifest with a wrongly typed field") {
    auto manifest = nlohmann::json::parse(muonlab::test::read_file(newest / "manifest.json"));
    manifest["files"]["model.pt"]["bytes"] = "many";
    muonlab::test::write_file(newest / "manifest.json", manifest.dump());
    CHECK_THROWS_WITH(CheckpointStore::verify(newest), Contains("manifest.json is malformed"));
  }
  SECTION("unreadable manifest") {
    muonlab::test::write_file(newest / "manifest.json", "{not json");
    CHECK_THROWS_WITH(CheckpointStore::verify(newest), Contains("manifest.json is unreadable"));
  }
  auto chosen = store.latest_valid(remember);
  REQUIRE(chosen.has_value());
  CHECK(chosen->filename() == "step_0000001");
  REQUIRE(skipped.size() == 1);
  CHECK_THAT(skipped[0], Contains("step_0000002"));
  CHECK_THROWS(CheckpointStore::load(newest, t.model->named_params(), *t.optimizer));
}

TEST_CASE("no checkpoint verifies: latest_valid is empty") {
  TempDir dir;
  CheckpointStore store(dir.path());
  Trained t(1);
  auto only = store.save(state_at(1), t.model->named_params(), *t.optimizer, "", {});
  fs::remove(only / "manifest.json");
  CHECK_FALSE(store.latest_valid({}).has_value());
}

TEST_CASE("retention keeps the newest keep_last plus every keep_every-th") {
  TempDir dir;
  CheckpointStore store(dir.path());
  Trained t(1);
  for (int64_t step = 1; step <= 10; ++step)
    store.save(state_at(step), t.model->named_params(), *t.optimizer, "", {2, 4});
  std::vector<std::string> names;
  for (const auto& p : store.list()) names.push_back(p.filename().string());
  CHECK(names ==
        std::vector<std::string>{"step_0000010", "step_0000009", "step_0000008", "step_0000004"});
  CHECK_FALSE(fs::exists(dir.path() / "checkpoints" / ".tmp_step_0000010"));
}

TEST_CASE("a write that runs out of space fails cleanly and keeps earlier checkpoints") {
  TempDir dir;
  CheckpointStore store(dir.path());
  Trained t(1);
  auto first = store.save(state_at(1), t.model->named_params(), *t.optimizer, "", {});
  REQUIRE(fs::file_size(first / "model.pt") > 32 * 1024);

  // A file size limit makes the write fail with EFBIG, as a full disk fails with ENOSPC.
  auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit saved{};
  getrlimit(RLIMIT_FSIZE, &saved);
  rlimit limited = saved;
  limited.rlim_cur = 16 * 1024;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &limited) == 0);
  std::string error;
  try {
    store.save(state_at(2), t.model->named_params(), *t.optimizer, "", {});
  } catch (const std::exception& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, previous_handler);

  CHECK_THAT(error, Contains("step_0000002: write failed"));
  CHECK_THAT(error, Contains("earlier checkpoints are untouched"));
  CHECK(error.find('\n') == std::string::npos);
  CHECK_NOTHROW(CheckpointStore::verify(first));
  CHECK_FALSE(fs::exists(dir.path() / "checkpoints" / "step_0000002"));
  CHECK_FALSE(fs::exists(dir.path() / "checkpoints" / ".tmp_step_0000002"));
  REQUIRE(store.list().size() == 1);
}

TEST_CASE("saving after resuming from an earlier step removes the abandoned newer checkpoints") {
  TempDir dir;
  CheckpointStore store(dir.path());
  Trained t(1);
  for (int64_t step : {5, 10, 15})
    store.save(state_at(step), t.model->named_params(), *t.optimizer, "", {1, 0});
  CHECK(store.list().size() == 1);  // keep_last 1: only step 15
  // A run resumed from step 10 (say 15 was damaged) now writes step 12 with keep_last 1: the new
  // checkpoint survives and the abandoned step 15 does not.
  for (int64_t step : {20, 30})
    store.save(state_at(step), t.model->named_params(), *t.optimizer, "", {5, 0});
  store.save(state_at(12), t.model->named_params(), *t.optimizer, "", {1, 0});
  auto left = store.list();
  REQUIRE(left.size() == 1);
  CHECK(left[0].filename() == "step_0000012");
  // Steps beyond 7 digits still sort numerically, and stray names are ignored.
  fs::create_directories(dir.path() / "checkpoints" / "step_notanumber");
  store.save(state_at(10000000), t.model->named_params(), *t.optimizer, "", {2, 0});
  left = store.list();
  REQUIRE(left.size() == 2);
  CHECK(left[0].filename() == "step_10000000");
  CHECK(left[1].filename() == "step_0000012");
}

TEST_CASE("re-saving the same step replaces it and leaves no temporary directories") {
  TempDir dir;
  CheckpointStore store(dir.path());
  Trained t(1);
  store.save(state_at(3), t.model->named_params(), *t.optimizer, "a: 1\n", {});
  fs::create_directories(dir.path() / "checkpoints" / ".tmp_step_0000009");
  auto path = store.save(state_at(3), t.model->named_params(), *t.optimizer, "a: 2\n", {});
  CHECK(CheckpointStore::saved_config(path) == "a: 2\n");
  CHECK_NOTHROW(CheckpointStore::verify(path));
  for (const auto& entry : fs::directory_iterator(dir.path() / "checkpoints"))
    CHECK(entry.path().filename().string().rfind("step_", 0) == 0);
}
