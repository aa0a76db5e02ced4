// End to end through the CLI: tokenize a generated corpus, train configs/tiny.yaml, check the
// loss falls well below log(vocab), the metrics records, exact resume (N straight vs N/2 + resume
// + N/2, AdamW and Muon, with gradient accumulation), run-directory protection and compare.
#include <torch/torch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <random>

#include "models/llama.h"
#include "optim/registry.h"
#include "tests/run_fixture.h"
#include "tests/test_util.h"

using Catch::Matchers::Contains;
using muonlab::test::run_muonlab;
using muonlab::test::TempDir;
namespace fs = std::filesystem;

using muonlab::test::checkpoint_weights;
using muonlab::test::corpus;
using muonlab::test::records;
using muonlab::test::train;
using muonlab::test::train_losses;

TEST_CASE("tiny trains: loss falls well below log(vocab) and metrics hold every kind") {
  TempDir runs;
  std::string out = runs.str("tiny");
  auto r =
      train(out, "--set train.steps=80 --set train.eval_every=40 --set train.spectrum_every=40");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);

  auto val = records(out, "val");
  REQUIRE(val.size() == 3);  // step 0, 40, 80
  CHECK(val.front()["step"] == 0);
  CHECK(val.front()["loss"].get<double>() == Approx(std::log(512.0)).epsilon(0.05));
  CHECK(val.back()["loss"].get<double>() < std::log(512.0) - 3.0);
  CHECK(val.back().contains("bpb"));
  CHECK(val.back()["ppl"].get<double>() == Approx(std::exp(val.back()["loss"].get<double>())));

  auto train_records = records(out, "train");
  REQUIRE(train_records.size() == 80);
  for (auto key : {"loss", "lr", "grad_norm", "tokens", "tok_per_s", "mfu"})
    CHECK(train_records.back().contains(key));
  const auto& groups = train_records.back()["groups"];
  CHECK(groups["adamw"]["lr"] == train_records.back()["lr"]);
  CHECK(groups["adamw"]["momentum"].get<double>() == Approx(0.9));  // beta1
  CHECK(groups["aux_adamw"]["weight_decay"].get<double>() == Approx(0.1));
  CHECK(train_records.back()["tokens"] == 80 * 8 * 32);

  // One run record, stating the machine; mfu is relative to the GEMM peak it measured.
  auto run = records(out, "run");
  REQUIRE(run.size() == 1);
  CHECK(run[0]["step"] == 0);
  CHECK(run[0]["resumed"] == false);
  CHECK(run[0]["threads"] == 2);
  CHECK(run[0]["gemm_peak_source"] == "measured");
  CHECK_FALSE(run[0]["blas"].get<std::string>().empty());
  const double peak = run[0]["gemm_peak_gflops"].get<double>();
  CHECK(peak > 1);
  muonlab::LlamaConfig tiny;
  tiny.vocab_size = 512, tiny.d_model = 64, tiny.n_layers = 2, tiny.n_heads = 4;
  tiny.n_kv_heads = 2, tiny.seq_len = 32;
  const auto& last = train_records.back();
  CHECK(last["mfu"].get<double>() == Approx(last["tok_per_s"].get<double>() *
                                            muonlab::llama_flops_per_token(tiny) / (peak * 1e9)));
  CHECK_THAT(muonlab::test::read_file(out + "/train.log"), Contains("mfu is relative to"));

  auto spectral = records(out, "spectral");
  REQUIRE(spectral.size() == 5);  // step 0, 20, 40, 60, 80
  CHECK(spectral.back()["seconds"].get<double>() > 0);
  const auto& matrices = spectral.back()["matrices"];
  REQUIRE(matrices.size() == 2 * 7 + 2);  // 7 per block + embedding + head
  bool saw_wq = false;
  for (const auto& m : matrices) {
    CHECK(m["stable_rank"].get<double>() >= 1.0 - 1e-6);
    CHECK(m["stable_rank"].get<double>() <= std::min(m["shape"][0], m["shape"][1]).get<double>());
    CHECK(m["condition"].get<double>() >= 1.0);
    CHECK(m["rms"].get<double>() > 0);
    REQUIRE(m.contains("update"));
    CHECK(m["update"].contains("rms"));
    if (m["name"] == "blocks.0.attn.wq") saw_wq = true;
  }
  CHECK(saw_wq);
  // Full singular value lists only at multiples of spectrum_every (40), descending.
  CHECK_FALSE(spectral[1]["matrices"][0].contains("singular_values"));
  const auto& with_list = spectral[2]["matrices"][1];
  REQUIRE(with_list.contains("singular_values"));
  auto values = with_list["singular_values"].get<std::vector<double>>();
  CHECK(values.size() == std::min(with_list["shape"][0], with_list["shape"][1]).get<size_t>());
  CHECK(std::is_sorted(values.rbegin(), values.rend()));
  CHECK(values.front() == Approx(with_list["sigma_max"].get<double>()));
  CHECK(fs::exists(out + "/config.yaml"));
  CHECK(fs::exists(out + "/train.log"));
  CHECK(fs::exists(out + "/checkpoints/step_0000080/manifest.json"));
}

TEST_CASE("spectral_method power gives svd's sigma_max and stable rank without changing training") {
  TempDir runs;
  const std::string common =
      "--set optim.kind=muon --set train.steps=40 --set train.eval_every=40 "
      "--set train.spectral_every=10 --set train.spectrum_every=20";
  auto svd = train(runs.str("svd"), common);
  auto power = train(runs.str("power"), common + " --set train.spectral_method=power");
  INFO(svd.output << power.output);
  REQUIRE(svd.exit_code == 0);
  REQUIRE(power.exit_code == 0);
  CHECK(train_losses(runs.str("svd")) == train_losses(runs.str("power")));
  auto exact = records(runs.str("svd"), "spectral");
  auto cheap = records(runs.str("power"), "spectral");
  REQUIRE(exact.size() == 5);
  REQUIRE(cheap.size() == 5);
  CHECK(cheap[1]["method"] == "power");
  for (size_t r = 0; r < exact.size(); ++r) {
    const bool full = cheap[r]["step"].get<int64_t>() % 20 == 0;  // spectrum steps use the SVD
    for (size_t i = 0; i < exact[r]["matrices"].size(); ++i) {
      const auto& e = exact[r]["matrices"][i];
      const auto& c = cheap[r]["matrices"][i];
      INFO("step " << cheap[r]["step"] << " " << c["name"]);
      CHECK(c["sigma_max"].get<double>() == Approx(e["sigma_max"].get<double>()).epsilon(1e-3));
      CHECK(c["stable_rank"].get<double>() == Approx(e["stable_rank"].get<double>()).epsilon(2e-3));
      CHECK(c["fro_norm"].get<double>() == Approx(e["fro_norm"].get<double>()).epsilon(1e-9));
      CHECK(c["eff_rank"].is_null() != full);
      if (!full) {  // weights: a separated top singular value, so the bound brackets the truth
        const double bound = c.at("sigma_max_bound").get<double>();
        CHECK(bound < 1e-2);
        CHECK(e["sigma_max"].get<double>() <= c["sigma_max"].get<double>() * (1 + bound));
      }
      if (!e.contains("update")) continue;
      // Muon's updates crowd their singular values near the top, where the iteration can stall a
      // little below sigma_max (there the residual bound is not guaranteed to bracket it).
      const double truth = e["update"]["sigma_max"].get<double>();
      const double estimate = c["update"]["sigma_max"].get<double>();
      CHECK(estimate == Approx(truth).epsilon(1e-2));
      CHECK(estimate <= truth * (1 + 1e-9));
    }
  }
}

TEST_CASE("N steps straight equal N/2 + resume + N/2, bit for bit", "[slow]") {
  // The schedules variant resumes in the middle of a momentum warmup and of weight-decay and lr
  // schedules of their own.
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"adamw", "--set optim.kind=adamw"},
      {"muon", "--set optim.kind=muon --set optim.lr=0.02"},
      {"muon with schedules",
       "--set optim.kind=muon --set optim.lr=0.02 --set optim.momentum_warmup_steps=20 "
       "--set optim.adamw.schedules.weight_decay.min_ratio=0 "
       "--set optim.schedules.lr.kind=wsd --set optim.schedules.lr.decay_fraction=0.6"}};
  for (const auto& variant : variants) {
    DYNAMIC_SECTION(variant.first) {
      TempDir runs;
      std::string common =
          variant.second +
          " --set train.steps=24 --set train.grad_accum=2 --set train.ckpt_every=6";
      auto straight = train(runs.str("straight"), common);
      INFO(straight.output);
      REQUIRE(straight.exit_code == 0);

      auto first = train(runs.str("split"), common + " --stop-after 12");
      REQUIRE(first.exit_code == 0);
      CHECK(train_losses(runs.str("split")).size() == 12);
      auto second = train(runs.str("split"), common + " --resume");
      INFO(second.output);
      REQUIRE(second.exit_code == 0);

      // Each invocation states its machine in a run record of its own.
      auto run = records(runs.str("split"), "run");
      REQUIRE(run.size() == 2);
      CHECK(run[1]["resumed"] == true);
      CHECK(run[1]["step"] == 12);

      auto a = train_losses(runs.str("straight"));
      auto b = train_losses(runs.str("split"));
      REQUIRE(a.size() == 24);
      REQUIRE(b.size() == 24);
      for (const auto& [step, loss] : a) {
        INFO("step " << step);
        CHECK(b[step] == loss);  // exact equality
      }
      auto wa = checkpoint_weights(runs.path() / "straight/checkpoints/step_0000024");
      auto wb = checkpoint_weights(runs.path() / "split/checkpoints/step_0000024");
      REQUIRE(wa.size() == wb.size());
      for (const auto& [name, tensor] : wa) {
        INFO(name);
        CHECK(torch::equal(tensor, wb.at(name)));
      }
    }
  }
}

TEST_CASE("resume skips a checkpoint whose files do not verify") {
  TempDir runs;
  std::string out = runs.str("run");
  REQUIRE(train(out, "--set train.steps=20 --set train.ckpt_every=5 --stop-after 10").exit_code ==
          0);
  // Corrupt the newest checkpoint: resuming must fall back to step 5 and say why.
  auto model = fs::path(out) / "checkpoints/step_0000010/model.pt";
  fs::resize_file(model, fs::file_size(model) - 10);
  auto r = muonlab::test::run_shell(
      muonlab::test::train_command(out, "--set train.steps=20 --set train.ckpt_every=5 --resume"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Contains("step_0000010"));
  CHECK_THAT(r.output, Contains("resumed from"));
  CHECK_THAT(r.output, Contains("step_0000005"));
  CHECK(train_losses(out).size() == 20);
}

TEST_CASE("a run directory with checkpoints is not overwritten by accident") {
  TempDir runs;
  std::string out = runs.str("run");
  REQUIRE(train(out, "--set train.steps=4 --set schedule.warmup_steps=2").exit_code == 0);
  auto again = train(out, "--set train.steps=4 --set schedule.warmup_steps=2");
  CHECK(again.exit_code != 0);
  CHECK_THAT(again.output, Contains("already holds checkpoints"));
  CHECK(fs::exists(out + "/checkpoints/step_0000004/manifest.json"));
  auto changed = train(
      out, "--set train.steps=8 --set schedule.warmup_steps=2 --set model.d_model=32 --resume");
  CHECK(changed.exit_code != 0);
  CHECK_THAT(changed.output, Contains("model.d_model"));
  CHECK(train(out, "--set train.steps=4 --set schedule.warmup_steps=2 --overwrite").exit_code == 0);
}

TEST_CASE("bad data paths and vocab mismatches fail with one clear line") {
  TempDir runs;
  auto one_line = [](const muonlab::test::CommandResult& r) {
    return std::count(r.output.begin(), r.output.end(), '\n') == 1;
  };
  auto missing = train(runs.str("a"), "--set data.train=" + runs.str("nope.bin"));
  CHECK(missing.exit_code != 0);
  CHECK_THAT(missing.output, Contains("nope.bin"));
  CHECK(one_line(missing));

  auto small_vocab = train(runs.str("b"), "--set model.vocab_size=100");
  CHECK(small_vocab.exit_code != 0);
  CHECK_THAT(small_vocab.output, Contains("model.vocab_size"));
  CHECK(one_line(small_vocab));

  auto long_window = train(runs.str("c"), "--set model.seq_len=100000");
  CHECK(long_window.exit_code != 0);
  CHECK_THAT(long_window.output, Contains("seq_len"));
  CHECK(one_line(long_window));

  // A tokenizer with another vocabulary than the shards were written with.
  muonlab::test::write_file(runs.path() / "other.txt", muonlab::test::generated_corpus(500));
  REQUIRE(run_muonlab("tokenize --input " + runs.str("other.txt") + " --vocab-size 400 --out " +
                      runs.str("other"))
              .exit_code == 0);
  auto mismatch = train(runs.str("d"), "--set data.tokenizer=" + runs.str("other/tokenizer.model"));
  CHECK(mismatch.exit_code != 0);
  CHECK_THAT(mismatch.output, Contains("tokenizer"));
  CHECK(one_line(mismatch));
}

TEST_CASE("tokenize refuses empty and binary input without touching the output") {
  TempDir dir;
  muonlab::test::write_file(dir.path() / "empty.txt", "");
  muonlab::test::write_file(dir.path() / "binary.txt", std::string("\x7f"
                                                                   "ELF\0\0\x01\x02",
                                                                   8));
  for (auto name : {"empty.txt", "binary.txt"}) {
    auto r = run_muonlab("tokenize --input " + dir.str(name) + " --vocab-size 400 --out " +
                         dir.str("out"));
    INFO(r.output);
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.output, Contains(name));
    CHECK_FALSE(fs::exists(dir.path() / "out" / "train.bin"));
  }
}

TEST_CASE("compare prints one row per run with losses and stable ranks") {
  TempDir runs;
  REQUIRE(train(runs.str("adamw"), "--set train.steps=20").exit_code == 0);
  REQUIRE(train(runs.str("muon"), "--set train.steps=20 --set optim.kind=muon --set optim.lr=0.02")
              .exit_code == 0);
  auto r = run_muonlab("compare " + runs.str("adamw") + " " + runs.str("muon"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Contains("SR attn"));
  CHECK_THAT(r.output, Contains(" adamw "));
  CHECK_THAT(r.output, Contains(" muon "));
  CHECK_FALSE(Contains("nan").match(r.output));
  auto none = run_muonlab("compare " + runs.str("absent"));
  CHECK(none.exit_code != 0);
}

TEST_CASE("a fresh run in a directory without checkpoints starts a new metrics file") {
  TempDir runs;
  std::string out = runs.str("run");
  fs::create_directories(out);
  muonlab::test::write_file(out + "/metrics.jsonl",
                            "{\"kind\":\"train\",\"step\":99,\"loss\":1}\n");
  REQUIRE(train(out, "--set train.steps=4 --set schedule.warmup_steps=2").exit_code == 0);
  auto losses = train_losses(out);
  CHECK(losses.size() == 4);
  CHECK(losses.count(99) == 0);
}

TEST_CASE("bench times the training step, every optimizer and Newton-Schulz per shape") {
  auto r = run_muonlab("bench " + muonlab::test::source_path("configs/tiny.yaml") +
                       " --repeats 1 --warmup 1 --set threads=2");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Contains("training step:"));
  CHECK_THAT(r.output, Contains("MFU"));
  CHECK_THAT(r.output, Contains("peak resident memory"));
  CHECK_THAT(r.output, Contains("ns/param"));
  for (const auto& kind : muonlab::optimizer_kinds()) CHECK_THAT(r.output, Contains(kind + " "));
  // tiny: d_model 64, 4 heads x 16 (2 kv heads), ffn 192, 2 layers.
  CHECK_THAT(r.output, Contains("64x64            4"));  // wq, wo
  CHECK_THAT(r.output, Contains("32x64            4"));  // wk, wv
  CHECK_THAT(r.output, Contains("192x64           4"));  // w1, w3
  CHECK_THAT(r.output, Contains("64x192           2"));  // w2
  CHECK_THAT(r.output, Contains("Newton-Schulz total"));
  auto bad =
      run_muonlab("bench " + muonlab::test::source_path("configs/tiny.yaml") + " --repeats 0");
  CHECK(bad.exit_code != 0);
}

TEST_CASE("bf16 on a CPU without AVX-512 warns that fp32 is the faster choice") {
  auto r = run_muonlab("bench " + muonlab::test::source_path("configs/tiny.yaml") +
                       " --step-only --repeats 1 --warmup 0 --set threads=2" +
                       " --set train.precision=bf16");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
  const bool avx512 = false;
#endif
  CHECK((r.output.find("bf16 matmuls have no fast kernel on this CPU") != std::string::npos) ==
        !avx512);
  auto fp32 = run_muonlab("bench " + muonlab::test::source_path("configs/tiny.yaml") +
                          " --step-only --repeats 1 --warmup 0 --set threads=2");
  CHECK(fp32.exit_code == 0);
  CHECK(fp32.output.find("no fast kernel") == std::string::npos);
}

TEST_CASE("bench --json prints one object with the step's split, peaks and memory") {
  // Progress lines go to stderr; stdout must be the JSON object alone.
  auto r = muonlab::test::run_shell("(" + std::string(MUONLAB_BINARY) + " bench " +
                                    muonlab::test::source_path("configs/tiny.yaml") +
                                    " --json --step-only --repeats 3 --warmup 1 --set threads=2" +
                                    " 2>/dev/null)");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.output);
  CHECK(j["kind"] == "bench");
  CHECK(j["threads"] == 2);
  CHECK(j["repeats"] == 3);
  const double step = j["step_s"], tokens_per_s = j["tokens_per_s"];
  CHECK(tokens_per_s == Approx(8 * 32 / step));  // tiny: batch 8 x seq 32
  double phases = 0;
  for (const char* phase : {"data", "forward", "backward", "optimizer"}) {
    const double s = j["split_s"][phase];
    CHECK(s > 0);
    phases += s;
  }
  CHECK(phases == Approx(step).epsilon(0.5));  // medians of phases against the median of sums
  const int64_t params = muonlab::llama_param_count(
      muonlab::LlamaConfig{512, 64, 2, 4, 2, 0, 32, false, 10000.0, 1e-5, 0.02});
  CHECK(j["model"]["params"] == params);
  CHECK(j["optimizer_state_bytes"] == 2 * 4 * params);  // AdamW: two fp32 moments
  CHECK(j["peak_rss_bytes"].get<double>() > 50e6);      // LibTorch alone is bigger than this
  CHECK(j["gemm_peak_gflops"]["fp32"].get<double>() > 0);
  CHECK(j["gemm_peak_gflops"]["bf16"].get<double>() > 0);
  CHECK(j["mfu"]["fp32"].get<double>() ==
        Approx(j["gflops"].get<double>() / j["gemm_peak_gflops"]["fp32"].get<double>()));
  // tiny: wq and wo share a shape (256 x 64 -> 64), wk/wv another (-> 32); then the head.
  std::vector<std::string> names;
  for (const auto& s : j["gemm_shapes"]) names.push_back(s["name"]);
  CHECK_THAT(names, Catch::Matchers::VectorContains(std::string("lm_head")));
  CHECK_THAT(names, Catch::Matchers::VectorContains(std::string("wk/wv")));
  CHECK_FALSE(j.contains("optimizers"));  // --step-only
}

TEST_CASE("bench --profile lists the step's operators by self time") {
  const std::string bench = std::string(MUONLAB_BINARY) + " bench " +
                            muonlab::test::source_path("configs/tiny.yaml") +
                            " --step-only --repeats 1 --warmup 1 --set threads=2";
  auto r = muonlab::test::run_shell("(" + bench + " --profile 2 --json 2>/dev/null)");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const nlohmann::json p = nlohmann::json::parse(r.output)["profile"];
  CHECK(p["runs"] == 2);
  double self = 0, previous = 1e300;
  std::vector<std::string> names;
  for (const auto& op : p["ops"]) {
    const double s = op["self_s"];
    CHECK(s <= previous);  // largest first
    CHECK(op["total_s"].get<double>() >= 0);
    previous = s;
    self += s;
    names.push_back(op["name"]);
  }
  // The projections: LibTorch's product on the BLAS, or muonlab's dense layer where oneDNN's fp32
  // GEMM is wider (models/kernels/sgemm.h).
  CHECK((std::find(names.begin(), names.end(), "aten::mm") != names.end() ||
         std::find(names.begin(), names.end(), "muonlab::dense") != names.end()));
  CHECK(self > 0);
  CHECK(self <= p["wall_s"].get<double>() * 1.01);  // self times partition, never exceed, the step
  // The text report, and a config name starting with a digit is not taken as the step count.
  r = muonlab::test::run_shell("(d=$(mktemp -d) && cp " +
                               muonlab::test::source_path("configs/tiny.yaml") +
                               " $d/125m.yaml && cd $d && " + std::string(MUONLAB_BINARY) +
                               " bench --profile 125m.yaml --step-only --repeats 1 --warmup 0" +
                               " --set threads=2 2>&1; s=$?; rm -rf $d; exit $s)");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("where the time goes") &&
                           (Catch::Contains("aten::mm") || Catch::Contains("muonlab::dense")));
  r = muonlab::test::run_shell("(" + std::string(MUONLAB_BINARY) +
                               " bench --profile 0 configs/tiny.yaml 2>&1)");
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.output, Catch::Contains("--profile: steps must be in [1, 1000]"));
}
