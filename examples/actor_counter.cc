// An actor: a counter whose calls, submitted from several tasks at once, run one at a time in
// submission order. The handle is passed to tasks like any other argument.
#include <cstdio>
#include <vector>

#include <weft/weft.h>

class Counter {
 public:
  explicit Counter(long start) : total_(start) {}
  long add(long n) { return total_ += n; }
  long value() const { return total_; }

 private:
  long total_;
};

Counter make_counter(long start) { return Counter(start); }

// A task that talks to the actor through a handle it received as an argument.
long bump_many(weft::ActorHandle<Counter> counter, int times) {
  weft::ObjectRef<long> last;
  for (int i = 0; i < times; ++i) last = counter.task(&Counter::add).remote(1);
  return weft::get(last);
}

WEFT_REMOTE(make_counter, &Counter::add, &Counter::value, bump_many);

int main() {
  if (!weft::init().is_ok()) return 1;
  auto counter = weft::actor<Counter>(make_counter).remote(100);

  // Calls from this thread keep their order: the results are 101, 102, ..., 110.
  std::vector<weft::ObjectRef<long>> firsts;
  for (int i = 0; i < 10; ++i) firsts.push_back(counter.task(&Counter::add).remote(1));
  std::vector<long> seen = weft::get(firsts);
  bool ordered = true;
  for (size_t i = 0; i < seen.size(); ++i) ordered = ordered && seen[i] == 101 + static_cast<long>(i);
  std::printf("in order: %s\n", ordered ? "yes" : "no");

  // Four tasks bump the same counter concurrently; no update is lost.
  std::vector<weft::ObjectRef<long>> workers;
  for (int i = 0; i < 4; ++i) workers.push_back(weft::task(bump_many).remote(counter, 250));
  weft::get(workers);
  std::printf("final value: %ld\n", weft::get(counter.task(&Counter::value).remote()));
  return weft::shutdown().is_ok() ? 0 : 1;
}
