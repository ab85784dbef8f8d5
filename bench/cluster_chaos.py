"""The chaos job, after Ray's release chaos tests: TASKS tasks, each waiting on a nested task of
its own, and an actor called once per 100 results, from a driver on a one-slot node whose other
workers are leased on two more nodes. It runs once undisturbed, then again while one of the two
other nodes is killed with kill -9 every --every seconds (and a fresh node started in its place).
Prints one JSON object per line, as scripts/bench does: the job's time under faults against the
undisturbed time, and whether every result was right.
Usage: cluster_chaos.py PATH/TO/weft PATH/TO/cluster_spread [--tasks N] [--sleep-ms M] [--every S]"""
import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

p = argparse.ArgumentParser()
p.add_argument("weft")
p.add_argument("spread")
p.add_argument("--tasks", type=int, default=10000)
p.add_argument("--sleep-ms", type=int, default=40)
p.add_argument("--every", type=float, default=30.0)
p.add_argument("--workers", type=int, default=5)
args = p.parse_args()
root = tempfile.mkdtemp(prefix="weft-bench-chaos-")
os.makedirs(root + "/run", mode=0o700)
env = dict(os.environ, HOME=root, XDG_RUNTIME_DIR=root + "/run", WEFT_LOG_LEVEL="warn")
procs = []


def start(*a):
    proc = subprocess.Popen([os.path.abspath(args.weft), "start", *a, "--block"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    procs.append(proc)
    out = ""
    until = "listening at" if "--head" in a else "joined"
    while until not in out:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("weft start exited: " + out)
        out += line
    return proc, out


def job(node_socket):
    r = subprocess.run([os.path.abspath(args.spread), "chaos", str(args.tasks), str(args.sleep_ms)],
                       capture_output=True, text=True, timeout=3600,
                       env=dict(env, WEFT_ADDRESS=node_socket, WEFT_PROCESSES=str(args.workers)))
    m = re.search(r"done (\d+) sum (\d+) \(expected (\d+)\) actor calls (\d+) in ([\d.]+) s", r.stdout)
    if r.returncode != 0 or m is None:
        raise SystemExit(f"the chaos job failed ({r.returncode}): {r.stdout[-2000:]}{r.stderr[-2000:]}")
    return float(m.group(5)), m.group(2) == m.group(3)


try:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, out = start("--head", "--port", str(port), "--no-node", "--no-page")
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
    print(json.dumps({"bench": f"cluster_chaos_{args.tasks}_tasks_kill9_every_{args.every:g}s", "unit": "s",
                      "weft": round(stormy, 2), "baseline": "no faults", "baseline_value": round(calm, 2),
                      "ratio": round(stormy / calm, 3), "nodes_killed": kills,
                      "results_right": calm_ok and stormy_ok}), flush=True)
finally:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    shutil.rmtree(root, ignore_errors=True)
