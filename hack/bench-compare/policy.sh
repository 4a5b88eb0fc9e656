#!/usr/bin/env bash
# Time tagpilot's policy engine and Flux's algorithms (Go, Masterminds/semver from Debian) on the same tag
# files in one run, and print a Markdown table. Usage: hack/bench-compare/policy.sh [OUT_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/target/bench-compare}
mkdir -p "$OUT"
bash "$ROOT/hack/testinfra/install-deps.sh" --bench
cargo build -q --release -p tagpilot-core --example policy_compare
RUST=$ROOT/target/release/examples/policy_compare
(cd "$ROOT/hack/go-harness/policytiming" && env -u GOFLAGS GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off \
  go build -o "$OUT/policytiming" .)
GO=$OUT/policytiming
"$RUST" gen "$OUT"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); go: $(go version | cut -d' ' -f3)"
echo
echo "| policy | tags | Go (Flux algorithm) median | tagpilot median | speed-up | same result |"
echo "|---|---:|---:|---:|---:|---|"
"$RUST" policies | while IFS=$'\t' read -r name kind arg pattern extract; do
  for n in 1000 10000 100000; do
    f="$OUT/tags-$n.txt"
    IFS=$'\t' read -r go_ns go_tag < <("$GO" "$f" "$kind" "$arg" "$pattern" "$extract")
    IFS=$'\t' read -r rs_ns rs_tag < <("$RUST" run "$f" "$kind" "$arg" "$pattern" "$extract")
    same=yes; [ "$go_tag" = "$rs_tag" ] || same="no: go $go_tag, tagpilot $rs_tag"
    awk -v name="$name" -v n="$n" -v g="$go_ns" -v r="$rs_ns" -v same="$same" 'BEGIN {
      printf "| %s | %d | %.1f µs | %.1f µs | %.1fx | %s |\n", name, n, g/1000, r/1000, g/r, same }'
  done
done
