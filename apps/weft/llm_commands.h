// `weft generate` and `weft chat`: run a GGUF model on the CPU and stream its text to stdout.
#pragma once

namespace weft::cli {

// argv holds the words after the subcommand. Return the process exit code: 0 done, 1 failed
// (the reason on stderr), 2 bad usage.
int generate_command(int argc, char** argv);
int chat_command(int argc, char** argv);

}  // namespace weft::cli
