"""The cluster end to end, as its users run it: `weft start` heads and nodes as real processes on
loopback, `weft job submit` with a working directory, a weft driver attached to its node, kill -9
of a node and of the head, and peers without the credential.
Usage: cluster_test.py PATH/TO/weft PATH/TO/hello_tasks"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from weft_cluster import start

WEFT = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build/apps/weft")
HELLO = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build/examples/hello_tasks")
SPREAD = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else "build/tests/cluster_spread")


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def netns_available():
    """Network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2."""
    probe = f"weft-probe-{os.getpid()}"
    try:
        if ip("netns", "add", probe, check=False).returncode != 0:
            return False
        ip("netns", "del", probe, check=False)
        return True
    except FileNotFoundError:
        return False


class Host:
    """A host of its own: a network namespace joined to this one by a veth pair."""

    def __init__(self):
        n = os.getpid() % 200 + 20
        self.ns, self.outside = f"weft-{os.getpid()}", f"wv{os.getpid()}"
        self.here, self.there = f"10.231.{n}.1", f"10.231.{n}.2"
        ip("netns", "add", self.ns)
        ip("link", "add", self.outside, "type", "veth", "peer", "name", "eth-weft", "netns", self.ns)
        ip("addr", "add", self.here + "/30", "dev", self.outside)
        ip("link", "set", self.outside, "up")
        for cmd in (["addr", "add", self.there + "/30", "dev", "eth-weft"], ["link", "set", "eth-weft", "up"],
                    ["link", "set", "lo", "up"]):
            ip("netns", "exec", self.ns, "ip", *cmd)
        self.prefix = ("ip", "netns", "exec", self.ns)

    def partition(self, cut):
        ip("link", "set", self.outside, "down" if cut else "up")

    def close(self):
        ip("link", "del", self.outside, check=False)
        ip("netns", "del", self.ns, check=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A private HOME and runtime directory, so the test's cluster is its own."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="weft-cluster-")
        os.makedirs(self.root + "/run", mode=0o700)
        self.env = dict(os.environ, HOME=self.root, XDG_RUNTIME_DIR=self.root + "/run", WEFT_LOG_LEVEL="info")
        self.env.pop("WEFT_HEAD_ADDRESS", None)
        self.env.pop("WEFT_CREDENTIAL", None)
        self.procs = []

    def daemon(self, *args, prefix=()):
        """`weft start ... --block` in the foreground of a child; returns it and what it printed."""
        p, out = start(WEFT, self.env, *args, until="listening at" if "--no-node" in args else "joined",
                       prefix=prefix)
        self.procs.append(p)
        return p, out

    def head(self, port, *args):
        p, out = self.daemon("--head", "--port", str(port), "--node-timeout", "2", "--no-node", "--no-page", *args)
        return p, re.search(r"listening at (\S+)", out).group(1)

    def node(self, address, *args, prefix=()):
        p, out = self.daemon("--address", address, "--slots", "1", "--store-bytes", "67108864", *args, prefix=prefix)
        return p, re.search(r"weft node (node-\w+)", out).group(1)

    def weft(self, *args, check=True, timeout=120):
        r = subprocess.run([WEFT, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"weft {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def wait(self, pred, what, timeout=30):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.weft("status", check=False)
            if last.returncode == 0 and pred(last.stdout):
                return last.stdout
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; last status:\n{last.stdout}{last.stderr}")

    def job_state(self, job):
        out = self.weft("job", "status", job).stdout
        return out.split()[1], out

    def wait_job(self, job, states, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            state, out = self.job_state(job)
            if state in states:
                return out
            time.sleep(0.2)
        raise AssertionError(f"job {job} never reached {states}: {out}")

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            if p.stdout:
                p.stdout.close()
        self.weft("stop", "--force", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


class ClusterTest(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()
        self.addCleanup(self.c.close)

    def test_nodes_join_and_jobs_run_from_their_working_directory(self):
        c = self.c
        _, address = c.head(free_port())
        c.node(address)
        c.node(address)
        out = c.wait(lambda s: s.count(" alive ") == 2 and s.count("of 64 MiB") == 2, "two nodes' heartbeats")
        self.assertIn(f"head {address}: 2 nodes alive, 0 dead", out)
        self.assertRegex(out, r"CPU \d+/\d+ used")
        self.assertRegex(out, r"objects \d+ \([\d.]+ of 64 MiB\)")
        # The credential is the owner's alone.
        self.assertEqual(os.stat(c.root + "/.weft/cluster.key").st_mode & 0o777, 0o600)

        wd = c.root + "/wd"
        os.makedirs(wd + "/data")
        with open(wd + "/data/input.txt", "w") as f:
            f.write("forty-two\n")
        with open(wd + "/run.sh", "w") as f:
            f.write("echo job $WEFT_JOB_ID reads $(cat data/input.txt)\n")
        r = c.weft("job", "submit", "--working-dir", wd, "--", "sh", "run.sh")
        self.assertRegex(r.stdout, r"job job-\w+ reads forty-two")
        self.assertIn("SUCCEEDED", r.stderr)
        # The same directory is not uploaded again.
        r = c.weft("job", "submit", "--working-dir", wd, "--", "sh", "run.sh")
        self.assertIn("already uploaded", r.stderr)
        # A job reads its own directory, not the user's files: not the cluster's credential.
        r = c.weft("job", "submit", "--", "sh", "-c", f"cat {c.root}/.weft/cluster.key; ls {c.root}", check=False)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("Permission denied", r.stdout)
        self.assertNotIn("member_secret", r.stdout)

        # A weft driver run as a job attaches to its node: its tasks run in the node's workers.
        r = c.weft("job", "submit", "--", HELLO)
        self.assertIn("sum of squares 1..100 = 338350", r.stdout)
        self.assertRegex(r.stdout, r"runtime started with \d+ worker processes")
        # A program started here joins with the head's address (weft::init({.address = ...}) or
        # $WEFT_ADDRESS) and attaches to this machine's node.
        r = subprocess.run([HELLO], env=dict(c.env, WEFT_ADDRESS=address), capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sum of squares 1..100 = 338350", r.stdout)
        self.assertRegex(r.stdout + r.stderr, r"runtime started with \d+ worker processes")

        # A failing job fails the submit with its exit status; logs and list keep every job.
        r = c.weft("job", "submit", "--", "sh", "-c", "echo bad >&2; exit 7", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad", r.stdout)
        self.assertIn("FAILED: exit code 7", r.stderr)
        jobs = c.weft("job", "list").stdout.splitlines()
        self.assertEqual(len(jobs), 5)
        self.assertEqual(sum("SUCCEEDED" in j for j in jobs), 3)
        self.assertIn("bad", c.weft("job", "logs", jobs[-1].split()[0]).stdout)

        # Stop a running job.
        job = c.weft("job", "submit", "--no-wait", "--", "sleep", "60").stdout.strip()
        c.wait_job(job, {"RUNNING"})
        c.weft("job", "stop", job)
        self.assertIn("killed by signal Terminated", c.wait_job(job, {"STOPPED"}))

    def spread(self, node_socket, *args, workers, quiet=False):
        out = subprocess.DEVNULL if quiet else subprocess.PIPE
        return subprocess.Popen([SPREAD, *map(str, args)], stdout=out, stderr=out, text=True,
                                env=dict(self.c.env, WEFT_ADDRESS=node_socket, WEFT_PROCESSES=str(workers)))

    def test_a_drivers_workers_spill_onto_other_nodes_and_survive_one_killed(self):
        c = self.c
        _, address = c.head(free_port())
        a, a_out = c.daemon("--address", address, "--slots", "1", "--store-bytes", "67108864")
        b, _ = c.daemon("--address", address, "--slots", "2", "--store-bytes", "67108864")
        a_socket = re.search(r"drivers here attach at (\S+)", a_out).group(1)
        c.wait(lambda s: s.count(" alive ") == 2, "two nodes")

        # Three workers wanted, one slot here: the other two start on the second node, connect
        # back over TCP with CURVE, and run tasks like the first.
        p = self.spread(a_socket, 60, 50, workers=3)
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("done 60 sum 1770 (expected 1770)", out)
        # Every tenth task called the driver's named actor, through the driver, from either node.
        self.assertIn("tally calls 6", out)
        ran = {int(pid): int(n) for pid, n in re.findall(r"ran on (\d+): (\d+)", out)}
        self.assertEqual(set(ran), {a.pid, b.pid}, out + err)
        self.assertEqual(sum(ran.values()), 60)
        # Their driver is gone: the second node's workers went with it.
        c.wait(lambda s: re.findall(r"workers (\d+)", s) == ["0", "0"], "no workers left")

        # The second node is killed while its workers run tasks: the head declares it dead, the
        # driver hears that its workers there are gone, and their tasks run again here.
        p = self.spread(a_socket, 80, 200, workers=3)
        c.wait(lambda s: re.search(r"workers 2 ", s) is not None, "workers leased on the second node")
        time.sleep(1.0)
        b.kill()
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("done 80 sum 3160 (expected 3160)", out)
        self.assertRegex(err, r"died|gone", err)

    def actor_on_a_leased_worker(self, head_args=(), b_prefix=()):
        """Two one-slot nodes; another driver holds the first's slot, so the actor of a driver
        there (30 calls, `cluster_spread actor`) lives in a worker leased on the second. Returns
        the first node's pid, the second node, the blocker, the driver and its first 5 lines."""
        c = self.c
        _, address = c.head(free_port(), *head_args)
        _, a_out = c.daemon("--address", address, "--slots", "1", "--store-bytes", "67108864")
        a_pid = int(re.search(r"\(pid (\d+)\) joined", a_out).group(1))
        b, _ = c.daemon("--address", address, "--slots", "1", "--store-bytes", "67108864", prefix=b_prefix)
        a_socket = re.search(r"drivers here attach at (\S+)", a_out).group(1)
        c.wait(lambda s: s.count(" alive ") == 2, "two nodes")
        blocker = self.spread(a_socket, 1, 600000, workers=1, quiet=True)
        self.addCleanup(blocker.kill)
        c.wait(lambda s: sorted(re.findall(r"workers (\d+)", s)) == ["0", "1"], "the blocker's worker")
        p = self.spread(a_socket, "actor", 30, 100, workers=1)
        seen = []
        while len(seen) < 5:
            line = p.stdout.readline()
            self.assertTrue(line, p.stderr.read() if p.poll() is not None else "no output")
            seen.append(line)
        self.assertIn(f"on {b.pid} count", seen[0], "".join(seen))
        return a_pid, b, blocker, p, seen

    def test_an_actor_on_a_killed_node_is_rebuilt_on_another(self):
        a_pid, b, blocker, p, seen = self.actor_on_a_leased_worker()
        # Its node dies with a call in flight; a slot frees here: the actor is rebuilt here (state
        # anew) and the call runs again on it, in its place.
        b.kill()
        blocker.kill()
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, err)
        calls = [tuple(map(int, m)) for m in re.findall(r"call (\d+) on (\d+) count (\d+)", "".join(seen) + out)]
        self.assertEqual([i for i, _, _ in calls], list(range(30)))
        moved = [k for k in range(1, 30) if calls[k][1] != calls[k - 1][1]]
        self.assertEqual(len(moved), 1, calls)
        k = moved[0]
        self.assertTrue(all(pid == b.pid for _, pid, _ in calls[:k]), calls)
        self.assertTrue(all(pid == a_pid for _, pid, _ in calls[k:]), calls)
        self.assertEqual([n for _, _, n in calls[k:]], list(range(1, 31 - k)), calls)
        self.assertIn("done 30 calls", out)

    def test_a_job_with_nested_tasks_and_an_actor_survives_nodes_killed_over_and_over(self):
        c = self.c
        _, address = c.head(free_port())
        _, a_out = c.daemon("--address", address, "--slots", "1", "--store-bytes", "67108864")
        a_socket = re.search(r"drivers here attach at (\S+)", a_out).group(1)
        node_args = ("--address", address, "--slots", "2", "--store-bytes", "67108864")
        others = [c.daemon(*node_args)[0] for _ in range(2)]
        c.wait(lambda s: s.count(" alive ") == 3, "three nodes")
        p = self.spread(a_socket, "chaos", 1500, 20, workers=5)
        kills = 0
        while p.poll() is None and kills < 4:
            time.sleep(2.5)
            k = kills % 2
            others[k].kill()
            others[k].wait()
            kills += 1
            others[k] = c.daemon(*node_args)[0]  # a fresh node in its place
        out, err = p.communicate(timeout=300)
        self.assertEqual(p.returncode, 0, out + err[-3000:])
        m = re.search(r"done 1500 sum (\d+) \(expected (\d+)\) actor calls 15 in", out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(1), m.group(2))
        self.assertGreaterEqual(kills, 2, out)

    @staticmethod
    def _children_of(pid):
        kids = []
        for p in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(p))
            except (OSError, ValueError, IndexError):
                pass
        return kids

    def test_a_worker_cut_off_from_its_driver_stops_itself_and_its_actor_is_rebuilt(self):
        if not netns_available():
            self.skipTest("network namespaces need root and iproute2")
        c = self.c
        host = Host()
        self.addCleanup(host.close)
        # The actor's worker runs in the other namespace and reaches its driver over the veth link.
        a_pid, b, blocker, p, seen = self.actor_on_a_leased_worker(("--bind", host.here), host.prefix)
        self.assertEqual(len(self._children_of(b.pid)), 1)
        host.partition(True)
        blocker.kill()
        # Cut off from its driver (whose node declares it gone), the worker stops by itself,
        # though its own node cannot hear from the head either: nothing of the old instance runs.
        deadline = time.time() + 15
        while self._children_of(b.pid):
            self.assertLess(time.time(), deadline, "the cut-off worker still runs")
            time.sleep(0.2)
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, err)
        calls = [tuple(map(int, m)) for m in re.findall(r"call (\d+) on (\d+) count (\d+)", "".join(seen) + out)]
        self.assertEqual([i for i, _, _ in calls], list(range(30)))
        self.assertEqual(calls[-1][1], a_pid, calls)
        host.partition(False)
        c.wait(lambda s: s.count(" alive ") == 2, "the node back", timeout=60)
        time.sleep(1.5)
        self.assertEqual(self._children_of(b.pid), [])

    def test_a_killed_node_fails_its_jobs_and_a_killed_head_loses_nothing(self):
        c = self.c
        port = free_port()
        head, address = c.head(port)
        node1, id1 = c.node(address)
        c.wait(lambda s: " alive " in s, "a node")
        job = c.weft("job", "submit", "--no-wait", "--", "sh", "-c", "echo started; sleep 60").stdout.strip()
        c.wait_job(job, {"RUNNING"})
        node2, id2 = c.node(address)
        c.wait(lambda s: s.count(" alive ") == 2, "two nodes")

        # kill -9 the node running the job: the head notices within its timeout (2 s here), the job
        # fails naming the node, and the job's process does not outlive its node.
        t0 = time.time()
        node1.kill()
        out = c.wait_job(job, {"FAILED"}, timeout=15)
        noticed = time.time() - t0
        self.assertIn(f"its node {id1} died", out)
        self.assertLess(noticed, 8)
        self.assertIn("started", c.weft("job", "logs", job).stdout)
        time.sleep(0.5)
        self.assertFalse([p for p in os.listdir("/proc") if p.isdigit() and self._runs_job(p, job)])
        status = c.wait(lambda s: "DEAD" in s, "the dead node")
        self.assertIn("1 nodes alive, 1 dead", status)

        # kill -9 the head while a job runs: the job carries on, and the restarted head (same
        # state) has every job, its whole output, and the node back without being told.
        job2 = c.weft("job", "submit", "--no-wait", "--", "sh", "-c", "echo one; sleep 3; echo two").stdout.strip()
        c.wait_job(job2, {"RUNNING"})
        head.kill()
        head.wait()
        time.sleep(1)
        c.head(port)
        self.assertIn("one\ntwo\n", c.weft("job", "logs", "--follow", job2).stdout)
        self.assertIn("SUCCEEDED", c.job_state(job2)[0])
        self.assertEqual(len(c.weft("job", "list").stdout.splitlines()), 2)
        c.wait(lambda s: f"{id2}  alive" in s, "the node to report back")

    def test_a_paused_node_is_declared_dead_and_its_job_stopped_when_it_returns(self):
        c = self.c
        _, address = c.head(free_port())
        node, node_id = c.node(address)
        job = c.weft("job", "submit", "--no-wait", "--", "sh", "-c",
                     "echo start; sleep 6; echo MUST-NOT-HAPPEN").stdout.strip()
        c.wait_job(job, {"RUNNING"})
        os.kill(node.pid, signal.SIGSTOP)
        self.assertIn(f"its node {node_id} died", c.wait_job(job, {"FAILED"}, timeout=15))
        os.kill(node.pid, signal.SIGCONT)
        # Back, the node registers again and is told to stop what the head gave up on: the job
        # does not go on to act after the head reported it failed.
        c.wait(lambda s: f"{node_id}  alive" in s, "the node to come back")
        deadline = time.time() + 10
        while [p for p in os.listdir("/proc") if p.isdigit() and self._runs_job(p, job)]:
            self.assertLess(time.time(), deadline, "the job still runs")
            time.sleep(0.2)
        time.sleep(6)
        self.assertEqual(c.job_state(job)[0], "FAILED")
        self.assertNotIn("MUST-NOT-HAPPEN", c.weft("job", "logs", job).stdout)

    @unittest.skipUnless(netns_available(), "needs network namespaces (root and iproute2)")
    def test_a_partitioned_node_is_declared_dead_and_its_job_stopped_when_it_heals(self):
        c = self.c
        host = Host()
        self.addCleanup(host.close)
        _, address = c.head(free_port(), "--bind", host.here)
        _, node_id = c.node(address, prefix=host.prefix)
        job = c.weft("job", "submit", "--no-wait", "--", "sh", "-c", "echo start; sleep 60").stdout.strip()
        c.wait_job(job, {"RUNNING"})
        host.partition(True)  # no traffic between the head and the node
        self.assertIn(f"its node {node_id} died", c.wait_job(job, {"FAILED"}, timeout=15))
        host.partition(False)
        c.wait(lambda s: f"{node_id}  alive" in s, "the node to come back", timeout=60)
        deadline = time.time() + 15
        while [p for p in os.listdir("/proc") if p.isdigit() and self._runs_job(p, job)]:
            self.assertLess(time.time(), deadline, "the job still runs after the partition healed")
            time.sleep(0.2)
        self.assertEqual(c.job_state(job)[0], "FAILED")
        self.assertIn("start", c.weft("job", "logs", job).stdout)

    def test_jobs_are_placed_where_their_resources_are_free(self):
        c = self.c
        _, address = c.head(free_port())
        _, gpu_node = c.node(address, "--resources", '{"CPU": 2, "GPU": 1}')
        c.node(address)
        c.wait(lambda s: s.count(" alive ") == 2, "two nodes")
        first = c.weft("job", "submit", "--no-wait", "--resources", '{"GPU": 1}', "--", "sleep", "30").stdout.strip()
        self.assertIn(f"node {gpu_node}", c.wait_job(first, {"RUNNING"}))
        second = c.weft("job", "submit", "--no-wait", "--resources", '{"GPU": 1}', "--", "echo", "second").stdout.strip()
        nowhere = c.weft("job", "submit", "--no-wait", "--resources", '{"TPU": 1}', "--", "true").stdout.strip()
        time.sleep(1)
        self.assertIn("waiting for GPU 1 to be free", c.wait_job(second, {"PENDING"}))
        self.assertIn("waiting for a node with TPU 1", c.wait_job(nowhere, {"PENDING"}))
        self.assertIn("GPU 1/1", c.weft("status").stdout)
        c.weft("job", "stop", first)
        self.assertIn(f"node {gpu_node}", c.wait_job(second, {"SUCCEEDED"}))
        r = c.weft("job", "submit", "--resources", '{"GPU": -1}', "--", "true", check=False)
        self.assertIn("must be named and >= 0", r.stderr)

    def test_the_serving_application_runs_as_a_job(self):
        c = self.c
        _, address = c.head(free_port())
        models = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
        c.node(address, "--job-paths", models)
        port = free_port()
        job = c.weft("job", "submit", "--no-wait", "--", WEFT, "serve", "--model", "default", "--port",
                     str(port)).stdout.strip()
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as r:
                    model = json.loads(r.read())["data"][0]["id"]
                break
            except (urllib.error.URLError, ConnectionError):
                self.assertIn(c.job_state(job)[0], ("PENDING", "RUNNING"), c.weft("job", "logs", job).stdout)
                self.assertLess(time.time(), deadline)
                time.sleep(0.5)
        body = json.dumps({"model": model, "prompt": "The capital of France is", "max_tokens": 3,
                           "temperature": 0}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            self.assertIn("Paris", json.loads(r.read())["choices"][0]["text"])
        c.weft("job", "stop", job)
        c.wait_job(job, {"STOPPED"})

    @staticmethod
    def _runs_job(pid, job):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                return f"WEFT_JOB_ID={job}".encode() in f.read()
        except OSError:
            return False

    def test_peers_without_the_credential_are_refused(self):
        c = self.c
        head, address = c.head(free_port())
        other = c.root + "/other"
        os.makedirs(other)
        # Another cluster's credential: made by a head of its own.
        env = dict(c.env, HOME=other, XDG_RUNTIME_DIR=other)
        p = subprocess.Popen([WEFT, "start", "--head", "--port", "0", "--no-node", "--no-page", "--block"], env=env,
                             stdout=subprocess.PIPE, text=True)
        c.procs.append(p)
        p.stdout.readline()
        stranger = other + "/.weft/cluster.key"
        for args in (["status"], ["job", "list"], ["job", "submit", "--", "true"], ["job", "logs", "job-1"]):
            r = c.weft(args[0], "--address", address, "--credential", stranger, *args[1:], check=False)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn("unauthenticated", r.stderr)
        c.weft("status")  # the head serves its members on
        # A credential others may read is refused before it is used.
        os.chmod(stranger, 0o644)
        r = c.weft("status", "--credential", stranger, check=False)
        self.assertIn("chmod 600", r.stderr)
        # A member's conversation recorded on the wire and played back to the head does nothing:
        # CURVE's handshake is bound to the head's short-term key of that connection.
        recorded = []
        port = int(address.split(":")[1])
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            proxy = ("127.0.0.1:%d" % listener.getsockname()[1])
            client = subprocess.Popen([WEFT, "job", "submit", "--address", proxy, "--no-wait", "--", "true"], env=c.env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            conn, _ = listener.accept()
            with conn, socket.create_connection(("127.0.0.1", port)) as upstream:
                conn.settimeout(0.2)
                upstream.settimeout(0.2)
                deadline = time.time() + 30
                while client.poll() is None and time.time() < deadline:
                    for src, dst, keep in ((conn, upstream, True), (upstream, conn, False)):
                        try:
                            data = src.recv(65536)
                        except socket.timeout:
                            continue
                        if data:
                            dst.sendall(data)
                            if keep:
                                recorded.append(data)
            out, err = client.communicate(timeout=60)
        self.assertEqual(client.returncode, 0, err)
        self.assertRegex(out, r"job-\w+")
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as replay:
                for data in recorded:
                    replay.sendall(data)
                    time.sleep(0.05)
                time.sleep(0.3)
        self.assertEqual(len(c.weft("job", "list").stdout.splitlines()), 1)
        # Garbage on the head's port does not hurt it.
        with socket.create_connection(("127.0.0.1", int(address.split(":")[1]))) as s:
            s.sendall(os.urandom(4096))
        c.weft("status")
        # Each refusal was logged: the strangers' and the replays'.
        head.terminate()
        log = head.stdout.read()
        self.assertGreaterEqual(log.count("refused a connection"), 4 + 3, log)

    def test_start_in_the_background_and_stop(self):
        c = self.c
        r = c.weft("start", "--head", "--port", "0", "--page-port", "0", "--slots", "1", "--store-bytes", "67108864")
        self.assertRegex(r.stdout, r"status page: +http://127\.0\.0\.1:\d+/\?token=[0-9a-f]{32}")
        self.assertRegex(r.stdout, r"listening at 127\.0\.0\.1:\d+")
        self.assertIn("weft stop", r.stdout)
        out = c.wait(lambda s: " alive " in s, "the head's own node")
        self.assertIn("1 nodes alive", out)
        r = c.weft("job", "submit", "--", "echo", "hello")
        self.assertIn("hello", r.stdout)
        r = c.weft("stop")
        self.assertIn("stopped head", r.stdout)
        r = c.weft("status", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no head was started on this machine", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
