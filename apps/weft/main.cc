// The `weft` command: one entry point for the runtime's and the LLM layer's tools.
//
//   weft generate --model default "The capital of France is"
//   weft chat --model default
//   weft serve --model default --port 8000
//   weft node --address unix:/run/user/1000/weft-node.sock
//   weft start --head; weft job submit --working-dir . -- ./my_driver
#include <cstdio>
#include <cstring>
#include <string>

#include "apps/weft/convert_command.h"
#include "apps/weft/finetune_command.h"
#include "apps/weft/job_commands.h"
#include "apps/weft/llm_commands.h"
#include "apps/weft/node_command.h"
#include "apps/weft/serve_command.h"
#include "apps/weft/start_command.h"
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
    "  start      start a cluster's head, or a node joining one, in the background (weft start --help)\n"
    "  stop       stop what `weft start` started on this machine\n"
    "  status     a cluster's nodes and jobs\n"
    "  job        submit jobs to a cluster and follow them (weft job --help)\n"
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
  if (command == "start") return weft::cli::start_command(argc - 2, argv + 2);
  if (command == "stop") return weft::cli::stop_command(argc - 2, argv + 2);
  if (command == "status") return weft::cli::status_command(argc - 2, argv + 2);
  if (command == "job") return weft::cli::job_command(argc - 2, argv + 2);
  if (command == "version" || command == "--version") {
    std::printf("weft %s\n", weft::version_string());
    return 0;
  }
  std::fprintf(stderr, "weft: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
