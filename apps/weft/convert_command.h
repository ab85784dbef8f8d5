// `weft convert`: a GGUF model rewritten with its matrices in another type (llm/gguf_convert.h).
#pragma once

namespace weft::cli {

// argv holds the words after the subcommand. Returns 0 done, 1 failed (the reason on stderr),
// 2 bad usage.
int convert_command(int argc, char** argv);

}  // namespace weft::cli
