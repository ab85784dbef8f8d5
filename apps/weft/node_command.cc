#include "apps/weft/node_command.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "apps/weft/cli_args.h"
#include "workers/node_daemon.h"

namespace weft::cli {
namespace {

constexpr const char* kHelp =
    "usage: weft node [--address unix:PATH] [--workers N] [--slots N] [--store-bytes BYTES]\n"
    "  serves this machine's shared-memory object store and starts worker processes for every\n"
    "  driver that attaches with weft::init({.address = \"unix:PATH\"}); runs until SIGINT/SIGTERM\n"
    "  --address      the socket to listen at (default unix:$XDG_RUNTIME_DIR/weft-node.sock, or\n"
    "                 unix:/tmp/weft-node-$UID.sock); readable by its owner only\n"
    "  --workers      a driver's worker processes when it asks for none in particular (default:\n"
    "                 one per core)\n"
    "  --slots        worker processes running at once, all drivers together (default: one per\n"
    "                 core); drivers that want more share them fairly, extra workers wait\n"
    "  --store-bytes  the object store's size (default: 30% of the machine's memory)\n";

std::string default_address() {
  const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
  if (runtime_dir != nullptr && *runtime_dir != '\0') return std::string("unix:") + runtime_dir + "/weft-node.sock";
  return "unix:/tmp/weft-node-" + std::to_string(getuid()) + ".sock";
}

}  // namespace

int node_command(int argc, char** argv) {
  auto a = Args::parse(argc, argv, {"address", "workers", "slots", "store-bytes"}, {"help"});
  if (!a.ok()) {
    std::fprintf(stderr, "weft node: %s\n%s", a.status().message().c_str(), kHelp);
    return 2;
  }
  if (a->has("help")) {
    std::printf("%s", kHelp);
    return 0;
  }
  auto workers = a->get_int("workers", 0);
  auto slots = a->get_int("slots", 0);
  auto store_bytes = a->get_double("store-bytes", 0);
  if (!workers.ok() || !slots.ok() || !store_bytes.ok() || *workers < 0 || *slots < 0 || *store_bytes < 0) {
    std::fprintf(stderr, "weft node: --workers, --slots and --store-bytes take numbers >= 0\n%s", kHelp);
    return 2;
  }
  // Block the stop signals before any thread starts, so that sigwait below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  auto node = workers::NodeDaemon::start({.address = a->get("address", default_address()),
                                          .workers = *workers,
                                          .slots = *slots,
                                          .store_bytes = static_cast<size_t>(*store_bytes)});
  if (!node.ok()) {
    std::fprintf(stderr, "weft node: %s\n", node.status().to_string().c_str());
    return 1;
  }
  std::printf("weft node (pid %d) listening at %s\n", static_cast<int>(getpid()), (*node)->address().c_str());
  std::printf("drivers attach with weft::init({.address = \"%s\"})\n", (*node)->address().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  std::printf("weft node: stopping (signal %d)\n", sig);
  node->reset();
  return 0;
}

}  // namespace weft::cli
