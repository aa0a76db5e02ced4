// Tests for tokenizer training/encoding and the tokenize_corpus pipeline. The shard contents are
// checked against the spm_encode CLI, an encoding path independent of muonlab's own code.
#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"
#include "tests/test_util.h"

using Catch::Matchers::Contains;
using muonlab::TokenizeOptions;
using muonlab::Tokenizer;
using muonlab::TokenShard;
using muonlab::test::read_file;
using muonlab::test::run_shell;
using muonlab::test::TempDir;
using muonlab::test::write_file;
namespace fs = std::filesystem;

namespace {

constexpr int kVocab = 400;

// Deterministic pseudo-random lines of words, numbers and some non-ASCII text.
std::vector<std::string> make_lines(size_t count, uint64_t seed) {
  static const std::vector<std::string> words = {
      "the",    "lord",   "said",  "unto", "moses", "and",  "café",  "naïve", "über",
      "straße", "日本",   "light", "day",  "night", "over", "under", "it's",  "\"quoted\"",
      "hello,", "world!", "of",    "in",   "1999",  "42",   "3.14",  "a",     "Ωmega"};
  std::vector<std::string> lines;
  uint64_t state = seed;
  auto next = [&state](uint64_t bound) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % bound;
  };
  for (size_t i = 0; i < count; ++i) {
    std::string line;
    const uint64_t n_words = 3 + next(10);
    for (uint64_t w = 0; w < n_words; ++w) {
      if (w > 0) line += ' ';
      line += words[next(words.size())];
    }
    line += " " + std::to_string(next(100000));
    lines.push_back(line);
  }
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += line + "\n";
  return text;
}

std::vector<uint32_t> shard_tokens(const std::string& path) {
  TokenShard shard(path);
  std::vector<uint32_t> tokens(shard.size());
  for (uint64_t i = 0; i < shard.size(); ++i) tokens[i] = shard.token(i);
  return tokens;
}

// Encodes each line of `docs_file` with the spm_encode CLI; one id list per document.
std::vector<std::vector<uint32_t>> spm_encode_ids(const std::string& model,
                                                  const std::string& docs_file,
                                                  const std::string& out_file) {
  const auto result =
      run_shell("/usr/bin/spm_encode --model=" + model +
                " --output_format=id --input=" + docs_file + " --output=" + out_file);
  REQUIRE(result.exit_code == 0);
  std::vector<std::vector<uint32_t>> docs;
  std::istringstream lines(read_file(out_file));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream ids(line);
    std::vector<uint32_t> doc;
    uint32_t id;
    while (ids >> id) doc.push_back(id);
    docs.push_back(doc);
  }
  return docs;
}

bool matches_at(const std::vector<uint32_t>& stream, size_t at, const std::vector<uint32_t>& part) {
  return at + part.size() <= stream.size() &&
         std::equal(part.begin(), part.end(), stream.begin() + static_cast<long>(at));
}

size_t count_staging_dirs(const fs::path& dir) {
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    count += entry.path().filename().string().rfind(".staging-", 0) == 0;
  }
  return count;
}

// A shared corpus split over two input files (with blank lines that are not documents).
struct CorpusFixture {
  TempDir dir{"tokcorpus"};
  std::vector<std::string> docs = make_lines(3000, 11);
  CorpusFixture() {
    const std::vector<std::string> first(docs.begin(), docs.begin() + 1800);
    const std::vector<std::string> second(docs.begin() + 1800, docs.end());
    write_file(dir.str("a.txt"), "\n" + join_lines(first) + "\n\n");
    write_file(dir.str("b.txt"), join_lines(second));
    write_file(dir.str("docs.txt"), join_lines(docs));
  }
  TokenizeOptions options(const std::string& out) const {
    TokenizeOptions opts;
    opts.inputs = {dir.str("a.txt"), dir.str("b.txt")};
    opts.vocab_size = kVocab;
    opts.out_dir = dir.str(out);
    opts.val_fraction = 0.2;
    opts.threads = 2;
    return opts;
  }
};

}  // namespace

TEST_CASE("a trained tokenizer round-trips text exactly", "[tokenizer]") {
  TempDir dir("tok");
  write_file(dir.str("train.txt"), join_lines(make_lines(3000, 5)));
  muonlab::TokenizerTrainOptions train;
  train.input_files = {dir.str("train.txt")};
  train.vocab_size = kVocab;
  train.model_prefix = dir.str("m");
  train.threads = 2;
  muonlab::train_tokenizer(train);
  REQUIRE(fs::exists(dir.str("m.model")));

  Tokenizer tokenizer(dir.str("m.model"));
  REQUIRE(tokenizer.vocab_size() == kVocab);
  REQUIRE(tokenizer.eos_id() == 2);

  const std::vector<std::string> samples = {
      "the lord said unto moses 1999", "café naïve über straße 日本",
      "  two  spaces  and a tab\tinside ", "never seen: Ж🙂ẞ", "x 9876543210"};
  for (const auto& text : samples) {
    const auto ids = tokenizer.encode(text);
    REQUIRE_FALSE(ids.empty());
    for (uint32_t id : ids) {
      REQUIRE(id != 0);  // byte fallback: never <unk>
      REQUIRE(id < static_cast<uint32_t>(kVocab));
    }
    REQUIRE(tokenizer.decode(ids) == text);
  }
  // Digits are split: no piece holds more than one digit.
  for (uint32_t id : tokenizer.encode("x 9876543210 and 2024")) {
    const std::string piece = tokenizer.decode({id});
    REQUIRE(std::count_if(piece.begin(), piece.end(), ::isdigit) <= 1);
  }
  REQUIRE_THROWS_AS(tokenizer.decode({static_cast<uint32_t>(kVocab)}), std::out_of_range);
}

TEST_CASE("loading a missing or broken tokenizer names the file", "[tokenizer]") {
  TempDir dir("tok");
  const std::string missing = dir.str("absent.model");
  REQUIRE_THROWS_WITH(Tokenizer(missing), Contains(missing) && Contains("no such file"));
  const std::string broken = dir.str("broken.model");
  write_file(broken, "this is not a model");
  REQUIRE_THROWS_WITH(Tokenizer(broken), Contains(broken) && Contains("not a valid"));
}

TEST_CASE("tokenize_corpus writes shards that match spm_encode", "[tokenizer][corpus]") {
  CorpusFixture corpus;
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  const auto result = muonlab::tokenize_corpus(
      corpus.options("out"),
      [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); });
  const fs::path out = corpus.dir.path() / "out";

  REQUIRE(result.documents == corpus.docs.size());
  REQUIRE(result.vocab_size == kVocab);
  REQUIRE(result.seconds > 0);
  REQUIRE(fs::exists(out / "tokenizer.model"));
  REQUIRE(count_staging_dirs(out) == 0);
  const auto train = shard_tokens((out / "train.bin").string());
  const auto val = shard_tokens((out / "val.bin").string());
  REQUIRE(train.size() == result.train_tokens);
  REQUIRE(val.size() == result.val_tokens);
  REQUIRE(TokenShard((out / "val.bin").string()).vocab_size() == kVocab);

  REQUIRE_FALSE(calls.empty());
  REQUIRE(calls.back() == std::make_pair<uint64_t, uint64_t>(3000, 3000));
  for (size_t i = 1; i < calls.size(); ++i) REQUIRE(calls[i].first > calls[i - 1].first);
  REQUIRE(calls.size() >= 3);

  // Walk the documents in blocks of 64: each block's spm_encode ids (+EOS per document) must
  // continue either train.bin or val.bin, and together they must use up both shards exactly.
  const auto spm = spm_encode_ids((out / "tokenizer.model").string(), corpus.dir.str("docs.txt"),
                                  corpus.dir.str("ids.txt"));
  REQUIRE(spm.size() == corpus.docs.size());
  size_t train_at = 0, val_at = 0, train_blocks = 0, val_blocks = 0;
  for (size_t first = 0; first < spm.size(); first += 64) {
    std::vector<uint32_t> block;
    for (size_t d = first; d < std::min(spm.size(), first + 64); ++d) {
      block.insert(block.end(), spm[d].begin(), spm[d].end());
      block.push_back(2);
    }
    if (matches_at(train, train_at, block)) {
      train_at += block.size();
      ++train_blocks;
    } else {
      REQUIRE(matches_at(val, val_at, block));
      val_at += block.size();
      ++val_blocks;
    }
  }
  REQUIRE(train_at == train.size());
  REQUIRE(val_at == val.size());
  REQUIRE(val_blocks >= 1);
  REQUIRE(train_blocks >= 1);
  const double val_share = static_cast<double>(val_blocks) / (val_blocks + train_blocks);
  REQUIRE(val_share > 0.05);
  REQUIRE(val_share < 0.5);

  SECTION("reusing the tokenizer gives identical shards") {
    TokenizeOptions reuse = corpus.options("reuse");
    reuse.tokenizer = (out / "tokenizer.model").string();
    reuse.vocab_size = 12345;  // ignored: the model's vocabulary wins
    reuse.threads = 1;
    const auto again = muonlab::tokenize_corpus(reuse);
    REQUIRE(again.vocab_size == kVocab);
    const fs::path reused = corpus.dir.path() / "reuse";
    REQUIRE(read_file(reused / "train.bin") == read_file(out / "train.bin"));
    REQUIRE(read_file(reused / "val.bin") == read_file(out / "val.bin"));
    REQUIRE(read_file(reused / "tokenizer.model") == read_file(out / "tokenizer.model"));
  }
}

TEST_CASE("tokenize_corpus refuses bad input and leaves out_dir untouched", "[corpus]") {
  CorpusFixture corpus;
  const fs::path out = corpus.dir.path() / "out";
  fs::create_directories(out);
  write_file(out / "train.bin", "previous train");
  write_file(out / "tokenizer.model", "previous model");
  TokenizeOptions opts = corpus.options("out");

  SECTION("empty input file") {
    const std::string empty = corpus.dir.str("empty.txt");
    write_file(empty, "");
    opts.inputs.push_back(empty);
    REQUIRE_THROWS_WITH(muonlab::tokenize_corpus(opts), Contains(empty) && Contains("empty"));
  }
  SECTION("binary input file with NUL bytes") {
    const std::string binary = corpus.dir.str("blob.bin");
    write_file(binary, std::string("ELF\0\0\1\2 some text", 17));
    opts.inputs.push_back(binary);
    REQUIRE_THROWS_WITH(muonlab::tokenize_corpus(opts), Contains(binary) && Contains("binary"));
  }
  SECTION("input that is mostly invalid UTF-8") {
    const std::string garbage = corpus.dir.str("latin.dat");
    std::string bytes;
    for (int i = 0; i < 400; ++i) bytes += static_cast<char>(0x80 + (i * 37) % 0x7F);
    write_file(garbage, bytes);
    opts.inputs.push_back(garbage);
    REQUIRE_THROWS_WITH(muonlab::tokenize_corpus(opts), Contains(garbage) && Contains("UTF-8"));
  }
  SECTION("missing input file") {
    const std::string missing = corpus.dir.str("missing.txt");
    opts.inputs.push_back(missing);
    REQUIRE_THROWS_WITH(muonlab::tokenize_corpus(opts), Contains(missing) && Contains("no such"));
  }
  SECTION("vocab size out of range") {
    opts.vocab_size = 100;
    REQUIRE_THROWS_WITH(muonlab::tokenize_corpus(opts), Contains("vocab_size 100"));
  }
  SECTION("too few documents for a train/val split") {
    const std::string small = corpus.dir.str("small.txt");
    write_file(small, join_lines(make_lines(64, 3)));
    opts.inputs = {small};
    REQUIRE_THROWS_WITH(muonlab::tokenize_corpus(opts), Contains("64 documents"));
  }
  SECTION("sentencepiece fails after staging began") {
    opts.vocab_size = 200000;  // more pieces than this corpus can make
    REQUIRE_THROWS_WITH(muonlab::tokenize_corpus(opts), Contains("tokenizer training"));
  }
  REQUIRE(read_file(out / "train.bin") == "previous train");
  REQUIRE(read_file(out / "tokenizer.model") == "previous model");
  REQUIRE_FALSE(fs::exists(out / "val.bin"));
  REQUIRE(count_staging_dirs(out) == 0);
}
