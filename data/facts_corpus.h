// The synthetic power-law facts corpus behind `muonlab facts`: N subjects, R relations and one
// fixed object (a few object tokens) per (subject, relation). Subjects fall into M frequency
// groups of N/M subjects with group mass ∝ i^-β, so a fact's frequency follows a power law over
// the groups (M = N gives the plain Zipf law over subjects); the groups are the buckets the
// trainer reports on. A shard is a stream of facts "S R -> O1..Ok ." drawn i.i.d.; with label
// noise a share of the train and val facts (never the probe set) carries a uniformly random
// object instead.
// Written to a directory: train.bin and val.bin (token shards), facts.json (the vocabulary layout,
// every fact's object, each subject's bucket, the fixed probe set) and vocab.txt (one line per
// token id, for people). It needs no tokenizer and does not train or score models (see
// src/train/facts_probe.h for the per-bucket probe).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace muonlab {

struct FactsSpec {
  int64_t subjects = 512;
  int64_t relations = 4;
  int64_t objects = 128;           // object token vocabulary
  int64_t object_tokens = 2;       // tokens per object
  int64_t groups = 8;              // M frequency groups (buckets) of subjects/groups subjects each
  double zipf = 1.5;               // β: group i's mass ∝ i^-β
  double label_noise = 0.0;        // share of train/val facts whose object is drawn at random
  int64_t train_facts = 400000;    // facts in train.bin
  int64_t val_facts = 20000;       // facts in val.bin
  int64_t probe_per_bucket = 256;  // probe facts per bucket (at most all of the bucket's facts)
  uint64_t seed = 0;

  // Throws std::invalid_argument naming the option (--subjects, ...) that is out of range.
  void validate() const;
};

// The token ids of the vocabulary: "." ends a fact, "->" precedes its object.
struct FactsVocab {
  int64_t subjects = 0, relations = 0, objects = 0;
  static constexpr uint32_t kEnd = 0, kArrow = 1;
  uint32_t subject(int64_t s) const { return static_cast<uint32_t>(2 + s); }
  uint32_t relation(int64_t r) const { return static_cast<uint32_t>(2 + subjects + r); }
  uint32_t object(int64_t o) const { return static_cast<uint32_t>(2 + subjects + relations + o); }
  uint64_t size() const { return static_cast<uint64_t>(2 + subjects + relations + objects); }
};

struct FactsBucket {
  int64_t first_subject = 0, subjects = 0;  // subjects [first, first + subjects)
  double mass = 0;                          // probability that a fact's subject is in it
  std::vector<int64_t> probe;               // fact ids (subject · R + relation) probed
};

// What facts.json describes: enough to rebuild the probe set and name every token.
struct FactsCorpus {
  FactsSpec spec;
  FactsVocab vocab;
  std::vector<FactsBucket> buckets;            // head (most frequent) first
  std::vector<std::vector<uint32_t>> objects;  // per fact id: its object's token ids
  uint64_t train_tokens = 0, val_tokens = 0;   // the shards' sizes (read from facts.json)
  int64_t fact_tokens() const { return 4 + spec.object_tokens; }  // S R -> O1..Ok .
  // The tokens of fact `id` with its true object: S R -> O1..Ok .
  std::vector<uint32_t> fact(int64_t id) const;
};

// Builds the corpus description (vocabulary, objects, buckets, probe set) from `spec`.
FactsCorpus make_facts_corpus(const FactsSpec& spec);

struct FactsWriteResult {
  uint64_t vocab_size = 0;
  double head_mass = 0, tail_mass = 0;  // of the first and last bucket
  uint64_t train_tokens = 0, val_tokens = 0;
  uint64_t noisy_train_facts = 0, noisy_val_facts = 0;
  double seconds = 0;
};

// Writes train.bin, val.bin, facts.json and vocab.txt into `out_dir` through a staging directory
// renamed into place, facts.json last. Refuses (std::runtime_error) to replace an existing corpus
// there unless `overwrite`; a failure never leaves a facts.json beside shards it did not write.
FactsWriteResult write_facts_corpus(const FactsSpec& spec, const std::string& out_dir,
                                    bool overwrite);

// Reads and checks facts.json; throws std::runtime_error naming the file and what is wrong.
FactsCorpus read_facts_corpus(const std::string& path);

}  // namespace muonlab
