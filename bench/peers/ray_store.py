"""Ray's object store numbers for the store benchmarks, measured on this machine in the same run.

Same calls as bench/store_bench.cc, one at a time from one driver: ray.put of a 100-byte object,
ray.get of it, and ray.put of a 64 MiB array (into Ray's shared-memory store). Best of three.
Prints one JSON object: {"small_put_per_s": ..., "small_get_per_s": ..., "put_64MiB_gb_per_s": ...}.
"""
import json
import os
import sys
import time

import numpy as np
import ray


def best_of(reps, fn):
    return max(fn() for _ in range(reps))


def main():
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    n = 20000
    payload = b"\0" * 100
    refs = []

    def puts():
        refs.clear()
        t = time.perf_counter()
        for _ in range(n):
            refs.append(ray.put(payload))
        return n / (time.perf_counter() - t)

    def gets():
        t = time.perf_counter()
        for r in refs:
            ray.get(r)
        return n / (time.perf_counter() - t)

    big = np.ones(64 << 20, dtype=np.uint8)

    def big_put():
        t = time.perf_counter()
        r = ray.put(big)
        dt = time.perf_counter() - t
        del r
        return big.nbytes / dt / 1e9

    out = {"small_put_per_s": best_of(3, puts), "small_get_per_s": best_of(3, gets),
           "put_64MiB_gb_per_s": best_of(3, big_put)}
    ray.shutdown()
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
