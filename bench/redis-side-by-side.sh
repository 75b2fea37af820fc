#!/usr/bin/env bash
# The same redis-benchmark workloads against redis-server (appendonly yes, appendfsync always,
# one node) and against this store (master, backup, 3 slaves, R=3, fsync on), in one run.
# Prints one markdown table: requests per second (and p50 latency for one client) for both,
# and the ratio store / Redis.
#
#   bench/redis-side-by-side.sh            # 200,000 requests per workload
#   REQUESTS=50000 bench/redis-side-by-side.sh
#
# redis-server and redis-benchmark come from Debian's redis-server and redis-tools packages;
# they are installed if missing (needs root and the package index).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-200000}
REDIS_PORT=${REDIS_PORT:-6399}
STORE_PORT=${STORE_PORT:-16399}

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    echo "installing redis-server and redis-tools" >&2
    apt-get install -y redis-server redis-tools >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 && apt-get install -y redis-server redis-tools >/dev/null; }
fi

cargo build --release -q -p nodes
work=$(mktemp -d /tmp/redis-side-by-side.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$work" --save "" \
    --appendonly yes --appendfsync always --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
target/release/nodes cluster --slaves 3 --dir "$work/store" \
    --listen 127.0.0.1:12399 --backup-listen 127.0.0.1:12400 \
    --redis-listen "127.0.0.1:$STORE_PORT" --backup-redis-listen off \
    --sentinel-listen off --backup-sentinel-listen off >"$work/cluster.out" 2>&1 &
pids+=($!)

wait_for() {
    for _ in $(seq 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1" >&2
    exit 1
}
wait_for "$REDIS_PORT"
wait_for "$STORE_PORT"
# Wait until the store has its slaves (a write succeeds).
for _ in $(seq 100); do
    [ "$(redis-cli -p "$STORE_PORT" set warmup 1 2>/dev/null)" = "OK" ] && break
    sleep 0.1
done

# One workload: prints "rps p50_ms" for test $1 (set|get) with extra flags.
bench() {
    local port=$1 test=$2
    shift 2
    redis-benchmark -p "$port" -t "$test" -d 100 -r 1000 -n "$REQUESTS" --csv "$@" 2>/dev/null \
        | awk -F'"' 'NR == 2 { print $4, $10 }'
}

printf '| workload | redis-server rps | store rps | store / redis | redis p50 ms | store p50 ms |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
for spec in "SET, 50 clients|set|-c 50" "GET, 50 clients|get|-c 50" \
    "SET, 50 clients, -P 16|set|-c 50 -P 16" "GET, 50 clients, -P 16|get|-c 50 -P 16" \
    "SET, 1 client|set|-c 1" "GET, 1 client|get|-c 1"; do
    IFS='|' read -r name test flags <<<"$spec"
    n=$REQUESTS
    # One client is about latency; fewer requests keep the run short.
    [ "$flags" = "-c 1" ] && n=$((REQUESTS / 10))
    # shellcheck disable=SC2086
    read -r redis_rps redis_p50 < <(REQUESTS=$n bench "$REDIS_PORT" "$test" $flags)
    # shellcheck disable=SC2086
    read -r store_rps store_p50 < <(REQUESTS=$n bench "$STORE_PORT" "$test" $flags)
    ratio=$(awk -v a="$store_rps" -v b="$redis_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    printf '| %s | %.0f | %.0f | %s | %s | %s |\n' "$name" "$redis_rps" "$store_rps" "$ratio" "$redis_p50" "$store_p50"
done
