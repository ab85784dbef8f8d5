// The tokenizer stored in a GGUF file: byte-level BPE (`tokenizer.ggml.model` = "gpt2", as in
// GPT-2, Llama 3, Qwen2, SmolLM2) or SentencePiece-style BPE with scores and byte fallback
// ("llama", as in Llama 2 and Mistral).
//
//   WEFT_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::from_gguf(file));
//   WEFT_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.encode("Hello!"));
//   std::string text = tok.decode(ids);
//
// Special tokens (control and user-defined) are recognised in text only when parse_special is
// set, as in llama.cpp. Immutable after construction; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "llm/gguf_file.h"
#include "llm/pretokenizer.h"
#include "weft/export.h"
#include "weft/status.h"

namespace weft::llm {

/// A vocabulary entry's type (GGUF's tokenizer.ggml.token_type, as llama.cpp numbers them).
enum class TokenType : uint8_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

/// A model's tokenizer (see the top of this file). Immutable; thread-safe.
class WEFT_API Tokenizer {
 public:
  /// The tokenizer model.
  enum class Kind {
    kByteBpe,       ///< GPT-2 style byte-level BPE ("gpt2": Llama 3, SmolLM2, Qwen2)
    kSentencePiece  ///< SentencePiece BPE ("llama": Llama 2, Mistral)
  };

  /// Reads the vocabulary, merges and special tokens from GGUF metadata; kNotFound or
  /// kCorruption naming a missing or malformed key, kInvalidArgument for an unknown model.
  static Result<Tokenizer> from_gguf(const GgufFile& f);

  /// kInvalidArgument when `text` is not valid UTF-8 (naming the byte offset).
  /// add_special: prepend BOS (and append EOS) when the model asks for it.
  Result<std::vector<int32_t>> encode(std::string_view text, bool add_special = true, bool parse_special = false) const;

  /// The bytes token `id` stands for (possibly part of a UTF-8 character). Control tokens give
  /// their text only when `special`.
  std::string piece(int32_t id, bool special = false) const;
  /// Concatenated pieces with invalid UTF-8 replaced by U+FFFD.
  std::string decode(const std::vector<int32_t>& ids, bool special = false) const;

  /// The tokenizer model.
  Kind kind() const { return kind_; }
  /// Entries in the vocabulary.
  int vocab_size() const { return static_cast<int>(tokens_.size()); }
  /// The beginning-of-sequence token.
  int32_t bos() const { return bos_; }
  /// The end-of-sequence token.
  int32_t eos() const { return eos_; }
  /// Whether encode(add_special) prepends BOS.
  bool add_bos() const { return add_bos_; }
  /// End of generation: EOS, EOT, and the end-of-turn markers of known chat formats.
  bool is_end_of_generation(int32_t id) const;
  /// The entry's type.
  TokenType type(int32_t id) const { return types_[static_cast<size_t>(id)]; }
  /// The entry's text as the vocabulary spells it (byte-level BPE: its byte-to-character mapping).
  const std::string& text(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }
  /// The id of the entry spelled `token_text`, if any.
  std::optional<int32_t> find(std::string_view token_text) const;

 private:
  Tokenizer() = default;
  void encode_fragment(std::string_view text, std::vector<int32_t>& out) const;
  void encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const;
  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;
  void push_bytes_fallback(std::string_view bytes, std::vector<int32_t>& out) const;

  /// A unit being merged: a byte range of the text and its neighbours in a linked list.
  struct Symbol {
    int prev, next;
    size_t start, len;
  };
  static std::vector<Symbol> split_characters(std::string_view text);
  static void merge_right_into(std::vector<Symbol>& sym, int left);
  void emit_symbols(std::string_view text, const std::vector<Symbol>& sym, std::vector<int32_t>& out) const;

  Kind kind_ = Kind::kByteBpe;
  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<std::string, int32_t> merge_rank_;  ///< "left right" -> rank
  std::vector<int32_t> specials_;                        ///< control/user-defined/unknown, longest first
  std::vector<int32_t> end_of_generation_;
  std::optional<PreTokenizer> pre_;
  int32_t bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = true, ignore_merges_ = false;
};

}  // namespace weft::llm
