#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: FUZZ_SECONDS each (default 60).
#
#   fuzz/run.sh                      # all targets, 60 s each
#   FUZZ_SECONDS=300 fuzz/run.sh token pull_query
#
# cargo-fuzz needs a nightly compiler; on stable, RUSTC_BOOTSTRAP=1 unlocks the flags it
# passes (set here unless already set). Sanitizer: none by default (the crate forbids
# unsafe code, and it runs several times faster); FUZZ_SANITIZER=address to change it.
# Not run in CI. Findings land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"
seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=(pull_query token tolerant_profile retry_after)
fi

command -v cargo-fuzz >/dev/null || { echo "install cargo-fuzz: cargo install cargo-fuzz" >&2; exit 2; }

./seed.sh
for target in "${targets[@]}"; do
    echo "== $target: ${seconds}s"
    cargo fuzz run --sanitizer "$sanitizer" "$target" -- \
        -max_total_time="$seconds" -max_len=20000 -print_final_stats=1
done
