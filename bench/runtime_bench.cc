// Runtime benchmarks: weft against a plain thread pool (same process, same run) and against Ray
// (numbers measured by bench/peers/ray_runtime.py just before, passed in with --ray-json).
//
//   runtime_bench [--ray-json FILE] [--threads N] [--scale F]
//
// Each figure is the best of several repetitions, to filter noise from a shared machine.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.h>

#include "bench/bench_util.h"
#include "bench/json_line.h"
#include "bench/peer_json.h"
#include "bench/plain_pool.h"

namespace {

void noop() {}
int inc(int x) { return x + 1; }
int leaf(int i) { return i & 7; }
long sum_all(const std::vector<int>& xs) {
  long s = 0;
  for (int x : xs) s += x;
  return s;
}
struct Counter {
  long n = 0;
  long add(long k) { return n += k; }
};
Counter make_counter() { return Counter{}; }
WEFT_REMOTE(noop, inc, leaf, sum_all, make_counter, &Counter::add);

using weft::bench::Clock;
using weft::bench::JsonLine;
using weft::bench::peer;
using weft::bench::PlainPool;
using weft::bench::read_peer_json;
using weft::bench::seconds_since;

template <class F>
double best_rate(int reps, long n, F&& body) {
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    auto t = Clock::now();
    body();
    best = std::max(best, static_cast<double>(n) / seconds_since(t));
  }
  return best;
}

double weft_empty_tasks(long n, int reps) {
  return best_rate(reps, n, [&] {
    std::vector<weft::ObjectRef<void>> refs;
    refs.reserve(n);
    for (long i = 0; i < n; ++i) refs.push_back(weft::task(noop).remote());
    weft::get(refs);
  });
}
double plain_empty_tasks(PlainPool& pool, long n, int reps) {
  return best_rate(reps, n, [&] {
    std::vector<std::future<void>> futs;
    futs.reserve(n);
    for (long i = 0; i < n; ++i) futs.push_back(pool.submit([] {}));
    for (auto& f : futs) f.get();
  });
}

double weft_chain_us(long n, int reps) {
  double rate = best_rate(reps, n, [&] {
    weft::ObjectRef<int> r = weft::put(0);
    for (long i = 0; i < n; ++i) r = weft::task(inc).remote(r);
    if (weft::get(r) != n) std::abort();
  });
  return 1e6 / rate;
}
double plain_chain_us(PlainPool& pool, long n, int reps) {
  double rate = best_rate(reps, n, [&] {
    int x = 0;
    for (long i = 0; i < n; ++i) x = pool.submit([x] { return inc(x); }).get();
    if (x != n) std::abort();
  });
  return 1e6 / rate;
}

double weft_actor_calls(long n, int reps) {
  auto counter = weft::actor<Counter>(make_counter).remote();
  return best_rate(reps, n, [&] {
    std::vector<weft::ObjectRef<long>> refs;
    refs.reserve(n);
    for (long i = 0; i < n; ++i) refs.push_back(counter.task(&Counter::add).remote(1L));
    weft::get(refs);
  });
}
double plain_actor_calls(PlainPool& pool, long n, int reps) {
  Counter c;
  std::mutex mu;  // the hand-written way to serialise calls on shared state
  return best_rate(reps, n, [&] {
    std::vector<std::future<long>> futs;
    futs.reserve(n);
    for (long i = 0; i < n; ++i) {
      futs.push_back(pool.submit([&] {
        std::lock_guard lock(mu);
        return c.add(1);
      }));
    }
    for (auto& f : futs) f.get();
  });
}

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// Child-process body for the fan-out benchmark, so that peak RSS belongs to one system only.
int fanout_child(const std::string& which, long n, int threads) {
  auto t = Clock::now();
  long total = 0;
  if (which == "weft") {
    if (!weft::init({.num_workers = threads}).is_ok()) return 1;
    std::vector<weft::ObjectRef<int>> refs;
    refs.reserve(n);
    for (long i = 0; i < n; ++i) refs.push_back(weft::task(leaf).remote(static_cast<int>(i)));
    total = weft::get(weft::task(sum_all).remote(refs));
    refs.clear();
    (void)weft::shutdown();
  } else {
    PlainPool pool(threads);
    std::vector<std::future<int>> futs;
    futs.reserve(n);
    for (long i = 0; i < n; ++i) futs.push_back(pool.submit([i] { return leaf(static_cast<int>(i)); }));
    for (auto& f : futs) total += f.get();
  }
  double secs = seconds_since(t);
  long expect = 0;
  for (long i = 0; i < n; ++i) expect += i & 7;
  if (total != expect) return 2;
  std::printf("%.6f %ld\n", secs, peak_rss_kib());
  return 0;
}

// Runs this binary as `--fanout-child WHICH N THREADS`; returns {seconds, peak RSS KiB}.
std::pair<double, long> run_fanout(const std::string& which, long n, int threads) {
  char self[4096] = {};
  if (readlink("/proc/self/exe", self, sizeof self - 1) <= 0) return {-1, -1};
  std::string cmd = std::string(self) + " --fanout-child " + which + " " + std::to_string(n) + " " + std::to_string(threads);
  FILE* p = popen(cmd.c_str(), "r");
  double secs = -1;
  long rss = -1;
  if (p == nullptr || std::fscanf(p, "%lf %ld", &secs, &rss) != 2) secs = -1;
  if (p) pclose(p);
  return {secs, rss};
}

}  // namespace

int main(int argc, char** argv) {
  std::string ray_json;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  double scale = 1.0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--fanout-child" && i + 3 < argc) return fanout_child(argv[i + 1], std::atol(argv[i + 2]), std::atoi(argv[i + 3]));
    if (a == "--ray-json" && i + 1 < argc) ray_json = argv[++i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    if (a == "--scale" && i + 1 < argc) scale = std::atof(argv[++i]);
  }
  auto n = [&](long base) { return std::max(1L, static_cast<long>(base * scale)); };
  auto ray = ray_json.empty() ? std::map<std::string, double>{} : read_peer_json(ray_json);
  const int reps = 3;
  const std::string threads_json = std::to_string(threads);

  double plain_tasks, plain_chain, plain_calls;
  {
    PlainPool pool(threads);
    plain_tasks = plain_empty_tasks(pool, n(200000), reps);
    plain_chain = plain_chain_us(pool, n(20000), reps);
    plain_calls = plain_actor_calls(pool, n(200000), reps);
  }
  if (!weft::init({.num_workers = threads}).is_ok()) return 1;
  double tasks = weft_empty_tasks(n(200000), reps);
  double chain = weft_chain_us(n(20000), reps);
  double calls = weft_actor_calls(n(200000), reps);
  (void)weft::shutdown();

  auto line = [&](std::string bench, std::string unit, double w, std::string base, std::optional<double> bv, bool higher) {
    JsonLine{bench, unit, w, base, bv, higher, {{"threads", threads_json}}}.print();
  };
  line("empty_tasks", "tasks/s", tasks, "plain_pool", plain_tasks, true);
  line("empty_tasks", "tasks/s", tasks, "ray", peer(ray, "empty_tasks_per_s"), true);
  line("chain_latency", "us/task", chain, "plain_pool", plain_chain, false);
  line("chain_latency", "us/task", chain, "ray", peer(ray, "chain_us_per_task"), false);
  line("actor_calls", "calls/s", calls, "plain_pool_mutex", plain_calls, true);
  line("actor_calls", "calls/s", calls, "ray", peer(ray, "actor_calls_per_s"), true);

  const long fan = n(1000000);
  auto [wsecs, wrss] = run_fanout("weft", fan, threads);
  auto [psecs, prss] = run_fanout("plain", fan, threads);
  JsonLine{"fanout_fanin_" + std::to_string(fan), "s", wsecs, "plain_pool", psecs, false,
           {{"threads", threads_json},
            {"weft_peak_rss_mib", JsonLine::num(wrss / 1024.0)},
            {"baseline_peak_rss_mib", JsonLine::num(prss / 1024.0)}}}
      .print();
  return 0;
}
