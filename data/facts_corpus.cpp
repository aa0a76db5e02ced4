// The facts corpus: the fact table and buckets from a spec, the i.i.d. fact streams written as
// shards, facts.json / vocab.txt, and the reader that checks facts.json.
#include "data/facts_corpus.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/random_stream.h"
#include "data/staging_dir.h"
#include "data/token_shard.h"

namespace muonlab {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "muonlab-facts";
constexpr int kVersion = 1;
constexpr int64_t kMaxFacts = 10'000'000;  // subjects × relations; keeps facts.json in memory
constexpr int64_t kMaxStreamFacts = 50'000'000;  // per shard: at most 1e9 tokens in memory
// Random streams of the seed: the objects, the train facts, the val facts.
constexpr uint64_t kObjectStream = 1, kTrainStream = 2, kValStream = 3;
const char* const kFiles[] = {"train.bin", "val.bin", "facts.json", "vocab.txt"};

void require(bool ok, const std::string& option, const std::string& what) {
  if (!ok) throw std::invalid_argument(option + ": " + what);
}

// Cumulative bucket masses, for drawing a bucket from a uniform number.
std::vector<double> cumulative_masses(const std::vector<FactsBucket>& buckets) {
  std::vector<double> cumulative;
  double sum = 0;
  for (const auto& b : buckets) cumulative.push_back(sum += b.mass);
  cumulative.back() = 1.0;
  return cumulative;
}

// One fact drawn from the corpus distribution, appended to `out`; returns true if its object
// was replaced by a random one (label noise).
bool append_random_fact(const FactsCorpus& c, const std::vector<double>& cumulative,
                        RandomStream& rng, std::vector<uint32_t>& out) {
  const double u = rng.uniform();
  const size_t b =
      std::min(cumulative.size() - 1,
               static_cast<size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) -
                                   cumulative.begin()));
  const FactsBucket& bucket = c.buckets[b];
  const int64_t subject = bucket.first_subject + static_cast<int64_t>(rng.below(bucket.subjects));
  const int64_t relation = static_cast<int64_t>(rng.below(c.spec.relations));
  const bool noisy = c.spec.label_noise > 0 && rng.uniform() < c.spec.label_noise;
  out.push_back(c.vocab.subject(subject));
  out.push_back(c.vocab.relation(relation));
  out.push_back(FactsVocab::kArrow);
  const auto& object = c.objects[subject * c.spec.relations + relation];
  for (uint32_t token : object)
    out.push_back(noisy ? c.vocab.object(static_cast<int64_t>(rng.below(c.spec.objects))) : token);
  out.push_back(FactsVocab::kEnd);
  return noisy;
}

std::vector<uint32_t> fact_stream(const FactsCorpus& c, int64_t facts, uint64_t stream,
                                  uint64_t& noisy) {
  const auto cumulative = cumulative_masses(c.buckets);
  RandomStream rng(c.spec.seed, stream);
  std::vector<uint32_t> tokens;
  tokens.reserve(static_cast<size_t>(facts * c.fact_tokens()));
  for (int64_t i = 0; i < facts; ++i) noisy += append_random_fact(c, cumulative, rng, tokens);
  return tokens;
}

nlohmann::ordered_json spec_json(const FactsSpec& s) {
  return {{"subjects", s.subjects},
          {"relations", s.relations},
          {"objects", s.objects},
          {"object_tokens", s.object_tokens},
          {"groups", s.groups},
          {"zipf", s.zipf},
          {"label_noise", s.label_noise},
          {"train_facts", s.train_facts},
          {"val_facts", s.val_facts},
          {"probe_per_bucket", s.probe_per_bucket},
          {"seed", s.seed}};
}

FactsSpec spec_from_json(const json& j) {
  FactsSpec s;
  s.subjects = j.at("subjects").get<int64_t>();
  s.relations = j.at("relations").get<int64_t>();
  s.objects = j.at("objects").get<int64_t>();
  s.object_tokens = j.at("object_tokens").get<int64_t>();
  s.groups = j.at("groups").get<int64_t>();
  s.zipf = j.at("zipf").get<double>();
  s.label_noise = j.at("label_noise").get<double>();
  s.train_facts = j.at("train_facts").get<int64_t>();
  s.val_facts = j.at("val_facts").get<int64_t>();
  s.probe_per_bucket = j.at("probe_per_bucket").get<int64_t>();
  s.seed = j.at("seed").get<uint64_t>();
  return s;
}

nlohmann::ordered_json corpus_json(const FactsCorpus& c, const FactsWriteResult& written) {
  using ojson = nlohmann::ordered_json;
  ojson buckets = ojson::array();
  for (const auto& b : c.buckets)
    buckets.push_back({{"first_subject", b.first_subject},
                       {"subjects", b.subjects},
                       {"mass", b.mass},
                       {"probe", b.probe}});
  ojson subject_bucket = ojson::array();
  for (size_t b = 0; b < c.buckets.size(); ++b)
    for (int64_t s = 0; s < c.buckets[b].subjects; ++s) subject_bucket.push_back(b);
  return {{"format", kFormat},
          {"version", kVersion},
          {"spec", spec_json(c.spec)},
          {"vocab_size", c.vocab.size()},
          {"tokens",
           {{"end", FactsVocab::kEnd},
            {"arrow", FactsVocab::kArrow},
            {"first_subject", c.vocab.subject(0)},
            {"first_relation", c.vocab.relation(0)},
            {"first_object", c.vocab.object(0)}}},
          {"fact_tokens", c.fact_tokens()},
          {"train",
           {{"file", "train.bin"},
            {"tokens", written.train_tokens},
            {"noisy_facts", written.noisy_train_facts}}},
          {"val",
           {{"file", "val.bin"},
            {"tokens", written.val_tokens},
            {"noisy_facts", written.noisy_val_facts}}},
          {"buckets", buckets},
          {"subject_bucket", subject_bucket},
          {"objects", c.objects}};
}

// vocab.txt: "id<TAB>token<TAB>role" per line, plus bucket and probability for subjects.
std::string vocab_text(const FactsCorpus& c) {
  std::string text = "# id\ttoken\trole\tbucket\tprobability (muonlab facts corpus)\n";
  text += std::to_string(FactsVocab::kEnd) + "\t.\tend of fact\n";
  text += std::to_string(FactsVocab::kArrow) + "\t->\tbefore the object\n";
  for (size_t b = 0; b < c.buckets.size(); ++b) {
    const auto& bucket = c.buckets[b];
    const double p = bucket.mass / static_cast<double>(bucket.subjects);
    char probability[32];
    snprintf(probability, sizeof probability, "%.6g", p);
    for (int64_t s = bucket.first_subject; s < bucket.first_subject + bucket.subjects; ++s)
      text += std::to_string(c.vocab.subject(s)) + "\tS" + std::to_string(s) + "\tsubject\t" +
              std::to_string(b + 1) + "\t" + probability + "\n";
  }
  for (int64_t r = 0; r < c.spec.relations; ++r)
    text += std::to_string(c.vocab.relation(r)) + "\tR" + std::to_string(r) + "\trelation\n";
  for (int64_t o = 0; o < c.spec.objects; ++o)
    text += std::to_string(c.vocab.object(o)) + "\tO" + std::to_string(o) + "\tobject token\n";
  return text;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("facts: cannot write " + path.string() + " (disk full?)");
}

[[noreturn]] void bad_file(const std::string& path, const std::string& what) {
  throw std::runtime_error("facts corpus " + path + ": " + what +
                           "; re-create it with `muonlab facts --out DIR`");
}

}  // namespace

void FactsSpec::validate() const {
  require(subjects >= 1, "--subjects", "must be at least 1");
  require(relations >= 1, "--relations", "must be at least 1");
  require(2 + subjects + relations + objects <= 65536, "--subjects/--relations/--objects",
          "subjects + relations + objects + 2 must fit 65536 token ids");
  require(subjects * relations <= kMaxFacts, "--subjects",
          "subjects x relations must be at most " + std::to_string(kMaxFacts));
  require(objects >= 2, "--objects", "must be at least 2");
  require(object_tokens >= 1 && object_tokens <= 16, "--object-tokens", "must be 1 to 16");
  require(groups >= 1 && groups <= subjects, "--groups", "must be 1 to --subjects");
  require(subjects % groups == 0, "--groups",
          "must divide --subjects (" + std::to_string(subjects) + ") into equal groups");
  require(std::isfinite(zipf) && zipf >= 0, "--zipf", "must be a number >= 0");
  require(label_noise >= 0 && label_noise < 1, "--label-noise", "must be in [0, 1)");
  require(train_facts >= 1 && train_facts <= kMaxStreamFacts, "--train-facts",
          "must be 1 to " + std::to_string(kMaxStreamFacts));
  require(val_facts >= 1 && val_facts <= kMaxStreamFacts, "--val-facts",
          "must be 1 to " + std::to_string(kMaxStreamFacts));
  require(probe_per_bucket >= 1, "--probe-per-bucket", "must be at least 1");
}

std::vector<uint32_t> FactsCorpus::fact(int64_t id) const {
  std::vector<uint32_t> tokens{vocab.subject(id / spec.relations),
                               vocab.relation(id % spec.relations), FactsVocab::kArrow};
  tokens.insert(tokens.end(), objects[id].begin(), objects[id].end());
  tokens.push_back(FactsVocab::kEnd);
  return tokens;
}

FactsCorpus make_facts_corpus(const FactsSpec& spec) {
  spec.validate();
  FactsCorpus c;
  c.spec = spec;
  c.vocab = {spec.subjects, spec.relations, spec.objects};
  const int64_t per_group = spec.subjects / spec.groups;
  double total = 0;
  for (int64_t i = 1; i <= spec.groups; ++i) total += std::pow(static_cast<double>(i), -spec.zipf);
  for (int64_t i = 0; i < spec.groups; ++i) {
    FactsBucket b;
    b.first_subject = i * per_group;
    b.subjects = per_group;
    b.mass = std::pow(static_cast<double>(i + 1), -spec.zipf) / total;
    // Probe facts spread evenly over the bucket's facts (all of them if few enough).
    const int64_t facts = per_group * spec.relations;
    const int64_t probes = std::min(facts, spec.probe_per_bucket);
    for (int64_t k = 0; k < probes; ++k)
      b.probe.push_back(b.first_subject * spec.relations + k * facts / probes);
    c.buckets.push_back(std::move(b));
  }
  RandomStream rng(spec.seed, kObjectStream);
  c.objects.resize(static_cast<size_t>(spec.subjects * spec.relations));
  for (auto& object : c.objects)
    for (int64_t k = 0; k < spec.object_tokens; ++k)
      object.push_back(c.vocab.object(static_cast<int64_t>(rng.below(spec.objects))));
  return c;
}

FactsWriteResult write_facts_corpus(const FactsSpec& spec, const std::string& out_dir,
                                    bool overwrite) {
  const auto start = std::chrono::steady_clock::now();
  const FactsCorpus corpus = make_facts_corpus(spec);
  if (out_dir.empty()) throw std::invalid_argument("--out: an output directory is required");
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw std::runtime_error("facts: cannot create " + out_dir + ": " + ec.message());
  if (!overwrite)
    for (const char* name : kFiles)
      if (fs::exists(fs::path(out_dir) / name))
        throw std::runtime_error("facts: " + (fs::path(out_dir) / name).string() +
                                 " exists; choose another --out or pass --overwrite to replace "
                                 "the corpus (runs trained on it would continue on the new data)");
  StagingDir staging(out_dir, "facts");
  FactsWriteResult r;
  auto train = fact_stream(corpus, spec.train_facts, kTrainStream, r.noisy_train_facts);
  auto val = fact_stream(corpus, spec.val_facts, kValStream, r.noisy_val_facts);
  r.train_tokens = train.size(), r.val_tokens = val.size();
  r.vocab_size = corpus.vocab.size();
  r.head_mass = corpus.buckets.front().mass, r.tail_mass = corpus.buckets.back().mass;
  write_token_shard(staging.file("train.bin").string(), train, corpus.vocab.size());
  write_token_shard(staging.file("val.bin").string(), val, corpus.vocab.size());
  write_text(staging.file("facts.json"), corpus_json(corpus, r).dump() + "\n");
  write_text(staging.file("vocab.txt"), vocab_text(corpus));
  // The old description goes first and the new one comes last, so that a failure in between
  // leaves shards without a facts.json (which nothing trains on), never a mismatched pair.
  fs::remove(fs::path(out_dir) / "facts.json", ec);
  staging.commit({"train.bin", "val.bin", "vocab.txt", "facts.json"});
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

FactsCorpus read_facts_corpus(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("facts corpus " + path + ": cannot open it");
  json j;
  try {
    in >> j;
  } catch (const json::exception& e) {
    bad_file(path, "not valid JSON");
  }
  FactsCorpus c;
  uint64_t vocab_size = 0;
  try {
    if (j.value("format", "") != kFormat) bad_file(path, "not a muonlab facts description");
    if (j.at("version").get<int>() != kVersion)
      bad_file(path, "format version " + j.at("version").dump() + ", this muonlab reads " +
                         std::to_string(kVersion));
    c.spec = spec_from_json(j.at("spec"));
    c.spec.validate();
    c.vocab = {c.spec.subjects, c.spec.relations, c.spec.objects};
    for (const auto& b : j.at("buckets")) {
      FactsBucket bucket;
      bucket.first_subject = b.at("first_subject").get<int64_t>();
      bucket.subjects = b.at("subjects").get<int64_t>();
      bucket.mass = b.at("mass").get<double>();
      bucket.probe = b.at("probe").get<std::vector<int64_t>>();
      c.buckets.push_back(std::move(bucket));
    }
    c.objects = j.at("objects").get<std::vector<std::vector<uint32_t>>>();
    vocab_size = j.at("vocab_size").get<uint64_t>();
    c.train_tokens = j.at("train").at("tokens").get<uint64_t>();
    c.val_tokens = j.at("val").at("tokens").get<uint64_t>();
  } catch (const json::exception& e) {
    bad_file(path, std::string("missing or mistyped field (") + e.what() + ")");
  } catch (const std::invalid_argument& e) {
    bad_file(path, std::string("spec out of range (") + e.what() + ")");
  }
  const int64_t facts = c.spec.subjects * c.spec.relations;
  if (vocab_size != c.vocab.size()) bad_file(path, "vocab_size does not match the spec");
  if (static_cast<int64_t>(c.buckets.size()) != c.spec.groups)
    bad_file(path, "holds " + std::to_string(c.buckets.size()) + " buckets, the spec " +
                       std::to_string(c.spec.groups));
  if (static_cast<int64_t>(c.objects.size()) != facts)
    bad_file(path, "holds " + std::to_string(c.objects.size()) + " objects for " +
                       std::to_string(facts) + " facts");
  for (const auto& object : c.objects) {
    if (static_cast<int64_t>(object.size()) != c.spec.object_tokens)
      bad_file(path, "an object has the wrong number of tokens");
    for (uint32_t t : object)
      if (t < c.vocab.object(0) || t >= c.vocab.size())
        bad_file(path, "an object token id is not an object token");
  }
  const int64_t per_group = c.spec.subjects / c.spec.groups;
  for (size_t i = 0; i < c.buckets.size(); ++i) {
    const auto& b = c.buckets[i];
    if (b.first_subject != static_cast<int64_t>(i) * per_group || b.subjects != per_group ||
        !(b.mass > 0 && b.mass <= 1))
      bad_file(path, "bucket " + std::to_string(i + 1) + " does not match the spec");
    if (b.probe.empty()) bad_file(path, "bucket " + std::to_string(i + 1) + " has no probe facts");
  }
  for (const auto& b : c.buckets)
    for (int64_t id : b.probe)
      if (id < b.first_subject * c.spec.relations ||
          id >= (b.first_subject + b.subjects) * c.spec.relations || id >= facts)
        bad_file(path, "a probe fact lies outside its bucket");
  return c;
}

}  // namespace muonlab
