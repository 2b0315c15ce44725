#!/usr/bin/env bash
# The interop test: rfc6455's client, the library's (examples/interop_client.rs) and the terminal
# client (`rfc6455 client`), against two other implementations' echo servers: Python's websockets
# (echo_server.py) and Node's ws with permessage-deflate (echo_server.mjs). Echo of text and binary
# up to 16 MiB with compression on and off, many messages in a row, close codes both ways, a
# refused upgrade.
#
#   tests/interop/run.sh
#
# Installs what it needs on first use: websockets into tests/interop/venv (pinned in
# requirements.txt) and ws into tests/interop/node_modules (pinned in package-lock.json). Prints
# every check, then "interop: N passed, N failed"; exits non-zero if any check failed or if a
# server could not be started (nothing is skipped).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

# 1. The peers.
if [ ! -x venv/bin/python ]; then
    echo "Setting up tests/interop/venv with $(command -v python3)"
    python3 -m venv venv
fi
venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
command -v node >/dev/null || { echo "tests/interop/run.sh: Node.js is required" >&2; exit 1; }
npm ci --no-audit --no-fund --silent

# 2. Our side, in release mode.
source "$root/.ci/lib/cargo-bin.sh"
cli=$(cargo_bin "$root/Cargo.toml" rfc6455)
checks=$(cargo_example "$root/Cargo.toml" interop_client)

# 3. The servers, each on a free loopback port that it prints first.
logs=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$logs"
}
trap cleanup EXIT

# Sets $port. Not in a subshell, so that the server's process id reaches the cleanup.
start_server() { # name command...
    local name=$1
    shift
    port=""
    # Made here, not only by the redirection below: that one runs in the child, which may not
    # have opened the file yet when the loop first reads it.
    : >"$logs/$name.out"
    "$@" >"$logs/$name.out" 2>"$logs/$name.err" &
    pids+=("$!")
    for _ in $(seq 1 200); do
        port=$(head -n 1 "$logs/$name.out")
        [ -n "$port" ] && break
        if ! kill -0 "${pids[-1]}" 2>/dev/null; then break; fi
        sleep 0.05
    done
    if [ -z "$port" ]; then
        echo "tests/interop/run.sh: the $name server did not start:" >&2
        cat "$logs/$name.err" >&2
        exit 1
    fi
}
start_server python venv/bin/python echo_server.py
python_port=$port
start_server node node echo_server.mjs
node_port=$port

# 4. The checks.
passed=0
failed=0
report() { # status description
    if [ "$1" = ok ]; then
        passed=$((passed + 1))
        echo "ok   $2"
    else
        failed=$((failed + 1))
        echo "FAIL $2"
    fi
}

# The terminal client: in a pipe, its output and exit status.
cli_check() { # name description expected-stdout expected-status stdin args...
    local name=$1 description=$2 want_out=$3 want_status=$4 input=$5 out status=0
    shift 5
    out=$(printf '%b' "$input" | timeout 30 "$cli" client "$@" 2>"$logs/cli.err") || status=$?
    if [ "$out" = "$want_out" ] && [ "$status" = "$want_status" ]; then
        report ok "$name: rfc6455 client: $description"
    else
        report fail "$name: rfc6455 client: $description: exit $status (expected $want_status), output $(printf '%q' "$out") (expected $(printf '%q' "$want_out")); $(tr '\n' ' ' <"$logs/cli.err")"
    fi
}

for server in "python $python_port" "node $node_port"; do
    read -r name port <<<"$server"
    url="ws://127.0.0.1:$port"
    echo "== rfc6455's client against $name's echo server on port $port"
    status=0
    "$checks" "$name" "$url" >"$logs/checks.out" 2>&1 || status=$?
    while IFS= read -r line; do
        case "$line" in
        "ok   "*) report ok "${line#ok   }" ;;
        "FAIL "*) report fail "${line#FAIL }" ;;
        esac
    done <"$logs/checks.out"
    if [ "$status" -ne 0 ] && ! grep -q '^FAIL ' "$logs/checks.out"; then
        report fail "$name: interop_client exited with $status: $(tail -5 "$logs/checks.out" | tr '\n' ' ')"
    fi
    cli_check "$name" "--once echoes one line" "hi" 0 'hi\n' "$url/" --once
    cli_check "$name" "--no-compression" "plain" 0 'plain\n' "$url/" --once --no-compression
    cli_check "$name" "--binary echoes raw bytes" "bytes" 0 'bytes\n' "$url/" --once --binary
    cli_check "$name" "--close 4000:bye exits 3" "x" 3 'x\n' "$url/" --once --close 4000:bye
    cli_check "$name" "the server's close with 4001 exits 3" "" 3 '' "$url/close/4001"
    cli_check "$name" "a refused upgrade exits 2" "" 2 'x\n' "$url/refuse"
    # Without --once the Close goes out as soon as standard input ends, and what the server
    # still sends before its own Close is printed: ws echoes what came before our Close, while
    # websockets answers our Close at once and drops the echoes its handler had not sent yet.
    if [ "$name" = node ]; then
        cli_check "$name" "every line echoed before the server's close" $'a\nb\nc' 0 'a\nb\nc\n' "$url/"
    else
        cli_check "$name" "the end of input closes with 1000" "" 0 '' "$url/"
    fi
done

echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
