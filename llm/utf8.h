// UTF-8 helpers: validation, code point iteration, and a streaming decoder for detokenization.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "weft/export.h"

namespace weft::llm {

// Length of the UTF-8 sequence that starts with byte `b` (1 for invalid lead bytes).
inline size_t utf8_len(uint8_t b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

// Offset of the first invalid byte, or npos when `s` is valid UTF-8 (no overlongs, surrogates or
// code points above U+10FFFF).
size_t utf8_invalid_at(std::string_view s);

void append_utf8(std::string& out, uint32_t cp);

// Emits text from a stream of byte pieces (detokenized tokens) without ever splitting a UTF-8
// character: bytes of an incomplete sequence are held until it completes. Invalid bytes are
// replaced by U+FFFD so the output is always valid UTF-8.
class WEFT_API Utf8Stream {
 public:
  // Returns the text that is complete after appending `piece`.
  std::string push(std::string_view piece);
  // Ends the stream: an incomplete tail still held becomes one U+FFFD.
  std::string finish();

 private:
  std::string pending_;
};

}  // namespace weft::llm
