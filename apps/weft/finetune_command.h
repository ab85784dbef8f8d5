// `weft finetune`: trains a LoRA adapter on a JSONL file without a server (finetune/finetuner.h).
#pragma once

namespace weft::cli {

// argv holds the words after the subcommand. Returns 0 done, 1 failed (the reason on stderr),
// 2 bad usage.
int finetune_command(int argc, char** argv);

}  // namespace weft::cli
