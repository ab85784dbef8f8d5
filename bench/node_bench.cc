// Multi-process mode against Ray (numbers measured by bench/peers/ray_runtime.py just before,
// passed in with --ray-json), and pipelining against no pipelining.
//
//   node_bench [--ray-json FILE] [--processes N]
//
//   process_empty_tasks   20,000 empty tasks submitted at once to N worker processes, then got
//                         (Ray: its empty-task figure, N CPUs, from the same script as
//                         `scripts/bench runtime`)
//   pipelining_k8_vs_k1   20,000 tasks of 20 us each with 8 tasks in flight per worker, against
//                         the same with 1 in flight (a round trip between every two tasks)
//   array_task_1GiB       a task in a worker receiving a 1 GiB weft::Array put by the driver and
//                         reading its last value, against the same for 1 MiB: read in place, so
//                         the size does not matter
//   process_ref_args      20,000 tasks each given a ref (to a put value) and reading it in the
//                         worker (Ray: the same, the ref nested in a list so that it arrives as a
//                         ref), with the same number of plain-value tasks beside it
//   ref_get_1GiB_owned_by_worker  a 1 GiB weft::Array made by one worker process, its ref
//                         returned to the driver and passed to a task in another worker, which
//                         reads its last value; against the same for 1 MiB
// Best of three each.
#include <time.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <weft/weft.h>

#include "bench/json_line.h"
#include "bench/peer_json.h"

namespace {

using Clock = std::chrono::steady_clock;

int empty(int x) { return x; }
int spin(int us) {
  const auto end = Clock::now() + std::chrono::microseconds(us);
  while (Clock::now() < end) {
  }
  return us;
}
float last(const weft::Array<float>& xs) { return xs.empty() ? 0.0f : xs[xs.size() - 1]; }
int read_ref(weft::ObjectRef<int> r) { return weft::get(r); }
weft::ObjectRef<weft::Array<float>> make_array(int64_t bytes) {
  auto a = weft::Array<float>::make(static_cast<size_t>(bytes) / sizeof(float));
  std::fill_n(a.mutable_data(), a.size(), 1.0f);
  return weft::put(a);
}
float last_by_ref(weft::ObjectRef<weft::Array<float>> r) { return last(weft::get(r)); }
WEFT_REMOTE(empty, spin, last, read_ref, make_array, last_by_ref);

// Best of three: tasks per second for `n` tasks made by submit(i), all submitted, then got.
template <class Submit>
double best_rate(int n, Submit submit) {
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<weft::ObjectRef<int>> refs;
    refs.reserve(static_cast<size_t>(n));
    const auto t = Clock::now();
    for (int i = 0; i < n; ++i) refs.push_back(submit(i));
    for (auto& r : refs) (void)weft::get(r);
    best = std::max(best, n / std::chrono::duration<double>(Clock::now() - t).count());
  }
  return best;
}

// Best of 20: microseconds for one run of `round_trip`.
template <class RoundTrip>
double best_us(RoundTrip round_trip) {
  double best = 1e18;
  for (int rep = 0; rep < 20; ++rep) {
    const auto t = Clock::now();
    round_trip();
    best = std::min(best, std::chrono::duration<double, std::micro>(Clock::now() - t).count());
  }
  return best;
}

// Tasks per second for n tasks each given a ref to a put value (refs made beforehand).
double ref_args_per_s(int processes, int n) {
  if (!weft::init({.num_workers = 1, .processes = processes, .pipeline_depth = 8}).is_ok()) std::exit(1);
  std::vector<weft::ObjectRef<int>> values;
  for (int i = 0; i < n; ++i) values.push_back(weft::put(i));
  const double rate = best_rate(n, [&](int i) { return weft::task(read_ref).remote(values[static_cast<size_t>(i)]); });
  (void)weft::shutdown();
  return rate;
}

// Microseconds for a task to read the last value of an array of `bytes` that another worker
// process made, by ref (best of 20).
double ref_get_us(int processes, int64_t bytes) {
  if (!weft::init({.num_workers = 1, .processes = std::max(2, processes)}).is_ok()) std::exit(1);
  weft::ObjectRef<weft::Array<float>> ref = weft::get(weft::task(make_array).remote(bytes));
  const double us = best_us([&] { (void)weft::get(weft::task(last_by_ref).remote(ref)); });
  (void)weft::shutdown();
  return us;
}

// Microseconds for a task in a worker to receive an array put by the driver and read its last
// value (best of 20), for an array of `bytes`.
double array_task_us(int processes, size_t bytes) {
  if (!weft::init({.num_workers = 1, .processes = processes}).is_ok()) std::exit(1);
  auto a = weft::Array<float>::make(bytes / sizeof(float));
  std::fill_n(a.mutable_data(), a.size(), 1.0f);
  auto ref = weft::put(a);
  const double us = best_us([&] { (void)weft::get(weft::task(last).remote(ref)); });
  (void)weft::shutdown();
  return us;
}

double tasks_per_s(int processes, int depth, int n, int spin_us) {
  if (!weft::init({.num_workers = 1, .processes = processes, .pipeline_depth = depth}).is_ok()) std::exit(1);
  const double rate =
      best_rate(n, [&](int i) { return spin_us > 0 ? weft::task(spin).remote(spin_us) : weft::task(empty).remote(i); });
  (void)weft::shutdown();
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  weft::serve_if_worker();
  std::string ray_json;
  int processes = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--ray-json" && i + 1 < argc) ray_json = argv[++i];
    else if (a == "--processes" && i + 1 < argc) processes = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: node_bench [--ray-json FILE] [--processes N]\n");
      return 2;
    }
  }
  const auto ray = ray_json.empty() ? std::map<std::string, double>{} : weft::bench::read_peer_json(ray_json);
  const std::string p = std::to_string(processes);
  const double empty_rate = tasks_per_s(processes, 8, 20000, 0);
  weft::bench::JsonLine{"process_empty_tasks", "tasks/s", empty_rate, "ray", weft::bench::peer(ray, "empty_tasks_per_s"), true,
                        {{"processes", p}, {"pipeline_depth", "8"}}}
      .print();
  const double k8 = tasks_per_s(processes, 8, 20000, 20);
  const double k1 = tasks_per_s(processes, 1, 20000, 20);
  weft::bench::JsonLine{"pipelining_k8_vs_k1", "tasks/s", k8, "pipeline_depth_1", k1, true,
                        {{"processes", p}, {"task_us", "20"}}}
      .print();
  const double small = array_task_us(processes, size_t{1} << 20);
  const double big = array_task_us(processes, size_t{1} << 30);
  weft::bench::JsonLine{"array_task_1GiB", "us", big, "array_task_1MiB", small, false, {{"processes", p}}}.print();
  const double ref_rate = ref_args_per_s(processes, 20000);
  weft::bench::JsonLine{"process_ref_args", "tasks/s", ref_rate, "ray", weft::bench::peer(ray, "ref_args_per_s"), true,
                        {{"processes", p}, {"plain_value_tasks_per_s", std::to_string(static_cast<int64_t>(empty_rate))}}}
      .print();
  const double ref_small = ref_get_us(processes, int64_t{1} << 20);
  const double ref_big = ref_get_us(processes, int64_t{1} << 30);
  weft::bench::JsonLine{"ref_get_1GiB_owned_by_worker", "us", ref_big, "ref_get_1MiB_owned_by_worker", ref_small, false,
                        {{"processes", p}}}
      .print();
  return 0;
}
