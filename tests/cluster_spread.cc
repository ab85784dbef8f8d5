// A driver for the cluster tests: many short tasks, each saying which node's daemon started the
// worker that ran it (its parent process), with retries, so that a test can watch a driver's
// tasks spill onto other nodes and survive a node killed in the middle.
//
//   cluster_spread TASKS SLEEP_MS
//
// prints "ran on PID: N" for every parent seen, then "done TASKS sum S" (S: the sum of the task
// indices, checked against the expected one: each task counted once). Every tenth task also calls
// the driver's actor named "tally" (weft::get_actor from the worker): "tally calls N" counts them.
//
//   cluster_spread actor CALLS SLEEP_MS
//
// makes one actor (max_restarts 2, max_task_retries 3) and calls it CALLS times, one after
// another, printing "call I on PID count C" as each returns (C: the calls its instance has seen).
//
//   cluster_spread chaos TASKS SLEEP_MS
//
// the chaos job: TASKS tasks, each sleeping SLEEP_MS and then waiting on a nested task of its own,
// and an actor (restarted up to 1000 times) called once per 100 results; prints "done TASKS sum S
// (expected E) actor calls C in T s".
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <weft/weft.h>

class Tally;
int64_t tally_once();

std::pair<int64_t, int64_t> where(int i, int sleep_ms) {
  usleep(static_cast<useconds_t>(sleep_ms) * 1000);
  if (i % 10 == 0) (void)tally_once();
  return {static_cast<int64_t>(getppid()), i};
}
class Tally {
 public:
  std::pair<int64_t, int64_t> add(int sleep_ms) {
    usleep(static_cast<useconds_t>(sleep_ms) * 1000);
    return {static_cast<int64_t>(getppid()), ++calls_};
  }

 private:
  int64_t calls_ = 0;
};

Tally make_tally() { return Tally(); }

// A call of the driver's named actor, from wherever this runs (its handle is looked up by name).
int64_t tally_once() { return weft::get(weft::get_actor<Tally>("tally").task(&Tally::add).remote(0)).second; }

int64_t square(int64_t x) { return x * x; }

int64_t outer(int i, int sleep_ms) {
  usleep(static_cast<useconds_t>(sleep_ms) * 1000);
  return weft::get(weft::task(square).remote(static_cast<int64_t>(i)));  // nested: runs in this worker
}

WEFT_REMOTE(where, make_tally, &Tally::add, square, outer);

int chaos(int n, int sleep_ms) {
  const auto t0 = std::chrono::steady_clock::now();
  auto tally = weft::actor<Tally>(make_tally).max_restarts(1000).max_task_retries(1000).remote();
  std::vector<weft::ObjectRef<int64_t>> refs;
  for (int i = 0; i < n; ++i) refs.push_back(weft::task(outer).max_retries(1000).remote(i, sleep_ms));
  int64_t sum = 0, expected = 0;
  int calls = 0;
  for (int i = 0; i < n; ++i) {
    sum += weft::get(refs[static_cast<size_t>(i)]);
    expected += static_cast<int64_t>(i) * i;
    if (i % 100 == 99) {
      (void)weft::get(tally.task(&Tally::add).remote(0));
      ++calls;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("done %d sum %lld (expected %lld) actor calls %d in %.2f s\n", n, static_cast<long long>(sum),
              static_cast<long long>(expected), calls, seconds);
  return sum == expected ? 0 : 2;
}

int calls(int n, int sleep_ms) {
  auto tally = weft::actor<Tally>(make_tally).max_restarts(2).max_task_retries(3).remote();
  for (int i = 0; i < n; ++i) {
    auto [parent, count] = weft::get(tally.task(&Tally::add).remote(sleep_ms));
    std::printf("call %d on %lld count %lld\n", i, static_cast<long long>(parent), static_cast<long long>(count));
    std::fflush(stdout);
  }
  std::printf("done %d calls\n", n);
  return 0;
}

int main(int argc, char** argv) {
  if (weft::Status s = weft::init(); !s.is_ok()) {
    std::fprintf(stderr, "init failed: %s\n", s.to_string().c_str());
    return 1;
  }
  if (argc > 1 && std::string(argv[1]) == "chaos") {
    const int code = chaos(argc > 2 ? std::atoi(argv[2]) : 10000, argc > 3 ? std::atoi(argv[3]) : 20);
    return weft::shutdown().is_ok() ? code : 1;
  }
  if (argc > 1 && std::string(argv[1]) == "actor") {
    const int code = calls(argc > 2 ? std::atoi(argv[2]) : 20, argc > 3 ? std::atoi(argv[3]) : 100);
    return weft::shutdown().is_ok() ? code : 1;
  }
  const int tasks = argc > 1 ? std::atoi(argv[1]) : 40;
  const int sleep_ms = argc > 2 ? std::atoi(argv[2]) : 100;
  auto tally = weft::actor<Tally>(make_tally).name("tally").max_restarts(100).max_task_retries(100).remote();
  std::vector<weft::ObjectRef<std::pair<int64_t, int64_t>>> refs;
  for (int i = 0; i < tasks; ++i) refs.push_back(weft::task(where).max_retries(5).remote(i, sleep_ms));
  std::map<int64_t, int> by_node;
  int64_t sum = 0;
  for (auto& r : refs) {
    auto [parent, i] = weft::get(r);
    ++by_node[parent];
    sum += i;
  }
  for (const auto& [parent, n] : by_node) std::printf("ran on %lld: %d\n", static_cast<long long>(parent), n);
  std::printf("tally calls %lld\n", static_cast<long long>(weft::get(tally.task(&Tally::add).remote(0)).second - 1));
  std::printf("done %d sum %lld (expected %lld)\n", tasks, static_cast<long long>(sum),
              static_cast<long long>(tasks) * (tasks - 1) / 2);
  return weft::shutdown().is_ok() ? 0 : 1;
}
