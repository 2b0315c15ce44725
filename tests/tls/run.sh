#!/usr/bin/env bash
# rfc6455 over TLS against an independent client: Python's `websockets` (pinned in
# requirements.txt, installed into tests/tls/venv on first use) and Python's ssl module
# (OpenSSL). Makes a throwaway CA and server certificate (make-certs.sh), builds the server in
# release mode, and runs test_wss.py: echo and broadcast over wss:// with permessage-deflate, a
# refused upgrade over TLS, stalled TLS handshakes cut at the handshake deadline, and
# close_notify then FIN at the end. Prints `N passed, N failed`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

python=${PYTHON:-python3}
if [ ! -x "$here/venv/bin/python" ] ||
    ! "$here/venv/bin/python" -c 'import websockets' 2>/dev/null; then
    echo "Setting up tests/tls/venv with $($python --version)"
    rm -rf "$here/venv"
    "$python" -m venv "$here/venv"
    "$here/venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi

certs=$(mktemp -d)
trap 'rm -rf "$certs"' EXIT
"$here/make-certs.sh" "$certs"

source "$root/.ci/lib/cargo-bin.sh"
server=$(cargo_bin "$root/Cargo.toml" rfc6455)
RFC6455_BIN="$server" CERTS="$certs" "$here/venv/bin/python" "$here/test_wss.py"
