// Nested parallelism: a task splits its range, submits two child tasks and gets their results.
// A worker blocked in get runs other ready tasks meanwhile, so this works with a single worker.
#include <cstdio>
#include <cstdlib>

#include <weft/weft.h>

long parallel_sum(long lo, long hi);
WEFT_REMOTE(parallel_sum);

// Sum of lo..hi-1, split until ranges are small.
long parallel_sum(long lo, long hi) {
  if (hi - lo <= 1000) {
    long s = 0;
    for (long i = lo; i < hi; ++i) s += i;
    return s;
  }
  long mid = lo + (hi - lo) / 2;
  auto left = weft::task(parallel_sum).remote(lo, mid);
  auto right = weft::task(parallel_sum).remote(mid, hi);
  return weft::get(left) + weft::get(right);
}

int main(int argc, char** argv) {
  int workers = argc > 1 ? std::atoi(argv[1]) : 0;
  if (!weft::init({.num_workers = workers}).is_ok()) return 1;
  const long n = 10'000'000;
  long got = weft::get(weft::task(parallel_sum).remote(0L, n));
  std::printf("sum 0..%ld = %ld (expected %ld) with %d workers\n", n - 1, got, n * (n - 1) / 2, weft::num_workers());
  return weft::shutdown().is_ok() && got == n * (n - 1) / 2 ? 0 : 1;
}
