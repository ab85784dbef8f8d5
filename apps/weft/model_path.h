// Where `--model` points: a file path, or "default" for SmolLM2-135M-Instruct (Q4_1), which
// scripts/setup fetches into models/. "default" is looked for in $WEFT_MODELS_DIR, ./models, the
// models/ folder of the checkout this binary was built from, and next to the binary.
#pragma once

#include <string>

#include "weft/status.h"

namespace weft::cli {

inline constexpr const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";

// kNotFound with what to do when "default" is nowhere, or a path does not exist.
Result<std::string> resolve_model_path(const std::string& model);

}  // namespace weft::cli
