# shellcheck shell=bash
# Sourced by the scripts that build an executable and then run it: autobahn/run.sh,
# autobahn/run.sh tls, tests/browser/run.sh, tests/tls/run.sh, tests/interop/run.sh, bench/run.sh
# and bench/redis.sh.
#
#   path=$(cargo_bin MANIFEST NAME)
#   path=$(cargo_example MANIFEST NAME)
#
# Builds the binary NAME (or the example examples/NAME.rs) of the workspace at MANIFEST in release
# mode, with default features, and prints the path of the executable as cargo reports it. Never
# assume target/release/NAME: with CARGO_TARGET_DIR or build.target-dir set, the build goes
# elsewhere and that path holds a stale executable or none. Compiler messages still go to stderr.
# Reads cargo's JSON with python3.
cargo_bin() {
    cargo_executable "$1" bin "$2"
}

cargo_example() {
    cargo_executable "$1" example "$2"
}

#   path=$(cargo_executable MANIFEST KIND NAME), KIND being bin or example.
cargo_executable() {
    local manifest=$1 kind=$2 name=$3 messages executable
    messages=$(cargo build --release --quiet --manifest-path "$manifest" "--$kind" "$name" \
        --message-format=json-render-diagnostics) || return 1
    executable=$(python3 -c '
import json, sys
kind, name = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    message = json.loads(line)
    target = message.get("target") or {}
    if (message.get("reason") == "compiler-artifact" and target.get("name") == name
            and kind in target.get("kind", []) and message.get("executable")):
        print(message["executable"])
        break
' "$kind" "$name" <<<"$messages") || return 1
    if [ -z "$executable" ] || [ ! -x "$executable" ]; then
        echo "cargo_executable: cargo reported no executable for the $kind $name of $manifest" >&2
        return 1
    fi
    printf '%s\n' "$executable"
}
