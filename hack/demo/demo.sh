#!/usr/bin/env bash
# The README demo: Flux's image-update guide without a cluster.
#   1. starts a loopback docker-registry and git server (hack/testinfra/up.sh registry git; Debian packages are
#      installed on first use),
#   2. pushes podinfo-like tags 5.0.0..5.0.3 and creates a repository with the guide's
#      clusters/my-cluster/podinfo-deployment.yaml (at 5.0.0),
#   3. runs `tagpilot run --once` with the guide's ImageRepository, ImagePolicy (5.0.x) and
#      ImageUpdateAutomation,
#   4. shows the commit it pushed (git log -p -1).
# The servers stay up for a second run (make testinfra-down stops them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CARGO=${CARGO:-cargo}
echo "== starting a loopback registry and git server (Debian's packages are installed on first use)"
bash "$ROOT/hack/testinfra/up.sh" registry git >/dev/null
echo "== building tagpilot and the demo's setup tool (cargo build; the first build takes a few minutes)"
"$CARGO" build -p tagpilot -p tagpilot-testinfra --bin tagpilot --bin demo-setup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tagpilot-demo.XXXXXX")
eval "$("$ROOT/target/debug/demo-setup" "$WORK/manifests")"
echo "== manifests: $MANIFESTS"
echo "== tagpilot run --once --manifests $MANIFESTS"
"$ROOT/target/debug/tagpilot" run --once --manifests "$MANIFESTS" --state-dir "$WORK/state"
echo
echo "== the commit tagpilot pushed:"
git clone -q "$REPO_URL" "$WORK/clone"
git -C "$WORK/clone" --no-pager log -p -1
