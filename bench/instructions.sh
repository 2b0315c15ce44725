#!/usr/bin/env bash
# User-space instructions per message of the rfc6455 server, counted by valgrind's callgrind
# while the load generator drives it: a figure that does not move with the machine's noise (the
# same binary and load give the same count within a percent or two), for judging a change to the
# per-message path before a timed run. Kernel work is not counted (valgrind sees user space only).
#
#   bench/instructions.sh                                  # the pipelined echo, 100 x 16 in flight
#   bench/instructions.sh broadcast -r 1000 -s 64          # any wsload command and arguments
#   BASELINE=path/to/an/older/rfc6455 bench/instructions.sh   # both builds, the same load
#
# Prints, for each build, the instructions per message (or per broadcast delivery) and the
# functions that execute most of them, per message. The message count is the load generator's
# rate times the measured seconds (no warm-up is left out, so the opening handshakes are counted
# in too: about a percent). Under valgrind the server runs some fifty times slower, so it reads
# more messages per call than it would natively: compare builds with each other, not with the
# timed figures. Installs Debian's valgrind when it is missing (needs root).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
seconds="${DURATION:-5}"

if ! command -v valgrind >/dev/null; then
    source "$root/.ci/lib/apt-install.sh"
    install_package valgrind bench/instructions.sh
fi

source "$root/.ci/lib/cargo-bin.sh"
ours=$(cargo_bin "$root/Cargo.toml" rfc6455)
wsload=$(cargo_bin "$here/Cargo.toml" wsload)

load=("$@")
if [ ${#load[@]} -eq 0 ]; then
    load=(echo -c 100 -k 16 -s 20)
fi
case "${load[0]}" in
    echo) mode=echo rate_field=messages_per_sec ;;
    broadcast) mode=broadcast rate_field=deliveries_per_sec ;;
    *) echo "bench/instructions.sh: the load is an echo or broadcast command of wsload" >&2; exit 2 ;;
esac

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# count NAME BINARY: runs BINARY under callgrind with the load and prints its figures.
count() {
    local name=$1 binary=$2 port out rate
    port=$(free_port)
    out="$work/$name.callgrind"
    RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$binary" "$mode" --port "$port" --idle-timeout 0 --max-connections 20000 \
        >/dev/null 2>"$work/$name.valgrind" &
    server_pid=$!
    # valgrind takes a while to start the program: wait until it listens.
    for _ in $(seq 100); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.1)" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    "$wsload" "${load[@]}" --duration "$seconds" --warmup 0 --addr "127.0.0.1:$port" >"$work/$name.load"
    # SIGINT: the server shuts down and valgrind writes its counts.
    kill -INT "$server_pid"
    wait "$server_pid" || true
    server_pid=
    rate=$(grep -o "$rate_field=[0-9]*" "$work/$name.load" | tail -1 | cut -d= -f2)
    if [ -z "$rate" ] || [ "$rate" -eq 0 ]; then
        echo "bench/instructions.sh: $name: the load generator measured nothing" >&2
        cat "$work/$name.load" >&2
        return 1
    fi
    callgrind_annotate "$out" 2>/dev/null | python3 -c '
import re, sys
name, messages = sys.argv[1], float(sys.argv[2])
total, functions = None, []
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
    if not m:
        continue
    count = int(m.group(1).replace(",", ""))
    if m.group(2).startswith("PROGRAM TOTALS"):
        total = count
    elif ":" in m.group(2) and total is not None:
        functions.append((count, m.group(2).split(":", 1)[1].split(" [")[0]))
print(f"{name}: {total / messages:.0f} user instructions per message ({messages:.0f} messages)")
for count, function in functions[:12]:
    print(f"  {count / messages:8.1f}  {function[:100]}")
' "$name" "$((rate * seconds))"
}

count rfc6455 "$ours"
if [ -n "${BASELINE:-}" ]; then
    count rfc6455-old "$BASELINE"
fi
