"""Cross-node figures of the cluster, measured on processes of the `weft` command on loopback:
  - tasks per second of a driver whose workers all run on another node (leased there: its own
    node's one slot is held by another driver), against the same driver with its workers on its
    own node, and against Ray with two nodes on this machine (tasks pinned to the second node);
  - MB/s of getting a task's MiB-sized result from a worker on another node, and of giving one
    such an argument, against a raw TCP socket moving the same bytes between two processes on
    loopback in the same run, and Ray's cross-node get.
Prints one JSON object per line, as scripts/bench does.
Usage: cluster_tasks.py PATH/TO/weft PATH/TO/cluster_bench PATH/TO/cluster_spread [--ray-json FILE]"""
import argparse
import json
import multiprocessing
import os
import re
import socket
import subprocess
import time

from cluster_util import Daemons, emit, free_port

p = argparse.ArgumentParser()
p.add_argument("weft")
p.add_argument("bench")
p.add_argument("spread")
p.add_argument("--tasks", type=int, default=20000)
p.add_argument("--mib", type=int, default=64)
p.add_argument("--reps", type=int, default=4)
p.add_argument("--workers", type=int, default=2)
p.add_argument("--ray-json")
args = p.parse_args()
daemons = Daemons(args.weft, log_level="warn")
env, start = daemons.env, daemons.start


def driver(node_socket, *a):
    r = subprocess.run([os.path.abspath(args.bench), *a], capture_output=True, text=True, timeout=600,
                       env=dict(env, WEFT_ADDRESS=node_socket, WEFT_PROCESSES=str(args.workers)))
    if r.returncode != 0:
        raise SystemExit(f"cluster_bench {a} failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def raw_tcp_sender(port, nbytes, reps):
    payload = b"\1" * (1 << 20)
    with socket.create_connection(("127.0.0.1", port)) as s:
        for _ in range(reps):
            for _ in range(nbytes >> 20):
                s.sendall(payload)


def raw_tcp_mb_per_s(mib, reps):
    """A plain TCP socket between two processes moving the same bytes, received into one buffer."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        nbytes = mib << 20
        sender = multiprocessing.Process(target=raw_tcp_sender, args=(srv.getsockname()[1], nbytes, reps))
        t0 = time.perf_counter()
        sender.start()
        conn, _ = srv.accept()
        with conn:
            for _ in range(reps):
                buf = bytearray(nbytes)
                view = memoryview(buf)
                got = 0
                while got < nbytes:
                    got += conn.recv_into(view[got:])
        seconds = time.perf_counter() - t0
        sender.join()
    return mib * reps * 1.048576 / seconds


try:
    _, out = start("--head", "--port", str(free_port()), "--no-node", "--no-page")
    address = re.search(r"listening at (\S+)", out).group(1)
    node_a, out_a = start("--address", address, "--slots", "1")
    node_b, out_b = start("--address", address, "--slots", str(args.workers))
    sock_a = re.search(r"drivers here attach at (\S+)", out_a).group(1)
    sock_b = re.search(r"drivers here attach at (\S+)", out_b).group(1)
    time.sleep(1.5)  # both registered, slots known
    # Another driver holds node A's one slot, so that every worker of the measured driver is leased on B.
    blocker = subprocess.Popen([os.path.abspath(args.spread), "1", "600000"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=dict(env, WEFT_ADDRESS=sock_a, WEFT_PROCESSES="1"))
    daemons.procs.append(blocker)
    time.sleep(1.5)
    far = driver(sock_a, "tasks", str(args.tasks))
    assert set(far["nodes"]) == {str(node_b.pid)}, far
    near = driver(sock_b, "tasks", str(args.tasks))
    far_bytes = driver(sock_a, "bytes", str(args.mib), str(args.reps))
    assert set(far_bytes["nodes"]) == {str(node_b.pid)}, far_bytes
    far_args = driver(sock_a, "args", str(args.mib), str(args.reps))
    assert set(far_args["nodes"]) == {str(node_b.pid)}, far_args
    raw = raw_tcp_mb_per_s(args.mib, args.reps)
    ray = json.load(open(args.ray_json)) if args.ray_json else {}
    emit("cluster_cross_node_empty_tasks", "tasks/s", far["value"], "same node", near["value"], higher_is_better=True)
    if ray:
        emit("cluster_cross_node_empty_tasks_vs_ray", "tasks/s", far["value"], "ray 2 nodes",
             ray["cross_node_tasks_per_s"], higher_is_better=True)
    emit(f"cluster_cross_node_get_{args.mib}mib", "MB/s", far_bytes["value"], "raw tcp", raw, higher_is_better=True)
    emit(f"cluster_cross_node_task_argument_{args.mib}mib", "MB/s", far_args["value"], "raw tcp", raw, higher_is_better=True)
    if ray:
        emit(f"cluster_cross_node_get_{args.mib}mib_vs_ray", "MB/s", far_bytes["value"], "ray 2 nodes",
             ray["cross_node_get_mb_per_s"], higher_is_better=True)
finally:
    daemons.close()
