// Maps the YAML tree onto the component config structs, with defaults and validation; every
// error names the full key path (validation messages from components already do).
#include "src/config/config.h"

#include <sstream>

namespace muonlab {

std::vector<std::string> model_kinds() { return {"llama", "assoc_memory", "matrix_sensing"}; }

namespace {

void read_llama(ConfigSection& s, LlamaConfig& m) {
  m.vocab_size = s.get<int64_t>("vocab_size", m.vocab_size);
  m.d_model = s.get<int64_t>("d_model", m.d_model);
  m.n_layers = s.get<int64_t>("n_layers", m.n_layers);
  m.n_heads = s.get<int64_t>("n_heads", m.n_heads);
  m.n_kv_heads = s.get<int64_t>("n_kv_heads", m.n_kv_heads);
  m.ffn_hidden = s.get<int64_t>("ffn_hidden", m.ffn_hidden);
  m.seq_len = s.get<int64_t>("seq_len", m.seq_len);
  m.tie_embeddings = s.get<bool>("tie_embeddings", m.tie_embeddings);
  m.rope_theta = s.get<double>("rope_theta", m.rope_theta);
  m.norm_eps = s.get<double>("norm_eps", m.norm_eps);
  m.init_std = s.get<double>("init_std", m.init_std);
}

void read_assoc_memory(ConfigSection& s, AssocMemoryConfig& m) {
  m.K = s.get<int64_t>("K", m.K);
  m.d = s.get<int64_t>("d", m.d);
  m.groups = s.get<int64_t>("groups", m.groups);
  m.zipf_exponent = s.get<double>("zipf_exponent", m.zipf_exponent);
  m.label_noise = s.get<double>("label_noise", m.label_noise);
  m.embedding = s.get<std::string>("embedding", m.embedding);
  m.init = s.get<std::string>("init", m.init);
  m.grad_mode = s.get<std::string>("grad_mode", m.grad_mode);
  m.dtype = s.get<std::string>("dtype", m.dtype);
  m.coordinates = s.get<std::string>("coordinates", m.coordinates);
  m.buckets = s.get<std::string>("buckets", m.buckets);
  m.threshold = s.get<double>("threshold", m.threshold);
}

void read_matrix_sensing(ConfigSection& s, MatrixSensingConfig& m) {
  m.m = s.get<int64_t>("m", m.m);
  m.n = s.get<int64_t>("n", m.n);
  m.rank = s.get<int64_t>("rank", m.rank);
  m.measurements = s.get<int64_t>("measurements", m.measurements);
  m.init_scale = s.get<double>("init_scale", m.init_scale);
  m.dtype = s.get<std::string>("dtype", m.dtype);
}

void read_model(ConfigSection s, ModelConfig& m) {
  m.kind = s.get<std::string>("kind", m.kind);
  if (m.kind == "llama") {
    read_llama(s, m.llama);
  } else if (m.kind == "assoc_memory") {
    read_assoc_memory(s, m.assoc);
  } else if (m.kind == "matrix_sensing") {
    read_matrix_sensing(s, m.sensing);
  } else {
    std::string kinds;
    for (const auto& k : model_kinds()) kinds += (kinds.empty() ? "" : " or ") + k;
    s.fail("kind", "unknown model kind '" + m.kind + "'; use " + kinds);
  }
  s.finish();
}

void read_data(ConfigSection s, DataConfig& d) {
  d.train = s.require<std::string>("train");
  d.val = s.require<std::string>("val");
  d.tokenizer = s.get<std::string>("tokenizer", "");
  // The facts keys appear in the resolved config only when data.facts is set. `facts: null`
  // (e.g. over a facts base config) switches the probe off, probe keys and all.
  const bool facts_nulled = s.is_null("facts");
  if (s.has("facts")) {
    d.facts = s.get<std::string>("facts", "");
    d.probe_every = s.get<int64_t>("probe_every", d.probe_every);
    d.probe_threshold = s.get<double>("probe_threshold", d.probe_threshold);
  } else {
    s.allow("facts");
    for (const char* key : {"probe_every", "probe_threshold"}) {
      s.allow(key);
      if (s.has(key) && !facts_nulled)
        s.fail(key, "only applies with data.facts (a `muonlab facts` corpus)");
    }
  }
  if (d.probe_every < 0) s.fail("probe_every", "must be >= 0 (0 = train.eval_every)");
  if (!(d.probe_threshold > 0 && d.probe_threshold <= 1))
    s.fail("probe_threshold", "must be in (0, 1]");
  s.finish();
}

void read_betas(ConfigSection& s, double& beta1, double& beta2) {
  auto betas = s.get<std::vector<double>>("betas", {beta1, beta2});
  if (betas.size() != 2) s.fail("betas", "expected two numbers [beta1, beta2]");
  beta1 = betas[0], beta2 = betas[1];
}

// Reads the schedule keys present in `s` onto `c` (whose values are the defaults).
void read_schedule(ConfigSection s, ScheduleConfig& c, const std::string& min_key) {
  c.kind = s.get<std::string>("kind", c.kind);
  c.warmup_steps = s.get<int64_t>("warmup_steps", c.warmup_steps);
  c.start_ratio = s.get<double>("start_ratio", c.start_ratio);
  c.min_ratio = s.get<double>(min_key, c.min_ratio);
  c.decay_fraction = s.get<double>("decay_fraction", c.decay_fraction);
  c.decay_shape = s.get<std::string>("decay_shape", c.decay_shape);
  s.finish();
}

// optim.schedules / optim.adamw.schedules: {lr, momentum, weight_decay}, each optional. An lr
// schedule starts from the run's `schedule`; momentum and weight decay from constant.
void read_schedule_overrides(ConfigSection& parent, const ScheduleConfig& run_schedule,
                             ScheduleOverrides& o) {
  auto s = parent.optional_section("schedules");
  if (!s) return;
  auto read = [&](const std::string& key, ScheduleConfig start,
                  std::optional<ScheduleConfig>& out) {
    auto section = s->optional_section(key);
    if (!section) return;
    read_schedule(*section, start, "min_ratio");
    out = start;
  };
  read("lr", run_schedule, o.lr);
  read("momentum", constant_schedule(), o.momentum);
  read("weight_decay", constant_schedule(), o.weight_decay);
  s->finish();
}

void read_adamw(ConfigSection s, AdamWOptions& a, const ScheduleConfig& run_schedule,
                ScheduleOverrides& schedules) {
  a.lr = s.get<double>("lr", a.lr);
  read_betas(s, a.beta1, a.beta2);
  a.eps = s.get<double>("eps", a.eps);
  a.weight_decay = s.get<double>("weight_decay", a.weight_decay);
  read_schedule_overrides(s, run_schedule, schedules);
  s.finish();
}

// Peak lr of the hidden matrices when optim.lr is not given, per optimizer kind.
double default_lr(const std::string& kind) {
  if (kind == "muon" || kind == "normuon") return 0.02;
  if (kind == "sgd" || kind == "ngd") return 0.1;
  if (kind == "signgd") return 1e-3;
  if (kind == "lion") return 3e-4;
  return 3e-3;  // adamw
}

YAML::Node routes_yaml(const std::vector<RouteRule>& rules) {
  YAML::Node list(YAML::NodeType::Sequence);
  for (const auto& r : rules) {
    YAML::Node rule(YAML::NodeType::Map);
    rule["match"] = r.match;
    rule["ndim"] = r.ndim;
    rule["to"] = r.to;
    list.push_back(rule);
  }
  return list;
}

void read_routes(ConfigSection& s, std::vector<RouteRule>& routes) {
  std::vector<RouteRule> rules;
  for (auto& r : s.sections("routes", routes_yaml(routes))) {
    RouteRule rule;
    rule.match = r.get<std::string>("match", rule.match);
    rule.ndim = r.get<int64_t>("ndim", rule.ndim);
    rule.to = r.require<std::string>("to");
    r.finish();
    rules.push_back(rule);
  }
  routes = rules;
}

void read_optim(ConfigSection s, OptimConfig& o, const ScheduleConfig& run_schedule) {
  o.kind = s.get<std::string>("kind", o.kind);
  o.lr = s.get<double>("lr", default_lr(o.kind));
  o.weight_decay = s.get<double>("weight_decay", o.weight_decay);
  read_betas(s, o.beta1, o.beta2);
  o.eps = s.get<double>("eps", o.eps);
  o.momentum = s.get<double>("momentum", o.momentum);
  o.nesterov = s.get<bool>("nesterov", o.nesterov);
  o.ns_coefficients = s.get<std::string>("ns_coefficients", o.ns_coefficients);
  o.ns_steps = s.get<int>("ns_steps", o.ns_steps);
  o.ns_bf16 = s.get<bool>("ns_bf16", o.ns_bf16);
  o.lr_scale = s.get<std::string>("lr_scale", o.lr_scale);
  o.orthogonalizer = s.get<std::string>("orthogonalizer", o.orthogonalizer);
  o.momentum_warmup_steps = s.get<int64_t>("momentum_warmup_steps", o.momentum_warmup_steps);
  o.momentum_start = s.get<double>("momentum_start", o.momentum_start);
  o.cautious_wd = s.get<bool>("cautious_wd", o.cautious_wd);
  read_adamw(s.section("adamw"), o.adamw, run_schedule, o.adamw_schedules);
  read_routes(s, o.routes);
  read_schedule_overrides(s, run_schedule, o.schedules);
  s.finish();
}

void require_positive(ConfigSection& s, const std::string& key, int64_t value) {
  if (value <= 0) s.fail(key, "must be > 0, got " + std::to_string(value));
}

void validate_train(ConfigSection& s, const TrainConfig& t) {
  require_positive(s, "steps", t.steps);
  require_positive(s, "batch_size", t.batch_size);
  require_positive(s, "grad_accum", t.grad_accum);
  require_positive(s, "log_every", t.log_every);
  require_positive(s, "eval_every", t.eval_every);
  require_positive(s, "eval_batches", t.eval_batches);
  require_positive(s, "keep_last", t.keep_last);
  if (t.spectral_every < 0) s.fail("spectral_every", "must be >= 0 (0 disables)");
  if (t.spectrum_every < 0) s.fail("spectrum_every", "must be >= 0 (0 disables)");
  if (t.spectrum_every > 0 && (t.spectral_every == 0 || t.spectrum_every % t.spectral_every != 0))
    s.fail("spectrum_every", "must be a multiple of train.spectral_every");
  if (t.spectral_method != "svd" && t.spectral_method != "power")
    s.fail("spectral_method", "unknown '" + t.spectral_method + "'; use svd or power");
  if (t.keep_every < 0) s.fail("keep_every", "must be >= 0 (0 = keep only the newest keep_last)");
  if (t.ckpt_every < 0) s.fail("ckpt_every", "must be >= 0 (0 = only at the end)");
  if (t.grad_clip < 0) s.fail("grad_clip", "must be >= 0 (0 disables clipping)");
  if (t.precision != "fp32" && t.precision != "bf16")
    s.fail("precision", "unknown '" + t.precision + "'; use fp32 or bf16");
  if (t.on_nonfinite != "stop" && t.on_nonfinite != "skip_step")
    s.fail("on_nonfinite", "unknown '" + t.on_nonfinite + "'; use stop or skip_step");
  if (t.out_dir.empty()) s.fail("out_dir", "must name a directory");
  if (t.peak_gflops < 0) s.fail("peak_gflops", "must be >= 0 (0 = measure it at start)");
}

void read_train(ConfigSection s, TrainConfig& t) {
  t.steps = s.get<int64_t>("steps", t.steps);
  t.batch_size = s.get<int64_t>("batch_size", t.batch_size);
  t.grad_accum = s.get<int64_t>("grad_accum", t.grad_accum);
  t.grad_clip = s.get<double>("grad_clip", t.grad_clip);
  t.precision = s.get<std::string>("precision", t.precision);
  t.out_dir = s.get<std::string>("out_dir", t.out_dir);
  t.log_every = s.get<int64_t>("log_every", t.log_every);
  t.eval_every = s.get<int64_t>("eval_every", t.eval_every);
  t.eval_batches = s.get<int64_t>("eval_batches", t.eval_batches);
  t.spectral_every = s.get<int64_t>("spectral_every", t.spectral_every);
  t.spectrum_every = s.get<int64_t>("spectrum_every", t.spectrum_every);
  t.spectral_method = s.get<std::string>("spectral_method", t.spectral_method);
  t.ckpt_every = s.get<int64_t>("ckpt_every", t.ckpt_every);
  t.keep_last = s.get<int64_t>("keep_last", t.keep_last);
  t.keep_every = s.get<int64_t>("keep_every", t.keep_every);
  t.on_nonfinite = s.get<std::string>("on_nonfinite", t.on_nonfinite);
  t.peak_gflops = s.get<double>("peak_gflops", t.peak_gflops);
  s.finish();
  validate_train(s, t);
}

// Defaults that depend on model.kind, set before the sections are read so that the resolved
// config shows them: the theory models train at a constant lr without clipping, with every
// parameter on the main optimizer, and are cheap enough to evaluate often.
void apply_kind_defaults(RunConfig& cfg) {
  if (cfg.model.kind == "llama") return;
  cfg.schedule = constant_schedule();
  cfg.optim.routes = {{"*", 0, "main"}};
  cfg.train.grad_clip = 0;
  cfg.train.eval_every = 10;
}

// Every schedule of the run with its config key, for checks against train.steps.
std::vector<std::pair<std::string, ScheduleConfig>> warmup_checks(const RunConfig& cfg) {
  std::vector<std::pair<std::string, ScheduleConfig>> all = {{"schedule", cfg.schedule}};
  auto add = [&](const std::string& prefix, const ScheduleOverrides& o) {
    if (o.lr) all.emplace_back(prefix + "lr", *o.lr);
    if (o.momentum) all.emplace_back(prefix + "momentum", *o.momentum);
    if (o.weight_decay) all.emplace_back(prefix + "weight_decay", *o.weight_decay);
  };
  add("optim.schedules.", cfg.optim.schedules);
  add("optim.adamw.schedules.", cfg.optim.adamw_schedules);
  return all;
}

// Component validators throw std::invalid_argument("<key>: ..."); prefix the file.
template <typename Fn>
void validate_component(const std::string& origin, Fn&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    throw ConfigError("config " + origin + ": " + e.what());
  }
}

}  // namespace

RunConfig parse_run_config(const YAML::Node& root, const std::string& origin) {
  RunConfig cfg;
  YAML::Node resolved(YAML::NodeType::Map);
  ConfigSection top(root, "", origin, resolved);
  cfg.seed = top.get<int64_t>("seed", cfg.seed);
  cfg.threads = top.get<int64_t>("threads", cfg.threads);
  cfg.device = top.get<std::string>("device", cfg.device);
  read_model(top.section("model"), cfg.model);
  apply_kind_defaults(cfg);
  if (cfg.model.kind == "llama") {
    read_data(top.section("data"), cfg.data);
  } else if (top.optional_section("data")) {
    top.fail("data", "model.kind " + cfg.model.kind +
                         " generates its own data; remove the data section (or set data: null)");
  }
  read_schedule(top.section("schedule"), cfg.schedule, "min_lr_ratio");
  read_optim(top.section("optim"), cfg.optim, cfg.schedule);
  read_train(top.section("train"), cfg.train);
  top.finish();

  if (cfg.threads < 0) top.fail("threads", "must be >= 0 (0 = all cores)");
  if (cfg.device != "cpu") top.fail("device", "only 'cpu' is supported by this build");
  if (cfg.model.kind == "llama") validate_component(origin, [&] { cfg.model.llama.validate(); });
  if (cfg.model.kind == "assoc_memory")
    validate_component(origin, [&] { cfg.model.assoc.validate(); });
  if (cfg.model.kind == "matrix_sensing")
    validate_component(origin, [&] { cfg.model.sensing.validate(); });
  if (cfg.model.kind != "llama" && cfg.train.precision != "fp32")
    throw ConfigError("config " + origin + ": train.precision: model.kind " + cfg.model.kind +
                      " computes in model.dtype; use fp32");
  validate_component(origin, [&] { cfg.schedule.validate(); });  // before optim's copies of it
  validate_component(origin, [&] { cfg.optim.validate(); });
  for (const auto& [key, schedule] : warmup_checks(cfg))
    if (schedule.warmup_steps > cfg.train.steps)
      throw ConfigError("config " + origin + ": " + key +
                        ".warmup_steps: " + std::to_string(schedule.warmup_steps) +
                        " is larger than train.steps " + std::to_string(cfg.train.steps));

  YAML::Emitter out;
  out << resolved;
  cfg.resolved_yaml = std::string(out.c_str()) + "\n";
  return cfg;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node root = load_yaml_with_bases(path);
  for (const auto& assignment : overrides) apply_override(root, assignment);
  return parse_run_config(root, path);
}

}  // namespace muonlab
