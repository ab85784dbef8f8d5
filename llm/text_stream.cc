#include "llm/text_stream.h"

#include <algorithm>

namespace weft::llm {

std::string StopFilter::push(std::string_view text, bool& stopped) {
  held_ += text;
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) {
    if (!s.empty()) cut = std::min(cut, held_.find(s));
  }
  if (cut != std::string::npos) {
    stopped = true;
    std::string out = held_.substr(0, cut);
    held_.clear();
    return out;
  }
  size_t keep = 0;  // longest suffix of held_ that is a proper prefix of a stop string
  for (const std::string& s : stop_) {
    for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), held_.size()); k > keep; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  // Never split a UTF-8 character when holding back.
  size_t emit = held_.size() - keep;
  while (emit > 0 && emit < held_.size() && (static_cast<uint8_t>(held_[emit]) & 0xC0) == 0x80) --emit;
  std::string out = held_.substr(0, emit);
  held_.erase(0, emit);
  return out;
}

std::string TextStream::push(int32_t id) {
  if (stopped_) return {};
  return stop_.push(utf8_.push(tokenizer_->piece(id)), stopped_);
}

std::string TextStream::finish() {
  if (stopped_) return {};
  std::string tail = stop_.push(utf8_.finish(), stopped_);
  if (!stopped_) tail += stop_.finish();
  return tail;
}

}  // namespace weft::llm
