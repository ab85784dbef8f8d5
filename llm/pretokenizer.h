// Splits text into words before BPE, with the regular expressions a model's tokenizer was trained
// with (chosen by GGUF `tokenizer.ggml.pre`). PCRE2 provides the Unicode classes (\p{L}, \p{N}).
//
// Several expressions apply in turn: each splits every current fragment into its matches and the
// text between them, so nothing is dropped. Immutable after construction; thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

class WEFT_API PreTokenizer {
 public:
  // The expressions for a `tokenizer.ggml.pre` name; kInvalidArgument for names weft does not know.
  static Result<std::vector<std::string>> expressions_for(std::string_view pre_name);
  static Result<PreTokenizer> create(const std::vector<std::string>& expressions);

  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Words of valid UTF-8 text, in order; concatenated they give back the text.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  PreTokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft::llm
