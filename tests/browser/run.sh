#!/usr/bin/env bash
# The browser test: Debian's Chromium, driven by playwright-core, against `rfc6455 broadcast`.
# Installs what it needs when missing: Chromium with apt-get (as root, as CI runs), and
# playwright-core with npm (pinned in package-lock.json). Screenshots land in
# tests/browser/screenshots/ (git-ignored).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    source "$root/.ci/lib/apt-install.sh"
    install_package chromium tests/browser/run.sh
fi
command -v node >/dev/null || { echo "tests/browser/run.sh: Node.js is required" >&2; exit 1; }
(cd "$here" && npm ci --no-audit --no-fund --silent)
source "$root/.ci/lib/cargo-bin.sh"
server=$(cargo_bin "$root/Cargo.toml" rfc6455)
# A certificate for the run over https:// and wss://; Chromium trusts its public key alone.
certs=$(mktemp -d)
trap 'rm -rf "$certs"' EXIT
"$root/tests/tls/make-certs.sh" "$certs"
spki=$(openssl x509 -in "$certs/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der |
    openssl dgst -sha256 -binary | base64)
cd "$here"
RFC6455_BIN="$server" CHROMIUM="$chromium" CERTS="$certs" SPKI="$spki" \
    node --test --test-reporter=spec chat.test.mjs
