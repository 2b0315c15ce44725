#!/usr/bin/env bash
# Makes a throwaway certificate authority and a server certificate for localhost and 127.0.0.1
# signed by it, for the TLS test suites (tests/tls/run.sh, tests/browser/run.sh,
# autobahn/run.sh tls, bench/run.sh). Nothing it makes is committed or kept:
#
#   tests/tls/make-certs.sh DIR    # writes DIR/ca.pem, DIR/cert.pem, DIR/key.pem
#
# Uses the openssl command (Debian's openssl package, installed when missing and root).
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR}
if ! command -v openssl >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "make-certs.sh: the openssl command is missing (apt-get install openssl)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=rfc6455 test CA" -keyout ca-key.pem -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=localhost" -keyout key.pem -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
    -extfile server.ext -out cert.pem 2>/dev/null
rm -f server.csr server.ext ca.srl ca-key.pem
