// Tokenizer: sentencepiece BPE training with muonlab's fixed settings, and a thin encode/decode
// wrapper around a loaded model.
//
// Why dlopen: Debian's libsentencepiece bundles and exports its own protobuf-lite, which clashes
// with the libprotobuf that LibTorch loads (a crash during static initialisation, or failed
// protobuf CHECKs, whichever library wins the symbol lookup). So this file never links against
// sentencepiece: it loads the libraries at first use with RTLD_LOCAL | RTLD_DEEPBIND, which keeps
// both protobuf copies apart. The headers are used only for class layouts and virtual calls;
// the few non-virtual functions needed are looked up with dlsym. Do not call other non-virtual
// sentencepiece functions here (and nowhere else in muonlab): `nm -u` on this object must list
// no sentencepiece symbols.
#include "data/tokenizer.h"

#include <dlfcn.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace muonlab {
namespace {

using sentencepiece::SentencePieceProcessor;
using sentencepiece::util::Status;
using TrainerArgs = std::unordered_map<std::string, std::string>;

constexpr const char* kCoreLibrary = "libsentencepiece.so.0";
constexpr const char* kTrainLibrary = "libsentencepiece_train.so.0";

#if defined(__SANITIZE_ADDRESS__)
#define MUONLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MUONLAB_ASAN 1
#endif
#endif

// AddressSanitizer's dlopen interceptor refuses RTLD_DEEPBIND. In sanitizer builds call the C
// library's dlopen directly: sentencepiece then allocates with the C library's malloc internally,
// while operator new/delete (shared libstdc++) still go through the sanitizer.
void* dlopen_deepbind(const char* name) {
  const int flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#ifdef MUONLAB_ASAN
  using DlopenFn = void* (*)(const char*, int);
  static auto real_dlopen = reinterpret_cast<DlopenFn>(::dlsym(RTLD_NEXT, "dlopen"));
  if (real_dlopen != nullptr) return real_dlopen(name, flags);
#endif
  return ::dlopen(name, flags);
}

void* open_library(const char* name) {
  void* handle = dlopen_deepbind(name);
  if (handle == nullptr) {
    throw std::runtime_error(std::string("cannot load ") + name + " (" + ::dlerror() +
                             "); install Debian's libsentencepiece0 package");
  }
  return handle;
}

template <typename Fn>
Fn find_symbol(void* handle, const char* library, const char* symbol) {
  void* address = ::dlsym(handle, symbol);
  if (address == nullptr) {
    throw std::runtime_error(std::string(library) + " lacks " + symbol +
                             "; muonlab expects sentencepiece 0.1.9x");
  }
  return reinterpret_cast<Fn>(address);
}

// The non-virtual sentencepiece functions muonlab calls, resolved once from the loaded libraries.
struct CoreLibrary {
  void (*construct_processor)(SentencePieceProcessor*);
  void (*destroy_status)(Status*);
  const char* (*status_message)(const Status*);

  static const CoreLibrary& get() {
    static const CoreLibrary library = load();
    return library;
  }

 private:
  static CoreLibrary load() {
    void* handle = open_library(kCoreLibrary);
    CoreLibrary lib{};
    lib.construct_processor = find_symbol<decltype(lib.construct_processor)>(
        handle, kCoreLibrary, "_ZN13sentencepiece22SentencePieceProcessorC1Ev");
    lib.destroy_status = find_symbol<decltype(lib.destroy_status)>(
        handle, kCoreLibrary, "_ZN13sentencepiece4util6StatusD1Ev");
    lib.status_message = find_symbol<decltype(lib.status_message)>(
        handle, kCoreLibrary, "_ZNK13sentencepiece4util6Status13error_messageEv");
    return lib;
  }
};

using TrainFn = Status (*)(const TrainerArgs&, sentencepiece::SentenceIterator*, std::string*);

TrainFn train_function() {
  static const TrainFn train = [] {
    CoreLibrary::get();  // the trainer depends on the core library
    return find_symbol<TrainFn>(
        open_library(kTrainLibrary), kTrainLibrary,
        "_ZN13sentencepiece20SentencePieceTrainer5TrainERKSt13unordered_mapINSt7__cxx1112basic_"
        "stringIcSt11char_traitsIcESaIcEEES7_St4hashIS7_ESt8equal_toIS7_ESaISt4pairIKS7_S7_"
        "EEEPNS_16SentenceIteratorEPS7_");
  }();
  return train;
}

// Holds a util::Status returned by sentencepiece and destroys it through the library, so no
// sentencepiece symbol is linked. Construct the status in place: `new (held.place()) Status(f())`.
// util::Status is a single pointer (null = OK), so the zeroed storage is already a valid OK status
// should the call throw before constructing it.
class HeldStatus {
 public:
  static_assert(sizeof(Status) == sizeof(void*), "sentencepiece util::Status layout changed");
  HeldStatus() = default;
  ~HeldStatus() { CoreLibrary::get().destroy_status(status()); }
  HeldStatus(const HeldStatus&) = delete;
  HeldStatus& operator=(const HeldStatus&) = delete;

  void* place() { return storage_; }
  bool ok() const { return status()->ok(); }
  std::string message() const { return CoreLibrary::get().status_message(status()); }

 private:
  Status* status() { return std::launder(reinterpret_cast<Status*>(storage_)); }
  const Status* status() const { return std::launder(reinterpret_cast<const Status*>(storage_)); }
  alignas(Status) unsigned char storage_[sizeof(Status)] = {};
};

std::string join_with_commas(const std::vector<std::string>& items) {
  std::string joined;
  for (const auto& item : items) {
    if (!joined.empty()) joined += ',';
    joined += item;
  }
  return joined;
}

// The trainer settings: byte-level BPE that never produces <unk>, keeps text exactly
// (identity normalisation, whitespace kept) and splits numbers into digits.
TrainerArgs trainer_args(const TokenizerTrainOptions& opts) {
  return {
      {"input", join_with_commas(opts.input_files)},
      {"model_prefix", opts.model_prefix},
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(opts.vocab_size)},
      {"byte_fallback", "true"},
      {"split_digits", "true"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "true"},
      {"remove_extra_whitespaces", "false"},
      {"character_coverage", "1.0"},
      {"num_threads", std::to_string(opts.threads)},
      {"input_sentence_size", std::to_string(opts.max_sentences)},
      {"shuffle_input_sentence", "true"},
      {"max_sentence_length", "16384"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"train_extremely_large_corpus", "false"},
      {"minloglevel", "2"},
  };
}

}  // namespace

void train_tokenizer(const TokenizerTrainOptions& opts) {
  if (opts.input_files.empty()) {
    throw std::invalid_argument("train_tokenizer: no input files given");
  }
  if (opts.model_prefix.empty()) {
    throw std::invalid_argument("train_tokenizer: model_prefix is empty; name the output model");
  }
  for (const auto& file : opts.input_files) {
    if (file.find(',') != std::string::npos) {
      throw std::invalid_argument("train_tokenizer: input path " + file +
                                  " contains a comma, which sentencepiece cannot take; rename it");
    }
  }
  const TrainerArgs args = trainer_args(opts);
  const TrainFn train = train_function();
  HeldStatus status;
  new (status.place()) Status(train(args, nullptr, nullptr));
  if (!status.ok()) {
    throw std::runtime_error("tokenizer training failed: " + status.message() + " (vocab_size " +
                             std::to_string(opts.vocab_size) + ", model " + opts.model_prefix +
                             ".model)");
  }
}

Tokenizer::Tokenizer(const std::string& model_path) {
  if (!std::filesystem::exists(model_path)) {
    throw std::runtime_error("tokenizer " + model_path +
                             ": no such file; run `muonlab tokenize` first or fix the path");
  }
  const CoreLibrary& lib = CoreLibrary::get();
  void* memory = ::operator new(sizeof(SentencePieceProcessor));
  lib.construct_processor(static_cast<SentencePieceProcessor*>(memory));  // cannot throw
  sp_.reset(static_cast<SentencePieceProcessor*>(memory));
  HeldStatus status;
  new (status.place()) Status(sp_->Load(model_path));
  if (!status.ok()) {
    throw std::runtime_error("tokenizer " + model_path + ": not a valid sentencepiece model (" +
                             status.message() + "); re-run `muonlab tokenize`");
  }
}

Tokenizer::~Tokenizer() = default;

int Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }

int Tokenizer::eos_id() const { return sp_->eos_id(); }

std::vector<uint32_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  HeldStatus status;
  new (status.place()) Status(sp_->Encode(text, &ids));
  if (!status.ok()) throw std::runtime_error("tokenizer encode: " + status.message());
  return std::vector<uint32_t>(ids.begin(), ids.end());
}

std::string Tokenizer::decode(const std::vector<uint32_t>& ids) const {
  const int vocab = vocab_size();
  std::vector<int> signed_ids;
  signed_ids.reserve(ids.size());
  for (uint32_t id : ids) {
    if (id >= static_cast<uint32_t>(vocab)) {
      throw std::out_of_range("tokenizer decode: id " + std::to_string(id) +
                              " is outside the vocabulary of " + std::to_string(vocab));
    }
    signed_ids.push_back(static_cast<int>(id));
  }
  std::string text;
  HeldStatus status;
  new (status.place()) Status(sp_->Decode(signed_ids, &text));
  if (!status.ok()) throw std::runtime_error("tokenizer decode: " + status.message());
  return text;
}

}  // namespace muonlab
