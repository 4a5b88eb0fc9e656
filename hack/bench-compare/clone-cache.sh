#!/usr/bin/env bash
# Kept clones against a clone per run (`make bench-clone-cache`), in one run on the project's git server:
# `tagpilot run --once` with kept clones, with `--clone-cache-max-mb 0` (a clone per run, as Flux), and the git
# CLI (clone --depth 1, sed, commit, push), on a repository of FILES files (release builds).
# Usage: [RUNS=N] [FILES=N] hack/bench-compare/clone-cache.sh [OUT_DIR]
. "$(dirname "$0")/common.sh"
cargo build -q --release -p tagpilot --bin tagpilot
cargo build -q --release -p tagpilot-testinfra --bin clone-bench
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); git: $(git --version | cut -d' ' -f3)"
TAGPILOT_BIN="$ROOT/target/release/tagpilot" "$ROOT/target/release/clone-bench" "${RUNS:-5}" "${FILES:-20000}"
