"""The chaos job, after Ray's release chaos tests: TASKS tasks, each waiting on a nested task of
its own, and an actor called once per 100 results, from a driver on a one-slot node whose other
workers are leased on two more nodes. It runs once undisturbed, then again while one of the two
other nodes is killed with kill -9 every --every seconds (and a fresh node started in its place).
Prints one JSON object per line, as scripts/bench does: the job's time under faults against the
undisturbed time, and whether every result was right.
Usage: cluster_chaos.py PATH/TO/weft PATH/TO/cluster_spread [--tasks N] [--sleep-ms M] [--every S]"""
import argparse
import os
import random
import re
import subprocess
import threading
import time

from cluster_util import Daemons, emit, free_port

p = argparse.ArgumentParser()
p.add_argument("weft")
p.add_argument("spread")
p.add_argument("--tasks", type=int, default=10000)
p.add_argument("--sleep-ms", type=int, default=40)
p.add_argument("--every", type=float, default=30.0)
p.add_argument("--workers", type=int, default=5)
args = p.parse_args()
daemons = Daemons(args.weft, log_level="warn")
env, start = daemons.env, daemons.start


def job(node_socket):
    r = subprocess.run([os.path.abspath(args.spread), "chaos", str(args.tasks), str(args.sleep_ms)],
                       capture_output=True, text=True, timeout=3600,
                       env=dict(env, WEFT_ADDRESS=node_socket, WEFT_PROCESSES=str(args.workers)))
    m = re.search(r"done (\d+) sum (\d+) \(expected (\d+)\) actor calls (\d+) in ([\d.]+) s", r.stdout)
    if r.returncode != 0 or m is None:
        raise SystemExit(f"the chaos job failed ({r.returncode}): {r.stdout[-2000:]}{r.stderr[-2000:]}")
    return float(m.group(5)), m.group(2) == m.group(3)


try:
    _, out = start("--head", "--port", str(free_port()), "--no-node", "--no-page")
    address = re.search(r"listening at (\S+)", out).group(1)
    _, out_a = start("--address", address, "--slots", "1")
    home = re.search(r"drivers here attach at (\S+)", out_a).group(1)
    others = [start("--address", address, "--slots", "2")[0] for _ in range(2)]
    time.sleep(1.5)
    calm, calm_ok = job(home)

    kills = 0
    stop = threading.Event()

    def chaos():
        global kills
        while not stop.wait(args.every):
            k = random.randrange(len(others))
            others[k].kill()
            others[k].wait()
            kills += 1
            others[k] = start("--address", address, "--slots", "2")[0]

    killer = threading.Thread(target=chaos)
    killer.start()
    try:
        stormy, stormy_ok = job(home)
    finally:
        stop.set()
        killer.join()
    emit(f"cluster_chaos_{args.tasks}_tasks_kill9_every_{args.every:g}s", "s", stormy, "no faults", round(calm, 3),
         nodes_killed=kills, results_right=calm_ok and stormy_ok)
finally:
    daemons.close()
