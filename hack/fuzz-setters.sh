#!/usr/bin/env bash
# Fuzz the setters for N seconds (default 600) with cargo-fuzz on the stable toolchain (no sanitizer: the
# target is safe Rust; libFuzzer still guides by coverage). The corpus is seeded from the fixture tree.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_TO_RUN=${1:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
CORPUS=$ROOT/fuzz/corpus/setters
mkdir -p "$CORPUS"
i=0
find "$ROOT/crates/tagpilot-core/tests/data/setters/input" -type f | sort | while read -r f; do
  i=$((i + 1)); { printf "\\x$(printf %02x $((i % 10)))"; cat "$f"; } > "$CORPUS/seed-$i"
done
cd "$ROOT/fuzz"
cargo fuzz run --sanitizer none setters "$CORPUS" -- -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1
