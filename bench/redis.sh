#!/usr/bin/env bash
# The Redis cell: broadcast through Redis Pub/Sub with two rfc6455 processes, against one process
# without Redis, in the same run. One sender and R receivers in one room (`/`), spread evenly over
# the processes (wsload --also-addr); every connection receives every message, the sender too.
# Each setup is measured twice: with 32 messages in flight (throughput: deliveries per second) and
# with one (latency: the lag of each delivery with no queue ahead of it).
# The servers (and Redis) run on core 0, the load generator on core 1, as in bench/run.sh; the
# server CPU is the sum over every server process and Redis. Prints a markdown table of medians
# and keeps the raw results in bench/results/.
#
#   bench/redis.sh                               # 3 rounds of 3 s, 1000 receivers
#   ROUNDS=1 DURATION=1 RECEIVERS=100 bench/redis.sh
#
# Needs redis-server (tests/redis/run.sh installs Debian's). Everything runs on loopback and
# stops by itself; every process it starts is stopped by its PID.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
rounds="${ROUNDS:-3}"
duration="${DURATION:-3}"
receivers="${RECEIVERS:-1000}"
redis_server="${REDIS_SERVER:-$(command -v redis-server || true)}"
if [ -z "$redis_server" ]; then
    echo "bench/redis.sh: redis-server is missing (tests/redis/run.sh installs it)" >&2
    exit 1
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
source "$root/.ci/lib/cargo-bin.sh"
ours=$(cargo_bin "$root/Cargo.toml" rfc6455)
wsload=$(cargo_bin "$here/Cargo.toml" wsload)

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench/redis.sh: nothing listens on $1" >&2
    return 1
}

server_flags="--idle-timeout 0 --max-connections 20000"
mkdir -p "$here/results"
results="$here/results/redis-$(date -u +%Y%m%dT%H%M%SZ).tsv"
: >"$results"

run_cell() { # round setup window
    local round=$1 setup=$2 window=$3 cell="$2_w$3" port port2 redis_port line
    port=$(free_port)
    local args=(broadcast -r "$receivers" -s 64 --window "$window" --duration "$duration" --addr "127.0.0.1:$port")
    if [ "$setup" = one_process ]; then
        RUST_LOG=warn taskset -c 0 "$ours" broadcast --port "$port" $server_flags >/dev/null 2>&1 &
        pids+=($!)
        args+=(--pid "${pids[0]}")
        wait_port "$port"
    else
        redis_port=$(free_port)
        taskset -c 0 "$redis_server" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
        pids+=($!)
        wait_port "$redis_port"
        port2=$(free_port)
        for p in "$port" "$port2"; do
            RUST_LOG=warn taskset -c 0 "$ours" broadcast --port "$p" $server_flags \
                --redis "redis://127.0.0.1:$redis_port" >/dev/null 2>&1 &
            pids+=($!)
            wait_port "$p"
        done
        args+=(--pid "${pids[1]}" --also-pid "${pids[2]}" --also-pid "${pids[0]}" --also-addr "127.0.0.1:$port2")
    fi
    line=$(taskset -c 1 "$wsload" "${args[@]}" | tail -n 1) || line=FAILED
    printf '%s\t%s\t%s\n' "$round" "$cell" "$line" >>"$results"
    printf '  round %s %-22s %s\n' "$round" "$cell" "${line#RESULT }"
    cleanup
}

echo "Redis cell: $rounds rounds, ${duration}s each, 1 sender and $receivers receivers in one room"
for round in $(seq 1 "$rounds"); do
    # Alternate which runs first.
    if [ $((round % 2)) -eq 1 ]; then setups="one_process two_processes_redis"; else setups="two_processes_redis one_process"; fi
    for window in 32 1; do
        for setup in $setups; do run_cell "$round" "$setup" "$window"; done
    done
done
echo
python3 - "$results" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    _, cell, result = line.rstrip("\n").split("\t")
    if result.startswith("RESULT"):
        rows[cell].append(dict(kv.split("=", 1) for kv in result.split()[1:]))
def med(cell, key):
    values = [float(r[key]) for r in rows[cell] if key in r]
    return statistics.median(values) if values else float("nan")
print("| setup | in flight | deliveries/s | delivery lag p50 | p99 | server CPU (all processes) | server µs per delivery |")
print("|---|---|---|---|---|---|---|")
names = {"one_process": "one process, no Redis", "two_processes_redis": "two processes on Redis"}
for window in ["32", "1"]:
    for setup in ["one_process", "two_processes_redis"]:
        cell = f"{setup}_w{window}"
        if not rows[cell]:
            print(f"| {names[setup]} | {window} | FAILED | | | | |")
            continue
        print(f"| {names[setup]} | {window} | {med(cell, 'deliveries_per_sec'):,.0f} | {med(cell, 'lag_p50_us'):,.0f} µs | "
              f"{med(cell, 'lag_p99_us'):,.0f} µs | {med(cell, 'server_cpu_pct'):.0f}% | {med(cell, 'server_us_per_delivery'):.3f} |")
for window in ["32", "1"]:
    one, two = f"one_process_w{window}", f"two_processes_redis_w{window}"
    if rows[one] and rows[two]:
        print()
        print(f"added by Redis with {window} in flight: deliveries/s {med(two, 'deliveries_per_sec') / med(one, 'deliveries_per_sec'):.2f}x, "
              f"lag p50 {med(two, 'lag_p50_us') - med(one, 'lag_p50_us'):+,.0f} µs, "
              f"p99 {med(two, 'lag_p99_us') - med(one, 'lag_p99_us'):+,.0f} µs")
PY
echo "raw results: ${results#"$root"/}"
