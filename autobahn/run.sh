#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing client against `rfc6455 echo` and compares every case's
# result with expected-results.json. Exits non-zero on any difference, better or worse.
#
#   autobahn/run.sh            # the whole suite (517 cases)
#   CASES='["6.4.*"]' autobahn/run.sh   # a subset (the count check is skipped)
#
# Installs what it needs on first use: a Python 2.7 virtualenv under autobahn/venv with the
# pinned autobahntestsuite (requirements.txt). Reports go to autobahn/reports/ (open
# autobahn/reports/core/index.html and autobahn/reports/compression/index.html in a browser).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$here"

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

# 3. The server, built in release mode, on a free loopback port.
source "$root/.ci/lib/cargo-bin.sh"
server=$(cargo_bin "$root/Cargo.toml" rfc6455)
port=$(venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn "$server" echo --port "$port" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then echo "server exited" >&2; exit 1; fi
    sleep 0.05
done

# 4. The fuzzing client, with the committed spec pointed at that port. The permessage-deflate
#    cases (12.x) spend most of their time compressing in the Python client, so the suite runs as
#    two clients side by side (12.x, and everything else), each with its own report folder.
rm -rf reports
mkdir -p reports
run_part() { # name cases-json exclude-json
    local name=$1 spec="reports/$1.spec.json"
    venv/bin/python - "$port" "$2" "$3" "reports/$name" >"$spec" <<'PY'
import json, sys
spec = json.load(open("fuzzingclient.json"))
spec["servers"][0]["url"] = "ws://127.0.0.1:%s" % sys.argv[1]
spec["cases"] = json.loads(sys.argv[2])
spec["exclude-cases"] = json.loads(sys.argv[3])
spec["outdir"] = sys.argv[4]
print(json.dumps(spec))
PY
    venv/bin/wstest -m fuzzingclient -s "$spec" >"reports/$name.log" 2>&1 || {
        echo "wstest ($name) failed:" >&2
        tail -20 "reports/$name.log" >&2
        return 1
    }
}
echo "Running the Autobahn|Testsuite fuzzing client against rfc6455 echo on port $port"
if [ -n "${CASES:-}" ]; then
    run_part subset "$CASES" '[]'
    indexes=(reports/subset/index.json)
else
    run_part compression '["12.*"]' '[]' &
    compression_pid=$!
    run_part core '["*"]' '["12.*"]'
    wait "$compression_pid"
    indexes=(reports/core/index.json reports/compression/index.json)
fi

# 5. Compare with the expectation.
expect_count=517
[ -n "${CASES:-}" ] && expect_count=0
venv/bin/python compare.py expected-results.json "$expect_count" "${indexes[@]}"
