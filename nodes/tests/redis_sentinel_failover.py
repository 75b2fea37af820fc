"""Writes through redis-py's Sentinel client while the test kills the master.

Usage: redis_sentinel_failover.py SENTINEL_ADDR... (host:port each)

Prints `progress N` after every 50 acknowledged writes (the test kills the master after the
first ones) and keeps writing unique keys until Sentinel names another master and 400 writes
are acknowledged (redis-py may retry a failed command by itself, so the client need not see an
error). Then it reads every acknowledged key back through the master Sentinel names, and prints
one JSON line: acked, failed, lost (keys whose value did not read back), first and last master.
"""

import json
import sys
import time

from redis.sentinel import Sentinel

sentinels = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in sys.argv[1:]]
# The endpoint speaks RESP2; redis-py 5+ asks for RESP3 unless told otherwise.
sentinel = Sentinel(
    sentinels, socket_timeout=1.0, sentinel_kwargs={"protocol": 2, "socket_timeout": 1.0}, protocol=2
)
master = sentinel.master_for("mymaster", socket_timeout=2.0, socket_connect_timeout=1.0, protocol=2)

def current_master():
    try:
        host, port = sentinel.discover_master("mymaster")
        return f"{host}:{port}"
    except Exception:  # noqa: BLE001 - no master known at this moment
        return None


first = current_master()
acked, failed, i, switched = [], 0, 0, False
deadline = time.monotonic() + 60
while (len(acked) < 400 or not switched) and time.monotonic() < deadline:
    key, value = f"k{i}", f"v{i}"
    i += 1
    try:
        master.set(key, value)
        acked.append(key)
        if len(acked) % 50 == 0:
            print(f"progress {len(acked)}", flush=True)
            switched = switched or current_master() not in (first, None)
    except Exception as err:  # noqa: BLE001 - any failure: the outcome is unknown, try the next key
        failed += 1
        if failed <= 3 or failed % 20 == 0:
            print(f"error {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        time.sleep(0.05)

lost = []
for key in acked:
    for attempt in range(20):
        try:
            if master.get(key) != f"v{key[1:]}".encode():
                lost.append(key)
            break
        except Exception:  # noqa: BLE001
            time.sleep(0.1)
    else:
        lost.append(key)

summary = {"acked": len(acked), "failed": failed, "lost": lost, "first": first, "master": current_master()}
print(json.dumps(summary), flush=True)
