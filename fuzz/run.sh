#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60); a crash fails the run.
#
#   fuzz/run.sh            # 60 s per target
#   fuzz/run.sh 30         # the CI smoke
#   fuzz/run.sh 600 utf8   # a longer campaign on one target
#
# Installs cargo-fuzz if it is missing. Uses a nightly toolchain when one is installed, otherwise
# the stable one with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs nightly-only sanitizer flags). New
# inputs go to fuzz/work/<target> (git-ignored); the committed seeds stay in fuzz/corpus/<target>.
# Crashes are written to fuzz/artifacts/<target>/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
seconds="${1:-60}"
shift || true

# shellcheck source=../.ci/lib/cargo-install.sh
source "$here/../.ci/lib/cargo-install.sh"
install_tool cargo-fuzz 0.13.2
if cargo +nightly --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    # A command substitution, not `mapfile < <(...)`: `set -e` does not see a process
    # substitution fail, and a failed listing would then fuzz nothing and report success.
    list=$("${fuzz[@]}" list) || {
        echo "fuzz/run.sh: listing the fuzz targets failed" >&2
        exit 1
    }
    if [ -n "$list" ]; then
        mapfile -t targets <<<"$list"
    fi
fi
if [ ${#targets[@]} -eq 0 ]; then
    echo "fuzz/run.sh: no fuzz targets to run" >&2
    exit 1
fi
for target in "${targets[@]}"; do
    mkdir -p "work/$target"
    extra=()
    [ -f "$target.dict" ] && extra+=("-dict=$target.dict")
    echo "== fuzzing $target for ${seconds}s"
    "${fuzz[@]}" run --release "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 "${extra[@]}" \
        2>"work/$target.log" || {
        tail -40 "work/$target.log" >&2
        echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    }
    grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "work/$target.log" | sed 's/^/   /'
done
echo "all ${#targets[@]} fuzz targets ran ${seconds}s without a crash"
