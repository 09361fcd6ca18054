#!/usr/bin/env bash
# Fuzzes Bindery's input parsers on stable Rust (proptest-driven; see fuzz/src/lib.rs):
# the watch log reader, the label selector parser and the policy compiler, each for
# about SECONDS (default 60), after replaying its corpus (fuzz/corpus/<target>/).
# Exits non-zero on a failure; the failing input is saved under fuzz/crashes/.
# BINDERY_FUZZ_SEED=N picks another sequence (default: a new one each run).
set -euo pipefail
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    echo "usage: $0 [SECONDS]" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
export BINDERY_FUZZ_SECONDS="$seconds"
export BINDERY_FUZZ_SEED="${BINDERY_FUZZ_SEED:-$(date +%s)}"
echo "fuzzing each target for ${seconds}s (BINDERY_FUZZ_SEED=$BINDERY_FUZZ_SEED)" >&2
# One target at a time (each test is one target), output shown as it goes.
cargo test -p bindery-fuzz --test fuzz -- --test-threads 1 --nocapture
