#!/usr/bin/env bash
# What a pull request costs (`make bench-pull-requests`), in one run on the project's git server and registry
# with the GitHub stand-in: `tagpilot run --once` pushing to a branch, the same with `spec.pullRequest`, and the
# git CLI + curl doing the same update by hand (release builds; median of RUNS updates, RUNS default 7).
# Usage: [RUNS=N] hack/bench-compare/pull-requests.sh [OUT_DIR]
. "$(dirname "$0")/common.sh"
cargo build -q --release -p tagpilot --bin tagpilot
cargo build -q --release -p tagpilot-testinfra --bin pr-bench
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); git: $(git --version | cut -d' ' -f3)"
TAGPILOT_BIN="$ROOT/target/release/tagpilot" "$ROOT/target/release/pr-bench" "${RUNS:-7}"
