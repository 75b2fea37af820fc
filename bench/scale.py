#!/usr/bin/env python3
"""What a data set of N keys costs: load rate, resident memory per process, and the takeover
after the master is SIGKILLed (time until a write is accepted again, and how often slaves
joined the new master in the 20 s after).

Starts `nodes cluster --slaves 3` (R=3, fsync on), fills it with `harness load --keys N`
(100-byte values), reads /proc for each process's resident memory, kills the master and
writes a key in a loop with the CLI. Usage: python3 bench/scale.py N [N ...]
(build with cargo build --release first).
"""
import os, re, signal, subprocess, sys, tempfile, time

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release")
NODES, HARNESS = os.path.join(BIN, "nodes"), os.path.join(BIN, "harness")
MASTER, BACKUP = "127.0.0.1:22445", "127.0.0.1:22446"


def put(i, timeout_ms=3000):
    args = [NODES, "client", "--master", MASTER, "--backup", BACKUP, "--timeout-ms", str(timeout_ms),
            "put", "probe", str(i)]
    return subprocess.run(args, capture_output=True).returncode == 0


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
    except (OSError, AttributeError):
        return float("nan")


def one(keys):
    folder = tempfile.mkdtemp(prefix="kv-scale-")
    out = open(os.path.join(folder, "cluster.out"), "w+")
    cluster = subprocess.Popen(
        [NODES, "cluster", "--slaves", "3", "--dir", folder, "--listen", MASTER, "--backup-listen", BACKUP],
        stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while not put(0):
            if time.time() > deadline:
                raise SystemExit("the cluster did not start")
            time.sleep(0.1)
        out.seek(0)
        pids = dict(re.findall(r"^(\S+)\s.*\bpid (\d+)", out.read(), re.M))
        loaded = subprocess.run([HARNESS, "load", "--master", MASTER, "--backup", BACKUP, "--keys", str(keys)],
                                capture_output=True, text=True)
        if loaded.returncode != 0:
            raise SystemExit(f"the load failed: {loaded.stderr}")
        rate = float(re.search(r"([\d.]+) writes/s", loaded.stdout).group(1))
        time.sleep(2)
        memory = {name: rss_mb(int(pid)) for name, pid in pids.items()}
        start = time.time()
        os.kill(int(pids["master"]), signal.SIGKILL)
        i = 1
        while not put(i):
            i += 1
            if time.time() - start > 120:
                raise SystemExit("no write accepted within 120 s")
        takeover = time.time() - start
        time.sleep(20)
        with open(os.path.join(folder, "backup.log")) as f:
            log = f.read()
        joins = len(re.findall(r"slave connected", log.split("campaigning to take over", 1)[-1]))
        after = rss_mb(int(pids["backup"]))
        return rate, memory, takeover, joins, after
    finally:
        cluster.send_signal(signal.SIGTERM)
        cluster.wait(timeout=30)


if __name__ == "__main__":
    print("| keys | load writes/s | master MB | backup MB | slave MB | takeover s | joins after | new master MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in [int(a) for a in sys.argv[1:]] or [100_000]:
        rate, mem, takeover, joins, after = one(n)
        slave = max(v for k, v in mem.items() if k.startswith("slave"))
        print(f"| {n:,} | {rate:,.0f} | {mem['master']:.0f} | {mem['backup']:.0f} | {slave:.0f} | "
              f"{takeover:.2f} | {joins} | {after:.0f} |", flush=True)
