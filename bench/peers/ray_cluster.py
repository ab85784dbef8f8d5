"""Ray's cross-node figures, for bench/cluster_tasks.py: a two-node Ray cluster on this machine
(`ray start --head` and a second `ray start --address`), with tasks pinned to the second node by a
custom resource, as in weft's run. Prints one JSON object:
{"cross_node_tasks_per_s": ..., "cross_node_get_mb_per_s": ...}.
Usage: ray_cluster.py --tasks N --mib M --reps R --cpus C"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import ray

p = argparse.ArgumentParser()
p.add_argument("--tasks", type=int, default=5000)
p.add_argument("--mib", type=int, default=64)
p.add_argument("--reps", type=int, default=4)
p.add_argument("--cpus", type=int, default=2)
args = p.parse_args()

ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
common = ["--disable-usage-stats", f"--temp-dir={tmp}"]


def ray_start(*a):
    subprocess.run([ray_bin, "start", *a, *common], env=env, check=True, capture_output=True, timeout=180)


@ray.remote
def empty():
    return None


@ray.remote
def blob(mib, seed):
    b = np.zeros(mib << 20, dtype=np.uint8)
    b[::4096] = seed
    return b


try:
    ray_start("--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false")
    ray_start(f"--address=127.0.0.1:{port}", f"--num-cpus={args.cpus}", '--resources={"far": 1000}')
    ray.init(address=f"127.0.0.1:{port}", logging_level="ERROR")
    far = {"resources": {"far": 0.001}}
    ray.get([empty.options(**far).remote() for _ in range(200)])  # workers up
    t0 = time.perf_counter()
    ray.get([empty.options(**far).remote() for _ in range(args.tasks)])
    tasks_per_s = args.tasks / (time.perf_counter() - t0)
    ray.get(blob.options(**far).remote(1, 0))
    t0 = time.perf_counter()
    for i in range(args.reps):
        b = ray.get(blob.options(**far).remote(args.mib, i))
        assert b.nbytes == args.mib << 20
        del b
    mb_per_s = args.mib * args.reps * 1.048576 / (time.perf_counter() - t0)
    print(json.dumps({"cross_node_tasks_per_s": tasks_per_s, "cross_node_get_mb_per_s": mb_per_s}))
finally:
    ray.shutdown()
    subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)
    shutil.rmtree(tmp, ignore_errors=True)
