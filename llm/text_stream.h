// Streaming detokenization: token ids in, final text out.
//
//   TextStream text(tokenizer, {"\n\n"});
//   for (int32_t id : ids) {
//     std::string out = text.push(id);  // whole UTF-8 characters, never any part of a stop string
//     if (text.stopped()) break;        // a stop string appeared; `out` ends just before it
//   }
//   std::string rest = text.finish();   // what was held back, once no token follows
//
// Text is held back while it ends in an incomplete UTF-8 character or in a proper prefix of a stop
// string. Not thread-safe: one stream per sequence.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llm/tokenizer.h"
#include "llm/utf8.h"
#include "weft/export.h"

namespace weft::llm {

// Holds back any tail that could begin one of the stop strings.
class WEFT_API StopFilter {
 public:
  explicit StopFilter(std::vector<std::string> stop) : stop_(std::move(stop)) {}
  // Appends `text`; returns what is now final. Sets `stopped` when a stop string appeared (the
  // returned text then ends just before it).
  std::string push(std::string_view text, bool& stopped);
  std::string finish() { return std::exchange(held_, {}); }

 private:
  std::vector<std::string> stop_;
  std::string held_;
};

class WEFT_API TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop)
      : tokenizer_(&tokenizer), stop_(std::move(stop)) {}
  std::string push(int32_t id);
  // After the last token: the text still held back (empty once stopped).
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  const Tokenizer* tokenizer_;
  Utf8Stream utf8_;
  StopFilter stop_;
  bool stopped_ = false;
};

}  // namespace weft::llm
