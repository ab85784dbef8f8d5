"""Ray's numbers for the runtime benchmarks, measured on this machine in the same run as weft's.

Same workloads as bench/runtime_bench.cc: one driver, asynchronous submission, then get all.
Prints one JSON object: {"empty_tasks_per_s": ..., "chain_us_per_task": ..., "actor_calls_per_s": ...,
"ref_args_per_s": ...}.
"""
import argparse
import json
import os
import sys
import time

import ray


@ray.remote
def empty():
    return None


@ray.remote
def inc(x):
    return x + 1


@ray.remote
class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k):
        self.n += k
        return self.n


@ray.remote
def read_ref(refs):
    # A ref nested in a list reaches the task as a ref (Ray resolves only top-level ones).
    return ray.get(refs[0])


def best_of(reps, fn):
    return max(fn() for _ in range(reps))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--chain", type=int, default=2000)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    ray.init(num_cpus=a.cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")

    ray.get([empty.remote() for _ in range(200)])  # warm the worker pool

    def tasks_per_s():
        t = time.perf_counter()
        ray.get([empty.remote() for _ in range(a.tasks)])
        return a.tasks / (time.perf_counter() - t)

    def chain_rate():
        t = time.perf_counter()
        r = ray.put(0)
        for _ in range(a.chain):
            r = inc.remote(r)
        assert ray.get(r) == a.chain
        return a.chain / (time.perf_counter() - t)

    c = Counter.remote()
    ray.get(c.add.remote(0))

    def calls_per_s():
        t = time.perf_counter()
        ray.get([c.add.remote(1) for _ in range(a.calls)])
        return a.calls / (time.perf_counter() - t)

    def ref_args_per_s():
        refs = [ray.put(i) for i in range(a.tasks)]
        t = time.perf_counter()
        ray.get([read_ref.remote([r]) for r in refs])
        return a.tasks / (time.perf_counter() - t)

    out = {
        "empty_tasks_per_s": best_of(a.reps, tasks_per_s),
        "chain_us_per_task": 1e6 / best_of(a.reps, chain_rate),
        "actor_calls_per_s": best_of(a.reps, calls_per_s),
        "ref_args_per_s": best_of(a.reps, ref_args_per_s),
    }
    ray.shutdown()
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
