// `weft node`: the daemon of this machine (workers/node_daemon.h), in the foreground until
// SIGINT or SIGTERM.
#pragma once

namespace weft::cli {

// argv holds the words after the subcommand. Returns 0 when stopped by a signal, 1 failed (the
// reason on stderr), 2 bad usage.
int node_command(int argc, char** argv);

}  // namespace weft::cli
