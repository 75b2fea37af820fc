#!/usr/bin/env python3
"""Measures how long writes are refused after the master is killed with SIGKILL (or paused
with SIGSTOP).

Starts `nodes cluster --slaves 3` (default failure detection: --failover-after-ms 1500),
writes a key in a loop with the CLI, kills the master, and prints the time until a write is
accepted again. Usage: python3 bench/takeover.py [runs] [KILL|STOP] (build with
cargo build --release first).
"""
import os, signal, sys, tempfile, time

import cluster as kv

MASTER, BACKUP = "127.0.0.1:22345", "127.0.0.1:22346"


def put(i):
    return kv.put(MASTER, BACKUP, "k", i)


def one_run(sig):
    folder = tempfile.mkdtemp(prefix="kv-takeover-")
    cluster, pids = kv.start(folder, MASTER, BACKUP)
    try:
        master_pid = pids["master"]
        start = time.time()
        os.kill(master_pid, sig)
        i = 1
        while not put(i):
            i += 1
            if time.time() - start > 30:
                raise SystemExit("no write accepted within 30 s")
        return time.time() - start
    finally:
        if sig == signal.SIGSTOP and "master_pid" in locals():
            os.kill(master_pid, signal.SIGCONT)
        cluster.send_signal(signal.SIGTERM)
        cluster.wait(timeout=15)


if __name__ == "__main__":
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    name = sys.argv[2].upper() if len(sys.argv) > 2 else "KILL"
    times = [one_run(getattr(signal, "SIG" + name)) for _ in range(runs)]
    print(f"writes accepted again after SIG{name} of the master: " + ", ".join(f"{t:.2f} s" for t in times))
