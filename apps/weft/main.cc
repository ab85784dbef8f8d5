// The `weft` command: one entry point for the runtime's and the LLM layer's tools.
//
//   weft generate --model default "The capital of France is"
//   weft chat --model default
//   weft serve --model default --port 8000
//   weft node --address unix:/run/user/1000/weft-node.sock
#include <cstdio>
#include <cstring>
#include <string>

#include "apps/weft/convert_command.h"
#include "apps/weft/finetune_command.h"
#include "apps/weft/llm_commands.h"
#include "apps/weft/node_command.h"
#include "apps/weft/serve_command.h"
#include "weft/version.h"

namespace {

constexpr const char* kUsage =
    "usage: weft <command> [options]\n"
    "commands:\n"
    "  generate   complete a prompt with a GGUF model, streaming the text (weft generate --help)\n"
    "  chat       chat with a model using its chat template\n"
    "  serve      the OpenAI-compatible server (weft serve --help)\n"
    "  convert    rewrite a model's weights in another type (weft convert --help)\n"
    "  finetune   train a LoRA adapter on a JSONL file (weft finetune --help)\n"
    "  node       the daemon drivers of this machine attach to (weft node --help)\n"
    "  version    print weft's version (also weft --version)\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "help") == 0) {
    std::fprintf(argc < 2 ? stderr : stdout, "%s", kUsage);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "generate") return weft::cli::generate_command(argc - 2, argv + 2);
  if (command == "chat") return weft::cli::chat_command(argc - 2, argv + 2);
  if (command == "serve") return weft::cli::serve_command(argc - 2, argv + 2);
  if (command == "convert") return weft::cli::convert_command(argc - 2, argv + 2);
  if (command == "finetune") return weft::cli::finetune_command(argc - 2, argv + 2);
  if (command == "node") return weft::cli::node_command(argc - 2, argv + 2);
  if (command == "version" || command == "--version") {
    std::printf("weft %s\n", weft::version_string());
    return 0;
  }
  std::fprintf(stderr, "weft: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
