"""What the bench scripts share: the built binaries, a `nodes cluster` started in a folder
and awaited, and a write through the CLI."""
import os, re, subprocess, time

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release")
NODES, HARNESS = os.path.join(BIN, "nodes"), os.path.join(BIN, "harness")


def put(master, backup, key, value, timeout_ms=3000):
    """Whether `nodes client put` was acknowledged."""
    args = [NODES, "client", "--master", master, "--backup", backup, "--timeout-ms", str(timeout_ms),
            "put", key, str(value)]
    return subprocess.run(args, capture_output=True).returncode == 0


def start(folder, master, backup, slaves=3):
    """Starts `nodes cluster` in `folder` and waits until it acknowledges a write; returns the
    cluster's process and each node's pid by name, as the cluster printed them."""
    out = open(os.path.join(folder, "cluster.out"), "w+")
    cluster = subprocess.Popen(
        [NODES, "cluster", "--slaves", str(slaves), "--dir", folder, "--listen", master, "--backup-listen", backup],
        stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while not put(master, backup, "probe", 0):
        if time.time() > deadline:
            cluster.kill()
            raise SystemExit("the cluster did not start")
        time.sleep(0.1)
    out.seek(0)
    pids = {name: int(pid) for name, pid in re.findall(r"^(\S+)\s.*\bpid (\d+)", out.read(), re.M)}
    return cluster, pids
