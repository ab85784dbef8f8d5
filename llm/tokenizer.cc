#include "llm/tokenizer.h"

#include <algorithm>
#include <array>
#include <queue>

#include <fmt/format.h>

#include "llm/utf8.h"

namespace weft::llm {
namespace {

// GPT-2's reversible map from bytes to printable code points: printable Latin-1 bytes map to
// themselves, the rest to U+0100 onwards in byte order.
struct ByteMap {
  std::array<uint32_t, 256> to_cp{};
  std::unordered_map<uint32_t, uint8_t> to_byte;
  ByteMap() {
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      to_cp[b] = printable ? b : next++;
      to_byte[to_cp[b]] = static_cast<uint8_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

uint32_t decode_cp(std::string_view s, size_t& i) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  const size_t n = std::min(utf8_len(b0), s.size() - i);
  uint32_t cp = n == 1 ? b0 : b0 & (0xFF >> (n + 1));
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

const char* const kEndMarkers[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                   "<|end_of_text|>", "</s>", "<|eom_id|>"};


}  // namespace

// Absorbs the symbol after `left` into it and unlinks it.
void Tokenizer::merge_right_into(std::vector<Symbol>& sym, int left) {
  Symbol& l = sym[left];
  Symbol& r = sym[l.next];
  l.len += r.len;
  r.len = 0;
  l.next = r.next;
  if (r.next >= 0) sym[r.next].prev = left;
}

// One linked symbol per UTF-8 character of `text`.
std::vector<Tokenizer::Symbol> Tokenizer::split_characters(std::string_view text) {
  std::vector<Symbol> sym;
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::min(utf8_len(static_cast<uint8_t>(text[i])), text.size() - i);
    sym.push_back({static_cast<int>(sym.size()) - 1, static_cast<int>(sym.size()) + 1, i, len});
    i += len;
  }
  if (!sym.empty()) sym.back().next = -1;
  return sym;
}

// The tokens of the merged symbols, in order; a symbol outside the vocabulary falls back to bytes.
void Tokenizer::emit_symbols(std::string_view text, const std::vector<Symbol>& sym, std::vector<int32_t>& out) const {
  for (int i = 0; i >= 0; i = sym[i].next) {
    std::string_view piece = text.substr(sym[i].start, sym[i].len);
    if (auto id = find(piece)) {
      out.push_back(*id);
    } else {
      push_bytes_fallback(piece, out);
    }
  }
}

Result<Tokenizer> Tokenizer::from_gguf(const GgufFile& f) {
  Tokenizer t;
  WEFT_ASSIGN_OR_RETURN(std::string_view model, f.get_string("tokenizer.ggml.model"));
  if (model == "gpt2") {
    t.kind_ = Tokenizer::Kind::kByteBpe;
  } else if (model == "llama") {
    t.kind_ = Tokenizer::Kind::kSentencePiece;
  } else {
    return Status::invalid_argument(fmt::format("unsupported tokenizer model '{}' (weft reads gpt2 and llama)", model));
  }
  WEFT_ASSIGN_OR_RETURN(const GgufValue* tokens, f.get_array("tokenizer.ggml.tokens", GgufType::kString));
  const size_t n = tokens->strings.size();
  if (n == 0 || n > (1u << 24)) return Status::corruption("tokenizer.ggml.tokens must hold 1 to 2^24 tokens");
  t.tokens_.reserve(n);
  for (std::string_view s : tokens->strings) t.tokens_.emplace_back(s);
  t.types_.assign(n, TokenType::kNormal);
  if (const GgufValue* types = f.find("tokenizer.ggml.token_type")) {
    if (!types->is_array() || types->size() != n) return Status::corruption("tokenizer.ggml.token_type size mismatch");
    for (size_t i = 0; i < n; ++i) {
      int64_t v = types->integers.empty() ? 1 : types->integers[i];
      t.types_[i] = v >= 1 && v <= 6 ? static_cast<TokenType>(v) : TokenType::kNormal;
    }
  }
  t.scores_.assign(n, 0.0f);
  if (const GgufValue* scores = f.find("tokenizer.ggml.scores")) {
    if (!scores->is_array() || scores->numbers.size() != n) return Status::corruption("tokenizer.ggml.scores size mismatch");
    for (size_t i = 0; i < n; ++i) t.scores_[i] = static_cast<float>(scores->numbers[i]);
  }
  t.ids_.reserve(n);
  for (size_t i = 0; i < n; ++i) t.ids_.emplace(t.tokens_[i], static_cast<int32_t>(i));

  if (t.kind_ == Tokenizer::Kind::kByteBpe) {
    WEFT_ASSIGN_OR_RETURN(const GgufValue* merges, f.get_array("tokenizer.ggml.merges", GgufType::kString));
    t.merge_rank_.reserve(merges->strings.size());
    for (size_t r = 0; r < merges->strings.size(); ++r) {
      std::string_view m = merges->strings[r];
      if (m.find(' ', 1) == std::string_view::npos) {
        return Status::corruption(fmt::format("tokenizer merge {} ('{}') has no separating space", r, m));
      }
      t.merge_rank_.emplace(std::string(m), static_cast<int32_t>(r));
    }
    std::string_view pre;
    if (const GgufValue* p = f.find("tokenizer.ggml.pre")) pre = p->str;
    WEFT_ASSIGN_OR_RETURN(std::vector<std::string> exprs, PreTokenizer::expressions_for(pre));
    WEFT_ASSIGN_OR_RETURN(PreTokenizer p, PreTokenizer::create(exprs));
    t.pre_.emplace(std::move(p));
    t.ignore_merges_ = pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
  }

  auto id_key = [&](const char* key, int32_t fallback) -> Result<int32_t> {
    Result<uint64_t> v = f.get_uint(key);
    if (!v.ok()) return v.status().code() == StatusCode::kNotFound ? Result<int32_t>(fallback) : Result<int32_t>(v.status());
    if (*v >= n) return Status::corruption(fmt::format("{} = {} is outside the vocabulary", key, *v));
    return static_cast<int32_t>(*v);
  };
  const bool spm = t.kind_ == Tokenizer::Kind::kSentencePiece;
  WEFT_ASSIGN_OR_RETURN(t.bos_, id_key("tokenizer.ggml.bos_token_id", spm ? 1 : -1));
  WEFT_ASSIGN_OR_RETURN(t.eos_, id_key("tokenizer.ggml.eos_token_id", spm ? 2 : -1));
  WEFT_ASSIGN_OR_RETURN(t.unk_, id_key("tokenizer.ggml.unknown_token_id", spm ? 0 : -1));
  WEFT_ASSIGN_OR_RETURN(int32_t eot, id_key("tokenizer.ggml.eot_token_id", -1));
  auto flag = [&](const char* key, bool fallback) {
    Result<bool> v = f.get_bool(key);
    return v.ok() ? *v : fallback;
  };
  t.add_bos_ = flag("tokenizer.ggml.add_bos_token", spm);
  t.add_eos_ = flag("tokenizer.ggml.add_eos_token", false);
  t.add_space_prefix_ = flag("tokenizer.ggml.add_space_prefix", spm);

  for (size_t i = 0; i < n; ++i) {
    TokenType ty = t.types_[i];
    if (ty == TokenType::kControl || ty == TokenType::kUserDefined || ty == TokenType::kUnknown) {
      if (!t.tokens_[i].empty()) t.specials_.push_back(static_cast<int32_t>(i));
    }
    if (ty == TokenType::kControl || ty == TokenType::kUserDefined) {
      for (const char* marker : kEndMarkers) {
        if (t.tokens_[i] == marker) t.end_of_generation_.push_back(static_cast<int32_t>(i));
      }
    }
  }
  std::stable_sort(t.specials_.begin(), t.specials_.end(),
                   [&](int32_t a, int32_t b) { return t.tokens_[a].size() > t.tokens_[b].size(); });
  for (int32_t id : {t.eos_, eot}) {
    if (id >= 0) t.end_of_generation_.push_back(id);
  }
  return t;
}

std::optional<int32_t> Tokenizer::find(std::string_view token_text) const {
  auto it = ids_.find(std::string(token_text));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return std::find(end_of_generation_.begin(), end_of_generation_.end(), id) != end_of_generation_.end();
}

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  if (size_t bad = utf8_invalid_at(text); bad != std::string_view::npos) {
    return Status::invalid_argument(fmt::format("text is not valid UTF-8 (byte {})", bad));
  }
  std::vector<int32_t> out;
  if (add_special && add_bos_ && bos_ >= 0) out.push_back(bos_);

  // Partition into raw text and special tokens, longest special token first.
  struct Part {
    std::string_view text;
    int32_t special = -1;
  };
  std::vector<Part> parts{{text, -1}};
  for (int32_t id : specials_) {
    const TokenType ty = types_[static_cast<size_t>(id)];
    if (!parse_special && ty != TokenType::kUserDefined) continue;
    const std::string& s = tokens_[static_cast<size_t>(id)];
    std::vector<Part> next;
    for (const Part& p : parts) {
      if (p.special >= 0) {
        next.push_back(p);
        continue;
      }
      size_t from = 0;
      for (size_t at; (at = p.text.find(s, from)) != std::string_view::npos; from = at + s.size()) {
        if (at > from) next.push_back({p.text.substr(from, at - from), -1});
        next.push_back({{}, id});
      }
      if (from < p.text.size()) next.push_back({p.text.substr(from), -1});
    }
    parts = std::move(next);
  }
  bool first_text = true;
  for (const Part& p : parts) {
    if (p.special >= 0) {
      out.push_back(p.special);
      continue;
    }
    if (kind_ == Kind::kSentencePiece) {
      // A space prefix goes before the first text only (not after a special token).
      std::string buf;
      if (add_space_prefix_ && first_text && out.size() == (add_special && add_bos_ && bos_ >= 0 ? 1u : 0u)) buf = " ";
      buf.append(p.text);
      encode_spm(buf, out);
    } else {
      encode_fragment(p.text, out);
    }
    first_text = false;
  }
  if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

void Tokenizer::encode_fragment(std::string_view text, std::vector<int32_t>& out) const {
  const ByteMap& bm = byte_map();
  for (std::string_view word : pre_->split(text)) {
    std::string encoded;
    for (char c : word) append_utf8(encoded, bm.to_cp[static_cast<uint8_t>(c)]);
    encode_bpe_word(encoded, out);
  }
}

void Tokenizer::push_bytes_fallback(std::string_view bytes, std::vector<int32_t>& out) const {
  for (char c : bytes) {
    if (kind_ == Kind::kSentencePiece) {
      auto id = find(fmt::format("<0x{:02X}>", static_cast<uint8_t>(c)));
      if (id) {
        out.push_back(*id);
      } else if (unk_ >= 0) {
        out.push_back(unk_);
      }
    } else if (auto id = find(std::string(1, c))) {
      out.push_back(*id);
    }
  }
}

// Byte-level BPE on one pre-tokenized word: merge the adjacent pair with the lowest merge rank
// (leftmost on ties) until no pair has a rank.
void Tokenizer::encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    if (auto id = find(word)) {
      out.push_back(*id);
      return;
    }
  }
  std::vector<Symbol> sym = split_characters(word);
  if (sym.empty()) return;
  struct Pair {
    int rank, left, right;
    size_t left_len, right_len;
    bool operator<(const Pair& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Pair> queue;
  std::string key;
  auto try_pair = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    key.assign(word.substr(sym[l].start, sym[l].len));
    key.push_back(' ');
    key.append(word.substr(sym[r].start, sym[r].len));
    auto it = merge_rank_.find(key);
    if (it != merge_rank_.end()) queue.push({it->second, l, r, sym[l].len, sym[r].len});
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i) try_pair(static_cast<int>(i), static_cast<int>(i + 1));
  while (!queue.empty()) {
    Pair p = queue.top();
    queue.pop();
    Symbol& l = sym[p.left];
    Symbol& r = sym[p.right];
    // Stale: one side was merged away or grew since this pair was queued.
    if (l.len == 0 || r.len == 0 || l.next != p.right || l.len != p.left_len || r.len != p.right_len) continue;
    merge_right_into(sym, p.left);
    try_pair(l.prev, p.left);
    try_pair(p.left, l.next);
  }
  emit_symbols(word, sym, out);
}

// SentencePiece-style BPE: spaces become U+2581, then the adjacent pair whose concatenation is a
// vocabulary token with the highest score merges first (leftmost on ties); characters left
// outside the vocabulary fall back to <0xXX> byte tokens.
void Tokenizer::encode_spm(std::string_view raw, std::vector<int32_t>& out) const {
  std::string text;
  for (char c : raw) {
    if (c == ' ') {
      text.append("\xE2\x96\x81");
    } else {
      text.push_back(c);
    }
  }
  std::vector<Symbol> sym = split_characters(text);
  if (sym.empty()) return;
  struct Pair {
    float score;
    int left, right;
    size_t len;
    bool operator<(const Pair& o) const { return score != o.score ? score < o.score : left > o.left; }
  };
  std::priority_queue<Pair> queue;
  auto try_pair = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    std::string_view s(text.data() + sym[l].start, sym[l].len + sym[r].len);
    if (auto id = find(s)) queue.push({scores_[static_cast<size_t>(*id)], l, r, s.size()});
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i) try_pair(static_cast<int>(i), static_cast<int>(i + 1));
  while (!queue.empty()) {
    Pair p = queue.top();
    queue.pop();
    Symbol& l = sym[p.left];
    Symbol& r = sym[p.right];
    if (l.len == 0 || r.len == 0 || l.next != p.right || l.len + r.len != p.len) continue;
    merge_right_into(sym, p.left);
    try_pair(l.prev, p.left);
    try_pair(p.left, l.next);
  }
  emit_symbols(text, sym, out);
}

std::string Tokenizer::piece(int32_t id, bool special) const {
  if (id < 0 || id >= vocab_size()) return {};
  const std::string& s = tokens_[static_cast<size_t>(id)];
  switch (types_[static_cast<size_t>(id)]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      return special ? s : std::string();
    case TokenType::kUnused:
      return {};
    case TokenType::kUserDefined:
      return s;
    case TokenType::kByte:
      if (s.size() == 6 && s.rfind("<0x", 0) == 0) return std::string(1, static_cast<char>(std::stoi(s.substr(3, 2), nullptr, 16)));
      return s;
    case TokenType::kNormal:
      break;
  }
  std::string out;
  if (kind_ == Kind::kSentencePiece) {
    for (size_t i = 0; i < s.size();) {
      if (s.compare(i, 3, "\xE2\x96\x81") == 0) {
        out.push_back(' ');
        i += 3;
      } else {
        out.push_back(s[i++]);
      }
    }
    return out;
  }
  const ByteMap& bm = byte_map();
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = decode_cp(s, i);
    auto it = bm.to_byte.find(cp);
    if (it != bm.to_byte.end()) {
      out.push_back(static_cast<char>(it->second));
    } else {
      append_utf8(out, cp);  // not a byte-level symbol: keep the character
    }
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool special) const {
  Utf8Stream stream;
  std::string out;
  for (size_t k = 0; k < ids.size(); ++k) {
    std::string p = piece(ids[k], special);
    // SentencePiece: the space that the encoder added before the first word is not text.
    if (kind_ == Kind::kSentencePiece && add_space_prefix_ && k == (ids.size() > 0 && ids[0] == bos_ ? 1u : 0u) &&
        !p.empty() && p[0] == ' ') {
      p.erase(0, 1);
    }
    out += stream.push(p);
  }
  return out + stream.finish();
}

}  // namespace weft::llm
