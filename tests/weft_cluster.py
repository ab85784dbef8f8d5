"""`weft start ... --block` as a child process for the cluster tests: started in the foreground and
returned, with what it printed, once it printed the line that says it serves."""
import subprocess


def start(weft, env, *args, until, prefix=()):
    p = subprocess.Popen([*prefix, weft, "start", *args, "--block"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    out = ""
    while until not in out:
        line = p.stdout.readline()
        if not line:
            p.wait()
            raise AssertionError("weft start exited: " + out)
        out += line
    return p, out
