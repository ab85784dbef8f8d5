// The README's example: tasks, a dependency on a vector of refs, priorities, an actor.
#include <cstdio>
#include <numeric>
#include <vector>

#include <weft/weft.h>

int square(int x) { return x * x; }
long sum(const std::vector<int>& xs) { return std::accumulate(xs.begin(), xs.end(), 0L); }
struct Counter {
  long n = 0;
  long add(long k) { return n += k; }
};
Counter make_counter() { return {}; }
WEFT_REMOTE(square, sum, make_counter, &Counter::add);  // registered by name

int main() {
  if (!weft::init().is_ok()) return 1;  // embedded: one worker per core
  std::vector<weft::ObjectRef<int>> parts;
  for (int i = 0; i < 100; ++i) parts.push_back(weft::task(square).remote(i));  // returns at once
  auto total = weft::task(sum)
                   .priority(weft::Slo::kLatencyCritical)  // SLO class, optional deadline
                   .remote(parts);                         // runs when all parts exist
  auto counter = weft::actor<Counter>(make_counter).remote();
  counter.task(&Counter::add).remote(total);  // actor calls run in order
  std::printf("%ld\n", weft::get(counter.task(&Counter::add).remote(0L)));
  return weft::shutdown().is_ok() ? 0 : 1;
}
