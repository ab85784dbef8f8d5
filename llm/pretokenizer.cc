#include "llm/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fmt/format.h>

namespace weft::llm {

struct PreTokenizer::Impl {
  std::vector<pcre2_code*> codes;
  ~Impl() {
    for (pcre2_code* c : codes) pcre2_code_free(c);
  }
};

PreTokenizer::PreTokenizer() : impl_(std::make_unique<Impl>()) {}
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

Result<std::vector<std::string>> PreTokenizer::expressions_for(std::string_view pre) {
  // Contractions, letters, digits, other symbols, and whitespace, as GPT-2 split them.
  static const std::string kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
  static const std::string kContractions = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))";
  if (pre == "gpt-2" || pre == "gpt2" || pre == "mpt" || pre == "olmo") return std::vector<std::string>{kGpt2};
  if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "codeshell") {
    return std::vector<std::string>{R"(\p{N})", kGpt2};
  }
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe") {
    return std::vector<std::string>{kContractions +
                                    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"};
  }
  if (pre == "qwen2" || pre == "stablelm2") {
    return std::vector<std::string>{kContractions +
                                    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"};
  }
  if (pre.empty() || pre == "default") {
    return std::vector<std::string>{R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  }
  return Status::invalid_argument(fmt::format("unsupported pre-tokenizer '{}' (tokenizer.ggml.pre)", pre));
}

Result<PreTokenizer> PreTokenizer::create(const std::vector<std::string>& expressions) {
  PreTokenizer p;
  for (const std::string& e : expressions) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(e.data()), e.size(), PCRE2_UTF | PCRE2_UCP,
                                     &error, &offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(error, msg, sizeof msg);
      return Status::invalid_argument(fmt::format("bad pre-tokenizer expression at {}: {}", offset,
                                                  reinterpret_cast<const char*>(msg)));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort; falls back to the interpreter
    p.impl_->codes.push_back(code);
  }
  return p;
}

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> fragments{text};
  pcre2_match_data* md = nullptr;
  for (pcre2_code* code : impl_->codes) {
    if (md == nullptr) md = pcre2_match_data_create(1, nullptr);
    std::vector<std::string_view> next;
    for (std::string_view frag : fragments) {
      size_t start = 0;  // end of the previous match within frag
      size_t at = 0;
      while (at < frag.size()) {
        int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(frag.data()), frag.size(), at, PCRE2_NO_UTF_CHECK, md,
                             nullptr);
        if (rc < 0) break;
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) {  // empty match: step one character and keep looking
          at = ov[0] + 1;
          while (at < frag.size() && (static_cast<uint8_t>(frag[at]) & 0xC0) == 0x80) ++at;
          continue;
        }
        if (ov[0] > start) next.push_back(frag.substr(start, ov[0] - start));
        next.push_back(frag.substr(ov[0], ov[1] - ov[0]));
        start = at = ov[1];
      }
      if (start < frag.size()) next.push_back(frag.substr(start));
    }
    fragments = std::move(next);
  }
  if (md != nullptr) pcre2_match_data_free(md);
  return fragments;
}

}  // namespace weft::llm
