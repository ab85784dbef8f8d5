// `weft start` (a head, or a node joining one) and `weft stop`.
#pragma once

namespace weft::cli {

int start_command(int argc, char** argv);
int stop_command(int argc, char** argv);

}  // namespace weft::cli
