#!/usr/bin/env bash
# The Autobahn|Testsuite fuzzing client against `rfc6455 echo` over TLS (wss://), compared with
# the same expectation file as the plain run (expected-results.json): every case must give the
# same result through TLS as without it.
#
#   autobahn/run-tls.sh                       # cases 1 to 10 (all but compression), strict
#   CASES='["*"]' autobahn/run-tls.sh         # every case, compression included (slow)
#
# Shares autobahn/venv with run.sh (the pinned suite already brings pyOpenSSL, cryptography and
# service-identity, which Twisted's TLS needs) and sets it up the same way when missing. The
# certificate is made for the run (tests/tls/make-certs.sh); the suite's client does not verify
# it (Twisted's ClientContextFactory). Reports go to autobahn/reports/tls/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$here"

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

if [ ! -x venv/bin/wstest ]; then
    python2=$(find_python2) || {
        echo "autobahn/run-tls.sh: no Python 2.7 found (looked in pyenv and on PATH)." >&2
        exit 1
    }
    echo "Setting up autobahn/venv with $python2"
    rm -rf venv
    "$python2" -m virtualenv --version >/dev/null 2>&1 ||
        "$python2" -m pip install --quiet --user 'virtualenv<20.22'
    "$python2" -m virtualenv --quiet venv
    venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
fi
venv/bin/python -c 'import OpenSSL, service_identity' || {
    echo "autobahn/run-tls.sh: the venv lacks pyOpenSSL or service-identity" >&2
    exit 1
}

certs=$(mktemp -d)
source "$root/.ci/lib/cargo-bin.sh"
server=$(cargo_bin "$root/Cargo.toml" rfc6455)
"$root/tests/tls/make-certs.sh" "$certs"
port=$(venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn "$server" echo --port "$port" --tls-cert "$certs/cert.pem" --tls-key "$certs/key.pem" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -rf "$certs"' EXIT
for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then echo "server exited" >&2; exit 1; fi
    sleep 0.05
done

cases=${CASES:-'["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"]'}
rm -rf reports/tls
mkdir -p reports/tls
venv/bin/python - "$port" "$cases" reports/tls >reports/tls/spec.json <<'PY'
import json, sys
spec = json.load(open("fuzzingclient.json"))
spec["servers"][0]["url"] = "wss://localhost:%s" % sys.argv[1]
spec["servers"][0]["agent"] = "rfc6455-tls"
spec["cases"] = json.loads(sys.argv[2])
spec["outdir"] = sys.argv[3]
print(json.dumps(spec))
PY
echo "Running the Autobahn|Testsuite fuzzing client against rfc6455 echo over TLS on port $port"
venv/bin/wstest -m fuzzingclient -s reports/tls/spec.json >reports/tls/wstest.log 2>&1 || {
    echo "wstest failed:" >&2
    tail -20 reports/tls/wstest.log >&2
    exit 1
}
venv/bin/python compare.py expected-results.json 0 reports/tls/index.json
