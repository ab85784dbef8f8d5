"""The cluster's fault figures, measured on processes of the `weft` command on loopback:
  - how soon the head declares a node dead after kill -9 (against the node timeout it is given),
  - how soon a head killed and restarted has its node back (against the same timeout),
  - a job's round trip (`weft job submit -- true`, submitted to ended, seen by the client).
Prints one JSON object per line, as scripts/bench does. Usage: cluster_faults.py PATH/TO/weft [--runs N]"""
import argparse
import re
import subprocess
import time

from cluster_util import Daemons, emit, free_port

p = argparse.ArgumentParser()
p.add_argument("weft")
p.add_argument("--runs", type=int, default=5)
p.add_argument("--node-timeout", type=float, default=5.0)
args = p.parse_args()
daemons = Daemons(args.weft)
WEFT, env = daemons.weft, daemons.env
start = daemons.start


def status():
    return subprocess.run([WEFT, "status"], env=env, capture_output=True, text=True).stdout


def until(pred, timeout=60):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise SystemExit("timed out")
        time.sleep(0.02)
    return time.monotonic() - t0


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


port = free_port()
head_args = ("--head", "--port", str(port), "--no-node", "--no-page", "--node-timeout", str(args.node_timeout))
try:
    head, out = start(*head_args, until="listening at")
    address = re.search(r"listening at (\S+)", out).group(1)
    node_args = ("--address", address, "--slots", "1", "--store-bytes", "67108864")
    noticed, back, trip = [], [], []
    for i in range(args.runs):
        node, out = start(*node_args, until="joined")
        node_id = re.search(r"weft node (node-\w+)", out).group(1)
        until(lambda: f"{node_id}  alive" in status())
        time.sleep(1)
        t0 = time.monotonic()
        node.kill()
        node.wait()
        until(lambda: f"{node_id}  DEAD" in status())
        noticed.append(time.monotonic() - t0)
    node, out = start(*node_args, until="joined")
    node_id = re.search(r"weft node (node-\w+)", out).group(1)
    until(lambda: f"{node_id}  alive" in status())
    for i in range(args.runs):
        t0 = time.monotonic()
        r = subprocess.run([WEFT, "job", "submit", "--", "true"], env=env, capture_output=True, text=True)
        trip.append(time.monotonic() - t0)
        assert r.returncode == 0, r.stderr
    for i in range(args.runs):
        head.kill()
        head.wait()
        t0 = time.monotonic()
        head, _ = start(*head_args, until="listening at")
        until(lambda: re.search(rf"{node_id}  alive .*last heard 0\.\d s ago", status()) is not None)
        back.append(time.monotonic() - t0)
    emit("cluster_dead_node_noticed_after_kill9", "s", median(noticed), "node timeout", args.node_timeout)
    emit("cluster_restarted_head_has_its_node_back", "s", median(back), "node timeout", args.node_timeout)
    emit("cluster_job_round_trip_true", "s", median(trip))  # no peer: Ray's job API needs its dashboard
finally:
    daemons.close()
