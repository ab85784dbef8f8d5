// LoRA adapters: low-rank updates to a model's projections, y = W x + scale · B (A x), with PEFT's
// conventions (A is [rank][in], B is [out][rank], scale = alpha / rank, or alpha / √rank with
// rsLoRA), read from and written to PEFT's directories (adapter_config.json +
// adapter_model.safetensors) and llama.cpp's GGUF adapters (general.type = adapter).
//
//   WEFT_ASSIGN_OR_RETURN(LoraAdapter a, LoraAdapter::load("adapters/pirate", model->config()));
//   Batch b;
//   b.adapters = {&a};
//   b.add_chain(seq, 0, prompt);
//   for (BatchToken& t : b.tokens) t.adapter = 0;  // these tokens go through the adapter
//
// B's rows are kept in the GGUF model's order: llama.cpp's converter permutes the rows of q and k
// of Llama-style models (interleaved rotary pairs), so a PEFT adapter's q and k B matrices are
// permuted the same way on load and back on save. Immutable once loaded or trained; share it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llm/model_config.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

/// The projections a LoRA adapter may update, in PEFT's module names' order.
enum class LoraTarget : uint8_t { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kLoraTargets = 7;

/// PEFT's module name: "q_proj", "k_proj", ..., "down_proj".
WEFT_API std::string_view lora_target_name(LoraTarget t);
/// Parses "q_proj" (or "q", "gate", ...); kInvalidArgument lists the names there are.
WEFT_API Result<LoraTarget> parse_lora_target(std::string_view name);

/// One projection's update. rank 0: the adapter leaves this projection alone.
struct WEFT_API LoraMatrix {
  int rank = 0;
  int in = 0, out = 0;   ///< the base matrix's columns and rows
  float alpha = 0;       ///< as configured (PEFT's lora_alpha)
  float scale = 0;       ///< what B (A x) is multiplied by
  std::vector<float> a;  ///< [rank][in]
  std::vector<float> b;  ///< [out][rank], rows in the GGUF model's order
  bool present() const { return rank > 0; }
};

/// How a new adapter is shaped (finetuning; see LoraAdapter::create).
struct WEFT_API LoraConfig {
  int rank = 8;
  float alpha = 16;
  bool rslora = false;  ///< scale = alpha / √rank instead of alpha / rank
  std::vector<LoraTarget> targets = {LoraTarget::kQ, LoraTarget::kV};
};

/// A LoRA adapter (see the top of this file).
struct WEFT_API LoraAdapter {
  /// Per decoder layer, per LoraTarget.
  std::vector<std::array<LoraMatrix, kLoraTargets>> layers;
  bool rslora = false;

  /// A new adapter for `config`'s model: A drawn uniformly in ±1/√in (PEFT's Kaiming-uniform
  /// default), B zero, so the adapter starts as the identity. kInvalidArgument for a rank < 1 or
  /// no targets.
  static Result<LoraAdapter> create(const ModelConfig& model, const LoraConfig& config, uint64_t seed);
  /// A PEFT directory (or its adapter_model.safetensors) or a GGUF adapter file, checked against
  /// `model`: kNotFound, or kInvalidArgument / kCorruption naming the tensor or setting at fault.
  static Result<LoraAdapter> load(const std::string& path, const ModelConfig& model);
  static Result<LoraAdapter> load_peft(const std::string& dir, const ModelConfig& model);
  static Result<LoraAdapter> load_gguf(const std::string& path, const ModelConfig& model);

  /// Writes a PEFT directory (created if missing) that PEFT and `load_peft` read;
  /// `base_model` goes to base_model_name_or_path.
  Status save_peft(const std::string& dir, const ModelConfig& model, std::string_view base_model) const;
  /// Writes a GGUF adapter that llama.cpp and `load_gguf` read (float32 tensors; per-projection
  /// scales that one adapter.lora.alpha cannot express are folded into B).
  Status save_gguf(const std::string& path, const ModelConfig& model) const;

  /// The update of `target` in `layer`, or null when there is none.
  const LoraMatrix* find(int layer, LoraTarget target) const;
  /// Every matrix has the shape of `model`'s projection and finite values.
  Status check(const ModelConfig& model) const;
  /// The projections it updates, in LoraTarget order.
  std::vector<LoraTarget> targets() const;
  /// The largest rank.
  int rank() const;
  /// Trainable values (A and B of every matrix).
  int64_t parameters() const;
};

/// Rows and columns of `target`'s base matrix in `model`.
WEFT_API std::pair<int, int> lora_target_shape(const ModelConfig& model, LoraTarget target);

/// Row `r` of a Hugging Face q or k matrix with `heads` heads of `head_dim` rows is row
/// hf_to_gguf_row(r) of the GGUF file's (llama.cpp's converter interleaves the rotary halves).
WEFT_API int hf_to_gguf_row(int r, int head_dim);

}  // namespace weft::llm
