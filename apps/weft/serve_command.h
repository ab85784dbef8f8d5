// `weft serve`: the OpenAI-compatible server on a GGUF model, embedded in this process.
#pragma once

namespace weft::cli {

int serve_command(int argc, char** argv);

}  // namespace weft::cli
