#!/usr/bin/env bash
# The ImagePolicy gates' costs, in one run (`make bench-gates`): registry requests per evaluation of a
# 1,000-tag repository with each gate on (through a counting proxy, by the core functions both drivers call),
# and the time to verify one cosign signature layer, tagpilot (release build) beside the same checks in Go's
# standard library (crypto/ecdsa, crypto/x509: what cosign verifies with), on the same fixture.
# Usage: hack/bench-compare/gates.sh [OUT_DIR]
. "$(dirname "$0")/common.sh"
cargo build -q --release -p tagpilot-testinfra --bin gate-requests
cargo build -q --release -p tagpilot-core --example cosign_timing
(cd "$ROOT/hack/go-harness/cosigntiming" && env -u GOFLAGS GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off \
  go build -o "$OUT/cosigntiming" .)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); go: $(go version | cut -d' ' -f3)"
echo
"$ROOT/target/release/gate-requests"
echo
RUST=$ROOT/target/release/examples/cosign_timing
"$RUST" gen "$OUT/cosign.json"
echo "| signature layer | Go stdlib median | tagpilot median | speed-up |"
echo "|---|---:|---:|---:|"
for kind in key keyless; do
  IFS=$'\t' read -r go_ns go_res < <("$OUT/cosigntiming" "$OUT/cosign.json" "$kind")
  IFS=$'\t' read -r rs_ns rs_res < <("$RUST" run "$OUT/cosign.json" "$kind")
  [ "$go_res" = verified ] && [ "$rs_res" = verified ] || { echo "not verified: go $go_res, tagpilot $rs_res" >&2; exit 1; }
  awk -v k="$kind" -v g="$go_ns" -v r="$rs_ns" 'BEGIN { printf "| %s | %.1f µs | %.1f µs | %.2fx |\n", k, g/1000, r/1000, g/r }'
done
