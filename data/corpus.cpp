// tokenize_corpus: reads and checks text files, trains (or loads) the tokenizer, encodes the
// documents on all cores, splits them into train/val in blocks of 64 documents and writes
// everything through a staging directory so a failure leaves out_dir as it was.
#include "data/corpus.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "data/random_stream.h"
#include "data/staging_dir.h"
#include "data/token_shard.h"
#include "data/tokenizer.h"

namespace muonlab {
namespace {

namespace fs = std::filesystem;

constexpr int kMinVocab = 300;  // 256 byte pieces + 3 specials + room for characters and merges
constexpr int kMaxVocab = 1 << 20;
constexpr size_t kDocsPerBlock = 64;
constexpr double kMaxInvalidUtf8Share = 0.1;

// ---- reading and checking the input files ----------------------------------------------------

std::string read_whole_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw std::runtime_error("input " + path + ": no such file");
  if (!fs::is_regular_file(path, ec)) {
    throw std::runtime_error("input " + path + ": not a regular file; pass a UTF-8 text file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("input " + path + ": cannot open; check its permissions");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 if the bytes there are invalid.
size_t utf8_sequence_length(std::string_view text, size_t i) {
  const auto lead = static_cast<unsigned char>(text[i]);
  size_t length = 0;
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF)
    length = 2;
  else if (lead >= 0xE0 && lead <= 0xEF)
    length = 3;
  else if (lead >= 0xF0 && lead <= 0xF4)
    length = 4;
  else
    return 0;
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  }
  return length;
}

size_t count_invalid_utf8_bytes(std::string_view text) {
  size_t invalid = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t length = utf8_sequence_length(text, i);
    if (length == 0) {
      ++invalid;
      ++i;
    } else {
      i += length;
    }
  }
  return invalid;
}

void check_is_text(const std::string& path, const std::string& contents) {
  if (contents.empty())
    throw std::runtime_error("input " + path + ": file is empty; pass a text file");
  const size_t nul = contents.find('\0');
  if (nul != std::string::npos) {
    throw std::runtime_error("input " + path + ": looks binary (NUL byte at offset " +
                             std::to_string(nul) + "); pass a UTF-8 text file");
  }
  const size_t invalid = count_invalid_utf8_bytes(contents);
  if (static_cast<double>(invalid) > kMaxInvalidUtf8Share * static_cast<double>(contents.size())) {
    throw std::runtime_error("input " + path + ": looks binary (" + std::to_string(invalid) +
                             " of " + std::to_string(contents.size()) +
                             " bytes are not valid UTF-8); pass a UTF-8 text file");
  }
}

// Appends the non-empty lines of `contents` (a trailing '\r' is dropped) as documents.
size_t append_documents(const std::string& contents, std::vector<std::string_view>& docs) {
  const std::string_view text(contents);
  size_t added = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(begin, end - begin);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) {
      docs.push_back(line);
      ++added;
    }
    begin = end + 1;
  }
  return added;
}

// The loaded corpus: file contents kept alive, documents are views into them.
struct Corpus {
  std::vector<std::string> contents;
  std::vector<std::string_view> docs;
};

Corpus read_corpus(const std::vector<std::string>& inputs) {
  Corpus corpus;
  corpus.contents.reserve(inputs.size());
  for (const auto& path : inputs) {
    corpus.contents.push_back(read_whole_file(path));
    check_is_text(path, corpus.contents.back());
    if (append_documents(corpus.contents.back(), corpus.docs) == 0) {
      throw std::runtime_error("input " + path + ": holds only blank lines; pass a text file");
    }
  }
  return corpus;
}

// ---- options -----------------------------------------------------------------------------

void check_options(const TokenizeOptions& opts) {
  if (opts.inputs.empty()) throw std::invalid_argument("tokenize: no input files given");
  if (opts.out_dir.empty()) throw std::invalid_argument("tokenize: no output directory given");
  if (opts.tokenizer.empty() && (opts.vocab_size < kMinVocab || opts.vocab_size > kMaxVocab)) {
    throw std::invalid_argument("tokenize: vocab_size " + std::to_string(opts.vocab_size) +
                                " is outside " + std::to_string(kMinVocab) + ".." +
                                std::to_string(kMaxVocab) + "; pick a size in that range");
  }
  if (!(opts.val_fraction > 0.0 && opts.val_fraction < 1.0)) {
    throw std::invalid_argument("tokenize: val_fraction " + std::to_string(opts.val_fraction) +
                                " must be strictly between 0 and 1");
  }
  if (opts.threads < 0) {
    throw std::invalid_argument("tokenize: threads must be >= 0 (0 = all cores), got " +
                                std::to_string(opts.threads));
  }
}

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

// ---- train/val split -----------------------------------------------------------------------

// A deterministic uniform number in [0, 1) for a block index.
double block_draw(size_t block) { return unit_interval(splitmix64(block)); }

// True for the blocks that go to val; at least one block on each side.
std::vector<bool> choose_val_blocks(size_t n_blocks, double val_fraction) {
  std::vector<bool> is_val(n_blocks);
  size_t lowest = 0, highest = 0, val_count = 0;
  for (size_t b = 0; b < n_blocks; ++b) {
    is_val[b] = block_draw(b) < val_fraction;
    val_count += is_val[b];
    if (block_draw(b) < block_draw(lowest)) lowest = b;
    if (block_draw(b) > block_draw(highest)) highest = b;
  }
  if (val_count == 0) is_val[lowest] = true;
  if (val_count == n_blocks) is_val[highest] = false;
  return is_val;
}

// ---- tokenizer -------------------------------------------------------------------------------

void write_training_text(const fs::path& path, const std::vector<std::string_view>& docs) {
  std::ofstream out(path, std::ios::binary);
  for (const auto& doc : docs) {
    out.write(doc.data(), static_cast<std::streamsize>(doc.size()));
    out.put('\n');
  }
  out.close();
  if (!out) throw std::runtime_error("tokenize: cannot write " + path.string() + " (disk full?)");
}

// Trains a tokenizer on the documents inside the staging dir; returns the .model path.
fs::path train_on_documents(const StagingDir& staging, const std::vector<std::string_view>& docs,
                            int vocab_size, int threads) {
  const fs::path text = staging.file("corpus.txt");
  write_training_text(text, docs);
  TokenizerTrainOptions train;
  train.input_files = {text.string()};
  train.vocab_size = vocab_size;
  train.model_prefix = staging.file("tokenizer").string();
  train.threads = threads;
  train_tokenizer(train);
  fs::remove(text);
  return staging.file("tokenizer.model");
}

void copy_model(const std::string& from, const fs::path& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) throw std::runtime_error("tokenize: cannot copy " + from + ": " + ec.message());
}

// ---- parallel encoding -----------------------------------------------------------------------

// Encodes every block of documents (each document followed by EOS) with `threads` workers;
// reports progress from the calling thread.
class BlockEncoder {
 public:
  BlockEncoder(const Tokenizer& tokenizer, const std::vector<std::string_view>& docs)
      : tokenizer_(tokenizer),
        docs_(docs),
        eos_(static_cast<uint32_t>(tokenizer.eos_id())),
        n_blocks_((docs.size() + kDocsPerBlock - 1) / kDocsPerBlock),
        blocks_(n_blocks_) {}

  std::vector<std::vector<uint32_t>> run(int threads, const ProgressFn& progress) {
    running_ = std::min<size_t>(static_cast<size_t>(threads), n_blocks_);
    std::vector<std::thread> workers;
    for (size_t t = 0, n = running_; t < n; ++t) workers.emplace_back([this] { work(); });
    try {
      report_until_done(progress);
    } catch (...) {
      failed_ = true;
      for (auto& worker : workers) worker.join();
      throw;
    }
    for (auto& worker : workers) worker.join();
    if (error_) std::rethrow_exception(error_);
    return std::move(blocks_);
  }

 private:
  void encode_block(size_t b) {
    const size_t end = std::min(docs_.size(), (b + 1) * kDocsPerBlock);
    std::vector<uint32_t>& out = blocks_[b];
    for (size_t d = b * kDocsPerBlock; d < end; ++d) {
      const std::vector<uint32_t> ids = tokenizer_.encode(std::string(docs_[d]));
      out.insert(out.end(), ids.begin(), ids.end());
      out.push_back(eos_);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    docs_done_ += end - b * kDocsPerBlock;
    changed_.notify_one();
  }

  void work() {
    try {
      for (size_t b = next_block_++; b < n_blocks_ && !failed_; b = next_block_++) encode_block(b);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      failed_ = true;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
    changed_.notify_one();
  }

  // Calls progress about every 1% of documents, and once more when all are done.
  void report_until_done(const ProgressFn& progress) {
    const uint64_t total = docs_.size();
    const uint64_t stride = std::max<uint64_t>(1, total / 100);
    uint64_t reported = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      changed_.wait(lock, [&] { return running_ == 0 || docs_done_ >= reported + stride; });
      const uint64_t done = docs_done_;
      const bool finished = running_ == 0;
      lock.unlock();
      if (progress && done > reported && !failed_) progress(done, total);
      reported = done;
      if (finished) return;
      lock.lock();
    }
  }

  const Tokenizer& tokenizer_;
  const std::vector<std::string_view>& docs_;
  const uint32_t eos_;
  const size_t n_blocks_;
  std::vector<std::vector<uint32_t>> blocks_;
  std::atomic<size_t> next_block_{0};
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  size_t running_ = 0;
  uint64_t docs_done_ = 0;
  std::exception_ptr error_;
};

std::vector<uint32_t> concat_blocks(const std::vector<std::vector<uint32_t>>& blocks,
                                    const std::vector<bool>& is_val, bool want_val) {
  size_t total = 0;
  for (size_t b = 0; b < blocks.size(); ++b) total += is_val[b] == want_val ? blocks[b].size() : 0;
  std::vector<uint32_t> tokens;
  tokens.reserve(total);
  for (size_t b = 0; b < blocks.size(); ++b) {
    if (is_val[b] == want_val) tokens.insert(tokens.end(), blocks[b].begin(), blocks[b].end());
  }
  return tokens;
}

}  // namespace

TokenizeResult tokenize_corpus(const TokenizeOptions& opts, const ProgressFn& progress) {
  const auto started = std::chrono::steady_clock::now();
  check_options(opts);
  const Corpus corpus = read_corpus(opts.inputs);
  const size_t n_blocks = (corpus.docs.size() + kDocsPerBlock - 1) / kDocsPerBlock;
  if (n_blocks < 2) {
    throw std::runtime_error("tokenize: the inputs hold " + std::to_string(corpus.docs.size()) +
                             " documents (non-empty lines); a train/val split needs at least " +
                             std::to_string(kDocsPerBlock + 1) + "; add more text");
  }
  std::unique_ptr<Tokenizer> given;
  if (!opts.tokenizer.empty()) given = std::make_unique<Tokenizer>(opts.tokenizer);
  const int threads = resolve_threads(opts.threads);

  std::error_code ec;
  fs::create_directories(opts.out_dir, ec);
  if (ec) {
    throw std::runtime_error("tokenize: cannot create output directory " + opts.out_dir + ": " +
                             ec.message());
  }
  StagingDir staging(opts.out_dir, "tokenize");
  std::vector<std::string> outputs = {"tokenizer.model", "train.bin", "val.bin"};
  if (given) {
    copy_model(opts.tokenizer, staging.file("tokenizer.model"));
    const fs::path vocab_listing = fs::path(opts.tokenizer).replace_extension(".vocab");
    if (fs::exists(vocab_listing, ec)) {
      copy_model(vocab_listing.string(), staging.file("tokenizer.vocab"));
      outputs.push_back("tokenizer.vocab");
    }
  } else {
    train_on_documents(staging, corpus.docs, opts.vocab_size, threads);
    outputs.push_back("tokenizer.vocab");
  }
  const Tokenizer tokenizer(staging.file("tokenizer.model").string());
  if (tokenizer.eos_id() < 0) {
    throw std::runtime_error("tokenizer " + opts.tokenizer +
                             " has no EOS piece; train one with `muonlab tokenize`");
  }

  const auto blocks = BlockEncoder(tokenizer, corpus.docs).run(threads, progress);
  const std::vector<bool> is_val = choose_val_blocks(n_blocks, opts.val_fraction);
  const auto vocab = static_cast<uint64_t>(tokenizer.vocab_size());
  const std::vector<uint32_t> train = concat_blocks(blocks, is_val, false);
  const std::vector<uint32_t> val = concat_blocks(blocks, is_val, true);
  write_token_shard(staging.file("train.bin").string(), train, vocab);
  write_token_shard(staging.file("val.bin").string(), val, vocab);
  staging.commit(outputs);

  TokenizeResult result;
  result.documents = corpus.docs.size();
  result.train_tokens = train.size();
  result.val_tokens = val.size();
  result.vocab_size = tokenizer.vocab_size();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace muonlab
