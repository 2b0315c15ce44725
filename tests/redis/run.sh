#!/usr/bin/env bash
# The Redis suite: rooms across several `rfc6455 broadcast` processes on one Redis (tests/redis.rs,
# ignored by a plain `cargo test`). Installs Debian's redis-server with apt-get when it is missing
# (as root, as CI runs). Every test starts its own Redis on a free loopback port with persistence
# off and stops it by its PID; none of them uses a Redis that is already running. Fails, rather
# than passing with nothing run, when Redis cannot be had.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

redis="${REDIS_SERVER:-$(command -v redis-server || true)}"
if [ -z "$redis" ] || [ ! -x "$redis" ]; then
    source "$root/.ci/lib/apt-install.sh"
    install_package redis-server tests/redis/run.sh
    redis=$(command -v redis-server || true)
fi
if [ -z "$redis" ] || ! "$redis" --version >/dev/null; then
    echo "tests/redis/run.sh: no usable redis-server" >&2
    exit 1
fi
echo "using $("$redis" --version)"
cd "$root"
# One test at a time: each runs several server processes and measures their CPU time.
REDIS_SERVER="$redis" cargo test --test redis -- --ignored --test-threads=1
