// Rewrites a GGUF model with its weight matrices in another type — a copy of a model at another
// precision, such as a Q8_0 or F16 copy of a Q4_1 file (the pair makes a target and its draft for
// speculative decoding, either way round).
//
//   WEFT_ASSIGN_OR_RETURN(GgufFile in, GgufFile::open("model.Q4_1.gguf"));
//   WEFT_RETURN_IF_ERROR(convert_model(in, kernels::TensorType::kQ8_0, "model.Q8_0.gguf"));
//
// Every matrix (a 2-D tensor whose rows fit the new type's blocks) is dequantized to float32 and
// quantized again; vectors (norms, biases) and all metadata are copied as they are, except
// `general.file_type`, which names the new type as llama.cpp numbers it. merge_lora writes a model
// with an adapter folded into its weights.
#pragma once

#include <string>

#include "kernels/tensor_type.h"
#include "llm/gguf_file.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

// `to`: kQ8_0, kF16, kBF16 or kF32. kInvalidArgument for other types; kIoError when the file cannot
// be written.
WEFT_API Status convert_model(const GgufFile& in, kernels::TensorType to, const std::string& out_path);

struct LoraAdapter;
struct ModelConfig;

// Writes the model with a LoRA adapter merged into its weights (W + scale · B A, as PEFT's
// merge_and_unload does): every matrix the adapter updates is rewritten as `to` (kQ8_0, kF16, kBF16
// or kF32); everything else is copied as it is. `model` is `in`'s configuration.
WEFT_API Status merge_lora(const GgufFile& in, const ModelConfig& model, const LoraAdapter& adapter,
                           kernels::TensorType to, const std::string& out_path);

}  // namespace weft::llm
