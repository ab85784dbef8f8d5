"""What the cluster benchmarks share: `weft start ... --block` daemons in a private HOME and
runtime directory, killed at the end, and the JSON line scripts/bench prints per figure."""
import json
import os
import shutil
import socket
import subprocess
import tempfile


class Daemons:
    def __init__(self, weft, log_level=None):
        self.weft = os.path.abspath(weft)
        self.root = tempfile.mkdtemp(prefix="weft-bench-cluster-")
        os.makedirs(self.root + "/run", mode=0o700)
        self.env = dict(os.environ, HOME=self.root, XDG_RUNTIME_DIR=self.root + "/run")
        if log_level:
            self.env["WEFT_LOG_LEVEL"] = log_level
        self.procs = []

    def start(self, *a, until=None):
        """`weft start A... --block`, returned with what it printed once it says it serves."""
        until = until or ("listening at" if "--head" in a else "joined")
        proc = subprocess.Popen([self.weft, "start", *a, "--block"], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        out = ""
        while until not in out:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit("weft start exited: " + out)
            out += line
        return proc, out

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emit(bench, unit, value, baseline=None, baseline_value=None, higher_is_better=False, **extra):
    """One figure against its peer; the ratio is how many times better weft is."""
    ratio = None
    if baseline_value:
        ratio = round(value / baseline_value if higher_is_better else baseline_value / value, 3)
    print(json.dumps({"bench": bench, "unit": unit, "weft": round(value, 3), "baseline": baseline,
                      "baseline_value": round(baseline_value, 3) if baseline_value is not None else None,
                      "ratio": ratio, **extra}), flush=True)
