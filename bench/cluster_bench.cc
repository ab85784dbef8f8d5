// Cross-node figures for bench/cluster_tasks.py, run as a driver attached to a node (its workers
// may be leased on other nodes). Waits until every worker process answers, then measures:
//   cluster_bench tasks N          N empty tasks submitted at once: tasks per second
//   cluster_bench bytes MIB REPS   a task returns MIB MiB, REPS times one after another: MB/s
//   cluster_bench args MIB REPS    a task is given MIB MiB, REPS times one after another: MB/s
// Prints one JSON line, with how many of the measured tasks ran under each node (the process
// that started their worker).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.h>

std::pair<int64_t, int64_t> whoami(int sleep_ms) {
  if (sleep_ms > 0) usleep(static_cast<useconds_t>(sleep_ms) * 1000);
  return {static_cast<int64_t>(getpid()), static_cast<int64_t>(getppid())};
}

int64_t empty(int i) { return static_cast<int64_t>(getppid()) + 0 * i; }

std::pair<int64_t, std::vector<uint8_t>> blob(int mib, int seed) {
  std::vector<uint8_t> b(static_cast<size_t>(mib) << 20);
  for (size_t i = 0; i < b.size(); i += 4096) b[i] = static_cast<uint8_t>(seed + i);
  return {static_cast<int64_t>(getppid()), std::move(b)};
}
std::pair<int64_t, int64_t> sink(const std::vector<uint8_t>& b) {
  return {static_cast<int64_t>(getppid()), static_cast<int64_t>(b.size()) + b[4096]};
}
WEFT_REMOTE(whoami, empty, blob, sink);

int main(int argc, char** argv) {
  if (weft::Status s = weft::init(); !s.is_ok()) {
    std::fprintf(stderr, "init failed: %s\n", s.to_string().c_str());
    return 1;
  }
  const std::string mode = argc > 1 ? argv[1] : "tasks";
  const char* env = std::getenv("WEFT_PROCESSES");
  const size_t workers = env != nullptr ? static_cast<size_t>(std::atoi(env)) : 1;
  // Every worker up (those leased elsewhere start after init returns).
  std::set<int64_t> seen;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (seen.size() < workers && std::chrono::steady_clock::now() < give_up) {
    std::vector<weft::ObjectRef<std::pair<int64_t, int64_t>>> probe;
    for (size_t i = 0; i < 4 * workers; ++i) probe.push_back(weft::task(whoami).remote(20));
    for (auto& r : probe) seen.insert(weft::get(r).first);
  }
  std::map<int64_t, int> by_node;
  double seconds = 0, value = 0;
  const auto t0 = std::chrono::steady_clock::now();
  if (mode == "tasks") {
    const int n = argc > 2 ? std::atoi(argv[2]) : 10000;
    std::vector<weft::ObjectRef<int64_t>> refs;
    refs.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) refs.push_back(weft::task(empty).remote(i));
    for (auto& r : refs) ++by_node[weft::get(r)];
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    value = n / seconds;
  } else if (mode == "args") {
    const int mib = argc > 2 ? std::atoi(argv[2]) : 64;
    const int reps = argc > 3 ? std::atoi(argv[3]) : 4;
    for (int i = 0; i < reps; ++i) {
      std::vector<uint8_t> b(static_cast<size_t>(mib) << 20);
      b[4096] = static_cast<uint8_t>(i);
      auto [node, got] = weft::get(weft::task(sink).remote(std::move(b)));
      if (got != (int64_t{mib} << 20) + static_cast<uint8_t>(i)) {
        std::fprintf(stderr, "wrong bytes\n");
        return 1;
      }
      ++by_node[node];
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    value = static_cast<double>(mib) * reps * 1.048576 / seconds;
  } else {
    const int mib = argc > 2 ? std::atoi(argv[2]) : 64;
    const int reps = argc > 3 ? std::atoi(argv[3]) : 4;
    for (int i = 0; i < reps; ++i) {
      auto [node, bytes] = weft::get(weft::task(blob).remote(mib, i));
      if (bytes.size() != static_cast<size_t>(mib) << 20 || bytes[4096] != static_cast<uint8_t>(i + 4096)) {
        std::fprintf(stderr, "wrong bytes\n");
        return 1;
      }
      ++by_node[node];
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    value = static_cast<double>(mib) * reps * 1.048576 / seconds;
  }
  std::string nodes;
  for (const auto& [node, n] : by_node)
    nodes += (nodes.empty() ? "" : ", ") + std::string("\"") + std::to_string(node) + "\": " + std::to_string(n);
  std::printf(
      "{\"mode\": \"%s\", \"workers\": %zu, \"workers_seen\": %zu, \"value\": %.1f, \"seconds\": %.3f, "
      "\"nodes\": {%s}}\n",
      mode.c_str(), workers, seen.size(), value, seconds, nodes.c_str());
  return weft::shutdown().is_ok() ? 0 : 1;
}
