// Fan-out / fan-in: square 100 numbers in parallel tasks, then sum them in one task that depends
// on all of them.
#include <cstdio>
#include <vector>

#include <weft/weft.h>

int square(int x) { return x * x; }
long sum(const std::vector<int>& xs) {
  long total = 0;
  for (int x : xs) total += x;
  return total;
}
WEFT_REMOTE(square, sum);

int main() {
  if (weft::Status s = weft::init(); !s.is_ok()) {
    std::fprintf(stderr, "init failed: %s\n", s.to_string().c_str());
    return 1;
  }
  std::vector<weft::ObjectRef<int>> squares;
  for (int i = 1; i <= 100; ++i) squares.push_back(weft::task(square).remote(i));
  // A vector of refs is a dependency on every element; sum() receives the values.
  weft::ObjectRef<long> total = weft::task(sum).remote(squares);
  std::printf("sum of squares 1..100 = %ld\n", weft::get(total));
  return weft::shutdown().is_ok() ? 0 : 1;
}
