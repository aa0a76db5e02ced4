// Implementation of the end-to-end test fixture (corpus, training runs, reading results).
#include "tests/run_fixture.h"

#include <catch2/catch.hpp>
#include <random>

#include "src/train/metrics.h"

namespace muonlab::test {

std::string generated_corpus(int lines) {
  const std::vector<std::string> nouns{"king",  "river", "stone",   "city",     "shepherd",
                                       "house", "field", "servant", "mountain", "lamp"};
  const std::vector<std::string> verbs{"saw", "built", "crossed", "kept", "found", "called"};
  const std::vector<std::string> adjectives{"old", "great", "quiet", "bright", "far", "small"};
  std::mt19937 rng(1234);
  auto pick = [&](const std::vector<std::string>& words) { return words[rng() % words.size()]; };
  std::string text;
  for (int i = 0; i < lines; ++i) {
    text += "and the " + pick(adjectives) + " " + pick(nouns) + " " + pick(verbs) + " the " +
            pick(nouns) + " of the " + pick(nouns) + " in year " + std::to_string(1000 + i % 37) +
            ".\n";
  }
  return text;
}

Corpus::Corpus() {
  write_file(dir_.path() / "text.txt", generated_corpus(4000));
  auto r = run_muonlab("tokenize --input " + dir_.str("text.txt") + " --vocab-size 512 --out " +
                       dir_.str("data"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
}

std::string Corpus::data_overrides() const {
  return " --set data.train=" + dir_.str("data/train.bin") +
         " --set data.val=" + dir_.str("data/val.bin") +
         " --set data.tokenizer=" + dir_.str("data/tokenizer.model");
}

const Corpus& corpus() {
  static Corpus instance;
  return instance;
}

std::string train_command(const std::string& out_dir, const std::string& extra) {
  return std::string(MUONLAB_BINARY) + " train " + source_path("configs/tiny.yaml") +
         corpus().data_overrides() + " --set train.out_dir=" + out_dir + " --set threads=2 " +
         extra;
}

CommandResult train(const std::string& out_dir, const std::string& extra) {
  return run_shell(train_command(out_dir, "--quiet " + extra));
}

std::vector<nlohmann::json> records(const std::string& run_dir, const std::string& kind) {
  std::vector<nlohmann::json> out;
  for (auto& r : read_metrics(run_dir + "/metrics.jsonl"))
    if (r["kind"] == kind) out.push_back(r);
  return out;
}

std::string numbers_of(const std::string& run_dir) {
  std::string out;
  for (const std::string kind : {"train", "val", "buckets", "spectral"})
    for (auto r : records(run_dir, kind)) {
      for (const char* timing : {"tok_per_s", "mfu", "seconds"}) r.erase(timing);
      out += r.dump() + "\n";
    }
  return out;
}

std::map<int64_t, double> train_losses(const std::string& run_dir) {
  std::map<int64_t, double> losses;
  for (auto& r : records(run_dir, "train")) losses[r["step"].get<int64_t>()] = r["loss"];
  return losses;
}

std::map<std::string, torch::Tensor> checkpoint_weights(const std::filesystem::path& dir) {
  torch::serialize::InputArchive archive;
  archive.load_from((dir / "model.pt").string());
  std::map<std::string, torch::Tensor> weights;
  for (const auto& key : archive.keys()) {
    torch::Tensor t;
    archive.read(key, t);
    weights[key] = t;
  }
  return weights;
}

}  // namespace muonlab::test
