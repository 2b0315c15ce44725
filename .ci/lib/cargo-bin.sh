# shellcheck shell=bash
# Sourced by the scripts that build a binary and then run it: autobahn/run.sh,
# tests/browser/run.sh and bench/run.sh.
#
#   path=$(cargo_bin MANIFEST NAME)
#
# Builds the binary NAME of the workspace at MANIFEST in release mode, with default features, and
# prints the path of the executable as cargo reports it. Never assume target/release/NAME: with
# CARGO_TARGET_DIR or build.target-dir set, the build goes elsewhere and that path holds a stale
# binary or none. Compiler messages still go to stderr. Reads cargo's JSON with python3.
cargo_bin() {
    local manifest=$1 name=$2 messages executable
    messages=$(cargo build --release --quiet --manifest-path "$manifest" --bin "$name" \
        --message-format=json-render-diagnostics) || return 1
    executable=$(python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    message = json.loads(line)
    target = message.get("target") or {}
    if (message.get("reason") == "compiler-artifact" and target.get("name") == name
            and "bin" in target.get("kind", []) and message.get("executable")):
        print(message["executable"])
        break
' "$name" <<<"$messages") || return 1
    if [ -z "$executable" ] || [ ! -x "$executable" ]; then
        echo "cargo_bin: cargo reported no executable for the binary $name of $manifest" >&2
        return 1
    fi
    printf '%s\n' "$executable"
}

#   path=$(cargo_example MANIFEST NAME)
#
# The same for the example NAME (examples/NAME.rs), built in release mode with default features.
cargo_example() {
    local manifest=$1 name=$2 messages executable
    messages=$(cargo build --release --quiet --manifest-path "$manifest" --example "$name" \
        --message-format=json-render-diagnostics) || return 1
    executable=$(python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    message = json.loads(line)
    target = message.get("target") or {}
    if (message.get("reason") == "compiler-artifact" and target.get("name") == name
            and "example" in target.get("kind", []) and message.get("executable")):
        print(message["executable"])
        break
' "$name" <<<"$messages") || return 1
    if [ -z "$executable" ] || [ ! -x "$executable" ]; then
        echo "cargo_example: cargo reported no executable for the example $name of $manifest" >&2
        return 1
    fi
    printf '%s\n' "$executable"
}
