#include "llm/lora_adapter.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kernels/cpu/dequantize.h"
#include "llm/gguf_file.h"
#include "llm/gguf_writer.h"
#include "llm/safetensors.h"

namespace weft::llm {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, kLoraTargets> kPeftNames = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                                   "gate_proj", "up_proj", "down_proj"};
constexpr std::array<std::string_view, kLoraTargets> kGgufNames = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                                                   "ffn_gate", "ffn_up", "ffn_down"};

bool attention(LoraTarget t) { return t <= LoraTarget::kO; }

// Whether B's rows are stored permuted in the GGUF file (q and k of interleaved-rotary models).
bool permuted(const ModelConfig& m, LoraTarget t) {
  return m.rope_style == RopeStyle::kNormal && (t == LoraTarget::kQ || t == LoraTarget::kK);
}

// Reorders B's rows between Hugging Face's and the GGUF file's order.
std::vector<float> permute_rows(const std::vector<float>& b, int out, int rank, int head_dim, bool to_gguf) {
  std::vector<float> p(b.size());
  for (int r = 0; r < out; ++r) {
    const int g = hf_to_gguf_row(r, head_dim);
    const int from = to_gguf ? r : g, to = to_gguf ? g : r;
    std::copy_n(&b[static_cast<size_t>(from) * rank], rank, &p[static_cast<size_t>(to) * rank]);
  }
  return p;
}

float scale_of(float alpha, int rank, bool rslora) {
  return rslora ? alpha / std::sqrt(static_cast<float>(rank)) : alpha / static_cast<float>(rank);
}

// Places one A or B matrix into `adapter`, checking its shape against the model's projection.
// `rows` x `cols` is the matrix as stored ([rank][in] for A, [out][rank] for B).
Status place(LoraAdapter& adapter, const ModelConfig& model, const std::string& name, int layer, LoraTarget t,
             bool is_a, int64_t rows, int64_t cols, std::vector<float> values) {
  if (layer < 0 || layer >= model.n_layers) {
    return Status::invalid_argument(
        fmt::format("tensor '{}': layer {}, but the model has {} layers", name, layer, model.n_layers));
  }
  const auto [out, in] = lora_target_shape(model, t);
  const int64_t want_rows = is_a ? rows : out, want_cols = is_a ? in : cols;
  if (rows != want_rows || cols != want_cols || rows < 1 || cols < 1 || rows > 65536 || cols > 65536) {
    return Status::invalid_argument(fmt::format(
        "tensor '{}' is [{}, {}]; the model's {} is [{}, {}], so lora_A must be [rank, {}] and lora_B [{}, rank]", name,
        rows, cols, lora_target_name(t), out, in, in, out));
  }
  for (float v : values) {
    if (!std::isfinite(v)) return Status::invalid_argument(fmt::format("tensor '{}' holds a non-finite value", name));
  }
  if (adapter.layers.size() < static_cast<size_t>(model.n_layers)) adapter.layers.resize(model.n_layers);
  LoraMatrix& m = adapter.layers[static_cast<size_t>(layer)][static_cast<size_t>(t)];
  m.in = in;
  m.out = out;
  const int rank = static_cast<int>(is_a ? rows : cols);
  if (m.rank != 0 && m.rank != rank) {
    return Status::invalid_argument(
        fmt::format("tensor '{}': rank {}, but its other half has rank {}", name, rank, m.rank));
  }
  m.rank = rank;
  (is_a ? m.a : m.b) = std::move(values);
  return Status::ok();
}

// Every placed matrix has both halves.
Status complete(const LoraAdapter& adapter) {
  bool any = false;
  for (size_t l = 0; l < adapter.layers.size(); ++l) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const LoraMatrix& m = adapter.layers[l][static_cast<size_t>(t)];
      if (!m.present()) continue;
      if (m.a.empty() || m.b.empty()) {
        return Status::invalid_argument(fmt::format("layer {} {}: lora_{} is missing", l,
                                                    lora_target_name(static_cast<LoraTarget>(t)),
                                                    m.a.empty() ? "A" : "B"));
      }
      any = true;
    }
  }
  if (!any) return Status::invalid_argument("the adapter has no LoRA tensors");
  return Status::ok();
}

// PEFT's pattern match for rank_pattern / alpha_pattern keys: the key, as a regular expression,
// matches the module name's end at a dot boundary.
Result<std::optional<float>> pattern_number(const nlohmann::json& config, const char* field,
                                            const std::string& module) {
  if (!config.contains(field) || !config[field].is_object()) return std::optional<float>();
  for (const auto& [key, value] : config[field].items()) {
    if (key.size() > 256) return Status::invalid_argument(fmt::format("{}: a key is too long", field));
    bool match = false;
    try {
      match = std::regex_match(module, std::regex("(.*\\.)?(" + key + ")"));
    } catch (const std::regex_error&) {
      return Status::invalid_argument(fmt::format("{}: '{}' is not a regular expression", field, key));
    }
    if (!match) continue;
    if (!value.is_number()) return Status::invalid_argument(fmt::format("{}: '{}' is not a number", field, key));
    return std::optional<float>(value.get<float>());
  }
  return std::optional<float>();
}

Result<nlohmann::json> read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found(fmt::format("{}: no such file", path.string()));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::corruption(fmt::format("{}: not a JSON object", path.string()));
  return j;
}

}  // namespace

std::string_view lora_target_name(LoraTarget t) { return kPeftNames[static_cast<size_t>(t)]; }

Result<LoraTarget> parse_lora_target(std::string_view name) {
  for (int t = 0; t < kLoraTargets; ++t) {
    const std::string_view full = kPeftNames[static_cast<size_t>(t)];
    if (name == full || name == full.substr(0, full.size() - 5)) return static_cast<LoraTarget>(t);
  }
  return Status::invalid_argument(
      fmt::format("unknown LoRA target module '{}' (there are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj and "
                  "down_proj)",
                  name));
}

std::pair<int, int> lora_target_shape(const ModelConfig& m, LoraTarget t) {
  switch (t) {
    case LoraTarget::kQ:
      return {m.q_dim(), m.d_model};
    case LoraTarget::kK:
    case LoraTarget::kV:
      return {m.kv_dim(), m.d_model};
    case LoraTarget::kO:
      return {m.d_model, m.q_dim()};
    case LoraTarget::kGate:
    case LoraTarget::kUp:
      return {m.ffn_dim, m.d_model};
    case LoraTarget::kDown:
      return {m.d_model, m.ffn_dim};
  }
  return {0, 0};
}

int hf_to_gguf_row(int r, int head_dim) {
  const int half = head_dim / 2, head = r / head_dim, rem = r % head_dim;
  return head * head_dim + 2 * (rem % half) + rem / half;
}

Result<LoraAdapter> LoraAdapter::create(const ModelConfig& model, const LoraConfig& config, uint64_t seed) {
  if (config.rank < 1) return Status::invalid_argument("the LoRA rank must be >= 1");
  if (config.targets.empty()) return Status::invalid_argument("a LoRA adapter needs at least one target module");
  LoraAdapter a;
  a.rslora = config.rslora;
  a.layers.resize(static_cast<size_t>(model.n_layers));
  std::mt19937_64 rng(seed);
  for (auto& layer : a.layers) {
    for (LoraTarget t : config.targets) {
      LoraMatrix& m = layer[static_cast<size_t>(t)];
      std::tie(m.out, m.in) = lora_target_shape(model, t);
      m.rank = config.rank;
      m.alpha = config.alpha;
      m.scale = scale_of(config.alpha, config.rank, config.rslora);
      const float bound = 1.0f / std::sqrt(static_cast<float>(m.in));
      std::uniform_real_distribution<float> uniform(-bound, bound);
      m.a.resize(static_cast<size_t>(m.rank) * m.in);
      for (float& v : m.a) v = uniform(rng);
      m.b.assign(static_cast<size_t>(m.out) * m.rank, 0.0f);
    }
  }
  return a;
}

Result<LoraAdapter> LoraAdapter::load(const std::string& path, const ModelConfig& model) {
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) return load_peft(path, model);
  if (!fs::exists(p, ec)) return Status::not_found(fmt::format("{}: no such file or directory", path));
  if (p.filename() == "adapter_model.safetensors" || p.filename() == "adapter_config.json") {
    return load_peft(p.parent_path().string(), model);
  }
  return load_gguf(path, model);
}

Result<LoraAdapter> LoraAdapter::load_peft(const std::string& dir, const ModelConfig& model) {
  const fs::path root(dir);
  auto fail = [&](const Status& s) { return Status(s.code(), fmt::format("LoRA adapter {}: {}", dir, s.message())); };
  Result<nlohmann::json> config = read_json(root / "adapter_config.json");
  if (!config.ok()) return fail(config.status());
  const nlohmann::json& c = *config;
  const auto str = [&](const char* key, const char* fallback) {
    return c.contains(key) && c[key].is_string() ? c[key].get<std::string>() : std::string(fallback);
  };
  if (str("peft_type", "LORA") != "LORA") {
    return fail(Status::invalid_argument(fmt::format("peft_type is {}, not LORA", str("peft_type", ""))));
  }
  // A boolean setting: absent or null is false; anything but a boolean is an error.
  auto flag = [&](const char* key) -> Result<bool> {
    if (!c.contains(key) || c[key].is_null()) return false;
    if (!c[key].is_boolean())
      return Status::invalid_argument(fmt::format("adapter_config.json: {} is not a boolean", key));
    return c[key].get<bool>();
  };
  for (const char* key : {"use_dora", "fan_in_fan_out", "use_rslora"}) {
    if (Result<bool> b = flag(key); !b.ok()) return fail(b.status());
  }
  if (*flag("use_dora")) return fail(Status::invalid_argument("DoRA adapters (use_dora) are not supported"));
  if (str("bias", "none") != "none") {
    return fail(Status::invalid_argument(fmt::format("LoRA biases (bias = {}) are not supported", str("bias", ""))));
  }
  if (*flag("fan_in_fan_out")) {
    return fail(Status::invalid_argument("fan_in_fan_out adapters (transposed weights) are not supported"));
  }
  if (!c.contains("lora_alpha") || !c["lora_alpha"].is_number()) {
    return fail(Status::invalid_argument("adapter_config.json has no numeric lora_alpha"));
  }
  const float alpha = c["lora_alpha"].get<float>();
  const bool rslora = *flag("use_rslora");
  if (!fs::exists(root / "adapter_model.safetensors")) {
    if (fs::exists(root / "adapter_model.bin")) {
      return fail(Status::invalid_argument(
          "adapter_model.bin (a pickled PyTorch file) is not read; save the adapter with safe_serialization=True, "
          "PEFT's default"));
    }
    return fail(Status::not_found("no adapter_model.safetensors"));
  }
  Result<SafetensorsFile> file = SafetensorsFile::read((root / "adapter_model.safetensors").string());
  if (!file.ok()) return file.status();

  static const std::regex kName(
      R"((?:.*\.)?layers\.(\d+)\.(self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj\.lora_(A|B)(?:\.[A-Za-z0-9_]+)?\.weight)");
  LoraAdapter a;
  a.rslora = rslora;
  a.layers.resize(static_cast<size_t>(model.n_layers));
  for (const SafetensorsFile::Tensor& t : file->tensors()) {
    std::smatch m;
    if (t.name.size() > 256) {  // no tensor name of a LoRA adapter is longer; a regex over one could overflow
      return fail(Status::invalid_argument(fmt::format("tensor name '{}...' is too long", t.name.substr(0, 64))));
    }
    if (!std::regex_match(t.name, m, kName)) {
      return fail(Status::invalid_argument(fmt::format(
          "tensor '{}' is not a LoRA update of a q/k/v/o/gate/up/down projection (lora_A / lora_B)", t.name)));
    }
    Result<LoraTarget> target = parse_lora_target(m[3].str());
    if (!target.ok() || attention(*target) != (m[2] == "self_attn")) {
      return fail(Status::invalid_argument(fmt::format("tensor '{}': unknown module", t.name)));
    }
    if (t.shape.size() != 2) {
      return fail(
          Status::invalid_argument(fmt::format("tensor '{}' has {} dimensions, not 2", t.name, t.shape.size())));
    }
    Result<std::vector<float>> values = SafetensorsFile::floats(t);
    if (!values.ok()) return fail(values.status());
    const int layer = m[1].length() > 6 ? -1 : std::stoi(m[1].str());
    if (Status s =
            place(a, model, t.name, layer, *target, m[4] == "A", t.shape[0], t.shape[1], std::move(values).value());
        !s.is_ok()) {
      return fail(s);
    }
  }
  if (Status s = complete(a); !s.is_ok()) return fail(s);
  for (size_t l = 0; l < a.layers.size(); ++l) {
    for (int ti = 0; ti < kLoraTargets; ++ti) {
      LoraMatrix& mat = a.layers[l][static_cast<size_t>(ti)];
      if (!mat.present()) continue;
      const auto t = static_cast<LoraTarget>(ti);
      const std::string module =
          fmt::format("model.layers.{}.{}.{}", l, attention(t) ? "self_attn" : "mlp", lora_target_name(t));
      mat.alpha = alpha;
      Result<std::optional<float>> custom = pattern_number(c, "alpha_pattern", module);
      if (!custom.ok()) return fail(custom.status());
      if (custom->has_value()) mat.alpha = **custom;
      mat.scale = scale_of(mat.alpha, mat.rank, rslora);
      if (permuted(model, t)) mat.b = permute_rows(mat.b, mat.out, mat.rank, model.head_dim, /*to_gguf=*/true);
    }
  }
  return a;
}

Result<LoraAdapter> LoraAdapter::load_gguf(const std::string& path, const ModelConfig& model) {
  auto fail = [&](const Status& s) { return Status(s.code(), fmt::format("LoRA adapter {}: {}", path, s.message())); };
  Result<GgufFile> file = GgufFile::open(path);
  if (!file.ok()) return file.status();
  const GgufFile& f = *file;
  Result<std::string_view> type = f.get_string("general.type");
  if (!type.ok() || *type != "adapter") {
    return fail(Status::invalid_argument("not a GGUF adapter (general.type is not 'adapter'); is it a model?"));
  }
  Result<std::string_view> kind = f.get_string("adapter.type");
  if (!kind.ok() || *kind != "lora") {
    return fail(Status::invalid_argument("adapter.type is not 'lora' (other GGUF adapters are not supported)"));
  }
  Result<std::string_view> arch = f.get_string("general.architecture");
  if (!arch.ok() || *arch != model.arch) {
    return fail(Status::invalid_argument(fmt::format("the adapter is for architecture '{}', the model is '{}'",
                                                     arch.ok() ? std::string(*arch) : "?", model.arch)));
  }
  float alpha = 0;  // llama.cpp: no alpha (or 0) means a scale of 1, i.e. alpha = rank
  if (f.find("adapter.lora.alpha") != nullptr) {
    Result<double> a = f.get_float("adapter.lora.alpha");
    if (!a.ok()) return fail(a.status());
    alpha = static_cast<float>(*a);
  }
  static const std::regex kName(R"(blk\.(\d{1,6})\.([a-z_]+)\.weight\.lora_(a|b))");
  LoraAdapter a;
  a.layers.resize(static_cast<size_t>(model.n_layers));
  std::vector<float> row;
  for (const GgufTensor& t : f.tensors()) {
    std::cmatch m;
    const std::string name(t.name.substr(0, 256));
    int target = -1;
    if (std::regex_match(name.c_str(), m, kName)) {
      for (int k = 0; k < kLoraTargets; ++k) target = kGgufNames[static_cast<size_t>(k)] == m[2].str() ? k : target;
    }
    if (target < 0) {
      return fail(Status::invalid_argument(
          fmt::format("tensor '{}' is not a LoRA update of a q/k/v/o/gate/up/down projection", name)));
    }
    if (t.n_dims != 2) return fail(Status::invalid_argument(fmt::format("tensor '{}' is not 2-D", name)));
    std::vector<float> values(static_cast<size_t>(t.elements()));
    const size_t row_bytes = t.nbytes / static_cast<size_t>(t.rows());
    for (int64_t r = 0; r < t.rows(); ++r) {
      if (Status s = kernels::cpu::dequantize_row(t.type, t.data + static_cast<size_t>(r) * row_bytes,
                                                  &values[static_cast<size_t>(r * t.ne[0])], t.ne[0]);
          !s.is_ok()) {
        return fail(Status::invalid_argument(fmt::format("tensor '{}': {}", name, s.message())));
      }
    }
    // ggml's ne is innermost first: lora_a is ne = [in, rank], lora_b ne = [rank, out].
    if (Status s = place(a, model, name, std::stoi(m[1].str()), static_cast<LoraTarget>(target), m[3] == "a", t.ne[1],
                         t.ne[0], std::move(values));
        !s.is_ok()) {
      return fail(s);
    }
  }
  if (Status s = complete(a); !s.is_ok()) return fail(s);
  for (auto& layer : a.layers) {
    for (LoraMatrix& mat : layer) {
      if (!mat.present()) continue;
      mat.alpha = alpha != 0 ? alpha : static_cast<float>(mat.rank);
      mat.scale = mat.alpha / static_cast<float>(mat.rank);
    }
  }
  return a;
}

Status LoraAdapter::save_peft(const std::string& dir, const ModelConfig& model, std::string_view base_model) const {
  WEFT_RETURN_IF_ERROR(check(model));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error(fmt::format("{}: cannot create: {}", dir, ec.message()));
  const LoraMatrix* first = nullptr;
  std::vector<SafetensorsOut> tensors;
  nlohmann::json rank_pattern = nlohmann::json::object(), alpha_pattern = nlohmann::json::object();
  for (size_t l = 0; l < layers.size(); ++l) {
    for (int ti = 0; ti < kLoraTargets; ++ti) {
      const LoraMatrix& m = layers[l][static_cast<size_t>(ti)];
      if (!m.present()) continue;
      const auto t = static_cast<LoraTarget>(ti);
      if (first == nullptr) first = &m;
      const std::string module =
          fmt::format("model.layers.{}.{}.{}", l, attention(t) ? "self_attn" : "mlp", lora_target_name(t));
      if (m.rank != first->rank) rank_pattern[module] = m.rank;
      if (m.alpha != first->alpha) alpha_pattern[module] = m.alpha;
      const std::string prefix = "base_model.model." + module;
      tensors.push_back({prefix + ".lora_A.weight", {m.rank, m.in}, m.a});
      tensors.push_back({prefix + ".lora_B.weight",
                         {m.out, m.rank},
                         permuted(model, t) ? permute_rows(m.b, m.out, m.rank, model.head_dim, false) : m.b});
    }
  }
  std::vector<std::string> modules;
  for (LoraTarget t : targets()) modules.emplace_back(lora_target_name(t));
  const nlohmann::json config = {{"peft_type", "LORA"},
                                 {"task_type", "CAUSAL_LM"},
                                 {"base_model_name_or_path", std::string(base_model)},
                                 {"r", first->rank},
                                 {"lora_alpha", first->alpha},
                                 {"use_rslora", rslora},
                                 {"target_modules", modules},
                                 {"rank_pattern", rank_pattern},
                                 {"alpha_pattern", alpha_pattern},
                                 {"lora_dropout", 0.0},
                                 {"bias", "none"},
                                 {"fan_in_fan_out", false},
                                 {"use_dora", false},
                                 {"inference_mode", true},
                                 {"init_lora_weights", true},
                                 {"modules_to_save", nullptr}};
  std::ofstream out(fs::path(dir) / "adapter_config.json", std::ios::trunc);
  out << config.dump(2) << "\n";
  out.close();
  if (!out) return Status::io_error(fmt::format("{}/adapter_config.json: write failed", dir));
  return write_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
}

Status LoraAdapter::save_gguf(const std::string& path, const ModelConfig& model) const {
  WEFT_RETURN_IF_ERROR(check(model));
  const LoraMatrix* first = nullptr;
  for (const auto& layer : layers) {
    for (const LoraMatrix& m : layer) first = first == nullptr && m.present() ? &m : first;
  }
  // llama.cpp scales each matrix by alpha / rank: one alpha for the file, the rest folded into B.
  float alpha = first->scale * static_cast<float>(first->rank);
  if (alpha == 0) alpha = static_cast<float>(first->rank);  // llama.cpp reads 0 as "no alpha"; B folds the 0 in
  GgufWriter w;
  w.add_string("general.architecture", model.arch);
  w.add_string("general.type", "adapter");
  w.add_string("adapter.type", "lora");
  w.add_float32("adapter.lora.alpha", alpha);
  auto bytes = [](const std::vector<float>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  };
  for (size_t l = 0; l < layers.size(); ++l) {
    for (int ti = 0; ti < kLoraTargets; ++ti) {
      const LoraMatrix& m = layers[l][static_cast<size_t>(ti)];
      if (!m.present()) continue;
      const std::string name = fmt::format("blk.{}.{}.weight.lora_", l, kGgufNames[static_cast<size_t>(ti)]);
      std::vector<float> b = m.b;
      const float fold = m.scale * static_cast<float>(m.rank) / alpha;
      if (fold != 1.0f) {
        for (float& v : b) v *= fold;
      }
      WEFT_RETURN_IF_ERROR(w.add_tensor(name + "a", kernels::TensorType::kF32, {m.in, m.rank}, bytes(m.a)));
      WEFT_RETURN_IF_ERROR(w.add_tensor(name + "b", kernels::TensorType::kF32, {m.rank, m.out}, bytes(b)));
    }
  }
  return w.write(path);
}

const LoraMatrix* LoraAdapter::find(int layer, LoraTarget target) const {
  if (layer < 0 || static_cast<size_t>(layer) >= layers.size()) return nullptr;
  const LoraMatrix& m = layers[static_cast<size_t>(layer)][static_cast<size_t>(target)];
  return m.present() ? &m : nullptr;
}

Status LoraAdapter::check(const ModelConfig& model) const {
  if (layers.size() > static_cast<size_t>(model.n_layers)) {
    return Status::invalid_argument(
        fmt::format("the adapter has {} layers, the model {}", layers.size(), model.n_layers));
  }
  bool any = false;
  for (size_t l = 0; l < layers.size(); ++l) {
    for (int ti = 0; ti < kLoraTargets; ++ti) {
      const LoraMatrix& m = layers[l][static_cast<size_t>(ti)];
      if (!m.present()) continue;
      any = true;
      const auto [out, in] = lora_target_shape(model, static_cast<LoraTarget>(ti));
      if (m.in != in || m.out != out || m.a.size() != static_cast<size_t>(m.rank) * in ||
          m.b.size() != static_cast<size_t>(out) * m.rank || !std::isfinite(m.scale)) {
        return Status::invalid_argument(fmt::format("layer {} {}: the update does not fit the model's [{}, {}]", l,
                                                    lora_target_name(static_cast<LoraTarget>(ti)), out, in));
      }
    }
  }
  if (!any) return Status::invalid_argument("the adapter has no LoRA matrices");
  return Status::ok();
}

std::vector<LoraTarget> LoraAdapter::targets() const {
  std::vector<LoraTarget> out;
  for (int ti = 0; ti < kLoraTargets; ++ti) {
    for (const auto& layer : layers) {
      if (layer[static_cast<size_t>(ti)].present()) {
        out.push_back(static_cast<LoraTarget>(ti));
        break;
      }
    }
  }
  return out;
}

int LoraAdapter::rank() const {
  int r = 0;
  for (const auto& layer : layers) {
    for (const LoraMatrix& m : layer) r = std::max(r, m.rank);
  }
  return r;
}

int64_t LoraAdapter::parameters() const {
  int64_t n = 0;
  for (const auto& layer : layers) {
    for (const LoraMatrix& m : layer) n += static_cast<int64_t>(m.a.size() + m.b.size());
  }
  return n;
}

}  // namespace weft::llm
