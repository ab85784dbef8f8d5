// libFuzzer target: any byte string given to the GGUF reader yields a file or a Status, never a
// crash, hang or unbounded allocation. Build and run with `scripts/fuzz gguf [seconds]`.
#include <cstddef>
#include <cstdint>
#include <string>

#include "llm/gguf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = weft::llm::GgufFile::from_bytes(std::string(reinterpret_cast<const char*>(data), size));
  if (f.ok()) {
    // Touch what a loader would: every tensor's bytes and every metadata value.
    volatile uint8_t sink = 0;
    for (const auto& t : f->tensors()) {
      if (t.nbytes > 0) sink = sink + t.data[0] + t.data[t.nbytes - 1];
    }
    for (const auto& [key, value] : f->metadata()) sink = sink + static_cast<uint8_t>(key.size() + value.size());
  }
  return 0;
}
