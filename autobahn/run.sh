#!/usr/bin/env bash
# Runs the Autobahn|Testsuite against rfc6455 in both roles and compares every case's result with
# the committed expectation. Exits non-zero on any difference, better or worse.
#
#   autobahn/run.sh                          # both runs, 517 cases each
#   autobahn/run.sh server                   # the server run: wstest -m fuzzingclient against
#                                            # `rfc6455 echo`, compared with expected-results.json
#   autobahn/run.sh client                   # the client run: examples/autobahn_client against
#                                            # wstest -m fuzzingserver, compared with
#                                            # expected-results-client.json
#   autobahn/run.sh tls                      # the server run over TLS (wss://): cases 1 to 10
#                                            # (all but compression), compared with the same
#                                            # expected-results.json, so that every case gives
#                                            # the same result through TLS as without it
#   CASES='["6.4.*"]' autobahn/run.sh client  # a subset (the count check is skipped); with tls,
#                                            # CASES='["*"]' runs every case over TLS (slow)
#
# Installs what it needs on first use: a Python 2.7 virtualenv under autobahn/venv with the
# pinned autobahntestsuite (requirements.txt; it brings pyOpenSSL and service-identity, which
# Twisted's TLS needs). Reports go to autobahn/reports/: the server run's to reports/core/ and
# reports/compression/, the client run's to reports/client/, the TLS run's to reports/tls/ (open
# each index.html in a browser).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$here"

runs=${1:-both}
case "$runs" in
server | client | both | tls) ;;
*)
    echo "usage: autobahn/run.sh [server|client|tls]" >&2
    exit 2
    ;;
esac

# 1. A Python 2.7 interpreter: the suite is Python 2 only.
find_python2() {
    local candidates=()
    if command -v pyenv >/dev/null 2>&1; then
        candidates+=("$(pyenv root)/versions/2.7.18/bin/python")
    fi
    candidates+=("${HOME}/.pyenv/versions/2.7.18/bin/python" python2.7 python2)
    for candidate in "${candidates[@]}"; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# 2. The virtualenv with the pinned suite.
if [ ! -x venv/bin/wstest ]; then
    python2=$(find_python2) || {
        echo "autobahn/run.sh: no Python 2.7 found (looked in pyenv and on PATH)." >&2
        echo "Install one, for example: pyenv install 2.7.18" >&2
        exit 1
    }
    echo "Setting up autobahn/venv with $python2"
    rm -rf venv
    "$python2" -m virtualenv --version >/dev/null 2>&1 ||
        "$python2" -m pip install --quiet --user 'virtualenv<20.22'
    "$python2" -m virtualenv --quiet venv
    venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
fi

source "$root/.ci/lib/cargo-bin.sh"
pids=()
scratch=$(mktemp -d)
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; rm -rf "$scratch"' EXIT

free_port() {
    venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() { # port pid
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        if ! kill -0 "$2" 2>/dev/null; then return 1; fi
        sleep 0.05
    done
    return 1
}

# A spec for one wstest process: the committed one ($1) with the URL, cases and report folder set.
write_spec() { # template url cases-json exclude-json outdir
    venv/bin/python - "$@" <<'PY'
import json, sys
template, url, cases, exclude, outdir = sys.argv[1:]
spec = json.load(open(template))
if "servers" in spec:
    spec["servers"][0]["url"] = url
else:
    spec["url"] = url
spec["cases"] = json.loads(cases)
spec["exclude-cases"] = json.loads(exclude)
spec["outdir"] = outdir
print(json.dumps(spec))
PY
}

expect_count=517
[ -n "${CASES:-}" ] && expect_count=0

# 3. The server run: the suite's fuzzing client against `rfc6455 echo`, built in release mode,
#    with the default limits on a free loopback port. The permessage-deflate cases (12.x) spend
#    most of their time compressing in the Python client, so the suite runs as two clients side
#    by side (12.x, and everything else), each with its own report folder.
server_run() {
    local server port server_pid
    server=$(cargo_bin "$root/Cargo.toml" rfc6455) || return 1
    port=$(free_port)
    RUST_LOG=warn "$server" echo --port "$port" &
    server_pid=$!
    pids+=("$server_pid")
    wait_for_port "$port" "$server_pid" || {
        echo "the server did not start" >&2
        return 1
    }
    rm -rf reports/core reports/compression reports/subset
    rm -f reports/*.spec.json reports/*.log
    mkdir -p reports
    fuzzingclient() { # name cases-json exclude-json
        local spec="reports/$1.spec.json"
        write_spec fuzzingclient.json "ws://127.0.0.1:$port" "$2" "$3" "reports/$1" >"$spec"
        venv/bin/wstest -m fuzzingclient -s "$spec" >"reports/$1.log" 2>&1 || {
            echo "wstest ($1) failed:" >&2
            tail -20 "reports/$1.log" >&2
            return 1
        }
    }
    echo "Running the Autobahn|Testsuite fuzzing client against rfc6455 echo on port $port"
    local indexes
    if [ -n "${CASES:-}" ]; then
        fuzzingclient subset "$CASES" '[]' || return 1
        indexes=(reports/subset/index.json)
    else
        local compression_pid
        fuzzingclient compression '["12.*"]' '[]' &
        compression_pid=$!
        fuzzingclient core '["*"]' '["12.*"]' || return 1
        wait "$compression_pid" || return 1
        indexes=(reports/core/index.json reports/compression/index.json)
    fi
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    venv/bin/python compare.py expected-results.json "$expect_count" "${indexes[@]}"
}

# 4. The client run: the crate's blocking client (examples/autobahn_client.rs, permessage-deflate
#    offered) against the suite's fuzzing server. Here the Python server spends the time in the
#    compression cases (12.x and 13.x), so two servers run side by side on the cases split in two
#    halves of about equal time, each driven by its own client process and writing its own report.
client_run() {
    local driver
    driver=$(cargo_example "$root/Cargo.toml" autobahn_client) || return 1
    rm -rf reports/client
    mkdir -p reports/client
    # Starts a fuzzing server for one part and sets $port; in this shell, so that the cleanup
    # knows its process id.
    fuzzingserver() { # name cases-json exclude-json
        local spec="reports/client/$1.spec.json"
        port=$(free_port)
        write_spec fuzzingserver.json "ws://127.0.0.1:$port" "$2" "$3" "reports/client/$1" >"$spec"
        venv/bin/wstest -m fuzzingserver --webport 0 -s "$spec" >"reports/client/$1.wstest.log" 2>&1 &
        pids+=("$!")
        wait_for_port "$port" "$!" || {
            echo "wstest -m fuzzingserver ($1) did not start:" >&2
            tail -20 "reports/client/$1.wstest.log" >&2
            return 1
        }
    }
    # Runs the driver against the fuzzing server of one part.
    drive() { # name port
        "$driver" "ws://127.0.0.1:$2" rfc6455 >"reports/client/$1.log" 2>&1 || {
            echo "the client driver ($1) failed:" >&2
            tail -20 "reports/client/$1.log" >&2
            return 1
        }
    }
    echo "Running rfc6455's client against the Autobahn|Testsuite fuzzing server"
    local indexes first_port first_pid
    if [ -n "${CASES:-}" ]; then
        fuzzingserver subset "$CASES" '[]' || return 1
        drive subset "$port" || return 1
        indexes=(reports/client/subset/index.json)
    else
        fuzzingserver first '["*"]' '["12.5.*", "13.*"]' || return 1
        first_port=$port
        fuzzingserver second '["12.5.*", "13.*"]' '[]' || return 1
        drive first "$first_port" &
        first_pid=$!
        drive second "$port" || return 1
        wait "$first_pid" || return 1
        indexes=(reports/client/first/index.json reports/client/second/index.json)
    fi
    venv/bin/python compare.py expected-results-client.json "$expect_count" "${indexes[@]}"
}

# 5. The server run over TLS: the fuzzing client against `rfc6455 echo --tls-cert --tls-key`
#    with a certificate made for the run (tests/tls/make-certs.sh; the suite's client, Twisted's
#    ClientContextFactory, does not verify it), judged by the plain run's expectation file.
tls_run() {
    local server port server_pid cases
    venv/bin/python -c 'import OpenSSL, service_identity' || {
        echo "autobahn/run.sh: the venv lacks pyOpenSSL or service-identity" >&2
        return 1
    }
    server=$(cargo_bin "$root/Cargo.toml" rfc6455) || return 1
    "$root/tests/tls/make-certs.sh" "$scratch" || return 1
    port=$(free_port)
    RUST_LOG=warn "$server" echo --port "$port" --tls-cert "$scratch/cert.pem" --tls-key "$scratch/key.pem" &
    server_pid=$!
    pids+=("$server_pid")
    wait_for_port "$port" "$server_pid" || {
        echo "the server did not start" >&2
        return 1
    }
    cases=${CASES:-'["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"]'}
    rm -rf reports/tls
    mkdir -p reports/tls
    write_spec fuzzingclient.json "wss://localhost:$port" "$cases" '[]' reports/tls >reports/tls/spec.json
    echo "Running the Autobahn|Testsuite fuzzing client against rfc6455 echo over TLS on port $port"
    venv/bin/wstest -m fuzzingclient -s reports/tls/spec.json >reports/tls/wstest.log 2>&1 || {
        echo "wstest (tls) failed:" >&2
        tail -20 reports/tls/wstest.log >&2
        return 1
    }
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    venv/bin/python compare.py expected-results.json 0 reports/tls/index.json
}

status=0
if [ "$runs" = tls ]; then
    echo "== Autobahn|Testsuite: rfc6455 as the server, over TLS"
    tls_run || status=1
    exit "$status"
fi
if [ "$runs" != client ]; then
    echo "== Autobahn|Testsuite: rfc6455 as the server"
    server_run || status=1
fi
if [ "$runs" != server ]; then
    echo "== Autobahn|Testsuite: rfc6455 as the client"
    client_run || status=1
fi
exit "$status"
