# shellcheck shell=bash
# Sourced by the scripts that need a cargo-installed tool: fuzz/run.sh (cargo-fuzz), .ci/duvet
# (duvet) and .ci/mutants-diff (cargo-mutants).
#
#   install_tool CRATE VERSION
#
# Installs the pinned VERSION of CRATE unless that version is installed already. Every tool is
# built in one target folder (the repository's target/tools, git-ignored), so that the
# dependencies they share (serde, syn, clap, ...) are compiled once on a fresh machine, and with
# light optimisation (opt-level 1, no LTO, many codegen units): these tools' speed does not
# matter to CI, their build time does.
install_tool() {
    local crate=$1 version=$2 root
    if cargo install --list | grep -qx "$crate v$version:"; then
        return 0
    fi
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    echo "Installing $crate $version"
    CARGO_TARGET_DIR="$root/target/tools" \
        CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
        CARGO_PROFILE_RELEASE_LTO=false \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        cargo install "$crate" --locked --version "$version"
}
