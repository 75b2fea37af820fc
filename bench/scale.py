#!/usr/bin/env python3
"""What a data set of N keys costs: load rate, resident memory per process, the takeover
after the master is SIGKILLed (time until a write is accepted again, until every key the new
master knew only from its log is placed, and how often slaves joined the new master in the
20 s after), the old master's restart on its data directory
(log replay, then until it is the new master's standby again), the refill of a slave
restarted empty, and the size of the snapshot the old master wrote.

Starts `nodes cluster --slaves 3` (R=3, fsync on), fills it with `harness load --keys N`
(100-byte values), reads /proc for each process's resident memory, kills the master and
writes a key in a loop with the CLI. Usage: python3 bench/scale.py N [N ...]
(build with cargo build --release first).
"""
import json, os, re, signal, subprocess, sys, tempfile, time

import cluster as kv

MASTER, BACKUP = "127.0.0.1:22445", "127.0.0.1:22446"


def put(i, timeout_ms=3000):
    return kv.put(MASTER, BACKUP, "probe", i, timeout_ms)


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
    except (OSError, AttributeError):
        return float("nan")


def note(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def status(timeout_ms=3000):
    args = [kv.NODES, "client", "--master", MASTER, "--backup", BACKUP, "--timeout-ms", str(timeout_ms),
            "status", "--json"]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        return None
    try:
        return json.loads(done.stdout)
    except ValueError:
        return None


def wait(what, probe, limit=900):
    start = time.time()
    while not probe():
        if time.time() - start > limit:
            raise SystemExit(f"{what}: not within {limit} s")
        time.sleep(0.2)
    return time.time() - start


def argv_of(pid):
    """The command line process `pid` was started with."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


def launch(argv, folder, name):
    """Starts `argv` again, its log in `folder`; returns the process and the log's path."""
    path = os.path.join(folder, f"{name}-again.log")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(path, "w")), path


def one(keys):
    folder = tempfile.mkdtemp(prefix="kv-scale-")
    cluster, pids = kv.start(folder, MASTER, BACKUP)
    try:
        loaded = subprocess.run([kv.HARNESS, "load", "--master", MASTER, "--backup", BACKUP, "--keys", str(keys)],
                                capture_output=True, text=True)
        if loaded.returncode != 0:
            raise SystemExit(f"the load failed: {loaded.stderr}")
        rate = float(re.search(r"([\d.]+) writes/s", loaded.stdout).group(1))
        note(f"{keys} keys loaded at {rate:.0f} writes/s")
        time.sleep(2)
        memory = {name: rss_mb(pid) for name, pid in pids.items()}
        note("resident MB after the load: " + ", ".join(f"{k} {v:.0f}" for k, v in memory.items()))
        snaps = [os.path.getsize(os.path.join(folder, "master", f))
                 for f in os.listdir(os.path.join(folder, "master")) if f.endswith(".snap")]
        snapshot_mb = max(snaps, default=0) / 1e6
        # Kept before the process is gone.
        master_argv = argv_of(pids["master"])
        start = time.time()
        os.kill(pids["master"], signal.SIGKILL)
        i = 1
        while not put(i):
            i += 1
            if time.time() - start > 900:
                raise SystemExit("no write accepted within 900 s")
        takeover = time.time() - start
        note(f"takeover: a write accepted {takeover:.2f} s after SIGKILL")
        # Keys the new master knows only from its log are placed in the background.
        settled = wait("every key placed on the new master",
                       lambda: (status() or {}).get("under_replicated") == 0) + takeover
        note(f"every key placed {settled:.1f} s after SIGKILL")
        time.sleep(max(0.0, 20 - (settled - takeover)))
        with open(os.path.join(folder, "backup.log")) as f:
            log = f.read()
        joins = len(re.findall(r"slave connected", log.split("campaigning to take over", 1)[-1]))
        after = rss_mb(pids["backup"])

        # The old master restarts on its data directory: log replay, then it follows.
        again, log_path = launch(master_argv, folder, "master")
        extra = [again]
        replay = wait("the old master's log replay", lambda: "recovered" in open(log_path).read())

        def caught_up():
            standby = (status() or {}).get("standby") or {}
            return standby.get("id") == "master" and standby.get("lag") == 0
        standby = wait("the old master as standby, caught up", caught_up) + replay

        note(f"restart: replayed in {replay:.1f} s, standby caught up after {standby:.1f} s")
        # A slave restarted empty is refilled.
        victim = pids["slave-2"]
        slave, _ = launch(argv_of(victim), folder, "slave-2")
        os.kill(victim, signal.SIGKILL)
        extra.append(slave)

        def refilled():
            st = status()
            if st is None or st.get("under_replicated") != 0:
                return False
            held = [s.get("keys_held", 0) for s in st.get("slaves", []) if s.get("id") == "slave-2"]
            return bool(held) and held[0] >= keys
        time.sleep(1)
        refill = wait("slave-2 refilled", refilled) + 1
        for p in extra:
            p.kill()
        return rate, memory, takeover, settled, joins, after, replay, standby, refill, snapshot_mb
    finally:
        cluster.send_signal(signal.SIGTERM)
        cluster.wait(timeout=30)


if __name__ == "__main__":
    print("| keys | load writes/s | master MB | backup MB | slave MB | takeover s | all placed s | joins after "
          "| new master MB | restart: replay s | restart: standby again s | refill s | snapshot MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in [int(a) for a in sys.argv[1:]] or [100_000]:
        rate, mem, takeover, settled, joins, after, replay, standby, refill, snap = one(n)
        slave = max(v for k, v in mem.items() if k.startswith("slave"))
        print(f"| {n:,} | {rate:,.0f} | {mem['master']:.0f} | {mem['backup']:.0f} | {slave:.0f} | "
              f"{takeover:.2f} | {settled:.1f} | {joins} | {after:.0f} | {replay:.1f} | {standby:.1f} | {refill:.1f} | {snap:.0f} |",
              flush=True)
