// The synthetic facts corpus (`muonlab facts`) and its per-bucket probe: the vocabulary, buckets
// and probe set; the shards hold well-formed facts at the buckets' frequencies, with the asked-for
// label noise; an existing corpus is never replaced by accident; facts.json is checked on read;
// the packed probe scores exactly what one fact at a time scores; and through the CLI, a LLaMA
// run on a small corpus writes bucket records, learns its head bucket, resumes exactly and shows
// up in `compare`.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "data/facts_corpus.h"
#include "data/token_shard.h"
#include "models/llama.h"
#include "src/train/facts_probe.h"
#include "tests/run_fixture.h"
#include "tests/test_util.h"

using Catch::Matchers::Contains;
using muonlab::FactsCorpus;
using muonlab::FactsSpec;
using muonlab::FactsVocab;
using muonlab::test::numbers_of;
using muonlab::test::read_file;
using muonlab::test::records;
using muonlab::test::run_muonlab;
using muonlab::test::source_path;
using muonlab::test::TempDir;
using muonlab::test::write_file;

namespace {

FactsSpec small_spec() {
  FactsSpec s;
  s.subjects = 64, s.relations = 2, s.groups = 4, s.objects = 32, s.object_tokens = 1;
  s.train_facts = 20000, s.val_facts = 1000, s.probe_per_bucket = 20;
  return s;
}

// The facts of a shard, each as its tokens (the stream is whole facts back to back).
std::vector<std::vector<uint32_t>> facts_in(const std::string& shard_path, int64_t fact_tokens) {
  muonlab::TokenShard shard(shard_path);
  REQUIRE(shard.size() % fact_tokens == 0);
  std::vector<std::vector<uint32_t>> facts;
  for (uint64_t i = 0; i < shard.size(); i += fact_tokens) {
    std::vector<uint32_t> fact;
    for (int64_t t = 0; t < fact_tokens; ++t) fact.push_back(shard.token(i + t));
    facts.push_back(fact);
  }
  return facts;
}

std::string facts_command(const std::string& out, const std::string& extra = "") {
  return "facts --out " + out +
         " --subjects 64 --relations 2 --groups 4 --objects 32 --object-tokens 1 "
         "--train-facts 50000 --val-facts 2000 " +
         extra;
}

muonlab::test::CommandResult train_facts(const std::string& corpus, const std::string& out_dir,
                                         const std::string& extra) {
  return run_muonlab("train " + source_path("configs/facts/base.yaml") +
                     " --set threads=2 --set model.vocab_size=100 --set model.seq_len=32"
                     " --set data.train=" +
                     corpus + "/train.bin --set data.val=" + corpus +
                     "/val.bin --set data.facts=" + corpus +
                     "/facts.json"
                     " --set data.probe_every=20 --set train.eval_every=100"
                     " --set schedule.warmup_steps=20 --set train.out_dir=" +
                     out_dir + " --quiet " + extra);
}

}  // namespace

TEST_CASE("a facts corpus: vocabulary, power-law buckets, probe set and fixed objects") {
  const FactsCorpus c = muonlab::make_facts_corpus(small_spec());
  CHECK(c.vocab.size() == 2 + 64 + 2 + 32);
  CHECK(c.vocab.subject(0) == 2);
  CHECK(c.vocab.relation(0) == 66);
  CHECK(c.vocab.object(31) == 99);
  REQUIRE(c.buckets.size() == 4);
  double total = 0;
  for (const auto& b : c.buckets) total += b.mass;
  CHECK(total == Approx(1.0));
  CHECK(c.buckets[0].mass / c.buckets[3].mass == Approx(std::pow(4.0, 1.5)));  // i^-β
  CHECK(c.buckets[2].first_subject == 32);
  // 16 subjects x 2 relations = 32 facts per bucket; 20 probed, spread over all of them.
  const auto& probe = c.buckets[1].probe;
  REQUIRE(probe.size() == 20);
  CHECK(probe.front() == 32);
  CHECK(probe.back() >= 60);
  CHECK(probe.back() < 64);
  CHECK(c.objects.size() == 128);
  CHECK(c.fact(5) ==
        std::vector<uint32_t>{4, 67, FactsVocab::kArrow, c.objects[5][0], FactsVocab::kEnd});
  // Objects are a function of the seed.
  auto other = small_spec();
  CHECK(muonlab::make_facts_corpus(small_spec()).objects == c.objects);
  other.seed = 1;
  CHECK(muonlab::make_facts_corpus(other).objects != c.objects);
  // Out-of-range specs name the option.
  other.groups = 5;
  CHECK_THROWS_WITH(muonlab::make_facts_corpus(other), Contains("--groups"));
  other = small_spec();
  other.label_noise = 1.0;
  CHECK_THROWS_WITH(muonlab::make_facts_corpus(other), Contains("--label-noise"));
}

TEST_CASE("facts shards hold well-formed facts at the buckets' frequencies") {
  TempDir dir;
  auto spec = small_spec();
  auto written = muonlab::write_facts_corpus(spec, dir.str(), false);
  const FactsCorpus c = muonlab::read_facts_corpus(dir.str("facts.json"));
  CHECK(c.objects == muonlab::make_facts_corpus(spec).objects);
  CHECK(written.train_tokens == 20000 * 5);
  CHECK(written.noisy_train_facts == 0);
  auto facts = facts_in(dir.str("train.bin"), c.fact_tokens());
  REQUIRE(facts.size() == 20000);
  std::vector<double> share(4, 0);
  for (const auto& f : facts) {
    REQUIRE(f[2] == FactsVocab::kArrow);
    REQUIRE(f[4] == FactsVocab::kEnd);
    const int64_t subject = f[0] - 2, relation = f[1] - 66;
    REQUIRE(subject >= 0);
    REQUIRE(subject < 64);
    REQUIRE(relation >= 0);
    REQUIRE(relation < 2);
    REQUIRE(f[3] == c.objects[subject * 2 + relation][0]);  // no label noise: the true object
    share[subject / 16] += 1.0 / 20000;
  }
  for (size_t b = 0; b < 4; ++b) CHECK(share[b] == Approx(c.buckets[b].mass).margin(0.015));
  CHECK(facts_in(dir.str("val.bin"), 5).size() == 1000);
  CHECK_THAT(read_file(dir.path() / "vocab.txt"), Contains("2\tS0\tsubject\t1\t") &&
                                                      Contains("66\tR0\trelation") &&
                                                      Contains("99\tO31\tobject token"));
}

TEST_CASE("label noise replaces the asked-for share of objects") {
  TempDir dir;
  auto spec = small_spec();
  spec.label_noise = 0.3;
  auto written = muonlab::write_facts_corpus(spec, dir.str(), false);
  const FactsCorpus c = muonlab::read_facts_corpus(dir.str("facts.json"));
  CHECK(static_cast<double>(written.noisy_train_facts) / 20000 == Approx(0.3).margin(0.015));
  double wrong = 0;
  for (const auto& f : facts_in(dir.str("train.bin"), 5))
    wrong += f[3] != c.objects[(f[0] - 2) * 2 + (f[1] - 66)][0];
  // A random object is the true one 1 time in 32.
  CHECK(wrong / 20000 == Approx(0.3 * 31 / 32).margin(0.015));
}

TEST_CASE("an existing facts corpus is kept unless overwrite is asked for") {
  TempDir dir;
  muonlab::write_facts_corpus(small_spec(), dir.str(), false);
  const std::string before = read_file(dir.path() / "facts.json");
  const std::string train_before = read_file(dir.path() / "train.bin");
  auto other = small_spec();
  other.seed = 7;
  CHECK_THROWS_WITH(muonlab::write_facts_corpus(other, dir.str(), false),
                    Contains("exists") && Contains("--overwrite"));
  CHECK(read_file(dir.path() / "facts.json") == before);
  CHECK(read_file(dir.path() / "train.bin") == train_before);
  muonlab::write_facts_corpus(other, dir.str(), true);
  CHECK(read_file(dir.path() / "facts.json") != before);
  // No staging directory is left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    entries += !e.is_directory();
  CHECK(entries == 4);
}

TEST_CASE("a damaged facts.json is refused with the file named") {
  TempDir dir;
  CHECK_THROWS_WITH(muonlab::read_facts_corpus(dir.str("none.json")), Contains("none.json"));
  write_file(dir.path() / "bad.json", "{not json");
  CHECK_THROWS_WITH(muonlab::read_facts_corpus(dir.str("bad.json")),
                    Contains("bad.json") && Contains("not valid JSON"));
  write_file(dir.path() / "other.json", "{\"format\": \"something else\"}");
  CHECK_THROWS_WITH(muonlab::read_facts_corpus(dir.str("other.json")),
                    Contains("not a muonlab facts description"));
  muonlab::write_facts_corpus(small_spec(), dir.str("c"), false);
  auto j = nlohmann::json::parse(read_file(dir.path() / "c" / "facts.json"));
  j["objects"].erase(j["objects"].begin());
  write_file(dir.path() / "short.json", j.dump());
  CHECK_THROWS_WITH(muonlab::read_facts_corpus(dir.str("short.json")),
                    Contains("127 objects for 128 facts") && Contains("muonlab facts --out"));
}

TEST_CASE("the packed probe scores what one fact at a time scores") {
  const FactsCorpus c = muonlab::make_facts_corpus(small_spec());
  torch::manual_seed(3);
  muonlab::LlamaConfig cfg;
  cfg.vocab_size = static_cast<int64_t>(c.vocab.size());
  cfg.d_model = 32, cfg.n_layers = 1, cfg.n_heads = 2, cfg.n_kv_heads = 2, cfg.seq_len = 6;
  cfg.init_std = 0.5;  // distinct logits: no near-ties for argmax
  muonlab::Llama model(cfg);
  // seq_len = 1 + fact length: one fact per row, so each fact sees only the leading ".".
  muonlab::FactsProbe probe(c, 6, 8, 0.95);
  auto record = probe.record(*model, "fp32", 0, true);
  REQUIRE(record["buckets"].size() == 4);
  torch::NoGradGuard no_grad;
  for (size_t b = 0; b < 4; ++b) {
    double loss = 0, correct = 0;
    for (int64_t id : c.buckets[b].probe) {
      auto tokens = c.fact(id);
      std::vector<int64_t> row{FactsVocab::kEnd};
      row.insert(row.end(), tokens.begin(), tokens.end());
      auto logits = model->forward(torch::tensor(row).unsqueeze(0))[0][3];  // at the "->"
      auto logp = torch::log_softmax(logits.to(torch::kDouble), 0);
      loss -= logp[tokens[3]].item<double>();
      correct += logp.argmax().item<int64_t>() == tokens[3];
    }
    const auto& got = record["buckets"][b];
    CHECK(got["items"] == 20);
    CHECK(got["loss"].get<double>() == Approx(loss / 20).epsilon(1e-5));
    CHECK(got["accuracy"].get<double>() == correct / 20);
  }
  CHECK(record["threshold_on"] == "accuracy");
  CHECK(record["steps_to_threshold"][0].is_null());  // an untrained model knows no fact
  // Packed rows (10 facts in 64 tokens) score every probe fact too.
  muonlab::FactsProbe packed(c, 64, 8, 0.95);
  cfg.seq_len = 64;
  muonlab::Llama long_model(cfg);
  auto packed_record = packed.record(*long_model, "fp32", 0, false);
  CHECK(packed_record["buckets"][3]["items"] == 20);
  CHECK_FALSE(packed_record.contains("steps_to_threshold"));
  CHECK_THROWS_WITH(muonlab::FactsProbe(c, 5, 8, 0.95),
                    Contains("model.seq_len must be at least 6"));
}

TEST_CASE("muonlab facts then train: bucket records, a learned head bucket, compare", "[slow]") {
  TempDir dir;
  auto made = run_muonlab(facts_command(dir.str("corpus")));
  INFO(made.output);
  REQUIRE(made.exit_code == 0);
  CHECK_THAT(made.output, Contains("--set model.vocab_size=100"));
  auto run = train_facts(dir.str("corpus"), dir.str("run"), "--set train.steps=400");
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  auto buckets = records(dir.str("run"), "buckets");
  REQUIRE(buckets.size() == 21);  // steps 0, 20, ..., 400
  CHECK(buckets[1]["step"] == 20);
  CHECK(buckets[0]["buckets"].size() == 4);
  CHECK(buckets[0]["accuracy"].get<double>() < 0.2);  // chance is 1/32
  const auto& last = buckets.back();
  CHECK(last["buckets"][0]["accuracy"].get<double>() >= 0.95);  // the head bucket is learned
  REQUIRE(last["steps_to_threshold"][0].is_number());
  CHECK(last["steps_to_threshold"][0].get<int64_t>() <= 400);
  CHECK_THAT(read_file(dir.path() / "run" / "train.log"),
             Contains("facts probe: 128 facts in 4 buckets") &&
                 Contains("steps to bucket first-object accuracy >= 0.95"));
  auto compared = run_muonlab("compare " + dir.str("run"));
  INFO(compared.output);
  REQUIRE(compared.exit_code == 0);
  CHECK_THAT(compared.output, Contains("steps to bucket accuracy >= 0.95"));
}

TEST_CASE("a run on a facts corpus resumes exactly, probe bookkeeping included", "[slow]") {
  TempDir dir;
  REQUIRE(run_muonlab(facts_command(dir.str("corpus"))).exit_code == 0);
  const std::string setup =
      "--set train.steps=60 --set data.probe_every=10 --set train.ckpt_every=20 "
      "--set optim.lr=0.01 --set optim.adamw.lr=0.01";
  auto straight = train_facts(dir.str("corpus"), dir.str("straight"), setup);
  INFO(straight.output);
  REQUIRE(straight.exit_code == 0);
  REQUIRE(
      train_facts(dir.str("corpus"), dir.str("resumed"), setup + " --stop-after 25").exit_code ==
      0);
  auto rest = train_facts(dir.str("corpus"), dir.str("resumed"), setup + " --resume");
  INFO(rest.output);
  REQUIRE(rest.exit_code == 0);
  CHECK(records(dir.str("straight"), "buckets").size() == 7);
  CHECK(numbers_of(dir.str("resumed")) == numbers_of(dir.str("straight")));
}

TEST_CASE("facts command and config errors are one clear line") {
  TempDir dir;
  auto bad_groups = run_muonlab("facts --out " + dir.str("x") + " --subjects 10 --groups 3");
  CHECK(bad_groups.exit_code == 2);
  CHECK_THAT(bad_groups.output, Contains("--groups: must divide --subjects (10)"));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "x"));
  auto unknown = run_muonlab("facts --out " + dir.str("x") + " --subject 10");
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.output, Contains("unknown option '--subject'"));
  REQUIRE(run_muonlab(facts_command(dir.str("a"))).exit_code == 0);
  auto again = run_muonlab(facts_command(dir.str("a"), "--seed 3"));
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.output, Contains("exists") && Contains("--overwrite"));
  // Probe keys need data.facts.
  auto stray = run_muonlab("train " + source_path("configs/tiny.yaml") +
                           " --set data.probe_every=5 --print-config");
  CHECK(stray.exit_code != 0);
  CHECK_THAT(stray.output, Contains("data.probe_every") && Contains("data.facts"));
  // data.facts: null over a facts config switches the probe off, its keys with it.
  auto nulled = run_muonlab("train " + source_path("configs/facts/base.yaml") +
                            " --set data.facts=null --print-config");
  INFO(nulled.output);
  CHECK(nulled.exit_code == 0);
  CHECK(nulled.output.find("probe_every") == std::string::npos);
  // A description that does not belong to the shards.
  REQUIRE(run_muonlab("facts --out " + dir.str("b") +
                      " --subjects 32 --groups 4 --objects 32 --object-tokens 1 --train-facts 100")
              .exit_code == 0);
  auto mismatch =
      train_facts(dir.str("a"), dir.str("run"), "--set data.facts=" + dir.str("b") + "/facts.json");
  CHECK(mismatch.exit_code == 1);
  CHECK_THAT(mismatch.output, Contains("describes a vocabulary of") && Contains("train.bin"));
  // Same vocabulary, other shards: the token counts give it away.
  REQUIRE(run_muonlab(facts_command(dir.str("c"), "--train-facts 1000")).exit_code == 0);
  auto other_shards =
      train_facts(dir.str("a"), dir.str("run"), "--set data.facts=" + dir.str("c") + "/facts.json");
  CHECK(other_shards.exit_code == 1);
  CHECK_THAT(other_shards.output, Contains("was written with shards of 5000 and"));
}
