// The object store against memcpy and Ray's object store (numbers measured by
// bench/peers/ray_store.py just before, passed in with --peer-json).
//
//   store_bench [--peer-json FILE] [--max-mib N]
//
//   put_<size>    create + copy in + seal of one object, against memcpy of the same bytes into
//                 an already-touched buffer (the best a copy can do)
//   get_<size>    a get of a sealed object from another process (the latency until its bytes
//                 are readable there, in place), 1 MiB and 1 GiB: the same, whatever the size
//   small_put / small_get   100-byte objects, calls per second, against Ray's put/get
// Every figure is the best of several repetitions.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench/json_line.h"
#include "bench/peer_json.h"
#include "objectstore/store_client.h"
#include "objectstore/store_server.h"

extern char** environ;

namespace {

using weft::ObjectId;
using weft::bench::JsonLine;
using weft::objectstore::StoreClient;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void must(const weft::Status& s) {
  if (!s.is_ok()) {
    std::fprintf(stderr, "store_bench: %s\n", s.to_string().c_str());
    std::exit(1);
  }
}

// Child: connects, gets the object `reps` times (releasing each time), prints the best latency.
int child_get(const std::string& socket, uint64_t hi, uint64_t lo, int reps) {
  auto c = StoreClient::connect(socket);
  must(c.status());
  double best = 1e9;
  volatile uint8_t sink = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t = Clock::now();
    auto view = (*c)->get(ObjectId{hi, lo});
    must(view.status());
    sink = sink + (*view)[view->size() - 1];  // readable in place
    best = std::min(best, since(t));
    must((*c)->release(ObjectId{hi, lo}));
  }
  std::printf("%.3f\n", best * 1e6);
  return 0;
}

double cross_process_get_us(const std::string& socket, const ObjectId& id) {
  const std::string hi = std::to_string(id.hi), lo = std::to_string(id.lo);
  std::vector<std::string> args = {"/proc/self/exe", "--child-get", socket, hi, lo, "20"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  pid_t pid;
  if (posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ) != 0) return -1;
  close(pipefd[1]);
  char buf[64] = {};
  const ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
  close(pipefd[0]);
  waitpid(pid, nullptr, 0);
  posix_spawn_file_actions_destroy(&fa);
  return n > 0 ? std::atof(buf) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "--child-get") {
    return child_get(argv[2], std::stoull(argv[3]), std::stoull(argv[4]), std::atoi(argv[5]));
  }
  std::string peer_json;
  size_t max_mib = 1024;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--peer-json" && i + 1 < argc) peer_json = argv[++i];
    else if (a == "--max-mib" && i + 1 < argc) max_mib = std::stoul(argv[++i]);
    else {
      std::fprintf(stderr, "usage: store_bench [--peer-json FILE] [--max-mib N]\n");
      return 2;
    }
  }
  const auto peers = peer_json.empty() ? std::map<std::string, double>{} : weft::bench::read_peer_json(peer_json);
  const size_t max_bytes = max_mib << 20;
  const std::string socket = "/tmp/weft-store-bench-" + std::to_string(getpid()) + ".sock";
  auto store = weft::objectstore::Store::create({.capacity = max_bytes + (max_bytes / 2) + (64 << 20)});
  must(store.status());
  auto server = weft::objectstore::StoreServer::start(socket, std::move(*store));
  must(server.status());
  auto client = StoreClient::connect(socket);
  must(client.status());
  StoreClient& c = **client;

  std::vector<uint8_t> src(max_bytes), dst(max_bytes);
  for (size_t i = 0; i < max_bytes; i += 4096) src[i] = static_cast<uint8_t>(i >> 12), dst[i] = 1;
  // Warm the store's pages (steady state: the arena is reused, as in a running node).
  {
    const ObjectId warm = ObjectId::next();
    must(c.put(warm, src.data(), max_bytes));
    must(c.remove(warm));
  }
  for (size_t mib = 1; mib <= max_mib; mib *= 4) {
    const size_t bytes = mib << 20;
    double put = 1e9, copy = 1e9;
    for (int r = 0; r < 5; ++r) {
      auto t = Clock::now();
      std::memcpy(dst.data(), src.data(), bytes);
      copy = std::min(copy, since(t));
      const ObjectId id = ObjectId::next();
      t = Clock::now();
      must(c.put(id, src.data(), bytes));
      put = std::min(put, since(t));
      must(c.remove(id));
    }
    const std::string name = "put_" + std::to_string(mib) + "MiB";
    JsonLine{name, "GB/s", bytes / put / 1e9, "memcpy", bytes / copy / 1e9, true, {}}.print();
    if (auto ray = weft::bench::peer(peers, name + "_gb_per_s")) JsonLine{name, "GB/s", bytes / put / 1e9, "ray", ray, true, {}}.print();
  }
  for (size_t mib : {size_t{1}, max_mib}) {
    const ObjectId id = ObjectId::next();
    must(c.put(id, src.data(), mib << 20));
    const double us = cross_process_get_us(socket, id);
    JsonLine{"get_" + std::to_string(mib) + "MiB_other_process", "us", us, "", std::nullopt, false, {}}.print();
    must(c.remove(id));
  }
  const int n = 20000;
  std::vector<ObjectId> ids(n);
  for (auto& id : ids) id = ObjectId::next();
  const char payload[100] = {};
  auto t = Clock::now();
  for (const auto& id : ids) must(c.put(id, payload, sizeof payload));
  const double puts = n / since(t);
  t = Clock::now();
  for (const auto& id : ids) {
    auto v = c.get(id);
    must(v.status());
    must(c.release(id));
  }
  const double gets = n / since(t);
  JsonLine{"small_put", "calls/s", puts, "ray", weft::bench::peer(peers, "small_put_per_s"), true, {}}.print();
  JsonLine{"small_get", "calls/s", gets, "ray", weft::bench::peer(peers, "small_get_per_s"), true, {}}.print();
  return 0;
}
