#!/usr/bin/env bash
# The side-by-side benchmark: every server in turn, pinned to core 0, against the load generator
# pinned to core 1, for every cell, ROUNDS times with the server order rotated each round. Prints
# markdown tables of medians with ratios to rfc6455 and keeps the raw results in bench/results/.
# Exits non-zero, after the tables, when a server's replies were wrong (MISMATCH: the load
# generator checks every echoed byte and the order of each sender's broadcast messages) or when
# rfc6455 failed a cell.
#
#   bench/run.sh                    # everything, about 16 minutes (more with BASELINE)
#   ROUNDS=1 DURATION=1 bench/run.sh   # a quick look
#   CELL_ROUNDS="echo_100x16=9" bench/run.sh   # more rounds for some cells (by default, 7 for
#                                   # echo_100x16, echo_1000x1, echo_10x1MiB and broadcast_1x1000 when ROUNDS
#                                   # is unset)
#   CELLS="echo_100x16 idle_10000" bench/run.sh
#   SERVERS="rfc6455 rfc6455-old" bench/run.sh   # only these servers (names as in the table)
#   BASELINE=path/to/an/older/rfc6455 bench/run.sh   # the previous release in the same run
#   EXTRA_ECHO="other|path/to/echo PORT" EXTRA_BROADCAST="other|path/to/broadcast PORT" bench/run.sh
#                                   # servers built elsewhere, in the echo and broadcast cells
#
# With BASELINE set to an older rfc6455 binary (one that takes the same command line), it runs as
# a server named rfc6455-old in every cell rfc6455 runs in, with the same flags, so that the table
# compares the two builds under the same conditions (its ratio column is relative to rfc6455).
#
# Cells (CELLS picks some; the wsload arguments are in cell_args below):
#   echo_CxK             C connections with K messages of 20 bytes in flight on each
#   echo_100x16KiB, echo_10x1MiB   larger echo messages, one in flight per connection
#   broadcast_1xR        1 sender and R other connections (R = 10, 100, 1000, 10000), 64-byte
#                        messages; every connection receives every message, the sender too.
#                        broadcast_1x10000 needs about 10 000 descriptors on each side (the
#                        soft limit is raised to the hard one below); a peer that cannot cope
#                        gets a FAILED row
#   broadcast_100to1000  100 senders among 1000 connections, each sender its own sequence; every
#                        connection checks each sender's order
#   idle_10000           server memory per open connection
#   echo_100x1_tls, broadcast_1x1000_tls, idle_10000_tls
#                        the same cells over TLS (wss://, a certificate made for the run, the
#                        load generator's rustls client verifying nothing): rfc6455 with
#                        --tls-cert/--tls-key against tokio-tungstenite over tokio-rustls, both
#                        with rustls' ring provider. Each recipient of a broadcast encrypts its
#                        own copy.
#   fairness_FLOOD       rfc6455 echo only (and rfc6455-old with BASELINE): one innocent client's
#                        round trips of 20-byte messages, one at a time, while another
#                        connection floods the server; the table shows the innocent's p50, p99
#                        and longest round trip. FLOOD is one of
#                          plain       64 KiB binary messages as fast as the server takes them,
#                                      echoes read and checked
#                          fragments   one endless message of empty and 1-byte continuation
#                                      frames; rfc6455 closes it with 1008 past 131 072
#                                      fragments and the flooder connects again
#                          compressed  permessage-deflate messages of 16 KiB that inflate to
#                                      16 MiB of zeros each, reconnecting if closed
#                        A round trip still unanswered when the window ends counts with what it
#                        has waited so far, so a starved innocent shows as slow, not as absent.
#                        Flood MB/s is what the flooder wrote into its socket (for compressed,
#                        mostly what kernel buffers hold); flood messages are the echoes it got.
#
# Builds rfc6455, the load generator (bench/loadgen) and the Rust peers (bench/peers) in release
# mode, and installs Node's `ws` into bench/node if Node.js is present (its servers are skipped
# otherwise). Everything runs on loopback and stops by itself.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
rounds="${ROUNDS:-3}"
duration="${DURATION:-3}"
cells="${CELLS:-echo_1x1 echo_100x1 echo_100x16 echo_1000x1 echo_100x16KiB echo_10x1MiB broadcast_1x10 broadcast_1x100 broadcast_1x1000 broadcast_1x10000 broadcast_100to1000 idle_10000 fairness_plain fairness_fragments fairness_compressed echo_100x1_tls broadcast_1x1000_tls idle_10000_tls}"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
    echo "bench/run.sh: only $(ulimit -n) descriptors allowed; the 10 000-connection cells will fail" >&2
fi
source "$root/.ci/lib/cargo-bin.sh"
ours=$(cargo_bin "$root/Cargo.toml" rfc6455)
wsload=$(cargo_bin "$here/Cargo.toml" wsload)
tt_echo=$(cargo_bin "$here/Cargo.toml" tokio_tungstenite_echo)
tt_broadcast=$(cargo_bin "$here/Cargo.toml" tokio_tungstenite_broadcast)
fws_echo=$(cargo_bin "$here/Cargo.toml" fastwebsockets_echo)
tt_echo_tls=$(cargo_bin "$here/Cargo.toml" tokio_tungstenite_echo_tls)
tt_broadcast_tls=$(cargo_bin "$here/Cargo.toml" tokio_tungstenite_broadcast_tls)
certs=$(mktemp -d)
"$root/tests/tls/make-certs.sh" "$certs"
tls_files="$certs/cert.pem $certs/key.pem"
have_node=false
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    (cd "$here/node" && npm install --no-audit --no-fund --silent >/dev/null) && have_node=true
fi

# name|command (PORT is replaced)
echo_servers=(
    "rfc6455|$ours echo --port PORT --idle-timeout 0 --max-connections 20000"
    "tokio-tungstenite|$tt_echo PORT"
    "fastwebsockets|$fws_echo PORT"
)
broadcast_servers=(
    "rfc6455|$ours broadcast --port PORT --idle-timeout 0 --max-connections 20000"
    "tokio-tungstenite|$tt_broadcast PORT"
)
# The TLS cells: the same server flags with a certificate, against tokio-tungstenite over
# tokio-rustls (the peer with a TLS stack of the same family).
tls_echo_servers=(
    "rfc6455|$ours echo --port PORT --idle-timeout 0 --max-connections 20000 --tls-cert $certs/cert.pem --tls-key $certs/key.pem"
    "tokio-tungstenite|$tt_echo_tls PORT $tls_files"
)
tls_broadcast_servers=(
    "rfc6455|$ours broadcast --port PORT --idle-timeout 0 --max-connections 20000 --tls-cert $certs/cert.pem --tls-key $certs/key.pem"
    "tokio-tungstenite|$tt_broadcast_tls PORT $tls_files"
)
# The fairness cells measure rfc6455 alone (issue 14): the floods lean on its fragment limit and
# on permessage-deflate, which the peers here do not offer.
fairness_servers=("${echo_servers[0]}")
if [ -n "${BASELINE:-}" ]; then
    if [ ! -x "$BASELINE" ]; then
        echo "bench/run.sh: BASELINE=$BASELINE is not an executable" >&2
        exit 2
    fi
    old_echo="rfc6455-old|$BASELINE echo --port PORT --idle-timeout 0 --max-connections 20000"
    echo_servers+=("$old_echo")
    broadcast_servers+=("rfc6455-old|$BASELINE broadcast --port PORT --idle-timeout 0 --max-connections 20000")
    fairness_servers+=("$old_echo")
fi
# Servers built elsewhere (uWebSockets, say), for a side-by-side run: "name|command" entries
# separated by ';', PORT standing for the port. This script builds none of them.
IFS=';' read -ra extra <<<"${EXTRA_ECHO:-}"
echo_servers+=("${extra[@]}")
IFS=';' read -ra extra <<<"${EXTRA_BROADCAST:-}"
broadcast_servers+=("${extra[@]}")
if $have_node; then
    echo_servers+=("node-ws|node $here/node/echo.js PORT")
    broadcast_servers+=("node-ws|node $here/node/broadcast.js PORT")
fi
# SERVERS="rfc6455 rfc6455-old ...": only the servers named, for more rounds of a comparison in
# the same time.
if [ -n "${SERVERS:-}" ]; then
    keep_named() {
        local -n list=$1
        local kept=() entry
        for entry in "${list[@]}"; do
            if [[ " $SERVERS " == *" ${entry%%|*} "* ]]; then kept+=("$entry"); fi
        done
        list=("${kept[@]}")
    }
    for list in echo_servers broadcast_servers tls_echo_servers tls_broadcast_servers fairness_servers; do
        keep_named "$list"
    done
fi

cell_args() {
    case "$1" in
        echo_1x1) echo "echo -c 1 -k 1 -s 20" ;;
        echo_100x1) echo "echo -c 100 -k 1 -s 20" ;;
        echo_100x16) echo "echo -c 100 -k 16 -s 20" ;;
        echo_1000x1) echo "echo -c 1000 -k 1 -s 20" ;;
        echo_100x16KiB) echo "echo -c 100 -k 1 -s 16384" ;;
        echo_10x1MiB) echo "echo -c 10 -k 1 -s 1048576" ;;
        broadcast_1x10) echo "broadcast -r 10 -s 64" ;;
        broadcast_1x100) echo "broadcast -r 100 -s 64" ;;
        broadcast_1x1000) echo "broadcast -r 1000 -s 64" ;;
        broadcast_1x10000) echo "broadcast -r 10000 -s 64" ;;
        broadcast_100to1000) echo "broadcast -r 900 --senders 100 -s 64" ;;
        idle_10000) echo "idle -c 10000" ;;
        fairness_plain) echo "fairness --flood plain" ;;
        fairness_fragments) echo "fairness --flood fragments" ;;
        fairness_compressed) echo "fairness --flood compressed" ;;
        *_tls) echo "$(cell_args "${1%_tls}") --tls" ;;
        *) echo "unknown cell $1" >&2; exit 2 ;;
    esac
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The user and system clock ticks a process has used so far ("- -" once it is gone).
cpu_ticks() {
    awk '{print $14, $15}' "/proc/$1/stat" 2>/dev/null || echo "- -"
}

# server_user_share=U, the user share of the ticks between two cpu_ticks readings (nothing if
# either is missing or no tick passed).
user_share() { # "user system" before, "user system" after
    python3 - "$1" "$2" <<'PY'
import sys
before, after = sys.argv[1].split(), sys.argv[2].split()
if "-" not in before + after:
    user, system = int(after[0]) - int(before[0]), int(after[1]) - int(before[1])
    if user + system > 0:
        print(f"server_user_share={user / (user + system):.3f}")
PY
}

server_pid=""
cleanup() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi; }
trap 'cleanup; rm -rf "$certs"' EXIT

mkdir -p "$here/results"
results="$here/results/$(date -u +%Y%m%dT%H%M%SZ).tsv"
: >"$results"

mismatches=()  # "cell server" of every measurement with wrong replies
failures=()    # the cells in which rfc6455 failed otherwise

run_one() { # round cell name command
    local round=$1 cell=$2 name=$3 command=$4 port args timing output status=0 line
    port=$(free_port)
    RUST_LOG=warn taskset -c 0 ${command//PORT/$port} >/dev/null 2>&1 &
    server_pid=$!
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    args=$(cell_args "$cell")
    timing=""
    [[ "$cell" != idle_* ]] && timing="--duration $duration"
    # wsload's last line is RESULT (status 0), or MISMATCH (status 3) when the replies were wrong.
    cpu_before=$(cpu_ticks "$server_pid")
    output=$(taskset -c 1 "$wsload" $args $timing --addr "127.0.0.1:$port" --pid "$server_pid") || status=$?
    line=$(tail -n 1 <<<"$output")
    # The server's user share of its CPU time during the measurement (from /proc/PID/stat), for
    # the table's split of the time per message into user space and kernel.
    if [[ "$line" == RESULT* ]]; then
        line="$line $(user_share "$cpu_before" "$(cpu_ticks "$server_pid")")"
    fi
    if [ "$status" -eq 3 ] && [[ "$line" == MISMATCH* ]]; then
        mismatches+=("$cell $name")
    elif [ "$status" -ne 0 ] || [[ "$line" != RESULT* ]]; then
        line=FAILED
        if [ "$name" = rfc6455 ]; then failures+=("$cell"); fi
    fi
    printf '%s\t%s\t%s\t%s\n' "$round" "$cell" "$name" "$line" >>"$results"
    printf '  round %s %-17s %-18s %s\n' "$round" "$cell" "$name" "${line#RESULT }"
    cleanup
    server_pid=""
}

# More rounds for the cells whose figures are judged against a target (issue 13) and the one whose
# median moves most from run to run (echo_1000x1): CELL_ROUNDS="cell=rounds ...", by default only
# when ROUNDS is unset.
declare -A cell_rounds=()
if [ -z "${ROUNDS:-}" ]; then
    default_cell_rounds="echo_100x16=7 echo_1000x1=7 echo_10x1MiB=7 broadcast_1x1000=7"
else
    default_cell_rounds=""
fi
for pair in ${CELL_ROUNDS-$default_cell_rounds}; do
    cell_rounds[${pair%%=*}]=${pair#*=}
done
most_rounds=$rounds
for cell in $cells; do
    if [ "${cell_rounds[$cell]:-$rounds}" -gt "$most_rounds" ]; then
        most_rounds=${cell_rounds[$cell]}
    fi
done

echo "Benchmark: $rounds rounds (${CELL_ROUNDS-$default_cell_rounds}), ${duration}s per measurement; server on core 0, load generator on core 1"
for round in $(seq 1 "$most_rounds"); do
    for cell in $cells; do
        if [ "$round" -gt "${cell_rounds[$cell]:-$rounds}" ]; then
            continue
        fi
        case "$cell" in
            broadcast_*_tls) list=("${tls_broadcast_servers[@]}") ;;
            *_tls) list=("${tls_echo_servers[@]}") ;;
            broadcast_*) list=("${broadcast_servers[@]}") ;;
            fairness_*) list=("${fairness_servers[@]}") ;;
            *) list=("${echo_servers[@]}") ;;
        esac
        # Rotate the order each round so that no server always runs first.
        n=${#list[@]}
        for i in $(seq 0 $((n - 1))); do
            entry=${list[$(((i + round) % n))]}
            run_one "$round" "$cell" "${entry%%|*}" "${entry#*|}"
        done
    done
done
echo
python3 "$here/table.py" "$results"
echo
echo "raw results: ${results#"$root"/}"
if [ ${#mismatches[@]} -gt 0 ]; then
    printf 'bench/run.sh: wrong replies (MISMATCH) in %s\n' "${mismatches[@]}" >&2
fi
if [ ${#failures[@]} -gt 0 ]; then
    printf 'bench/run.sh: rfc6455 failed in %s\n' "${failures[@]}" >&2
fi
if [ ${#mismatches[@]} -gt 0 ] || [ ${#failures[@]} -gt 0 ]; then
    exit 1
fi
