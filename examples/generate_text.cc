// The LLM engine from C++: load a GGUF model, encode a prompt, stream a greedy continuation.
//   generate_text MODEL.gguf "The capital of France is" [max_tokens]
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <weft/llm.h>

namespace llm = weft::llm;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.gguf PROMPT [max_tokens]\n", argv[0]);
    return 2;
  }
  auto model = llm::LlamaModel::load(argv[1]);  // a thread per core of its own; no runtime needed
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().to_string().c_str());
    return 1;
  }
  auto tokenizer = llm::Tokenizer::from_gguf((*model)->file());
  if (!tokenizer.ok()) return 1;
  auto prompt = tokenizer->encode(argv[2]);
  if (!prompt.ok()) return 1;
  llm::GenerateOptions options{.max_tokens = argc > 3 ? std::atoi(argv[3]) : 20};  // greedy
  auto g = llm::generate(**model, *tokenizer, *prompt, options, [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return true;
  });
  std::printf("\n");
  if (!g.ok()) std::fprintf(stderr, "%s\n", g.status().to_string().c_str());
  return g.ok() ? 0 : 1;
}
