// Subcommands: tokenize, facts, train, sweep, compare, bench (plus help and version).
#include "src/cli.h"

#include <c10/util/Exception.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "data/facts_corpus.h"
#include "models/kernels/sgemm.h"
#include "src/bench/bench.h"
#include "src/blas_autotune.h"
#include "src/config/config.h"
#include "src/config/number_text.h"
#include "src/report/compare.h"
#include "src/report/report_files.h"
#include "src/runtime.h"
#include "src/sweep/sweep_runner.h"
#include "src/train/trainer.h"

namespace muonlab {
namespace {

constexpr const char* kVersion = "0.1.0";

constexpr const char* kMainHelp =
    R"(muonlab: pretrain small LLaMA-style models and compare optimizers (AdamW, Muon)

usage: muonlab <command> [options]

commands:
  tokenize   train a sentencepiece tokenizer and write train.bin / val.bin token shards
  facts      write a synthetic power-law facts corpus (shards + probe set for bucket records)
  train      train a model from a YAML config (resume with --resume)
  sweep      run a grid of configs (learning rates, seeds, optimizers), resumable, N at a time
  compare    tables (and plots) of runs and sweeps: best lr, plateau, seeds, stable rank
  bench      training-step speed, MFU and memory; every optimizer's step; Newton-Schulz
  version    print the version

Run `muonlab <command> --help` for the options of a command.
)";

constexpr const char* kTokenizeHelp =
    R"(usage: muonlab tokenize --input FILE [FILE...] --out DIR [options]

Trains a sentencepiece BPE tokenizer (byte fallback, digits split, identity normalisation) on
the input text, or reuses one, and writes DIR/tokenizer.model, DIR/train.bin, DIR/val.bin.
Each non-empty line of the input is one document.

options:
  --input FILE...       UTF-8 text files (required)
  --out DIR             output directory (required)
  --vocab-size N        vocabulary size when training a tokenizer (default 4096)
  --tokenizer FILE      reuse this sentencepiece .model instead of training one
  --val-fraction F      share of documents for val.bin, in blocks of 64 (default 0.05)
  --threads N           encoding threads, 0 = all cores (default 0)
)";

constexpr const char* kFactsHelp = R"(usage: muonlab facts --out DIR [options]

Writes a synthetic corpus of facts "S R -> O1..Ok ." (subject, relation, arrow, object tokens,
end) with no tokenizer: DIR/train.bin and DIR/val.bin (token shards of facts drawn i.i.d.),
DIR/facts.json (vocabulary layout, every fact's object, each subject's frequency bucket, the fixed
probe set) and DIR/vocab.txt (one line per token id). Subjects fall into G frequency groups of
equal size with group mass proportional to i^-zipf (G = subjects: a plain Zipf law over
subjects); every (subject, relation) has one object, drawn once. Train a LLaMA model on it with
data.facts: DIR/facts.json to get per-bucket first-object accuracy and loss (`buckets` records).

options:
  --out DIR               output directory (required); an existing corpus there is kept
                          unless --overwrite
  --subjects N            subjects (default 512)
  --relations R           relations per subject (default 4)
  --objects N             object token vocabulary (default 128)
  --object-tokens K       tokens per object (default 2)
  --groups G              frequency groups = buckets, must divide --subjects (default 8)
  --zipf B                group mass exponent beta (default 1.5)
  --label-noise A         share of train/val facts with a random object instead (default 0)
  --train-facts N         facts in train.bin (default 400000)
  --val-facts N           facts in val.bin (default 20000)
  --probe-per-bucket N    probe facts per bucket, spread over its facts (default 256)
  --seed S                objects and fact streams (default 0)
  --overwrite             replace an existing corpus in DIR
)";

constexpr const char* kTrainHelp = R"(usage: muonlab train CONFIG.yaml [options]

Trains the model CONFIG describes; writes train.out_dir/{config.yaml,metrics.jsonl,train.log,
checkpoints/}. See README.md for every config key.

options:
  --set KEY=VALUE   override a config key, e.g. --set train.steps=200 (repeatable)
  --resume [DIR]    continue from the newest complete checkpoint (or from checkpoint DIR)
  --overwrite       start over in an out_dir that already holds checkpoints (deletes them)
  --stop-after N    checkpoint and exit after N steps of this invocation (continue with --resume)
  --print-config    print the resolved config and exit
  --quiet           no console output (train.log is still written)
)";

constexpr const char* kSweepHelp = R"(usage: muonlab sweep SWEEP.yaml [options]

Runs every point of a sweep file (a base config plus axes; see README "Sweeps") as its own
`muonlab train` process, each in SWEEP_DIR/<point name>/ (e.g. lr=0.02,seed=1), and indexes
them in SWEEP_DIR/sweep.jsonl. Running the same command again skips finished points and resumes
interrupted ones from their newest checkpoint. A two-stage sweep (stage2:) then runs the extra
points at each group's best stage-1 point. Exit code 0 if every point finished, 1 if any failed.

options:
  --jobs N          points at once (default 1); each gets cores / N threads
  --dry-run         list the points and their run directories, train nothing
  --set KEY=VALUE   override a config key in every point (repeatable)
  --out DIR         the sweep directory (default: the file's out_dir, else runs/<file name>)
)";

constexpr const char* kCompareHelp = R"(usage: muonlab compare RUN_OR_SWEEP_DIR... [options]

Tables of runs and sweeps (every point of a sweep directory): per run, final/best val loss,
ppl, bits/byte, tokens/s, steps to a target loss and the mean stable rank of the block matrices
(all, attention, MLP, per kind) and of their updates; per group, the best lr, mean +- std over
seeds at it, the plateau width log10(lr_max/lr_min) within 0.02 nats and 1 % of the best loss
(flagged at the grid's edge), and the gap to the best group with Welch's t-test over seeds.

options:
  --group-by KEY    config key to group by (default optim.kind; `variant` for sweep variants)
  --target LOSS     also report the step and tokens at which val loss first reached LOSS
  --out DIR         write summary.md, summary.csv and summary.json there
  --plots           draw PNG figures into --out with tools/plot.py (needs python3-matplotlib)
)";

constexpr const char* kBenchHelp = R"(usage: muonlab bench CONFIG.yaml [options]

Measures the model CONFIG describes on random tokens (no data needed): the full training step as
the trainer runs it (data, forward, backward, optimizer) with tokens/s, model GFLOP/s, MFU against
the fp32 and bf16 GEMM peaks measured here at the model's own matmul shapes, peak resident memory
and optimizer-state bytes; then one step of every optimizer kind, Newton-Schulz for each
hidden-matrix shape (bf16 and fp32, batched and one by one) and one spectral record of the
weights. Figures are medians; compare them as ratios within one run (the machine may be shared).
Progress goes to stderr.

options:
  --set KEY=VALUE   override a config key (repeatable)
  --repeats N       timed repetitions per figure (default 5)
  --warmup N        untimed training steps before the timed ones (default 2)
  --step-only       only the training step, its GEMM peaks and memory
  --profile [N]     also profile N training steps (default 1) per operator: self time, share, calls
  --json            print one JSON object instead of the text report (keys in the README)
)";

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

std::string value_after(const std::vector<std::string>& args, size_t& i) {
  if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0)
    throw UsageError(args[i] + " needs a value");
  return args[++i];
}

int64_t parse_int(const std::string& flag, const std::string& text) {
  try {
    size_t used = 0;
    int64_t v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw UsageError(flag + ": expected an integer, got '" + text + "'");
}

double parse_double(const std::string& flag, const std::string& text) {
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw UsageError(flag + ": expected a number, got '" + text + "'");
}

int cmd_tokenize(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kTokenizeHelp, 0;
  TokenizeOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--input") {
      while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) o.inputs.push_back(args[++i]);
      if (o.inputs.empty()) throw UsageError("--input needs at least one file");
    } else if (a == "--out") {
      o.out_dir = value_after(args, i);
    } else if (a == "--vocab-size") {
      o.vocab_size = static_cast<int>(parse_int(a, value_after(args, i)));
    } else if (a == "--tokenizer") {
      o.tokenizer = value_after(args, i);
    } else if (a == "--val-fraction") {
      o.val_fraction = parse_double(a, value_after(args, i));
    } else if (a == "--threads") {
      o.threads = static_cast<int>(parse_int(a, value_after(args, i)));
    } else {
      throw UsageError("tokenize: unknown option '" + a + "' (see muonlab tokenize --help)");
    }
  }
  if (o.inputs.empty()) throw UsageError("tokenize: --input FILE is required");
  if (o.out_dir.empty()) throw UsageError("tokenize: --out DIR is required");
  if (o.val_fraction <= 0 || o.val_fraction >= 1)
    throw UsageError("--val-fraction: must be between 0 and 1, got " +
                     std::to_string(o.val_fraction));
  configure_threads(o.threads);
  // On a terminal one line is rewritten in place; in a log (not a terminal) a whole line is
  // printed every 10 % so the file stays readable.
  const bool terminal = isatty(fileno(stderr)) != 0;
  int last_percent = -1;
  auto progress = [&](uint64_t done, uint64_t total) {
    int percent = total ? static_cast<int>(100 * done / total) : 100;
    if (percent == last_percent ||
        (!terminal && percent / 10 == last_percent / 10 && done != total))
      return;
    last_percent = percent;
    fprintf(stderr,
            terminal ? "\rencoding %3d%% (%llu/%llu documents)"
                     : "encoding %3d%% (%llu/%llu documents)\n",
            percent, (unsigned long long)done, (unsigned long long)total);
    if (terminal && done == total) fprintf(stderr, "\n");
  };
  fprintf(stderr, "%s\n",
          o.tokenizer.empty() ? "training the tokenizer..." : "loading the tokenizer...");
  TokenizeResult r = tokenize_corpus(o, progress);
  printf(
      "wrote %s/{tokenizer.model,train.bin,val.bin}: %llu documents, vocab %d, %llu train + "
      "%llu val tokens in %.1fs\n",
      o.out_dir.c_str(), (unsigned long long)r.documents, r.vocab_size,
      (unsigned long long)r.train_tokens, (unsigned long long)r.val_tokens, r.seconds);
  return 0;
}

int cmd_facts(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kFactsHelp, 0;
  FactsSpec spec;
  std::string out_dir;
  bool overwrite = false;
  const std::map<std::string, int64_t*> integers = {
      {"--subjects", &spec.subjects},   {"--relations", &spec.relations},
      {"--objects", &spec.objects},     {"--object-tokens", &spec.object_tokens},
      {"--groups", &spec.groups},       {"--train-facts", &spec.train_facts},
      {"--val-facts", &spec.val_facts}, {"--probe-per-bucket", &spec.probe_per_bucket}};
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (auto it = integers.find(a); it != integers.end()) {
      *it->second = parse_int(a, value_after(args, i));
    } else if (a == "--out") {
      out_dir = value_after(args, i);
    } else if (a == "--zipf") {
      spec.zipf = parse_double(a, value_after(args, i));
    } else if (a == "--label-noise") {
      spec.label_noise = parse_double(a, value_after(args, i));
    } else if (a == "--seed") {
      const int64_t seed = parse_int(a, value_after(args, i));
      if (seed < 0) throw UsageError("--seed: must be >= 0");
      spec.seed = static_cast<uint64_t>(seed);
    } else if (a == "--overwrite") {
      overwrite = true;
    } else {
      throw UsageError("facts: unknown option '" + a + "' (see muonlab facts --help)");
    }
  }
  if (out_dir.empty()) throw UsageError("facts: --out DIR is required");
  try {
    spec.validate();
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  FactsWriteResult r = write_facts_corpus(spec, out_dir, overwrite);
  printf(
      "wrote %s/{train.bin,val.bin,facts.json,vocab.txt}: %lld subjects x %lld relations in %lld "
      "buckets (head mass %.3f, tail %.4f), vocab %llu, %llu train + %llu val tokens "
      "(%llu noisy train facts) in %.1fs\n"
      "train on it with: --set model.vocab_size=%llu --set data.train=%s/train.bin "
      "--set data.val=%s/val.bin --set data.facts=%s/facts.json\n",
      out_dir.c_str(), (long long)spec.subjects, (long long)spec.relations, (long long)spec.groups,
      r.head_mass, r.tail_mass, (unsigned long long)r.vocab_size,
      (unsigned long long)r.train_tokens, (unsigned long long)r.val_tokens,
      (unsigned long long)r.noisy_train_facts, r.seconds, (unsigned long long)r.vocab_size,
      out_dir.c_str(), out_dir.c_str(), out_dir.c_str());
  return 0;
}

int cmd_train(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kTrainHelp, 0;
  std::string config_path;
  std::vector<std::string> overrides;
  TrainOptions options;
  bool print_only = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--set") {
      overrides.push_back(value_after(args, i));
    } else if (a.rfind("--set=", 0) == 0) {
      overrides.push_back(a.substr(6));
    } else if (a == "--resume") {
      options.resume = true;
      bool next_is_dir = i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0 &&
                         std::filesystem::is_directory(args[i + 1]);
      if (next_is_dir) options.resume_from = args[++i];
    } else if (a == "--stop-after") {
      options.stop_after = parse_int(a, value_after(args, i));
    } else if (a == "--overwrite") {
      options.overwrite = true;
    } else if (a == "--quiet") {
      options.quiet = true;
    } else if (a == "--print-config") {
      print_only = true;
    } else if (a.rfind("--", 0) == 0) {
      throw UsageError("train: unknown option '" + a + "' (see muonlab train --help)");
    } else if (config_path.empty()) {
      config_path = a;
    } else {
      throw UsageError("train: more than one config given ('" + config_path + "', '" + a + "')");
    }
  }
  if (config_path.empty()) throw UsageError("train: CONFIG.yaml is required");
  RunConfig cfg = load_run_config(config_path, overrides);
  if (print_only) return std::cout << cfg.resolved_yaml, 0;
  TrainSummary summary = run_training(cfg, options);
  return summary.interrupted ? 130 : 0;
}

int cmd_bench(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kBenchHelp, 0;
  std::string config_path;
  std::vector<std::string> overrides;
  BenchOptions options;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--set") {
      overrides.push_back(value_after(args, i));
    } else if (a == "--json") {
      json = true;
    } else if (a == "--step-only") {
      options.step_only = true;
    } else if (a == "--profile") {
      // An optional step count: the next argument when it is all digits (a config such as
      // 125m.yaml stays the config).
      options.profile_steps = 1;
      const bool count_follows = i + 1 < args.size() && !args[i + 1].empty() &&
                                 args[i + 1].find_first_not_of("0123456789") == std::string::npos;
      if (count_follows) {
        const int64_t steps = parse_int(a, args[++i]);
        if (steps < 1 || steps > 1000) throw UsageError("--profile: steps must be in [1, 1000]");
        options.profile_steps = static_cast<int>(steps);
      }
    } else if (a == "--repeats") {
      options.repeats = static_cast<int>(parse_int(a, value_after(args, i)));
      if (options.repeats < 1) throw UsageError("--repeats: must be at least 1");
    } else if (a == "--warmup") {
      options.warmup = static_cast<int>(parse_int(a, value_after(args, i)));
      if (options.warmup < 0) throw UsageError("--warmup: must be at least 0");
    } else if (a.rfind("--", 0) == 0) {
      throw UsageError("bench: unknown option '" + a + "' (see muonlab bench --help)");
    } else if (config_path.empty()) {
      config_path = a;
    } else {
      throw UsageError("bench: more than one config given");
    }
  }
  if (config_path.empty()) throw UsageError("bench: CONFIG.yaml is required");
  const BenchReport report = run_bench(load_run_config(config_path, overrides), options);
  std::cout << (json ? report.json.dump(2) + "\n" : report.text);
  return 0;
}

int cmd_sweep(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kSweepHelp, 0;
  std::string sweep_path, out_dir;
  std::vector<std::string> overrides;
  SweepOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--set") {
      overrides.push_back(value_after(args, i));
    } else if (a == "--jobs") {
      options.jobs = static_cast<int>(parse_int(a, value_after(args, i)));
    } else if (a == "--dry-run") {
      options.dry_run = true;
    } else if (a == "--out") {
      out_dir = value_after(args, i);
    } else if (a.rfind("--", 0) == 0) {
      throw UsageError("sweep: unknown option '" + a + "' (see muonlab sweep --help)");
    } else if (sweep_path.empty()) {
      sweep_path = a;
    } else {
      throw UsageError("sweep: more than one sweep file given ('" + sweep_path + "', '" + a + "')");
    }
  }
  if (sweep_path.empty()) throw UsageError("sweep: SWEEP.yaml is required");
  return run_sweep(load_sweep_spec(sweep_path, overrides, out_dir), options, std::cout);
}

int cmd_compare(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kCompareHelp, 0;
  CompareOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--group-by") {
      options.group_by = value_after(args, i);
    } else if (a == "--target") {
      options.target = parse_double(a, value_after(args, i));
    } else if (a == "--out") {
      options.out_dir = value_after(args, i);
    } else if (a == "--plots") {
      options.plots = true;
    } else if (a.rfind("--", 0) == 0) {
      throw UsageError("compare: unknown option '" + a + "' (see muonlab compare --help)");
    } else {
      options.inputs.push_back(a);
    }
  }
  if (options.inputs.empty()) throw UsageError("compare: give at least one run or sweep directory");
  if (options.plots && options.out_dir.empty())
    throw UsageError("compare: --plots needs --out DIR for the figures");
  Comparison comparison = build_comparison(options);
  std::cout << format_comparison(comparison);
  if (!options.out_dir.empty())
    std::cout << write_report(comparison, options.out_dir, options.plots);
  return 0;
}

}  // namespace

int run_cli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kMainHelp;
    return args.empty() ? 2 : 0;
  }
  std::string command = args[0];
  args.erase(args.begin());
  const bool computes = command == "train" || command == "sweep" || command == "bench" ||
                        command == "version" || command == "--version";
  if (computes) {
    reexec_with_better_blas(argv);
    configure_allocator();
  }
  try {
    if (computes) sgemm_library();  // a bad MUONLAB_FP32_GEMM fails here, before any output
    if (command == "tokenize") return cmd_tokenize(args);
    if (command == "facts") return cmd_facts(args);
    if (command == "train") return cmd_train(args);
    if (command == "sweep") return cmd_sweep(args);
    if (command == "compare") return cmd_compare(args);
    if (command == "bench") return cmd_bench(args);
    if (command == "version" || command == "--version") {
      std::cout << "muonlab " << kVersion << " (" << runtime_summary() << ")\n";
      return 0;
    }
    throw UsageError("unknown command '" + command +
                     "'; commands: tokenize, facts, train, sweep, compare, bench");
  } catch (const UsageError& e) {
    std::cerr << "muonlab: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::string message = e.what_without_backtrace();
    std::cerr << "muonlab: error: " << message.substr(0, message.find('\n')) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "muonlab: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace muonlab
