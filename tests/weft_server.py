"""`weft serve` as a child process for the end-to-end tests: started on a free port, its URL read
from the line it prints once the model is loaded, stopped with SIGTERM (a graceful drain)."""
import re
import subprocess
import urllib.request


class WeftServer:
    def __init__(self, weft, *args):
        self.proc = subprocess.Popen([weft, "serve", "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://[\d.]+:(\d+)/", line)
        if not m:
            raise RuntimeError("weft serve did not start: " + line + self.proc.stderr.read())
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr = ""

    def metrics(self, summed=False, timeout=30):
        """/metrics as {name: value}: each name's first sample, or the sum over its labels."""
        out = {}
        text = urllib.request.urlopen(self.url + "/metrics", timeout=timeout).read().decode()
        for line in text.splitlines():
            m = re.match(r"^(\w+)\{[^}]*\} (\S+)$", line)
            if not m:
                continue
            if summed:
                out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
            elif m.group(1) not in out:
                out[m.group(1)] = float(m.group(2))
        return out

    def stop(self):
        """SIGTERM, then the exit code; what it wrote on stderr is kept in self.stderr."""
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.stderr = self.proc.stderr.read()
            self.proc.stdout.close()
            self.proc.stderr.close()
