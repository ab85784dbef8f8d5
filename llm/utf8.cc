#include "llm/utf8.h"

namespace weft::llm {

size_t utf8_invalid_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    const size_t n = utf8_len(b0);
    if (n == 1) {
      if (b0 >= 0x80) return i;
      ++i;
      continue;
    }
    if (i + n > s.size()) return i;
    uint32_t cp = b0 & (0xFF >> (n + 1));
    for (size_t k = 1; k < n; ++k) {
      const auto b = static_cast<uint8_t>(s[i + k]);
      if ((b & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += n;
  }
  return std::string_view::npos;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string Utf8Stream::push(std::string_view piece) {
  pending_.append(piece);
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const size_t n = utf8_len(static_cast<uint8_t>(pending_[i]));
    if (i + n > pending_.size()) {
      // Incomplete: keep it if what we have so far could still become valid.
      bool could_complete = true;
      for (size_t k = i + 1; k < pending_.size(); ++k) could_complete &= (static_cast<uint8_t>(pending_[k]) & 0xC0) == 0x80;
      if (could_complete && n > 1) break;
    }
    std::string_view seq(pending_.data() + i, std::min(n, pending_.size() - i));
    if (seq.size() == n && utf8_invalid_at(seq) == std::string_view::npos) {
      out.append(seq);
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD for one bad byte; resynchronise at the next
      ++i;
    }
  }
  pending_.erase(0, i);
  return out;
}

std::string Utf8Stream::finish() {
  std::string out = pending_.empty() ? "" : "\xEF\xBF\xBD";  // one replacement for a truncated sequence
  pending_.clear();
  return out;
}

}  // namespace weft::llm
