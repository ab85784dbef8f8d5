// `weft status` and `weft job submit|status|logs|stop|list`: clients of the head.
#pragma once

namespace weft::cli {

int status_command(int argc, char** argv);
int job_command(int argc, char** argv);

}  // namespace weft::cli
